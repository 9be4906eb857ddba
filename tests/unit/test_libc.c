/* test_libc.c — the freestanding fwlibc_* functions against the host C
 * library and hand-written expectations: overlap in both directions, zero
 * lengths, signedness of comparisons, terminators. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base/libc.h"

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_memcpy_memset(void **state)
{
	(void)state;
	uint8_t src[64], dst[80];
	fill(src, sizeof(src), 3);
	for (size_t n = 0; n <= sizeof(src); n++) {
		memset(dst, 0xaa, sizeof(dst));
		assert_ptr_equal(fwlibc_memcpy(dst + 1, src, n), dst + 1);
		assert_int_equal(dst[0], 0xaa);
		assert_memory_equal(dst + 1, src, n);
		for (size_t i = n + 1; i < sizeof(dst); i++)
			assert_int_equal(dst[i], 0xaa);
	}
	for (size_t n = 0; n < 70; n++) {
		memset(dst, 0xaa, sizeof(dst));
		assert_ptr_equal(fwlibc_memset(dst + 2, 0x1ff, n), dst + 2); /* c as unsigned char */
		for (size_t i = 0; i < sizeof(dst); i++)
			assert_int_equal(dst[i], (i >= 2 && i < n + 2) ? 0xff : 0xaa);
	}
	/* Zero lengths touch nothing, even through NULL-free dummy pointers. */
	assert_ptr_equal(fwlibc_memcpy(dst, src, 0), dst);
	assert_ptr_equal(fwlibc_memset(dst, 0, 0), dst);
}

static void test_memmove_overlap(void **state)
{
	(void)state;
	uint8_t buf[64], ref[64];
	for (size_t n = 0; n <= 32; n++) {
		for (size_t from = 0; from < 32; from++) {
			for (size_t to = 0; to < 32; to++) {
				fill(buf, sizeof(buf), (uint8_t)(n + from));
				memcpy(ref, buf, sizeof(ref));
				/* Reference: through a temporary, no overlap issue. */
				uint8_t tmp[64];
				memcpy(tmp, ref + from, n);
				memcpy(ref + to, tmp, n);
				assert_ptr_equal(fwlibc_memmove(buf + to, buf + from, n), buf + to);
				assert_memory_equal(buf, ref, sizeof(buf));
			}
		}
	}
}

static void test_memcmp(void **state)
{
	(void)state;
	const uint8_t a[] = { 1, 2, 3, 0x80 };
	const uint8_t b[] = { 1, 2, 3, 0x7f };
	assert_int_equal(fwlibc_memcmp(a, b, 0), 0);
	assert_int_equal(fwlibc_memcmp(a, b, 3), 0);
	/* Bytes compare as unsigned char: 0x80 > 0x7f. */
	assert_true(fwlibc_memcmp(a, b, 4) > 0);
	assert_true(fwlibc_memcmp(b, a, 4) < 0);
	uint8_t x[16], y[16];
	uint32_t s = 1;
	for (int it = 0; it < 5000; it++) {
		for (int i = 0; i < 16; i++) {
			s = s * 1103515245u + 12345u;
			x[i] = (uint8_t)(s >> 16);
			y[i] = (s >> 24) % 3 ? x[i] : (uint8_t)(s >> 8);
		}
		size_t n = (s >> 4) % 17;
		assert_int_equal(sign(fwlibc_memcmp(x, y, n)), sign(memcmp(x, y, n)));
	}
}

static void test_memchr(void **state)
{
	(void)state;
	const uint8_t p[] = { 5, 0, 0xff, 5, 9 };
	assert_ptr_equal(fwlibc_memchr(p, 5, sizeof(p)), p);
	assert_ptr_equal(fwlibc_memchr(p, 0, sizeof(p)), p + 1);
	assert_ptr_equal(fwlibc_memchr(p, 0xff, sizeof(p)), p + 2);
	assert_ptr_equal(fwlibc_memchr(p, -1, sizeof(p)), p + 2); /* c as unsigned char */
	assert_ptr_equal(fwlibc_memchr(p, 9, sizeof(p)), p + 4);
	assert_null(fwlibc_memchr(p, 9, 4));
	assert_null(fwlibc_memchr(p, 5, 0));
	assert_null(fwlibc_memchr(p, 7, sizeof(p)));
}

static void test_strings(void **state)
{
	(void)state;
	assert_int_equal(fwlibc_strlen(""), 0);
	assert_int_equal(fwlibc_strlen("abc"), 3);
	assert_int_equal(fwlibc_strnlen("abc", 0), 0);
	assert_int_equal(fwlibc_strnlen("abc", 2), 2);
	assert_int_equal(fwlibc_strnlen("abc", 3), 3);
	assert_int_equal(fwlibc_strnlen("abc", 100), 3);
	/* strnlen must not read past max on an unterminated array. */
	const char raw[4] = { 'a', 'b', 'c', 'd' };
	assert_int_equal(fwlibc_strnlen(raw, sizeof(raw)), 4);

	static const char *const words[] = { "", "a", "ab", "abc", "abd", "b", "\x80", "\x7f", "ab\x80" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		for (size_t j = 0; j < sizeof(words) / sizeof(words[0]); j++) {
			const char *a = words[i], *b = words[j];
			assert_int_equal(sign(fwlibc_strcmp(a, b)), sign(strcmp(a, b)));
			for (size_t n = 0; n < 5; n++)
				assert_int_equal(sign(fwlibc_strncmp(a, b, n)), sign(strncmp(a, b, n)));
		}
	}
	/* strncmp stops at n even without terminators. */
	const char r1[3] = { 'x', 'y', 'z' }, r2[3] = { 'x', 'y', 'q' };
	assert_int_equal(fwlibc_strncmp(r1, r2, 2), 0);
	assert_true(fwlibc_strncmp(r1, r2, 3) > 0);

	const char *s = "hello";
	assert_ptr_equal(fwlibc_strchr(s, 'h'), s);
	assert_ptr_equal(fwlibc_strchr(s, 'l'), s + 2);
	assert_ptr_equal(fwlibc_strchr(s, 'o'), s + 4);
	assert_ptr_equal(fwlibc_strchr(s, '\0'), s + 5);
	assert_null(fwlibc_strchr(s, 'z'));
	const char *hi = "a\xe9";
	assert_ptr_equal(fwlibc_strchr(hi, 0xe9), hi + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memcpy_memset),
		cmocka_unit_test(test_memmove_overlap),
		cmocka_unit_test(test_memcmp),
		cmocka_unit_test(test_memchr),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
