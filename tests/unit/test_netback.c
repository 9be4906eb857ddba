/* test_netback.c — netback against the fake hypervisor and the fake
 * xenstored: the xenbus sequence (InitWait, Connected, detach with Closed
 * before the rm, Windows close cycle, a stuck vif blocking nobody), frames
 * both ways with our own netfront as the client (every size 14..1514 and
 * multi-slot, size-exact), and a hand-written hostile frontend (wild
 * indexes, oversized/bad-gref/cross-page requests, endless chains, extras).
 * Ring layouts are written from the spec (xen-platform.md §8.4). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "fake_hv.h"
#include "fake_xenstored.h"
#include "xen/netback.h"
#include "xen/netfront.h"

#define FW 1u  /* us: the backend */
#define CL 2u  /* the client domain */
#define CL2 5u /* a second client */

static struct xs_client xs_fw, xs_cl;
static struct netback nb, nb2;
static struct netfront nf;
static int conn_fw, conn_cl;

/* what the callbacks saw */
struct seen {
	enum netdev_state states[32];
	size_t nstates;
	uint8_t frame[70000];
	size_t len;
	uint32_t flags;
	size_t frames;
};
static struct seen nb_seen, nb2_seen, nf_seen;

static struct {
	char vals[64][8];
	size_t n;
	bool rm_after_closed;
	bool rm_seen;
} be_state_log;

static void on_rx(void *ctx, uint8_t *frame, size_t len, uint32_t flags)
{
	struct seen *s = ctx;
	memcpy(s->frame, frame, len < sizeof(s->frame) ? len : sizeof(s->frame));
	s->len = len;
	s->flags = flags;
	s->frames++;
}

static void on_state(void *ctx, enum netdev_state st)
{
	struct seen *s = ctx;
	if (s->nstates < 32)
		s->states[s->nstates++] = st;
}

static void hook(void *ctx, unsigned domid, const char *path, const char *value, size_t len)
{
	(void)ctx;
	(void)len;
	if (domid != FW)
		return;
	char want[64];
	snprintf(want, sizeof(want), "/local/domain/%u/backend/vif/%u/0", FW, CL);
	size_t wl = strlen(want);
	if (strncmp(path, want, wl) != 0)
		return;
	if (value != NULL && !strcmp(path + wl, "/state") && be_state_log.n < 64)
		snprintf(be_state_log.vals[be_state_log.n++], 8, "%s", value);
	if (value == NULL && path[wl] == '\0') {
		be_state_log.rm_seen = true;
		be_state_log.rm_after_closed =
			be_state_log.n > 0 && !strcmp(be_state_log.vals[be_state_log.n - 1], "6");
	}
}

static void reset_all(void)
{
	fake_hv_reset();
	fake_hv_add_domain(0);
	fake_hv_add_domain(FW);
	fake_hv_add_domain(CL);
	fake_hv_add_domain(CL2);
	fake_xsd_reset();
	fake_xsd_set_hook(hook, NULL);
	memset(&nb_seen, 0, sizeof(nb_seen));
	memset(&nb2_seen, 0, sizeof(nb2_seen));
	memset(&nf_seen, 0, sizeof(nf_seen));
	memset(&be_state_log, 0, sizeof(be_state_log));
	memset(&nf, 0, sizeof(nf));
	memset(&nb, 0, sizeof(nb));
	memset(&nb2, 0, sizeof(nb2));
	struct stream s;
	conn_fw = fake_xsd_connect(FW, &s);
	xs_client_init(&xs_fw, NULL, NULL);
	xs_client_attach(&xs_fw, s);
	conn_cl = fake_xsd_connect(CL, &s);
	xs_client_init(&xs_cl, NULL, NULL);
	xs_client_attach(&xs_cl, s);
}

static bool nf_running;

static void pump_n(int n)
{
	for (int i = 0; i < n; i++) {
		fake_hv_set_current(FW);
		xs_poll(&xs_fw);
		netback_poll(&nb, 0);
		netback_poll(&nb2, 0);
		fake_hv_set_current(CL);
		xs_poll(&xs_cl);
		if (nf_running)
			netfront_poll(&nf, 0);
		fake_xsd_poll();
	}
	fake_hv_set_current(FW);
}

static void pump(void)
{
	pump_n(40);
}

/* A toolstack removal: Closed is written at once, the directory goes
 * only NETBACK_RM_DELAY_NS later (libxl must read Closed first). */
static void pump_removal(void)
{
	pump();
	clock_set_now(clock_now() + NETBACK_RM_DELAY_NS);
	pump();
}

static const struct netdev_callbacks nb_cb = { on_rx, on_state, &nb_seen };
static const struct netdev_callbacks nb2_cb = { on_rx, on_state, &nb2_seen };
static const struct netdev_callbacks nf_cb = { on_rx, on_state, &nf_seen };

static void be_path(char *out, size_t cap, unsigned fe, const char *leaf)
{
	snprintf(out, cap, "/local/domain/%u/backend/vif/%u/0%s%s", FW, fe, leaf[0] ? "/" : "",
		 leaf);
}

static void fe_path(char *out, size_t cap, unsigned fe, const char *leaf)
{
	snprintf(out, cap, "/local/domain/%u/device/vif/0%s%s", fe, leaf[0] ? "/" : "", leaf);
}

static void expect_key(const char *path, const char *want)
{
	char v[64];
	assert_true(fake_xsd_read(path, v, sizeof(v)));
	assert_string_equal(v, want);
}

static void start_vif(struct netback *b, unsigned fe, const struct netdev_callbacks *cb)
{
	char rel[64];
	fake_xsd_add_vif(FW, fe, 0, "00:16:3e:5e:6c:00");
	snprintf(rel, sizeof(rel), "backend/vif/%u/0", fe);
	fake_hv_set_current(FW);
	assert_true(netback_start(b, &xs_fw, rel, (hv_domid_t)fe, cb));
}

/* Our netfront as the client: connected pair. */
static void connect_with_netfront(const char *mtu)
{
	reset_all();
	char p[128];
	start_vif(&nb, CL, &nb_cb);
	if (mtu != NULL) {
		fe_path(p, sizeof(p), CL, "mtu");
		fake_xsd_write(p, mtu);
	}
	fake_hv_set_current(CL);
	assert_true(netfront_start(&nf, &xs_cl, "device/vif/0", &nf_cb));
	nf_running = true;
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
	be_path(p, sizeof(p), CL, "state");
	expect_key(p, "4");
}

/* ---- handshake ------------------------------------------------------------- */

static void test_initwait_and_features(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	start_vif(&nb, CL, &nb_cb);
	/* A handful of round trips, no frontend activity needed. */
	pump_n(6);
	char p[128];
	be_path(p, sizeof(p), CL, "state");
	expect_key(p, "2");
	be_path(p, sizeof(p), CL, "feature-rx-copy");
	expect_key(p, "1");
	be_path(p, sizeof(p), CL, "feature-sg");
	expect_key(p, "1");
	be_path(p, sizeof(p), CL, "feature-gso-tcpv4");
	expect_key(p, "0");
	be_path(p, sizeof(p), CL, "feature-rx-notify");
	expect_key(p, "1");
	be_path(p, sizeof(p), CL, "multi-queue-max-queues");
	assert_false(fake_xsd_exists(p));
	be_path(p, sizeof(p), CL, "feature-split-event-channels");
	assert_false(fake_xsd_exists(p));
	assert_int_equal(netback_state(&nb), NETDEV_STARTING);
	assert_memory_equal(netback_client_mac(&nb), ((uint8_t[]){ 0, 0x16, 0x3e, 0x5e, 0x6c, 0 }),
			    6);
	/* two watches: the backend dir and the frontend state */
	assert_int_equal(fake_xsd_watch_count(conn_fw), 2);
}

static void test_bad_start_arguments(void **state)
{
	(void)state;
	reset_all();
	assert_false(netback_start(&nb, &xs_fw, "backend/vif/2", 2, &nb_cb));
	assert_false(netback_start(&nb, &xs_fw, "backend/vif/3/0", 2, &nb_cb));
	assert_false(netback_start(&nb, &xs_fw, "backend/vbd/2/0", 2, &nb_cb));
	assert_false(netback_start(&nb, &xs_fw, "backend/vif/2/x", 2, &nb_cb));
	assert_false(netback_start(&nb, &xs_fw, "backend/vif/2/0/", 2, &nb_cb));
	assert_false(netback_start(&nb, NULL, "backend/vif/2/0", 2, &nb_cb));
}

static void test_frontend_path_mismatch_refused(void **state)
{
	(void)state;
	reset_all();
	char p[128];
	fake_xsd_add_vif(FW, CL, 0, "00:16:3e:5e:6c:00");
	be_path(p, sizeof(p), CL, "frontend");
	fake_xsd_write(p, "/local/domain/0/device/vif/0");
	fake_hv_set_current(FW);
	assert_true(netback_start(&nb, &xs_fw, "backend/vif/2/0", CL, &nb_cb));
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_FAILED);
}

static void test_connect_and_detach(void **state)
{
	(void)state;
	connect_with_netfront(NULL);
	assert_int_equal(fake_hv_mappings_in_use(), 2);
	hv_port_t port;
	assert_true(netback_port(&nb, &port));
	/* toolstack detach: online = 0, state = 5 */
	char p[128];
	be_path(p, sizeof(p), CL, "online");
	fake_xsd_write(p, "0");
	be_path(p, sizeof(p), CL, "state");
	fake_xsd_write(p, "5");
	pump();
	/* Closed is there for libxl to read; the directory is not gone yet */
	expect_key(p, "6");
	assert_false(be_state_log.rm_seen);
	assert_int_not_equal(netback_state(&nb), NETDEV_CLOSED);
	clock_set_now(clock_now() + NETBACK_RM_DELAY_NS - 1);
	pump();
	assert_false(be_state_log.rm_seen);
	clock_set_now(clock_now() + 1);
	pump_removal();
	assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
	assert_true(be_state_log.rm_seen);
	assert_true(be_state_log.rm_after_closed); /* anchors §3: Closed before rm */
	be_path(p, sizeof(p), CL, "");
	assert_false(fake_xsd_exists(p));
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	assert_false(netback_port(&nb, &port));
	assert_int_equal(fake_hv_evtchn_state(FW, port), FAKE_HV_PORT_FREE);
	assert_int_equal(fake_xsd_watch_count(conn_fw), 0);
	/* the states reported, in order */
	assert_int_equal(nb_seen.states[0], NETDEV_CONNECTED);
	assert_int_equal(nb_seen.states[nb_seen.nstates - 1], NETDEV_CLOSED);
	/* our sequence of backend states: 2, 4, 6 */
	assert_true(be_state_log.n >= 3);
	assert_string_equal(be_state_log.vals[0], "2");
	assert_string_equal(be_state_log.vals[1], "4");
	assert_string_equal(be_state_log.vals[be_state_log.n - 1], "6");
	/* the frontend noticed and closed too */
	assert_int_equal(netfront_state(&nf), NETDEV_CLOSED);
	assert_false(netback_transmit(&nb, nb_seen.frame, 60));
}

static void test_detach_before_connect(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	start_vif(&nb, CL, &nb_cb);
	pump();
	char p[128];
	be_path(p, sizeof(p), CL, "online");
	fake_xsd_write(p, "0");
	be_path(p, sizeof(p), CL, "state");
	fake_xsd_write(p, "5");
	pump_removal();
	assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
	assert_true(be_state_log.rm_after_closed);
}

static void test_directory_vanishes(void **state)
{
	(void)state;
	connect_with_netfront(NULL);
	char p[128];
	be_path(p, sizeof(p), CL, "");
	fake_xsd_rm(p);
	pump(); /* vanished: nothing to wait for */
	assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	assert_int_equal(fake_xsd_watch_count(conn_fw), 0);
}

static void test_stop_and_churn_no_leak(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	size_t nodes0 = 0;
	for (int i = 0; i < 200; i++) {
		start_vif(&nb, CL, &nb_cb);
		pump_n(8);
		if (i == 0)
			nodes0 = fake_xsd_node_count();
		char p[128];
		be_path(p, sizeof(p), CL, "online");
		fake_xsd_write(p, "0");
		be_path(p, sizeof(p), CL, "state");
		fake_xsd_write(p, "5");
		pump_n(8);
		clock_set_now(clock_now() + NETBACK_RM_DELAY_NS);
		pump_n(8);
		assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
		assert_int_equal(fake_xsd_watch_count(conn_fw), 0);
		assert_int_equal(xs_watch_count(&xs_fw), 0);
		fe_path(p, sizeof(p), CL, "");
		fake_xsd_rm(p);
	}
	assert_true(fake_xsd_node_count() < nodes0);
	/* netback_stop of a running vif: CLOSED, nothing left */
	start_vif(&nb, CL, &nb_cb);
	pump_n(3);
	netback_stop(&nb);
	pump_n(3);
	assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
	assert_int_equal(xs_watch_count(&xs_fw), 0);
}

/* ---- frames with our netfront as client ------------------------------------ */

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7u + seed + (i >> 8));
}

static void test_frames_every_size_both_ways(void **state)
{
	(void)state;
	connect_with_netfront(NULL);
	static uint8_t buf[9100];
	for (size_t len = 14; len <= 1514; len++) {
		fill(buf, len, (unsigned)len);
		/* client → us */
		fake_hv_set_current(CL);
		assert_true(netfront_transmit(&nf, buf, len));
		size_t before = nb_seen.frames;
		pump_n(2);
		assert_int_equal(nb_seen.frames, before + 1);
		assert_int_equal(nb_seen.len, len);
		assert_memory_equal(nb_seen.frame, buf, len);
		/* us → client */
		fill(buf, len, (unsigned)len + 1u);
		fake_hv_set_current(FW);
		before = nf_seen.frames;
		assert_true(netback_transmit(&nb, buf, len));
		pump_n(2);
		assert_int_equal(nf_seen.frames, before + 1);
		assert_int_equal(nf_seen.len, len);
		assert_memory_equal(nf_seen.frame, buf, len);
		assert_int_equal(nf_seen.flags, 0);
	}
	assert_int_equal(netback_stats(&nb)->tx_frames, 1501);
	assert_int_equal(netback_stats(&nb)->rx_frames, 1501);
	assert_int_equal(netback_stats(&nb)->tx_dropped, 0);
	/* too small / too big for MTU 1500 from the client: dropped, ERROR */
	fake_hv_set_current(CL);
	assert_true(netfront_transmit(&nf, buf, 13));
	assert_true(netfront_transmit(&nf, buf, 1519));
	size_t before = nb_seen.frames;
	pump_n(2);
	assert_int_equal(nb_seen.frames, before);
	assert_int_equal(netback_stats(&nb)->tx_dropped, 2);
	assert_int_equal(netfront_stats(&nf)->tx_errors, 2);
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
}

static void test_multislot_frames(void **state)
{
	(void)state;
	connect_with_netfront("9000");
	assert_int_equal(netback_mtu(&nb), 9000);
	static uint8_t buf[80000];
	static const size_t sizes[] = { 2047, 2048, 2049, 4095, 4096, 4097, 6000, 8192, 8193, 9014,
					9018 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		fill(buf, len, (unsigned)i);
		fake_hv_set_current(CL);
		assert_true(netfront_transmit(&nf, buf, len));
		size_t before = nb_seen.frames;
		pump_n(2);
		assert_int_equal(nb_seen.frames, before + 1);
		assert_int_equal(nb_seen.len, len);
		assert_memory_equal(nb_seen.frame, buf, len);
		fake_hv_set_current(FW);
		before = nf_seen.frames;
		assert_true(netback_transmit(&nb, buf + 1, len)); /* unaligned source */
		pump_n(2);
		assert_int_equal(nf_seen.frames, before + 1);
		assert_int_equal(nf_seen.len, len);
		assert_memory_equal(nf_seen.frame, buf + 1, len);
	}
	/* a 60 KiB frame to the client: 16 slots */
	fill(buf, 15 * 4096 + 5, 9);
	fake_hv_set_current(FW);
	size_t before = nf_seen.frames;
	assert_true(netback_transmit(&nb, buf, 15 * 4096 + 5));
	pump_n(2);
	assert_int_equal(nf_seen.frames, before + 1);
	assert_int_equal(nf_seen.len, 15 * 4096 + 5);
	assert_memory_equal(nf_seen.frame, buf, 15 * 4096 + 5);
	/* more than 18 slots: refused */
	assert_false(netback_transmit(&nb, buf, 18 * 4096 + 1));
}

static void test_client_not_reading_drops(void **state)
{
	(void)state;
	connect_with_netfront(NULL);
	uint8_t buf[100];
	fill(buf, sizeof(buf), 1);
	fake_hv_set_current(FW);
	size_t ok = 0;
	for (int i = 0; i < 400; i++)
		ok += netback_transmit(&nb, buf, sizeof(buf));
	assert_int_equal(ok, NETFRONT_RX_BUFS);
	assert_int_equal(netback_stats(&nb)->rx_no_buffer, 400 - NETFRONT_RX_BUFS);
	pump_n(3); /* the client reads and re-posts */
	assert_true(netback_transmit(&nb, buf, sizeof(buf)));
	assert_int_equal(nf_seen.frames, NETFRONT_RX_BUFS);
}

/* ---- a hand-written (hostile) frontend ------------------------------------------- */

static struct {
	struct netif_tx_sring *tx;
	struct netif_rx_sring *rx;
	hv_gref_t tx_ref, rx_ref;
	hv_port_t port;
	uint8_t *data; /* 4 pages */
	hv_gref_t data_ref[4];
	uint32_t tx_prod, rx_prod;
} rf;

static void raw_frontend_keys(unsigned fe, bool rx_copy)
{
	char p[128], v[16];
	fake_hv_set_current((hv_domid_t)fe);
	uint8_t *rings = hv_pages_alloc(2);
	assert_non_null(rings);
	rf.tx = (struct netif_tx_sring *)(void *)rings;
	rf.rx = (struct netif_rx_sring *)(void *)(rings + 4096);
	rf.tx->hdr.req_event = rf.tx->hdr.rsp_event = 1;
	rf.rx->hdr.req_event = rf.rx->hdr.rsp_event = 1;
	assert_true(hv_grant(rf.tx, FW, false, &rf.tx_ref));
	assert_true(hv_grant(rf.rx, FW, false, &rf.rx_ref));
	rf.data = hv_pages_alloc(4);
	for (int i = 0; i < 4; i++)
		assert_true(hv_grant(rf.data + i * 4096, FW, false, &rf.data_ref[i]));
	assert_true(hv_evtchn_alloc_unbound(FW, &rf.port));
	rf.tx_prod = rf.rx_prod = 0;
	fake_hv_set_current(FW);
	fe_path(p, sizeof(p), fe, "tx-ring-ref");
	snprintf(v, sizeof(v), "%u", rf.tx_ref);
	fake_xsd_write(p, v);
	fe_path(p, sizeof(p), fe, "rx-ring-ref");
	snprintf(v, sizeof(v), "%u", rf.rx_ref);
	fake_xsd_write(p, v);
	fe_path(p, sizeof(p), fe, "event-channel");
	snprintf(v, sizeof(v), "%u", rf.port);
	fake_xsd_write(p, v);
	fe_path(p, sizeof(p), fe, "request-rx-copy");
	fake_xsd_write(p, rx_copy ? "1" : "0");
	fe_path(p, sizeof(p), fe, "feature-sg");
	fake_xsd_write(p, "1");
}

static void raw_fe_state(unsigned fe, const char *st)
{
	char p[128];
	fe_path(p, sizeof(p), fe, "state");
	fake_xsd_write(p, st);
}

static void raw_connect(void)
{
	reset_all();
	nf_running = false;
	start_vif(&nb, CL, &nb_cb);
	pump();
	raw_frontend_keys(CL, true);
	raw_fe_state(CL, "4");
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
}

static void tx_req(uint32_t gref, uint16_t off, uint16_t flags, uint16_t id, uint16_t size)
{
	union netif_tx_slot *s = &rf.tx->ring[rf.tx_prod++ & 255];
	s->req.gref = gref;
	s->req.offset = off;
	s->req.flags = flags;
	s->req.id = id;
	s->req.size = size;
}

static void tx_extra(uint8_t type, uint8_t flags)
{
	union netif_tx_slot *s = &rf.tx->ring[rf.tx_prod++ & 255];
	memset(s, 0, sizeof(*s));
	s->extra.type = type;
	s->extra.flags = flags;
	s->extra.u.gso.size = 1400;
	s->extra.u.gso.type = 1;
}

static void tx_publish(void)
{
	__atomic_store_n(&rf.tx->hdr.req_prod, rf.tx_prod, __ATOMIC_RELEASE);
	fake_hv_set_current(FW);
	netback_event(&nb);
	netback_poll(&nb, 0);
}

static int16_t tx_rsp_status(uint32_t idx)
{
	return rf.tx->ring[idx & 255].rsp.status;
}

static void test_raw_multislot_and_flags(void **state)
{
	(void)state;
	raw_connect();
	fill(rf.data, 3 * 4096, 3);
	/* 3 slots: first 1000 @ page0+96, then 500 @ page1+4000 → crosses? no: 96 */
	tx_req(rf.data_ref[0], 96, NETTXF_MORE_DATA | NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED, 1,
	       1000 + 500 + 10);
	tx_req(rf.data_ref[1], 3596, NETTXF_MORE_DATA, 2, 500);
	tx_req(rf.data_ref[2], 0, 0, 3, 10);
	tx_publish();
	assert_int_equal(nb_seen.frames, 1);
	assert_int_equal(nb_seen.len, 1510);
	assert_memory_equal(nb_seen.frame, rf.data + 96, 1000);
	assert_memory_equal(nb_seen.frame + 1000, rf.data + 4096 + 3596, 500);
	assert_memory_equal(nb_seen.frame + 1500, rf.data + 8192, 10);
	assert_int_equal(nb_seen.flags, NETDEV_RX_CSUM_BLANK | NETDEV_RX_DATA_VALIDATED);
	assert_int_equal(rf.tx->hdr.rsp_prod, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(tx_rsp_status(i), NETIF_RSP_OKAY);
		assert_int_equal(rf.tx->ring[i].rsp.id, i + 1);
	}
	/* an event was sent (rsp_event was 1) */
	assert_true(fake_hv_evtchn_pending(CL, rf.port));
	/* a MCAST extra is consumed with a NULL response; frame delivered */
	tx_req(rf.data_ref[0], 0, NETTXF_EXTRA_INFO, 9, 60);
	tx_extra(NETIF_EXTRA_TYPE_MCAST_ADD, 0);
	tx_publish();
	assert_int_equal(nb_seen.frames, 2);
	assert_int_equal(tx_rsp_status(3), NETIF_RSP_OKAY);
	assert_int_equal(tx_rsp_status(4), NETIF_RSP_NULL);
	/* GSO extra: not advertised → dropped, ERROR + NULL */
	tx_req(rf.data_ref[0], 0, NETTXF_EXTRA_INFO, 10, 60);
	tx_extra(NETIF_EXTRA_TYPE_GSO, 0);
	tx_publish();
	assert_int_equal(nb_seen.frames, 2);
	assert_int_equal(tx_rsp_status(5), NETIF_RSP_ERROR);
	assert_int_equal(tx_rsp_status(6), NETIF_RSP_NULL);
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
}

static void test_raw_incomplete_chain_waits(void **state)
{
	(void)state;
	raw_connect();
	tx_req(rf.data_ref[0], 0, NETTXF_MORE_DATA, 1, 100);
	tx_publish();
	assert_int_equal(nb_seen.frames, 0);
	assert_int_equal(rf.tx->hdr.rsp_prod, 0);
	/* asked to be woken by the next request */
	assert_int_equal(rf.tx->hdr.req_event, 2);
	tx_req(rf.data_ref[1], 0, 0, 2, 40);
	tx_publish();
	assert_int_equal(nb_seen.frames, 1);
	assert_int_equal(nb_seen.len, 100);
}

static void test_raw_droppable_requests(void **state)
{
	(void)state;
	raw_connect();
	/* bad gref */
	tx_req(12345, 0, 0, 1, 60);
	/* oversized (above MTU + 18) */
	tx_req(rf.data_ref[0], 0, NETTXF_MORE_DATA, 2, 3000);
	tx_req(rf.data_ref[1], 0, 0, 3, 1000);
	/* runt */
	tx_req(rf.data_ref[0], 0, 0, 4, 10);
	/* first size below the fragments */
	tx_req(rf.data_ref[0], 0, NETTXF_MORE_DATA, 5, 100);
	tx_req(rf.data_ref[1], 0, 0, 6, 200);
	/* 19 slots: dropped, not fatal */
	tx_req(rf.data_ref[0], 0, NETTXF_MORE_DATA, 7, 19 * 10);
	for (int i = 0; i < 17; i++)
		tx_req(rf.data_ref[1], 0, NETTXF_MORE_DATA, (uint16_t)(8 + i), 10);
	tx_req(rf.data_ref[1], 0, 0, 30, 10);
	/* a good one after all that */
	tx_req(rf.data_ref[2], 0, 0, 31, 60);
	tx_publish();
	uint32_t n = rf.tx_prod;
	assert_int_equal(rf.tx->hdr.rsp_prod, n);
	for (uint32_t i = 0; i + 1 < n; i++)
		assert_int_equal(tx_rsp_status(i), NETIF_RSP_ERROR);
	assert_int_equal(tx_rsp_status(n - 1), NETIF_RSP_OKAY);
	assert_int_equal(nb_seen.frames, 1);
	assert_int_equal(netback_stats(&nb)->tx_dropped, 5);
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
}

static void expect_failed(void)
{
	assert_int_equal(netback_state(&nb), NETDEV_FAILED);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	hv_port_t p;
	assert_false(netback_port(&nb, &p));
	pump();
	char path[128];
	be_path(path, sizeof(path), CL, "state");
	expect_key(path, "6");
	/* the toolstack then removes it */
	be_path(path, sizeof(path), CL, "online");
	fake_xsd_write(path, "0");
	pump_removal();
	assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
	assert_int_equal(fake_xsd_watch_count(conn_fw), 0);
}

static void test_raw_producer_far_ahead(void **state)
{
	(void)state;
	raw_connect();
	rf.tx_prod = 0x80000000u;
	tx_publish();
	expect_failed();
}

static void test_raw_rx_producer_far_ahead(void **state)
{
	(void)state;
	raw_connect();
	__atomic_store_n(&rf.rx->hdr.req_prod, 1000u, __ATOMIC_RELEASE);
	uint8_t b[60] = { 0 };
	assert_false(netback_transmit(&nb, b, sizeof(b)));
	expect_failed();
}

static void test_raw_offset_past_page(void **state)
{
	(void)state;
	raw_connect();
	tx_req(rf.data_ref[0], 4000, 0, 1, 200);
	tx_publish();
	expect_failed();
}

static void test_raw_fragment_past_page(void **state)
{
	(void)state;
	raw_connect();
	tx_req(rf.data_ref[0], 0, NETTXF_MORE_DATA, 1, 200);
	tx_req(rf.data_ref[0], 4095, 0, 2, 100);
	tx_publish();
	expect_failed();
}

static void test_raw_endless_chain(void **state)
{
	(void)state;
	raw_connect();
	for (int i = 0; i < 255; i++)
		tx_req(rf.data_ref[0], 0, NETTXF_MORE_DATA, (uint16_t)i, 60);
	tx_publish();
	expect_failed();
}

static void test_raw_bad_extra(void **state)
{
	(void)state;
	raw_connect();
	tx_req(rf.data_ref[0], 0, NETTXF_EXTRA_INFO, 1, 60);
	tx_extra(NETIF_EXTRA_TYPE_MCAST_ADD, NETIF_EXTRA_FLAG_MORE);
	tx_extra(NETIF_EXTRA_TYPE_MCAST_ADD, 0); /* duplicate type */
	tx_publish();
	expect_failed();
}

static void test_raw_rx_path(void **state)
{
	(void)state;
	raw_connect();
	uint8_t frame[5000];
	fill(frame, sizeof(frame), 5);
	fake_hv_set_current(FW);
	assert_false(netback_transmit(&nb, frame, 60)); /* nothing posted */
	assert_int_equal(netback_stats(&nb)->rx_no_buffer, 1);
	/* post: a good buffer, a bad gref, then two good ones */
	union netif_rx_slot *s = rf.rx->ring;
	s[0].req.id = 70;
	s[0].req.gref = rf.data_ref[0];
	s[1].req.id = 71;
	s[1].req.gref = 9999;
	s[2].req.id = 72;
	s[2].req.gref = rf.data_ref[1];
	s[3].req.id = 73;
	s[3].req.gref = rf.data_ref[2];
	__atomic_store_n(&rf.rx->hdr.req_prod, 4u, __ATOMIC_RELEASE);
	assert_true(netback_transmit(&nb, frame, 60));
	assert_int_equal(rf.rx->hdr.rsp_prod, 1);
	assert_int_equal(s[0].rsp.id, 70);
	assert_int_equal(s[0].rsp.status, 60);
	assert_int_equal(s[0].rsp.offset, 0);
	assert_int_equal(s[0].rsp.flags, 0);
	assert_memory_equal(rf.data, frame, 60);
	assert_false(netback_transmit(&nb, frame, 100)); /* bad gref → ERROR response */
	assert_int_equal(s[1].rsp.id, 71);
	assert_int_equal(s[1].rsp.status, NETIF_RSP_ERROR);
	/* multi-slot: 5000 = 4096 + 904 */
	assert_true(netback_transmit(&nb, frame, 5000));
	assert_int_equal(s[2].rsp.status, 4096);
	assert_int_equal(s[2].rsp.flags, NETRXF_MORE_DATA);
	assert_int_equal(s[3].rsp.status, 904);
	assert_int_equal(s[3].rsp.flags, 0);
	assert_memory_equal(rf.data + 4096, frame, 4096);
	assert_memory_equal(rf.data + 8192, frame + 4096, 904);
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
}

static void test_raw_without_rx_copy_refused(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	start_vif(&nb, CL, &nb_cb);
	pump();
	raw_frontend_keys(CL, false);
	raw_fe_state(CL, "3");
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_FAILED);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
}

static void test_raw_bad_ring_ref(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	start_vif(&nb, CL, &nb_cb);
	pump();
	raw_frontend_keys(CL, true);
	char p[128];
	fe_path(p, sizeof(p), CL, "tx-ring-ref");
	fake_xsd_write(p, "4444");
	raw_fe_state(CL, "4");
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_FAILED);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	fe_path(p, sizeof(p), CL, "tx-ring-ref");
	fake_xsd_write(p, "12abc");
	assert_int_equal(netback_state(&nb), NETDEV_FAILED);
}

/* Windows PV drivers: a close cycle before connecting, served again. */
static void test_windows_close_cycle(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	start_vif(&nb, CL, &nb_cb);
	pump();
	char p[128];
	be_path(p, sizeof(p), CL, "state");
	expect_key(p, "2");
	raw_fe_state(CL, "5");
	pump();
	raw_fe_state(CL, "6");
	pump();
	expect_key(p, "6");
	assert_int_equal(netback_state(&nb), NETDEV_CLOSING);
	be_path(p, sizeof(p), CL, "");
	assert_true(fake_xsd_exists(p)); /* never deleted while online = 1 */
	raw_fe_state(CL, "1");
	pump();
	be_path(p, sizeof(p), CL, "state");
	expect_key(p, "2");
	raw_frontend_keys(CL, true);
	raw_fe_state(CL, "4");
	pump();
	expect_key(p, "4");
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
	/* and a connected frontend that closes and reopens, twice */
	for (int round = 0; round < 2; round++) {
		raw_fe_state(CL, "5");
		pump();
		assert_int_equal(fake_hv_mappings_in_use(), 0);
		raw_fe_state(CL, "6");
		pump();
		expect_key(p, "6");
		raw_fe_state(CL, "1");
		pump();
		expect_key(p, "2");
		raw_fe_state(CL, "4");
		pump();
		expect_key(p, "4");
		assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
		assert_int_equal(fake_hv_mappings_in_use(), 2);
	}
	assert_int_equal(netback_stats(&nb)->connects, 3);
}

/* A vif whose frontend never completes does not block another one. */
static void test_stuck_vif_blocks_nobody(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	start_vif(&nb2, CL2, &nb2_cb); /* never gets a frontend */
	pump();
	start_vif(&nb, CL, &nb_cb);
	fake_hv_set_current(CL);
	assert_true(netfront_start(&nf, &xs_cl, "device/vif/0", &nf_cb));
	nf_running = true;
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
	assert_int_equal(netback_state(&nb2), NETDEV_STARTING);
	char p[128];
	be_path(p, sizeof(p), CL2, "state");
	expect_key(p, "2");
	/* detach the stuck one: Closed, removed; the other keeps working */
	be_path(p, sizeof(p), CL2, "online");
	fake_xsd_write(p, "0");
	be_path(p, sizeof(p), CL2, "state");
	fake_xsd_write(p, "5");
	pump_removal();
	assert_int_equal(netback_state(&nb2), NETDEV_CLOSED);
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
	uint8_t b[64];
	fill(b, sizeof(b), 3);
	fake_hv_set_current(CL);
	assert_true(netfront_transmit(&nf, b, sizeof(b)));
	pump_n(2);
	assert_int_equal(nb_seen.frames, 1);
}

/* XenStore connection lost mid-handshake: retried after re-attach. */
static void test_xenstore_reconnect(void **state)
{
	(void)state;
	reset_all();
	nf_running = false;
	fake_xsd_add_vif(FW, CL, 0, "00:16:3e:5e:6c:00");
	xs_client_close(&xs_fw);
	fake_hv_set_current(FW);
	assert_true(netback_start(&nb, &xs_fw, "backend/vif/2/0", CL, &nb_cb));
	pump_n(3);
	struct stream s;
	fake_xsd_hangup(conn_fw);
	conn_fw = fake_xsd_connect(FW, &s);
	xs_client_attach(&xs_fw, s);
	pump();
	char p[128];
	be_path(p, sizeof(p), CL, "state");
	expect_key(p, "2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initwait_and_features),
		cmocka_unit_test(test_bad_start_arguments),
		cmocka_unit_test(test_frontend_path_mismatch_refused),
		cmocka_unit_test(test_connect_and_detach),
		cmocka_unit_test(test_detach_before_connect),
		cmocka_unit_test(test_directory_vanishes),
		cmocka_unit_test(test_stop_and_churn_no_leak),
		cmocka_unit_test(test_frames_every_size_both_ways),
		cmocka_unit_test(test_multislot_frames),
		cmocka_unit_test(test_client_not_reading_drops),
		cmocka_unit_test(test_raw_multislot_and_flags),
		cmocka_unit_test(test_raw_incomplete_chain_waits),
		cmocka_unit_test(test_raw_droppable_requests),
		cmocka_unit_test(test_raw_producer_far_ahead),
		cmocka_unit_test(test_raw_rx_producer_far_ahead),
		cmocka_unit_test(test_raw_offset_past_page),
		cmocka_unit_test(test_raw_fragment_past_page),
		cmocka_unit_test(test_raw_endless_chain),
		cmocka_unit_test(test_raw_bad_extra),
		cmocka_unit_test(test_raw_rx_path),
		cmocka_unit_test(test_raw_without_rx_copy_refused),
		cmocka_unit_test(test_raw_bad_ring_ref),
		cmocka_unit_test(test_windows_close_cycle),
		cmocka_unit_test(test_stuck_vif_blocks_nobody),
		cmocka_unit_test(test_xenstore_reconnect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
