/* udp.h — the UDP header (RFC 768; RFC 8200 §8.1 for IPv6).
 *
 * Checksums need the IP pseudo-header and live in packet.h
 * (packet_l4_checksum). Never reads past len, never writes past cap. */
#ifndef NET_UDP_H
#define NET_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "net/eth.h"

#define UDP_HDR_LEN 8
#define UDP_OFF_CSUM 6

struct udp_view {
	uint16_t sport;
	uint16_t dport;
	uint16_t len;  /* the UDP length field: header + data */
	uint16_t csum; /* 0 = none (IPv4 only) */
};

/* p at the UDP header, len = the IP payload length. PKT_TRUNCATED below 8
 * bytes; PKT_BAD_L4_LENGTH when the length field is < 8 or > len. A length
 * field shorter than the IP payload is accepted: the rest is not UDP data. */
enum pkt_result udp_parse(const uint8_t *p, size_t len, struct udp_view *out);

/* Writes an 8-byte header with a zero checksum (fill it in with
 * packet_l4_checksum once the data is in place). Returns UDP_HDR_LEN, or 0
 * when cap is short or udp_len < 8. */
size_t udp_build(uint8_t *buf, size_t cap, uint16_t sport, uint16_t dport, uint16_t udp_len);

#endif
