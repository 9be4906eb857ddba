/* test_byteorder.c — unaligned big/little-endian loads and stores against
 * explicit byte layouts, at every offset, touching only their own bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base/byteorder.h"

static const uint8_t seq[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

static void test_loads_known(void **state)
{
	(void)state;
	uint8_t buf[24];
	for (size_t off = 0; off < 16; off++) {
		memset(buf, 0x5a, sizeof(buf));
		memcpy(buf + off, seq, 8);
		assert_int_equal(load_be16(buf + off), 0x0123);
		assert_int_equal(load_be32(buf + off), 0x01234567u);
		assert_true(load_be64(buf + off) == 0x0123456789abcdefull);
		assert_int_equal(load_le16(buf + off), 0x2301);
		assert_int_equal(load_le32(buf + off), 0x67452301u);
		assert_true(load_le64(buf + off) == 0xefcdab8967452301ull);
	}
	const uint8_t hi[8] = { 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x81 };
	assert_int_equal(load_be16(hi), 0xfffe);
	assert_int_equal(load_be32(hi), 0xfffe8000u);
	assert_true(load_be64(hi) == 0xfffe800000000081ull);
	assert_true(load_le64(hi) == 0x810000000080feffull);
}

static void test_le64_high_bytes(void **state)
{
	(void)state;
	const uint8_t b[8] = { 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x81 };
	uint64_t want = 0;
	for (int i = 7; i >= 0; i--)
		want = want << 8 | b[i];
	assert_true(load_le64(b) == want);
	want = 0;
	for (int i = 0; i < 8; i++)
		want = want << 8 | b[i];
	assert_true(load_be64(b) == want);
}

static void test_stores_known(void **state)
{
	(void)state;
	uint8_t buf[24];
	for (size_t off = 0; off < 16; off++) {
		memset(buf, 0x5a, sizeof(buf));
		store_be64(buf + off, 0x0123456789abcdefull);
		assert_memory_equal(buf + off, seq, 8);
		for (size_t i = 0; i < sizeof(buf); i++)
			if (i < off || i >= off + 8)
				assert_int_equal(buf[i], 0x5a);

		memset(buf, 0x5a, sizeof(buf));
		store_be32(buf + off, 0x01234567u);
		assert_memory_equal(buf + off, seq, 4);
		assert_int_equal(buf[off + 4], 0x5a);
		if (off)
			assert_int_equal(buf[off - 1], 0x5a);

		memset(buf, 0x5a, sizeof(buf));
		store_be16(buf + off, 0x0123);
		assert_memory_equal(buf + off, seq, 2);
		assert_int_equal(buf[off + 2], 0x5a);

		const uint8_t rev[8] = { 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01 };
		memset(buf, 0x5a, sizeof(buf));
		store_le64(buf + off, 0x0123456789abcdefull);
		assert_memory_equal(buf + off, rev, 8);
		assert_int_equal(buf[off + 8], 0x5a);

		memset(buf, 0x5a, sizeof(buf));
		store_le32(buf + off, 0x89abcdefu);
		assert_memory_equal(buf + off, rev, 4);
		assert_int_equal(buf[off + 4], 0x5a);

		memset(buf, 0x5a, sizeof(buf));
		store_le16(buf + off, 0xcdef);
		assert_memory_equal(buf + off, rev, 2);
		assert_int_equal(buf[off + 2], 0x5a);
	}
}

static void test_roundtrip(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint8_t b[8];
	for (int i = 0; i < 10000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		store_be64(b, x);
		assert_true(load_be64(b) == x);
		assert_int_equal(load_be32(b), (uint32_t)(x >> 32));
		assert_int_equal(load_be16(b), (uint16_t)(x >> 48));
		store_le64(b, x);
		assert_true(load_le64(b) == x);
		assert_int_equal(load_le32(b), (uint32_t)x);
		assert_int_equal(load_le16(b), (uint16_t)x);
		store_be32(b, (uint32_t)x);
		assert_int_equal(load_be32(b), (uint32_t)x);
		store_le32(b, (uint32_t)x);
		assert_int_equal(load_le32(b), (uint32_t)x);
		store_be16(b, (uint16_t)x);
		assert_int_equal(load_be16(b), (uint16_t)x);
		store_le16(b, (uint16_t)x);
		assert_int_equal(load_le16(b), (uint16_t)x);
		/* BE and LE of the same value are byte reverses. */
		uint8_t be[8], le[8];
		store_be64(be, x);
		store_le64(le, x);
		for (int k = 0; k < 8; k++)
			assert_int_equal(be[k], le[7 - k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads_known),
		cmocka_unit_test(test_le64_high_bytes),
		cmocka_unit_test(test_stores_known),
		cmocka_unit_test(test_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
