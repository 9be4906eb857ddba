/* test_timer.c — the deadline heap against a brute-force model: arm,
 * re-arm, cancel, pop in deadline order, capacity, and misuse panics. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/timer.h"

/* Runs fn in a child; true when the child aborted (our panic path). */
static bool dies(void (*fn)(void))
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 2);
		fn();
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void check_heap(const struct timer_heap *h)
{
	for (uint32_t i = 0; i < h->count; i++) {
		assert_int_equal(h->slots[i]->heap_index, i);
		if (i > 0)
			assert_true(h->slots[(i - 1) / 2]->deadline_ns <= h->slots[i]->deadline_ns);
	}
}

static void test_empty(void **state)
{
	(void)state;
	struct timer *slots[4];
	struct timer_heap h;
	timer_heap_init(&h, slots, 4);
	assert_int_equal(timer_next_deadline(&h), TIMER_NEVER);
	assert_null(timer_pop_expired(&h, UINT64_MAX));
	assert_int_equal(timer_count(&h), 0);

	struct timer t;
	timer_init(&t);
	assert_false(timer_armed(&t));
	timer_cancel(&h, &t); /* idle: no-op */
	assert_int_equal(timer_count(&h), 0);

	struct timer_heap z;
	timer_heap_init(&z, NULL, 0);
	assert_false(timer_arm(&z, &t, 5));
	assert_false(timer_armed(&t));
}

static void test_single(void **state)
{
	(void)state;
	struct timer *slots[1];
	struct timer_heap h;
	struct timer t;
	timer_heap_init(&h, slots, 1);
	timer_init(&t);

	assert_true(timer_arm(&h, &t, 100));
	assert_true(timer_armed(&t));
	assert_int_equal(timer_next_deadline(&h), 100);
	assert_null(timer_pop_expired(&h, 99));
	assert_ptr_equal(timer_pop_expired(&h, 100), &t);
	assert_false(timer_armed(&t));
	assert_null(timer_pop_expired(&h, 1000));

	/* Re-arm moves the same handle, even when the heap is full. */
	assert_true(timer_arm(&h, &t, 50));
	assert_true(timer_arm(&h, &t, 500));
	assert_int_equal(timer_count(&h), 1);
	assert_int_equal(timer_next_deadline(&h), 500);
	struct timer u;
	timer_init(&u);
	assert_false(timer_arm(&h, &u, 1)); /* full */
	assert_false(timer_armed(&u));
	timer_cancel(&h, &t);
	assert_int_equal(timer_next_deadline(&h), TIMER_NEVER);
	assert_true(timer_arm(&h, &u, 1));
}

static void test_order_and_cancel(void **state)
{
	(void)state;
	struct timer *slots[8];
	struct timer t[8];
	struct timer_heap h;
	static const uint64_t dl[8] = { 50, 10, 80, 10, 30, 70, 20, 60 };
	timer_heap_init(&h, slots, 8);
	for (int i = 0; i < 8; i++) {
		timer_init(&t[i]);
		assert_true(timer_arm(&h, &t[i], dl[i]));
		check_heap(&h);
	}
	timer_cancel(&h, &t[4]); /* 30 */
	timer_cancel(&h, &t[2]); /* 80, a leaf */
	check_heap(&h);
	assert_true(timer_arm(&h, &t[7], 5)); /* 60 -> 5 */
	check_heap(&h);
	static const uint64_t want[] = { 5, 10, 10, 20, 50, 70 };
	uint64_t last = 0;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct timer *x = timer_pop_expired(&h, 1000);
		assert_non_null(x);
		assert_int_equal(x->deadline_ns, want[i]);
		assert_true(x->deadline_ns >= last);
		last = x->deadline_ns;
		check_heap(&h);
	}
	assert_null(timer_pop_expired(&h, 1000));
}

struct owner {
	int id;
	struct timer tm;
};

static void test_owner(void **state)
{
	(void)state;
	struct owner o = { .id = 42 };
	assert_ptr_equal(TIMER_OWNER(&o.tm, struct owner, tm), &o);
	assert_int_equal(TIMER_OWNER(&o.tm, struct owner, tm)->id, 42);
}

#define N 64

static void test_random_model(void **state)
{
	(void)state;
	struct timer *slots[N];
	struct timer t[N];
	bool armed[N] = { false };
	uint64_t model[N] = { 0 };
	struct timer_heap h;
	uint32_t seed = 7;
	uint64_t now = 0;

	timer_heap_init(&h, slots, N);
	for (int i = 0; i < N; i++)
		timer_init(&t[i]);

	for (int step = 0; step < 200000; step++) {
		seed = seed * 1664525u + 1013904223u;
		uint32_t r = seed >> 8;
		int k = (int)(r % N);
		switch ((r >> 8) % 4) {
		case 0:
		case 1: {
			uint64_t d = now + (r >> 10) % 1000;
			assert_true(timer_arm(&h, &t[k], d));
			armed[k] = true;
			model[k] = d;
			break;
		}
		case 2:
			timer_cancel(&h, &t[k]);
			armed[k] = false;
			break;
		default: {
			now += (r >> 12) % 50;
			struct timer *x = timer_pop_expired(&h, now);
			uint64_t min = TIMER_NEVER;
			for (int i = 0; i < N; i++)
				if (armed[i] && model[i] < min)
					min = model[i];
			if (min <= now) {
				assert_non_null(x);
				size_t idx = (size_t)(x - t);
				assert_true(idx < N && armed[idx]);
				assert_int_equal(model[idx], min);
				assert_false(timer_armed(x));
				armed[idx] = false;
			} else {
				assert_null(x);
			}
			break;
		}
		}
		uint64_t min = TIMER_NEVER;
		uint32_t cnt = 0;
		for (int i = 0; i < N; i++) {
			assert_int_equal(timer_armed(&t[i]), armed[i]);
			if (armed[i]) {
				cnt++;
				if (model[i] < min)
					min = model[i];
			}
		}
		assert_int_equal(timer_count(&h), cnt);
		assert_int_equal(timer_next_deadline(&h), min);
		if (step % 64 == 0)
			check_heap(&h);
	}
}

static void wrong_heap(void)
{
	struct timer *s1[2], *s2[2];
	struct timer_heap a, b;
	struct timer t;
	timer_heap_init(&a, s1, 2);
	timer_heap_init(&b, s2, 2);
	timer_init(&t);
	if (!timer_arm(&a, &t, 1))
		return;
	timer_cancel(&b, &t);
}

static void wrong_heap_rearm(void)
{
	struct timer *s1[2], *s2[2];
	struct timer_heap a, b;
	struct timer t, u;
	timer_heap_init(&a, s1, 2);
	timer_heap_init(&b, s2, 2);
	timer_init(&t);
	timer_init(&u);
	if (!timer_arm(&a, &t, 1) || !timer_arm(&b, &u, 1))
		return;
	if (timer_arm(&b, &t, 3))
		return;
}

static void test_misuse_panics(void **state)
{
	(void)state;
	assert_true(dies(wrong_heap));
	assert_true(dies(wrong_heap_rearm));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_order_and_cancel),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_misuse_panics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
