/* pvh_app.c — see pvh_app.h: app/platform.h on Xen and the event loop.
 *
 * XenStore: one ring, one client — the application's. The platform's own
 * requests (vchan rendezvous keys, control/shutdown, feature keys, domid)
 * go through that client, obtained with app_xenstore() (app/app.h).
 * Rendezvous reads are asynchronous: a vchan client is
 * attached from the read callback once both keys are known.
 *
 * Must never: block outside evtchn_block(), write memory/meminfo (spec
 * §9.4), allocate after app_init, reuse a device slot before its netback
 * reported CLOSED, or let a data channel that never connects live forever
 * (DATA_TIMEOUT_NS). */
#include "pvh/pvh_app.h"

#include "app/app.h"
#include "app/platform.h"
#include "base/arena.h"
#include "base/clock.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"
#include "pvh/console.h"
#include "pvh/cpu.h"
#include "pvh/evtchn.h"
#include "pvh/hv_xen.h"
#include "pvh/mem.h"
#include "pvh/platform.h"
#include "pvh/time.h"
#include "xen/netback.h"
#include "xen/netfront.h"
#include "xen/vchan.h"
#include "xen/xenstore.h"
#include "xen/xs_ring.h"

#define PENDING_CAP 64u
#define MAX_CLIENT_DEVS 32u
#define DATA_VCHANS 4u
#define DEVICE_BUDGET 64u
#define DATA_TIMEOUT_NS (10ull * NS_PER_SEC)
#define KEY_RETRY_NS (50ull * NS_PER_MS)
#define QREXEC_RETRY_NS (1ull * NS_PER_SEC)
#define QUARANTINE_RETRY_NS (10ull * NS_PER_SEC)
#define SHUTDOWN_ACK_WAIT_NS (1ull * NS_PER_SEC)
#define PVH_XS_OWNER 0x50564800u /* "PVH\0": our watches in the app's client */
#define QUBESDB_PORT 111u
#define QREXEC_PORT 512u
/* libxenvchan sizes the Qubes qrexec agent asks for (spec qubes-protocols §1.3). */
#define QREXEC_RING_MIN 4096u

/* ---- vchan clients whose keys are read asynchronously ---------------------- */

enum rv_state {
	RV_FREE = 0,
	RV_WAIT,      /* keys to be (re)read at retry_at */
	RV_READING,   /* two xs_read_str in flight */
	RV_CONNECTED,
	RV_FAILED,    /* data channel: gave up; the stream reads STREAM_CLOSED */
	RV_ABANDONED, /* closed by its user while reads were in flight */
};

struct rendezvous {
	uint8_t state;
	bool data;        /* qrexec data channel: times out, does not retry forever */
	bool handed;      /* QubesDB: stream given to the app */
	bool read_failed;
	uint8_t reads_left;
	hv_domid_t server;
	uint32_t port;
	uint64_t retry_at, deadline;
	char ref[16], evt[16];
	struct vchan v;
};

enum dev_state {
	DEV_FREE = 0,
	DEV_ACTIVE,
	DEV_STOPPING, /* netback_stop ran; waiting for CLOSED */
};

struct client_dev {
	uint8_t state;
	bool closed_pending; /* netback reported CLOSED: tell the app after the step */
	uint32_t cookie;
	struct netback nb;
};

static struct {
	struct app *app;
	uint64_t now;
	/* XenStore ring */
	struct xs_ring_page *store_page;
	evtchn_port_t store_port;
	struct xs_ring store;
	/* our XenStore business */
	bool xs_setup;
	xs_watch_id shutdown_watch;
	bool shutdown_busy, shutdown_reread;
	char shutdown_val[32];
	bool suspend_logged;
	bool stop_requested, stop_acked;
	uint32_t stop_reason;
	uint64_t stop_at;
	bool domid_busy;
	char domid_val[16];
	/* vchans */
	struct rendezvous qdb;
	struct rendezvous data[DATA_VCHANS];
	struct vchan qrexec;
	bool qrexec_handed;
	uint64_t qrexec_next_try;
	uint64_t next_quarantine;
	/* devices */
	struct client_dev *clients;
} pv;

static struct xs_client *app_xs(void)
{
	struct xs_client *c;

	if (pv.app == NULL)
		return NULL;
	c = app_xenstore(pv.app);
	return c != NULL && xs_client_is_open(c) ? c : NULL;
}

/* ---- XenStore ring ----------------------------------------------------------- */

static void store_notify(void *ctx)
{
	(void)ctx;
	(void)hypercall_evtchn_send(pv.store_port);
}

static void store_init(void)
{
	uint64_t pfn = 0, port = 0;
	long rc1 = hypercall_hvm_get_param(HVM_PARAM_STORE_PFN, &pfn);
	long rc2 = hypercall_hvm_get_param(HVM_PARAM_STORE_EVTCHN, &port);

	if (rc1 != 0 || rc2 != 0 || pfn == 0 || pfn >= (1ull << 20) || port == 0 ||
	    port >= EVTCHN_2L_NR_CHANNELS) {
		log_error("xenstore: no ring (STORE_PFN 0x%llx rc %ld, STORE_EVTCHN %llu rc %ld)",
			  (unsigned long long)pfn, rc1, (unsigned long long)port, rc2);
		return;
	}
	pv.store_page = cpu_phys(pfn << 12);
	pv.store_port = (evtchn_port_t)port;
	evtchn_unmask(pv.store_port);
	log_info("xenstore: ring at 0x%llx, event channel %u", (unsigned long long)(pfn << 12),
		 (unsigned)pv.store_port);
}

bool platform_xenstore_connect(struct stream *out)
{
	if (pv.store_page == NULL)
		return false;
	if (xs_ring_attach(&pv.store, pv.store_page, store_notify, NULL) != XS_RING_OK)
		return false;
	*out = xs_ring_stream(&pv.store);
	return true;
}

/* ---- our XenStore keys: shutdown, features, domid ------------------------------ */

static void request_stop(uint32_t reason, const char *what);

static void on_shutdown_acked(void *ctx, enum xs_status st, const char *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	if (st != XS_OK)
		log_warn("shutdown: acknowledging failed (%s); stopping anyway", xs_status_name(st));
	pv.stop_acked = true;
}

static void read_shutdown(void);

static void on_shutdown_read(void *ctx, enum xs_status st)
{
	const char *v = pv.shutdown_val;

	(void)ctx;
	pv.shutdown_busy = false;
	if (st == XS_OK && !pv.stop_requested) {
		if (strcmp(v, "poweroff") == 0 || strcmp(v, "halt") == 0)
			request_stop(SHUTDOWN_poweroff, v);
		else if (strcmp(v, "reboot") == 0)
			request_stop(SHUTDOWN_reboot, v);
		else if (strcmp(v, "suspend") == 0) {
			/* As the mirage firewall: not acknowledged, so the toolstack
			 * times out and cancels (spec §10, §13). */
			if (!pv.suspend_logged)
				log_warn("shutdown: suspend requested but not supported; ignored");
			pv.suspend_logged = true;
		} else if (v[0] != '\0') {
			log_warn("shutdown: unknown request \"%s\" ignored", v);
		}
	} else if (st != XS_OK && st != XS_ENOENT && st != XS_ERR_CLOSED) {
		log_warn("shutdown: reading control/shutdown failed (%s)", xs_status_name(st));
	}
	if (pv.shutdown_reread) {
		pv.shutdown_reread = false;
		read_shutdown();
	}
}

static void read_shutdown(void)
{
	struct xs_client *c = app_xs();

	if (c == NULL)
		return;
	if (pv.shutdown_busy) {
		pv.shutdown_reread = true;
		return;
	}
	if (xs_read_str(c, "control/shutdown", pv.shutdown_val, sizeof(pv.shutdown_val),
			on_shutdown_read, NULL) == XS_OK)
		pv.shutdown_busy = true;
	else
		pv.shutdown_reread = true; /* busy client: the next loop retries */
}

static void on_shutdown_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)ctx;
	(void)id;
	(void)path;
	(void)len;
	read_shutdown();
}

static void request_stop(uint32_t reason, const char *what)
{
	struct xs_client *c = app_xs();

	log_info("shutdown: dom0 asked for %s", what);
	pv.stop_requested = true;
	pv.stop_reason = reason;
	pv.stop_at = pv.now + SHUTDOWN_ACK_WAIT_NS;
	/* Acknowledge by clearing the node (spec §10). */
	if (c == NULL || xs_write_str(c, "control/shutdown", "", on_shutdown_acked, NULL) != XS_OK)
		pv.stop_acked = true;
}

static void on_domid_read(void *ctx, enum xs_status st)
{
	uint64_t d;

	(void)ctx;
	pv.domid_busy = false;
	if (st == XS_OK && xs_parse_uint(pv.domid_val, strlen(pv.domid_val), 0x7fef, &d)) {
		hv_xen_set_domid((uint16_t)d);
		log_info("xenstore: our domid is %u", (unsigned)d);
	} else if (st != XS_ERR_CLOSED) {
		log_warn("xenstore: cannot read our domid (%s)", xs_status_name(st));
	}
}

/* Once per connection of the app's client: the feature keys (spec §10;
 * failures only logged: the parent may be read-only), the shutdown watch
 * (kept across reconnects by the client), our domid if CPUID had none. */
static void xs_housekeeping(void)
{
	struct xs_client *c = app_xs();

	if (c == NULL) {
		pv.xs_setup = false;
		return;
	}
	if (!hv_xen_domid_known() && !pv.domid_busy &&
	    xs_read_str(c, "domid", pv.domid_val, sizeof(pv.domid_val), on_domid_read, NULL) ==
		    XS_OK)
		pv.domid_busy = true;
	if (pv.shutdown_reread && !pv.shutdown_busy) {
		pv.shutdown_reread = false;
		read_shutdown();
	}
	if (pv.xs_setup)
		return;
	if (pv.shutdown_watch == 0 &&
	    xs_watch_add(c, PVH_XS_OWNER, "control/shutdown", on_shutdown_watch, NULL,
			 &pv.shutdown_watch) != XS_OK) {
		pv.shutdown_watch = 0;
		return; /* table full or busy: next loop */
	}
	if (xs_write_str(c, "control/feature-poweroff", "1", NULL, NULL) != XS_OK ||
	    xs_write_str(c, "control/feature-reboot", "1", NULL, NULL) != XS_OK)
		return;
	pv.xs_setup = true;
}

/* ---- vchan clients ------------------------------------------------------------ */

static void rv_reads_done(struct rendezvous *r)
{
	uint64_t ref, evt;
	enum vchan_result res;

	if (r->state == RV_ABANDONED) {
		r->state = RV_FREE;
		return;
	}
	if (r->read_failed) {
		/* Not published yet (or XenStore busy): read again soon. */
		r->state = RV_WAIT;
		r->retry_at = pv.now + KEY_RETRY_NS;
		return;
	}
	if (!xs_parse_uint(r->ref, strlen(r->ref), UINT32_MAX, &ref) || ref == 0 ||
	    !xs_parse_uint(r->evt, strlen(r->evt), UINT32_MAX, &evt) || evt == 0) {
		log_warn("vchan: dom%u port %u published a bad ring-ref/event-channel",
			 (unsigned)r->server, (unsigned)r->port);
		r->state = r->data ? RV_FAILED : RV_WAIT;
		r->retry_at = pv.now + KEY_RETRY_NS;
		return;
	}
	res = vchan_client_attach(&r->v, r->server, r->port, (hv_gref_t)ref, (hv_port_t)evt);
	if (res == VCHAN_OK) {
		r->state = RV_CONNECTED;
		log_debug("vchan: connected to dom%u port %u", (unsigned)r->server,
			  (unsigned)r->port);
		return;
	}
	/* Stale keys of a server that went away, or a hostile page (logged by
	 * vchan): QubesDB tries again later, a data channel gives up. */
	r->state = r->data ? RV_FAILED : RV_WAIT;
	r->retry_at = pv.now + 10 * KEY_RETRY_NS;
}

static void on_rv_read(void *ctx, enum xs_status st)
{
	struct rendezvous *r = ctx;

	if (st != XS_OK)
		r->read_failed = true;
	if (r->reads_left > 0 && --r->reads_left == 0)
		rv_reads_done(r);
}

/* Issues the two reads of the server's keys (spec qubes-protocols §1.4). */
static void rv_issue(struct rendezvous *r)
{
	struct xs_client *c = app_xs();
	char path[96];
	size_t len;

	if (c == NULL || !hv_xen_domid_known()) {
		r->retry_at = pv.now + KEY_RETRY_NS;
		return;
	}
	fmt_snprintf(path, sizeof(path), "/local/domain/%u/data/vchan/%u/%u/ring-ref",
		     (unsigned)r->server, (unsigned)hv_domid(), (unsigned)r->port);
	r->read_failed = false;
	r->reads_left = 0;
	if (xs_read_str(c, path, r->ref, sizeof(r->ref), on_rv_read, r) != XS_OK) {
		r->retry_at = pv.now + KEY_RETRY_NS;
		return;
	}
	r->reads_left = 1;
	r->state = RV_READING;
	len = strlen(path);
	fmt_snprintf(path + len - strlen("ring-ref"), sizeof(path) - (len - strlen("ring-ref")),
		     "event-channel");
	if (xs_read_str(c, path, r->evt, sizeof(r->evt), on_rv_read, r) == XS_OK)
		r->reads_left++;
	else
		r->read_failed = true; /* the first read's completion retries */
}

static void rv_begin(struct rendezvous *r, hv_domid_t server, uint32_t port, bool data)
{
	memset(r, 0, sizeof(*r));
	r->state = RV_WAIT;
	r->data = data;
	r->server = server;
	r->port = port;
	r->deadline = pv.now + DATA_TIMEOUT_NS;
	rv_issue(r);
}

static void rv_poll(struct rendezvous *r)
{
	switch (r->state) {
	case RV_WAIT:
		if (r->data && pv.now >= r->deadline) {
			log_warn("vchan: dom%u port %u did not appear in time; giving up",
				 (unsigned)r->server, (unsigned)r->port);
			r->state = RV_FAILED;
		} else if (pv.now >= r->retry_at) {
			rv_issue(r);
		}
		break;
	case RV_CONNECTED:
		(void)vchan_poll(&r->v);
		break;
	default:
		break;
	}
}

static int rv_read(void *ctx, void *buf, size_t len)
{
	struct rendezvous *r = ctx;

	if (r->state == RV_CONNECTED)
		return vchan_read(&r->v, buf, len);
	return r->state == RV_FAILED || r->state == RV_FREE ? STREAM_CLOSED : 0;
}

static int rv_write(void *ctx, const void *buf, size_t len)
{
	struct rendezvous *r = ctx;

	if (r->state == RV_CONNECTED)
		return vchan_write(&r->v, buf, len);
	return r->state == RV_FAILED || r->state == RV_FREE ? STREAM_CLOSED : 0;
}

static size_t rv_write_space(void *ctx)
{
	struct rendezvous *r = ctx;

	return r->state == RV_CONNECTED ? vchan_write_space(&r->v) : 0;
}

static void rv_close(void *ctx)
{
	struct rendezvous *r = ctx;

	if (r->state == RV_CONNECTED)
		vchan_close(&r->v);
	/* Reads in flight still write into r->ref/evt: keep the slot. */
	r->state = r->state == RV_READING ? RV_ABANDONED : RV_FREE;
	r->handed = false;
}

static const struct stream_ops rv_stream_ops = {
	.read = rv_read,
	.write = rv_write,
	.write_space = rv_write_space,
	.close = rv_close,
};

bool platform_qubesdb_connect(struct stream *out)
{
	struct rendezvous *r = &pv.qdb;

	if (r->state == RV_FREE) {
		if (app_xs() == NULL || !hv_xen_domid_known())
			return false;
		rv_begin(r, 0, QUBESDB_PORT, false);
	}
	if (r->state != RV_CONNECTED || r->handed)
		return false;
	r->handed = true;
	out->ops = &rv_stream_ops;
	out->ctx = r;
	log_info("qubesdb: vchan to dom0 port %u connected", QUBESDB_PORT);
	return true;
}

bool platform_vchan_connect(uint32_t domid, uint32_t port, struct stream *out)
{
	if (domid > 0x7fefu || app_xs() == NULL || !hv_xen_domid_known())
		return false;
	for (size_t i = 0; i < DATA_VCHANS; i++) {
		struct rendezvous *r = &pv.data[i];
		if (r->state != RV_FREE)
			continue;
		/* The stream is handed out now; it reads 0 until the vchan is
		 * up and STREAM_CLOSED if it never comes (DATA_TIMEOUT_NS). */
		rv_begin(r, (hv_domid_t)domid, port, true);
		r->handed = true;
		out->ops = &rv_stream_ops;
		out->ctx = r;
		return true;
	}
	log_warn("vchan: no free data channel for dom%u port %u", (unsigned)domid, (unsigned)port);
	return false;
}

/* ---- the qrexec agent's server vchan ------------------------------------------- */

static bool xs_adapter_write(void *ctx, const char *path, const char *value, hv_domid_t reader)
{
	struct xs_client *c = app_xs();

	(void)ctx;
	/* Permissions: the keys inherit those of our data/ directory (owner
	 * us, nobody else but dom0, which reads everything), which is what
	 * n<us> r<reader> gives for the only reader we serve, dom0. A reader
	 * other than dom0 would need XS_SET_PERMS, which the client lacks. */
	if (reader != 0)
		return false;
	return c != NULL && xs_write_str(c, path, value, NULL, NULL) == XS_OK;
}

static bool xs_adapter_remove(void *ctx, const char *path)
{
	struct xs_client *c = app_xs();

	(void)ctx;
	return c != NULL && xs_rm(c, path, NULL, NULL) == XS_OK;
}

bool platform_qrexec_accept(struct stream *out)
{
	static const struct vchan_xs adapter = {
		.ctx = NULL, .write = xs_adapter_write, .read = NULL, .remove = xs_adapter_remove,
	};
	enum vchan_result res;

	if (vchan_get_state(&pv.qrexec) == VCHAN_STATE_IDLE) {
		pv.qrexec_handed = false;
		if (app_xs() == NULL || !hv_xen_domid_known() || pv.now < pv.qrexec_next_try)
			return false;
		pv.qrexec_next_try = pv.now + QREXEC_RETRY_NS;
		res = vchan_server_init(&pv.qrexec, 0, QREXEC_PORT, QREXEC_RING_MIN, QREXEC_RING_MIN,
					&adapter);
		if (res != VCHAN_OK) {
			log_warn("qrexec: cannot offer the vchan to dom0 (%d); retrying", (int)res);
			return false;
		}
		log_info("qrexec: waiting for dom0 on vchan port %u", QREXEC_PORT);
	}
	if (pv.qrexec_handed || vchan_poll(&pv.qrexec) != VCHAN_STATE_CONNECTED)
		return false;
	pv.qrexec_handed = true;
	*out = vchan_stream(&pv.qrexec);
	return true;
}

/* ---- client vifs (xen/netback) ---------------------------------------------------- */

static void client_rx(void *ctx, uint8_t *frame, size_t len, uint32_t flags)
{
	const struct client_dev *d = ctx;

	if (d->state == DEV_ACTIVE)
		app_client_frame(pv.app, d->cookie, frame, len, flags, pv.now);
}

static void client_state(void *ctx, enum netdev_state st)
{
	struct client_dev *d = ctx;

	if (st == NETDEV_CLOSED && d->state == DEV_ACTIVE)
		d->closed_pending = true; /* reported after the app's step */
}

int platform_client_open(uint32_t domid, uint32_t devid, const char *backend_path,
			 struct xs_client *xs, uint32_t cookie)
{
	for (uint32_t i = 0; i < MAX_CLIENT_DEVS; i++) {
		struct client_dev *d = &pv.clients[i];
		struct netdev_callbacks cb = { .rx = client_rx, .state = client_state, .ctx = d };
		if (d->state != DEV_FREE)
			continue;
		d->closed_pending = false;
		d->cookie = cookie;
		if (domid > 0x7fefu || !netback_start(&d->nb, xs, backend_path, (hv_domid_t)domid, &cb)) {
			log_warn("client %u.%u: netback refused %s", (unsigned)domid, (unsigned)devid,
				 backend_path);
			return -1;
		}
		d->state = DEV_ACTIVE;
		return (int)i;
	}
	log_warn("client %u.%u: no free device slot", (unsigned)domid, (unsigned)devid);
	return -1;
}

void platform_client_close(int dev)
{
	struct client_dev *d;

	if (dev < 0 || (uint32_t)dev >= MAX_CLIENT_DEVS)
		return;
	d = &pv.clients[dev];
	if (d->state != DEV_ACTIVE)
		return;
	d->closed_pending = false;
	netback_stop(&d->nb);
	d->state = netback_state(&d->nb) == NETDEV_CLOSED ? DEV_FREE : DEV_STOPPING;
}

bool platform_client_transmit(void *ctx, const uint8_t *frame, size_t len)
{
	intptr_t dev = (intptr_t)ctx;

	if (dev < 0 || (uintptr_t)dev >= MAX_CLIENT_DEVS || pv.clients[dev].state != DEV_ACTIVE)
		return false;
	return netback_transmit(&pv.clients[dev].nb, frame, len);
}

static void clients_event(hv_port_t port)
{
	for (uint32_t i = 0; i < MAX_CLIENT_DEVS; i++) {
		struct client_dev *d = &pv.clients[i];
		hv_port_t p;
		if (d->state != DEV_FREE && netback_port(&d->nb, &p) && p == port) {
			netback_event(&d->nb);
			return;
		}
	}
}

static bool clients_poll(void)
{
	bool more = false;

	for (uint32_t i = 0; i < MAX_CLIENT_DEVS; i++) {
		struct client_dev *d = &pv.clients[i];
		if (d->state == DEV_FREE)
			continue;
		more |= netback_poll(&d->nb, DEVICE_BUDGET);
		if (d->state == DEV_STOPPING && netback_state(&d->nb) == NETDEV_CLOSED)
			d->state = DEV_FREE;
	}
	return more;
}

/* Closed devices are reported outside the app's step (platform.h). */
static void clients_report_closed(void)
{
	for (uint32_t i = 0; i < MAX_CLIENT_DEVS; i++) {
		struct client_dev *d = &pv.clients[i];
		if (d->state == DEV_ACTIVE && d->closed_pending) {
			d->closed_pending = false;
			app_client_closed(pv.app, d->cookie);
			if (d->state == DEV_ACTIVE) {
				/* The app did not release it (not active there). */
				d->state = DEV_FREE;
			}
		}
	}
}

/* ---- the uplink (xen/netfront) ------------------------------------------------------ */

/* netfront is asynchronous, platform_uplink_open is asked again until it can
 * answer: the first call starts the handshake, later ones report the MAC
 * and MTU once connected. A netvm that goes away (backend closing) is
 * reported to the app after its step, like a closing client; the app then
 * closes and reopens, which starts a new handshake on device/vif/0 when the
 * toolstack gives us a new uplink. */
static struct {
	struct netfront nf;
	bool started;
	bool lost_pending;
} up;

static void uplink_rx(void *ctx, uint8_t *frame, size_t len, uint32_t flags)
{
	(void)ctx;
	app_uplink_frame(pv.app, frame, len, flags, pv.now);
}

static void uplink_state(void *ctx, enum netdev_state st)
{
	(void)ctx;
	if (st == NETDEV_CLOSING || st == NETDEV_CLOSED || st == NETDEV_FAILED)
		up.lost_pending = true;
}

bool platform_uplink_open(struct xs_client *xs, uint8_t mac[6], uint16_t *mtu)
{
	if (up.started && netfront_state(&up.nf) == NETDEV_CLOSED)
		up.started = false;
	if (!up.started) {
		struct netdev_callbacks cb = {.rx = uplink_rx, .state = uplink_state, .ctx = NULL};
		if (!netfront_start(&up.nf, xs, "device/vif/0", &cb))
			return false;
		up.started = true;
		up.lost_pending = false;
		return false;
	}
	if (netfront_state(&up.nf) != NETDEV_CONNECTED)
		return false;
	memcpy(mac, netfront_mac(&up.nf), 6);
	*mtu = netfront_mtu(&up.nf);
	return true;
}

void platform_uplink_close(void)
{
	if (up.started && netfront_state(&up.nf) != NETDEV_CLOSED)
		netfront_stop(&up.nf);
}

bool platform_uplink_transmit(void *ctx, const uint8_t *frame, size_t len)
{
	(void)ctx;
	return up.started && netfront_transmit(&up.nf, frame, len);
}

static bool uplink_event(hv_port_t port)
{
	hv_port_t p;
	if (!up.started || !netfront_port(&up.nf, &p) || p != port)
		return false;
	netfront_event(&up.nf);
	return true;
}

static bool uplink_poll(void)
{
	return up.started && netfront_poll(&up.nf, DEVICE_BUDGET);
}

static void uplink_report_lost(void)
{
	if (up.lost_pending) {
		up.lost_pending = false;
		app_uplink_lost(pv.app);
	}
}

/* ---- console ----------------------------------------------------------------------- */

void platform_console_line(const char *line, size_t len)
{
	console_write(line, len);
	console_write("\n", 1);
}

/* ---- the loop ------------------------------------------------------------------------- */

static void dispatch_events(const hv_port_t *ports, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* XenStore, vchans and the timer need nothing here: their
		 * protocols are polled on every step. */
		if (ports[i] != pv.store_port && ports[i] != evtchn_timer_port() &&
		    !uplink_event(ports[i]))
			clients_event(ports[i]);
	}
}

static uint64_t own_deadline(uint64_t d)
{
	if (pv.qdb.state == RV_WAIT)
		d = MIN(d, pv.qdb.retry_at);
	for (size_t i = 0; i < DATA_VCHANS; i++)
		if (pv.data[i].state == RV_WAIT)
			d = MIN(d, MIN(pv.data[i].retry_at, pv.data[i].deadline));
	if (pv.stop_requested)
		d = MIN(d, pv.stop_at);
	if (pv.shutdown_reread || !pv.xs_setup)
		d = MIN(d, pv.now + KEY_RETRY_NS);
	return d;
}

static void stop_everything(void)
{
	platform_uplink_close();
	for (size_t i = 0; i < DATA_VCHANS; i++)
		if (pv.data[i].state == RV_CONNECTED)
			vchan_close(&pv.data[i].v);
	if (pv.qdb.state == RV_CONNECTED)
		vchan_close(&pv.qdb.v);
	vchan_close(&pv.qrexec);
	app_flush_log();
}

uint32_t pvh_app_run(const struct cmdline *options, const struct xen_info *xen)
{
	struct app_config cfg;
	struct arena *ar = mem_arena();
	hv_port_t ports[PENDING_CAP];
	size_t need;

	memset(&pv, 0, sizeof(pv));
	memset(&cfg, 0, sizeof(cfg));
	cfg.cmdline = *options;
	cfg.max_clients = MAX_CLIENT_DEVS;
	pv.now = time_now_ns();
	if (!hv_xen_init(ar, xen->has_domid, xen->domid))
		panic("hv: no memory for the %u-page I/O pool", HV_XEN_POOL_PAGES);
	netfront_init(&up.nf);
	pv.clients = arena_alloc(ar, sizeof(struct client_dev) * MAX_CLIENT_DEVS, 64);
	if (pv.clients == NULL)
		panic("no memory for %u client devices", MAX_CLIENT_DEVS);
	store_init();
	need = app_memory_needed(&cfg);
	pv.app = app_init(ar, &cfg);
	if (pv.app == NULL)
		panic("the firewall needs %zu KiB more than the %zu KiB left", need / 1024,
		      (ar->size - ar->used) / 1024);
	arena_seal(ar);
	log_info("mem: %zu KiB of %zu KiB used at start-up (I/O pool %u KiB, devices %zu KiB)",
		 arena_used(ar) / 1024, ar->size / 1024, HV_XEN_POOL_PAGES * 4u,
		 sizeof(struct client_dev) * MAX_CLIENT_DEVS / 1024);
	/* /qubes-random-seed is mixed in by the application on each QubesDB
	 * sync (app.c). */

	for (;;) {
		size_t n;
		bool more;

		pv.now = time_now_ns();
		clock_set_now(pv.now);
		n = hv_evtchn_take_pending(ports, PENDING_CAP);
		dispatch_events(ports, n);
		more = n == PENDING_CAP; /* more may be pending: do not sleep */
		more |= clients_poll();
		more |= uplink_poll();
		xs_housekeeping();
		rv_poll(&pv.qdb);
		for (size_t i = 0; i < DATA_VCHANS; i++)
			rv_poll(&pv.data[i]);
		more |= app_step(pv.app, pv.now);
		/* Devices advance their XenStore handshakes after the replies
		 * the step just read. */
		more |= clients_poll();
		more |= uplink_poll();
		clients_report_closed();
		uplink_report_lost();
		if (pv.now >= pv.next_quarantine) {
			pv.next_quarantine = pv.now + QUARANTINE_RETRY_NS;
			(void)vchan_quarantine_retry();
		}
		platform_drain_log();
		if (pv.stop_requested && (pv.stop_acked || pv.now >= pv.stop_at))
			break;
		if (!more) {
			uint64_t now = time_now_ns();
			pv.now = now;
			evtchn_block(own_deadline(app_next_deadline(pv.app, now)));
		}
	}
	stop_everything();
	platform_drain_log();
	return pv.stop_reason;
}
