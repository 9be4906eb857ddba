/* test_icmp.c — ICMPv4 and ICMPv6 messages: echo, errors with their quoted
 * datagram, neighbour discovery options, checksums (ICMPv6 pseudo-header
 * computed independently), builders cross-checked by parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/icmp.h"
#include "net/ipv4.h"
#include "net/ipv6.h"

static const uint8_t SRC6[16] = {0xfe, 0x80, [15] = 5};
static const uint8_t DST6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint16_t ref_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* RFC 8200 §8.1 pseudo-header, written out. */
static uint16_t ref_icmp6(const uint8_t *m, size_t n)
{
	uint8_t ph[40] = {0};
	memcpy(ph, SRC6, 16);
	memcpy(ph + 16, DST6, 16);
	ph[34] = (uint8_t)(n >> 8);
	ph[35] = (uint8_t)n;
	ph[39] = 58;
	return ref_fold(ref_add(ref_add(0, ph, 40), m, n));
}

static void set_csum4(uint8_t *m, size_t n)
{
	m[2] = m[3] = 0;
	uint16_t c = ref_fold(ref_add(0, m, n));
	m[2] = (uint8_t)(c >> 8);
	m[3] = (uint8_t)c;
}

static void set_csum6(uint8_t *m, size_t n)
{
	m[2] = m[3] = 0;
	uint16_t c = ref_icmp6(m, n);
	m[2] = (uint8_t)(c >> 8);
	m[3] = (uint8_t)c;
}

static enum pkt_result p4(const uint8_t *m, size_t n, bool verify, struct icmp_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, m, n);
	enum pkt_result r = icmp4_parse(c, n, verify, v);
	free(c);
	return r;
}

static enum pkt_result p6(const uint8_t *m, size_t n, bool verify, struct icmp_view *v)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, m, n);
	enum pkt_result r = icmp6_parse(c, n, SRC6, DST6, verify, v);
	free(c);
	return r;
}

static void test_v4_echo(void **state)
{
	(void)state;
	uint8_t m[16] = {8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'};
	set_csum4(m, sizeof(m));
	struct icmp_view v;
	assert_int_equal(p4(m, sizeof(m), true, &v), PKT_OK);
	assert_true(v.is_query);
	assert_false(v.is_error);
	assert_int_equal(v.id, 0x1234);
	assert_int_equal(v.seq, 7);
	for (size_t n = 0; n < 8; n++)
		assert_int_equal(p4(m, n, true, &v), PKT_TRUNCATED);
	m[15] ^= 1;
	assert_int_equal(p4(m, sizeof(m), true, &v), PKT_BAD_L4_CHECKSUM);
	assert_int_equal(p4(m, sizeof(m), false, &v), PKT_OK);
}

static void test_v4_errors(void **state)
{
	(void)state;
	/* Port unreachable quoting a 20-byte header + 8 bytes of UDP. */
	uint8_t m[8 + 28] = {3, 3};
	m[8] = 0x45;
	m[8 + 9] = IP_PROTO_UDP;
	set_csum4(m, sizeof(m));
	struct icmp_view v;
	assert_int_equal(p4(m, sizeof(m), true, &v), PKT_OK);
	assert_true(v.is_error);
	assert_int_equal(v.inner_off, 8);
	assert_int_equal(v.inner_len, 28);
	/* Shorter than header + 8: refused. */
	for (size_t n = 8; n < sizeof(m); n++) {
		set_csum4(m, n);
		assert_int_equal(p4(m, n, true, &v), PKT_BAD_ICMP);
	}
	/* Frag needed carries the MTU in the low half of bytes 4..7. */
	m[1] = 4;
	m[6] = 0x05;
	m[7] = 0x78;
	set_csum4(m, sizeof(m));
	assert_int_equal(p4(m, sizeof(m), true, &v), PKT_OK);
	assert_int_equal(v.rest & 0xffff, 1400);
	for (uint8_t t = 0; t < 255; t++) {
		m[0] = t;
		set_csum4(m, sizeof(m));
		assert_int_equal(p4(m, sizeof(m), true, &v), PKT_OK);
		assert_int_equal(v.is_error, t == 3 || t == 11 || t == 12);
	}
}

static void test_v6_echo_and_checksum(void **state)
{
	(void)state;
	uint8_t m[12] = {128, 0, 0, 0, 0, 9, 0, 1, 'p', 'i', 'n', 'g'};
	set_csum6(m, sizeof(m));
	struct icmp_view v;
	assert_int_equal(p6(m, sizeof(m), true, &v), PKT_OK);
	assert_true(v.is_query);
	assert_int_equal(v.id, 9);
	assert_int_equal(icmp6_checksum(m, sizeof(m), SRC6, DST6), ref_icmp6((uint8_t[12]){
		128, 0, 0, 0, 0, 9, 0, 1, 'p', 'i', 'n', 'g'}, 12));
	/* The pseudo-header matters: other addresses fail. */
	uint8_t *c = malloc(sizeof(m));
	memcpy(c, m, sizeof(m));
	assert_int_equal(icmp6_parse(c, sizeof(m), DST6, SRC6, true, &v), PKT_OK); /* symmetric */
	assert_int_equal(icmp6_parse(c, sizeof(m), DST6, DST6, true, &v), PKT_BAD_L4_CHECKSUM);
	free(c);
	m[11] ^= 0x40;
	assert_int_equal(p6(m, sizeof(m), true, &v), PKT_BAD_L4_CHECKSUM);
	for (size_t n = 0; n < 8; n++)
		assert_int_equal(p6(m, n, false, &v), PKT_TRUNCATED);
}

static void test_v6_errors(void **state)
{
	(void)state;
	uint8_t m[8 + 48] = {2, 0, 0, 0, 0, 0, 0x05, 0x00};
	m[8] = 0x60;
	set_csum6(m, sizeof(m));
	struct icmp_view v;
	assert_int_equal(p6(m, sizeof(m), true, &v), PKT_OK);
	assert_true(v.is_error);
	assert_int_equal(v.rest, 1280);
	assert_int_equal(v.inner_off, 8);
	set_csum6(m, 47);
	assert_int_equal(p6(m, 47, true, &v), PKT_BAD_ICMP);
}

static void test_nd(void **state)
{
	(void)state;
	/* NS for DST6 with a source link-layer address option. */
	uint8_t ns[32] = {135, 0};
	memcpy(ns + 8, DST6, 16);
	ns[24] = ND_OPT_SOURCE_LLADDR;
	ns[25] = 1;
	memcpy(ns + 26, (uint8_t[]){0, 0x16, 0x3e, 1, 2, 3}, 6);
	set_csum6(ns, sizeof(ns));
	struct icmp_view v;
	assert_int_equal(p6(ns, sizeof(ns), true, &v), PKT_OK);
	assert_true(v.is_nd);
	assert_int_equal(v.nd_target_off, 8);
	assert_int_equal(v.nd_lladdr_off, 26);
	/* Without options. */
	set_csum6(ns, 24);
	assert_int_equal(p6(ns, 24, true, &v), PKT_OK);
	assert_int_equal(v.nd_lladdr_off, 0);
	/* Too short for the target. */
	set_csum6(ns, 23);
	assert_int_equal(p6(ns, 23, true, &v), PKT_BAD_ICMP);
	/* Option of length 0 (RFC 4861 §4.6: must be dropped). */
	ns[25] = 0;
	set_csum6(ns, sizeof(ns));
	assert_int_equal(p6(ns, sizeof(ns), true, &v), PKT_BAD_ICMP);
	/* Option longer than the message. */
	ns[25] = 2;
	set_csum6(ns, sizeof(ns));
	assert_int_equal(p6(ns, sizeof(ns), true, &v), PKT_BAD_ICMP);
	/* Half an option header. */
	ns[25] = 1;
	set_csum6(ns, 25);
	assert_int_equal(p6(ns, 25, true, &v), PKT_BAD_ICMP);
	/* Code other than 0. */
	ns[1] = 1;
	set_csum6(ns, sizeof(ns));
	assert_int_equal(p6(ns, sizeof(ns), true, &v), PKT_BAD_ICMP);
	ns[1] = 0;
	/* Multicast target. */
	ns[8] = 0xff;
	set_csum6(ns, sizeof(ns));
	assert_int_equal(p6(ns, sizeof(ns), true, &v), PKT_BAD_ICMP);

	/* Router solicitation is recognised. */
	uint8_t rs[8] = {133};
	set_csum6(rs, 8);
	assert_int_equal(p6(rs, 8, true, &v), PKT_OK);
	assert_true(v.is_nd);
}

static void test_build_na_ns(void **state)
{
	(void)state;
	const uint8_t mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t b[32];
	struct icmp_view v;
	assert_int_equal(icmp6_build_na(b, 31, SRC6, DST6, DST6, ND_NA_SOLICITED, mac), 0);
	assert_int_equal(icmp6_build_na(b, 32, SRC6, DST6, DST6,
					ND_NA_SOLICITED | ND_NA_OVERRIDE, mac), 32);
	assert_int_equal(ref_icmp6(b, 32), 0);
	assert_int_equal(p6(b, 32, true, &v), PKT_OK);
	assert_int_equal(v.type, ICMP6_NEIGHBOR_ADVERT);
	assert_int_equal(v.nd_flags, ND_NA_SOLICITED | ND_NA_OVERRIDE);
	assert_memory_equal(b + v.nd_target_off, DST6, 16);
	assert_memory_equal(b + v.nd_lladdr_off, mac, 6);
	assert_int_equal(b[24], ND_OPT_TARGET_LLADDR);

	assert_int_equal(icmp6_build_ns(b, 32, SRC6, DST6, DST6, mac), 32);
	assert_int_equal(ref_icmp6(b, 32), 0);
	assert_int_equal(p6(b, 32, true, &v), PKT_OK);
	assert_int_equal(v.type, ICMP6_NEIGHBOR_SOLICIT);
	assert_int_equal(b[24], ND_OPT_SOURCE_LLADDR);
}

static void test_build_echo(void **state)
{
	(void)state;
	uint8_t b[64];
	const uint8_t data[5] = {1, 2, 3, 4, 5};
	struct icmp_view v;
	assert_int_equal(icmp4_build_echo(b, 12, ICMP_ECHO_REPLY, 1, 2, data, 5), 0);
	assert_int_equal(icmp4_build_echo(b, 13, ICMP_ECHO_REPLY, 1, 2, data, 5), 13);
	assert_int_equal(ref_fold(ref_add(0, b, 13)), 0); /* odd length */
	assert_int_equal(p4(b, 13, true, &v), PKT_OK);
	assert_int_equal(v.type, 0);
	assert_int_equal(v.id, 1);
	assert_int_equal(v.seq, 2);
	assert_memory_equal(b + 8, data, 5);

	/* In place: the data already sits where it goes. */
	memcpy(b + 8, data, 5);
	assert_int_equal(icmp6_build_echo(b, 13, SRC6, DST6, ICMP6_ECHO_REPLY, 3, 4, b + 8, 5),
			 13);
	assert_int_equal(ref_icmp6(b, 13), 0);
	assert_memory_equal(b + 8, data, 5);
}

static void test_build_errors(void **state)
{
	(void)state;
	/* An offending datagram with 8 bytes of options and 100 bytes of data. */
	uint8_t orig[28 + 100];
	memset(orig, 0xab, sizeof(orig));
	orig[0] = 0x47;
	uint8_t b[200];
	struct icmp_view v;
	size_t n = icmp4_build_error(b, sizeof(b), ICMP_DEST_UNREACH, ICMP_CODE_FRAG_NEEDED, 1400,
				     orig, sizeof(orig));
	assert_int_equal(n, 8 + 28 + 8); /* header with options + 8 bytes, RFC 792 */
	assert_int_equal(ref_fold(ref_add(0, b, n)), 0);
	assert_int_equal(p4(b, n, true, &v), PKT_OK);
	assert_int_equal(v.rest, 1400);
	assert_memory_equal(b + 8, orig, 36);
	/* A short original is quoted whole; a short buffer refuses. */
	assert_int_equal(icmp4_build_error(b, sizeof(b), 11, 0, 0, orig, 10), 18);
	assert_int_equal(icmp4_build_error(b, 43, 3, 4, 0, orig, sizeof(orig)), 0);

	/* ICMPv6: as much as fits in 1280 bytes. */
	static uint8_t big[3000], out[1400];
	memset(big, 0x5a, sizeof(big));
	big[0] = 0x60;
	n = icmp6_build_error(out, sizeof(out), SRC6, DST6, ICMP6_PACKET_TOO_BIG, 0, 1280, big,
			      sizeof(big));
	assert_int_equal(n, 1280 - 40);
	assert_int_equal(ref_icmp6(out, n), 0);
	assert_int_equal(p6(out, n, true, &v), PKT_OK);
	assert_int_equal(v.rest, 1280);
	assert_int_equal(v.inner_len, 1232);
	n = icmp6_build_error(out, 100, SRC6, DST6, ICMP6_DEST_UNREACH, 1, 0, big, sizeof(big));
	assert_int_equal(n, 100);
	assert_int_equal(ref_icmp6(out, n), 0);
	n = icmp6_build_error(out, sizeof(out), SRC6, DST6, ICMP6_TIME_EXCEEDED, 0, 0, big, 60);
	assert_int_equal(n, 68);
	assert_int_equal(icmp6_build_error(out, 7, SRC6, DST6, 1, 0, 0, big, 60), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_echo),
		cmocka_unit_test(test_v4_errors),
		cmocka_unit_test(test_v6_echo_and_checksum),
		cmocka_unit_test(test_v6_errors),
		cmocka_unit_test(test_nd),
		cmocka_unit_test(test_build_na_ns),
		cmocka_unit_test(test_build_echo),
		cmocka_unit_test(test_build_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
