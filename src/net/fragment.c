/* fragment.c — IPv4 output fragmentation (RFC 791 §3.2) and the IPv6
 * "never fragment, report packet too big" decision (RFC 8200 §5).
 *
 * Each fragment's header is built in a local buffer and handed to the
 * callback with a pointer into the original payload: nothing is copied
 * twice and the input is never written. Must never emit a fragment larger
 * than the MTU or one whose payload length (except the last) is not a
 * multiple of 8. */
#include "net/fragment.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/libc.h"

#define IPV4_FLAG_DF 0x4000u
#define IPV4_FLAG_MF 0x2000u
#define IPV4_OFFSET_MASK 0x1fffu
#define IPOPT_EOL 0u
#define IPOPT_NOP 1u
#define IPOPT_COPIED 0x80u

static enum fragment_status finish(struct fragment_result *res, enum fragment_status st,
				   uint32_t mtu)
{
	res->status = st;
	res->mtu = mtu;
	return st;
}

/* Builds the header of later fragments: the fixed 20 bytes plus the
 * options whose copied flag is set, padded with EOL to a multiple of 4.
 * Returns its length, or 0 when the options are malformed. */
static size_t later_header(const uint8_t *hdr, size_t hdr_len, uint8_t *out)
{
	memcpy(out, hdr, 20);
	size_t o = 20;
	size_t i = 20;
	while (i < hdr_len) {
		uint8_t type = hdr[i];
		if (type == IPOPT_EOL)
			break;
		if (type == IPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= hdr_len)
			return 0;
		size_t olen = hdr[i + 1];
		if (olen < 2 || i + olen > hdr_len)
			return 0;
		if (type & IPOPT_COPIED) {
			memcpy(out + o, hdr + i, olen);
			o += olen;
		}
		i += olen;
	}
	while (o % 4u != 0)
		out[o++] = IPOPT_EOL;
	out[0] = (uint8_t)(0x40u | (o / 4u));
	return o;
}

enum fragment_status fragment_ipv4(const uint8_t *pkt, size_t len, uint32_t mtu,
				   fragment_emit_fn emit, void *ctx, struct fragment_result *res)
{
	memset(res, 0, sizeof(*res));
	if (len < 20 || (pkt[0] >> 4) != 4)
		return finish(res, FRAGMENT_BAD_PACKET, 0);
	size_t hdr_len = (size_t)(pkt[0] & 0x0fu) * 4u;
	size_t total = load_be16(pkt + 2);
	if (hdr_len < 20 || total < hdr_len || total > len)
		return finish(res, FRAGMENT_BAD_PACKET, 0);
	if (total <= mtu)
		return finish(res, FRAGMENT_FITS, 0);
	uint16_t frag_field = load_be16(pkt + 6);
	if (frag_field & IPV4_FLAG_DF)
		return finish(res, FRAGMENT_NEED_FRAG_NEEDED, mtu);
	if (mtu < FRAGMENT_IPV4_MIN_MTU || mtu < hdr_len + 8u)
		return finish(res, FRAGMENT_BAD_MTU, mtu);

	uint8_t later[60];
	size_t later_len = later_header(pkt, hdr_len, later);
	if (later_len == 0)
		return finish(res, FRAGMENT_BAD_PACKET, 0);

	const uint8_t *payload = pkt + hdr_len;
	size_t payload_len = total - hdr_len;
	uint32_t base_units = frag_field & IPV4_OFFSET_MASK; /* the input may be a fragment */
	bool last_more = (frag_field & IPV4_FLAG_MF) != 0;
	if ((size_t)base_units * 8u + payload_len > 65535u)
		return finish(res, FRAGMENT_BAD_PACKET, 0);

	uint8_t h[60];
	size_t done = 0;
	while (done < payload_len) {
		bool first = done == 0;
		size_t hl = first ? hdr_len : later_len;
		memcpy(h, first ? pkt : later, hl);
		size_t room = ((size_t)mtu - hl) & ~(size_t)7u;
		size_t n = MIN(room, payload_len - done);
		bool more = done + n < payload_len || last_more;
		uint16_t ff = (uint16_t)(base_units + done / 8u);
		if (more)
			ff |= IPV4_FLAG_MF;
		store_be16(h + 2, (uint16_t)(hl + n));
		store_be16(h + 6, ff);
		store_be16(h + 10, 0);
		store_be16(h + 10, csum_buf(h, hl));
		if (!emit(ctx, h, hl, payload + done, n))
			return finish(res, FRAGMENT_EMIT_FAILED, 0);
		res->count++;
		done += n;
	}
	return finish(res, FRAGMENT_DONE, 0);
}

enum fragment_status fragment_ipv6(const uint8_t *pkt, size_t len, uint32_t mtu,
				   struct fragment_result *res)
{
	memset(res, 0, sizeof(*res));
	if (len < 40 || (pkt[0] >> 4) != 6)
		return finish(res, FRAGMENT_BAD_PACKET, 0);
	size_t total = 40u + load_be16(pkt + 4);
	if (total > len)
		return finish(res, FRAGMENT_BAD_PACKET, 0);
	if (total <= mtu)
		return finish(res, FRAGMENT_FITS, 0);
	if (mtu < FRAGMENT_IPV6_MIN_MTU)
		return finish(res, FRAGMENT_BAD_MTU, mtu);
	return finish(res, FRAGMENT_NEED_TOO_BIG, mtu);
}

enum fragment_status fragment_ipv6_refragment(const uint8_t *pkt, size_t len, uint32_t mtu,
					      uint32_t id, fragment_emit_fn emit, void *ctx,
					      struct fragment_result *res)
{
	enum fragment_status st = fragment_ipv6(pkt, len, mtu, res);
	if (st != FRAGMENT_NEED_TOO_BIG)
		return st;
	/* Only the fixed header is unfragmentable here: a datagram whose next
	 * header is an extension that must precede the Fragment header
	 * (hop-by-hop, routing, destination options) keeps the ICMP answer. */
	uint8_t next = pkt[6];
	if (next == 0 || next == 43 || next == 60 || next == 44)
		return st;
	size_t total = 40u + load_be16(pkt + 4);
	size_t chunk = ((size_t)mtu - 40u - 8u) & ~(size_t)7u;
	uint8_t hdr[48];
	memset(res, 0, sizeof(*res));
	for (size_t off = 40; off < total; off += chunk) {
		size_t n = total - off < chunk ? total - off : chunk;
		bool more = off + n < total;
		memcpy(hdr, pkt, 40);
		store_be16(hdr + 4, (uint16_t)(8u + n));
		hdr[6] = 44; /* Fragment */
		hdr[40] = next;
		hdr[41] = 0;
		store_be16(hdr + 42, (uint16_t)((off - 40u) | (more ? 1u : 0u)));
		store_be32(hdr + 44, id);
		if (!emit(ctx, hdr, sizeof(hdr), pkt + off, n))
			return finish(res, FRAGMENT_EMIT_FAILED, 0);
		res->count++;
	}
	return finish(res, FRAGMENT_DONE, 0);
}
