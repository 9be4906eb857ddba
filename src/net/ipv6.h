/* ipv6.h — the IPv6 header (RFC 8200) and its extension-header chain.
 *
 * The walk follows hop-by-hop (first only), routing (segments left must be
 * 0: we never act as an intermediate node), destination options, fragment
 * (one at most) and AH, for at most IPV6_MAX_EXT headers, and stops at the
 * first other protocol (the upper layer, ESP or No Next Header). Behind a
 * non-first fragment there is no upper-layer header. Never reads past len,
 * never writes past cap. */
#ifndef NET_IPV6_H
#define NET_IPV6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/eth.h"
#include "net/ipv4.h" /* IP_PROTO_* */

#define IPV6_HDR_LEN 40
#define IPV6_MAX_EXT 8
#define IPV6_MIN_MTU 1280
#define IPV6_FRAG_HDR_LEN 8
/* Offsets of fields within the fixed header. */
#define IPV6_OFF_PAYLOAD_LEN 4
#define IPV6_OFF_NEXT_HEADER 6
#define IPV6_OFF_HOP_LIMIT 7
#define IPV6_OFF_SRC 8
#define IPV6_OFF_DST 24

struct ipv6_view {
	uint32_t payload_len;  /* datagram = 40 + payload_len; the rest is padding */
	uint8_t traffic_class;
	uint32_t flow_label;
	uint8_t hop_limit;
	uint8_t proto;         /* where the walk stopped: upper layer, ESP, 59 */
	uint32_t l4_off;       /* from p: the upper-layer header (or fragment data) */
	uint32_t proto_nh_off; /* from p: the Next Header byte that holds proto */
	uint8_t ext_count;     /* extension headers walked */
	bool has_frag_hdr;
	uint32_t frag_hdr_off; /* from p, when has_frag_hdr */
	uint32_t frag_off;     /* bytes */
	bool mf;
	uint32_t frag_id;
};

/* p at the IPv6 header, len = bytes available (may include padding).
 * PKT_TRUNCATED (fixed header, payload or an extension header past the
 * data), PKT_BAD_VERSION, PKT_BAD_EXT_HEADER (hop-by-hop not first, routing
 * header with segments left), PKT_TOO_MANY_EXT, PKT_BAD_FRAGMENT (second
 * fragment header, offset + length > 65535, M set with a length not a
 * multiple of 8). */
enum pkt_result ipv6_parse(const uint8_t *p, size_t len, struct ipv6_view *out);

/* The same walk over a datagram quoted in an ICMPv6 error: the payload
 * length is not checked against len (the quote is cut short); the walk must
 * still end within len. */
enum pkt_result ipv6_parse_quoted(const uint8_t *p, size_t len, struct ipv6_view *out);

struct ipv6_fields {
	uint8_t traffic_class;
	uint32_t flow_label;
	uint8_t next_header;
	uint8_t hop_limit;
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t payload_len;
};

/* Writes the 40-byte fixed header. Returns IPV6_HDR_LEN, or 0 when cap is
 * short. */
size_t ipv6_build(uint8_t *buf, size_t cap, const struct ipv6_fields *f);

#endif
