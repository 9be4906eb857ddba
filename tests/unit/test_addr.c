/* test_addr.c — text parsing, prefixes and formatting of struct ip_addr.
 *
 * Expected values are written out by hand or come from glibc's inet_pton,
 * whose IPv4 grammar (four parts, no leading zeros) and RFC 4291 IPv6
 * grammar are the ones net/addr.c promises. Inputs are copied into
 * exact-size heap buffers so ASan catches any read past the length. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/addr.h"

/* Parses s (without its terminator) from an exact-size heap copy. */
static bool parse_exact(bool (*fn)(const char *, size_t, struct ip_addr *), const char *s,
			size_t len, struct ip_addr *out)
{
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len); /* NOLINT(bugprone-not-null-terminated-result): by design */
	bool ok = fn(copy, len, out);
	free(copy);
	return ok;
}

static bool v4(const char *s, struct ip_addr *out)
{
	return parse_exact(ip_parse_v4, s, strlen(s), out);
}

static bool v6(const char *s, struct ip_addr *out)
{
	return parse_exact(ip_parse_v6, s, strlen(s), out);
}

static bool prefix(const char *s, bool is_v6, struct ip_prefix *out)
{
	size_t len = strlen(s);
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len); /* NOLINT(bugprone-not-null-terminated-result): by design */
	bool ok = ip_prefix_parse(copy, len, is_v6, out);
	free(copy);
	return ok;
}

static void test_v4_valid(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint8_t b[4];
	} cases[] = {
		{"0.0.0.0", {0, 0, 0, 0}},
		{"255.255.255.255", {255, 255, 255, 255}},
		{"10.137.0.5", {10, 137, 0, 5}},
		{"10.139.1.1", {10, 139, 1, 1}},
		{"1.2.3.4", {1, 2, 3, 4}},
		{"192.168.100.200", {192, 168, 100, 200}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ip_addr a;
		assert_true(v4(cases[i].text, &a));
		assert_true(ip_is_v4(&a));
		assert_memory_equal(ip_v4_bytes(&a), cases[i].b, 4);
		/* The generic parser agrees. */
		struct ip_addr b;
		assert_true(parse_exact(ip_parse, cases[i].text, strlen(cases[i].text), &b));
		assert_true(ip_equal(&a, &b));
	}
}

static void test_v4_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", ".", "1.2.3", "1.2.3.4.5", "5.5.5.5.5", "256.0.0.1", "1.2.3.256", "1.2.3.04",
		"01.2.3.4", "010.0.0.1", "00.0.0.0", "+1.2.3.4", " 1.2.3.4", "1.2.3.4 ", "1..3.4",
		"1.2.3.", ".1.2.3", "0x1.2.3.4", "1.2.3.4/8", "1234.1.1.1", "1.2.3.-4", "127.1",
		"127/8", "137.327.0.0", "1.2.3.4\n", "1 .2.3.4", "a.b.c.d", "::1", "1,2,3,4",
		"99999999999.1.1.1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ip_addr a;
		if (v4(bad[i], &a))
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* An embedded NUL is just a bad character. */
	struct ip_addr a;
	assert_false(parse_exact(ip_parse_v4, "1.2.3.4\0", 8, &a));
	assert_false(parse_exact(ip_parse_v4, "1.2\0.3.4", 8, &a));
	assert_false(ip_parse_v4(NULL, 0, &a));
}

static void test_v6_valid(void **state)
{
	(void)state;
	static const char *const good[] = {
		"::",
		"::1",
		"1::",
		"2001:db8::1",
		"2a00:1450:4000::",
		"2001:abcd:efab::3",
		"fd09:24ef:4179:0000::3",
		"fd09:24ef:4179::3",
		"1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7::",
		"::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:1.2.3.4",
		"::ffff:10.137.0.5",
		"::1.2.3.4",
		"1::2:3.4.5.6",
		"FFFF:ffff:FfFf:0:0:0:0:0",
		"0000:0000:0000:0000:0000:0000:255.255.255.255",
		"fe80::1:2",
		"a:b::c:d",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct ip_addr a;
		uint8_t ref[16];
		assert_int_equal(inet_pton(AF_INET6, good[i], ref), 1);
		if (!v6(good[i], &a))
			fail_msg("refused \"%s\"", good[i]);
		assert_memory_equal(a.b, ref, 16);
		struct ip_addr b;
		assert_true(parse_exact(ip_parse, good[i], strlen(good[i]), &b));
		assert_true(ip_equal(&a, &b));
	}
	/* Hand-checked bytes for the embedded tail. */
	struct ip_addr a;
	assert_true(v6("::ffff:10.137.0.5", &a));
	assert_true(ip_is_v4(&a));
	static const uint8_t want[4] = {10, 137, 0, 5};
	assert_memory_equal(ip_v4_bytes(&a), want, 4);
}

static void test_v6_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", ":", ":::", "1:::2", ":1::", "1::2::3", "1:2:3:4:5:6:7:8:9",
		"1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", "12345::", "g::",
		"1:", ":1", "1::2:", "[::1]", "fe80::1%eth0", "::1.2.3", "::1.2.3.4.5",
		"::1.2.3.04", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4:5", "1.2.3.4::", " ::1", "::1 ",
		"::-1", "2001:db8::/32", "0000:0000:0000:0000:0000:0000:0000:0000:0",
		"00000:0000:0000:0000:0000:0000:255.255.255.255", "1.2.3.4",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ip_addr a;
		if (v6(bad[i], &a))
			fail_msg("accepted \"%s\"", bad[i]);
	}
	struct ip_addr a;
	assert_false(parse_exact(ip_parse_v6, "::1\0", 4, &a));
	assert_false(ip_parse_v6(NULL, 0, &a));
	assert_false(parse_exact(ip_parse, "", 0, &a));
}

/* Every truncation of valid text: never reads past the length, and the
 * verdict equals inet_pton's on the same prefix. */
static void test_truncations_agree_with_inet_pton(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"192.168.100.200", "10.0.0.1", "2001:db8:85a3::8a2e:370:7334",
		"::ffff:192.168.100.200", "1:2:3:4:5:6:7:8", "fd09:24ef:4179:0000::3",
	};
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t full = strlen(texts[t]);
		for (size_t k = 0; k <= full; k++) {
			char z[64];
			uint8_t ref[16];
			struct ip_addr a;
			memcpy(z, texts[t], k);
			z[k] = '\0';
			bool want4 = inet_pton(AF_INET, z, ref) == 1;
			bool got4 = parse_exact(ip_parse_v4, texts[t], k, &a);
			assert_int_equal(got4, want4);
			if (got4)
				assert_memory_equal(ip_v4_bytes(&a), ref, 4);
			bool want6 = inet_pton(AF_INET6, z, ref) == 1;
			bool got6 = parse_exact(ip_parse_v6, texts[t], k, &a);
			if (got6 != want6)
				fail_msg("\"%s\": ours %d, inet_pton %d", z, got6, want6);
			if (got6)
				assert_memory_equal(a.b, ref, 16);
		}
	}
}

static void test_prefix_parse_v4(void **state)
{
	(void)state;
	struct ip_prefix p;
	struct ip_addr want;

	assert_true(prefix("10.0.0.0/8", false, &p));
	assert_int_equal(p.len, 8);
	assert_true(v4("10.0.0.0", &want));
	assert_true(ip_equal(&p.addr, &want));

	/* Bare address: /32. */
	assert_true(prefix("8.8.8.8", false, &p));
	assert_int_equal(p.len, 32);
	assert_true(v4("8.8.8.8", &want));
	assert_true(ip_equal(&p.addr, &want));

	/* Host bits cleared (dom0 accepts 127.0.0.1/24). */
	assert_true(prefix("127.0.0.1/24", false, &p));
	assert_true(v4("127.0.0.0", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(prefix("4.4.4.4/24", false, &p));
	assert_true(v4("4.4.4.0", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(prefix("255.255.255.255/9", false, &p));
	assert_true(v4("255.128.0.0", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(prefix("255.255.255.255/0", false, &p));
	assert_int_equal(p.len, 0);
	assert_true(v4("0.0.0.0", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(ip_is_v4(&p.addr));
	assert_true(prefix("1.2.3.4/32", false, &p));
	assert_true(v4("1.2.3.4", &want));
	assert_true(ip_equal(&p.addr, &want));

	static const char *const bad[] = {
		"10.0.0.0/33", "10.0.0.0/", "/8", "10.0.0.0/08", "10.0.0.0 /8", "10.0.0.0/ 8",
		"10.0.0.0/8 ", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8", "127/8", "1.2.3.4.5/32",
		"2001::1", "2001::1/64", "10.0.0.0/1000", "", "10.0.0.0/+8",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (prefix(bad[i], false, &p))
			fail_msg("accepted \"%s\"", bad[i]);
}

static void test_prefix_parse_v6(void **state)
{
	(void)state;
	struct ip_prefix p;
	struct ip_addr want;

	assert_true(prefix("2a00:1450:4000::/37", true, &p));
	assert_int_equal(p.len, 37);
	assert_true(v6("2a00:1450:4000::", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_false(ip_is_v4(&p.addr));

	assert_true(prefix("2001:abcd:efab::3", true, &p));
	assert_int_equal(p.len, 128);

	/* Host bits cleared: 2003::3/112 → 2003::/112. */
	assert_true(prefix("2003::3/112", true, &p));
	assert_true(v6("2003::", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(prefix("2a00:1457:ffff::/37", true, &p));
	assert_true(v6("2a00:1457:f800::", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(prefix("ffff::1/0", true, &p));
	assert_true(ip_is_unspecified(&p.addr));

	/* IPv4-mapped ranges become IPv4 prefixes. */
	assert_true(prefix("::ffff:10.1.2.3/120", true, &p));
	assert_true(ip_is_v4(&p.addr));
	assert_int_equal(p.len, 24);
	assert_true(v4("10.1.2.0", &want));
	assert_true(ip_equal(&p.addr, &want));
	assert_true(prefix("::ffff:0:0/96", true, &p));
	assert_true(ip_is_v4(&p.addr));
	assert_int_equal(p.len, 0);
	/* Shorter than /96 stays IPv6 and loses the ffff. */
	assert_true(prefix("::ffff:0:0/95", true, &p));
	assert_false(ip_is_v4(&p.addr));
	assert_int_equal(p.len, 95);
	assert_true(v6("::fffe:0:0", &want));
	assert_true(ip_equal(&p.addr, &want));

	static const char *const bad[] = {
		"::3/129", "2001::/", "2001::/064", "2001:: /64", "1.2.3.4", "1.2.3.4/32", "/64",
		"2001::/64/1", "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (prefix(bad[i], true, &p))
			fail_msg("accepted \"%s\"", bad[i]);
}

static bool contains(const char *pfx, bool is_v6, const char *addr)
{
	struct ip_prefix p;
	struct ip_addr a;
	assert_true(prefix(pfx, is_v6, &p));
	assert_true(parse_exact(ip_parse, addr, strlen(addr), &a));
	return ip_prefix_contains(&p, &a);
}

static void test_prefix_contains(void **state)
{
	(void)state;
	assert_true(contains("192.168.0.0/16", false, "192.168.5.5"));
	assert_false(contains("192.168.0.0/16", false, "10.0.0.1"));
	assert_false(contains("192.168.0.0/16", false, "192.169.0.0"));
	assert_true(contains("192.168.0.0/16", false, "192.168.255.255"));
	assert_true(contains("4.4.4.4/24", false, "4.4.4.8"));
	assert_true(contains("10.0.0.0/31", false, "10.0.0.1"));
	assert_false(contains("10.0.0.0/31", false, "10.0.0.2"));
	assert_true(contains("0.0.0.0/0", false, "255.255.255.255"));
	assert_true(contains("3.3.3.3", false, "3.3.3.3"));
	assert_false(contains("3.3.3.3", false, "3.3.3.2"));
	/* Families never mix. */
	assert_false(contains("0.0.0.0/0", false, "::1"));
	assert_false(contains("0.0.0.0/0", false, "2001::1"));
	assert_false(contains("::/0", true, "1.2.3.4"));
	assert_true(contains("::/0", true, "2001::1"));
	assert_true(contains("2a00:1450:4000::/37", true, "2a00:1450:47ff:ffff::1"));
	assert_false(contains("2a00:1450:4000::/37", true, "2a00:1450:4800::"));
	assert_true(contains("2002::3/128", true, "2002::3"));
	assert_false(contains("2002::3/128", true, "2002::4"));
	assert_true(contains("2003::3/112", true, "2003::5"));
	assert_false(contains("2003::3/112", true, "2003::1:5"));
	assert_true(contains("::ffff:10.0.0.0/104", true, "10.1.2.3"));

	/* A hand-built prefix with an out-of-range length is clamped, not read past. */
	struct ip_prefix p = {.len = 200};
	struct ip_addr a = {{0}};
	assert_true(ip_prefix_contains(&p, &a));
}

static void test_format(void **state)
{
	(void)state;
	struct ip_addr a;
	char buf[64];

	assert_true(v4("10.137.0.5", &a));
	assert_string_equal(ip_format(buf, sizeof(buf), &a), "10.137.0.5");
	assert_string_equal(IP_STR(&a), "10.137.0.5");
	assert_true(v6("2001:db8:0:0:1:0:0:1", &a));
	assert_string_equal(ip_format(buf, sizeof(buf), &a), "2001:db8::1:0:0:1");
	assert_true(v6("fd09:24ef:4179:0000::3", &a));
	assert_string_equal(IP_STR(&a), "fd09:24ef:4179::3");
	assert_true(v6("::", &a));
	assert_string_equal(IP_STR(&a), "::");

	/* Truncated, always terminated, never past cap. */
	assert_true(v4("192.168.100.200", &a));
	memset(buf, 'x', sizeof(buf));
	assert_ptr_equal(ip_format(buf, 5, &a), buf);
	assert_string_equal(buf, "192.");
	assert_int_equal(buf[5], 'x');
	buf[0] = 'y';
	ip_format(buf, 0, &a);
	assert_int_equal(buf[0], 'y');
	ip_format(buf, 1, &a);
	assert_int_equal(buf[0], '\0');

	/* Round trip through text for a few addresses. */
	static const char *const texts[] = {"1.2.3.4", "2001:db8::1", "::1", "fe80::1:2"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ip_addr b;
		assert_true(parse_exact(ip_parse, texts[i], strlen(texts[i]), &a));
		ip_format(buf, sizeof(buf), &a);
		assert_true(parse_exact(ip_parse, buf, strlen(buf), &b));
		assert_true(ip_equal(&a, &b));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_valid),
		cmocka_unit_test(test_v4_invalid),
		cmocka_unit_test(test_v6_valid),
		cmocka_unit_test(test_v6_invalid),
		cmocka_unit_test(test_truncations_agree_with_inet_pton),
		cmocka_unit_test(test_prefix_parse_v4),
		cmocka_unit_test(test_prefix_parse_v6),
		cmocka_unit_test(test_prefix_contains),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
