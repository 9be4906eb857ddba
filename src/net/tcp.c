/* tcp.c — TCP header parse/build (RFC 9293).
 * Pure functions: never reads past len, never writes past cap. */
#include "net/tcp.h"

#include "base/byteorder.h"

enum pkt_result tcp_parse(const uint8_t *p, size_t len, struct tcp_view *out)
{
	if (len < TCP_HDR_MIN)
		return PKT_TRUNCATED;
	uint32_t hdr_len = (uint32_t)(p[12] >> 4) * 4;
	if (hdr_len < TCP_HDR_MIN || hdr_len > len)
		return PKT_BAD_TCP_OFFSET;
	out->sport = load_be16(p);
	out->dport = load_be16(p + 2);
	out->seq = load_be32(p + 4);
	out->ack = load_be32(p + 8);
	out->hdr_len = hdr_len;
	out->flags = p[13];
	out->window = load_be16(p + 14);
	out->csum = load_be16(p + TCP_OFF_CSUM);
	out->urgent = load_be16(p + 18);
	return PKT_OK;
}

size_t tcp_build(uint8_t *buf, size_t cap, const struct tcp_fields *f)
{
	if (cap < TCP_HDR_MIN)
		return 0;
	store_be16(buf, f->sport);
	store_be16(buf + 2, f->dport);
	store_be32(buf + 4, f->seq);
	store_be32(buf + 8, f->ack);
	buf[12] = (TCP_HDR_MIN / 4) << 4;
	buf[13] = f->flags;
	store_be16(buf + 14, f->window);
	store_be16(buf + TCP_OFF_CSUM, 0);
	store_be16(buf + 18, 0);
	return TCP_HDR_MIN;
}
