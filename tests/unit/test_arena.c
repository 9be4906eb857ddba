/* test_arena.c — start-up allocation: alignment, zeroing, exhaustion
 * returning NULL, and the panic on allocation after seal. */
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

#include "base/arena.h"

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

static _Alignas(64) uint8_t mem[1024];

static void test_alignment_and_zero(void **state)
{
	(void)state;
	struct arena a;
	memset(mem, 0xcc, sizeof(mem));
	arena_init(&a, mem, sizeof(mem));
	assert_int_equal(arena_used(&a), 0);

	uint8_t *p1 = arena_alloc(&a, 3, 1);
	assert_ptr_equal(p1, mem);
	assert_int_equal(arena_used(&a), 3);
	for (size_t align = 1; align <= 64; align *= 2) {
		uint8_t *p = arena_alloc(&a, 5, align);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % align, 0);
		assert_true(p >= mem && p + 5 <= mem + sizeof(mem));
		for (int i = 0; i < 5; i++)
			assert_int_equal(p[i], 0);
		/* No overlap with what came before. */
		assert_true((size_t)(p - mem) >= arena_used(&a) - 5);
		assert_int_equal(arena_used(&a), (size_t)(p - mem) + 5);
	}
	/* Bytes beyond the allocations are untouched. */
	assert_int_equal(mem[arena_used(&a)], 0xcc);
}

static void test_exhaustion(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, mem, sizeof(mem));
	assert_null(arena_alloc(&a, sizeof(mem) + 1, 1));
	assert_int_equal(arena_used(&a), 0);
	assert_null(arena_alloc(&a, SIZE_MAX, 1));
	assert_null(arena_alloc(&a, SIZE_MAX - 8, 16));
	void *p = arena_alloc(&a, sizeof(mem) - 10, 1);
	assert_non_null(p);
	assert_null(arena_alloc(&a, 11, 1));
	/* Alignment padding can make a request fail that would fit unaligned. */
	assert_null(arena_alloc(&a, 8, 64));
	assert_non_null(arena_alloc(&a, 10, 1));
	assert_int_equal(arena_used(&a), sizeof(mem));
	assert_null(arena_alloc(&a, 1, 1));
	/* A zero-size request at the very end still succeeds. */
	assert_non_null(arena_alloc(&a, 0, 1));
}

static void alloc_after_seal(void)
{
	struct arena a;
	arena_init(&a, mem, sizeof(mem));
	(void)arena_alloc(&a, 8, 8);
	arena_seal(&a);
	(void)arena_alloc(&a, 8, 8);
}

static void bad_alignment(void)
{
	struct arena a;
	arena_init(&a, mem, sizeof(mem));
	(void)arena_alloc(&a, 8, 3);
}

static void zero_alignment(void)
{
	struct arena a;
	arena_init(&a, mem, sizeof(mem));
	(void)arena_alloc(&a, 8, 0);
}

static void no_seal(void)
{
	struct arena a;
	arena_init(&a, mem, sizeof(mem));
	(void)arena_alloc(&a, 8, 8);
	(void)arena_alloc(&a, 8, 8);
}

static void test_panics(void **state)
{
	(void)state;
	assert_false(dies(no_seal)); /* the harness itself can fail */
	assert_true(dies(alloc_after_seal));
	assert_true(dies(bad_alignment));
	assert_true(dies(zero_alignment));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment_and_zero),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_panics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
