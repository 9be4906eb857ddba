/* test_csprng.c — the ChaCha20 block function against RFC 8439 (§2.3.2 and
 * Appendix A.1 vectors #1 and #3), and the generator's behaviour:
 * deterministic for a given seed, changed by reseeding, independent of how
 * output is split into calls, and uniform (chi-square with a loose bound,
 * no modulo bias). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base/csprng.h"

static void test_rfc8439_2_3_2(void **state)
{
	(void)state;
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	const uint8_t nonce[12] = {0, 0, 0, 0x09, 0, 0, 0, 0x4a, 0, 0, 0, 0};
	static const uint8_t expect[64] = {
		0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f,
		0xa3, 0x20, 0x71, 0xc4, 0xc7, 0xd1, 0xf4, 0xc7, 0x33, 0xc0, 0x68, 0x03,
		0x04, 0x22, 0xaa, 0x9a, 0xc3, 0xd4, 0x6c, 0x4e, 0xd2, 0x82, 0x64, 0x46,
		0x07, 0x9f, 0xaa, 0x09, 0x14, 0xc2, 0xd7, 0x05, 0xd9, 0x8b, 0x02, 0xa2,
		0xb5, 0x12, 0x9c, 0xd1, 0xde, 0x16, 0x4e, 0xb9, 0xcb, 0xd0, 0x83, 0xe8,
		0xa2, 0x50, 0x3c, 0x4e,
	};
	uint8_t out[64];
	csprng_chacha20_block(key, 1, nonce, out);
	assert_memory_equal(out, expect, 64);
}

/* RFC 8439 A.1 test vector #1: all-zero key, nonce and counter. */
static void test_rfc8439_a1_zero(void **state)
{
	(void)state;
	const uint8_t key[32] = {0};
	const uint8_t nonce[12] = {0};
	static const uint8_t expect[64] = {
		0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90, 0x40, 0x5d, 0x6a, 0xe5,
		0x53, 0x86, 0xbd, 0x28, 0xbd, 0xd2, 0x19, 0xb8, 0xa0, 0x8d, 0xed, 0x1a,
		0xa8, 0x36, 0xef, 0xcc, 0x8b, 0x77, 0x0d, 0xc7, 0xda, 0x41, 0x59, 0x7c,
		0x51, 0x57, 0x48, 0x8d, 0x77, 0x24, 0xe0, 0x3f, 0xb8, 0xd8, 0x4a, 0x37,
		0x6a, 0x43, 0xb8, 0xf4, 0x15, 0x18, 0xa1, 0x1c, 0xc3, 0x87, 0xb6, 0x69,
		0xb2, 0xee, 0x65, 0x86,
	};
	uint8_t out[64];
	csprng_chacha20_block(key, 0, nonce, out);
	assert_memory_equal(out, expect, 64);
}

/* RFC 8439 A.1 test vector #3: key ends in 01, counter 1. */
static void test_rfc8439_a1_key_bit(void **state)
{
	(void)state;
	uint8_t key[32] = {0};
	key[31] = 1;
	const uint8_t nonce[12] = {0};
	static const uint8_t expect[64] = {
		0x3a, 0xeb, 0x52, 0x24, 0xec, 0xf8, 0x49, 0x92, 0x9b, 0x9d, 0x82, 0x8d,
		0xb1, 0xce, 0xd4, 0xdd, 0x83, 0x20, 0x25, 0xe8, 0x01, 0x8b, 0x81, 0x60,
		0xb8, 0x22, 0x84, 0xf3, 0xc9, 0x49, 0xaa, 0x5a, 0x8e, 0xca, 0x00, 0xbb,
		0xb4, 0xa7, 0x3b, 0xda, 0xd1, 0x92, 0xb5, 0xc4, 0x2f, 0x73, 0xf2, 0xfd,
		0x4e, 0x27, 0x36, 0x44, 0xc8, 0xb3, 0x61, 0x25, 0xa6, 0x4a, 0xdd, 0xeb,
		0x00, 0x6c, 0x13, 0xa0,
	};
	uint8_t out[64];
	csprng_chacha20_block(key, 1, nonce, out);
	assert_memory_equal(out, expect, 64);
}

static void seed_with(uint8_t fill, size_t len)
{
	uint8_t seed[64];
	assert_true(len <= sizeof(seed));
	memset(seed, fill, sizeof(seed));
	csprng_reset();
	assert_true(csprng_seed(seed, len));
}

static void test_seed_too_short(void **state)
{
	(void)state;
	uint8_t seed[CSPRNG_SEED_MIN] = {1};
	csprng_reset();
	assert_false(csprng_seed(seed, CSPRNG_SEED_MIN - 1));
	assert_false(csprng_is_seeded());
	assert_true(csprng_seed(seed, CSPRNG_SEED_MIN));
	assert_true(csprng_is_seeded());
	/* Once seeded, any amount may be mixed in. */
	assert_true(csprng_seed(seed, 1));
	assert_true(csprng_seed(seed, 0));
}

static void test_deterministic_for_seed(void **state)
{
	(void)state;
	uint8_t a[100], b[100];
	seed_with(0x42, 32);
	csprng_bytes(a, sizeof(a));
	seed_with(0x42, 32);
	csprng_bytes(b, sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	/* Consecutive output does not repeat. */
	csprng_bytes(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_reseed_changes_output(void **state)
{
	(void)state;
	uint8_t a[64], b[64], c[64];
	seed_with(0x42, 32);
	csprng_bytes(a, 8); /* leave buffered output behind */
	csprng_bytes(a, sizeof(a));

	seed_with(0x42, 32);
	csprng_bytes(b, 8);
	uint8_t extra = 0;
	assert_true(csprng_seed(&extra, 1)); /* even one zero byte counts */
	csprng_bytes(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));

	/* Seeds differing only in length (trailing zeros) differ. */
	uint8_t z[33] = {0};
	csprng_reset();
	assert_true(csprng_seed(z, 32));
	csprng_bytes(b, sizeof(b));
	csprng_reset();
	assert_true(csprng_seed(z, 33));
	csprng_bytes(c, sizeof(c));
	assert_memory_not_equal(b, c, sizeof(b));
}

/* The stream does not depend on how it is asked for. */
static void test_split_independent(void **state)
{
	(void)state;
	static uint8_t whole[3000], parts[3000];
	seed_with(7, 48);
	csprng_bytes(whole, sizeof(whole));
	seed_with(7, 48);
	size_t off = 0;
	size_t step = 1;
	while (off < sizeof(parts)) {
		size_t n = step < sizeof(parts) - off ? step : sizeof(parts) - off;
		csprng_bytes(parts + off, n);
		off += n;
		step = step * 3 % 301 + 1;
	}
	assert_memory_equal(whole, parts, sizeof(whole));
	csprng_bytes(parts, 0); /* a zero-length draw is harmless */
}

/* Chi-square over 10 cells, 200000 draws, 9 degrees of freedom: the 99.99th
 * percentile is about 33.7, so 60 only fails when something is broken. */
static void test_uniform_chi_square(void **state)
{
	(void)state;
	enum { CELLS = 10, DRAWS = 200000 };
	uint32_t count[CELLS] = {0};
	seed_with(0x5a, 32);
	for (int i = 0; i < DRAWS; i++) {
		uint32_t v = csprng_uniform(CELLS);
		assert_true(v < CELLS);
		count[v]++;
	}
	double expect = (double)DRAWS / CELLS;
	double chi = 0;
	for (int i = 0; i < CELLS; i++)
		chi += ((double)count[i] - expect) * ((double)count[i] - expect) / expect;
	assert_true(chi < 60.0);

	/* Bytes: 256 cells, 255 degrees of freedom, mean 255, sd ~22.6. */
	static uint8_t buf[256 * 1000];
	uint32_t bc[256] = {0};
	csprng_bytes(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		bc[buf[i]]++;
	chi = 0;
	for (int i = 0; i < 256; i++)
		chi += ((double)bc[i] - 1000.0) * ((double)bc[i] - 1000.0) / 1000.0;
	assert_true(chi < 400.0);
}

/* n = 3 * 2^30: a plain modulo would put half the draws below 2^30 instead
 * of a third. */
static void test_uniform_no_modulo_bias(void **state)
{
	(void)state;
	const uint32_t n = 3u << 30;
	seed_with(0x33, 32);
	uint32_t low = 0;
	enum { DRAWS = 30000 };
	for (int i = 0; i < DRAWS; i++) {
		uint32_t v = csprng_uniform(n);
		assert_true(v < n);
		if (v < (1u << 30))
			low++;
	}
	/* Expected 10000, sd ~82. */
	assert_in_range(low, 9400, 10600);
}

static void test_uniform_edges(void **state)
{
	(void)state;
	seed_with(1, 32);
	assert_int_equal(csprng_uniform(0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(csprng_uniform(1), 0);
	bool seen[2] = {false, false};
	for (int i = 0; i < 100; i++)
		seen[csprng_uniform(2)] = true;
	assert_true(seen[0] && seen[1]);
	/* The largest n: every value < n; high values do occur. */
	uint32_t hi = 0;
	for (int i = 0; i < 1000; i++) {
		uint32_t v = csprng_uniform(UINT32_MAX);
		assert_true(v < UINT32_MAX);
		hi = v > hi ? v : hi;
	}
	assert_true(hi > (UINT32_MAX / 4) * 3);
	/* u32 covers the top bit. */
	uint32_t any = 0;
	for (int i = 0; i < 64; i++)
		any |= csprng_u32();
	assert_true(any == UINT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8439_2_3_2),
		cmocka_unit_test(test_rfc8439_a1_zero),
		cmocka_unit_test(test_rfc8439_a1_key_bit),
		cmocka_unit_test(test_seed_too_short),
		cmocka_unit_test(test_deterministic_for_seed),
		cmocka_unit_test(test_reseed_changes_output),
		cmocka_unit_test(test_split_independent),
		cmocka_unit_test(test_uniform_chi_square),
		cmocka_unit_test(test_uniform_no_modulo_bias),
		cmocka_unit_test(test_uniform_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
