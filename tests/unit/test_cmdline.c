/* test_cmdline.c — the kernel command line: defaults, each option in both
 * spellings, and every kind of bad word rejecting the whole line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "qubes/cmdline.h"

static bool parse(const char *s, struct cmdline *c, char *err)
{
	return cmdline_parse(s, strlen(s), c, err, 128);
}

static void assert_v4(const struct ip_addr *a, uint8_t x, uint8_t y, uint8_t z, uint8_t w)
{
	const uint8_t want[4] = {x, y, z, w};
	assert_true(ip_is_v4(a));
	assert_memory_equal(ip_v4_bytes(a), want, 4);
}

static void test_empty_gives_defaults(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	assert_true(parse("", &c, err));
	assert_false(c.has_ipv4 || c.has_ipv4_gw || c.has_ipv4_dns || c.has_ipv4_dns2);
	assert_int_equal(c.nat_table_size, CMDLINE_NAT_TABLE_DEFAULT);
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_v4(&c.ipv4_dns, 10, 139, 1, 1);
	assert_v4(&c.ipv4_dns2, 10, 139, 1, 2);
	assert_false(cmdline_manual_network(&c));
	assert_true(parse("   \t ", &c, err));
}

static void test_all_options(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	assert_true(parse("--ipv4=10.137.0.5 --ipv4-gw 10.137.0.9  --ipv4-dns=1.1.1.1 "
			  "--ipv4-dns2 9.9.9.9 --nat-table-size=20000 --log-level=debug",
			  &c, err));
	assert_v4(&c.ipv4, 10, 137, 0, 5);
	assert_v4(&c.ipv4_gw, 10, 137, 0, 9);
	assert_v4(&c.ipv4_dns, 1, 1, 1, 1);
	assert_v4(&c.ipv4_dns2, 9, 9, 9, 9);
	assert_int_equal(c.nat_table_size, 20000);
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
	assert_true(cmdline_manual_network(&c));
}

static void test_manual_needs_both_nonzero(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	assert_true(parse("--ipv4=10.137.0.5", &c, err));
	assert_false(cmdline_manual_network(&c));
	assert_true(parse("--ipv4=0.0.0.0 --ipv4-gw=0.0.0.0", &c, err));
	assert_false(cmdline_manual_network(&c));
}

static void test_nat_table_bounds(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	assert_true(parse("--nat-table-size=1000000", &c, err));
	assert_int_equal(c.nat_table_size, 1000000);
	assert_true(parse("--nat-table-size=16", &c, err));
	const char *bad[] = {"--nat-table-size=1000001", "--nat-table-size=15", "--nat-table-size=",
			     "--nat-table-size=-5", "--nat-table-size=12a", "--nat-table-size=99999999999",
			     "--nat-table-size"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(parse(bad[i], &c, err));
		assert_non_null(strstr(err, "--nat-table-size"));
		assert_int_equal(c.nat_table_size, CMDLINE_NAT_TABLE_DEFAULT);
	}
}

static void test_rejects_bad_words(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	const char *bad[] = {
		"--ipv4=10.137.0", "--ipv4=10.137.0.256", "--ipv4=fd00::1", "--ipv4= 10.0.0.1",
		"--log-level=verbose", "--log-level=", "--ipv5=1.2.3.4", "ipv4=1.2.3.4", "-l",
		"--ipv4=1.2.3.4 --bogus", "--ipv4-gw",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(parse(bad[i], &c, err));
		assert_true(strlen(err) > 0);
		/* All-or-nothing: nothing of a rejected line is kept. */
		assert_false(c.has_ipv4);
	}
	assert_false(parse("--frobnicate", &c, err));
	assert_non_null(strstr(err, "--frobnicate"));
}

static void test_too_long(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	static char line[CMDLINE_MAX_LEN + 2];
	memset(line, ' ', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	assert_false(parse(line, &c, err));
	line[CMDLINE_MAX_LEN] = 0;
	assert_true(parse(line, &c, err));
}

static void test_embedded_nul_and_no_overread(void **state)
{
	(void)state;
	struct cmdline c;
	char err[128];
	const char s[] = "--ipv4=1.2.3.4\0--ipv4-gw=5.6.7.8";
	assert_true(cmdline_parse(s, sizeof(s) - 1, &c, err, sizeof(err)));
	assert_v4(&c.ipv4_gw, 5, 6, 7, 8);
	/* A length that cuts the value must not read past it. */
	assert_false(cmdline_parse("--ipv4=1.2.3.4", 10, &c, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_gives_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_manual_needs_both_nonzero),
		cmocka_unit_test(test_nat_table_bounds),
		cmocka_unit_test(test_rejects_bad_words),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_embedded_nul_and_no_overread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
