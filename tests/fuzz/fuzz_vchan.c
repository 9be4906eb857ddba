/* fuzz_vchan.c — a hostile vchan peer against our vchan, over the fake
 * hypervisor.
 *
 * Input byte 0 picks the set-up: bit 0 clear — our server (domain 0) with
 * our client (domain 5) as the peer, whose shared page the fuzzer tampers
 * with; bit 0 set — our client against a fuzzer-crafted server control page
 * (orders and grant list from the input). Bits 1-3 pick the ring sizes.
 * Then a sequence of ops [op][args...]: raw writes of u8/u32 anywhere in
 * the control page or the ring pages (indices, live and notify bytes, ring
 * contents, orders), honest reads and writes of either side, polls, close.
 *
 * Checks: no crash, no out-of-bounds access (ASan; reads land at the end of
 * a buffer so an overrun hits the redzone), results within their bounds,
 * and as long as the fuzzer has not touched the shared page the byte
 * stream arrives intact in both directions. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_hv.h"
#include "xen/vchan.h"

#define SRV 0
#define CLI 5
#define BUF 8192

static struct vchan ours, peer;
static bool have_peer;
static uint8_t out_buf[BUF];
static uint8_t in_buf[BUF];
static uint8_t *shared_pages[1 + 2 * VCHAN_RING_PAGES_MAX];
static size_t shared_n;
static bool tampered;
static uint32_t sent[2], recvd[2]; /* [0]: ours -> peer, [1]: peer -> ours */

struct input {
	const uint8_t *p;
	size_t len;
};

static void check(int cond)
{
	if (!cond)
		abort();
}

static uint8_t take8(struct input *in)
{
	if (in->len == 0)
		return 0;
	in->len--;
	return *in->p++;
}

static uint16_t take16(struct input *in)
{
	return (uint16_t)(take8(in) | take8(in) << 8);
}

static uint32_t take32(struct input *in)
{
	return (uint32_t)take16(in) | (uint32_t)take16(in) << 16;
}

static uint8_t pattern(uint32_t i, int dir)
{
	return (uint8_t)(i * 167u + (i >> 9) + (uint32_t)dir * 77u);
}

static hv_domid_t our_dom;

static void enter(bool our_side)
{
	fake_hv_set_current(our_side ? our_dom : (our_dom == SRV ? CLI : SRV));
}

/* Crafted server for client mode: control page + ring pages from input. */
static bool craft_server(struct input *in, hv_gref_t *ref, hv_port_t *port)
{
	fake_hv_set_current(SRV);
	uint8_t *ctrl = hv_pages_alloc(1);
	check(ctrl != NULL);
	shared_pages[shared_n++] = ctrl;
	check(hv_grant(ctrl, CLI, false, ref));
	check(hv_evtchn_alloc_unbound(CLI, port));
	uint16_t order[2];
	for (int i = 0; i < 2; i++) {
		uint8_t b = take8(in);
		order[i] = b < 0xf0 ? (uint16_t)(10 + b % 8) : take16(in);
	}
	struct vchan_interface *c = (struct vchan_interface *)ctrl;
	c->left_order = order[0];
	c->right_order = order[1];
	c->srv_live = 1;
	c->cli_live = 2;
	c->cli_notify = VCHAN_NOTIFY_WRITE;
	size_t slot = 0;
	for (int i = 0; i < 2; i++) {
		if (order[i] < 12 || order[i] > VCHAN_ORDER_MAX)
			continue;
		size_t n = (size_t)1 << (order[i] - 12);
		uint8_t *pages = hv_pages_alloc(n);
		check(pages != NULL);
		for (size_t k = 0; k < n; k++) {
			hv_gref_t g;
			shared_pages[shared_n++] = pages + k * HV_PAGE_SIZE;
			check(hv_grant(pages + k * HV_PAGE_SIZE, CLI, take8(in) == 0x55, &g));
			uint8_t how = take8(in);
			c->grants[slot++] = how == 0xaa ? take32(in) : g;
		}
	}
	return take8(in) != 0x33; /* rarely: hand the client a wrong event channel */
}

static void tamper(struct input *in, bool wide)
{
	if (shared_n == 0)
		return;
	uint8_t *page = shared_pages[take8(in) % shared_n];
	uint16_t off = take16(in) % HV_PAGE_SIZE;
	tampered = true;
	if (wide) {
		off &= (uint16_t)~3u;
		uint32_t v = take32(in);
		memcpy(page + off, &v, 4);
	} else {
		page[off] = take8(in);
	}
}

static void do_write(bool our_side, size_t len)
{
	struct vchan *v = our_side ? &ours : &peer;
	int dir = our_side ? 0 : 1;
	if (!our_side && !have_peer)
		return;
	enter(our_side);
	for (size_t i = 0; i < len; i++)
		out_buf[i] = pattern(sent[dir] + (uint32_t)i, dir);
	int r = vchan_write(v, out_buf, len);
	check(r == STREAM_CLOSED || (r >= 0 && (size_t)r <= len));
	if (r > 0)
		sent[dir] += (uint32_t)r;
}

static void do_read(bool our_side, size_t len)
{
	struct vchan *v = our_side ? &ours : &peer;
	int dir = our_side ? 1 : 0; /* we read what the other side sent */
	if (!our_side && !have_peer)
		return;
	enter(our_side);
	uint8_t *dst = in_buf + BUF - len; /* an overrun hits the redzone */
	int r = vchan_read(v, dst, len);
	check(r == STREAM_CLOSED || (r >= 0 && (size_t)r <= len));
	if (r > 0) {
		if (!tampered)
			for (int i = 0; i < r; i++)
				check(dst[i] == pattern(recvd[dir] + (uint32_t)i, dir));
		recvd[dir] += (uint32_t)r;
	}
}

static void do_queries(bool our_side)
{
	struct vchan *v = our_side ? &ours : &peer;
	if (!our_side && !have_peer)
		return;
	enter(our_side);
	enum vchan_state st = vchan_poll(v);
	size_t space = vchan_write_space(v);
	size_t ready = vchan_data_ready(v);
	if (st != VCHAN_STATE_IDLE) {
		check(space <= v->tx.size);
		check(ready <= v->rx.size);
	} else {
		check(space == 0 && ready == 0);
	}
	if (st == VCHAN_STATE_BROKEN || st == VCHAN_STATE_IDLE) {
		uint8_t b[4];
		check(vchan_read(v, b, sizeof(b)) == STREAM_CLOSED);
		check(vchan_write(v, b, sizeof(b)) == STREAM_CLOSED);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[8][2] = {
		{ 0, 0 }, { 2048, 1024 }, { 4096, 4096 }, { 2048, 8192 },
		{ 8192, 100 }, { 65536, 4096 }, { 1024, 1024 }, { 16384, 16384 },
	};
	struct input in = { data, size };

	fake_hv_reset();
	vchan_quarantine_forget();
	check(fake_hv_add_domain(SRV) && fake_hv_add_domain(CLI));
	memset(&ours, 0, sizeof(ours));
	memset(&peer, 0, sizeof(peer));
	have_peer = false;
	shared_n = 0;
	tampered = false;
	memset(sent, 0, sizeof(sent));
	memset(recvd, 0, sizeof(recvd));

	uint8_t mode = take8(&in);
	our_dom = (mode & 1) ? CLI : SRV;
	if ((mode & 1) == 0) {
		const size_t *sz = sizes[(mode >> 1) & 7];
		fake_hv_set_current(SRV);
		check(vchan_server_init(&ours, CLI, 111, sz[0], sz[1], NULL) == VCHAN_OK);
		fake_hv_set_current(CLI);
		check(vchan_client_attach(&peer, SRV, 111, vchan_server_ring_ref(&ours),
					  vchan_evtchn(&ours)) == VCHAN_OK);
		have_peer = true;
		shared_pages[shared_n++] = (uint8_t *)ours.ctrl;
		for (size_t k = 0; k < ours.rx.npages; k++)
			shared_pages[shared_n++] = (uint8_t *)ours.rx.pages + k * HV_PAGE_SIZE;
		for (size_t k = 0; k < ours.tx.npages; k++)
			shared_pages[shared_n++] = (uint8_t *)ours.tx.pages + k * HV_PAGE_SIZE;
	} else {
		hv_gref_t ref;
		hv_port_t port;
		bool good_port = craft_server(&in, &ref, &port);
		fake_hv_set_current(CLI);
		enum vchan_result r = vchan_client_attach(&ours, SRV, 111, ref,
							  good_port ? port : port + 1);
		if (r != VCHAN_OK) {
			check(fake_hv_mappings_in_use() == 0);
			return 0;
		}
		tampered = true; /* the crafted server never sends a real stream */
	}

	while (in.len > 0) {
		uint8_t op = take8(&in);
		bool our_side = (op & 0x80) != 0;
		size_t len = ((size_t)(op & 0x70) << 6 | take8(&in)) % (BUF + 1);
		switch (op & 0x0f) {
		case 0: case 1: case 2:
			tamper(&in, (op & 1) != 0);
			break;
		case 3: case 4: case 5:
			do_write(our_side, len);
			break;
		case 6: case 7: case 8:
			do_read(our_side, len);
			break;
		case 9:
			do_queries(our_side);
			break;
		case 10:
			if (our_side || !have_peer) {
				enter(true);
				vchan_close(&ours);
				check(vchan_get_state(&ours) == VCHAN_STATE_IDLE);
				/* Our pages may be gone now: no more tampering. */
				shared_n = 0;
			} else {
				enter(false);
				vchan_close(&peer);
				have_peer = false;
			}
			break;
		default:
			do_queries(!our_side);
			break;
		}
	}

	/* Tear down: the peer first (so grants can be ended), then us. */
	if (have_peer) {
		enter(false);
		vchan_close(&peer);
	}
	enter(true);
	vchan_close(&ours);
	if (!(mode & 1)) {
		fake_hv_set_current(SRV);
		check(vchan_quarantine_retry() == 0);
	}
	check(fake_hv_mappings_in_use() == 0);
	return 0;
}
