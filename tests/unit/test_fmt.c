/* test_fmt.c — the printf subset against the host C library's snprintf as an
 * independent reference, truncation at every cap, and RFC 5952 vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "base/fmt.h"

/* Formats with both implementations at every cap from 0 to full+2 and
 * compares return values and buffer contents. Also checks that nothing is
 * written past cap (guard bytes). */
#define CHECK_BOTH(...)                                                              \
	do {                                                                         \
		char ref_[512];                                                      \
		int rn_ = snprintf(ref_, sizeof(ref_), __VA_ARGS__);                 \
		assert_true(rn_ >= 0 && (size_t)rn_ < sizeof(ref_));                 \
		for (size_t cap_ = 0; cap_ <= (size_t)rn_ + 2; cap_++) {             \
			char got_[520];                                              \
			memset(got_, 'Z', sizeof(got_));                             \
			int gn_ = fmt_snprintf(got_, cap_, __VA_ARGS__);             \
			assert_int_equal(gn_, rn_);                                  \
			if (cap_ > 0) {                                              \
				size_t keep_ = MINSZ(cap_ - 1, (size_t)rn_);         \
				assert_memory_equal(got_, ref_, keep_);              \
				assert_int_equal(got_[keep_], '\0');                 \
			}                                                            \
			for (size_t g_ = cap_; g_ < sizeof(got_); g_++)              \
				assert_int_equal(got_[g_], 'Z');                     \
		}                                                                    \
	} while (0)

#define MINSZ(a, b) ((a) < (b) ? (a) : (b))

static void test_plain_and_percent(void **state)
{
	(void)state;
	CHECK_BOTH("hello");
	CHECK_BOTH("%%");
	CHECK_BOTH("a%%b%%");
	CHECK_BOTH("%s", "");
}

static void test_char_and_string(void **state)
{
	(void)state;
	CHECK_BOTH("%c", 'x');
	CHECK_BOTH("[%5c][%-5c]", 'a', 'b');
	CHECK_BOTH("%s", "string");
	CHECK_BOTH("[%10s][%-10s][%2s]", "abc", "def", "longer");
	CHECK_BOTH("[%.3s][%.0s][%.10s]", "abcdef", "xyz", "short");
	CHECK_BOTH("[%.*s]", 4, "abcdefgh");
	CHECK_BOTH("[%8.*s]", 2, "abcdefgh");
	CHECK_BOTH("[%-8.3s]", "abcdefgh");
	CHECK_BOTH("[%*s][%-*s]", 6, "ab", 6, "cd");
	CHECK_BOTH("[%*s]", -6, "ab");
}

static void test_precision_string_not_nul_terminated(void **state)
{
	(void)state;
	/* %.*s must not read beyond the precision. */
	const char raw[3] = { 'a', 'b', 'c' };
	char out[8];
	assert_int_equal(fmt_snprintf(out, sizeof(out), "%.*s", 3, raw), 3);
	assert_string_equal(out, "abc");
}

static void test_null_string(void **state)
{
	(void)state;
	char out[16];
	const char *volatile nul = NULL;
	assert_int_equal(fmt_snprintf(out, sizeof(out), "%s", nul), 6);
	assert_string_equal(out, "(null)");
}

static void test_signed(void **state)
{
	(void)state;
	static const int ints[] = { 0, 1, -1, 9, 10, -10, 12345, -98765, INT_MAX, INT_MIN };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		int v = ints[i];
		CHECK_BOTH("%d", v);
		CHECK_BOTH("%i", v);
		CHECK_BOTH("[%8d][%-8d][%08d]", v, v, v);
		CHECK_BOTH("[%+d][% d][%+05d]", v, v, v);
		CHECK_BOTH("[%.3d][%6.3d][%.0d]", v, v, v);
		CHECK_BOTH("[%hd][%hhd]", (short)v, (signed char)v);
	}
	static const long long lls[] = { 0, 1, -1, LLONG_MAX, LLONG_MIN, 1234567890123LL };
	for (size_t i = 0; i < sizeof(lls) / sizeof(lls[0]); i++) {
		CHECK_BOTH("%lld", lls[i]);
		CHECK_BOTH("%ld", (long)lls[i]);
		CHECK_BOTH("[%25lld][%-25lld][%025lld]", lls[i], lls[i], lls[i]);
		CHECK_BOTH("%zd", (ssize_t)lls[i]);
	}
}

static void test_unsigned_and_hex(void **state)
{
	(void)state;
	static const unsigned long long vals[] = {
		0, 1, 9, 10, 15, 16, 255, 0xdeadbeef, UINT_MAX, 0x123456789abcdefULL, ULLONG_MAX,
	};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		unsigned long long v = vals[i];
		unsigned u = (unsigned)v;
		CHECK_BOTH("%u %x %X", u, u, u);
		CHECK_BOTH("[%10u][%-10x][%010X]", u, u, u);
		CHECK_BOTH("[%#x][%#X][%#010x]", u, u, u);
		CHECK_BOTH("[%.4x][%8.4X][%.0u]", u, u, u);
		CHECK_BOTH("%llu %llx %llX", v, v, v);
		CHECK_BOTH("%lu %lx", (unsigned long)v, (unsigned long)v);
		CHECK_BOTH("%zu %zx", (size_t)v, (size_t)v);
		CHECK_BOTH("[%hu][%hhx]", (unsigned short)v, (unsigned char)v);
		CHECK_BOTH("[%020llx][%-20llu]", v, v);
	}
}

static void test_pointer(void **state)
{
	(void)state;
	int x;
	char out[64], ref[64];
	fmt_snprintf(out, sizeof(out), "%p", (void *)&x);
	/* glibc prints %p as 0x + lower-case hex, like ours. */
	snprintf(ref, sizeof(ref), "0x%llx", (unsigned long long)(uintptr_t)&x);
	assert_string_equal(out, ref);
	CHECK_BOTH("%p", (void *)&x);
	fmt_snprintf(out, sizeof(out), "%p", (void *)0);
	assert_string_equal(out, "0x0");
}

static void test_unsupported_and_dangling(void **state)
{
	(void)state;
	char out[32];
	/* %q is not a conversion; printed as "?" and no argument consumed.
	 * Built at run time to keep the compiler's format checker quiet. */
	char f1[] = "a%qb%d";
	assert_int_equal(fmt_snprintf(out, sizeof(out), f1, 7), 4);
	assert_string_equal(out, "a?b7");
	char f2[] = "end%";
	assert_int_equal(fmt_snprintf(out, sizeof(out), f2, 0), 4);
	assert_string_equal(out, "end?");
	char f3[] = "%f";
	assert_int_equal(fmt_snprintf(out, sizeof(out), f3, 0), 1);
	assert_string_equal(out, "?");
}

static void test_mixed_long(void **state)
{
	(void)state;
	CHECK_BOTH("conn %s:%u -> %s:%u proto %d len %zu flags %#x", "10.0.0.1", 1234u,
		   "192.168.1.1", 80u, 6, (size_t)1500, 0x12u);
	char big[300];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_BOTH("<%s>", big);
}

static void test_cap_zero_null_buffer(void **state)
{
	(void)state;
	/* With cap 0 the buffer is never touched, so NULL is fine. */
	assert_int_equal(fmt_snprintf(NULL, 0, "%d-%s", 42, "xy"), 5);
}

static void test_huge_width_saturates(void **state)
{
	(void)state;
	char out[8];
	char f[] = "%99999999999999999999d";
	int n = fmt_snprintf(out, sizeof(out), f, 1);
	assert_true(n > 0);
	assert_int_equal(strlen(out), sizeof(out) - 1);
}

static void test_ipv4(void **state)
{
	(void)state;
	static const struct {
		uint8_t a[4];
		const char *s;
	} v[] = {
		{ { 0, 0, 0, 0 }, "0.0.0.0" },
		{ { 255, 255, 255, 255 }, "255.255.255.255" },
		{ { 10, 137, 0, 1 }, "10.137.0.1" },
		{ { 192, 168, 100, 9 }, "192.168.100.9" },
		{ { 1, 20, 200, 0 }, "1.20.200.0" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char buf[FMT_IPV4_LEN];
		assert_ptr_equal(fmt_ipv4(buf, v[i].a), buf);
		assert_string_equal(buf, v[i].s);
	}
	char out[64];
	fmt_snprintf(out, sizeof(out), "%s/%s", IPV4_STR(v[2].a), IPV4_STR(v[3].a));
	assert_string_equal(out, "10.137.0.1/192.168.100.9");
}

static void parse_hex_groups(uint8_t a[16], const uint16_t g[8])
{
	for (int i = 0; i < 8; i++) {
		a[2 * i] = (uint8_t)(g[i] >> 8);
		a[2 * i + 1] = (uint8_t)g[i];
	}
}

static void test_ipv6_rfc5952(void **state)
{
	(void)state;
	static const struct {
		uint16_t g[8];
		const char *s;
	} v[] = {
		{ { 0, 0, 0, 0, 0, 0, 0, 0 }, "::" },
		{ { 0, 0, 0, 0, 0, 0, 0, 1 }, "::1" },
		{ { 1, 0, 0, 0, 0, 0, 0, 0 }, "1::" },
		{ { 0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 }, "2001:db8::1" },
		/* §4.1 leading zeros dropped; §4.3 lower case. */
		{ { 0x2001, 0x0db8, 0xAAAA, 0x00bb, 0x000c, 0, 0, 0xABCD },
		  "2001:db8:aaaa:bb:c::abcd" },
		/* §4.2.2: a single zero group is not shortened. */
		{ { 0x2001, 0xdb8, 0, 1, 1, 1, 1, 1 }, "2001:db8:0:1:1:1:1:1" },
		/* §4.2.3: longest run wins. */
		{ { 0x2001, 0, 0, 1, 0, 0, 0, 1 }, "2001:0:0:1::1" },
		/* §4.2.3: ties go to the first run. */
		{ { 0x2001, 0xdb8, 0, 0, 1, 0, 0, 1 }, "2001:db8::1:0:0:1" },
		{ { 0, 0, 1, 0, 0, 1, 0, 0 }, "::1:0:0:1:0:0" },
		/* Leading and trailing runs. */
		{ { 0, 0, 0, 0xfe80, 1, 2, 3, 4 }, "::fe80:1:2:3:4" },
		{ { 0xfe80, 1, 2, 3, 4, 0, 0, 0 }, "fe80:1:2:3:4::" },
		{ { 0xfe80, 0, 0, 0, 0x200, 0x5efe, 0xc0a8, 1 }, "fe80::200:5efe:c0a8:1" },
		{ { 0, 1, 2, 3, 4, 5, 6, 0 }, "0:1:2:3:4:5:6:0" },
		{ { 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff },
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
		{ { 1, 0, 0, 0, 0, 0, 0, 1 }, "1::1" },
		{ { 1, 2, 3, 4, 5, 6, 0, 0 }, "1:2:3:4:5:6::" },
		{ { 0, 0, 3, 4, 5, 6, 7, 8 }, "::3:4:5:6:7:8" },
		/* §5: IPv4-mapped uses the dotted quad. */
		{ { 0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304 }, "::ffff:1.2.3.4" },
		{ { 0, 0, 0, 0, 0, 0xffff, 0xc0a8, 0x0001 }, "::ffff:192.168.0.1" },
		{ { 0, 0, 0, 0, 0, 0xffff, 0, 0 }, "::ffff:0.0.0.0" },
		/* Not mapped: different prefix. */
		{ { 0, 0, 0, 0, 1, 0xffff, 0x0102, 0x0304 }, "::1:ffff:102:304" },
		{ { 0, 0, 0, 0, 0, 0xfffe, 0x0102, 0x0304 }, "::fffe:102:304" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t a[16];
		char buf[FMT_IPV6_LEN];
		parse_hex_groups(a, v[i].g);
		assert_ptr_equal(fmt_ipv6(buf, a), buf);
		assert_string_equal(buf, v[i].s);
	}
}

/* Independent check of the rules on random addresses with few distinct
 * group values (so zero runs are frequent): the text round-trips through a
 * simple parser, has at most one "::", and no run of 2+ zero groups survives. */
static int parse_ipv6_text(const char *s, uint16_t g[8])
{
	uint16_t head[8], tail[8];
	int nh = 0, nt = 0, dbl = 0;
	const char *p = s;
	if (p[0] == ':' && p[1] == ':') {
		dbl = 1;
		p += 2;
	}
	while (*p) {
		unsigned v = 0;
		int nd = 0;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')) {
			v = v * 16 + (unsigned)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
			p++;
			nd++;
		}
		if (nd == 0 || nd > 4)
			return -1;
		if (dbl)
			tail[nt++] = (uint16_t)v;
		else
			head[nh++] = (uint16_t)v;
		if (nh + nt > 8)
			return -1;
		if (*p == ':') {
			p++;
			if (*p == ':') {
				if (dbl)
					return -1;
				dbl = 1;
				p++;
			} else if (*p == '\0') {
				return -1;
			}
		}
	}
	if (!dbl && nh != 8)
		return -1;
	if (dbl && nh + nt > 6)
		return -1; /* "::" must stand for at least two groups */
	memset(g, 0, 16);
	memcpy(g, head, (size_t)nh * 2);
	memcpy(g + 8 - nt, tail, (size_t)nt * 2);
	return 0;
}

static void test_ipv6_random_roundtrip(void **state)
{
	(void)state;
	uint32_t seed = 12345;
	for (int iter = 0; iter < 20000; iter++) {
		uint16_t g[8], back[8];
		for (int i = 0; i < 8; i++) {
			seed = seed * 1103515245u + 12345u;
			uint32_t r = seed >> 16;
			g[i] = (r & 3) ? 0 : (uint16_t)(r % 3 == 0 ? 0xabc : r);
		}
		if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff)
			continue;
		uint8_t a[16];
		char buf[FMT_IPV6_LEN];
		parse_hex_groups(a, g);
		fmt_ipv6(buf, a);
		assert_true(strlen(buf) < FMT_IPV6_LEN);
		assert_int_equal(parse_ipv6_text(buf, back), 0);
		assert_memory_equal(g, back, sizeof(g));
		/* Longest zero run: the compressed one must be at least as
		 * long as any zero run left in the text. */
		const char *dc = strstr(buf, "::");
		int longest = 0, first = -1;
		for (int i = 0; i < 8;) {
			int j = i;
			while (j < 8 && g[j] == 0)
				j++;
			if (j - i > longest) {
				longest = j - i;
				first = i;
			}
			i = j > i ? j : i + 1;
		}
		if (longest >= 2) {
			assert_non_null(dc);
			/* Groups written before "::" equal the start of the first
			 * longest run. */
			int before = 0;
			for (const char *q = buf; q < dc; q++)
				before += *q == ':';
			if (dc != buf)
				before++;
			assert_int_equal(before, first);
		} else {
			assert_null(dc);
		}
	}
}

static void test_mac(void **state)
{
	(void)state;
	const uint8_t m1[6] = { 0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00 };
	const uint8_t m2[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t m3[6] = { 0xAB, 0x0C, 0x01, 0x10, 0x9f, 0xf9 };
	char buf[FMT_MAC_LEN];
	assert_string_equal(fmt_mac(buf, m1), "00:16:3e:5e:6c:00");
	assert_string_equal(fmt_mac(buf, m2), "fe:ff:ff:ff:ff:ff");
	assert_string_equal(MAC_STR(m3), "ab:0c:01:10:9f:f9");
}

/* The appender: pieces in order, the full length counted, a terminated
 * prefix kept at every capacity. */
static void test_fmt_append(void **state)
{
	(void)state;
	const char *want = "a=1, b=two, c=-3";
	for (size_t cap = 0; cap <= strlen(want) + 2; cap++) {
		char buf[32];
		memset(buf, 'Z', sizeof(buf));
		struct fmt_buf b = {cap ? buf : NULL, cap, 0};
		fmt_append(&b, "a=%d", 1);
		fmt_append(&b, ", b=%s", "two");
		fmt_append(&b, ", c=%d", -3);
		assert_int_equal(b.len, strlen(want));
		size_t stored = fmt_buf_stored(&b);
		assert_int_equal(stored, cap == 0 ? 0 : (strlen(want) < cap - 1 ? strlen(want) : cap - 1));
		if (cap) {
			assert_int_equal(buf[stored], 0);
			assert_memory_equal(buf, want, stored);
		}
		assert_int_equal(buf[cap < sizeof(buf) ? cap : sizeof(buf) - 1] == 'Z', cap < sizeof(buf));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt_append),
		cmocka_unit_test(test_plain_and_percent),
		cmocka_unit_test(test_char_and_string),
		cmocka_unit_test(test_precision_string_not_nul_terminated),
		cmocka_unit_test(test_null_string),
		cmocka_unit_test(test_signed),
		cmocka_unit_test(test_unsigned_and_hex),
		cmocka_unit_test(test_pointer),
		cmocka_unit_test(test_unsupported_and_dangling),
		cmocka_unit_test(test_mixed_long),
		cmocka_unit_test(test_cap_zero_null_buffer),
		cmocka_unit_test(test_huge_width_saturates),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6_rfc5952),
		cmocka_unit_test(test_ipv6_random_roundtrip),
		cmocka_unit_test(test_mac),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
