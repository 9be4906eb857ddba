/* test_log.c — levels, per-site rate limiting with a fake clock, the
 * suppressed-count line, ring overwrite counting, truncation and drain. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

static int setup(void **state)
{
	(void)state;
	log_reset();
	log_set_level(LOG_LEVEL_INFO);
	clock_set_now(1000 * NS_PER_SEC);
	return 0;
}

static size_t drain_all(void)
{
	char buf[LOG_LINE_MAX + 8];
	size_t n = 0;
	while (log_drain_line(buf, sizeof(buf)) > 0)
		n++;
	return n;
}

static void test_levels(void **state)
{
	(void)state;
	char buf[LOG_LINE_MAX + 1];

	assert_int_equal(log_get_level(), LOG_LEVEL_INFO);
	assert_true(log_enabled(LOG_LEVEL_ERROR));
	assert_true(log_enabled(LOG_LEVEL_INFO));
	assert_false(log_enabled(LOG_LEVEL_DEBUG));

	log_debug("hidden %d", 1);
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);

	log_error("e %d", 1);
	log_warn("w %s", "x");
	log_info("i %u", 3u);
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("d");
	assert_int_equal(log_drain_line(buf, sizeof(buf)), strlen("[ERROR] e 1"));
	assert_string_equal(buf, "[ERROR] e 1");
	log_drain_line(buf, sizeof(buf));
	assert_string_equal(buf, "[WARN] w x");
	log_drain_line(buf, sizeof(buf));
	assert_string_equal(buf, "[INFO] i 3");
	log_drain_line(buf, sizeof(buf));
	assert_string_equal(buf, "[DEBUG] d");
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);

	log_set_level(LOG_LEVEL_ERROR);
	log_warn("no");
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);
}

static void test_level_parse(void **state)
{
	(void)state;
	enum log_level l = LOG_LEVEL_INFO;
	assert_true(log_level_parse("error", &l));
	assert_int_equal(l, LOG_LEVEL_ERROR);
	assert_true(log_level_parse("warn", &l));
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_true(log_level_parse("info", &l));
	assert_int_equal(l, LOG_LEVEL_INFO);
	assert_true(log_level_parse("debug", &l));
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	l = LOG_LEVEL_WARN;
	assert_false(log_level_parse("", &l));
	assert_false(log_level_parse("DEBUG", &l));
	assert_false(log_level_parse("inf", &l));
	assert_false(log_level_parse("infos", &l));
	assert_false(log_level_parse("warning", &l));
	assert_false(log_level_parse(NULL, &l));
	assert_int_equal(l, LOG_LEVEL_WARN);
}

/* One call site, called n times. */
static void spam(int n, int tag)
{
	for (int i = 0; i < n; i++)
		log_warn("spam %d %d", tag, i);
}

static void test_rate_limit(void **state)
{
	(void)state;
	char buf[LOG_LINE_MAX + 1];
	char want[64];

	spam(LOG_SITE_BURST + 25, 1);
	for (int i = 0; i < LOG_SITE_BURST; i++) {
		assert_true(log_drain_line(buf, sizeof(buf)) > 0);
		snprintf(want, sizeof(want), "[WARN] spam 1 %d", i);
		assert_string_equal(buf, want);
	}
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);

	/* Still inside the window: still suppressed. */
	clock_set_now(clock_now() + LOG_SITE_WINDOW_NS - 1);
	spam(5, 2);
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);

	/* Next window: the count comes first, then the line. */
	clock_set_now(clock_now() + 1);
	spam(1, 3);
	assert_true(log_drain_line(buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "30 similar messages suppressed"));
	assert_true(log_drain_line(buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "[WARN] spam 3 0");
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);

	/* No suppression in between: no count line. */
	clock_set_now(clock_now() + 10 * LOG_SITE_WINDOW_NS);
	spam(2, 4);
	assert_int_equal(drain_all(), 2);
}

static void test_sites_independent(void **state)
{
	(void)state;
	for (int i = 0; i < 3 * LOG_SITE_BURST; i++) {
		log_warn("site a %d", i);
		log_warn("site b %d", i);
	}
	assert_int_equal(drain_all(), 2 * LOG_SITE_BURST);
}

static void test_clock_backwards(void **state)
{
	(void)state;
	spam(LOG_SITE_BURST + 1, 5);
	drain_all();
	/* A clock reset (restart, tests) must not silence a site forever. */
	clock_set_now(5);
	spam(1, 6);
	assert_int_equal(drain_all(), 2); /* count line + the line */
}

static void test_truncation(void **state)
{
	(void)state;
	char big[LOG_LINE_MAX * 2];
	char buf[LOG_LINE_MAX * 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	log_info("%s", big);
	size_t n = log_drain_line(buf, sizeof(buf));
	assert_int_equal(n, LOG_LINE_MAX);
	assert_int_equal(strlen(buf), LOG_LINE_MAX);
	assert_memory_equal(buf, "[INFO] xxx", 10);
	assert_string_equal(buf + LOG_LINE_MAX - 3, "...");

	/* Exactly LOG_LINE_MAX fits uncut. */
	size_t body = LOG_LINE_MAX - strlen("[INFO] ");
	log_info("%.*s", (int)body, big);
	n = log_drain_line(buf, sizeof(buf));
	assert_int_equal(n, LOG_LINE_MAX);
	assert_int_equal(buf[LOG_LINE_MAX - 1], 'x');

	/* A small drain buffer cuts the copy, still NUL-terminated, and the
	 * line is consumed. */
	log_info("abcdefghij");
	char small[8];
	memset(small, 'Z', sizeof(small));
	assert_int_equal(log_drain_line(small, sizeof(small)), 7);
	assert_string_equal(small, "[INFO] ");
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);

	/* cap 0 never writes and leaves the line. */
	log_info("keep");
	assert_int_equal(log_drain_line(small, 0), 0);
	assert_int_equal(log_drain_line(buf, sizeof(buf)), strlen("[INFO] keep"));
}

static void test_control_chars(void **state)
{
	(void)state;
	char buf[LOG_LINE_MAX + 1];
	log_info("a\nb%s", "\r\x1b[2J\x7f");
	log_drain_line(buf, sizeof(buf));
	assert_null(strchr(buf, '\n'));
	assert_null(strchr(buf, '\r'));
	assert_null(strchr(buf, '\x1b'));
	assert_null(strchr(buf, '\x7f'));
	assert_int_equal(strlen(buf), strlen("[INFO] a?b??[2J?"));
}

static void test_overwrite(void **state)
{
	(void)state;
	char buf[LOG_LINE_MAX + 1];
	char line[200];
	memset(line, 'y', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';

	/* Each line from a distinct window so the limiter lets it through. */
	const int total = 2000; /* 2000 * ~210 bytes is far more than the ring */
	for (int i = 0; i < total; i++) {
		clock_set_now(clock_now() + LOG_SITE_WINDOW_NS);
		log_info("%06d %s", i, line);
	}
	uint64_t lost = log_overwritten_lines();
	assert_true(lost > 0);
	size_t kept = 0;
	int expect = (int)lost;
	size_t n;
	while ((n = log_drain_line(buf, sizeof(buf))) > 0) {
		/* Survivors are the newest lines, in order. */
		int seq = 0;
		assert_int_equal(sscanf(buf, "[INFO] %d", &seq), 1);
		assert_int_equal(seq, expect);
		expect++;
		kept++;
	}
	assert_int_equal(kept + lost, (size_t)total);
	assert_int_equal(expect, total);

	/* After draining everything the ring is reusable, still counting. */
	log_info("after");
	assert_true(log_drain_line(buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "[INFO] after");
	assert_int_equal(log_overwritten_lines(), lost);

	log_reset();
	assert_int_equal(log_overwritten_lines(), 0);
}

static void test_reset_empties(void **state)
{
	(void)state;
	char buf[64];
	log_info("one");
	log_info("two");
	log_reset();
	assert_int_equal(log_drain_line(buf, sizeof(buf)), 0);
}

static void test_interleaved_wraparound(void **state)
{
	(void)state;
	/* Push and drain in steps so records straddle the ring's end. */
	char buf[LOG_LINE_MAX + 1];
	char want[LOG_LINE_MAX + 1];
	for (int i = 0; i < 5000; i++) {
		clock_set_now(clock_now() + LOG_SITE_WINDOW_NS);
		log_info("line %d %.*s", i, i % 150, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
						      "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
						      "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
		assert_true(log_drain_line(buf, sizeof(buf)) > 0);
		snprintf(want, sizeof(want), "[INFO] line %d %.*s", i, i % 150,
			 "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
			 "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
			 "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
		assert_string_equal(buf, want);
	}
	assert_int_equal(log_overwritten_lines(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_levels, setup),
		cmocka_unit_test_setup(test_level_parse, setup),
		cmocka_unit_test_setup(test_rate_limit, setup),
		cmocka_unit_test_setup(test_sites_independent, setup),
		cmocka_unit_test_setup(test_clock_backwards, setup),
		cmocka_unit_test_setup(test_truncation, setup),
		cmocka_unit_test_setup(test_control_chars, setup),
		cmocka_unit_test_setup(test_overwrite, setup),
		cmocka_unit_test_setup(test_reset_empties, setup),
		cmocka_unit_test_setup(test_interleaved_wraparound, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
