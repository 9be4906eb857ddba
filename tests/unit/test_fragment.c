/* test_fragment.c — IPv4 output fragmentation checked field by field
 * against RFC 791 §3.2 (independent header parsing here), the DF and IPv6
 * decisions, bad input, and a fragment → reassemble round trip over many
 * sizes and MTUs that must give back the original bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/byteorder.h"
#include "base/checksum.h"
#include "net/fragment.h"
#include "net/reasm.h"

static const uint8_t SRC4[4] = {10, 137, 0, 5};
static const uint8_t DST4[4] = {192, 0, 2, 1};

/* ---- capture of emitted fragments ---------------------------------------- */

#define CAP_MAX 200

struct capture {
	size_t n;
	size_t limit; /* refuse after this many (0: never) */
	uint8_t *pkt[CAP_MAX];
	size_t len[CAP_MAX];
};

static bool capture_emit(void *ctx, const uint8_t *hdr, size_t hdr_len, const uint8_t *payload,
			 size_t payload_len)
{
	struct capture *c = ctx;
	if (c->limit != 0 && c->n >= c->limit)
		return false;
	assert_true(c->n < CAP_MAX);
	uint8_t *p = malloc(hdr_len + payload_len);
	assert_non_null(p);
	memcpy(p, hdr, hdr_len);
	memcpy(p + hdr_len, payload, payload_len);
	c->pkt[c->n] = p;
	c->len[c->n] = hdr_len + payload_len;
	c->n++;
	return true;
}

static void capture_free(struct capture *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->pkt[i]);
	memset(c, 0, sizeof(*c));
}

/* ---- builders ------------------------------------------------------------ */

static size_t make_v4(uint8_t *buf, const uint8_t *opts, size_t opt_len, size_t payload_len,
		      uint16_t frag_field, uint32_t seed)
{
	size_t hl = 20 + opt_len;
	assert_int_equal(hl % 4, 0);
	memset(buf, 0, hl);
	buf[0] = (uint8_t)(0x40 | (hl / 4));
	buf[1] = 0x10;
	store_be16(buf + 2, (uint16_t)(hl + payload_len));
	store_be16(buf + 4, 0xbeef);
	store_be16(buf + 6, frag_field);
	buf[8] = 64;
	buf[9] = 17;
	memcpy(buf + 12, SRC4, 4);
	memcpy(buf + 16, DST4, 4);
	if (opt_len)
		memcpy(buf + 20, opts, opt_len);
	store_be16(buf + 10, csum_buf(buf, hl));
	uint32_t x = seed * 2654435761u + 7;
	for (size_t i = 0; i < payload_len; i++) {
		x = x * 1103515245u + 12345u;
		buf[hl + i] = (uint8_t)(x >> 16);
	}
	return hl + payload_len;
}

/* Checks every emitted fragment against RFC 791 and the original. */
static void check_fragments(const struct capture *c, const uint8_t *orig, uint32_t mtu)
{
	size_t ohl = (size_t)(orig[0] & 15) * 4;
	size_t opl = load_be16(orig + 2) - ohl;
	uint16_t off0 = load_be16(orig + 6) & 0x1fff;
	bool omf = (load_be16(orig + 6) & 0x2000) != 0;
	size_t expect_off = 0;
	assert_true(c->n >= 2);
	for (size_t i = 0; i < c->n; i++) {
		const uint8_t *p = c->pkt[i];
		size_t hl = (size_t)(p[0] & 15) * 4;
		assert_int_equal(p[0] >> 4, 4);
		assert_true(hl >= 20);
		assert_int_equal(load_be16(p + 2), c->len[i]);
		assert_true(c->len[i] <= mtu);
		assert_int_equal(csum_buf(p, hl), 0);
		assert_int_equal(load_be16(p + 4), load_be16(orig + 4));
		assert_memory_equal(p + 8, orig + 8, 2);   /* TTL, protocol */
		assert_memory_equal(p + 12, orig + 12, 8); /* addresses */
		uint16_t ff = load_be16(p + 6);
		assert_int_equal(ff & 0xc000, 0);
		assert_int_equal((size_t)(ff & 0x1fff) * 8, (size_t)off0 * 8 + expect_off);
		size_t pl = c->len[i] - hl;
		bool last = i + 1 == c->n;
		assert_int_equal((ff & 0x2000) != 0, last ? omf : true);
		if (!last)
			assert_int_equal(pl % 8, 0);
		if (i == 0) {
			assert_int_equal(hl, ohl);
			assert_memory_equal(p + 20, orig + 20, ohl - 20);
		}
		assert_memory_equal(p + hl, orig + ohl + expect_off, pl);
		expect_off += pl;
	}
	assert_int_equal(expect_off, opl);
}

/* ---- tests --------------------------------------------------------------- */

static void test_fits(void **state)
{
	(void)state;
	uint8_t dg[1500];
	size_t len = make_v4(dg, NULL, 0, 1480, 0x4000, 1);
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 1500, capture_emit, &c, &res), FRAGMENT_FITS);
	assert_int_equal(res.status, FRAGMENT_FITS);
	assert_int_equal(c.n, 0);
	/* trailing bytes past Total Length (link padding) do not count */
	assert_int_equal(fragment_ipv4(dg, len, 1500, capture_emit, &c, &res), FRAGMENT_FITS);
	uint8_t small[100];
	memset(small, 0xee, sizeof(small));
	assert_int_equal(make_v4(small, NULL, 0, 26, 0, 1), 46);
	assert_int_equal(fragment_ipv4(small, sizeof(small), 46, capture_emit, &c, &res),
			 FRAGMENT_FITS);
	assert_int_equal(c.n, 0);
}

static void test_df_needs_icmp(void **state)
{
	(void)state;
	uint8_t dg[1500];
	size_t len = make_v4(dg, NULL, 0, 1480, 0x4000, 1);
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 1280, capture_emit, &c, &res),
			 FRAGMENT_NEED_FRAG_NEEDED);
	assert_int_equal(res.mtu, 1280);
	assert_int_equal(c.n, 0);
}

static void test_basic_split(void **state)
{
	(void)state;
	uint8_t dg[1500];
	size_t len = make_v4(dg, NULL, 0, 1480, 0, 2);
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 576, capture_emit, &c, &res), FRAGMENT_DONE);
	/* 576 - 20 = 556 -> 552 per fragment: 552 + 552 + 376 */
	assert_int_equal(res.count, 3);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.len[0], 572);
	assert_int_equal(c.len[2], 20 + 376);
	check_fragments(&c, dg, 576);
	capture_free(&c);
}

static void test_options_copied(void **state)
{
	(void)state;
	/* record route (7, not copied, len 11), NOP, security-like 130 (copied,
	 * len 11), loose source route 131 (copied, len 7), EOL, pad */
	uint8_t opts[32] = {7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0,
			    1,
			    130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9,
			    131, 7, 4, 9, 9, 9, 9,
			    0, 0};
	uint8_t dg[1600];
	size_t len = make_v4(dg, opts, 32, 1400, 0, 3);
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 600, capture_emit, &c, &res), FRAGMENT_DONE);
	check_fragments(&c, dg, 600);
	for (size_t i = 1; i < c.n; i++) {
		const uint8_t *p = c.pkt[i];
		assert_int_equal(p[0] & 15, 10); /* 20 + 11 + 7 = 38 -> 40 */
		assert_memory_equal(p + 20, opts + 12, 11);
		assert_memory_equal(p + 31, opts + 23, 7);
		assert_int_equal(p[38], 0);
		assert_int_equal(p[39], 0);
	}
	capture_free(&c);

	/* no copied options at all: later headers are 20 bytes */
	uint8_t rr[8] = {7, 7, 4, 0, 0, 0, 0, 0};
	len = make_v4(dg, rr, 8, 1000, 0, 4);
	assert_int_equal(fragment_ipv4(dg, len, 300, capture_emit, &c, &res), FRAGMENT_DONE);
	check_fragments(&c, dg, 300);
	for (size_t i = 1; i < c.n; i++)
		assert_int_equal(c.pkt[i][0], 0x45);
	capture_free(&c);
}

static void test_bad_options(void **state)
{
	(void)state;
	static const uint8_t bad[][4] = {
		{130, 1, 0, 0},  /* length below 2 */
		{130, 9, 0, 0},  /* past the header */
		{1, 1, 1, 130},  /* type with no length byte */
	};
	uint8_t dg[1600];
	for (size_t i = 0; i < 3; i++) {
		size_t len = make_v4(dg, bad[i], 4, 1000, 0, 5);
		struct capture c = {0};
		struct fragment_result res;
		assert_int_equal(fragment_ipv4(dg, len, 500, capture_emit, &c, &res),
				 FRAGMENT_BAD_PACKET);
		assert_int_equal(c.n, 0);
	}
}

static void test_bad_packets(void **state)
{
	(void)state;
	uint8_t dg[1600];
	size_t len = make_v4(dg, NULL, 0, 1000, 0, 6);
	struct capture c = {0};
	struct fragment_result res;
	/* truncated at every byte: Total Length no longer fits */
	for (size_t l = 0; l < len; l++) {
		uint8_t *copy = malloc(l ? l : 1);
		memcpy(copy, dg, l);
		assert_int_equal(fragment_ipv4(copy, l, 500, capture_emit, &c, &res),
				 FRAGMENT_BAD_PACKET);
		free(copy);
	}
	uint8_t b[1600];
	memcpy(b, dg, len);
	b[0] = 0x65;
	assert_int_equal(fragment_ipv4(b, len, 500, capture_emit, &c, &res), FRAGMENT_BAD_PACKET);
	memcpy(b, dg, len);
	b[0] = 0x44; /* IHL 4 */
	assert_int_equal(fragment_ipv4(b, len, 500, capture_emit, &c, &res), FRAGMENT_BAD_PACKET);
	memcpy(b, dg, len);
	store_be16(b + 2, 19); /* total below the header */
	assert_int_equal(fragment_ipv4(b, len, 10, capture_emit, &c, &res), FRAGMENT_BAD_PACKET);
	memcpy(b, dg, len);
	store_be16(b + 6, 0x1fff); /* offset + payload beyond 65535 */
	assert_int_equal(fragment_ipv4(b, len, 500, capture_emit, &c, &res), FRAGMENT_BAD_PACKET);
	assert_int_equal(c.n, 0);
}

static void test_bad_mtu(void **state)
{
	(void)state;
	uint8_t dg[1600];
	size_t len = make_v4(dg, NULL, 0, 1000, 0, 7);
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 67, capture_emit, &c, &res), FRAGMENT_BAD_MTU);
	assert_int_equal(fragment_ipv4(dg, len, 0, capture_emit, &c, &res), FRAGMENT_BAD_MTU);
	assert_int_equal(fragment_ipv4(dg, len, 68, capture_emit, &c, &res), FRAGMENT_DONE);
	check_fragments(&c, dg, 68);
	capture_free(&c);
	/* a 60-byte header needs at least 68 */
	uint8_t opts[40];
	memset(opts, 1, sizeof(opts));
	len = make_v4(dg, opts, 40, 1000, 0, 7);
	assert_int_equal(fragment_ipv4(dg, len, 68, capture_emit, &c, &res), FRAGMENT_DONE);
	check_fragments(&c, dg, 68);
	capture_free(&c);
}

static void test_emit_failure(void **state)
{
	(void)state;
	uint8_t dg[1600];
	size_t len = make_v4(dg, NULL, 0, 1400, 0, 8);
	struct capture c = {0};
	c.limit = 2;
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 300, capture_emit, &c, &res),
			 FRAGMENT_EMIT_FAILED);
	assert_int_equal(res.count, 2);
	capture_free(&c);
}

static void test_refragment_fragment(void **state)
{
	(void)state;
	uint8_t dg[1600];
	/* a middle fragment (offset 100 units, MF) going through a smaller MTU */
	size_t len = make_v4(dg, NULL, 0, 1000, 0x2000 | 100, 9);
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv4(dg, len, 400, capture_emit, &c, &res), FRAGMENT_DONE);
	check_fragments(&c, dg, 400);
	capture_free(&c);
	/* a last fragment keeps MF clear on its own last piece */
	len = make_v4(dg, NULL, 0, 1000, 100, 9);
	assert_int_equal(fragment_ipv4(dg, len, 400, capture_emit, &c, &res), FRAGMENT_DONE);
	check_fragments(&c, dg, 400);
	capture_free(&c);
}

static void test_ipv6_decisions(void **state)
{
	(void)state;
	uint8_t dg[1500];
	memset(dg, 0, sizeof(dg));
	dg[0] = 0x60;
	store_be16(dg + 4, 1460);
	struct fragment_result res;
	assert_int_equal(fragment_ipv6(dg, 1500, 1500, &res), FRAGMENT_FITS);
	assert_int_equal(fragment_ipv6(dg, 1500, 1280, &res), FRAGMENT_NEED_TOO_BIG);
	assert_int_equal(res.mtu, 1280);
	assert_int_equal(fragment_ipv6(dg, 1500, 1000, &res), FRAGMENT_BAD_MTU);
	assert_int_equal(fragment_ipv6(dg, 1499, 1500, &res), FRAGMENT_BAD_PACKET);
	for (size_t l = 0; l < 40; l++)
		assert_int_equal(fragment_ipv6(dg, l, 1500, &res), FRAGMENT_BAD_PACKET);
	dg[0] = 0x45;
	assert_int_equal(fragment_ipv6(dg, 1500, 1500, &res), FRAGMENT_BAD_PACKET);
}

/* Parses an emitted fragment the way the IPv4 input path would. */
static void to_reasm_frag(const uint8_t *p, size_t len, struct reasm_frag *f)
{
	size_t hl = (size_t)(p[0] & 15) * 4;
	uint16_t ff = load_be16(p + 6);
	memset(f, 0, sizeof(*f));
	f->family = 4;
	f->proto = p[9];
	f->more = (ff & 0x2000) != 0;
	f->id = load_be16(p + 4);
	f->offset = (uint32_t)(ff & 0x1fff) * 8;
	f->src = ip_from_v4(p + 12);
	f->dst = ip_from_v4(p + 16);
	f->data = p + hl;
	f->data_len = len - hl;
	f->hdr = p;
	f->hdr_len = hl;
}

static void test_round_trip_property(void **state)
{
	(void)state;
	struct reasm r;
	struct reasm_config cfg;
	reasm_config_default(&cfg);
	size_t need = reasm_memory_needed(cfg.budget_bytes, cfg.max_datagrams);
	uint8_t *mem = malloc(need);
	assert_non_null(mem);
	assert_true(reasm_init(&r, &cfg, mem, need));
	static uint8_t dg[65535];
	static const uint8_t opts8[8] = {130, 6, 1, 2, 3, 4, 1, 0};
	static const uint8_t opts16[16] = {7, 7, 4, 0, 0, 0, 0, 1, 130, 6, 1, 2, 3, 4, 0, 0};
	uint32_t rnd = 12345;
	size_t runs = 0;
	for (size_t iter = 0; iter < 600; iter++) {
		rnd = rnd * 1103515245u + 12345u;
		size_t payload = 1 + (rnd >> 8) % (iter < 300 ? 3000 : 30000);
		rnd = rnd * 1103515245u + 12345u;
		uint32_t mtu = 68 + (rnd >> 8) % 1500;
		size_t opt_len = (iter % 3) * 8;
		if (payload / ((mtu - 36) & ~7u) + 1 > CAP_MAX)
			mtu = 1500; /* keep the capture bounded */
		size_t len = make_v4(dg, opt_len == 8 ? opts8 : opts16, opt_len, payload, 0,
				     (uint32_t)iter);
		store_be16(dg + 4, (uint16_t)iter);
		store_be16(dg + 10, 0);
		store_be16(dg + 10, csum_buf(dg, 20 + opt_len));
		struct capture c = {0};
		struct fragment_result res;
		enum fragment_status st = fragment_ipv4(dg, len, mtu, capture_emit, &c, &res);
		if (len <= mtu) {
			assert_int_equal(st, FRAGMENT_FITS);
			continue;
		}
		assert_int_equal(st, FRAGMENT_DONE);
		if (c.n > REASM_MAX_FRAGS) {
			capture_free(&c);
			continue;
		}
		check_fragments(&c, dg, mtu);
		/* reassemble in a shuffled order */
		size_t idx[CAP_MAX];
		for (size_t i = 0; i < c.n; i++)
			idx[i] = i;
		for (size_t i = c.n; i > 1; i--) {
			rnd = rnd * 1103515245u + 12345u;
			size_t j = (rnd >> 8) % i, t = idx[i - 1];
			idx[i - 1] = idx[j];
			idx[j] = t;
		}
		struct reasm_result out;
		memset(&out, 0, sizeof(out));
		for (size_t i = 0; i < c.n; i++) {
			struct reasm_frag f;
			to_reasm_frag(c.pkt[idx[i]], c.len[idx[i]], &f);
			enum reasm_status rs = reasm_add(&r, &f, 0, &out);
			assert_int_equal(rs, i + 1 < c.n ? REASM_NEED_MORE : REASM_COMPLETE);
		}
		assert_int_equal(out.len, len);
		assert_memory_equal(out.datagram, dg, len);
		capture_free(&c);
		runs++;
	}
	assert_true(runs > 300);
	assert_int_equal(reasm_in_progress(&r), 0);
	free(mem);
}

/* A datagram reassembled by the firewall leaves as IPv6 fragments again:
 * each a valid fixed header + Fragment header, within the MTU, and the
 * pieces reassemble to the original bytes. */
static void test_ipv6_refragment_round_trip(void **state)
{
	(void)state;
	static uint8_t dg[40 + 3008];
	size_t payload = 3008;
	memset(dg, 0, 40);
	dg[0] = 0x60;
	store_be16(dg + 4, (uint16_t)payload);
	dg[6] = 17;
	dg[7] = 64;
	dg[8] = 0xfd;
	dg[23] = 1;
	dg[24] = 0x20;
	dg[39] = 2;
	for (size_t i = 0; i < payload; i++)
		dg[40 + i] = (uint8_t)(i * 7);
	for (uint32_t mtu = 1280; mtu <= 1500; mtu += 44) {
		struct capture c = {0};
		struct fragment_result res;
		assert_int_equal(fragment_ipv6_refragment(dg, sizeof(dg), mtu, 0xabcdef01, capture_emit,
							  &c, &res),
				 FRAGMENT_DONE);
		assert_true(c.n >= 3);
		static uint8_t mem[1 << 20];
		struct reasm r;
		struct reasm_config cfg;
		reasm_config_default(&cfg);
		size_t need = reasm_memory_needed(cfg.budget_bytes, cfg.max_datagrams);
		assert_true(need <= sizeof(mem));
		assert_true(reasm_init(&r, &cfg, mem, need));
		struct reasm_result out = {0};
		for (size_t i = 0; i < c.n; i++) {
			const uint8_t *f = c.pkt[i];
			assert_true(c.len[i] <= mtu);
			assert_int_equal(f[6], 44);
			assert_int_equal(load_be16(f + 4), c.len[i] - 40);
			assert_int_equal(load_be32(f + 44), 0xabcdef01);
			uint16_t offm = load_be16(f + 42);
			assert_int_equal((offm & 1) != 0, i + 1 < c.n);
			struct reasm_frag rf = {
				.family = 6, .proto = f[40], .more = (offm & 1) != 0, .id = load_be32(f + 44),
				.offset = offm & 0xfff8u, .src = ip_from_v6(f + 8), .dst = ip_from_v6(f + 24),
				.data = f + 48, .data_len = c.len[i] - 48, .hdr = f, .hdr_len = 40,
				.hdr_nh_off = 6,
			};
			reasm_add(&r, &rf, 1, &out);
		}
		assert_int_equal(out.status, REASM_COMPLETE);
		assert_int_equal(out.len, sizeof(dg));
		assert_memory_equal(out.datagram, dg, sizeof(dg));
		capture_free(&c);
	}
	/* Hop-by-hop options must stay unfragmentable: the ICMP answer stays. */
	dg[6] = 0;
	struct capture c = {0};
	struct fragment_result res;
	assert_int_equal(fragment_ipv6_refragment(dg, sizeof(dg), 1500, 1, capture_emit, &c, &res),
			 FRAGMENT_NEED_TOO_BIG);
	assert_int_equal(c.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_df_needs_icmp),
		cmocka_unit_test(test_basic_split),
		cmocka_unit_test(test_options_copied),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_bad_packets),
		cmocka_unit_test(test_bad_mtu),
		cmocka_unit_test(test_emit_failure),
		cmocka_unit_test(test_refragment_fragment),
		cmocka_unit_test(test_ipv6_decisions),
		cmocka_unit_test(test_round_trip_property),
		cmocka_unit_test(test_ipv6_refragment_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
