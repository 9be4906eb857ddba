/* test_reasm.c — fragment reassembly: orders, duplicates, overlaps, tiny
 * fragments, limits, eviction, timeouts, IPv6 extension headers, and
 * interleaved datagrams. Datagrams are built here independently (header
 * fields set by hand, checksum via base/checksum.h); the expected output is
 * the original unfragmented datagram, byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/byteorder.h"
#include "base/checksum.h"
#include "net/reasm.h"

#define SEC 1000000000ull

static const uint8_t SRC4[4] = {10, 137, 0, 5};
static const uint8_t SRC4B[4] = {10, 137, 0, 6};
static const uint8_t DST4[4] = {192, 0, 2, 1};
static const uint8_t SRC6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t DST6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 2};

/* ---- instance ------------------------------------------------------------ */

struct fixture {
	struct reasm r;
	void *mem;
};

static struct fixture *fixture_new(size_t budget, uint32_t max_dgrams, uint64_t timeout,
				   uint64_t dead)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	struct reasm_config cfg;
	reasm_config_default(&cfg);
	cfg.budget_bytes = budget;
	cfg.max_datagrams = max_dgrams;
	cfg.timeout_ns = timeout;
	cfg.dead_ns = dead;
	size_t need = reasm_memory_needed(budget, max_dgrams);
	assert_true(need > budget);
	fx->mem = malloc(need + 3);
	assert_non_null(fx->mem);
	/* deliberately misaligned storage */
	assert_true(reasm_init(&fx->r, &cfg, (uint8_t *)fx->mem + 3, need));
	return fx;
}

static struct fixture *fixture_default(void)
{
	return fixture_new(REASM_DEFAULT_BUDGET, REASM_DEFAULT_MAX_DATAGRAMS,
			   REASM_DEFAULT_TIMEOUT_NS, REASM_DEFAULT_DEAD_NS);
}

static void fixture_free(struct fixture *fx)
{
	free(fx->mem);
	free(fx);
}

/* ---- datagram builders ---------------------------------------------------- */

static void fill_payload(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

/* An unfragmented IPv4 datagram with opt_len bytes of NOP options. */
static size_t make_v4(uint8_t *buf, uint8_t proto, uint16_t id, const uint8_t src[4],
		      size_t opt_len, size_t payload_len, uint32_t seed, bool df)
{
	size_t hl = 20 + opt_len;
	memset(buf, 0, hl);
	buf[0] = (uint8_t)(0x40 | (hl / 4));
	store_be16(buf + 2, (uint16_t)(hl + payload_len));
	store_be16(buf + 4, id);
	store_be16(buf + 6, df ? 0x4000 : 0);
	buf[8] = 64;
	buf[9] = proto;
	memcpy(buf + 12, src, 4);
	memcpy(buf + 16, DST4, 4);
	memset(buf + 20, 1, opt_len);
	store_be16(buf + 10, csum_buf(buf, hl));
	fill_payload(buf + hl, payload_len, seed);
	return hl + payload_len;
}

/* An unfragmented IPv6 datagram: fixed header, ext_len bytes of extension
 * headers (8-byte PadN-filled destination options headers), then payload
 * of next header proto. */
static size_t make_v6(uint8_t *buf, uint8_t proto, size_t ext_len, size_t payload_len,
		      uint32_t seed)
{
	memset(buf, 0, 40 + ext_len);
	buf[0] = 0x60;
	store_be16(buf + 4, (uint16_t)(ext_len + payload_len));
	buf[6] = ext_len ? 60 : proto;
	buf[7] = 64;
	memcpy(buf + 8, SRC6, 16);
	memcpy(buf + 24, DST6, 16);
	for (size_t o = 0; o < ext_len; o += 8) {
		uint8_t *e = buf + 40 + o;
		e[0] = o + 8 < ext_len ? 60 : proto;
		e[1] = 0;
		e[2] = 1; /* PadN */
		e[3] = 4;
	}
	fill_payload(buf + 40 + ext_len, payload_len, seed);
	return 40 + ext_len + payload_len;
}

/* One fragment of a datagram built above, with its own header copy as a
 * sender would produce it. */
struct tfrag {
	struct reasm_frag f;
	uint8_t hdr[REASM_HDR_MAX];
};

static void frag_v4(struct tfrag *t, const uint8_t *dg, size_t off, size_t len, bool more)
{
	size_t hl = (size_t)(dg[0] & 15) * 4;
	memset(t, 0, sizeof(*t));
	t->f.family = 4;
	t->f.proto = dg[9];
	t->f.more = more;
	t->f.id = load_be16(dg + 4);
	t->f.offset = (uint32_t)off;
	t->f.src = ip_from_v4(dg + 12);
	t->f.dst = ip_from_v4(dg + 16);
	t->f.data = dg + hl + off;
	t->f.data_len = len;
	memcpy(t->hdr, dg, hl);
	store_be16(t->hdr + 2, (uint16_t)(hl + len));
	store_be16(t->hdr + 6,
		   (uint16_t)((load_be16(dg + 6) & 0x4000) | (more ? 0x2000 : 0) | (off / 8)));
	store_be16(t->hdr + 10, 0);
	store_be16(t->hdr + 10, csum_buf(t->hdr, hl));
	t->f.hdr_len = hl;
}

/* IPv6: the Fragment header goes after ext_len bytes of extension headers. */
static void frag_v6(struct tfrag *t, const uint8_t *dg, size_t ext_len, uint32_t id, size_t off,
		    size_t len, bool more)
{
	size_t hl = 40 + ext_len;
	memset(t, 0, sizeof(*t));
	t->f.family = 6;
	t->f.more = more;
	t->f.id = id;
	t->f.offset = (uint32_t)off;
	t->f.src = ip_from_v6(dg + 8);
	t->f.dst = ip_from_v6(dg + 24);
	t->f.data = dg + hl + off;
	t->f.data_len = len;
	memcpy(t->hdr, dg, hl);
	size_t nh_off = ext_len ? 40 + ext_len - 8 : 6;
	t->f.proto = t->hdr[nh_off];
	t->hdr[nh_off] = 44;
	store_be16(t->hdr + 4, (uint16_t)(ext_len + 8 + len));
	t->f.hdr_len = hl;
	t->f.hdr_nh_off = nh_off;
}

static enum reasm_status add(struct fixture *fx, struct tfrag *t, uint64_t now,
			     struct reasm_result *out)
{
	t->f.hdr = t->f.offset == 0 ? t->hdr : NULL;
	enum reasm_status st = reasm_add(&fx->r, &t->f, now, out);
	assert_int_equal(st, out->status);
	assert_true(reasm_bytes_in_use(&fx->r) <= fx->r.cfg.budget_bytes);
	return st;
}

static void expect_complete(const struct reasm_result *out, const uint8_t *dg, size_t len)
{
	assert_int_equal(out->status, REASM_COMPLETE);
	assert_int_equal(out->len, len);
	assert_memory_equal(out->datagram, dg, len);
}

/* Splits a datagram's payload into pieces of `step` bytes (last shorter). */
static size_t split(size_t payload_len, size_t step, size_t *offs, size_t *lens, size_t max)
{
	size_t n = 0;
	for (size_t o = 0; o < payload_len; o += step) {
		assert_true(n < max);
		offs[n] = o;
		lens[n] = payload_len - o < step ? payload_len - o : step;
		n++;
	}
	return n;
}

static void shuffle(size_t *idx, size_t n, uint32_t *seed)
{
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	for (size_t i = n; i > 1; i--) {
		*seed = *seed * 1103515245u + 12345u;
		size_t j = (*seed >> 8) % i;
		size_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

/* Feeds the fragments of a v4 datagram in the order given; expects
 * NEED_MORE until the last one and the original back at the end. */
static void feed_v4_order(struct fixture *fx, const uint8_t *dg, size_t len, size_t step,
			  const size_t *order_or_null, uint32_t seed)
{
	size_t hl = (size_t)(dg[0] & 15) * 4;
	size_t offs[128], lens[128], idx[128];
	size_t n = split(len - hl, step, offs, lens, 128);
	if (order_or_null)
		memcpy(idx, order_or_null, n * sizeof(size_t));
	else
		shuffle(idx, n, &seed);
	struct reasm_result out;
	memset(&out, 0, sizeof(out));
	for (size_t i = 0; i < n; i++) {
		struct tfrag t;
		size_t k = idx[i];
		frag_v4(&t, dg, offs[k], lens[k], k + 1 < n);
		enum reasm_status st = add(fx, &t, 0, &out);
		if (i + 1 < n)
			assert_int_equal(st, REASM_NEED_MORE);
	}
	expect_complete(&out, dg, len);
	assert_int_equal(out.hdr_len, hl);
	assert_int_equal(out.proto, dg[9]);
	assert_int_equal(csum_buf(out.datagram, hl), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_in_order(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	static uint8_t dg[4000];
	size_t len = make_v4(dg, 17, 0x1234, SRC4, 0, 3000, 1, false);
	size_t order[] = {0, 1, 2};
	feed_v4_order(fx, dg, len, 1480, order, 0);
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	assert_int_equal(reasm_bytes_in_use(&fx->r), 0);
	assert_int_equal(fx->r.stats.completed, 1);
	fixture_free(fx);
}

static void test_reverse_order(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	static uint8_t dg[4000];
	size_t len = make_v4(dg, 6, 7, SRC4, 8, 3001, 2, false);
	size_t order[] = {2, 1, 0};
	feed_v4_order(fx, dg, len, 1472, order, 0);
	assert_int_equal(reasm_bytes_in_use(&fx->r), 0);
	fixture_free(fx);
}

static void test_random_order(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	static uint8_t dg[70000];
	static const size_t payloads[] = {9, 100, 1481, 4096, 20000, 65515};
	static const size_t steps[] = {8, 64, 512, 1024, 1480, 8192};
	for (size_t p = 0; p < 6; p++) {
		for (size_t s = 0; s < 6; s++) {
			size_t nfr = (payloads[p] + steps[s] - 1) / steps[s];
			if (nfr < 2 || nfr > REASM_MAX_FRAGS)
				continue;
			for (uint32_t seed = 1; seed < 6; seed++) {
				size_t len = make_v4(dg, 17, (uint16_t)(p * 100 + s), SRC4, 0,
						     payloads[p], seed, false);
				feed_v4_order(fx, dg, len, steps[s], NULL, seed);
			}
		}
	}
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	assert_int_equal(reasm_bytes_in_use(&fx->r), 0);
	fixture_free(fx);
}

static void test_header_rebuilt(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[200];
	size_t len = make_v4(dg, 1, 99, SRC4, 4, 100, 3, true);
	struct tfrag a, b;
	struct reasm_result out;
	frag_v4(&a, dg, 0, 56, true);
	frag_v4(&b, dg, 56, 44, false);
	a.hdr[8] = 63; /* fields other than length/flags/checksum come from the first */
	store_be16(a.hdr + 10, 0);
	store_be16(a.hdr + 10, csum_buf(a.hdr, 24));
	assert_int_equal(add(fx, &b, 0, &out), REASM_NEED_MORE);
	assert_int_equal(add(fx, &a, 0, &out), REASM_COMPLETE);
	assert_int_equal(out.len, len);
	assert_int_equal(load_be16(out.datagram + 2), len);
	assert_int_equal(load_be16(out.datagram + 6), 0x4000); /* DF kept, MF and offset gone */
	assert_int_equal(out.datagram[8], 63);
	assert_int_equal(csum_buf(out.datagram, 24), 0);
	assert_memory_equal(out.datagram + 24, dg + 24, 100);
	fixture_free(fx);
}

static void test_duplicates(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[3100];
	size_t len = make_v4(dg, 17, 5, SRC4, 0, 3000, 4, false);
	struct tfrag t[3];
	struct reasm_result out;
	frag_v4(&t[0], dg, 0, 1480, true);
	frag_v4(&t[1], dg, 1480, 1480, true);
	frag_v4(&t[2], dg, 2960, 40, false);
	assert_int_equal(add(fx, &t[0], 0, &out), REASM_NEED_MORE);
	assert_int_equal(add(fx, &t[0], 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DUPLICATE);
	assert_int_equal(add(fx, &t[2], 0, &out), REASM_NEED_MORE);
	assert_int_equal(add(fx, &t[2], 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DUPLICATE);
	assert_int_equal(add(fx, &t[1], 0, &out), REASM_COMPLETE);
	expect_complete(&out, dg, len);
	assert_int_equal(fx->r.stats.dropped[REASM_DROP_DUPLICATE], 2);
	fixture_free(fx);
}

static void test_overlap_drops_all(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(REASM_DEFAULT_BUDGET, 8, 30 * SEC, 5 * SEC);
	uint8_t dg[3100], evil[3100];
	size_t len = make_v4(dg, 17, 5, SRC4, 0, 3000, 4, false);
	memcpy(evil, dg, len);
	evil[20 + 1000] ^= 0xff;
	struct tfrag t;
	struct reasm_result out;

	/* same range, different bytes */
	frag_v4(&t, dg, 0, 1480, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, evil, 0, 1480, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_OVERLAP);
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	assert_int_equal(reasm_bytes_in_use(&fx->r), 0);
	/* the rest of the datagram is dropped too, even the good parts */
	frag_v4(&t, dg, 1480, 1480, true);
	assert_int_equal(add(fx, &t, SEC, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DEAD);
	frag_v4(&t, dg, 0, 1480, true);
	assert_int_equal(add(fx, &t, SEC, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DEAD);
	/* once the key is forgotten the same id works again */
	reasm_expire(&fx->r, 6 * SEC, NULL, NULL);
	size_t order[] = {1, 0, 2};
	feed_v4_order(fx, dg, len, 1480, order, 0);
	fixture_free(fx);
}

static void test_partial_overlap_same_bytes(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[3100];
	make_v4(dg, 17, 6, SRC4, 0, 3000, 4, false);
	struct tfrag t;
	struct reasm_result out;
	frag_v4(&t, dg, 0, 1480, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 1472, 1480, true); /* same bytes, shifted range */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_OVERLAP);
	frag_v4(&t, dg, 1480, 1480, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DEAD);
	assert_int_equal(fx->r.stats.poisoned, 1);
	fixture_free(fx);
}

static void test_inconsistent_end(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[3100];
	make_v4(dg, 17, 8, SRC4, 0, 3000, 4, false);
	struct tfrag t;
	struct reasm_result out;

	/* two different last fragments */
	frag_v4(&t, dg, 1480, 100, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 1600, 100, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_INCONSISTENT);

	/* a middle fragment past the end */
	make_v4(dg, 17, 9, SRC4, 0, 3000, 4, false);
	frag_v4(&t, dg, 1480, 100, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 1584, 16, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_INCONSISTENT);

	/* a last fragment before data already seen */
	make_v4(dg, 17, 10, SRC4, 0, 3000, 4, false);
	frag_v4(&t, dg, 1480, 160, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 800, 100, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_INCONSISTENT);
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	fixture_free(fx);
}

static void test_tiny_first_fragment(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[200];
	struct tfrag t;
	struct reasm_result out;

	/* TCP needs 20 bytes in the first fragment: 8 and 16 are refused */
	make_v4(dg, 6, 20, SRC4, 0, 100, 5, false);
	frag_v4(&t, dg, 0, 16, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TINY);
	frag_v4(&t, dg, 16, 84, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DEAD);

	/* UDP and ICMP need 8: 8 is fine */
	make_v4(dg, 17, 21, SRC4, 0, 100, 5, false);
	frag_v4(&t, dg, 0, 8, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 8, 92, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_COMPLETE);
	expect_complete(&out, dg, 120);

	/* every first-fragment length up to 40 for TCP */
	for (size_t l = 0; l <= 40; l++) {
		make_v4(dg, 6, (uint16_t)(100 + l), SRC4, 0, 100, 5, false);
		frag_v4(&t, dg, 0, l, true);
		enum reasm_status st = add(fx, &t, 0, &out);
		if (l >= 20 && l % 8 == 0)
			assert_int_equal(st, REASM_NEED_MORE);
		else
			assert_int_equal(st, REASM_DROPPED);
	}
	fixture_free(fx);
}

static void test_fragment_inside_transport_header(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[200];
	struct tfrag t;
	struct reasm_result out;

	/* RFC 1858: TCP fragment at offset 8 (rewrites flags) — before the first */
	make_v4(dg, 6, 30, SRC4, 0, 100, 5, false);
	frag_v4(&t, dg, 8, 16, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TINY);
	frag_v4(&t, dg, 0, 24, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_DEAD);

	/* ... and after the first */
	make_v4(dg, 6, 31, SRC4, 0, 100, 5, false);
	frag_v4(&t, dg, 0, 24, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 16, 84, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TINY);
	assert_int_equal(reasm_in_progress(&fx->r), 0);

	/* IPv6: a later fragment claiming UDP cannot slip into a TCP header */
	uint8_t dg6[300];
	make_v6(dg6, 6, 0, 100, 6);
	frag_v6(&t, dg6, 0, 77, 0, 24, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v6(&t, dg6, 0, 77, 16, 84, false);
	t.f.proto = 17;
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TINY);
	fixture_free(fx);
}

static void test_bad_fragments(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[3100];
	make_v4(dg, 17, 40, SRC4, 0, 3000, 4, false);
	struct tfrag t;
	struct reasm_result out;

	frag_v4(&t, dg, 12, 16, true); /* offset not a multiple of 8 */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_FRAGMENT);
	frag_v4(&t, dg, 16, 12, true); /* MF with a length not a multiple of 8 */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_FRAGMENT);
	frag_v4(&t, dg, 16, 0, false); /* empty */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_FRAGMENT);
	frag_v4(&t, dg, 16, 16, true);
	t.f.family = 5;
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_FRAGMENT);
	frag_v4(&t, dg, 16, 16, true);
	t.f.id = 0x10000; /* IPv4 ids are 16 bits */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_FRAGMENT);

	/* first fragment headers that do not hold together */
	frag_v4(&t, dg, 0, 16, true);
	t.f.hdr_len = 24; /* IHL says 20 */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	frag_v4(&t, dg, 0, 16, true);
	t.hdr[0] = 0x65;
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	for (size_t hl = 0; hl < 20; hl++) {
		frag_v4(&t, dg, 0, 16, true);
		t.f.hdr_len = hl;
		assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
		assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	}
	uint8_t dg6[300];
	make_v6(dg6, 17, 16, 100, 6);
	frag_v6(&t, dg6, 16, 1, 0, 16, true);
	t.f.hdr_nh_off = 6; /* byte 6 names the extension header, not 44 */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	frag_v6(&t, dg6, 16, 1, 0, 16, true);
	t.f.hdr_nh_off = 56; /* past the header */
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	for (size_t hl = 0; hl < 40; hl++) {
		frag_v6(&t, dg6, 0, 2, 0, 16, true);
		t.f.hdr_len = hl;
		assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
		assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	}
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	fixture_free(fx);
}

static void test_too_many_fragments(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	static uint8_t dg[2000];
	make_v4(dg, 17, 50, SRC4, 0, (size_t)8 * (REASM_MAX_FRAGS + 1), 7, false);
	struct tfrag t;
	struct reasm_result out;
	for (size_t i = 0; i < REASM_MAX_FRAGS; i++) {
		frag_v4(&t, dg, i * 8, 8, true);
		assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	}
	frag_v4(&t, dg, (size_t)REASM_MAX_FRAGS * 8, 8, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TOO_MANY_FRAGS);
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	assert_int_equal(reasm_bytes_in_use(&fx->r), 0);

	/* exactly REASM_MAX_FRAGS completes */
	make_v4(dg, 17, 51, SRC4, 0, (size_t)8 * REASM_MAX_FRAGS, 7, false);
	feed_v4_order(fx, dg, 20 + (size_t)8 * REASM_MAX_FRAGS, 8, NULL, 3);
	fixture_free(fx);
}

static void test_too_large(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	static uint8_t big[70000];
	memset(big, 0xab, sizeof(big));
	struct reasm_result out;
	struct reasm_frag f;
	memset(&f, 0, sizeof(f));
	f.family = 4;
	f.proto = 17;
	f.id = 60;
	f.src = ip_from_v4(SRC4);
	f.dst = ip_from_v4(DST4);
	f.data = big;
	f.offset = 65528;
	f.data_len = 16; /* ends at 65544 */
	assert_int_equal(reasm_add(&fx->r, &f, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TOO_LARGE);

	/* 65515 of payload fits a 20-byte header; not a 60-byte one */
	uint8_t hdr[60];
	make_v4(hdr, 17, 61, SRC4, 40, 0, 0, false);
	f.id = 61;
	f.offset = 65512;
	f.data_len = 3; /* payload 65515 */
	f.more = false;
	assert_int_equal(reasm_add(&fx->r, &f, 0, &out), REASM_NEED_MORE);
	f.offset = 0;
	f.more = true;
	f.data_len = 1480;
	f.hdr = hdr;
	f.hdr_len = 60;
	assert_int_equal(reasm_add(&fx->r, &f, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_TOO_LARGE);
	assert_int_equal(reasm_in_progress(&fx->r), 0);

	/* the largest IPv4 datagram completes */
	static uint8_t dg[65535];
	size_t len = make_v4(dg, 17, 62, SRC4, 0, 65515, 9, false);
	feed_v4_order(fx, dg, len, 8192, NULL, 1);
	fixture_free(fx);
}

static void test_eviction_memory(void **state)
{
	(void)state;
	/* 8 blocks of payload: room for two 1500-byte datagrams' first halves */
	struct fixture *fx = fixture_new((size_t)8 * REASM_BLOCK_SIZE, 16, 30 * SEC, 5 * SEC);
	uint8_t dg[3][3100];
	struct tfrag t;
	struct reasm_result out;
	for (int i = 0; i < 3; i++) {
		make_v4(dg[i], 17, (uint16_t)(70 + i), SRC4, 0, 3000, (uint32_t)i, false);
		frag_v4(&t, dg[i], 0, 1480, true); /* 3 blocks each */
		assert_int_equal(add(fx, &t, (uint64_t)i, &out), REASM_NEED_MORE);
	}
	/* the third needed room: the first was evicted, never more than budget */
	assert_int_equal(fx->r.stats.evicted, 1);
	assert_int_equal(reasm_in_progress(&fx->r), 2);
	assert_int_equal(reasm_bytes_in_use(&fx->r), (size_t)6 * REASM_BLOCK_SIZE);
	/* the evicted datagram no longer completes */
	frag_v4(&t, dg[0], 1480, 1480, true);
	assert_int_equal(add(fx, &t, 3, &out), REASM_NEED_MORE);
	frag_v4(&t, dg[0], 2960, 40, false);
	assert_int_equal(add(fx, &t, 3, &out), REASM_NEED_MORE);
	/* the newest one still does */
	frag_v4(&t, dg[2], 2960, 40, false);
	assert_int_equal(add(fx, &t, 4, &out), REASM_NEED_MORE);
	frag_v4(&t, dg[2], 1480, 1480, true);
	assert_int_equal(add(fx, &t, 4, &out), REASM_COMPLETE);
	expect_complete(&out, dg[2], 3020);
	assert_true(reasm_bytes_in_use(&fx->r) <= (size_t)8 * REASM_BLOCK_SIZE);

	/* a datagram bigger than the whole budget is refused */
	static uint8_t huge[10000];
	make_v4(huge, 17, 80, SRC4, 0, 9000, 1, false);
	for (size_t o = 0; o < 8000; o += 1000) {
		frag_v4(&t, huge, o, 1000, true);
		add(fx, &t, 5, &out);
	}
	assert_true(fx->r.stats.dropped[REASM_DROP_NO_MEMORY] >= 1);
	fixture_free(fx);
}

static void test_eviction_table_full(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(REASM_DEFAULT_BUDGET, 2, 30 * SEC, 5 * SEC);
	uint8_t dg[3][300];
	struct tfrag t;
	struct reasm_result out;
	for (int i = 0; i < 3; i++) {
		make_v4(dg[i], 17, (uint16_t)(90 + i), SRC4, 0, 200, (uint32_t)i, false);
		frag_v4(&t, dg[i], 0, 96, true);
		assert_int_equal(add(fx, &t, (uint64_t)i, &out), REASM_NEED_MORE);
		assert_true(reasm_in_progress(&fx->r) <= 2);
	}
	assert_int_equal(fx->r.stats.evicted, 1);
	frag_v4(&t, dg[1], 96, 104, false);
	assert_int_equal(add(fx, &t, 3, &out), REASM_COMPLETE);
	expect_complete(&out, dg[1], 220);
	frag_v4(&t, dg[0], 96, 104, false);
	assert_int_equal(add(fx, &t, 3, &out), REASM_NEED_MORE);
	fixture_free(fx);
}

struct expired_log {
	size_t n;
	size_t with_first;
	uint8_t data0[8];
	size_t data_len;
	size_t hdr_len;
};

static void on_expired(void *ctx, const struct reasm_expired *e)
{
	struct expired_log *l = ctx;
	l->n++;
	if (e->hdr != NULL) {
		l->with_first++;
		l->hdr_len = e->hdr_len;
		l->data_len = e->data_len;
		memcpy(l->data0, e->data, 8);
	}
}

static void test_timeout(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[3100], dg2[3100];
	make_v4(dg, 17, 100, SRC4, 0, 3000, 4, false);
	make_v4(dg2, 17, 101, SRC4, 0, 3000, 5, false);
	struct tfrag t;
	struct reasm_result out;
	uint64_t t0 = 1000 * SEC;
	frag_v4(&t, dg, 0, 1480, true);
	assert_int_equal(add(fx, &t, t0, &out), REASM_NEED_MORE);
	frag_v4(&t, dg2, 1480, 1480, true); /* no first fragment: no ICMP due */
	assert_int_equal(add(fx, &t, t0 + SEC, &out), REASM_NEED_MORE);

	struct expired_log log;
	memset(&log, 0, sizeof(log));
	assert_int_equal(reasm_expire(&fx->r, t0 + 29 * SEC, on_expired, &log), 0);
	frag_v4(&t, dg, 1480, 1480, true); /* arrivals do not extend the life */
	assert_int_equal(add(fx, &t, t0 + 29 * SEC, &out), REASM_NEED_MORE);
	assert_int_equal(reasm_expire(&fx->r, t0 + 30 * SEC, on_expired, &log), 1);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.with_first, 1);
	assert_int_equal(log.hdr_len, 20);
	assert_int_equal(log.data_len, REASM_BLOCK_SIZE);
	assert_memory_equal(log.data0, dg + 20, 8);
	assert_int_equal(reasm_expire(&fx->r, t0 + 31 * SEC, on_expired, &log), 1);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.with_first, 1);
	assert_int_equal(reasm_in_progress(&fx->r), 0);
	assert_int_equal(reasm_bytes_in_use(&fx->r), 0);
	assert_int_equal(fx->r.stats.timed_out, 2);

	/* the last fragment now starts a new datagram */
	frag_v4(&t, dg, 2960, 40, false);
	assert_int_equal(add(fx, &t, t0 + 31 * SEC, &out), REASM_NEED_MORE);
	/* and a datagram found stale by reasm_add is dropped too */
	frag_v4(&t, dg, 0, 1480, true);
	assert_int_equal(add(fx, &t, t0 + 62 * SEC, &out), REASM_NEED_MORE);
	assert_int_equal(fx->r.stats.timed_out, 3);
	frag_v4(&t, dg, 1480, 1480, true);
	assert_int_equal(add(fx, &t, t0 + 62 * SEC, &out), REASM_NEED_MORE);
	frag_v4(&t, dg, 2960, 40, false);
	assert_int_equal(add(fx, &t, t0 + 62 * SEC, &out), REASM_COMPLETE);
	expect_complete(&out, dg, 3020);
	fixture_free(fx);
}

static void test_ipv6_extension_headers(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	static uint8_t dg[5000];
	static const size_t exts[] = {0, 8, 24, 200};
	for (size_t e = 0; e < 4; e++) {
		size_t len = make_v6(dg, 17, exts[e], 4000, (uint32_t)e);
		size_t offs[8], lens[8], idx[8];
		size_t n = split(4000, 1232, offs, lens, 8);
		uint32_t seed = (uint32_t)e + 7;
		shuffle(idx, n, &seed);
		struct tfrag t;
		struct reasm_result out;
		memset(&out, 0, sizeof(out));
		for (size_t i = 0; i < n; i++) {
			size_t k = idx[i];
			frag_v6(&t, dg, exts[e], 0xdeadbeef, offs[k], lens[k], k + 1 < n);
			enum reasm_status st = add(fx, &t, 0, &out);
			assert_int_equal(st, i + 1 < n ? REASM_NEED_MORE : REASM_COMPLETE);
		}
		expect_complete(&out, dg, len);
		assert_int_equal(out.hdr_len, 40 + exts[e]);
		assert_int_equal(out.proto, 17);
	}
	/* an unfragmentable part longer than REASM_HDR_MAX is refused */
	make_v6(dg, 17, 256, 100, 1);
	struct tfrag t;
	struct reasm_result out;
	frag_v6(&t, dg, 216, 1, 0, 48, true);
	t.f.hdr_len = 296;
	t.f.hdr = dg;
	assert_int_equal(reasm_add(&fx->r, &t.f, 0, &out), REASM_DROPPED);
	assert_int_equal(out.reason, REASM_DROP_BAD_HEADER);
	fixture_free(fx);
}

static void test_ipv6_atomic_fragment(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t dg[300];
	size_t len = make_v6(dg, 58, 8, 64, 3);
	struct tfrag t;
	struct reasm_result out;
	/* a real datagram of the same id in progress is not disturbed */
	frag_v6(&t, dg, 8, 5, 0, 32, true);
	assert_int_equal(add(fx, &t, 0, &out), REASM_NEED_MORE);
	frag_v6(&t, dg, 8, 5, 0, 64, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_COMPLETE);
	expect_complete(&out, dg, len);
	assert_int_equal(reasm_in_progress(&fx->r), 1);
	frag_v6(&t, dg, 8, 5, 32, 32, false);
	assert_int_equal(add(fx, &t, 0, &out), REASM_COMPLETE);
	expect_complete(&out, dg, len);
	fixture_free(fx);
}

static void test_interleaved_same_id(void **state)
{
	(void)state;
	struct fixture *fx = fixture_default();
	uint8_t a[3100], b[3100], c[3100];
	size_t la = make_v4(a, 17, 0x4242, SRC4, 0, 3000, 1, false);
	size_t lb = make_v4(b, 17, 0x4242, SRC4B, 0, 3000, 2, false);
	size_t lc = make_v4(c, 1, 0x4242, SRC4, 0, 3000, 3, false); /* other protocol */
	struct tfrag t;
	struct reasm_result out;
	for (size_t i = 0; i < 3; i++) {
		size_t off = i * 1480, n = i < 2 ? 1480 : 40;
		bool more = i < 2;
		frag_v4(&t, a, off, n, more);
		enum reasm_status sa = add(fx, &t, 0, &out);
		if (!more)
			expect_complete(&out, a, la);
		else
			assert_int_equal(sa, REASM_NEED_MORE);
		frag_v4(&t, b, off, n, more);
		add(fx, &t, 0, &out);
		if (!more)
			expect_complete(&out, b, lb);
		frag_v4(&t, c, off, n, more);
		add(fx, &t, 0, &out);
		if (!more)
			expect_complete(&out, c, lc);
	}
	assert_int_equal(fx->r.stats.completed, 3);
	assert_int_equal(fx->r.stats.poisoned, 0);
	fixture_free(fx);
}

static void test_init_limits(void **state)
{
	(void)state;
	assert_int_equal(reasm_memory_needed(0, 4), 0);
	assert_int_equal(reasm_memory_needed(REASM_BLOCK_SIZE - 1, 4), 0);
	assert_int_equal(reasm_memory_needed(REASM_MAX_BUDGET + REASM_BLOCK_SIZE, 4), 0);
	assert_int_equal(reasm_memory_needed(4096, 0), 0);
	assert_int_equal(reasm_memory_needed(4096, REASM_MAX_DATAGRAMS_LIMIT + 1), 0);
	size_t need = reasm_memory_needed(4096, 4);
	assert_true(need >= 4096 + REASM_OUT_MAX);
	struct reasm r;
	struct reasm_config cfg;
	reasm_config_default(&cfg);
	cfg.budget_bytes = 4096;
	cfg.max_datagrams = 4;
	uint8_t *mem = malloc(need);
	assert_non_null(mem);
	assert_false(reasm_init(&r, &cfg, mem, need - 1));
	assert_false(reasm_init(&r, &cfg, NULL, need));
	cfg.timeout_ns = 0;
	assert_false(reasm_init(&r, &cfg, mem, need));
	cfg.timeout_ns = SEC;
	assert_true(reasm_init(&r, &cfg, mem, need));
	free(mem);
	assert_string_equal(reasm_drop_str(REASM_DROP_OVERLAP), "overlap");
	assert_string_equal(reasm_drop_str(REASM_DROP_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_reverse_order),
		cmocka_unit_test(test_random_order),
		cmocka_unit_test(test_header_rebuilt),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_overlap_drops_all),
		cmocka_unit_test(test_partial_overlap_same_bytes),
		cmocka_unit_test(test_inconsistent_end),
		cmocka_unit_test(test_tiny_first_fragment),
		cmocka_unit_test(test_fragment_inside_transport_header),
		cmocka_unit_test(test_bad_fragments),
		cmocka_unit_test(test_too_many_fragments),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_eviction_memory),
		cmocka_unit_test(test_eviction_table_full),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_ipv6_extension_headers),
		cmocka_unit_test(test_ipv6_atomic_fragment),
		cmocka_unit_test(test_interleaved_same_id),
		cmocka_unit_test(test_init_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
