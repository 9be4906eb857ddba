/* fuzz_netback.c — a hostile frontend against netback: the input is a
 * program of ring writes (TX requests, extra-info slots, wild producer
 * indexes, RX requests), netback polls/transmits and xenbus state changes,
 * run on a vif connected through the fake hypervisor and fake xenstored.
 * Invariants: no crash or sanitizer report; a FAILED vif holds no mapping
 * or port; every vif ends CLOSED with no watch left. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#include "base/clock.h"
#include "base/panic.h"
#include "fake_hv.h"
#include "fake_xenstored.h"
#include "xen/netback.h"

#define FW 1
#define CL 2

static struct xs_client xs_fw;
static struct netback nb;
static struct netif_tx_sring *tx;
static struct netif_rx_sring *rx;
static uint8_t *data;
static hv_gref_t data_ref[4];
static uint8_t frame[70000];

static void on_rx(void *ctx, uint8_t *f, size_t len, uint32_t flags)
{
	(void)ctx;
	(void)flags;
	ASSERT(len >= NETBACK_FRAME_MIN && len <= NETBACK_FRAME_MAX);
	/* touch every byte: ASan checks the bounds */
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
		netback_poll(&nb, 0);
		fake_xsd_poll();
	}
	fake_hv_set_current(FW);
}

static void w(const char *leaf, const char *v)
{
	char p[128];
	snprintf(p, sizeof(p), "/local/domain/2/device/vif/0/%s", leaf);
	fake_xsd_write(p, v);
}

static bool setup(void)
{
	fake_hv_reset();
	fake_hv_add_domain(FW);
	fake_hv_add_domain(CL);
	fake_xsd_reset();
	struct stream s;
	fake_xsd_connect(FW, &s);
	xs_client_init(&xs_fw, NULL, NULL);
	xs_client_attach(&xs_fw, s);
	fake_xsd_add_vif(FW, CL, 0, "00:16:3e:5e:6c:00");
	fake_hv_set_current(FW);
	if (!netback_start(&nb, &xs_fw, "backend/vif/2/0", CL, &cb))
		return false;
	for (int k = 0; k < 40 && nb.be_written != 2; k++)
		pump(1);
	fake_hv_set_current(CL);
	uint8_t *rings = hv_pages_alloc(2);
	tx = (struct netif_tx_sring *)(void *)rings;
	rx = (struct netif_rx_sring *)(void *)(rings + 4096);
	tx->hdr.req_event = tx->hdr.rsp_event = rx->hdr.req_event = rx->hdr.rsp_event = 1;
	hv_gref_t tr, rr;
	hv_port_t port;
	hv_grant(tx, FW, false, &tr);
	hv_grant(rx, FW, false, &rr);
	data = hv_pages_alloc(4);
	for (int i = 0; i < 4; i++)
		hv_grant(data + i * 4096, FW, i == 3, &data_ref[i]); /* one read-only */
	hv_evtchn_alloc_unbound(FW, &port);
	char v[16];
	snprintf(v, sizeof(v), "%u", tr);
	w("tx-ring-ref", v);
	snprintf(v, sizeof(v), "%u", rr);
	w("rx-ring-ref", v);
	snprintf(v, sizeof(v), "%u", port);
	w("event-channel", v);
	w("request-rx-copy", "1");
	w("feature-sg", "1");
	w("state", "4");
	for (int k = 0; k < 40 && netback_state(&nb) == NETDEV_STARTING; k++)
		pump(1);
	return netback_state(&nb) == NETDEV_CONNECTED;
}

static uint32_t pick_gref(uint8_t b, const uint8_t *raw)
{
	if (b < 200)
		return data_ref[b & 3];
	return (uint32_t)raw[0] | (uint32_t)raw[1] << 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	clock_set_now(0);
	if (!setup()) {
		fprintf(stderr, "setup failed %d\n", (int)netback_state(&nb));
		return 0;
	}
	uint32_t tx_prod = 0, rx_prod = 0;
	size_t i = 0;
	while (i + 13 <= len) {
		uint8_t op = in[i];
		const uint8_t *a = in + i + 1; /* 12 argument bytes */
		i += 13;
		switch (op % 11) {
		case 0:
		case 1:
		case 2: { /* a TX request */
			union netif_tx_slot *s = &tx->ring[tx_prod++ & 255];
			s->req.gref = pick_gref(a[0], a + 1);
			s->req.offset = (uint16_t)(a[3] | a[4] << 8) & (a[5] & 1 ? 0xffff : 0xfff);
			s->req.flags = a[6] & 0xf;
			s->req.id = (uint16_t)(a[7] | a[8] << 8);
			s->req.size = (uint16_t)(a[9] | a[10] << 8);
			break;
		}
		case 3: { /* an extra-info slot */
			union netif_tx_slot *s = &tx->ring[tx_prod++ & 255];
			memcpy(s->raw, a, 12);
			s->extra.type = a[0] % 6;
			s->extra.flags = a[1] & 1;
			break;
		}
		case 4: /* publish */
			__atomic_store_n(&tx->hdr.req_prod, tx_prod, __ATOMIC_RELEASE);
			netback_event(&nb);
			netback_poll(&nb, a[0]);
			break;
		case 5: { /* wild producer index */
			uint32_t v;
			memcpy(&v, a, 4);
			if (a[4] & 1)
				__atomic_store_n(&tx->hdr.req_prod, v, __ATOMIC_RELEASE);
			else
				__atomic_store_n(&rx->hdr.req_prod, v, __ATOMIC_RELEASE);
			netback_poll(&nb, 0);
			break;
		}
		case 6: { /* RX requests */
			for (int k = 0; k < (a[0] & 7) + 1; k++) {
				union netif_rx_slot *s = &rx->ring[rx_prod++ & 255];
				s->req.id = (uint16_t)(a[1] + k);
				s->req.gref = pick_gref(a[2 + (k & 3)], a + 8);
			}
			__atomic_store_n(&rx->hdr.req_prod, rx_prod, __ATOMIC_RELEASE);
			break;
		}
		case 7: { /* transmit to the client */
			size_t n = (size_t)(a[0] | a[1] << 8 | (a[2] & 1) << 16);
			if (n > sizeof(frame))
				n = sizeof(frame);
			(void)netback_transmit(&nb, frame + (a[3] & 7), n);
			break;
		}
		case 8: { /* xenbus state changes */
			char v[4];
			snprintf(v, sizeof(v), "%u", (unsigned)(a[0] % 9));
			if (a[1] & 1)
				w("state", v);
			else
				fake_xsd_write(a[1] & 2 ? "/local/domain/1/backend/vif/2/0/state"
							: "/local/domain/1/backend/vif/2/0/online",
					       a[1] & 2 ? v : (a[0] & 1 ? "1" : "0"));
			pump(a[2] & 7);
			break;
		}
		case 9: /* time passes (the removal delay, among others) */
			clock_set_now(clock_now() + (uint64_t)a[0] * 100 * NS_PER_MS);
			pump(1);
			break;
		default:
			pump(1);
			break;
		}
		if (netback_state(&nb) == NETDEV_FAILED) {
			hv_port_t p;
			ASSERT(fake_hv_mappings_in_use() == 0);
			ASSERT(!netback_port(&nb, &p));
		}
	}
	netback_stop(&nb);
	pump(4);
	ASSERT(netback_state(&nb) == NETDEV_CLOSED);
	ASSERT(fake_hv_mappings_in_use() == 0);
	ASSERT(xs_watch_count(&xs_fw) == 0);
	return 0;
}
