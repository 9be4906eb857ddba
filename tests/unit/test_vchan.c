/* test_vchan.c — vchan server (domain 0) and client (domain 5) over the fake
 * hypervisor: rendezvous keys, ring orders, data both ways across
 * wrap-around, exact fill, notify bits, close from either side, grant
 * quarantine, and hostile peers writing wild values into the shared page. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "fake_hv.h"
#include "xen/vchan.h"

#define SRV 0
#define CLI 5
#define PORT 111

/* ---- a tiny XenStore for the rendezvous ---------------------------------- */

struct kv {
	bool used;
	char path[128];
	char value[32];
	hv_domid_t reader;
};

static struct kv store[16];
static bool fail_writes;
static int removes;

static bool xs_write(void *ctx, const char *path, const char *value, hv_domid_t reader)
{
	(void)ctx;
	if (fail_writes)
		return false;
	for (size_t i = 0; i < 16; i++) {
		if (!store[i].used || strcmp(store[i].path, path) == 0) {
			store[i].used = true;
			(void)snprintf(store[i].path, sizeof(store[i].path), "%s", path);
			(void)snprintf(store[i].value, sizeof(store[i].value), "%s", value);
			store[i].reader = reader;
			return true;
		}
	}
	return false;
}

static bool xs_read(void *ctx, const char *path, char *buf, size_t cap)
{
	(void)ctx;
	for (size_t i = 0; i < 16; i++) {
		if (store[i].used && strcmp(store[i].path, path) == 0) {
			(void)snprintf(buf, cap, "%s", store[i].value);
			return true;
		}
	}
	return false;
}

static bool xs_remove(void *ctx, const char *path)
{
	(void)ctx;
	size_t n = strlen(path);
	removes++;
	for (size_t i = 0; i < 16; i++)
		if (store[i].used && strncmp(store[i].path, path, n) == 0 &&
		    (store[i].path[n] == '\0' || store[i].path[n] == '/'))
			store[i].used = false;
	return true;
}

static const struct vchan_xs xs = {
	.ctx = NULL, .write = xs_write, .read = xs_read, .remove = xs_remove,
};

static const struct kv *xs_find(const char *path)
{
	for (size_t i = 0; i < 16; i++)
		if (store[i].used && strcmp(store[i].path, path) == 0)
			return &store[i];
	return NULL;
}

/* ---- helpers ---------------------------------------------------------------- */

static struct vchan srv, cli;

static bool log_has(const char *needle)
{
	char line[LOG_LINE_MAX + 32];
	bool found = false;
	while (log_drain_line(line, sizeof(line)) > 0)
		if (strstr(line, needle) != NULL)
			found = true;
	return found;
}

static int setup(void **state)
{
	(void)state;
	fake_hv_reset();
	vchan_quarantine_forget();
	log_reset();
	memset(store, 0, sizeof(store));
	fail_writes = false;
	removes = 0;
	assert_true(fake_hv_add_domain(SRV));
	assert_true(fake_hv_add_domain(CLI));
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	return 0;
}

static void connect_pair(size_t read_min, size_t write_min)
{
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, read_min, write_min, &xs), VCHAN_OK);
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_OK);
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_poll(&srv), VCHAN_STATE_CONNECTED);
}

static int as_srv_write(const void *p, size_t n)
{
	fake_hv_set_current(SRV);
	return vchan_write(&srv, p, n);
}

static int as_srv_read(void *p, size_t n)
{
	fake_hv_set_current(SRV);
	return vchan_read(&srv, p, n);
}

static int as_cli_write(const void *p, size_t n)
{
	fake_hv_set_current(CLI);
	return vchan_write(&cli, p, n);
}

static int as_cli_read(void *p, size_t n)
{
	fake_hv_set_current(CLI);
	return vchan_read(&cli, p, n);
}

static void close_both(void)
{
	fake_hv_set_current(CLI);
	vchan_close(&cli);
	fake_hv_set_current(SRV);
	vchan_close(&srv);
	assert_int_equal(vchan_quarantine_retry(), 0);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(SRV), 0);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
}

static uint8_t pattern(uint32_t i, uint8_t salt)
{
	return (uint8_t)(i * 131u + (i >> 8) + salt);
}

/* ---- rendezvous and layout ---------------------------------------------------- */

static void test_rendezvous(void **state)
{
	(void)state;
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_AGAIN);

	fake_hv_set_current(SRV);
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, 0, 0, &xs), VCHAN_OK);
	assert_int_equal(vchan_get_state(&srv), VCHAN_STATE_WAITING);
	const struct kv *ref = xs_find("/local/domain/0/data/vchan/5/111/ring-ref");
	const struct kv *evt = xs_find("/local/domain/0/data/vchan/5/111/event-channel");
	assert_non_null(ref);
	assert_non_null(evt);
	assert_int_equal(ref->reader, CLI);
	assert_int_equal(evt->reader, CLI);
	unsigned gref, port;
	assert_int_equal(sscanf(ref->value, "%u", &gref), 1);
	assert_int_equal(sscanf(evt->value, "%u", &port), 1);
	assert_int_equal(gref, vchan_server_ring_ref(&srv));
	assert_int_equal(port, vchan_evtchn(&srv));

	/* The control page as the spec lays it out (offsets, not our struct). */
	const uint8_t *page = fake_hv_grant_page(SRV, gref);
	assert_non_null(page);
	assert_int_equal(page[0x10] | page[0x11] << 8, 10); /* left_order */
	assert_int_equal(page[0x12] | page[0x13] << 8, 11); /* right_order */
	assert_int_equal(page[0x14], VCHAN_LIVE_WAITING);   /* cli_live */
	assert_int_equal(page[0x15], VCHAN_LIVE_CONNECTED); /* srv_live */
	assert_int_equal(page[0x16], VCHAN_NOTIFY_WRITE);   /* cli_notify */
	assert_int_equal(page[0x17], 0);                    /* srv_notify */

	/* Still waiting: reads see nothing, polling keeps waiting. */
	char b[8];
	assert_int_equal(vchan_read(&srv, b, sizeof(b)), 0);
	assert_int_equal(vchan_poll(&srv), VCHAN_STATE_WAITING);

	fake_hv_set_current(CLI);
	assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_OK);
	assert_int_equal(vchan_get_state(&cli), VCHAN_STATE_CONNECTED);
	assert_int_equal(page[0x14], VCHAN_LIVE_CONNECTED);
	assert_true(page[0x17] & VCHAN_NOTIFY_WRITE);
	assert_true(fake_hv_evtchn_pending(SRV, vchan_evtchn(&srv)));

	fake_hv_set_current(SRV);
	assert_int_equal(vchan_poll(&srv), VCHAN_STATE_CONNECTED);
	assert_null(xs_find("/local/domain/0/data/vchan/5/111/ring-ref"));
	assert_null(xs_find("/local/domain/0/data/vchan/5/111/event-channel"));
	close_both();
}

static void test_order_policy(void **state)
{
	(void)state;
	static const struct {
		size_t rmin, wmin;
		unsigned lo, ro;
	} cases[] = {
		{ 0, 0, 10, 11 },       { 1024, 2048, 10, 11 },  { 2048, 1024, 11, 10 },
		{ 2048, 2048, 11, 12 }, { 4096, 4096, 12, 12 },  { 2000, 5000, 11, 13 },
		{ 5000, 100, 13, 11 },  { 65536, 65536, 16, 16 }, { 65536, 4097, 16, 13 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setup(NULL);
		connect_pair(cases[i].rmin, cases[i].wmin);
		const struct vchan_interface *c = srv.ctrl;
		assert_int_equal(c->left_order, cases[i].lo);
		assert_int_equal(c->right_order, cases[i].ro);
		/* The client sees the same sizes: it can fill exactly that much. */
		assert_int_equal(cli.tx.size, 1u << cases[i].lo);
		assert_int_equal(cli.rx.size, 1u << cases[i].ro);
		close_both();
	}
	/* Above what we accept: refused, nothing held. */
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, 65537, 0, &xs), VCHAN_ERR_ARG);
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, 0, (size_t)1 << 20, &xs),
			 VCHAN_ERR_ARG);
	assert_int_equal(fake_hv_pages_in_use(), 0);
}

/* ---- data ----------------------------------------------------------------------- */

static void pump(size_t rmin, size_t wmin, size_t total, size_t chunk)
{
	static uint8_t buf[70000];
	connect_pair(rmin, wmin);
	/* Client -> server (left ring) and server -> client (right ring). */
	for (int dir = 0; dir < 2; dir++) {
		uint32_t sent = 0, got = 0;
		int stall = 0;
		while (got < total) {
			size_t want = chunk < total - sent ? chunk : total - sent;
			for (size_t i = 0; i < want; i++)
				buf[i] = pattern(sent + (uint32_t)i, (uint8_t)dir);
			int w = dir == 0 ? as_cli_write(buf, want) : as_srv_write(buf, want);
			assert_true(w >= 0);
			sent += (uint32_t)w;
			/* Read in odd-sized pieces so the wrap point moves around. */
			int r = dir == 0 ? as_srv_read(buf, 977) : as_cli_read(buf, 977);
			assert_true(r >= 0);
			for (int i = 0; i < r; i++)
				assert_int_equal(buf[i], pattern(got + (uint32_t)i, (uint8_t)dir));
			got += (uint32_t)r;
			stall = (w == 0 && r == 0) ? stall + 1 : 0;
			assert_true(stall < 3);
		}
	}
	close_both();
}

static void test_data_in_page_rings(void **state)
{
	(void)state;
	pump(0, 0, 50000, 1500);
	setup(NULL);
	pump(2048, 1024, 50000, 333);
}

static void test_data_page_rings(void **state)
{
	(void)state;
	pump(4096, 4096, 100000, 5000);
	setup(NULL);
	pump(65536, 65536, 300000, 65536);
	setup(NULL);
	pump(2048, 16384, 100000, 7000);
}

static void test_exact_fill(void **state)
{
	(void)state;
	static uint8_t big[8192], out[8192];
	connect_pair(4096, 4096);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_write_space(&srv), 4096);
	assert_int_equal(vchan_write(&srv, big, 4096), 4096);
	assert_int_equal(vchan_write_space(&srv), 0);
	assert_int_equal(vchan_write(&srv, big, 1), 0);
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_data_ready(&cli), 4096);
	assert_int_equal(vchan_read(&cli, out, sizeof(out)), 4096);
	assert_memory_equal(out, big, 4096);
	assert_int_equal(vchan_read(&cli, out, sizeof(out)), 0);
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_write_space(&srv), 4096);
	/* Over-long write takes exactly what fits. */
	assert_int_equal(vchan_write(&srv, big, sizeof(big)), 4096);
	close_both();
}

static void test_notify_bits(void **state)
{
	(void)state;
	uint8_t b[4096];
	memset(b, 0x11, sizeof(b));
	connect_pair(0, 0); /* left 1 KiB (client writes), right 2 KiB */
	hv_port_t sp = vchan_evtchn(&srv), cp = vchan_evtchn(&cli);
	fake_hv_evtchn_clear(SRV, sp);
	fake_hv_evtchn_clear(CLI, cp);
	uint64_t to_cli = fake_hv_evtchn_delivered(CLI, cp);
	uint64_t to_srv = fake_hv_evtchn_delivered(SRV, sp);

	/* Without a request from the client in srv_notify (the client set
	 * WRITE when it connected; take it back), a server write is silent. */
	srv.ctrl->srv_notify = 0;
	assert_int_equal(as_srv_write(b, 10), 10);
	assert_int_equal(fake_hv_evtchn_delivered(CLI, cp), to_cli);

	/* Reader drains and finds the ring empty: asks for WRITE; the next
	 * write notifies exactly once and clears the request. */
	assert_int_equal(as_cli_read(b, sizeof(b)), 10);
	assert_true(srv.ctrl->srv_notify & VCHAN_NOTIFY_WRITE);
	assert_int_equal(as_srv_write(b, 5), 5);
	assert_int_equal(fake_hv_evtchn_delivered(CLI, cp), to_cli + 1);
	assert_true(fake_hv_evtchn_pending(CLI, cp));
	assert_false(srv.ctrl->srv_notify & VCHAN_NOTIFY_WRITE);
	assert_int_equal(as_srv_write(b, 5), 5);
	assert_int_equal(fake_hv_evtchn_delivered(CLI, cp), to_cli + 1);

	/* Client's write notifies the server (initial cli_notify WRITE). */
	assert_int_equal(as_cli_write(b, 100), 100);
	assert_int_equal(fake_hv_evtchn_delivered(SRV, sp), to_srv + 1);

	/* A writer that finds the ring full asks for READ; the reader's
	 * consumption then notifies it. */
	assert_int_equal(as_cli_write(b, sizeof(b)), 1024 - 100);
	assert_true(srv.ctrl->srv_notify & VCHAN_NOTIFY_READ);
	to_cli = fake_hv_evtchn_delivered(CLI, cp);
	assert_int_equal(as_srv_read(b, 10), 10);
	assert_int_equal(fake_hv_evtchn_delivered(CLI, cp), to_cli + 1);
	assert_false(srv.ctrl->srv_notify & VCHAN_NOTIFY_READ);
	close_both();
}

static void test_stream_interface(void **state)
{
	(void)state;
	connect_pair(4096, 4096);
	fake_hv_set_current(SRV);
	struct stream s = vchan_stream(&srv);
	assert_int_equal(s.ops->write_space(s.ctx), 4096);
	assert_int_equal(s.ops->write(s.ctx, "ping", 4), 4);
	fake_hv_set_current(CLI);
	struct stream c = vchan_stream(&cli);
	char b[8] = { 0 };
	assert_int_equal(c.ops->read(c.ctx, b, sizeof(b)), 4);
	assert_memory_equal(b, "ping", 4);
	c.ops->close(c.ctx);
	assert_int_equal(c.ops->read(c.ctx, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(c.ops->write(c.ctx, b, 1), STREAM_CLOSED);
	assert_int_equal(c.ops->write_space(c.ctx), 0);
	fake_hv_set_current(SRV);
	assert_int_equal(s.ops->read(s.ctx, b, sizeof(b)), STREAM_CLOSED);
	s.ops->close(s.ctx);
	close_both();
}

/* ---- close -------------------------------------------------------------------- */

static void test_close_by_client(void **state)
{
	(void)state;
	char b[16];
	connect_pair(0, 0);
	assert_int_equal(as_cli_write("bye", 3), 3);
	fake_hv_set_current(CLI);
	vchan_close(&cli);
	assert_int_equal(vchan_get_state(&cli), VCHAN_STATE_IDLE);
	vchan_close(&cli); /* idempotent */
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	assert_true(fake_hv_evtchn_pending(SRV, vchan_evtchn(&srv)));
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_poll(&srv), VCHAN_STATE_PEER_CLOSED);
	assert_int_equal(vchan_write(&srv, "x", 1), STREAM_CLOSED);
	assert_int_equal(vchan_write_space(&srv), 0);
	/* Queued bytes are still delivered, then EOF. */
	assert_int_equal(vchan_read(&srv, b, sizeof(b)), 3);
	assert_memory_equal(b, "bye", 3);
	assert_int_equal(vchan_read(&srv, b, sizeof(b)), STREAM_CLOSED);
	vchan_close(&srv);
	assert_int_equal(vchan_quarantine_retry(), 0);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(SRV), 0);
	assert_true(removes > 0);
}

static void test_close_by_server_quarantines(void **state)
{
	(void)state;
	char b[16];
	connect_pair(4096, 4096); /* control page + 2 ring pages */
	assert_int_equal(as_srv_write("last", 4), 4);
	fake_hv_set_current(SRV);
	vchan_close(&srv);
	/* The client still maps everything: no page may go back to the pool. */
	assert_int_equal(vchan_quarantine_retry(), 3);
	assert_int_equal(fake_hv_pages_in_use(), 3);
	assert_int_equal(fake_hv_grants_in_use(SRV), 3);
	assert_true(log_has("quarantined"));

	fake_hv_set_current(CLI);
	assert_int_equal(vchan_poll(&cli), VCHAN_STATE_PEER_CLOSED);
	assert_int_equal(vchan_write(&cli, "x", 1), STREAM_CLOSED);
	assert_int_equal(vchan_read(&cli, b, sizeof(b)), 4);
	assert_memory_equal(b, "last", 4);
	assert_int_equal(vchan_read(&cli, b, sizeof(b)), STREAM_CLOSED);
	vchan_close(&cli); /* retries the quarantine after unmapping */
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_quarantine_retry(), 0);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(SRV), 0);
}

static void test_server_init_failures(void **state)
{
	(void)state;
	fake_hv_set_current(SRV);
	fake_hv_set_pool_limit(2); /* control page + one ring page: not enough */
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, 4096, 4096, &xs), VCHAN_ERR_NOMEM);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(SRV), 0);
	fake_hv_set_pool_limit(0);
	/* Unknown client domain: no event channel. */
	assert_int_equal(vchan_server_init(&srv, 33, PORT, 0, 0, &xs), VCHAN_ERR_NOMEM);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(SRV), 0);
	/* XenStore refuses: everything undone, no key left behind. */
	fail_writes = true;
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, 0, 0, &xs), VCHAN_ERR_XS);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(SRV), 0);
	assert_int_equal(fake_hv_evtchn_state(SRV, 1), FAKE_HV_PORT_FREE);
	assert_int_equal(vchan_get_state(&srv), VCHAN_STATE_IDLE);
	/* Without xs: set up, keys are the caller's business. */
	fail_writes = false;
	assert_int_equal(vchan_server_init(&srv, CLI, PORT, 0, 0, NULL), VCHAN_OK);
	assert_null(xs_find("/local/domain/0/data/vchan/5/111/ring-ref"));
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_client_attach(&cli, SRV, PORT, vchan_server_ring_ref(&srv),
					     vchan_evtchn(&srv)),
			 VCHAN_OK);
	close_both();
}

/* ---- hostile peers ------------------------------------------------------------ */

static void expect_broken_srv(void)
{
	char b[64];
	memset(b, 0xee, sizeof(b));
	fake_hv_set_current(SRV);
	int r = vchan_read(&srv, b, sizeof(b));
	int w = vchan_write(&srv, "x", 1);
	assert_true(r == STREAM_CLOSED || w == STREAM_CLOSED);
	assert_int_equal(vchan_get_state(&srv), VCHAN_STATE_BROKEN);
	assert_int_equal(vchan_read(&srv, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(vchan_write(&srv, "x", 1), STREAM_CLOSED);
	assert_int_equal(vchan_write_space(&srv), 0);
	assert_int_equal(vchan_data_ready(&srv), 0);
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal((uint8_t)b[i], 0xee); /* nothing copied out */
	assert_int_equal(srv.ctrl->srv_live, VCHAN_LIVE_CLOSED); /* peer is told */
	/* The line is rate-limited per call site (a burst of 10 per second):
	 * only the first violations of this program are sure to be logged. */
	static int calls;
	bool logged = log_has("broken");
	if (calls++ == 0)
		assert_true(logged);
}

static void test_hostile_client_indices(void **state)
{
	(void)state;
	static const uint32_t wild[] = { 1025, 4097, 0x80000000u, 0xffffffffu, 0x7fffffffu };
	for (size_t order = 0; order < 2; order++) {
		for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
			/* Producer running ahead of our consumer by more than the ring. */
			setup(NULL);
			connect_pair(order ? 4096 : 0, order ? 4096 : 0);
			if (wild[i] > srv.rx.size) {
				srv.ctrl->left.prod = wild[i];
				expect_broken_srv();
			}
			close_both();

			/* Consumer beyond our producer (the client "read" unwritten bytes). */
			setup(NULL);
			connect_pair(order ? 4096 : 0, order ? 4096 : 0);
			assert_int_equal(as_srv_write("abc", 3), 3);
			srv.ctrl->right.cons = 3u + 1u + (wild[i] & 0x7fffffffu);
			fake_hv_set_current(SRV);
			assert_int_equal(vchan_write(&srv, "x", 1), STREAM_CLOSED);
			assert_int_equal(vchan_get_state(&srv), VCHAN_STATE_BROKEN);
			close_both();
		}
	}
}

static void test_hostile_client_rewrites_our_counters(void **state)
{
	(void)state;
	char b[32];
	connect_pair(0, 0);
	assert_int_equal(as_cli_write("0123456789", 10), 10);
	/* The peer overwrites the counters WE own: we never read them back. */
	srv.ctrl->left.cons = 0xdeadbeefu;
	srv.ctrl->right.prod = 0x12345678u;
	assert_int_equal(as_srv_read(b, 4), 4);
	assert_memory_equal(b, "0123", 4);
	assert_int_equal(srv.ctrl->left.cons, 4); /* rewritten from our copy */
	assert_int_equal(as_srv_read(b, sizeof(b)), 6);
	assert_memory_equal(b, "456789", 6);
	/* A full ring exactly (prod = cons + size) is legal, not a violation. */
	srv.ctrl->left.prod = 10u + 1024u;
	assert_int_equal(as_srv_read(b, sizeof(b)), (int)sizeof(b));
	assert_int_not_equal(vchan_get_state(&srv), VCHAN_STATE_BROKEN);
	close_both();
}

static void test_hostile_live_bytes(void **state)
{
	(void)state;
	static const uint8_t bad[] = { 3, 0x80, 0xff };
	for (size_t i = 0; i < sizeof(bad); i++) {
		setup(NULL);
		connect_pair(0, 0);
		srv.ctrl->cli_live = bad[i];
		expect_broken_srv();
		close_both();
	}
	/* Connected, then "not yet connected" again. */
	setup(NULL);
	connect_pair(0, 0);
	srv.ctrl->cli_live = VCHAN_LIVE_WAITING;
	expect_broken_srv();
	close_both();
	/* Closed, then alive again. */
	setup(NULL);
	connect_pair(0, 0);
	srv.ctrl->cli_live = VCHAN_LIVE_CLOSED;
	fake_hv_set_current(SRV);
	assert_int_equal(vchan_poll(&srv), VCHAN_STATE_PEER_CLOSED);
	srv.ctrl->cli_live = VCHAN_LIVE_CONNECTED;
	assert_int_equal(vchan_poll(&srv), VCHAN_STATE_BROKEN);
	close_both();
	/* A hostile server's srv_live seen by our client. */
	setup(NULL);
	connect_pair(0, 0);
	srv.ctrl->srv_live = 9;
	fake_hv_set_current(CLI);
	char b[4];
	assert_int_equal(vchan_read(&cli, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(vchan_get_state(&cli), VCHAN_STATE_BROKEN);
	assert_int_equal(srv.ctrl->cli_live, VCHAN_LIVE_CLOSED);
	close_both();
}

static void test_hostile_server_indices(void **state)
{
	(void)state;
	char b[64];
	connect_pair(4096, 4096);
	srv.ctrl->right.prod = 0x10000u; /* 64 KiB ahead of a 4 KiB ring */
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_read(&cli, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(vchan_get_state(&cli), VCHAN_STATE_BROKEN);
	assert_int_equal(vchan_write(&cli, b, 1), STREAM_CLOSED);
	close_both();

	setup(NULL);
	connect_pair(4096, 4096);
	srv.ctrl->left.cons = 0x10u; /* consumer 16 bytes beyond our producer */
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_write_space(&cli), 0);
	assert_int_equal(vchan_get_state(&cli), VCHAN_STATE_BROKEN);
	close_both();

	/* Orders changed after attach: our private copy stays in force. */
	setup(NULL);
	connect_pair(4096, 4096);
	srv.ctrl->left_order = 20;
	srv.ctrl->right_order = 9;
	assert_int_equal(as_srv_write("hello", 5), 5);
	assert_int_equal(as_cli_read(b, sizeof(b)), 5);
	static uint8_t big[5000];
	assert_int_equal(as_cli_write(big, sizeof(big)), 4096);
	close_both();
}

/* A hostile server: the test grants a control page it crafted. */
static enum vchan_result attach_crafted(uint16_t lo, uint16_t ro, const hv_gref_t *grants,
					size_t ngrants, bool good_evtchn)
{
	fake_hv_set_current(SRV);
	struct vchan_interface *c = hv_pages_alloc(1);
	hv_gref_t ref;
	hv_port_t port;
	assert_non_null(c);
	assert_true(hv_grant(c, CLI, false, &ref));
	assert_true(hv_evtchn_alloc_unbound(CLI, &port));
	c->left_order = lo;
	c->right_order = ro;
	c->srv_live = 1;
	c->cli_live = 2;
	for (size_t i = 0; i < ngrants; i++)
		c->grants[i] = grants[i];
	fake_hv_set_current(CLI);
	enum vchan_result r =
		vchan_client_attach(&cli, SRV, PORT, ref, good_evtchn ? port : port + 7);
	if (r == VCHAN_OK)
		assert_int_equal(c->cli_live, VCHAN_LIVE_CONNECTED);
	else
		assert_int_equal(fake_hv_mappings_in_use(), 0); /* nothing left mapped */
	return r;
}

static void test_hostile_server_control_page(void **state)
{
	(void)state;
	static const struct {
		uint16_t lo, ro;
	} bad[] = {
		{ 9, 11 }, { 10, 9 }, { 0, 0 }, { 10, 10 }, { 11, 11 }, { 21, 12 },
		{ 12, 0xffff }, { 17, 12 }, { 12, 20 }, { 0x8000, 10 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setup(NULL);
		assert_int_equal(attach_crafted(bad[i].lo, bad[i].ro, NULL, 0, true),
				 VCHAN_ERR_PEER);
		assert_int_equal(vchan_get_state(&cli), VCHAN_STATE_IDLE);
	}
	/* Orders fine, grant list points at nothing or at non-granted refs. */
	static const hv_gref_t wild[] = { 0, 1, 7, 9999, 0xffffffffu };
	for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
		setup(NULL);
		hv_gref_t g[2] = { wild[i], wild[i] };
		assert_int_equal(attach_crafted(12, 12, g, 2, true), VCHAN_ERR_PEER);
	}
	/* Event channel not offered to us. */
	setup(NULL);
	assert_int_equal(attach_crafted(10, 11, NULL, 0, false), VCHAN_ERR_PEER);
	/* Control page ref that is not granted. */
	setup(NULL);
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_client_attach(&cli, SRV, PORT, 4242, 1), VCHAN_ERR_PEER);
	/* And a well-formed crafted page works. */
	setup(NULL);
	assert_int_equal(attach_crafted(11, 10, NULL, 0, true), VCHAN_OK);
	assert_int_equal(cli.tx.size, 2048);
	assert_int_equal(cli.rx.size, 1024);
	vchan_close(&cli);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
}

static void test_bad_xenstore_values(void **state)
{
	(void)state;
	static const char *const bad[] = { "abc", "0", "-1", "12x", "99999999999", "4294967296",
					   " 12" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setup(NULL);
		assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/ring-ref", bad[i],
				     CLI));
		assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/event-channel", "3",
				     CLI));
		fake_hv_set_current(CLI);
		assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_ERR_PEER);
		setup(NULL);
		assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/ring-ref", "8", CLI));
		assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/event-channel", bad[i],
				     CLI));
		fake_hv_set_current(CLI);
		assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_ERR_PEER);
	}
	/* Empty event-channel: not ready yet. */
	setup(NULL);
	assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/event-channel", "", CLI));
	fake_hv_set_current(CLI);
	assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_AGAIN);
	/* Well-formed values that point at nothing. */
	assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/event-channel", "3", CLI));
	assert_true(xs_write(NULL, "/local/domain/0/data/vchan/5/111/ring-ref", "77", CLI));
	assert_int_equal(vchan_client_init(&cli, SRV, PORT, &xs), VCHAN_ERR_PEER);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rendezvous, setup),
		cmocka_unit_test_setup(test_order_policy, setup),
		cmocka_unit_test_setup(test_data_in_page_rings, setup),
		cmocka_unit_test_setup(test_data_page_rings, setup),
		cmocka_unit_test_setup(test_exact_fill, setup),
		cmocka_unit_test_setup(test_notify_bits, setup),
		cmocka_unit_test_setup(test_stream_interface, setup),
		cmocka_unit_test_setup(test_close_by_client, setup),
		cmocka_unit_test_setup(test_close_by_server_quarantines, setup),
		cmocka_unit_test_setup(test_server_init_failures, setup),
		cmocka_unit_test_setup(test_hostile_client_indices, setup),
		cmocka_unit_test_setup(test_hostile_client_rewrites_our_counters, setup),
		cmocka_unit_test_setup(test_hostile_live_bytes, setup),
		cmocka_unit_test_setup(test_hostile_server_indices, setup),
		cmocka_unit_test_setup(test_hostile_server_control_page, setup),
		cmocka_unit_test_setup(test_bad_xenstore_values, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
