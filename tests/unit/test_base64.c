/* test_base64.c — RFC 4648 §10 vectors, strictness, bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/base64.h"

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					    "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		uint8_t out[16];
		size_t n;
		assert_true(base64_decode(coded[i], strlen(coded[i]), out, sizeof(out), &n));
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(out, plain[i], n);
	}
}

static void test_rejects_bad_input(void **state)
{
	(void)state;
	static const char *const bad[] = {"Zg", "Zg=", "Z===", "=Zm8", "Zm=8", "Zm9v\n", "Zm9 v",
					  "Zh==", "Zm9=", "Zm9vYg==Zm9v", "Zm-v", "Zm_v"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t out[16];
		size_t n = 99;
		assert_false(base64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n));
		assert_int_equal(n, 0);
	}
}

static void test_capacity_and_no_overread(void **state)
{
	(void)state;
	uint8_t out[6];
	size_t n;
	assert_true(base64_decode("Zm9vYmFy", 8, out, 6, &n));
	assert_false(base64_decode("Zm9vYmFy", 8, out, 5, &n));
	/* An exact-size heap copy: ASan catches any read past the length. */
	char *s = malloc(8);
	memcpy(s, "Zm9vYmE=", 8);
	assert_true(base64_decode(s, 8, out, 6, &n));
	assert_int_equal(n, 5);
	free(s);
}

static void test_random_seed_length(void **state)
{
	(void)state;
	/* dom0 writes base64 of 64 random bytes: 88 characters. */
	char s[89];
	memset(s, 'A', 86);
	s[86] = s[87] = '=';
	s[88] = 0;
	uint8_t out[64];
	size_t n;
	assert_true(base64_decode(s, 88, out, sizeof(out), &n));
	assert_int_equal(n, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_rejects_bad_input),
		cmocka_unit_test(test_capacity_and_no_overread),
		cmocka_unit_test(test_random_seed_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
