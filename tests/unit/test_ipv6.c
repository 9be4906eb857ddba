/* test_ipv6.c — IPv6 fixed header and extension-header walk: chains at and
 * over the bound, hop-by-hop placement, routing, fragment headers, AH,
 * truncation at every length. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/ipv6.h"

/* A datagram under construction, laid out by hand per RFC 8200 §3/§4. */
struct dg {
	uint8_t b[2048];
	size_t len;
	size_t nh_at; /* where the next Next Header value goes */
};

static void dg_start(struct dg *d)
{
	memset(d, 0, sizeof(*d));
	d->b[0] = 0x60;
	d->b[7] = 64;
	d->b[8] = 0xfe;
	d->b[9] = 0x80;
	d->b[23] = 1;
	d->b[24] = 0x20;
	d->b[25] = 0x01;
	d->b[39] = 2;
	d->len = 40;
	d->nh_at = 6;
}

/* Generic TLV-style extension header of (ext_len + 1) * 8 bytes. */
static void dg_ext(struct dg *d, uint8_t type, uint8_t ext_len)
{
	d->b[d->nh_at] = type;
	d->nh_at = d->len;
	d->b[d->len + 1] = ext_len;
	if (type == IP_PROTO_ROUTING)
		d->b[d->len + 2] = 2; /* routing type, segments left 0 */
	d->len += ((size_t)ext_len + 1) * 8;
}

static void dg_ah(struct dg *d, uint8_t payload_len)
{
	d->b[d->nh_at] = IP_PROTO_AH;
	d->nh_at = d->len;
	d->b[d->len + 1] = payload_len;
	d->len += ((size_t)payload_len + 2) * 4;
}

static void dg_frag(struct dg *d, uint16_t offset_bytes, int more, uint32_t id)
{
	d->b[d->nh_at] = IP_PROTO_FRAGMENT;
	d->nh_at = d->len;
	uint16_t fo = (uint16_t)(offset_bytes | (more ? 1 : 0));
	d->b[d->len + 2] = (uint8_t)(fo >> 8);
	d->b[d->len + 3] = (uint8_t)fo;
	d->b[d->len + 4] = (uint8_t)(id >> 24);
	d->b[d->len + 5] = (uint8_t)(id >> 16);
	d->b[d->len + 6] = (uint8_t)(id >> 8);
	d->b[d->len + 7] = (uint8_t)id;
	d->len += 8;
}

static void dg_finish(struct dg *d, uint8_t proto, size_t payload)
{
	d->b[d->nh_at] = proto;
	d->len += payload;
	size_t pl = d->len - 40;
	d->b[4] = (uint8_t)(pl >> 8);
	d->b[5] = (uint8_t)pl;
}

static enum pkt_result parse_exact(const struct dg *d, size_t n, struct ipv6_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, d->b, n);
	enum pkt_result r = ipv6_parse(c, n, v);
	free(c);
	return r;
}

static void test_plain(void **state)
{
	(void)state;
	struct dg d;
	dg_start(&d);
	d.b[0] = 0x6a; /* traffic class 0xa5, flow 0x12345 */
	d.b[1] = 0x51;
	d.b[2] = 0x23;
	d.b[3] = 0x45;
	dg_finish(&d, IP_PROTO_UDP, 8);
	struct ipv6_view v;
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_int_equal(v.proto, IP_PROTO_UDP);
	assert_int_equal(v.l4_off, 40);
	assert_int_equal(v.proto_nh_off, 6);
	assert_int_equal(v.payload_len, 8);
	assert_int_equal(v.hop_limit, 64);
	assert_int_equal(v.traffic_class, 0xa5);
	assert_int_equal(v.flow_label, 0x12345);
	assert_int_equal(v.ext_count, 0);
	assert_false(v.has_frag_hdr);
	/* Padding after the datagram is fine. */
	assert_int_equal(parse_exact(&d, d.len + 10, &v), PKT_OK);
	for (size_t n = 0; n < d.len; n++)
		assert_int_equal(parse_exact(&d, n, &v), PKT_TRUNCATED);
	d.b[0] = 0x40;
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_VERSION);
}

static void test_full_chain(void **state)
{
	(void)state;
	struct dg d;
	dg_start(&d);
	dg_ext(&d, IP_PROTO_HOPOPTS, 0);
	dg_ext(&d, IP_PROTO_DSTOPTS, 1);
	dg_ext(&d, IP_PROTO_ROUTING, 0);
	dg_frag(&d, 0, 1, 0xdeadbeef);
	dg_ah(&d, 4);
	dg_ext(&d, IP_PROTO_DSTOPTS, 0);
	size_t l4 = d.len;
	size_t last_nh = d.nh_at;
	dg_finish(&d, IP_PROTO_TCP, 24);
	struct ipv6_view v;
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_int_equal(v.proto, IP_PROTO_TCP);
	assert_int_equal(v.l4_off, l4);
	assert_int_equal(v.proto_nh_off, last_nh);
	assert_int_equal(v.ext_count, 6);
	assert_true(v.has_frag_hdr);
	assert_true(v.mf);
	assert_int_equal(v.frag_off, 0);
	assert_int_equal(v.frag_id, 0xdeadbeef);
	assert_int_equal(v.frag_hdr_off, 40 + 8 + 16 + 8);
	for (size_t n = 0; n < d.len; n++)
		assert_int_not_equal(parse_exact(&d, n, &v), PKT_OK);
}

static void test_bound(void **state)
{
	(void)state;
	struct dg d;
	struct ipv6_view v;
	dg_start(&d);
	for (int i = 0; i < IPV6_MAX_EXT; i++)
		dg_ext(&d, IP_PROTO_DSTOPTS, 0);
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_int_equal(v.ext_count, IPV6_MAX_EXT);

	dg_start(&d);
	for (int i = 0; i < IPV6_MAX_EXT + 1; i++)
		dg_ext(&d, IP_PROTO_DSTOPTS, 0);
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_TOO_MANY_EXT);

	/* A long chain of large headers still stops at the bound. */
	dg_start(&d);
	for (int i = 0; i < 12; i++)
		dg_ext(&d, IP_PROTO_DSTOPTS, 15);
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_TOO_MANY_EXT);
}

static void test_hop_by_hop_placement(void **state)
{
	(void)state;
	struct dg d;
	struct ipv6_view v;
	dg_start(&d);
	dg_ext(&d, IP_PROTO_DSTOPTS, 0);
	dg_ext(&d, IP_PROTO_HOPOPTS, 0);
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_EXT_HEADER);

	dg_start(&d);
	dg_ext(&d, IP_PROTO_HOPOPTS, 0);
	dg_ext(&d, IP_PROTO_HOPOPTS, 0);
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_EXT_HEADER);
}

static void test_routing_segments_left(void **state)
{
	(void)state;
	struct dg d;
	struct ipv6_view v;
	dg_start(&d);
	dg_ext(&d, IP_PROTO_ROUTING, 2);
	d.b[40 + 3] = 1; /* segments left */
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_EXT_HEADER);
}

static void test_fragments(void **state)
{
	(void)state;
	struct dg d;
	struct ipv6_view v;

	/* Non-first fragment: the walk stops behind the fragment header even
	 * if the data looks like another extension header. */
	dg_start(&d);
	dg_frag(&d, 1448, 1, 7);
	size_t data = d.len;
	dg_finish(&d, IP_PROTO_HOPOPTS, 16);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_int_equal(v.proto, IP_PROTO_HOPOPTS);
	assert_int_equal(v.l4_off, data);
	assert_int_equal(v.frag_off, 1448);
	assert_true(v.mf);

	/* Last fragment with an odd length. */
	dg_start(&d);
	dg_frag(&d, 8, 0, 7);
	dg_finish(&d, IP_PROTO_UDP, 5);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_false(v.mf);

	/* M set with a length not a multiple of 8. */
	dg_start(&d);
	dg_frag(&d, 0, 1, 7);
	dg_finish(&d, IP_PROTO_UDP, 12);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_FRAGMENT);

	/* Two fragment headers. */
	dg_start(&d);
	dg_frag(&d, 0, 1, 7);
	dg_frag(&d, 0, 1, 7);
	dg_finish(&d, IP_PROTO_UDP, 16);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_FRAGMENT);

	/* Offset + length beyond 65535. */
	dg_start(&d);
	dg_frag(&d, 65528, 0, 7);
	dg_finish(&d, IP_PROTO_UDP, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_BAD_FRAGMENT);

	/* Atomic fragment (offset 0, no M): walked through. */
	dg_start(&d);
	dg_frag(&d, 0, 0, 9);
	dg_finish(&d, IP_PROTO_ICMPV6, 8);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_true(v.has_frag_hdr);
	assert_int_equal(v.proto, IP_PROTO_ICMPV6);
	assert_int_equal(v.l4_off, 48);
}

static void test_stops_at_esp_and_none(void **state)
{
	(void)state;
	struct dg d;
	struct ipv6_view v;
	dg_start(&d);
	dg_ext(&d, IP_PROTO_DSTOPTS, 0);
	dg_finish(&d, IP_PROTO_ESP, 20);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_int_equal(v.proto, IP_PROTO_ESP);
	dg_start(&d);
	dg_finish(&d, IP_PROTO_NONE, 0);
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_OK);
	assert_int_equal(v.proto, IP_PROTO_NONE);
	assert_int_equal(v.l4_off, 40);
}

static void test_length_lies(void **state)
{
	(void)state;
	struct dg d;
	struct ipv6_view v;
	dg_start(&d);
	dg_ext(&d, IP_PROTO_DSTOPTS, 3); /* 32 bytes claimed */
	dg_finish(&d, IP_PROTO_UDP, 0);
	d.b[5] = 16; /* payload length says only 16 */
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_TRUNCATED);
	d.b[5] = 40;
	assert_int_equal(parse_exact(&d, d.len, &v), PKT_TRUNCATED);
	/* Quoted: the payload length may exceed the data, the walk may not. */
	d.b[5] = 200;
	assert_int_equal(ipv6_parse_quoted(d.b, d.len, &v), PKT_OK);
	assert_int_equal(ipv6_parse_quoted(d.b, d.len - 1, &v), PKT_TRUNCATED);
}

static void test_build(void **state)
{
	(void)state;
	uint8_t buf[48] = {0};
	struct ipv6_fields f = {
		.traffic_class = 0xb8, .flow_label = 0xabcde, .next_header = IP_PROTO_UDP,
		.hop_limit = 255, .payload_len = 8,
	};
	f.src[0] = 0xfe;
	f.dst[15] = 9;
	assert_int_equal(ipv6_build(buf, 39, &f), 0);
	assert_int_equal(ipv6_build(buf, sizeof(buf), &f), 40);
	/* RFC 8200 §3 layout, checked byte by byte. */
	assert_int_equal(buf[0], 0x6b);
	assert_int_equal(buf[1], 0x8a);
	assert_int_equal(buf[2], 0xbc);
	assert_int_equal(buf[3], 0xde);
	struct ipv6_view v;
	assert_int_equal(ipv6_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_int_equal(v.traffic_class, 0xb8);
	assert_int_equal(v.flow_label, 0xabcde);
	assert_int_equal(v.hop_limit, 255);
	assert_memory_equal(buf + 8, f.src, 16);
	assert_memory_equal(buf + 24, f.dst, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_full_chain),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_hop_by_hop_placement),
		cmocka_unit_test(test_routing_segments_left),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_stops_at_esp_and_none),
		cmocka_unit_test(test_length_lies),
		cmocka_unit_test(test_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
