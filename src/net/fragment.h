/* fragment.h — output fragmentation decisions and IPv4 fragmentation.
 *
 * Given a whole IP datagram about to leave on a link with a given MTU, says
 * whether it fits, splits an IPv4 datagram without DF into fragments
 * (RFC 791 §3.2: identification kept, offsets in 8-byte units, MF on all but
 * the last, only options with the copied flag in later fragments, header
 * checksum recomputed), or tells the caller which ICMP error to send: IPv4
 * with DF gets "fragmentation needed" (RFC 1191), IPv6 is never fragmented
 * by a router and gets "packet too big" (RFC 8200 §5). Building the ICMP
 * message is the icmp module's job. Never writes into the input datagram,
 * never allocates. */
#ifndef NET_FRAGMENT_H
#define NET_FRAGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 791: every IPv4 link carries 68 bytes; RFC 8200 §5: IPv6 1280. */
#define FRAGMENT_IPV4_MIN_MTU 68u
#define FRAGMENT_IPV6_MIN_MTU 1280u

enum fragment_status {
	FRAGMENT_FITS = 0,         /* send the datagram as it is */
	FRAGMENT_DONE,             /* fragments were emitted; do not send the original */
	FRAGMENT_NEED_FRAG_NEEDED, /* IPv4 with DF: ICMP type 3 code 4, next-hop MTU = mtu */
	FRAGMENT_NEED_TOO_BIG,     /* IPv6: ICMPv6 packet too big, MTU = mtu */
	FRAGMENT_BAD_PACKET,       /* not a well-formed datagram (version, lengths, options) */
	FRAGMENT_BAD_MTU,          /* MTU below the family minimum or the header does not fit */
	FRAGMENT_EMIT_FAILED,      /* the callback refused a fragment; count says how many went */
};

struct fragment_result {
	enum fragment_status status;
	uint32_t mtu;  /* for the ICMP error: the MTU to report */
	size_t count;  /* fragments emitted */
};

/* Receives one fragment as a header and a payload to be sent back to back
 * (the device copies both into its ring; nothing is assembled here). Both
 * pointers are valid during the call only. Returns false to stop (ring
 * full); the fragments already emitted stay emitted. */
typedef bool (*fragment_emit_fn)(void *ctx, const uint8_t *hdr, size_t hdr_len,
				 const uint8_t *payload, size_t payload_len);

/* IPv4: pkt is the datagram (len bytes; bytes past its Total Length are
 * ignored). The input may itself be a fragment: offsets and MF carry over.
 * Returns the status also stored in res. */
enum fragment_status fragment_ipv4(const uint8_t *pkt, size_t len, uint32_t mtu,
				   fragment_emit_fn emit, void *ctx, struct fragment_result *res);

/* IPv6: FRAGMENT_FITS or FRAGMENT_NEED_TOO_BIG (with res->mtu); the
 * datagram length is 40 + Payload Length. */
enum fragment_status fragment_ipv6(const uint8_t *pkt, size_t len, uint32_t mtu,
				   struct fragment_result *res);

/* IPv6 datagrams the firewall itself reassembled (they arrived fragmented
 * by their source) leave fragmented again, as Linux's netfilter does after
 * defragmentation: fixed header + Fragment header (identification id) +
 * 8-byte-aligned pieces that fit mtu. Datagrams with extension headers
 * that must stay unfragmentable, and any that fit, are left to the
 * ordinary decision (FRAGMENT_FITS / FRAGMENT_NEED_TOO_BIG). */
enum fragment_status fragment_ipv6_refragment(const uint8_t *pkt, size_t len, uint32_t mtu,
					      uint32_t id, fragment_emit_fn emit, void *ctx,
					      struct fragment_result *res);

#endif
