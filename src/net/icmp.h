/* icmp.h — ICMP for IPv4 (RFC 792) and ICMPv6 (RFC 4443, neighbour
 * discovery RFC 4861): message parse and build.
 *
 * A parsed error exposes where its quoted datagram starts; the quote itself
 * is parsed by packet_parse_embedded (packet.h). Builders quote per RFC 792
 * (IPv4 header + 8 bytes) and RFC 4443 §2.4(c) (as much as fits in the
 * IPv6 minimum MTU). Never reads past len, never writes past cap. */
#ifndef NET_ICMP_H
#define NET_ICMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/eth.h"

#define ICMP_HDR_LEN 8
#define ICMP_OFF_CSUM 2

/* ICMPv4 types and the codes we send. */
#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12
#define ICMP_CODE_NET_UNREACH 0
#define ICMP_CODE_HOST_UNREACH 1
#define ICMP_CODE_PROTO_UNREACH 2
#define ICMP_CODE_PORT_UNREACH 3
#define ICMP_CODE_FRAG_NEEDED 4
#define ICMP_CODE_ADMIN_PROHIBITED 13
#define ICMP_CODE_TTL_EXCEEDED 0

/* ICMPv6 types and codes. */
#define ICMP6_DEST_UNREACH 1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROBLEM 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ICMP6_ROUTER_SOLICIT 133
#define ICMP6_ROUTER_ADVERT 134
#define ICMP6_NEIGHBOR_SOLICIT 135
#define ICMP6_NEIGHBOR_ADVERT 136
#define ICMP6_REDIRECT 137
#define ICMP6_CODE_NO_ROUTE 0
#define ICMP6_CODE_ADMIN_PROHIBITED 1
#define ICMP6_CODE_ADDR_UNREACH 3
#define ICMP6_CODE_PORT_UNREACH 4
#define ICMP6_CODE_HOP_LIMIT 0

/* Neighbour advertisement flags as they sit in byte 4. */
#define ND_NA_ROUTER 0x80
#define ND_NA_SOLICITED 0x40
#define ND_NA_OVERRIDE 0x20
#define ND_OPT_SOURCE_LLADDR 1
#define ND_OPT_TARGET_LLADDR 2
#define ND_NS_LEN 24
#define ND_NA_LEN 24

/* The most of an invoking datagram an ICMPv6 error quotes (1280 - 40 - 8). */
#define ICMP6_QUOTE_MAX (1280 - 40 - ICMP_HDR_LEN)

struct icmp_view {
	uint8_t type;
	uint8_t code;
	bool is_query;          /* echo request/reply: id and seq are valid */
	bool is_error;          /* carries an invoking datagram at inner_off */
	bool is_nd;             /* ICMPv6 router/neighbour discovery, redirect */
	uint16_t id;
	uint16_t seq;
	uint32_t rest;          /* bytes 4..7: MTU (frag-needed low 16 bits,
				 * packet-too-big), pointer (param problem) */
	uint32_t inner_off;     /* from p: ICMP_HDR_LEN for errors */
	uint32_t inner_len;     /* quoted bytes */
	uint32_t nd_target_off; /* from p: NS/NA target address, else 0 */
	uint32_t nd_lladdr_off; /* from p: 6-byte address of the source (RS/NS) or
				 * target (NA) link-layer option, else 0 */
	uint8_t nd_flags;       /* NA: ND_NA_* */
};

/* p at the ICMP header, len = the ICMP message (IP payload).
 * PKT_TRUNCATED below 8 bytes, PKT_BAD_L4_CHECKSUM (when verify), PKT_BAD_ICMP
 * for an error that quotes less than a minimal header + 8 bytes. */
enum pkt_result icmp4_parse(const uint8_t *p, size_t len, bool verify, struct icmp_view *out);

/* The same for ICMPv6; src/dst are the IPv6 addresses for the
 * pseudo-header. PKT_BAD_ICMP also for neighbour discovery with a code other
 * than 0, a short body, a multicast target, or a malformed option list.
 * (The hop limit 255 rule is checked by packet_parse.) */
enum pkt_result icmp6_parse(const uint8_t *p, size_t len, const uint8_t src[16],
			    const uint8_t dst[16], bool verify, struct icmp_view *out);

/* Builders return the message length written, or 0 when cap is short.
 * data/orig may overlap buf (they are moved before the header is written). */

/* Echo request or reply with its checksum. */
size_t icmp4_build_echo(uint8_t *buf, size_t cap, uint8_t type, uint16_t id, uint16_t seq,
			const uint8_t *data, size_t data_len);

/* An error quoting orig (the offending IPv4 datagram, from its header): the
 * header with options + 8 bytes, or less when orig is shorter. rest is
 * bytes 4..7: the next-hop MTU for frag-needed, pointer << 24 for
 * param-problem, else 0. */
size_t icmp4_build_error(uint8_t *buf, size_t cap, uint8_t type, uint8_t code, uint32_t rest,
			 const uint8_t *orig, size_t orig_len);

size_t icmp6_build_echo(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
			uint8_t type, uint16_t id, uint16_t seq, const uint8_t *data,
			size_t data_len);

/* An error quoting min(orig_len, ICMP6_QUOTE_MAX) bytes of orig (from its
 * IPv6 header). rest: MTU for packet-too-big, pointer for param-problem. */
size_t icmp6_build_error(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
			 uint8_t type, uint8_t code, uint32_t rest, const uint8_t *orig,
			 size_t orig_len);

/* Neighbour advertisement for target with a target link-layer address
 * option (32 bytes). flags: ND_NA_*. */
size_t icmp6_build_na(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
		      const uint8_t target[16], uint8_t flags, const uint8_t lladdr[6]);

/* Neighbour solicitation for target with a source link-layer address
 * option (32 bytes). */
size_t icmp6_build_ns(uint8_t *buf, size_t cap, const uint8_t src[16], const uint8_t dst[16],
		      const uint8_t target[16], const uint8_t lladdr[6]);

/* The ICMPv6 checksum of a message (len >= 4), to store at offset
 * ICMP_OFF_CSUM; whatever the field holds now is ignored. */
uint16_t icmp6_checksum(const uint8_t *msg, size_t len, const uint8_t src[16],
			const uint8_t dst[16]);

#endif
