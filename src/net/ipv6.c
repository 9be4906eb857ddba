/* ipv6.c — IPv6 header parse/build and extension-header walk (RFC 8200 §4,
 * RFC 5095 for routing type 0, RFC 7112 for first fragments).
 * Pure functions: never reads past len, never writes past cap. */
#include "net/ipv6.h"

#include "base/byteorder.h"
#include "base/libc.h"

static enum pkt_result parse(const uint8_t *p, size_t len, bool quoted, struct ipv6_view *out)
{
	if (len < IPV6_HDR_LEN)
		return PKT_TRUNCATED;
	if (p[0] >> 4 != 6)
		return PKT_BAD_VERSION;
	uint32_t payload_len = load_be16(p + IPV6_OFF_PAYLOAD_LEN);
	/* end: where the walk must stop. A quote ends where the data does. */
	size_t end = IPV6_HDR_LEN + (size_t)payload_len;
	if (end > len) {
		if (!quoted)
			return PKT_TRUNCATED;
		end = len;
	}

	out->payload_len = payload_len;
	out->traffic_class = (uint8_t)(load_be16(p) >> 4);
	out->flow_label = load_be32(p) & 0xfffff;
	out->hop_limit = p[IPV6_OFF_HOP_LIMIT];
	out->ext_count = 0;
	out->has_frag_hdr = false;
	out->frag_hdr_off = 0;
	out->frag_off = 0;
	out->mf = false;
	out->frag_id = 0;

	uint8_t nh = p[IPV6_OFF_NEXT_HEADER];
	uint32_t nh_off = IPV6_OFF_NEXT_HEADER;
	size_t off = IPV6_HDR_LEN;
	for (;;) {
		size_t hlen;
		switch (nh) {
		case IP_PROTO_HOPOPTS:
		case IP_PROTO_ROUTING:
		case IP_PROTO_DSTOPTS:
		case IP_PROTO_AH:
			if (nh == IP_PROTO_HOPOPTS && off != IPV6_HDR_LEN)
				return PKT_BAD_EXT_HEADER;
			if (off + 2 > end)
				return PKT_TRUNCATED;
			if (nh == IP_PROTO_AH)
				hlen = ((size_t)p[off + 1] + 2) * 4; /* RFC 4302 §2.2 */
			else
				hlen = ((size_t)p[off + 1] + 1) * 8;
			if (hlen > end - off)
				return PKT_TRUNCATED;
			/* RFC 8200 §4.4: a node that is not the last segment acts on
			 * the routing header; we never do, so refuse it. */
			if (nh == IP_PROTO_ROUTING && p[off + 3] != 0)
				return PKT_BAD_EXT_HEADER;
			break;
		case IP_PROTO_FRAGMENT: {
			if (out->has_frag_hdr)
				return PKT_BAD_FRAGMENT;
			if (off + IPV6_FRAG_HDR_LEN > end)
				return PKT_TRUNCATED;
			hlen = IPV6_FRAG_HDR_LEN;
			uint16_t fo = load_be16(p + off + 2);
			out->has_frag_hdr = true;
			out->frag_hdr_off = (uint32_t)off;
			out->frag_off = (uint32_t)(fo & 0xfff8);
			out->mf = (fo & 1) != 0;
			out->frag_id = load_be32(p + off + 4);
			if (!quoted) {
				size_t frag_len = end - off - IPV6_FRAG_HDR_LEN;
				if (out->frag_off + frag_len > 65535)
					return PKT_BAD_FRAGMENT;
				if (out->mf && (frag_len % 8 != 0 || frag_len == 0))
					return PKT_BAD_FRAGMENT;
			}
			break;
		}
		default:
			hlen = 0;
			break;
		}
		if (hlen == 0)
			break;
		if (out->ext_count == IPV6_MAX_EXT)
			return PKT_TOO_MANY_EXT;
		out->ext_count++;
		nh_off = (uint32_t)off;
		nh = p[off];
		off += hlen;
		/* Behind a non-first fragment lies data, not headers. */
		if (out->has_frag_hdr && out->frag_off != 0 && nh_off == out->frag_hdr_off)
			break;
	}
	out->proto = nh;
	out->proto_nh_off = nh_off;
	out->l4_off = (uint32_t)off;
	return PKT_OK;
}

enum pkt_result ipv6_parse(const uint8_t *p, size_t len, struct ipv6_view *out)
{
	return parse(p, len, false, out);
}

enum pkt_result ipv6_parse_quoted(const uint8_t *p, size_t len, struct ipv6_view *out)
{
	return parse(p, len, true, out);
}

size_t ipv6_build(uint8_t *buf, size_t cap, const struct ipv6_fields *f)
{
	if (cap < IPV6_HDR_LEN)
		return 0;
	store_be32(buf, (uint32_t)6 << 28 | (uint32_t)f->traffic_class << 20 |
				(f->flow_label & 0xfffff));
	store_be16(buf + IPV6_OFF_PAYLOAD_LEN, f->payload_len);
	buf[IPV6_OFF_NEXT_HEADER] = f->next_header;
	buf[IPV6_OFF_HOP_LIMIT] = f->hop_limit;
	memmove(buf + IPV6_OFF_SRC, f->src, 16);
	memmove(buf + IPV6_OFF_DST, f->dst, 16);
	return IPV6_HDR_LEN;
}
