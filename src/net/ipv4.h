/* ipv4.h — the IPv4 header (RFC 791): parse with every header check, build,
 * and in-place TTL decrement.
 *
 * The datagram is total_length bytes: whatever follows it in a frame is link
 * padding. Options are walked for well-formedness and skipped, never acted
 * on. Never reads past len, never writes past cap. */
#ifndef NET_IPV4_H
#define NET_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/eth.h"

#define IPV4_HDR_MIN 20
#define IPV4_HDR_MAX 60
/* Offsets of fields within the header. */
#define IPV4_OFF_TTL 8
#define IPV4_OFF_PROTO 9
#define IPV4_OFF_CSUM 10
#define IPV4_OFF_SRC 12
#define IPV4_OFF_DST 16

#define IP_PROTO_HOPOPTS 0
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define IP_PROTO_ROUTING 43
#define IP_PROTO_FRAGMENT 44
#define IP_PROTO_ESP 50
#define IP_PROTO_AH 51
#define IP_PROTO_ICMPV6 58
#define IP_PROTO_NONE 59
#define IP_PROTO_DSTOPTS 60

struct ipv4_view {
	uint32_t hdr_len;   /* IHL * 4, options included */
	uint32_t total_len; /* the datagram; bytes past it are padding */
	uint8_t tos;
	uint8_t ttl;
	uint8_t proto;
	bool df;            /* don't fragment */
	bool mf;            /* more fragments */
	uint16_t id;
	uint32_t frag_off;  /* fragment offset in bytes */
};

/* p at the IPv4 header, len = bytes available (may include padding).
 * Checks, in order: PKT_TRUNCATED (< 20), PKT_BAD_VERSION, PKT_BAD_IHL (< 5),
 * PKT_TRUNCATED (header past len), PKT_BAD_CHECKSUM, PKT_BAD_LENGTH
 * (total_length < header), PKT_TRUNCATED (total_length > len),
 * PKT_BAD_OPTIONS, PKT_BAD_FRAGMENT (reserved flag set, offset + payload
 * > 65535, MF with a payload not a multiple of 8). */
enum pkt_result ipv4_parse(const uint8_t *p, size_t len, struct ipv4_view *out);

/* The same checks without the checksum and total-length-vs-len ones: for
 * the datagram quoted in an ICMP error, which is cut short by design.
 * Requires the whole header (with options) to be present. */
enum pkt_result ipv4_parse_quoted(const uint8_t *p, size_t len, struct ipv4_view *out);

struct ipv4_fields {
	uint8_t tos;
	uint16_t id;
	bool df;
	uint8_t ttl;
	uint8_t proto;
	uint8_t src[4];
	uint8_t dst[4];
	uint16_t payload_len; /* bytes after the 20-byte header */
};

/* Writes a 20-byte header (no options) with its checksum. Returns
 * IPV4_HDR_MIN, or 0 when cap is short or the datagram would exceed 65535. */
size_t ipv4_build(uint8_t *buf, size_t cap, const struct ipv4_fields *f);

/* Recomputes the header checksum of a header already validated by
 * ipv4_parse (hdr_len bytes). */
void ipv4_set_checksum(uint8_t *hdr, size_t hdr_len);

/* Decrements the TTL (which must be > 0) and updates the checksum
 * incrementally (RFC 1624). */
void ipv4_decrement_ttl(uint8_t *hdr);

#endif
