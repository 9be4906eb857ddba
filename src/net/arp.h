/* arp.h — ARP for Ethernet/IPv4 (RFC 826): requests and replies only.
 *
 * Anything else (other hardware or protocol types, RARP, odd sizes) is
 * refused. Never reads past len. */
#ifndef NET_ARP_H
#define NET_ARP_H

#include <stddef.h>
#include <stdint.h>

#include "net/eth.h"

#define ARP_LEN 28
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

struct arp_view {
	uint16_t op;     /* ARP_OP_REQUEST or ARP_OP_REPLY */
	uint8_t sha[6];  /* sender hardware address */
	uint8_t spa[4];  /* sender protocol address */
	uint8_t tha[6];
	uint8_t tpa[4];
};

/* p points at the ARP header (after Ethernet). Trailing padding is allowed.
 * PKT_TRUNCATED when len < 28, PKT_UNSUPPORTED for other hw/proto types,
 * PKT_BAD_ARP for wrong address sizes or an operation other than 1/2. */
enum pkt_result arp_parse(const uint8_t *p, size_t len, struct arp_view *out);

/* Writes a 28-byte ARP message; returns ARP_LEN, or 0 when cap is short. */
size_t arp_build(uint8_t *buf, size_t cap, uint16_t op, const uint8_t sha[6],
		 const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4]);

#endif
