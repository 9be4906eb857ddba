/* test_pvclock.c — xen/pvclock.h: scaling TSC deltas to ns with Xen's
 * mul/shift, both shift directions, and a TSC read behind the stamp (from
 * another pCPU or a lagging emulated TSC), which must count as no time
 * elapsed rather than wrap to a huge time; shifts no Xen sends (|shift| >=
 * 64) are not undefined behaviour either. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "xen/pvclock.h"

static const struct pvclock_sample at_1ghz = {
	.tsc_timestamp = 1000000, .system_time = 5000000000ull,
	.tsc_to_system_mul = 0x80000000u, .tsc_shift = 1, /* x2 x0.5 = 1 ns/tick */
};

static void test_one_ns_per_tick(void **state)
{
	(void)state;
	assert_int_equal(pvclock_ns(&at_1ghz, at_1ghz.tsc_timestamp), at_1ghz.system_time);
	assert_int_equal(pvclock_ns(&at_1ghz, at_1ghz.tsc_timestamp + 12345),
			 at_1ghz.system_time + 12345);
}

static void test_negative_shift(void **state)
{
	(void)state;
	struct pvclock_sample s = at_1ghz;
	s.tsc_shift = -1; /* /2 x0.5 = 0.25 ns/tick */
	assert_int_equal(pvclock_ns(&s, s.tsc_timestamp + 4000), s.system_time + 1000);
}

static void test_three_ghz(void **state)
{
	(void)state;
	struct pvclock_sample s = at_1ghz;
	s.tsc_to_system_mul = 0x55555555u; /* 1/3 */
	s.tsc_shift = 0;
	uint64_t ns = pvclock_ns(&s, s.tsc_timestamp + 3000000000ull); /* one second */
	assert_true(ns >= s.system_time + 999999999ull && ns <= s.system_time + 1000000000ull);
}

static void test_absurd_shift_is_no_time(void **state)
{
	(void)state;
	struct pvclock_sample s = at_1ghz;
	for (int sh = -128; sh < 128; sh += 1) {
		s.tsc_shift = (int8_t)sh;
		uint64_t ns = pvclock_ns(&s, s.tsc_timestamp + 1000);
		if (sh >= 64 || sh <= -64)
			assert_int_equal(ns, s.system_time);
		else
			assert_true(ns >= s.system_time);
	}
}

static void test_tsc_behind_stamp_is_no_time(void **state)
{
	(void)state;
	for (uint64_t behind = 1; behind < (1ull << 40); behind = behind * 7 + 3)
		assert_int_equal(pvclock_ns(&at_1ghz, at_1ghz.tsc_timestamp - behind),
				 at_1ghz.system_time);
}

/* Over varied samples: never before system_time, never decreasing as
 * the TSC advances. */
static void test_monotonic_in_tsc(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		struct pvclock_sample s = {
			.tsc_timestamp = x >> 4, .system_time = (x >> 8) & 0xffffffffffffull,
			.tsc_to_system_mul = (uint32_t)x | 1u, .tsc_shift = (int8_t)((int)(x % 9) - 4),
		};
		uint64_t prev = s.system_time;
		for (uint64_t d = 0; d < (1ull << 30); d = d * 3 + 1 + (x & 0xff)) {
			uint64_t ns = pvclock_ns(&s, s.tsc_timestamp + d);
			assert_true(ns >= prev);
			prev = ns;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_ns_per_tick),
		cmocka_unit_test(test_negative_shift),
		cmocka_unit_test(test_three_ghz),
		cmocka_unit_test(test_tsc_behind_stamp_is_no_time),
		cmocka_unit_test(test_absurd_shift_is_no_time),
		cmocka_unit_test(test_monotonic_in_tsc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
