/* udp.c — UDP header parse/build (RFC 768).
 * Pure functions: never reads past len, never writes past cap. */
#include "net/udp.h"

#include "base/byteorder.h"

enum pkt_result udp_parse(const uint8_t *p, size_t len, struct udp_view *out)
{
	if (len < UDP_HDR_LEN)
		return PKT_TRUNCATED;
	uint16_t ulen = load_be16(p + 4);
	if (ulen < UDP_HDR_LEN || ulen > len)
		return PKT_BAD_L4_LENGTH;
	out->sport = load_be16(p);
	out->dport = load_be16(p + 2);
	out->len = ulen;
	out->csum = load_be16(p + UDP_OFF_CSUM);
	return PKT_OK;
}

size_t udp_build(uint8_t *buf, size_t cap, uint16_t sport, uint16_t dport, uint16_t udp_len)
{
	if (cap < UDP_HDR_LEN || udp_len < UDP_HDR_LEN)
		return 0;
	store_be16(buf, sport);
	store_be16(buf + 2, dport);
	store_be16(buf + 4, udp_len);
	store_be16(buf + UDP_OFF_CSUM, 0);
	return UDP_HDR_LEN;
}
