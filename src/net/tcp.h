/* tcp.h — the TCP header (RFC 9293 §3.1).
 *
 * Options are bounded by the data offset and skipped, never interpreted.
 * Checksums need the IP pseudo-header and live in packet.h. Never reads
 * past len, never writes past cap. */
#ifndef NET_TCP_H
#define NET_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "net/eth.h"

#define TCP_HDR_MIN 20
#define TCP_OFF_CSUM 16

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

struct tcp_view {
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint32_t hdr_len;  /* data offset * 4; options are hdr_len - 20 bytes */
	uint8_t flags;     /* TCP_FIN ... TCP_CWR */
	uint16_t window;
	uint16_t csum;
	uint16_t urgent;
};

/* p at the TCP header, len = the segment length (IP payload).
 * PKT_TRUNCATED below 20 bytes; PKT_BAD_TCP_OFFSET when the data offset is
 * < 5 or the header would extend past len. */
enum pkt_result tcp_parse(const uint8_t *p, size_t len, struct tcp_view *out);

struct tcp_fields {
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t flags;
	uint16_t window;
};

/* Writes a 20-byte header without options and with a zero checksum (fill it
 * in with packet_l4_checksum). Returns TCP_HDR_MIN, or 0 when cap is short. */
size_t tcp_build(uint8_t *buf, size_t cap, const struct tcp_fields *f);

#endif
