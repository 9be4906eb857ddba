/* test_netfront.c — the uplink frontend against our netback running in a
 * fake "netvm" domain (fake hypervisor + fake xenstored), and against a
 * hand-written hostile backend: the xenbus sequence (waiting for the
 * backend keys, InitWait, Connected), frames both ways, the netvm going
 * away (gracefully and abruptly: pages whose grant is still mapped are
 * quarantined, never freed), a new netvm, a full TX pool, and bad RX/TX
 * responses. Ring layouts written from xen-platform.md §8.4. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_hv.h"
#include "fake_xenstored.h"
#include "base/clock.h"
#include "xen/netback.h"
#include "xen/netfront.h"

#define FW 1u    /* us: the frontend */
#define NETVM 3u /* the backend */
#define NETVM2 4u

static struct xs_client xs_fw, xs_vm;
static struct netback nb;
static struct netfront nf;
static int conn_fw, conn_vm;
static bool nb_running;
static unsigned netvm;

struct seen {
	enum netdev_state states[32];
	size_t nstates;
	uint8_t frame[70000];
	size_t len;
	uint32_t flags;
	size_t frames;
};
static struct seen nb_seen, nf_seen;

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

static const struct netdev_callbacks nb_cb = { on_rx, on_state, &nb_seen };
static const struct netdev_callbacks nf_cb = { on_rx, on_state, &nf_seen };

static void reset_all(void)
{
	fake_hv_reset();
	fake_hv_add_domain(0);
	fake_hv_add_domain(FW);
	fake_hv_add_domain(NETVM);
	fake_hv_add_domain(NETVM2);
	fake_xsd_reset();
	memset(&nb_seen, 0, sizeof(nb_seen));
	memset(&nf_seen, 0, sizeof(nf_seen));
	memset(&nb, 0, sizeof(nb));
	netfront_init(&nf);
	nb_running = false;
	struct stream s;
	conn_fw = fake_xsd_connect(FW, &s);
	xs_client_init(&xs_fw, NULL, NULL);
	xs_client_attach(&xs_fw, s);
	netvm = NETVM;
	conn_vm = fake_xsd_connect(NETVM, &s);
	xs_client_init(&xs_vm, NULL, NULL);
	xs_client_attach(&xs_vm, s);
}

static void pump_n(int n)
{
	for (int i = 0; i < n; i++) {
		fake_hv_set_current(FW);
		xs_poll(&xs_fw);
		netfront_poll(&nf, 0);
		if (nb_running) {
			fake_hv_set_current((hv_domid_t)netvm);
			xs_poll(&xs_vm);
			netback_poll(&nb, 0);
		}
		fake_xsd_poll();
	}
	fake_hv_set_current(FW);
}

static void pump(void)
{
	pump_n(40);
}

static void start_netvm(unsigned vm)
{
	char rel[64];
	netvm = vm;
	fake_xsd_add_vif(vm, FW, 0, "00:16:3e:5e:6c:05");
	snprintf(rel, sizeof(rel), "backend/vif/%u/0", FW);
	fake_hv_set_current((hv_domid_t)vm);
	assert_true(netback_start(&nb, &xs_vm, rel, FW, &nb_cb));
	nb_running = true;
}

static void connect_pair(void)
{
	reset_all();
	start_netvm(NETVM);
	fake_hv_set_current(FW);
	assert_true(netfront_start(&nf, &xs_fw, "device/vif/0", &nf_cb));
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
	assert_int_equal(netback_state(&nb), NETDEV_CONNECTED);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 13u + seed + (i >> 9));
}

static void expect_key(const char *path, const char *want)
{
	char v[64];
	assert_true(fake_xsd_read(path, v, sizeof(v)));
	assert_string_equal(v, want);
}

/* ---- with our netback as the netvm ---------------------------------------------- */

static void test_connect_keys_mac_mtu(void **state)
{
	(void)state;
	connect_pair();
	static const uint8_t mac[6] = { 0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x05 };
	assert_memory_equal(netfront_mac(&nf), mac, 6);
	assert_int_equal(netfront_mtu(&nf), 1500);
	expect_key("/local/domain/1/device/vif/0/state", "4");
	expect_key("/local/domain/1/device/vif/0/request-rx-copy", "1");
	expect_key("/local/domain/1/device/vif/0/feature-rx-notify", "1");
	expect_key("/local/domain/1/device/vif/0/feature-sg", "1");
	expect_key("/local/domain/1/device/vif/0/feature-no-csum-offload", "1");
	expect_key("/local/domain/1/device/vif/0/feature-gso-tcpv4", "0");
	assert_false(fake_xsd_exists("/local/domain/1/device/vif/0/multi-queue-num-queues"));
	hv_port_t port;
	assert_true(netfront_port(&nf, &port));
	/* rings + RX buffers (rw) + TX pages (ro) granted to the netvm */
	assert_int_equal(fake_hv_grants_in_use(FW), 2 + NETFRONT_RX_BUFS + NETFRONT_TX_PAGES);
	assert_int_equal(nf_seen.states[nf_seen.nstates - 1], NETDEV_CONNECTED);
}

static void test_waits_for_backend_keys(void **state)
{
	(void)state;
	reset_all();
	fake_hv_set_current(FW);
	assert_true(netfront_start(&nf, &xs_fw, "device/vif/0", &nf_cb));
	assert_false(netfront_start(&nf, &xs_fw, "device/vif/0", &nf_cb)); /* running */
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_STARTING);
	assert_int_equal(fake_hv_grants_in_use(FW), 0);
	start_netvm(NETVM);
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
}

static void test_frames_both_ways(void **state)
{
	(void)state;
	connect_pair();
	static uint8_t buf[70000];
	for (size_t len = 14; len <= 1514; len += (len < 80 ? 1 : 37)) {
		fill(buf, len, (unsigned)len);
		fake_hv_set_current(FW);
		assert_true(netfront_transmit(&nf, buf, len));
		size_t before = nb_seen.frames;
		pump_n(2);
		assert_int_equal(nb_seen.frames, before + 1);
		assert_int_equal(nb_seen.len, len);
		assert_memory_equal(nb_seen.frame, buf, len);
		assert_int_equal(nb_seen.flags, 0); /* our checksums are complete */
		fake_hv_set_current(NETVM);
		before = nf_seen.frames;
		assert_true(netback_transmit(&nb, buf + 3, len));
		pump_n(2);
		assert_int_equal(nf_seen.frames, before + 1);
		assert_int_equal(nf_seen.len, len);
		assert_memory_equal(nf_seen.frame, buf + 3, len);
	}
	/* multi-slot from the netvm: 3 pages */
	fill(buf, 10000, 1);
	fake_hv_set_current(NETVM);
	assert_true(netback_transmit(&nb, buf, 10000));
	pump_n(2);
	assert_int_equal(nf_seen.len, 10000);
	assert_memory_equal(nf_seen.frame, buf, 10000);
	/* multi-block TX (2 KiB blocks) reaches a backend with a big MTU only;
	 * our netback at MTU 1500 answers ERROR for it */
	fake_hv_set_current(FW);
	assert_true(netfront_transmit(&nf, buf, 3000));
	pump_n(2);
	assert_int_equal(netfront_stats(&nf)->tx_errors, 2); /* one ERROR per slot */
	assert_false(netfront_transmit(&nf, buf, 0));
	assert_false(netfront_transmit(&nf, buf, NETFRONT_TX_FRAME_MAX + 1));
	/* TX blocks all came back */
	for (int i = 0; i < 3 * (int)NETFRONT_TX_BLOCKS; i++) {
		assert_true(netfront_transmit(&nf, buf, 100));
		if (i % 64 == 63)
			pump_n(2);
	}
}

static void test_netvm_detach_and_new_netvm(void **state)
{
	(void)state;
	connect_pair();
	/* the toolstack detaches our vif from the netvm */
	fake_xsd_write("/local/domain/3/backend/vif/1/0/online", "0");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/state", "5");
	pump();
	/* our netback as netvm removes its directory NETBACK_RM_DELAY_NS later */
	clock_set_now(clock_now() + NETBACK_RM_DELAY_NS);
	pump();
	assert_int_equal(netback_state(&nb), NETDEV_CLOSED);
	assert_int_equal(netfront_state(&nf), NETDEV_CLOSED);
	assert_int_equal(nf_seen.states[nf_seen.nstates - 2], NETDEV_CLOSING);
	expect_key("/local/domain/1/device/vif/0/state", "6");
	assert_int_equal(netfront_quarantine_len(&nf), 0);
	assert_int_equal(fake_hv_grants_in_use(FW), 0);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(xs_watch_count(&xs_fw), 0);
	uint8_t b[64] = { 0 };
	assert_false(netfront_transmit(&nf, b, sizeof(b)));
	/* a new netvm: the toolstack rewrites device/vif/0 */
	fake_xsd_rm("/local/domain/1/device/vif/0");
	memset(&nb, 0, sizeof(nb));
	struct stream st;
	fake_xsd_hangup(conn_vm);
	conn_vm = fake_xsd_connect(NETVM2, &st);
	xs_client_init(&xs_vm, NULL, NULL);
	xs_client_attach(&xs_vm, st);
	start_netvm(NETVM2);
	fake_hv_set_current(FW);
	assert_true(netfront_start(&nf, &xs_fw, "device/vif/0", &nf_cb));
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
	fill(b, sizeof(b), 4);
	assert_true(netfront_transmit(&nf, b, sizeof(b)));
	pump_n(2);
	assert_int_equal(nb_seen.len, sizeof(b));
	assert_memory_equal(nb_seen.frame, b, sizeof(b));
}

/* The netvm dies: its backend dir vanishes while it still maps our ring
 * pages. Those pages must be quarantined, not freed (MSA02). */
static void test_netvm_dies_pages_quarantined(void **state)
{
	(void)state;
	connect_pair();
	nb_running = false; /* the netvm stops doing anything */
	fake_xsd_rm("/local/domain/3/backend/vif/1/0");
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CLOSED);
	assert_int_equal(netfront_quarantine_len(&nf), 2); /* the two mapped ring pages */
	assert_int_equal(fake_hv_grants_in_use(FW), 2);
	assert_int_equal(fake_hv_pages_in_use(), 2);
	/* later the mappings go (domain destroyed): the retry frees them */
	fake_hv_set_current(NETVM);
	netback_stop(&nb);
	fake_hv_set_current(FW);
	netfront_poll(&nf, 0);
	assert_int_equal(netfront_quarantine_len(&nf), 0);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_int_equal(fake_hv_grants_in_use(FW), 0);
}

static void test_stop_by_us(void **state)
{
	(void)state;
	connect_pair();
	fake_hv_set_current(FW);
	netfront_stop(&nf);
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CLOSED);
	expect_key("/local/domain/1/device/vif/0/state", "6");
	/* our netback saw the frontend close */
	assert_int_equal(netback_state(&nb), NETDEV_CLOSING);
	netfront_poll(&nf, 0);
	assert_int_equal(netfront_quarantine_len(&nf), 0);
	assert_int_equal(fake_hv_pages_in_use(), 0);
}

/* ---- a hand-written (hostile) backend ----------------------------------------------- */

static struct {
	struct netif_tx_sring *tx;
	struct netif_rx_sring *rx;
	hv_port_t port;
	uint32_t rx_rsp, tx_rsp;
} rb;

static void raw_backend(bool rx_copy)
{
	reset_all();
	fake_xsd_add_vif(NETVM, FW, 0, "00:16:3e:5e:6c:05");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/feature-rx-copy", rx_copy ? "1" : "0");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/feature-sg", "1");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/state", "2");
	fake_hv_set_current(FW);
	assert_true(netfront_start(&nf, &xs_fw, "device/vif/0", &nf_cb));
	pump();
	if (!rx_copy)
		return;
	char v[32];
	uint32_t tr, rr, port;
	assert_true(fake_xsd_read("/local/domain/1/device/vif/0/tx-ring-ref", v, sizeof(v)));
	tr = (uint32_t)strtoul(v, NULL, 10);
	assert_true(fake_xsd_read("/local/domain/1/device/vif/0/rx-ring-ref", v, sizeof(v)));
	rr = (uint32_t)strtoul(v, NULL, 10);
	assert_true(fake_xsd_read("/local/domain/1/device/vif/0/event-channel", v, sizeof(v)));
	port = (uint32_t)strtoul(v, NULL, 10);
	fake_hv_set_current(NETVM);
	rb.tx = hv_map_grants(FW, &tr, 1, false);
	rb.rx = hv_map_grants(FW, &rr, 1, false);
	assert_non_null(rb.tx);
	assert_non_null(rb.rx);
	assert_true(hv_evtchn_bind_interdomain(FW, port, &rb.port));
	rb.rx_rsp = rb.tx_rsp = 0;
	fake_xsd_write("/local/domain/3/backend/vif/1/0/state", "4");
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
	/* the RX buffers are posted */
	assert_int_equal(rb.rx->hdr.req_prod, NETFRONT_RX_BUFS);
}

static void rx_rsp(uint16_t id, uint16_t off, uint16_t flags, int16_t status)
{
	union netif_rx_slot *s = &rb.rx->ring[rb.rx_rsp++ & 255];
	s->rsp.id = id;
	s->rsp.offset = off;
	s->rsp.flags = flags;
	s->rsp.status = status;
}

/* Copies bytes into the buffer posted at ring slot `slot` (as a grant copy would). */
static void rx_fill(uint32_t slot, uint16_t off, const uint8_t *b, size_t n)
{
	union netif_rx_slot *s = &rb.rx->ring[slot & 255];
	uint8_t *page = fake_hv_grant_page(FW, s->req.gref);
	assert_non_null(page);
	memcpy(page + off, b, n);
}

static void rx_publish(void)
{
	__atomic_store_n(&rb.rx->hdr.rsp_prod, rb.rx_rsp, __ATOMIC_RELEASE);
	fake_hv_set_current(FW);
	netfront_event(&nf);
	netfront_poll(&nf, 0);
}

static void test_raw_rx_good_and_bad(void **state)
{
	(void)state;
	raw_backend(true);
	uint8_t b[6000];
	fill(b, sizeof(b), 7);
	/* good: 2 slots, offsets honoured, csum flags mapped */
	uint16_t id0 = rb.rx->ring[0].req.id, id1 = rb.rx->ring[1].req.id;
	rx_fill(0, 100, b, 3000);
	rx_fill(1, 0, b + 3000, 2000);
	rx_rsp(id0, 100, NETRXF_MORE_DATA | NETRXF_CSUM_BLANK, 3000);
	rx_rsp(id1, 0, 0, 2000);
	rx_publish();
	assert_int_equal(nf_seen.frames, 1);
	assert_int_equal(nf_seen.len, 5000);
	assert_memory_equal(nf_seen.frame, b, 5000);
	assert_int_equal(nf_seen.flags, NETDEV_RX_CSUM_BLANK);
	/* bad: wrong id, error status, beyond the page, zero status */
	rx_rsp((uint16_t)(rb.rx->ring[2].req.id + 1), 0, 0, 60);
	rx_rsp(rb.rx->ring[3].req.id, 0, 0, NETIF_RSP_ERROR);
	rx_rsp(rb.rx->ring[4].req.id, 4000, 0, 200);
	rx_rsp(rb.rx->ring[5].req.id, 0, 0, 0);
	rx_rsp(rb.rx->ring[6].req.id, 0, 0, 0x7fff);
	rx_publish();
	assert_int_equal(nf_seen.frames, 1);
	assert_int_equal(netfront_stats(&nf)->rx_dropped, 5);
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
	/* every consumed buffer was re-posted */
	assert_int_equal(rb.rx->hdr.req_prod, NETFRONT_RX_BUFS + 7);
	/* an incomplete chain waits */
	rx_fill(7, 0, b, 100);
	rx_rsp(rb.rx->ring[7].req.id, 0, NETRXF_MORE_DATA, 100);
	rx_publish();
	assert_int_equal(nf_seen.frames, 1);
	rx_fill(8, 0, b + 100, 50);
	rx_rsp(rb.rx->ring[8].req.id, 0, 0, 50);
	rx_publish();
	assert_int_equal(nf_seen.frames, 2);
	assert_int_equal(nf_seen.len, 150);
	assert_memory_equal(nf_seen.frame, b, 150);
}

static void test_raw_rx_chain_never_ends(void **state)
{
	(void)state;
	raw_backend(true);
	for (uint32_t i = 0; i < NETFRONT_RX_BUFS; i++)
		rx_rsp(rb.rx->ring[i].req.id, 0, NETRXF_MORE_DATA, 60);
	rx_publish();
	netfront_poll(&nf, 0);
	assert_int_equal(nf_seen.frames, 0);
	assert_true(netfront_stats(&nf)->rx_dropped >= 1);
	assert_int_equal(netfront_state(&nf), NETDEV_CONNECTED);
	/* the buffers came back: the ring is full of requests again */
	assert_int_equal(rb.rx->hdr.req_prod - rb.rx_rsp, NETFRONT_RX_BUFS);
}

static void test_raw_rx_index_far_ahead(void **state)
{
	(void)state;
	raw_backend(true);
	rb.rx_rsp = 0x40000000u;
	rx_publish();
	assert_int_equal(netfront_state(&nf), NETDEV_FAILED);
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CLOSED);
	expect_key("/local/domain/1/device/vif/0/state", "6");
	/* the rings are still mapped by the (hostile) backend: quarantined */
	assert_int_equal(netfront_quarantine_len(&nf), 2);
}

static void test_raw_tx_pool_and_bad_responses(void **state)
{
	(void)state;
	raw_backend(true);
	uint8_t b[100];
	fill(b, sizeof(b), 2);
	fake_hv_set_current(FW);
	size_t sent = 0;
	while (netfront_transmit(&nf, b, sizeof(b)))
		sent++;
	assert_int_equal(sent, NETFRONT_TX_BLOCKS);
	assert_int_equal(netfront_stats(&nf)->tx_full, 1);
	/* the requests: unique ids, size-exact, read-only data we can read */
	for (uint32_t i = 0; i < sent; i++) {
		struct netif_tx_request r = rb.tx->ring[i].req;
		assert_int_equal(r.size, sizeof(b));
		assert_int_equal(r.flags, 0);
		for (uint32_t k = 0; k < i; k++)
			assert_int_not_equal(rb.tx->ring[k].req.id, r.id);
	}
	/* answer two correctly, then a bogus id and a duplicate */
	uint16_t id0 = rb.tx->ring[0].req.id, id1 = rb.tx->ring[1].req.id;
	union netif_tx_slot *s = rb.tx->ring;
	s[0].rsp.id = id0;
	s[0].rsp.status = NETIF_RSP_OKAY;
	s[1].rsp.id = id1;
	s[1].rsp.status = NETIF_RSP_ERROR;
	s[2].rsp.id = 999;
	s[2].rsp.status = NETIF_RSP_OKAY;
	s[3].rsp.id = id0;
	s[3].rsp.status = NETIF_RSP_OKAY;
	__atomic_store_n(&rb.tx->hdr.rsp_prod, 4u, __ATOMIC_RELEASE);
	netfront_poll(&nf, 0);
	assert_int_equal(netfront_stats(&nf)->bad_responses, 2);
	assert_int_equal(netfront_stats(&nf)->tx_errors, 1);
	assert_true(netfront_transmit(&nf, b, sizeof(b)));
	assert_true(netfront_transmit(&nf, b, sizeof(b)));
	assert_false(netfront_transmit(&nf, b, sizeof(b)));
	/* TX responses beyond the requests: failed */
	__atomic_store_n(&rb.tx->hdr.rsp_prod, 5000u, __ATOMIC_RELEASE);
	netfront_poll(&nf, 0);
	assert_int_equal(netfront_state(&nf), NETDEV_FAILED);
}

static void test_raw_backend_without_rx_copy(void **state)
{
	(void)state;
	raw_backend(false);
	pump();
	assert_int_equal(netfront_state(&nf), NETDEV_CLOSED);
	assert_int_equal(nf_seen.states[0], NETDEV_FAILED);
	assert_int_equal(fake_hv_pages_in_use(), 0);
}

static void test_bad_start_arguments(void **state)
{
	(void)state;
	reset_all();
	assert_false(netfront_start(&nf, &xs_fw, "", &nf_cb));
	assert_false(netfront_start(&nf, &xs_fw, "device//vif", &nf_cb));
	assert_false(netfront_start(&nf, NULL, "device/vif/0", &nf_cb));
	assert_false(netfront_start(&nf, &xs_fw, "device/vif/0", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_keys_mac_mtu),
		cmocka_unit_test(test_waits_for_backend_keys),
		cmocka_unit_test(test_frames_both_ways),
		cmocka_unit_test(test_netvm_detach_and_new_netvm),
		cmocka_unit_test(test_netvm_dies_pages_quarantined),
		cmocka_unit_test(test_stop_by_us),
		cmocka_unit_test(test_raw_rx_good_and_bad),
		cmocka_unit_test(test_raw_rx_chain_never_ends),
		cmocka_unit_test(test_raw_rx_index_far_ahead),
		cmocka_unit_test(test_raw_tx_pool_and_bad_responses),
		cmocka_unit_test(test_raw_backend_without_rx_copy),
		cmocka_unit_test(test_bad_start_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
