/* test_pool.c — fixed pools: capacity, exhaustion, reuse, zeroing, index
 * mapping, arena-backed init, and panics on double free / foreign pointer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/pool.h"

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

struct obj {
	uint64_t a;
	uint32_t b;
	uint8_t c;
};

#define CAP 16

static struct obj objs[CAP];
static uint32_t links[CAP];

static void test_alloc_until_full(void **state)
{
	(void)state;
	struct pool p;
	void *got[CAP];
	pool_init(&p, objs, links, sizeof(struct obj), CAP);
	assert_int_equal(pool_capacity(&p), CAP);
	assert_int_equal(pool_count(&p), 0);
	for (int i = 0; i < CAP; i++) {
		got[i] = pool_alloc(&p);
		assert_non_null(got[i]);
		/* Inside the caller's array, at an element boundary. */
		assert_true((struct obj *)got[i] >= objs && (struct obj *)got[i] < objs + CAP);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(got[i], got[j]);
		assert_int_equal(pool_count(&p), (uint32_t)i + 1);
	}
	assert_null(pool_alloc(&p));
	assert_null(pool_alloc(&p));
	assert_int_equal(pool_count(&p), CAP);

	pool_free(&p, got[5]);
	assert_int_equal(pool_count(&p), CAP - 1);
	void *again = pool_alloc(&p);
	assert_ptr_equal(again, got[5]);
	assert_null(pool_alloc(&p));
}

static void test_zeroed_and_index(void **state)
{
	(void)state;
	struct pool p;
	pool_init(&p, objs, links, sizeof(struct obj), CAP);
	struct obj *o = pool_alloc(&p);
	o->a = 0x1111;
	o->b = 7;
	o->c = 9;
	uint32_t idx = pool_index_of(&p, o);
	assert_ptr_equal(&objs[idx], o);
	assert_ptr_equal(pool_at(&p, idx), o);
	pool_free(&p, o);
	assert_null(pool_at(&p, idx));
	struct obj *n = pool_alloc(&p);
	assert_ptr_equal(n, o);
	assert_int_equal(n->a, 0);
	assert_int_equal(n->b, 0);
	assert_int_equal(n->c, 0);

	assert_null(pool_at(&p, CAP));
	assert_null(pool_at(&p, UINT32_MAX));
	for (uint32_t i = 0; i < CAP; i++)
		if (i != idx)
			assert_null(pool_at(&p, i));
}

static void test_random_model(void **state)
{
	(void)state;
	struct pool p;
	bool used[CAP] = { false };
	uint32_t count = 0;
	uint32_t seed = 99;
	pool_init(&p, objs, links, sizeof(struct obj), CAP);
	for (int step = 0; step < 100000; step++) {
		seed = seed * 1664525u + 1013904223u;
		uint32_t r = seed >> 8;
		if (r % 2) {
			struct obj *o = pool_alloc(&p);
			if (count == CAP) {
				assert_null(o);
			} else {
				assert_non_null(o);
				uint32_t i = pool_index_of(&p, o);
				assert_false(used[i]);
				used[i] = true;
				o->b = i;
				count++;
			}
		} else {
			uint32_t i = (r >> 4) % CAP;
			if (used[i]) {
				struct obj *o = pool_at(&p, i);
				assert_non_null(o);
				assert_int_equal(o->b, i);
				pool_free(&p, o);
				used[i] = false;
				count--;
			} else {
				assert_null(pool_at(&p, i));
			}
		}
		assert_int_equal(pool_count(&p), count);
	}
}

static void test_arena_backed(void **state)
{
	(void)state;
	static uint8_t mem[4096];
	struct arena a;
	struct pool p;
	arena_init(&a, mem, sizeof(mem));
	/* 10-byte objects with 8-byte alignment use a 16-byte stride. */
	assert_true(pool_init_arena(&p, &a, 10, 8, 20));
	uint8_t *prev = NULL;
	for (int i = 0; i < 20; i++) {
		uint8_t *o = pool_alloc(&p);
		assert_non_null(o);
		assert_int_equal((uintptr_t)o % 8, 0);
		if (prev)
			assert_true(o - prev >= 10);
		memset(o, 0xee, 10); /* ASan would catch an overlap with links */
		prev = o;
	}
	assert_null(pool_alloc(&p));
	for (uint32_t i = 0; i < 20; i++)
		assert_non_null(pool_at(&p, i));

	/* Too large for what is left: false, not a crash. */
	struct pool q;
	assert_false(pool_init_arena(&q, &a, 64, 8, 1000));
	/* Overflowing sizes are refused. */
	assert_false(pool_init_arena(&q, &a, SIZE_MAX / 2, 8, 4));
	assert_false(pool_init_arena(&q, &a, SIZE_MAX - 2, 8, 1));
}

static void test_zero_capacity(void **state)
{
	(void)state;
	struct pool p;
	pool_init(&p, NULL, NULL, 8, 0);
	assert_null(pool_alloc(&p));
	assert_null(pool_at(&p, 0));
	assert_int_equal(pool_count(&p), 0);
}

static struct pool dp;

static void setup_dp(void)
{
	pool_init(&dp, objs, links, sizeof(struct obj), CAP);
}

static void double_free(void)
{
	setup_dp();
	void *o = pool_alloc(&dp);
	pool_free(&dp, o);
	pool_free(&dp, o);
}

static void free_never_allocated(void)
{
	setup_dp();
	(void)pool_alloc(&dp);
	pool_free(&dp, &objs[3]);
}

static void free_foreign_stack(void)
{
	struct obj local;
	setup_dp();
	pool_free(&dp, &local);
}

static void free_past_end(void)
{
	setup_dp();
	pool_free(&dp, &objs[CAP]);
}

static void free_misaligned(void)
{
	setup_dp();
	void *o = pool_alloc(&dp);
	pool_free(&dp, (uint8_t *)o + 1);
}

static void index_of_free(void)
{
	setup_dp();
	(void)pool_index_of(&dp, &objs[2]);
}

static void test_misuse_panics(void **state)
{
	(void)state;
	assert_true(dies(double_free));
	assert_true(dies(free_never_allocated));
	assert_true(dies(free_foreign_stack));
	assert_true(dies(free_past_end));
	assert_true(dies(free_misaligned));
	assert_true(dies(index_of_free));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_until_full),
		cmocka_unit_test(test_zeroed_and_index),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_arena_backed),
		cmocka_unit_test(test_zero_capacity),
		cmocka_unit_test(test_misuse_panics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
