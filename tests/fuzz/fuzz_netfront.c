/* fuzz_netfront.c — a hostile backend against netfront: the input is a
 * program of RX responses (ids, offsets, flags, statuses, wild producer
 * indexes), TX responses, transmits and backend state changes, on an
 * uplink connected through the fake hypervisor and fake xenstored.
 * Invariants: no crash or sanitizer report, delivered frames within bounds,
 * the device always ends CLOSED and, once the backend's mappings are gone,
 * every page and grant is back (nothing freed while still granted).
 *
 * Speed: setting up a connection costs ~200 pages of grants in the fake
 * hypervisor, so a connection that is still CONNECTED at the end of an
 * input is kept for the next one (ring indexes carry over); any other end
 * state, and op 8, runs the stop-and-check path and the next input starts
 * afresh. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/panic.h"
#include "fake_hv.h"
#include "fake_xenstored.h"
#include "xen/netfront.h"

#define FW 1
#define VM 3

static struct xs_client xs_fw;
static struct netfront nf;
static struct netif_tx_sring *tx;
static struct netif_rx_sring *rx;
static uint8_t frame[40000];

static void on_rx(void *ctx, uint8_t *f, size_t len, uint32_t flags)
{
	(void)ctx;
	(void)flags;
	ASSERT(len > 0 && len <= NETFRONT_FRAME_MAX);
	volatile uint8_t x = 0;
	for (size_t i = 0; i < len; i++)
		x ^= f[i];
	(void)x;
}

static void on_state(void *ctx, enum netdev_state st)
{
	(void)ctx;
	(void)st;
}

static const struct netdev_callbacks cb = { on_rx, on_state, NULL };

static void pump(int n)
{
	for (int i = 0; i < n; i++) {
		fake_hv_set_current(FW);
		xs_poll(&xs_fw);
		netfront_poll(&nf, 0);
		fake_xsd_poll();
	}
	fake_hv_set_current(FW);
}

static uint32_t key_u32(const char *path)
{
	char v[32];
	if (!fake_xsd_read(path, v, sizeof(v)))
		return 0;
	return (uint32_t)strtoul(v, NULL, 10);
}

static bool setup(void)
{
	fake_hv_reset();
	fake_hv_add_domain(FW);
	fake_hv_add_domain(VM);
	fake_xsd_reset();
	struct stream s;
	fake_xsd_connect(FW, &s);
	xs_client_init(&xs_fw, NULL, NULL);
	xs_client_attach(&xs_fw, s);
	fake_xsd_add_vif(VM, FW, 0, "00:16:3e:5e:6c:05");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/feature-rx-copy", "1");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/feature-sg", "1");
	fake_xsd_write("/local/domain/3/backend/vif/1/0/state", "2");
	netfront_init(&nf);
	fake_hv_set_current(FW);
	if (!netfront_start(&nf, &xs_fw, "device/vif/0", &cb))
		return false;
	for (int k = 0; k < 60 && !fake_xsd_exists("/local/domain/1/device/vif/0/event-channel");
	     k++)
		pump(1);
	pump(2);
	uint32_t tr = key_u32("/local/domain/1/device/vif/0/tx-ring-ref");
	uint32_t rr = key_u32("/local/domain/1/device/vif/0/rx-ring-ref");
	uint32_t port = key_u32("/local/domain/1/device/vif/0/event-channel");
	fake_hv_set_current(VM);
	tx = hv_map_grants(FW, &tr, 1, false);
	rx = hv_map_grants(FW, &rr, 1, false);
	hv_port_t mine;
	if (tx == NULL || rx == NULL || !hv_evtchn_bind_interdomain(FW, port, &mine))
		return false;
	fake_xsd_write("/local/domain/3/backend/vif/1/0/state", "4");
	for (int k = 0; k < 20 && netfront_state(&nf) != NETDEV_CONNECTED; k++)
		pump(1);
	return netfront_state(&nf) == NETDEV_CONNECTED;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	static uint32_t rx_rsp, tx_rsp;
	if (netfront_state(&nf) != NETDEV_CONNECTED) {
		if (!setup())
			panic("fuzz_netfront: setup failed");
		rx_rsp = tx_rsp = 0;
	}
	bool stop = false;
	size_t i = 0;
	while (i + 9 <= len && !stop) {
		uint8_t op = in[i];
		const uint8_t *a = in + i + 1; /* 8 argument bytes */
		i += 9;
		switch (op % 10) {
		case 0:
		case 1:
		case 2: { /* an RX response; usually with the id posted at that slot */
			uint32_t slot = rx_rsp++ & 255;
			union netif_rx_slot *s = &rx->ring[slot];
			uint16_t posted = __atomic_load_n(&s->req.id, __ATOMIC_RELAXED);
			uint16_t gref = (uint16_t)__atomic_load_n(&s->req.gref, __ATOMIC_RELAXED);
			uint16_t id = a[0] < 220 ? posted : (uint16_t)(a[1] | a[2] << 8);
			uint16_t off = (uint16_t)(a[3] | a[4] << 8) & (a[7] & 1 ? 0xffff : 0xfff);
			int16_t st = (int16_t)(a[5] | a[6] << 8);
			if (a[7] & 2)
				st = (int16_t)(st & 0xfff);
			uint8_t *page = fake_hv_grant_page(FW, gref);
			if (page != NULL && a[7] & 4)
				memset(page, a[1], 4096);
			s->rsp.id = id;
			s->rsp.offset = off;
			s->rsp.flags = (uint16_t)(a[7] >> 3);
			s->rsp.status = st;
			break;
		}
		case 3: /* publish RX responses */
			__atomic_store_n(&rx->hdr.rsp_prod, rx_rsp, __ATOMIC_RELEASE);
			netfront_event(&nf);
			netfront_poll(&nf, a[0]);
			break;
		case 4: { /* wild index */
			uint32_t v;
			memcpy(&v, a, 4);
			if (a[4] & 1)
				__atomic_store_n(&rx->hdr.rsp_prod, v, __ATOMIC_RELEASE);
			else
				__atomic_store_n(&tx->hdr.rsp_prod, v, __ATOMIC_RELEASE);
			netfront_poll(&nf, 0);
			break;
		}
		case 5: { /* TX responses for what is outstanding (or garbage) */
			uint32_t req = __atomic_load_n(&tx->hdr.req_prod, __ATOMIC_ACQUIRE);
			for (int k = 0; k < (a[0] & 15) && tx_rsp != req; k++) {
				union netif_tx_slot *s = &tx->ring[tx_rsp & 255];
				uint16_t id = s->req.id;
				s->rsp.id = a[1] < 200 ? id : (uint16_t)(a[2] | a[3] << 8);
				s->rsp.status = (int16_t)((a[4] % 4) - 2);
				tx_rsp++;
			}
			__atomic_store_n(&tx->hdr.rsp_prod, tx_rsp, __ATOMIC_RELEASE);
			netfront_poll(&nf, 0);
			break;
		}
		case 6: { /* transmit */
			size_t n = (size_t)(a[0] | a[1] << 8) % sizeof(frame);
			(void)netfront_transmit(&nf, frame + (a[2] & 7), n);
			break;
		}
		case 7: { /* backend state */
			char v[4];
			snprintf(v, sizeof(v), "%u", (unsigned)(a[0] % 9));
			if (a[1] & 1)
				fake_xsd_rm("/local/domain/3/backend/vif/1/0");
			else
				fake_xsd_write("/local/domain/3/backend/vif/1/0/state", v);
			pump(a[2] & 7);
			break;
		}
		case 8:
			stop = true;
			break;
		default:
			pump(1);
			break;
		}
	}
	if (!stop && netfront_state(&nf) == NETDEV_CONNECTED)
		return 0;
	netfront_stop(&nf);
	pump(4);
	ASSERT(netfront_state(&nf) == NETDEV_CLOSED);
	ASSERT(xs_watch_count(&xs_fw) == 0);
	/* the backend unmaps: every page comes back */
	fake_hv_set_current(VM);
	hv_unmap_grants(tx, 1);
	hv_unmap_grants(rx, 1);
	fake_hv_set_current(FW);
	netfront_poll(&nf, 0);
	ASSERT(netfront_quarantine_len(&nf) == 0);
	ASSERT(fake_hv_pages_in_use() == 0);
	ASSERT(fake_hv_grants_in_use(FW) == 0);
	return 0;
}
