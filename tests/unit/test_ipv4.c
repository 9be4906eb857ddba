/* test_ipv4.c — IPv4 header parse/build: every header check, options,
 * fragments, truncation at every length, known-answer checksum. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/ipv4.h"

/* Independent RFC 1071 checksum, byte by byte. */
static uint16_t ref_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void fix_csum(uint8_t *h)
{
	size_t hl = (size_t)(h[0] & 15) * 4;
	h[10] = h[11] = 0;
	uint16_t c = ref_csum(h, hl);
	h[10] = (uint8_t)(c >> 8);
	h[11] = (uint8_t)c;
}

/* The well-known example header (192.168.0.1 -> 192.168.0.199, UDP,
 * total 0x73, DF, TTL 64) with checksum 0xb861. */
static const uint8_t known[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
				  0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

static uint8_t *known_datagram(void)
{
	uint8_t *d = calloc(1, 0x73);
	memcpy(d, known, 20);
	return d;
}

static void test_known_answer(void **state)
{
	(void)state;
	uint8_t *d = known_datagram();
	struct ipv4_view v;
	assert_int_equal(ipv4_parse(d, 0x73, &v), PKT_OK);
	assert_int_equal(v.hdr_len, 20);
	assert_int_equal(v.total_len, 0x73);
	assert_int_equal(v.proto, IP_PROTO_UDP);
	assert_int_equal(v.ttl, 64);
	assert_true(v.df);
	assert_false(v.mf);
	assert_int_equal(v.frag_off, 0);
	assert_int_equal(ref_csum(d, 20), 0);
	free(d);
}

static void test_every_truncation(void **state)
{
	(void)state;
	uint8_t *d = known_datagram();
	for (size_t n = 0; n < 0x73; n++) {
		/* A fresh heap copy of exactly n bytes so ASan sees any overread. */
		uint8_t *c = malloc(n ? n : 1);
		memcpy(c, d, n);
		struct ipv4_view v;
		assert_int_equal(ipv4_parse(c, n, &v), PKT_TRUNCATED);
		free(c);
	}
	free(d);
}

static void test_padding_allowed(void **state)
{
	(void)state;
	uint8_t buf[200] = {0};
	memcpy(buf, known, 20);
	struct ipv4_view v;
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_int_equal(v.total_len, 0x73);
}

static void test_bad_version_ihl_checksum_length(void **state)
{
	(void)state;
	uint8_t buf[0x73] = {0};
	struct ipv4_view v;

	memcpy(buf, known, 20);
	buf[0] = 0x65;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_VERSION);

	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		memcpy(buf, known, 20);
		buf[0] = (uint8_t)(0x40 | ihl);
		assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_IHL);
	}

	memcpy(buf, known, 20);
	buf[11] ^= 1;
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_CHECKSUM);

	memcpy(buf, known, 20);
	buf[2] = 0;
	buf[3] = 19; /* total < header */
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_LENGTH);

	memcpy(buf, known, 20);
	buf[3] = 0x74; /* one byte more than we have */
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_TRUNCATED);

	/* IHL 15 but only 40 bytes present. */
	memcpy(buf, known, 20);
	buf[0] = 0x4f;
	assert_int_equal(ipv4_parse(buf, 40, &v), PKT_TRUNCATED);
}

static void test_options(void **state)
{
	(void)state;
	uint8_t buf[60 + 8] = {0};
	struct ipv4_view v;
	memcpy(buf, known, 20);
	buf[0] = 0x4f;
	buf[2] = 0;
	buf[3] = sizeof(buf);
	/* Maximal options: NOP, then a record-route of 39 bytes (RFC 791). */
	buf[20] = 1;
	buf[21] = 7;
	buf[22] = 39;
	buf[23] = 4;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_int_equal(v.hdr_len, 60);

	/* Option length one past the header. */
	buf[22] = 40;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_OPTIONS);
	/* Length 0 and 1 are malformed. */
	buf[22] = 0;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_OPTIONS);
	buf[22] = 1;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_OPTIONS);
	/* A type byte as the last header byte, without room for its length. */
	memset(buf + 20, 1, 40);
	buf[59] = 7;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_OPTIONS);
	/* EOL ends the list: what follows is padding, whatever it holds. */
	buf[20] = 0;
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	/* All NOPs. */
	memset(buf + 20, 1, 40);
	fix_csum(buf);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
}

static void set_frag(uint8_t *h, uint16_t field, uint16_t total)
{
	h[6] = (uint8_t)(field >> 8);
	h[7] = (uint8_t)field;
	h[2] = (uint8_t)(total >> 8);
	h[3] = (uint8_t)total;
	fix_csum(h);
}

static void test_fragments(void **state)
{
	(void)state;
	static uint8_t buf[65535];
	struct ipv4_view v;
	memcpy(buf, known, 20);

	set_frag(buf, 0x2000, 28); /* MF, offset 0, 8 bytes */
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_true(v.mf);
	assert_int_equal(v.frag_off, 0);

	set_frag(buf, 0x0003, 25); /* last fragment at 24, odd length is fine */
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_false(v.mf);
	assert_int_equal(v.frag_off, 24);

	set_frag(buf, 0x2000, 27); /* MF with 7 bytes */
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_FRAGMENT);
	set_frag(buf, 0x2000, 20); /* MF with nothing */
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_FRAGMENT);
	set_frag(buf, 0x8000, 28); /* reserved flag */
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_FRAGMENT);
	/* Offset 65528 + 8 bytes: past 65535 (ping of death). */
	set_frag(buf, 0x1fff, 28);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_FRAGMENT);
	/* Offset 65528 + 7 bytes = 65535: the largest legal end. */
	set_frag(buf, 0x1fff, 27);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_int_equal(v.frag_off, 65528);
}

static void test_quoted(void **state)
{
	(void)state;
	uint8_t buf[28];
	memcpy(buf, known, 20);
	buf[10] ^= 0xff; /* quoted headers are not checksum-checked */
	struct ipv4_view v;
	assert_int_equal(ipv4_parse_quoted(buf, sizeof(buf), &v), PKT_OK);
	assert_int_equal(v.total_len, 0x73);
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_BAD_CHECKSUM);
	assert_int_equal(ipv4_parse_quoted(buf, 19, &v), PKT_TRUNCATED);
}

static void test_build_and_ttl(void **state)
{
	(void)state;
	uint8_t buf[20 + 100];
	struct ipv4_fields f = {
		.tos = 0x10, .id = 0x1234, .df = true, .ttl = 1, .proto = IP_PROTO_TCP,
		.src = {10, 137, 0, 5}, .dst = {8, 8, 4, 4}, .payload_len = 100,
	};
	assert_int_equal(ipv4_build(buf, 19, &f), 0);
	assert_int_equal(ipv4_build(buf, sizeof(buf), &f), 20);
	assert_int_equal(ref_csum(buf, 20), 0);
	struct ipv4_view v;
	assert_int_equal(ipv4_parse(buf, sizeof(buf), &v), PKT_OK);
	assert_int_equal(v.total_len, 120);
	assert_int_equal(v.id, 0x1234);
	assert_int_equal(v.tos, 0x10);
	assert_true(v.df);
	assert_memory_equal(buf + 12, f.src, 4);
	assert_memory_equal(buf + 16, f.dst, 4);

	ipv4_decrement_ttl(buf);
	assert_int_equal(buf[8], 0);
	assert_int_equal(ref_csum(buf, 20), 0);

	f.payload_len = 65535 - 19;
	assert_int_equal(ipv4_build(buf, sizeof(buf), &f), 0);

	/* Recompute after a rewrite. */
	buf[12] = 192;
	ipv4_set_checksum(buf, 20);
	assert_int_equal(ref_csum(buf, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_padding_allowed),
		cmocka_unit_test(test_bad_version_ihl_checksum_length),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_build_and_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
