/* eth.h — Ethernet II framing (IEEE 802.3 with at most one 802.1Q tag), and
 * the one result code every wire-format parser in src/net returns.
 *
 * The result enum lives here because every frame starts here. Parsers never
 * read past the length they are given and never allocate. */
#ifndef NET_ETH_H
#define NET_ETH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a frame, datagram or message was refused (0 = accepted). */
enum pkt_result {
	PKT_OK = 0,
	PKT_TRUNCATED,        /* a header or a declared length runs past the data */
	PKT_UNSUPPORTED,      /* well-formed but not ours: ethertype, QinQ, ARP hw type */
	PKT_BAD_ARP,          /* ARP with wrong sizes or operation */
	PKT_BAD_VERSION,      /* IP version nibble does not match the ethertype */
	PKT_BAD_IHL,          /* IPv4 IHL < 5 */
	PKT_BAD_LENGTH,       /* IP length fields contradict each other */
	PKT_BAD_CHECKSUM,     /* IPv4 header checksum */
	PKT_BAD_OPTIONS,      /* malformed IPv4 option list */
	PKT_BAD_FRAGMENT,     /* reserved flag, offset overflow, MF with odd length, 2nd frag hdr */
	PKT_BAD_EXT_HEADER,   /* IPv6: hop-by-hop not first, routing header with segments left */
	PKT_TOO_MANY_EXT,     /* IPv6: more extension headers than NET_IPV6_MAX_EXT */
	PKT_BAD_L4_LENGTH,    /* UDP length / ICMP message shorter than its header */
	PKT_BAD_L4_CHECKSUM,  /* TCP, UDP, ICMP or ICMPv6 checksum */
	PKT_BAD_TCP_OFFSET,   /* TCP data offset < 5 or past the segment */
	PKT_BAD_ICMP,         /* ICMP: bad embedded datagram, ND hop limit/code/options */
	PKT_BAD_ADDRESS,      /* IPv6 with an IPv4-mapped source or destination */
	PKT_RESULT_COUNT
};

/* A short constant name for log lines ("truncated", "bad ihl", ...). */
const char *pkt_result_str(enum pkt_result r);

#define ETH_ADDR_LEN 6
#define ETH_HDR_LEN 14
#define ETH_VLAN_TAG_LEN 4

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_IPV6 0x86dd

struct eth_view {
	uint16_t ethertype; /* inner ethertype after a skipped 802.1Q tag */
	uint16_t vlan_tci;  /* valid when has_vlan */
	bool has_vlan;
	uint32_t l3_off;    /* 14, or 18 after a tag */
};

/* Destination MAC at frame[0..5], source at frame[6..11].
 * Returns PKT_TRUNCATED or PKT_UNSUPPORTED (802.3 length field, stacked
 * tags) with the view filled as far as it could be. */
enum pkt_result eth_parse(const uint8_t *frame, size_t len, struct eth_view *out);

/* Writes an untagged header; returns ETH_HDR_LEN, or 0 when cap is short. */
size_t eth_build(uint8_t *buf, size_t cap, const uint8_t dst[ETH_ADDR_LEN],
		 const uint8_t src[ETH_ADDR_LEN], uint16_t ethertype);

#endif
