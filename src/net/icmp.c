/* icmp.c — ICMP and ICMPv6 message parse/build (RFC 792, RFC 4443,
 * RFC 4861). Pure functions: never reads past len, never writes past cap. */
#include "net/icmp.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/libc.h"
#include "net/ipv4.h"
#include "net/ipv6.h"

static void view_init(const uint8_t *p, struct icmp_view *out)
{
	memset(out, 0, sizeof(*out));
	out->type = p[0];
	out->code = p[1];
	out->id = load_be16(p + 4);
	out->seq = load_be16(p + 6);
	out->rest = load_be32(p + 4);
}

enum pkt_result icmp4_parse(const uint8_t *p, size_t len, bool verify, struct icmp_view *out)
{
	if (len < ICMP_HDR_LEN)
		return PKT_TRUNCATED;
	if (verify && csum_buf(p, len) != 0)
		return PKT_BAD_L4_CHECKSUM;
	view_init(p, out);
	switch (out->type) {
	case ICMP_ECHO_REPLY:
	case ICMP_ECHO_REQUEST:
		out->is_query = true;
		break;
	case ICMP_DEST_UNREACH:
	case ICMP_TIME_EXCEEDED:
	case ICMP_PARAM_PROBLEM:
		/* RFC 792: the internet header + 64 bits of the datagram. */
		if (len < ICMP_HDR_LEN + IPV4_HDR_MIN + 8)
			return PKT_BAD_ICMP;
		out->is_error = true;
		out->inner_off = ICMP_HDR_LEN;
		out->inner_len = (uint32_t)(len - ICMP_HDR_LEN);
		break;
	default:
		break;
	}
	return PKT_OK;
}

uint16_t icmp6_checksum(const uint8_t *msg, size_t len, const uint8_t src[16],
			const uint8_t dst[16])
{
	uint32_t sum = csum_pseudo_ipv6(src, dst, IP_PROTO_ICMPV6, (uint32_t)len);
	sum = csum_partial(msg, 2, sum);
	sum = csum_partial(msg + 4, len - 4, sum);
	return csum_fold(sum);
}

/* RFC 4861 §4.6: options are type, length in units of 8 bytes (never 0). */
static bool nd_options(const uint8_t *p, size_t len, size_t off, uint8_t want,
		       struct icmp_view *out)
{
	while (off < len) {
		if (len - off < 2)
			return false;
		size_t olen = (size_t)p[off + 1] * 8;
		if (olen == 0 || olen > len - off)
			return false;
		if (p[off] == want && olen >= 8 && out->nd_lladdr_off == 0)
			out->nd_lladdr_off = (uint32_t)(off + 2);
		off += olen;
	}
	return true;
}

enum pkt_result icmp6_parse(const uint8_t *p, size_t len, const uint8_t src[16],
			    const uint8_t dst[16], bool verify, struct icmp_view *out)
{
	if (len < ICMP_HDR_LEN)
		return PKT_TRUNCATED;
	if (verify) {
		uint32_t sum = csum_pseudo_ipv6(src, dst, IP_PROTO_ICMPV6, (uint32_t)len);
		if (csum_fold(csum_partial(p, len, sum)) != 0)
			return PKT_BAD_L4_CHECKSUM;
	}
	view_init(p, out);
	size_t body = 0;
	uint8_t want = 0;
	switch (out->type) {
	case ICMP6_DEST_UNREACH:
	case ICMP6_PACKET_TOO_BIG:
	case ICMP6_TIME_EXCEEDED:
	case ICMP6_PARAM_PROBLEM:
		if (len < ICMP_HDR_LEN + IPV6_HDR_LEN)
			return PKT_BAD_ICMP;
		out->is_error = true;
		out->inner_off = ICMP_HDR_LEN;
		out->inner_len = (uint32_t)(len - ICMP_HDR_LEN);
		return PKT_OK;
	case ICMP6_ECHO_REQUEST:
	case ICMP6_ECHO_REPLY:
		out->is_query = true;
		return PKT_OK;
	case ICMP6_ROUTER_SOLICIT:
		body = 8;
		want = ND_OPT_SOURCE_LLADDR;
		break;
	case ICMP6_ROUTER_ADVERT:
		body = 16;
		want = ND_OPT_SOURCE_LLADDR;
		break;
	case ICMP6_NEIGHBOR_SOLICIT:
		body = ND_NS_LEN;
		want = ND_OPT_SOURCE_LLADDR;
		break;
	case ICMP6_NEIGHBOR_ADVERT:
		body = ND_NA_LEN;
		want = ND_OPT_TARGET_LLADDR;
		break;
	case ICMP6_REDIRECT:
		body = 40;
		break;
	default:
		return PKT_OK;
	}
	out->is_nd = true;
	if (out->code != 0 || len < body)
		return PKT_BAD_ICMP;
	if (out->type == ICMP6_NEIGHBOR_SOLICIT || out->type == ICMP6_NEIGHBOR_ADVERT) {
		if (p[8] == 0xff) /* RFC 4861 §7.1: target must not be multicast */
			return PKT_BAD_ICMP;
		out->nd_target_off = 8;
		out->nd_flags = p[4] & (ND_NA_ROUTER | ND_NA_SOLICITED | ND_NA_OVERRIDE);
	}
	if (!nd_options(p, len, body, want, out))
		return PKT_BAD_ICMP;
	return PKT_OK;
}

static void echo_header(uint8_t *buf, uint8_t type, uint16_t id, uint16_t seq)
{
	buf[0] = type;
	buf[1] = 0;
	store_be16(buf + ICMP_OFF_CSUM, 0);
	store_be16(buf + 4, id);
	store_be16(buf + 6, seq);
}

size_t icmp4_build_echo(uint8_t *buf, size_t cap, uint8_t type, uint16_t id, uint16_t seq,
			const uint8_t *data, size_t data_len)
{
	if (cap < ICMP_HDR_LEN || data_len > cap - ICMP_HDR_LEN)
		return 0;
	if (data_len)
		memmove(buf + ICMP_HDR_LEN, data, data_len);
	echo_header(buf, type, id, seq);
	size_t len = ICMP_HDR_LEN + data_len;
	store_be16(buf + ICMP_OFF_CSUM, csum_buf(buf, len));
	return len;
}

size_t icmp4_build_error(uint8_t *buf, size_t cap, uint8_t type, uint8_t code, uint32_t rest,
			 const uint8_t *orig, size_t orig_len)
{
	size_t quote = IPV4_HDR_MIN + 8;
	if (orig_len >= IPV4_HDR_MIN && (orig[0] & 0x0f) >= 5)
		quote = (size_t)(orig[0] & 0x0f) * 4 + 8;
	quote = MIN(quote, orig_len);
	if (cap < ICMP_HDR_LEN || quote > cap - ICMP_HDR_LEN)
		return 0;
	if (quote)
		memmove(buf + ICMP_HDR_LEN, orig, quote);
	buf[0] = type;
	buf[1] = code;
	store_be16(buf + ICMP_OFF_CSUM, 0);
	store_be32(buf + 4, rest);
	size_t len = ICMP_HDR_LEN + quote;
	store_be16(buf + ICMP_OFF_CSUM, csum_buf(buf, len));
	return len;
}

size_t icmp6_build_echo(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
			uint8_t type, uint16_t id, uint16_t seq, const uint8_t *data,
			size_t data_len)
{
	if (cap < ICMP_HDR_LEN || data_len > cap - ICMP_HDR_LEN)
		return 0;
	if (data_len)
		memmove(buf + ICMP_HDR_LEN, data, data_len);
	echo_header(buf, type, id, seq);
	size_t len = ICMP_HDR_LEN + data_len;
	store_be16(buf + ICMP_OFF_CSUM, icmp6_checksum(buf, len, src, dst));
	return len;
}

size_t icmp6_build_error(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
			 uint8_t type, uint8_t code, uint32_t rest, const uint8_t *orig,
			 size_t orig_len)
{
	size_t quote = MIN(orig_len, (size_t)ICMP6_QUOTE_MAX);
	if (cap < ICMP_HDR_LEN)
		return 0;
	quote = MIN(quote, cap - ICMP_HDR_LEN);
	if (quote)
		memmove(buf + ICMP_HDR_LEN, orig, quote);
	buf[0] = type;
	buf[1] = code;
	store_be32(buf + 4, rest);
	size_t len = ICMP_HDR_LEN + quote;
	store_be16(buf + ICMP_OFF_CSUM, icmp6_checksum(buf, len, src, dst));
	return len;
}

static size_t nd_build(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
		       uint8_t type, uint8_t flags, const uint8_t target[16], uint8_t opt,
		       const uint8_t lladdr[6])
{
	if (cap < ND_NA_LEN + 8)
		return 0;
	buf[0] = type;
	buf[1] = 0;
	store_be32(buf + 4, (uint32_t)flags << 24);
	memmove(buf + 8, target, 16);
	buf[24] = opt;
	buf[25] = 1;
	memmove(buf + 26, lladdr, 6);
	store_be16(buf + ICMP_OFF_CSUM, icmp6_checksum(buf, ND_NA_LEN + 8, src, dst));
	return ND_NA_LEN + 8;
}

size_t icmp6_build_na(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
		      const uint8_t target[16], uint8_t flags, const uint8_t lladdr[6])
{
	return nd_build(buf, cap, src, dst, ICMP6_NEIGHBOR_ADVERT, flags, target,
			ND_OPT_TARGET_LLADDR, lladdr);
}

size_t icmp6_build_ns(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
		      const uint8_t target[16], const uint8_t lladdr[6])
{
	return nd_build(buf, cap, src, dst, ICMP6_NEIGHBOR_SOLICIT, 0, target,
			ND_OPT_SOURCE_LLADDR, lladdr);
}
