/* ipv4.c — IPv4 header parse/build (RFC 791, RFC 1812 §5.2.2).
 * Pure functions: never reads past len, never writes past cap. */
#include "net/ipv4.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/libc.h"

#define IPV4_FLAG_RESERVED 0x8000
#define IPV4_FLAG_DF 0x4000
#define IPV4_FLAG_MF 0x2000
#define IPV4_OFFSET_MASK 0x1fff

/* Option list: EOL ends it, NOP is one byte, everything else is
 * type, length (>= 2, within the header). RFC 791 p. 15. */
static bool options_ok(const uint8_t *p, uint32_t hdr_len)
{
	uint32_t i = IPV4_HDR_MIN;
	while (i < hdr_len) {
		uint8_t type = p[i];
		if (type == 0)
			return true;
		if (type == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hdr_len)
			return false;
		uint8_t olen = p[i + 1];
		if (olen < 2 || olen > hdr_len - i)
			return false;
		i += olen;
	}
	return true;
}

static enum pkt_result parse(const uint8_t *p, size_t len, bool quoted, struct ipv4_view *out)
{
	if (len < IPV4_HDR_MIN)
		return PKT_TRUNCATED;
	if (p[0] >> 4 != 4)
		return PKT_BAD_VERSION;
	uint32_t hdr_len = (uint32_t)(p[0] & 0x0f) * 4;
	if (hdr_len < IPV4_HDR_MIN)
		return PKT_BAD_IHL;
	if (hdr_len > len)
		return PKT_TRUNCATED;
	if (!quoted && csum_buf(p, hdr_len) != 0)
		return PKT_BAD_CHECKSUM;
	uint32_t total = load_be16(p + 2);
	if (total < hdr_len)
		return PKT_BAD_LENGTH;
	if (!quoted && total > len)
		return PKT_TRUNCATED;
	if (hdr_len > IPV4_HDR_MIN && !options_ok(p, hdr_len))
		return PKT_BAD_OPTIONS;

	uint16_t frag = load_be16(p + 6);
	uint32_t frag_off = (uint32_t)(frag & IPV4_OFFSET_MASK) * 8;
	uint32_t payload = total - hdr_len;
	if (frag & IPV4_FLAG_RESERVED)
		return PKT_BAD_FRAGMENT;
	if (frag_off + payload > 65535)
		return PKT_BAD_FRAGMENT;
	if ((frag & IPV4_FLAG_MF) && (payload % 8 != 0 || payload == 0))
		return PKT_BAD_FRAGMENT;

	out->hdr_len = hdr_len;
	out->total_len = total;
	out->tos = p[1];
	out->id = load_be16(p + 4);
	out->df = (frag & IPV4_FLAG_DF) != 0;
	out->mf = (frag & IPV4_FLAG_MF) != 0;
	out->frag_off = frag_off;
	out->ttl = p[IPV4_OFF_TTL];
	out->proto = p[IPV4_OFF_PROTO];
	return PKT_OK;
}

enum pkt_result ipv4_parse(const uint8_t *p, size_t len, struct ipv4_view *out)
{
	return parse(p, len, false, out);
}

enum pkt_result ipv4_parse_quoted(const uint8_t *p, size_t len, struct ipv4_view *out)
{
	return parse(p, len, true, out);
}

size_t ipv4_build(uint8_t *buf, size_t cap, const struct ipv4_fields *f)
{
	if (cap < IPV4_HDR_MIN || f->payload_len > 65535 - IPV4_HDR_MIN)
		return 0;
	buf[0] = 0x45;
	buf[1] = f->tos;
	store_be16(buf + 2, (uint16_t)(IPV4_HDR_MIN + f->payload_len));
	store_be16(buf + 4, f->id);
	store_be16(buf + 6, f->df ? IPV4_FLAG_DF : 0);
	buf[IPV4_OFF_TTL] = f->ttl;
	buf[IPV4_OFF_PROTO] = f->proto;
	memmove(buf + IPV4_OFF_SRC, f->src, 4);
	memmove(buf + IPV4_OFF_DST, f->dst, 4);
	ipv4_set_checksum(buf, IPV4_HDR_MIN);
	return IPV4_HDR_MIN;
}

void ipv4_set_checksum(uint8_t *hdr, size_t hdr_len)
{
	store_be16(hdr + IPV4_OFF_CSUM, 0);
	store_be16(hdr + IPV4_OFF_CSUM, csum_buf(hdr, hdr_len));
}

void ipv4_decrement_ttl(uint8_t *hdr)
{
	/* TTL shares a 16-bit word with the protocol. */
	uint16_t old_word = load_be16(hdr + IPV4_OFF_TTL);
	hdr[IPV4_OFF_TTL]--;
	uint16_t new_word = load_be16(hdr + IPV4_OFF_TTL);
	uint16_t csum = load_be16(hdr + IPV4_OFF_CSUM);
	store_be16(hdr + IPV4_OFF_CSUM, csum_update16(csum, old_word, new_word));
}
