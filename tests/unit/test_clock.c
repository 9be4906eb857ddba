/* test_clock.c — the loop clock: monotonic value as set, wall clock unknown
 * until set and then advancing with the monotonic clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/clock.h"

static void test_clock(void **state)
{
	(void)state;
	/* Before any wall time is known. */
	assert_int_equal(clock_wall(), 0);
	clock_set_now(0);
	assert_int_equal(clock_now(), 0);
	clock_set_now(123456789);
	assert_int_equal(clock_now(), 123456789);
	assert_int_equal(clock_wall(), 0);
	clock_set_now(UINT64_MAX - 1);
	assert_true(clock_now() == UINT64_MAX - 1);

	/* Wall time set at mono = 5 s, a 2024 date. */
	const uint64_t epoch = 1700000000ull * NS_PER_SEC + 250;
	clock_set_now(5 * NS_PER_SEC);
	clock_set_wall(epoch);
	assert_true(clock_wall() == epoch);
	/* It advances with the monotonic clock between updates. */
	clock_set_now(5 * NS_PER_SEC + 1500 * NS_PER_MS);
	assert_true(clock_wall() == epoch + 1500 * NS_PER_MS);
	clock_set_now(3600 * NS_PER_SEC);
	assert_true(clock_wall() == epoch + (3600 - 5) * NS_PER_SEC);
	/* A later SetDateTime (wall behind the old estimate) takes effect. */
	clock_set_wall(epoch - NS_PER_SEC);
	assert_true(clock_wall() == epoch - NS_PER_SEC);
	clock_set_now(3601 * NS_PER_SEC);
	assert_true(clock_wall() == epoch);
	/* Wall time smaller than the monotonic clock still works. */
	clock_set_wall(NS_PER_SEC);
	assert_true(clock_wall() == NS_PER_SEC);
	clock_set_now(3602 * NS_PER_SEC);
	assert_true(clock_wall() == 2 * NS_PER_SEC);
	assert_int_equal(NS_PER_SEC, 1000 * NS_PER_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
