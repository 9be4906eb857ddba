/* test_tcp.c — TCP header: data offset bounds, options, flags, build.
 * Checksums are tested with the pseudo-header in test_packet.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/tcp.h"

static enum pkt_result parse_exact(const uint8_t *p, size_t n, struct tcp_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, p, n);
	enum pkt_result r = tcp_parse(c, n, v);
	free(c);
	return r;
}

static void test_syn_with_options(void **state)
{
	(void)state;
	/* SYN, data offset 10 (20 bytes of options: MSS, SACK-perm, TS, NOP, WS). */
	uint8_t s[40] = {0xc0, 0x01, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0,
			 0xa0, 0x02, 0xfa, 0xf0, 0x12, 0x34, 0, 0,
			 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
	struct tcp_view v;
	assert_int_equal(parse_exact(s, 40, &v), PKT_OK);
	assert_int_equal(v.sport, 0xc001);
	assert_int_equal(v.dport, 80);
	assert_int_equal(v.seq, 0x11223344);
	assert_int_equal(v.hdr_len, 40);
	assert_int_equal(v.flags, TCP_SYN);
	assert_int_equal(v.window, 0xfaf0);
	assert_int_equal(v.csum, 0x1234);
	for (size_t n = 0; n < 20; n++)
		assert_int_equal(parse_exact(s, n, &v), PKT_TRUNCATED);
	for (size_t n = 20; n < 40; n++)
		assert_int_equal(parse_exact(s, n, &v), PKT_BAD_TCP_OFFSET);
}

static void test_offsets(void **state)
{
	(void)state;
	uint8_t s[60] = {0};
	struct tcp_view v;
	for (uint8_t off = 0; off < 16; off++) {
		s[12] = (uint8_t)(off << 4);
		enum pkt_result want = off < 5 ? PKT_BAD_TCP_OFFSET : PKT_OK;
		assert_int_equal(parse_exact(s, 60, &v), want);
	}
	s[12] = 0xf0;
	assert_int_equal(parse_exact(s, 59, &v), PKT_BAD_TCP_OFFSET);
	s[13] = 0xff;
	assert_int_equal(parse_exact(s, 60, &v), PKT_OK);
	assert_int_equal(v.flags, 0xff);
}

static void test_build(void **state)
{
	(void)state;
	uint8_t b[20];
	struct tcp_fields f = {.sport = 1, .dport = 2, .seq = 3, .ack = 4,
			       .flags = TCP_RST | TCP_ACK, .window = 5};
	assert_int_equal(tcp_build(b, 19, &f), 0);
	assert_int_equal(tcp_build(b, 20, &f), 20);
	assert_memory_equal(b, ((uint8_t[]){0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x50, 0x14, 0, 5,
					   0, 0, 0, 0}), 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_with_options),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
