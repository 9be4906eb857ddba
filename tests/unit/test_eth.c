/* test_eth.c — Ethernet II header: untagged, one 802.1Q tag, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/eth.h"

static enum pkt_result parse_exact(const uint8_t *f, size_t n, struct eth_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, f, n);
	enum pkt_result r = eth_parse(c, n, v);
	free(c);
	return r;
}

static void test_untagged(void **state)
{
	(void)state;
	uint8_t f[14] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00};
	struct eth_view v;
	assert_int_equal(parse_exact(f, sizeof(f), &v), PKT_OK);
	assert_int_equal(v.ethertype, ETHERTYPE_IPV4);
	assert_int_equal(v.l3_off, 14);
	assert_false(v.has_vlan);
	for (size_t n = 0; n < sizeof(f); n++)
		assert_int_equal(parse_exact(f, n, &v), PKT_TRUNCATED);
}

static void test_tagged(void **state)
{
	(void)state;
	uint8_t f[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x00, 0x20, 0x05, 0x86, 0xdd};
	struct eth_view v;
	assert_int_equal(parse_exact(f, sizeof(f), &v), PKT_OK);
	assert_int_equal(v.ethertype, ETHERTYPE_IPV6);
	assert_int_equal(v.l3_off, 18);
	assert_true(v.has_vlan);
	assert_int_equal(v.vlan_tci, 0x2005);
	for (size_t n = 0; n < sizeof(f); n++)
		assert_int_equal(parse_exact(f, n, &v), PKT_TRUNCATED);
	/* Stacked tags are refused. */
	f[16] = 0x81;
	f[17] = 0x00;
	assert_int_equal(parse_exact(f, sizeof(f), &v), PKT_UNSUPPORTED);
	f[16] = 0x88;
	f[17] = 0xa8;
	assert_int_equal(parse_exact(f, sizeof(f), &v), PKT_UNSUPPORTED);
}

static void test_8023_length(void **state)
{
	(void)state;
	uint8_t f[14] = {0};
	f[12] = 0x05;
	f[13] = 0xdc; /* 1500: an 802.3 length */
	struct eth_view v;
	assert_int_equal(parse_exact(f, sizeof(f), &v), PKT_UNSUPPORTED);
	f[12] = 0x06;
	f[13] = 0x00;
	assert_int_equal(parse_exact(f, sizeof(f), &v), PKT_OK);
}

static void test_build(void **state)
{
	(void)state;
	const uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t src[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t buf[14];
	assert_int_equal(eth_build(buf, 13, dst, src, ETHERTYPE_ARP), 0);
	assert_int_equal(eth_build(buf, 14, dst, src, ETHERTYPE_ARP), 14);
	assert_memory_equal(buf, dst, 6);
	assert_memory_equal(buf + 6, src, 6);
	assert_int_equal(buf[12], 0x08);
	assert_int_equal(buf[13], 0x06);
}

static void test_result_names(void **state)
{
	(void)state;
	for (int r = 0; r < PKT_RESULT_COUNT; r++) {
		const char *s = pkt_result_str((enum pkt_result)r);
		assert_non_null(s);
		assert_true(strlen(s) > 1);
	}
	assert_string_equal(pkt_result_str(PKT_RESULT_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_untagged),
		cmocka_unit_test(test_tagged),
		cmocka_unit_test(test_8023_length),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_result_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
