/* packet.h — one parse of a whole Ethernet frame down to L4, the view the
 * router, conntrack and NAT work from, plus frame-level builders and L4
 * checksum completion.
 *
 * packet_parse validates every header once (lengths, versions, IPv4 header
 * checksum, fragment fields, IPv6 extension chain, no IPv4-mapped address
 * inside IPv6 (they would alias IPv4 addresses in struct ip_addr), L4
 * lengths and, unless
 * told to skip them, L4 checksums) and records offsets into the frame, so
 * later stages rewrite fields in place without re-parsing. It never reads
 * past len, never allocates and never logs: the caller logs the drop with
 * pkt_result_str() and its own context (interface, client). */
#ifndef NET_PACKET_H
#define NET_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/arp.h"
#include "net/eth.h"
#include "net/icmp.h"
#include "net/ipv4.h"
#include "net/ipv6.h"
#include "net/tcp.h"
#include "net/udp.h"

enum packet_family {
	PACKET_NONE = 0,
	PACKET_ARP = 1,
	PACKET_IPV4 = 4,
	PACKET_IPV6 = 6,
};

/* packet_parse_flags: the device flagged the frame csum_blank (Xen
 * NETTXF_csum_blank): its L4 checksum is partial, do not verify it (complete
 * it later with packet_fill_l4_checksum). */
#define PACKET_SKIP_L4_CSUM 0x1u

/* All offsets count from the start of the frame. */
struct packet {
	/* Ethernet: destination MAC at frame[0], source at frame[6]. */
	uint16_t ethertype;    /* after a skipped 802.1Q tag */
	bool has_vlan;
	uint16_t vlan_tci;
	uint8_t family;        /* enum packet_family */
	uint32_t l3_off;

	/* ARP (family PACKET_ARP). */
	struct arp_view arp;

	/* IP (family PACKET_IPV4 / PACKET_IPV6). */
	uint32_t l3_len;       /* the datagram; frame bytes past l3_off + l3_len are padding */
	uint32_t l3_hdr_len;   /* IPv4 header with options / IPv6 header + extension headers */
	struct ip_addr src;    /* IPv4 as v4-mapped */
	struct ip_addr dst;
	uint32_t src_off;      /* the address bytes (4 or 16) in the frame */
	uint32_t dst_off;
	uint8_t protocol;      /* IPv4 protocol / IPv6 final next header (IP_PROTO_*) */
	uint32_t proto_off;    /* the byte holding protocol */
	uint8_t tos;           /* IPv4 TOS / IPv6 traffic class */
	uint8_t ttl;           /* TTL / hop limit */
	uint32_t ttl_off;
	uint32_t ip_csum_off;  /* IPv4 header checksum field; 0 for IPv6 */
	uint8_t ext_count;     /* IPv6 extension headers walked */

	/* Fragments: is_fragment when MF is set or the offset is not 0 (an IPv6
	 * atomic fragment, offset 0 without M, is not a fragment). */
	bool is_fragment;
	bool first_fragment;   /* is_fragment and offset 0 */
	bool more_fragments;
	bool dont_fragment;    /* IPv4 DF */
	uint32_t frag_offset;  /* bytes */
	uint32_t frag_id;      /* IPv4 id (16 bits) / IPv6 identification */
	uint32_t frag_hdr_off; /* IPv6 fragment header, 0 if none */

	/* L4: the upper-layer bytes (for a non-first fragment, its data). */
	uint32_t l4_off;
	uint32_t l4_len;       /* UDP: the UDP length (the IP payload may be longer) */
	/* has_l4: a TCP/UDP/ICMP/ICMPv6 header was parsed and the fields below
	 * hold. Never for non-first fragments; for a first fragment when the
	 * header fits in it (its length and checksum cannot be checked). */
	bool has_l4;
	uint32_t l4_hdr_len;   /* TCP with options, UDP 8, ICMP 8 */
	uint32_t l4_csum_off;  /* 0 when there is none (other protocols) */
	uint16_t src_port;     /* TCP/UDP */
	uint16_t dst_port;
	uint8_t tcp_flags;     /* TCP_* */
	uint32_t tcp_seq;
	uint32_t tcp_ack;
	uint8_t icmp_type;     /* ICMP or ICMPv6 */
	uint8_t icmp_code;
	bool icmp_is_query;    /* echo request/reply: icmp_id, icmp_seq valid */
	bool icmp_is_error;    /* quotes a datagram at icmp_inner_off */
	bool icmp_is_nd;       /* ICMPv6 RS/RA/NS/NA/redirect (hop limit was 255) */
	uint16_t icmp_id;
	uint16_t icmp_seq;
	uint32_t icmp_rest;    /* bytes 4..7: MTU, pointer */
	uint32_t icmp_inner_off;
	uint32_t icmp_inner_len;
	uint32_t nd_target_off;  /* NS/NA target address, 0 if none */
	uint32_t nd_lladdr_off;  /* 6-byte link-layer address option value, 0 if none */
	uint8_t nd_flags;        /* NA: ND_NA_* */
};

/* Parses and verifies everything, L4 checksums included. */
enum pkt_result packet_parse(const uint8_t *frame, size_t len, struct packet *out);

/* The same with PACKET_* flags. On an error the view is filled as far as the
 * parse got (never to be trusted beyond family and l3_off). */
enum pkt_result packet_parse_flags(const uint8_t *frame, size_t len, uint32_t flags,
				   struct packet *out);

/* Parses the datagram quoted by an ICMP/ICMPv6 error (outer->icmp_is_error)
 * into inner, offsets still counting from the frame start, so NAT can
 * rewrite the quote in place. The quote is short by design: no length or
 * checksum is checked against the original, l3_len/l4_len are the bytes
 * present, and inner->l4_csum_off is 0 when the checksum field was not
 * quoted. Requires the quoted IP header, of the outer family, and (unless it
 * is a non-first fragment) 8 bytes of its L4 header: else PKT_BAD_ICMP or the
 * IP parser's code. */
enum pkt_result packet_parse_embedded(const uint8_t *frame, size_t len,
				      const struct packet *outer, struct packet *inner);

/* The L4 checksum for TCP/UDP/ICMP/ICMPv6 over l4[0..len), whatever the
 * checksum field holds now. The family follows src (IPv4-mapped = IPv4,
 * which is unambiguous because packet_parse refuses IPv4-mapped addresses
 * inside IPv6); src/dst make the pseudo-header (ICMPv4 has none). UDP's 0 is
 * sent as 0xffff. Returns 0 for other protocols, a protocol of the other
 * family, or when len does not cover the checksum field. */
uint16_t packet_l4_checksum(const struct ip_addr *src, const struct ip_addr *dst, uint8_t proto,
			    const uint8_t *l4, size_t len);

/* Recomputes and stores the L4 checksum of a parsed frame (after NAT, or to
 * complete a csum_blank frame). False, doing nothing, when the frame has no
 * L4 checksum to fill (other protocol, fragment, no L4 header). */
bool packet_fill_l4_checksum(uint8_t *frame, size_t len, const struct packet *p);

/* Addressing of a frame we originate; the family follows src (an IPv6
 * packet never carries IPv4-mapped addresses: packet_parse refuses them). */
struct packet_addrs {
	uint8_t eth_dst[6];
	uint8_t eth_src[6];
	struct ip_addr src;
	struct ip_addr dst;
};

#define PACKET_TTL 64

/* Ethernet + IPv4/IPv6 (TTL/hop limit PACKET_TTL) + an ICMP error of the
 * given type/code/rest (icmp.h) quoting the datagram orig (from its IP
 * header): header + 8 bytes for IPv4, as much as fits in 1280 bytes for
 * IPv6. orig may lie in buf. Returns the frame length, 0 when cap is short. */
size_t packet_build_icmp_error(uint8_t *buf, size_t cap, const struct packet_addrs *a,
			       uint8_t type, uint8_t code, uint32_t rest, const uint8_t *orig,
			       size_t orig_len);

/* The echo reply to the parsed echo request req/p (ICMP or ICMPv6, with
 * icmp_is_query and an echo-request type): addresses swapped, same id, seq
 * and data, from eth_src. buf may be req itself. Returns the frame length,
 * 0 when cap is short or p is not an echo request. */
size_t packet_build_echo_reply(uint8_t *buf, size_t cap, const uint8_t *req,
			       const struct packet *p, const uint8_t eth_src[6]);

/* True when RFC 1122 §3.2.2 / RFC 4443 §2.4(e) allow an ICMP error about
 * this frame: not about an ICMP error, nor a non-first fragment, nor a
 * multicast/broadcast destination (link or IP), nor from an unspecified or
 * multicast source. */
bool packet_may_send_icmp_error(const uint8_t *frame, const struct packet *p);

#endif
