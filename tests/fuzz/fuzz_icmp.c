/* fuzz_icmp.c — ICMP and ICMPv6 messages and the datagram an error quotes.
 * The input is the ICMP message; it is wrapped in a valid Ethernet + IPv4
 * or IPv6 header (first byte picks) with a correct checksum so the fuzzer
 * spends its time in ICMP and embedded-header parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[14 + 40 + 2048];
	if (size < 1 || size - 1 > 2048)
		return 0;
	bool v6 = data[0] & 1;
	bool nd_hops = data[0] & 2;
	const uint8_t *msg = data + 1;
	size_t len = size - 1;

	struct icmp_view iv;
	(void)icmp4_parse(msg, len, false, &iv);
	(void)icmp6_parse(msg, len, frame, frame, false, &iv);

	struct packet_addrs a = {.eth_dst = {2, 0, 0, 0, 0, 2}, .eth_src = {2, 0, 0, 0, 0, 1}};
	static const uint8_t s4[4] = {10, 137, 0, 5}, d4[4] = {10, 137, 0, 1};
	static const uint8_t s6[16] = {0xfe, 0x80, [15] = 5}, d6[16] = {0xfe, 0x80, [15] = 1};
	a.src = v6 ? ip_from_v6(s6) : ip_from_v4(s4);
	a.dst = v6 ? ip_from_v6(d6) : ip_from_v4(d4);
	size_t hdr = 14 + (v6 ? 40 : 20);
	memcpy(frame + hdr, msg, len);
	if (v6) {
		struct ipv6_fields f = {.next_header = IP_PROTO_ICMPV6,
					.hop_limit = nd_hops ? 255 : 64,
					.payload_len = (uint16_t)len};
		memcpy(f.src, s6, 16);
		memcpy(f.dst, d6, 16);
		ipv6_build(frame + 14, 40, &f);
	} else {
		struct ipv4_fields f = {.ttl = 64, .proto = IP_PROTO_ICMP,
					.payload_len = (uint16_t)len};
		memcpy(f.src, s4, 4);
		memcpy(f.dst, d4, 4);
		ipv4_build(frame + 14, 20, &f);
	}
	eth_build(frame, 14, a.eth_dst, a.eth_src, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
	size_t flen = hdr + len;

	struct packet p, inner;
	if (packet_parse_flags(frame, flen, PACKET_SKIP_L4_CSUM, &p) != PKT_OK)
		return 0;
	if (p.icmp_is_error) {
		if (packet_parse_embedded(frame, flen, &p, &inner) == PKT_OK) {
			if ((size_t)inner.l4_off + inner.l4_len > flen || inner.l4_off < inner.l3_off)
				abort();
			if (inner.l4_csum_off && (size_t)inner.l4_csum_off + 2 > flen)
				abort();
		}
	}
	if (p.nd_lladdr_off && (size_t)p.nd_lladdr_off + 6 > flen)
		abort();
	/* Completing the checksum makes the frame verify. */
	if (packet_fill_l4_checksum(frame, flen, &p) && packet_parse(frame, flen, &p) != PKT_OK)
		abort();
	/* An error about this message is built within bounds and parses. */
	static uint8_t out[14 + 40 + 1280];
	size_t n = packet_build_icmp_error(out, sizeof(out), &a, v6 ? ICMP6_DEST_UNREACH : 3,
					   v6 ? 1 : 13, 0, frame + 14, flen - 14);
	if (n == 0 || n > (size_t)(v6 ? 14 + 1280 : 14 + 20 + 8 + 60 + 8))
		abort();
	if (packet_parse(out, n, &p) != PKT_OK || !p.icmp_is_error)
		abort();
	return 0;
}
