/* test_checksum.c — the Internet checksum against RFC 1071's worked example,
 * a real IPv4 header, and a naive reference written here; incremental
 * updates (RFC 1624) against full recomputation on random data. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "base/checksum.h"

static uint32_t rng_state = 0x1234567u;

static uint32_t rnd(void)
{
	/* xorshift32: deterministic, good enough for test data. */
	uint32_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	rng_state = x;
	return x;
}

/* The obvious definition: sum of big-endian 16-bit words (odd byte padded
 * with zero), end-around carry, complement. */
static uint32_t ref_sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t w = (uint32_t)p[i] << 8;
		if (i + 1 < len)
			w |= p[i + 1];
		s += w;
	}
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

static uint16_t ref_csum(const uint8_t *p, size_t len)
{
	return (uint16_t)~ref_sum(p, len);
}

static void test_rfc1071_example(void **state)
{
	(void)state;
	/* RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2. */
	const uint8_t b[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	assert_int_equal(csum_buf(b, sizeof(b)), (uint16_t)~0xddf2);
	assert_int_equal(csum_fold(csum_partial(b, sizeof(b), 0)), 0x220d);
	/* Byte-order independence: the swapped data gives the swapped sum. */
	const uint8_t s[8] = { 0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6 };
	assert_int_equal(csum_buf(s, sizeof(s)), (uint16_t)~0xf2dd);
}

static void test_ipv4_header(void **state)
{
	(void)state;
	/* 192.168.0.1 -> 192.168.0.199, UDP, total length 115: the widely
	 * used worked example whose checksum is 0xb861. */
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	assert_int_equal(csum_buf(h, sizeof(h)), 0); /* valid header folds to 0 */
	h[10] = h[11] = 0;
	assert_int_equal(csum_buf(h, sizeof(h)), 0xb861);
	/* A corrupted header no longer verifies. */
	h[10] = 0xb8;
	h[11] = 0x61;
	h[8] = 0x3f;
	assert_int_not_equal(csum_buf(h, sizeof(h)), 0);
}

static void test_edge_lengths(void **state)
{
	(void)state;
	assert_int_equal(csum_buf(NULL, 0), 0xffff);
	const uint8_t one = 0xab;
	assert_int_equal(csum_buf(&one, 1), (uint16_t)~0xab00);
	const uint8_t ff[4] = { 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(csum_buf(ff, 4), ref_csum(ff, 4));
	uint8_t zero[64] = { 0 };
	assert_int_equal(csum_buf(zero, sizeof(zero)), 0xffff);
}

static void test_random_vs_reference(void **state)
{
	(void)state;
	uint8_t buf[1600];
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = rnd() % sizeof(buf);
		/* Occasionally all 0xff to push the carries. */
		for (size_t i = 0; i < len; i++)
			buf[i] = (iter % 7 == 0) ? 0xff : (uint8_t)rnd();
		/* Exercise every alignment of the start too. */
		size_t off = rnd() % 8;
		if (off > len)
			off = len;
		assert_int_equal(csum_buf(buf + off, len - off), ref_csum(buf + off, len - off));
		/* Chained over an even split, with an arbitrary starting sum. */
		size_t cut = (rnd() % (len + 1)) & ~(size_t)1;
		uint32_t start = rnd();
		uint32_t chained = csum_partial(buf + cut, len - cut, csum_partial(buf, cut, start));
		uint64_t want = (uint64_t)ref_sum(buf, len) + (start >> 16) + (start & 0xffff);
		while (want >> 16)
			want = (want & 0xffff) + (want >> 16);
		assert_int_equal(csum_fold(chained), (uint16_t)~want);
	}
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A buffer with a checksum field at offset cs; returns the stored value. */
static uint16_t seal(uint8_t *p, size_t len, size_t cs)
{
	put16(p + cs, 0);
	uint16_t c = ref_csum(p, len);
	put16(p + cs, c);
	return c;
}

static bool all_zero_except(const uint8_t *p, size_t len, size_t cs)
{
	for (size_t i = 0; i < len; i++)
		if ((i < cs || i > cs + 1) && p[i])
			return false;
	return true;
}

static void test_incremental_update(void **state)
{
	(void)state;
	uint8_t buf[64];
	for (int iter = 0; iter < 200000; iter++) {
		size_t len = 8 + 2 * (rnd() % 28); /* even, 8..62 */
		for (size_t i = 0; i < len; i++)
			buf[i] = (iter % 11 == 0) ? (uint8_t)(rnd() % 2 ? 0xff : 0) : (uint8_t)rnd();
		size_t cs = 0; /* checksum at the front, fields after it */
		uint16_t c = seal(buf, len, cs);
		unsigned kind = rnd() % 3;
		size_t field_len = kind == 0 ? 2 : kind == 1 ? 4 : 2 * (1 + rnd() % 8);
		if (field_len > len - 2)
			field_len = 2;
		size_t at = 2 + 2 * (rnd() % ((len - 2 - field_len) / 2 + 1));
		uint8_t old[16] = { 0 }, neu[16] = { 0 };
		memcpy(old, buf + at, field_len);
		for (size_t i = 0; i < field_len; i++)
			neu[i] = (rnd() % 4 == 0) ? old[i] : (uint8_t)rnd();
		memcpy(buf + at, neu, field_len);

		uint16_t inc;
		if (kind == 0) {
			inc = csum_update16(c, (uint16_t)(old[0] << 8 | old[1]),
					    (uint16_t)(neu[0] << 8 | neu[1]));
		} else if (kind == 1) {
			uint32_t o = (uint32_t)old[0] << 24 | (uint32_t)old[1] << 16 |
				     (uint32_t)old[2] << 8 | old[3];
			uint32_t n = (uint32_t)neu[0] << 24 | (uint32_t)neu[1] << 16 |
				     (uint32_t)neu[2] << 8 | neu[3];
			inc = field_len == 4 ? csum_update32(c, o, n)
					     : csum_update16(c, (uint16_t)(old[0] << 8 | old[1]),
							     (uint16_t)(neu[0] << 8 | neu[1]));
		} else {
			inc = csum_update_bytes(c, old, neu, field_len);
		}
		put16(buf + cs, 0);
		uint16_t full = ref_csum(buf, len);
		if (all_zero_except(buf, len, cs)) {
			/* All-zero data is the one case where the two ones'-
			 * complement zeros differ (RFC 1624 §3): both must
			 * still verify. */
			assert_true(inc == 0 || inc == 0xffff);
			continue;
		}
		assert_int_equal(inc, full);
		/* And the updated packet verifies. */
		put16(buf + cs, inc);
		assert_int_equal(ref_sum(buf, len), 0xffff);
	}
}

static void test_update_real_nat(void **state)
{
	(void)state;
	/* Rewriting the source of the 0xb861 header to 10.137.0.5, as NAT
	 * does, must give the same checksum as recomputing it. */
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	uint16_t inc = csum_update32(0xb861, 0xc0a80001u, 0x0a890005u);
	h[12] = 10;
	h[13] = 137;
	h[14] = 0;
	h[15] = 5;
	h[10] = h[11] = 0;
	assert_int_equal(inc, csum_buf(h, 20));
	/* TTL decrement (RFC 1624 §4 style): 16-bit word 0x4011 -> 0x3f11. */
	h[10] = (uint8_t)(inc >> 8);
	h[11] = (uint8_t)inc;
	uint16_t inc2 = csum_update16(inc, 0x4011, 0x3f11);
	h[8] = 0x3f;
	h[10] = h[11] = 0;
	assert_int_equal(inc2, csum_buf(h, 20));
}

static void test_pseudo_headers(void **state)
{
	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t s4[4], d4[4], s6[16], d6[16];
		for (int i = 0; i < 4; i++) {
			s4[i] = (uint8_t)rnd();
			d4[i] = (uint8_t)rnd();
		}
		for (int i = 0; i < 16; i++) {
			s6[i] = (uint8_t)rnd();
			d6[i] = (uint8_t)rnd();
		}
		uint8_t proto = (uint8_t)rnd();
		uint16_t len16 = (uint16_t)rnd();
		uint32_t len32 = iter % 2 ? rnd() : (rnd() & 0xffff);

		/* RFC 768: src, dst, zero, protocol, UDP length. */
		uint8_t ph4[12];
		memcpy(ph4, s4, 4);
		memcpy(ph4 + 4, d4, 4);
		ph4[8] = 0;
		ph4[9] = proto;
		put16(ph4 + 10, len16);
		assert_int_equal(csum_fold(csum_pseudo_ipv4(s4, d4, proto, len16)),
				 ref_csum(ph4, sizeof(ph4)));

		/* RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header. */
		uint8_t ph6[40];
		memcpy(ph6, s6, 16);
		memcpy(ph6 + 16, d6, 16);
		ph6[32] = (uint8_t)(len32 >> 24);
		ph6[33] = (uint8_t)(len32 >> 16);
		ph6[34] = (uint8_t)(len32 >> 8);
		ph6[35] = (uint8_t)len32;
		ph6[36] = ph6[37] = ph6[38] = 0;
		ph6[39] = proto;
		assert_int_equal(csum_fold(csum_pseudo_ipv6(s6, d6, proto, len32)),
				 ref_csum(ph6, sizeof(ph6)));

		/* Pseudo header chained with a payload, as UDP/TCP use it. */
		uint8_t payload[33] = { 0 };
		size_t plen = rnd() % sizeof(payload);
		for (size_t i = 0; i < plen; i++)
			payload[i] = (uint8_t)rnd();
		uint8_t whole[12 + sizeof(payload)];
		memcpy(whole, ph4, 12);
		memcpy(whole + 12, payload, plen);
		assert_int_equal(csum_fold(csum_partial(payload, plen,
							csum_pseudo_ipv4(s4, d4, proto, len16))),
				 ref_csum(whole, 12 + plen));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc1071_example),
		cmocka_unit_test(test_ipv4_header),
		cmocka_unit_test(test_edge_lengths),
		cmocka_unit_test(test_random_vs_reference),
		cmocka_unit_test(test_incremental_update),
		cmocka_unit_test(test_update_real_nat),
		cmocka_unit_test(test_pseudo_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
