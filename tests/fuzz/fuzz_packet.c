/* fuzz_packet.c — whole-frame parse: nothing crashes or reads out of bounds,
 * every offset the view reports lies within the frame, the embedded datagram
 * of an ICMP error parses within bounds too, and a frame whose L4 checksum
 * was completed by packet_fill_l4_checksum parses with verification on. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/packet.h"

#define CHECK(c)                \
	do {                    \
		if (!(c))       \
			abort(); \
	} while (0)

static void check_view(const struct packet *p, size_t len)
{
	if (p->family != PACKET_IPV4 && p->family != PACKET_IPV6)
		return;
	CHECK((size_t)p->l3_off + p->l3_len <= len);
	CHECK(p->l4_off >= p->l3_off);
	CHECK((size_t)p->l4_off + p->l4_len <= (size_t)p->l3_off + p->l3_len);
	CHECK((size_t)p->ttl_off < len && (size_t)p->proto_off < len);
	CHECK((size_t)p->src_off + 16 <= len + 12 && (size_t)p->dst_off + 4 <= len);
	if (p->l4_csum_off)
		CHECK((size_t)p->l4_csum_off + 2 <= (size_t)p->l4_off + p->l4_len);
	if (p->ip_csum_off)
		CHECK((size_t)p->ip_csum_off + 2 <= len);
	if (p->has_l4)
		CHECK(p->l4_hdr_len <= p->l4_len);
	if (p->icmp_is_error)
		CHECK((size_t)p->icmp_inner_off + p->icmp_inner_len <= len);
	if (p->nd_target_off)
		CHECK((size_t)p->nd_target_off + 16 <= len);
	if (p->nd_lladdr_off)
		CHECK((size_t)p->nd_lladdr_off + 6 <= len);
	if (p->is_fragment && !p->first_fragment)
		CHECK(!p->has_l4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[70000];
	struct packet p, inner;

	if (packet_parse(data, size, &p) == PKT_OK) {
		check_view(&p, size);
		if (p.icmp_is_error && packet_parse_embedded(data, size, &p, &inner) == PKT_OK) {
			check_view(&inner, size);
			CHECK(inner.l3_off == p.icmp_inner_off);
		}
		if (p.icmp_is_query && size <= sizeof(buf)) {
			size_t n = packet_build_echo_reply(buf, sizeof(buf), data, &p,
							   (const uint8_t[6]){2, 0, 0, 0, 0, 1});
			struct packet r;
			if (n)
				CHECK(packet_parse(buf, n, &r) == PKT_OK && r.icmp_is_query);
		}
		(void)packet_may_send_icmp_error(data, &p);
	}

	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	if (packet_parse_flags(buf, size, PACKET_SKIP_L4_CSUM, &p) != PKT_OK)
		return 0;
	check_view(&p, size);
	if (packet_fill_l4_checksum(buf, size, &p))
		CHECK(packet_parse(buf, size, &p) == PKT_OK);
	return 0;
}
