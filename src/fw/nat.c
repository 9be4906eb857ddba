/* nat.c — in-place rewriting with incremental checksums.
 * The view p was produced by packet_parse over this very frame, so its
 * offsets are trusted; nothing here re-validates peer data. */
#include "fw/nat.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/libc.h"

static bool l4_has_pseudo_header(const struct packet *p)
{
	return p->protocol == IP_PROTO_TCP || p->protocol == IP_PROTO_UDP ||
	       p->protocol == IP_PROTO_ICMPV6;
}

static bool is_icmp(const struct packet *p)
{
	return p->protocol == IP_PROTO_ICMP || p->protocol == IP_PROTO_ICMPV6;
}

/* Offset of the port/id field of one side, 0 when the packet has none. */
static uint32_t port_off(const struct packet *p, enum nat_side side)
{
	if (!p->has_l4)
		return 0;
	if (p->protocol == IP_PROTO_TCP || p->protocol == IP_PROTO_UDP)
		return p->l4_off + (side == NAT_SRC ? 0 : 2);
	if (is_icmp(p) && p->icmp_is_query)
		return p->l4_off + 4;
	return 0;
}

uint16_t nat_get_port(const struct packet *p, enum nat_side side)
{
	if (!p->has_l4)
		return 0;
	if (p->protocol == IP_PROTO_TCP || p->protocol == IP_PROTO_UDP)
		return side == NAT_SRC ? p->src_port : p->dst_port;
	if (is_icmp(p) && p->icmp_is_query)
		return p->icmp_id;
	return 0;
}

/* Updates a checksum field for a change of len bytes (even) from old to new. */
static void fix_csum(uint8_t *field, const uint8_t *old_bytes, const uint8_t *new_bytes, size_t len,
		     bool udp)
{
	uint16_t c = load_be16(field);
	/* UDP over IPv4 may carry no checksum at all: leave it absent. */
	if (udp && c == 0)
		return;
	c = csum_update_bytes(c, old_bytes, new_bytes, len);
	if (udp && c == 0)
		c = 0xffff;
	store_be16(field, c);
}

/* The change of one address and port field of the (outer or quoted) packet
 * q: IP header checksum, L4 checksum when present and maintained. */
static void rewrite_fields(uint8_t *frame, struct packet *q, enum nat_side side,
			   const struct ip_addr *addr, uint16_t port, bool fix_l4)
{
	bool v4 = ip_is_v4(addr);
	size_t alen = v4 ? 4 : 16;
	const uint8_t *newa = v4 ? ip_v4_bytes(addr) : addr->b;
	uint32_t aoff = side == NAT_SRC ? q->src_off : q->dst_off;
	uint8_t olda[16];
	bool udp = q->protocol == IP_PROTO_UDP;
	bool l4 = fix_l4 && q->l4_csum_off != 0 && q->has_l4;

	memcpy(olda, frame + aoff, alen);
	if (memcmp(olda, newa, alen) != 0) {
		if (v4 && q->ip_csum_off)
			fix_csum(frame + q->ip_csum_off, olda, newa, 4, false);
		if (l4 && l4_has_pseudo_header(q))
			fix_csum(frame + q->l4_csum_off, olda, newa, alen, udp);
		memcpy(frame + aoff, newa, alen);
	}
	if (side == NAT_SRC)
		q->src = *addr;
	else
		q->dst = *addr;

	uint32_t poff = port_off(q, side);
	if (poff) {
		uint8_t oldp[2], newp[2];
		memcpy(oldp, frame + poff, 2);
		store_be16(newp, port);
		if (memcmp(oldp, newp, 2) != 0) {
			if (l4)
				fix_csum(frame + q->l4_csum_off, oldp, newp, 2, udp);
			memcpy(frame + poff, newp, 2);
		}
		if (q->protocol == IP_PROTO_TCP || q->protocol == IP_PROTO_UDP) {
			if (side == NAT_SRC)
				q->src_port = port;
			else
				q->dst_port = port;
		} else {
			q->icmp_id = port;
		}
	}
}

void nat_rewrite(uint8_t *frame, struct packet *p, enum nat_side side, const struct ip_addr *addr,
		 uint16_t port, bool l4_partial)
{
	rewrite_fields(frame, p, side, addr, port, !l4_partial);
}

bool nat_decrement_ttl(uint8_t *frame, struct packet *p)
{
	if (p->ttl <= 1)
		return false;
	if (p->family == PACKET_IPV4) {
		ipv4_decrement_ttl(frame + p->l3_off);
	} else {
		frame[p->ttl_off]--;
	}
	p->ttl--;
	return true;
}

void nat_rewrite_inner(uint8_t *frame, struct packet *inner, enum nat_side side,
		       const struct ip_addr *addr, uint16_t port)
{
	rewrite_fields(frame, inner, side, addr, port, true);
}

void nat_finish_icmp_error(uint8_t *frame, size_t len, const struct packet *outer)
{
	packet_fill_l4_checksum(frame, len, outer);
}
