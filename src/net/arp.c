/* arp.c — Ethernet/IPv4 ARP parse/build (RFC 826).
 * Pure functions: never reads past len, never writes past cap. */
#include "net/arp.h"

#include "base/byteorder.h"
#include "base/libc.h"

enum pkt_result arp_parse(const uint8_t *p, size_t len, struct arp_view *out)
{
	if (len < ARP_LEN)
		return PKT_TRUNCATED;
	/* htype 1 (Ethernet), ptype IPv4. */
	if (load_be16(p) != 1 || load_be16(p + 2) != ETHERTYPE_IPV4)
		return PKT_UNSUPPORTED;
	if (p[4] != 6 || p[5] != 4)
		return PKT_BAD_ARP;
	uint16_t op = load_be16(p + 6);
	if (op != ARP_OP_REQUEST && op != ARP_OP_REPLY)
		return PKT_BAD_ARP;
	out->op = op;
	memcpy(out->sha, p + 8, 6);
	memcpy(out->spa, p + 14, 4);
	memcpy(out->tha, p + 18, 6);
	memcpy(out->tpa, p + 24, 4);
	return PKT_OK;
}

size_t arp_build(uint8_t *buf, size_t cap, uint16_t op, const uint8_t sha[6],
		 const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4])
{
	if (cap < ARP_LEN)
		return 0;
	store_be16(buf, 1);
	store_be16(buf + 2, ETHERTYPE_IPV4);
	buf[4] = 6;
	buf[5] = 4;
	store_be16(buf + 6, op);
	memmove(buf + 8, sha, 6);
	memmove(buf + 14, spa, 4);
	memmove(buf + 18, tha, 6);
	memmove(buf + 24, tpa, 4);
	return ARP_LEN;
}
