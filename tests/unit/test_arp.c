/* test_arp.c — Ethernet/IPv4 ARP (RFC 826): requests, replies, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/arp.h"

/* Who has 10.137.0.1? Tell 10.137.0.5 (layout from RFC 826). */
static const uint8_t request[28] = {
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
	0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00, 10, 137, 0, 5,
	0, 0, 0, 0, 0, 0, 10, 137, 0, 1,
};

static enum pkt_result parse_exact(const uint8_t *p, size_t n, struct arp_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, p, n);
	enum pkt_result r = arp_parse(c, n, v);
	free(c);
	return r;
}

static void test_request(void **state)
{
	(void)state;
	struct arp_view v;
	assert_int_equal(parse_exact(request, sizeof(request), &v), PKT_OK);
	assert_int_equal(v.op, ARP_OP_REQUEST);
	assert_memory_equal(v.sha, request + 8, 6);
	assert_memory_equal(v.spa, ((uint8_t[]){10, 137, 0, 5}), 4);
	assert_memory_equal(v.tpa, ((uint8_t[]){10, 137, 0, 1}), 4);
	for (size_t n = 0; n < sizeof(request); n++)
		assert_int_equal(parse_exact(request, n, &v), PKT_TRUNCATED);
	/* Ethernet minimum-size padding after the message. */
	uint8_t padded[46] = {0};
	memcpy(padded, request, sizeof(request));
	assert_int_equal(parse_exact(padded, sizeof(padded), &v), PKT_OK);
}

static void test_refusals(void **state)
{
	(void)state;
	uint8_t m[28];
	struct arp_view v;
	memcpy(m, request, 28);
	m[1] = 6; /* IEEE 802 hardware */
	assert_int_equal(parse_exact(m, 28, &v), PKT_UNSUPPORTED);
	memcpy(m, request, 28);
	m[2] = 0x86;
	m[3] = 0xdd;
	assert_int_equal(parse_exact(m, 28, &v), PKT_UNSUPPORTED);
	memcpy(m, request, 28);
	m[4] = 8;
	assert_int_equal(parse_exact(m, 28, &v), PKT_BAD_ARP);
	memcpy(m, request, 28);
	m[5] = 16;
	assert_int_equal(parse_exact(m, 28, &v), PKT_BAD_ARP);
	for (uint16_t op = 0; op < 10; op++) {
		memcpy(m, request, 28);
		m[7] = (uint8_t)op;
		assert_int_equal(parse_exact(m, 28, &v),
				 (op == 1 || op == 2) ? PKT_OK : PKT_BAD_ARP);
	}
}

static void test_build_reply(void **state)
{
	(void)state;
	const uint8_t mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct arp_view req, rep;
	assert_int_equal(arp_parse(request, sizeof(request), &req), PKT_OK);
	uint8_t buf[28];
	assert_int_equal(arp_build(buf, 27, ARP_OP_REPLY, mac, req.tpa, req.sha, req.spa), 0);
	assert_int_equal(arp_build(buf, 28, ARP_OP_REPLY, mac, req.tpa, req.sha, req.spa), 28);
	/* Independent check of the fixed part against RFC 826. */
	assert_memory_equal(buf, ((uint8_t[]){0, 1, 8, 0, 6, 4, 0, 2}), 8);
	assert_int_equal(arp_parse(buf, 28, &rep), PKT_OK);
	assert_int_equal(rep.op, ARP_OP_REPLY);
	assert_memory_equal(rep.sha, mac, 6);
	assert_memory_equal(rep.spa, req.tpa, 4);
	assert_memory_equal(rep.tha, req.sha, 6);
	assert_memory_equal(rep.tpa, req.spa, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_build_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
