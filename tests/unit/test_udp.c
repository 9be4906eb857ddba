/* test_udp.c — UDP header: length field against the IP payload, build.
 * Checksums (pseudo-header, zero rule) are tested in test_packet.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/udp.h"

static enum pkt_result parse_exact(const uint8_t *p, size_t n, struct udp_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, p, n);
	enum pkt_result r = udp_parse(c, n, v);
	free(c);
	return r;
}

static void test_lengths(void **state)
{
	(void)state;
	uint8_t d[12] = {0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0xab, 0xcd, 1, 2, 3, 4};
	struct udp_view v;
	assert_int_equal(parse_exact(d, 12, &v), PKT_OK);
	assert_int_equal(v.sport, 12345);
	assert_int_equal(v.dport, 53);
	assert_int_equal(v.len, 12);
	assert_int_equal(v.csum, 0xabcd);
	for (size_t n = 0; n < 8; n++)
		assert_int_equal(parse_exact(d, n, &v), PKT_TRUNCATED);
	for (size_t n = 8; n < 12; n++)
		assert_int_equal(parse_exact(d, n, &v), PKT_BAD_L4_LENGTH);
	/* Length field shorter than the IP payload: accepted, as in Linux. */
	d[5] = 8;
	assert_int_equal(parse_exact(d, 12, &v), PKT_OK);
	assert_int_equal(v.len, 8);
	for (uint8_t l = 0; l < 8; l++) {
		d[5] = l;
		assert_int_equal(parse_exact(d, 12, &v), PKT_BAD_L4_LENGTH);
	}
	d[4] = 0xff;
	d[5] = 0xff;
	assert_int_equal(parse_exact(d, 12, &v), PKT_BAD_L4_LENGTH);
}

static void test_build(void **state)
{
	(void)state;
	uint8_t b[8];
	assert_int_equal(udp_build(b, 7, 1, 2, 8), 0);
	assert_int_equal(udp_build(b, 8, 1, 2, 7), 0);
	assert_int_equal(udp_build(b, 8, 0x1234, 0x5678, 20), 8);
	assert_memory_equal(b, ((uint8_t[]){0x12, 0x34, 0x56, 0x78, 0, 20, 0, 0}), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
