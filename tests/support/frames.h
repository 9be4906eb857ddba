/* frames.h — hand-built test frames (Ethernet, ARP, IPv4/6, UDP, TCP,
 * ICMP echo) written byte by byte from the RFC layouts, independently of
 * src/net's builders, and a capturing transmit callback. Test code only. */
#ifndef TEST_FRAMES_H
#define TEST_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_CAP_MAX 64

struct tf_capture {
	size_t n;
	size_t len[TF_CAP_MAX];
	uint8_t frame[TF_CAP_MAX][2048];
};

/* A router_transmit_fn: keeps a copy of each frame in ctx (a tf_capture). */
bool tf_capture_tx(void *ctx, const uint8_t *frame, size_t len);

size_t tf_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type);
/* 20-byte IPv4 header with its checksum; frag = flags/offset field. */
void tf_ip4_hdr(uint8_t *h, uint8_t proto, const uint8_t src[4], const uint8_t dst[4],
		size_t payload, uint8_t ttl, uint16_t frag);
/* Stores the L4 checksum at l4 + csum_off (pseudo-header except ICMP). */
void tf_l4_csum4(uint8_t *l4, size_t len, uint8_t proto, const uint8_t src[4], const uint8_t dst[4],
		 size_t csum_off);
/* UDP/IPv4 with n payload bytes of 'x'. */
size_t tf_udp4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
	       const uint8_t dst[4], uint16_t sport, uint16_t dport, size_t n, uint8_t ttl);
size_t tf_tcp4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
	       const uint8_t dst[4], uint16_t sport, uint16_t dport, uint8_t flags);
/* ICMP echo (type 8) or echo reply (type 0) with 8 bytes of data. */
size_t tf_echo4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
		const uint8_t dst[4], uint8_t type, uint16_t id, uint8_t ttl);
size_t tf_arp_req(uint8_t *f, const uint8_t smac[6], const uint8_t spa[4], const uint8_t tpa[4]);
size_t tf_udp6(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[16],
	       const uint8_t dst[16], uint16_t sport, uint16_t dport, size_t n);

#endif
