/* fuzz_reasm.c — the reassembler under arbitrary fragment sequences.
 *
 * The input is decoded into a configuration (budget, table size, timeout,
 * whether payload bytes are a function of position) and a sequence of
 * operations: add a fragment (family, source, id, protocol, offset, length,
 * MF, header variant, possibly a broken header), advance the fake clock, or
 * expire. Invariants: no crash or sanitizer report, payload memory within
 * the budget, datagrams in progress within the table size, every completed
 * datagram has a self-consistent header (lengths, checksum, no fragment
 * fields) and, when every fragment carried position-derived bytes, exactly
 * those bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/byteorder.h"
#include "base/checksum.h"
#include "net/reasm.h"

struct input {
	const uint8_t *p;
	size_t len;
};

static uint8_t take8(struct input *in)
{
	if (in->len == 0)
		return 0;
	uint8_t v = *in->p++;
	in->len--;
	return v;
}

static uint16_t take16(struct input *in)
{
	return (uint16_t)(take8(in) << 8 | take8(in));
}

/* Position-derived payload: byte pos of datagram id is table[pos + 8 * (id & 3)],
 * so a fragment's data is a pointer into the table (no per-run fill). */
static uint8_t table[65536 + 64];

static const uint8_t *pattern_at(uint32_t pos, uint32_t id)
{
	if (table[1] == 0) {
		uint32_t x = 1;
		for (size_t i = 0; i < sizeof(table); i++) {
			x = x * 1103515245u + 12345u;
			table[i] = (uint8_t)(x >> 16 | 1);
		}
	}
	return table + pos + (size_t)8 * (id & 3u);
}

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void on_expired(void *ctx, const struct reasm_expired *e)
{
	(void)ctx;
	check(e->family == 4 || e->family == 6);
	if (e->hdr != NULL) {
		check(e->hdr_len >= 20 && e->hdr_len <= REASM_HDR_MAX);
		check(e->data_len >= 8 && e->data_len <= REASM_BLOCK_SIZE);
		volatile uint8_t sink = e->hdr[e->hdr_len - 1] ^ e->data[e->data_len - 1];
		(void)sink;
	}
}

static void check_complete(const struct reasm_result *out, uint8_t family, bool pure,
			   uint32_t id)
{
	const uint8_t *d = out->datagram;
	check(out->len >= out->hdr_len && out->len <= REASM_OUT_MAX);
	if (family == 4) {
		check(out->hdr_len >= 20 && out->hdr_len <= 60);
		check((size_t)(d[0] & 15) * 4 == out->hdr_len);
		check(load_be16(d + 2) == out->len);
		check((load_be16(d + 6) & 0xbfff) == 0);
		check(csum_buf(d, out->hdr_len) == 0);
	} else {
		check(out->hdr_len >= 40 && out->hdr_len <= REASM_HDR_MAX);
		check(40u + load_be16(d + 4) == out->len);
	}
	if (pure)
		check(memcmp(d + out->hdr_len, pattern_at(0, id), out->len - out->hdr_len) == 0);
}

static uint8_t mem[512 * 1024];
static uint8_t data[65536];
static uint8_t hdr[REASM_HDR_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct input in = {buf, len};
	struct reasm_config cfg;
	reasm_config_default(&cfg);
	cfg.budget_bytes = (size_t)(1 + take8(&in) % 160) * REASM_BLOCK_SIZE;
	cfg.max_datagrams = 1u + take8(&in) % 16u;
	cfg.timeout_ns = (1u + take8(&in) % 8u) * 1000000000ull;
	cfg.dead_ns = (take8(&in) % 4u) * 1000000000ull;
	bool pure = (take8(&in) & 1) != 0;
	size_t need = reasm_memory_needed(cfg.budget_bytes, cfg.max_datagrams);
	check(need > 0 && need <= sizeof(mem));
	static struct reasm r;
	check(reasm_init(&r, &cfg, mem, need));

	uint64_t now = 1000000000ull;
	static const uint8_t protos[8] = {6, 17, 1, 58, 47, 50, 0, 255};
	while (in.len > 0) {
		uint8_t op = take8(&in);
		if ((op & 7) == 7) {
			now += (uint64_t)take8(&in) * 50000000ull;
			if (op & 8)
				reasm_expire(&r, now, (op & 16) ? on_expired : NULL, NULL);
			continue;
		}
		struct reasm_frag f;
		memset(&f, 0, sizeof(f));
		f.family = (op & 8) ? 6 : 4;
		f.more = (op & 16) != 0;
		uint8_t a = take8(&in);
		uint8_t srcb[4] = {10, 0, 0, (uint8_t)(a & 3)};
		uint8_t src6[16] = {0xfe, 0x80, [15] = (uint8_t)(a & 3)};
		f.src = f.family == 4 ? ip_from_v4(srcb) : ip_from_v6(src6);
		uint8_t dstb[4] = {192, 0, 2, 1};
		f.dst = ip_from_v4(dstb);
		f.id = (a >> 2) & 3;
		if ((op & 32) && (a & 0x80))
			f.id = 0x10000u; /* too wide for IPv4 */
		f.proto = protos[(a >> 4) & 7];
		uint16_t o = take16(&in);
		f.offset = (op & 32) ? (uint32_t)(o % 64u) * 8u : (uint32_t)o;
		if ((op & 64) && !(op & 32))
			f.offset = o & 0xfff8u;
		uint16_t l = take16(&in);
		f.data_len = (l & 0x8000) ? (size_t)(l & 0x7fff) * 2u : (size_t)(l % 2048u);
		if (f.offset + f.data_len > 65536)
			f.data_len = 65536 - f.offset; /* stay inside the table */
		f.data = pattern_at(f.offset, f.id);
		if (!pure && f.data_len > 0 && (op & 128)) {
			memcpy(data, f.data, f.data_len);
			data[f.data_len / 2] ^= 0x5a;
			f.data = data;
		}

		if (f.offset == 0) {
			uint8_t h = take8(&in);
			memset(hdr, 0, sizeof(hdr));
			if (f.family == 4) {
				size_t hl = 20u + (size_t)(h & 7) * 4u;
				hdr[0] = (uint8_t)(0x40 | hl / 4);
				hdr[9] = f.proto;
				f.hdr_len = hl;
			} else {
				size_t ext = (size_t)(h & 7) * 8u;
				hdr[0] = 0x60;
				f.hdr_len = 40 + ext;
				f.hdr_nh_off = ext ? 40 + ext - 8 : 6;
				hdr[f.hdr_nh_off] = 44;
			}
			if (h & 0x80) /* a header that does not hold together */
				f.hdr_len = (size_t)(h & 0x3f) * 5u;
			if (h & 0x40)
				hdr[(h & 0x3f) % REASM_HDR_MAX] ^= 0xff;
			f.hdr = hdr;
		}

		struct reasm_result out;
		enum reasm_status st = reasm_add(&r, &f, now, &out);
		check(st == out.status);
		check(reasm_bytes_in_use(&r) <= cfg.budget_bytes);
		check(reasm_in_progress(&r) <= cfg.max_datagrams);
		if (st == REASM_COMPLETE)
			check_complete(&out, f.family, pure, f.id);
		else if (st == REASM_DROPPED)
			check(out.reason > REASM_DROP_NONE && out.reason < REASM_DROP_COUNT);
	}
	reasm_expire(&r, now + 100ull * 1000000000ull, on_expired, NULL);
	check(reasm_in_progress(&r) == 0);
	check(reasm_bytes_in_use(&r) == 0);
	return 0;
}
