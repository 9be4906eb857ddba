/* nat.h — rewriting a parsed frame in place: addresses, ports/ICMP ids,
 * TTL, with incremental checksum updates (RFC 1624), and the translation
 * of ICMP errors whose quoted datagram belongs to a NATed connection.
 *
 * Works on the offsets packet_parse recorded and keeps the view in step
 * (p->src, p->dst, ports), so a later packet_fill_l4_checksum sees the new
 * values. Never reads or writes outside [l3_off, l3_off + l3_len). */
#ifndef FW_NAT_H
#define FW_NAT_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/packet.h"

enum nat_side {
	NAT_SRC,
	NAT_DST,
};

/* The port-like field of a parsed packet on one side: TCP/UDP ports; for
 * ICMP queries the identifier on both sides; 0 for others. */
uint16_t nat_get_port(const struct packet *p, enum nat_side side);

/* Sets the address and port of one side. l4_partial: the L4 checksum is a
 * csum_blank partial sum that the caller completes afterwards — then only
 * the IP header checksum is maintained here. */
void nat_rewrite(uint8_t *frame, struct packet *p, enum nat_side side, const struct ip_addr *addr,
		 uint16_t port, bool l4_partial);

/* Decrements TTL / hop limit. False (nothing changed) when it would reach
 * zero: the packet must not be forwarded (time exceeded). */
bool nat_decrement_ttl(uint8_t *frame, struct packet *p);

/* Rewrites the quoted datagram of an ICMP error (inner, from
 * packet_parse_embedded) on one side — the quote is a packet of the other
 * direction, so the caller names the inner side — and keeps the inner IP
 * and, when quoted, L4 checksums right. The outer ICMP checksum is left for
 * nat_finish_icmp_error. */
void nat_rewrite_inner(uint8_t *frame, struct packet *inner, enum nat_side side,
		       const struct ip_addr *addr, uint16_t port);

/* Recomputes the outer ICMP/ICMPv6 checksum after the quote changed. */
void nat_finish_icmp_error(uint8_t *frame, size_t len, const struct packet *outer);

#endif
