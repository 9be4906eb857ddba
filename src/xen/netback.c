/* netback.c — one client vif: xenbus state machine, TX ring (client →
 * us) and RX ring (us → client) by batched grant copy.
 *
 * Spec: xen-platform.md §8.1-8.4, §8.6, §8.7; qubes-protocols.md §5.3-5.6.
 * XenStore work is one request at a time per vif (a tiny sequencer driven
 * from the reply callbacks and netback_poll), so a vif whose frontend never
 * completes only ever waits on its own watches and blocks nobody.
 *
 * Must never: re-read a ring slot after copying it, hand a gref/offset/len
 * from the frontend to anything but hv_grant_copy after checking it, keep a
 * mapping or event channel after teardown, write state 5 (so that a 5 read
 * back is always the toolstack's removal request), or report CLOSED while a
 * XenStore callback of this vif can still run. */
#include "xen/netback.h"

#include "base/clock.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"

enum phase {
	PH_IDLE = 0,
	PH_READ_FRONTEND, /* reading <be>/frontend */
	PH_INITWAIT_TX,   /* transaction: features + state 2 */
	PH_READ_MAC,      /* reading <fe>/mac */
	PH_WAIT_FE,       /* InitWait written: waiting for the frontend */
	PH_READ_RING,     /* reading the frontend's ring keys (step = key index) */
	PH_CONNECTED,
	PH_FE_CLOSED,     /* frontend closed; the toolstack keeps the vif */
	PH_FAILED,        /* hostile frontend: rings gone, waiting for removal */
	PH_REMOVING,      /* toolstack removal: write 6, rm the directory */
	PH_STOPPING,      /* waiting for outstanding requests, then CLOSED */
	PH_DONE,
};

/* Sub-steps of reading the frontend's or our own state. */
enum check {
	CHECK_NONE = 0,
	CHECK_BE_ONLINE,
	CHECK_BE_STATE,
	CHECK_FE_STATE,
};

enum xb_state {
	XB_UNKNOWN = 0,
	XB_INITIALISING = 1,
	XB_INITWAIT = 2,
	XB_INITIALISED = 3,
	XB_CONNECTED = 4,
	XB_CLOSING = 5,
	XB_CLOSED = 6,
};

/* Frontend keys read on connect, in order. */
enum ring_key {
	RK_TX_REF = 0,
	RK_RX_REF,
	RK_EVTCHN,
	RK_RX_COPY,
	RK_SG,
	RK_QUEUES,
	RK_MTU,
	RK_COUNT,
};

static const char *const ring_key_names[RK_COUNT] = {
	"tx-ring-ref",	"rx-ring-ref", "event-channel", "request-rx-copy",
	"feature-sg",	"multi-queue-num-queues", "mtu",
};

static uint32_t next_owner;

static void drive(struct netback *nb);

/* ---- small helpers ---------------------------------------------------------- */

static void set_state(struct netback *nb, enum netdev_state st)
{
	if (nb->state == st)
		return;
	nb->state = st;
	if (nb->cb.state != NULL)
		nb->cb.state(nb->cb.ctx, st);
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (!xs_parse_uint(s, strlen(s), max, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Builds "<base>/<leaf>" into nb->key; false when it does not fit. */
static bool make_key(struct netback *nb, const char *base, const char *leaf)
{
	int n = fmt_snprintf(nb->key, sizeof(nb->key), "%s/%s", base, leaf);
	return n > 0 && (size_t)n < sizeof(nb->key);
}

static void teardown_rings(struct netback *nb)
{
	if (nb->bound) {
		hv_evtchn_close(nb->port);
		nb->bound = false;
	}
	if (nb->tx != NULL) {
		hv_unmap_grants(nb->tx, 1);
		nb->tx = NULL;
	}
	if (nb->rx != NULL) {
		hv_unmap_grants(nb->rx, 1);
		nb->rx = NULL;
	}
}

/* A protocol violation by the frontend: this vif only is disconnected. */
static void fail(struct netback *nb, const char *why, uint32_t a, uint32_t b)
{
	if (nb->phase == PH_FAILED || nb->phase == PH_REMOVING || nb->phase == PH_STOPPING ||
	    nb->phase == PH_DONE)
		return;
	log_warn("netback %s: frontend dom%u misbehaved: %s (%u, %u); vif disconnected", nb->be,
		 (unsigned)nb->fe_domid, why, (unsigned)a, (unsigned)b);
	teardown_rings(nb);
	nb->phase = PH_FAILED;
	nb->want_state = XB_CLOSED;
	set_state(nb, NETDEV_FAILED);
}

static void finish(struct netback *nb)
{
	teardown_rings(nb);
	if (nb->watches) {
		xs_watch_remove_owner(nb->xs, nb->owner);
		nb->watches = false;
	}
	nb->phase = nb->xs_busy ? PH_STOPPING : PH_DONE;
	if (nb->phase == PH_DONE)
		set_state(nb, NETDEV_CLOSED);
}

/* ---- XenStore callbacks ---------------------------------------------------- */

static void on_fe_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)id;
	(void)path;
	(void)len;
	struct netback *nb = ctx;
	nb->fe_dirty = true;
	drive(nb);
}

static void on_be_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)id;
	struct netback *nb = ctx;
	size_t bl = strlen(nb->be);
	/* Only the directory itself (removed) and our state/online keys matter:
	 * the writes of our own feature keys fire this watch too. */
	if (len == bl || (len > bl && path[bl] == '/' &&
			  (!strcmp(path + bl + 1, "state") || !strcmp(path + bl + 1, "online")))) {
		nb->be_dirty = true;
		drive(nb);
	}
}

static bool add_watches(struct netback *nb)
{
	xs_watch_id w;
	char fe_state[NETBACK_KEY_MAX];
	int n = fmt_snprintf(fe_state, sizeof(fe_state), "%s/state", nb->fe);
	if (n <= 0 || (size_t)n >= sizeof(fe_state) ||
	    (size_t)n >= XS_WATCH_PATH_MAX)
		return false;
	if (xs_watch_add(nb->xs, nb->owner, nb->be, on_be_watch, nb, &w) != XS_OK)
		return false;
	nb->watches = true;
	return xs_watch_add(nb->xs, nb->owner, fe_state, on_fe_watch, nb, &w) == XS_OK;
}

/* Completion of every request: the sequencer moves on. */
static void after_request(struct netback *nb)
{
	nb->xs_busy = false;
	if (nb->phase == PH_STOPPING) {
		nb->phase = PH_DONE;
		set_state(nb, NETDEV_CLOSED);
		return;
	}
	drive(nb);
}

static void handle_fe_state(struct netback *nb, enum xs_status st);
static void handle_be_check(struct netback *nb, enum xs_status st, bool online_step);
static void handle_ring_key(struct netback *nb, enum xs_status st);

static void on_read_done(void *ctx, enum xs_status st)
{
	struct netback *nb = ctx;
	nb->xs_busy = false;
	switch (nb->phase) {
	case PH_STOPPING:
		nb->phase = PH_DONE;
		set_state(nb, NETDEV_CLOSED);
		return;
	case PH_DONE:
	case PH_IDLE:
		return;
	case PH_READ_FRONTEND:
		if (st == XS_ERR_CLOSED)
			break; /* retried after the reconnect */
		if (st != XS_OK) {
			/* libxl writes the whole directory at once: it is gone. */
			log_warn("netback %s: cannot read frontend path (%s)", nb->be,
				 xs_status_name(st));
			finish(nb);
			return;
		}
		{
			char want[NETBACK_FE_PATH_MAX];
			int n = fmt_snprintf(want, sizeof(want), "/local/domain/%u/device/vif/%u",
					     (unsigned)nb->fe_domid, (unsigned)nb->devid);
			if (n <= 0 || (size_t)n >= sizeof(want) || strcmp(want, nb->val) != 0) {
				log_warn("netback %s: frontend path is not %s; vif refused", nb->be,
					 want);
				nb->phase = PH_FAILED;
				nb->want_state = XB_CLOSED;
				set_state(nb, NETDEV_FAILED);
				break;
			}
			memcpy(nb->fe, want, (size_t)n + 1);
		}
		nb->phase = PH_INITWAIT_TX;
		break;
	case PH_READ_MAC:
		if (st != XS_OK || !netdev_parse_mac(nb->val, nb->client_mac))
			log_warn("netback %s: frontend mac missing or unparseable (%s)", nb->be,
				 xs_status_name(st));
		nb->phase = PH_WAIT_FE;
		break;
	case PH_READ_RING:
		handle_ring_key(nb, st);
		break;
	default:
		if (nb->step == CHECK_FE_STATE)
			handle_fe_state(nb, st);
		else if (nb->step == CHECK_BE_ONLINE || nb->step == CHECK_BE_STATE)
			handle_be_check(nb, st, nb->step == CHECK_BE_ONLINE);
		break;
	}
	if (nb->phase != PH_DONE)
		drive(nb);
}

static void on_write_done(void *ctx, enum xs_status st, const char *data, size_t len)
{
	(void)data;
	(void)len;
	struct netback *nb = ctx;
	if (st != XS_OK && nb->phase != PH_STOPPING)
		log_warn("netback %s: write %s failed (%s)", nb->be, nb->key, xs_status_name(st));
	if (nb->phase == PH_REMOVING && nb->want_state == 0 && nb->be_written == XB_CLOSED)
		nb->rm_at = clock_now() + NETBACK_RM_DELAY_NS;
	after_request(nb);
}

static void on_rm_done(void *ctx, enum xs_status st, const char *data, size_t len)
{
	(void)data;
	(void)len;
	struct netback *nb = ctx;
	if (st != XS_OK && st != XS_ENOENT)
		log_warn("netback %s: removing the backend directory failed (%s)", nb->be,
			 xs_status_name(st));
	nb->xs_busy = false;
	finish(nb);
}

static enum xs_status initwait_body(void *ctx, struct xs_tx *tx)
{
	struct netback *nb = ctx;
	static const struct {
		const char *key;
		const char *val;
	} keys[] = {
		{ "feature-sg", "1" },	      { "feature-rx-copy", "1" },
		{ "feature-rx-flip", "0" },   { "feature-rx-notify", "1" },
		{ "feature-gso-tcpv4", "0" }, { "feature-gso-tcpv6", "0" },
		{ "feature-ipv6-csum-offload", "0" }, { "feature-smart-poll", "0" },
		{ "state", "2" },
	};
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		char path[NETBACK_KEY_MAX];
		int n = fmt_snprintf(path, sizeof(path), "%s/%s", nb->be, keys[i].key);
		if (n <= 0 || (size_t)n >= sizeof(path))
			return XS_ERR_ARG;
		enum xs_status st = xs_tx_write_str(tx, path, keys[i].val);
		if (st != XS_OK)
			return st;
	}
	return XS_OK;
}

static void on_initwait_done(void *ctx, enum xs_status st)
{
	struct netback *nb = ctx;
	nb->xs_busy = false;
	if (nb->phase == PH_STOPPING) {
		nb->phase = PH_DONE;
		set_state(nb, NETDEV_CLOSED);
		return;
	}
	if (nb->phase != PH_INITWAIT_TX) {
		drive(nb);
		return;
	}
	if (st == XS_ERR_CLOSED) {
		return; /* retried from netback_poll after the reconnect */
	} else if (st != XS_OK) {
		log_warn("netback %s: writing features and InitWait failed (%s)", nb->be,
			 xs_status_name(st));
		finish(nb);
		return;
	} else {
		nb->be_written = XB_INITWAIT;
		if (!nb->watches && !add_watches(nb))
			log_warn("netback %s: cannot add watches", nb->be);
		nb->phase = PH_READ_MAC;
	}
	drive(nb);
}

/* ---- state reactions --------------------------------------------------------- */

static void begin_removal(struct netback *nb)
{
	teardown_rings(nb);
	if (nb->phase != PH_REMOVING)
		log_info("netback %s: removed by the toolstack", nb->be);
	nb->phase = PH_REMOVING;
	nb->step = 0;
	/* Written again even if it was: the toolstack's own Closing may have
	 * crossed ours, and its wait for Closed starts now. */
	nb->want_state = XB_CLOSED;
	nb->rm_at = UINT64_MAX;
	if (nb->state != NETDEV_FAILED)
		set_state(nb, NETDEV_CLOSING);
}

static void handle_be_check(struct netback *nb, enum xs_status st, bool online_step)
{
	if (online_step) {
		nb->be_online_zero = st == XS_OK && !strcmp(nb->val, "0");
		if (st == XS_ENOENT) {
			/* online gone: the directory is being removed; check state */
			nb->be_online_zero = true;
		}
		nb->step = CHECK_BE_STATE;
		return;
	}
	nb->step = CHECK_NONE;
	if (st == XS_ENOENT && nb->be_online_zero) {
		/* The directory vanished under us: nothing to write any more. */
		log_info("netback %s: backend directory vanished", nb->be);
		nb->want_state = 0;
		finish(nb);
		return;
	}
	uint32_t s = 0;
	bool closing = st == XS_OK && parse_u32(nb->val, 255, &s) && s == XB_CLOSING;
	if (nb->be_online_zero || closing)
		begin_removal(nb);
}

static void start_connect(struct netback *nb)
{
	nb->phase = PH_READ_RING;
	nb->step = 0;
	nb->tx_ref = nb->rx_ref = nb->fe_port = 0;
	nb->fe_sg = false;
	nb->fe_rx_copy = false;
	nb->mtu = NETBACK_MTU_DEFAULT;
}

static void handle_fe_state(struct netback *nb, enum xs_status st)
{
	nb->step = CHECK_NONE;
	uint32_t s = XB_UNKNOWN;
	if (st == XS_OK && !parse_u32(nb->val, 255, &s)) {
		log_warn("netback %s: unparseable frontend state", nb->be);
		return;
	}
	if (st != XS_OK && st != XS_ENOENT)
		return; /* transient (busy, closed): re-read later */
	if (nb->phase == PH_FAILED || nb->phase == PH_REMOVING)
		return;
	switch (s) {
	case XB_INITIALISING:
	case XB_INITWAIT:
		if (nb->phase == PH_CONNECTED || nb->phase == PH_READ_RING)
			teardown_rings(nb);
		if (nb->phase != PH_WAIT_FE || nb->be_written != XB_INITWAIT) {
			nb->phase = PH_WAIT_FE;
			nb->want_state = XB_INITWAIT;
			set_state(nb, NETDEV_STARTING);
		}
		break;
	case XB_INITIALISED:
	case XB_CONNECTED:
		if (nb->phase == PH_WAIT_FE && nb->be_written == XB_INITWAIT &&
		    nb->want_state == 0) {
			start_connect(nb);
		} else if (nb->phase == PH_FE_CLOSED) {
			/* Reopened without going through Initialising: InitWait again,
			 * then connect on the re-read. */
			nb->phase = PH_WAIT_FE;
			nb->want_state = XB_INITWAIT;
			nb->fe_dirty = true;
			set_state(nb, NETDEV_STARTING);
		}
		break;
	case XB_CLOSING:
	case XB_CLOSED:
	case XB_UNKNOWN:
		if (nb->phase == PH_FE_CLOSED)
			break;
		teardown_rings(nb);
		nb->phase = PH_FE_CLOSED;
		if (nb->be_written != XB_CLOSED)
			nb->want_state = XB_CLOSED;
		log_info("netback %s: frontend closed (state %u)", nb->be, (unsigned)s);
		set_state(nb, NETDEV_CLOSING);
		/* The toolstack may be removing the vif: look at online. */
		nb->be_dirty = true;
		break;
	default:
		log_warn("netback %s: unexpected frontend state %u", nb->be, (unsigned)s);
		break;
	}
}

static void connect_rings(struct netback *nb)
{
	nb->tx = hv_map_grants(nb->fe_domid, &nb->tx_ref, 1, false);
	nb->rx = hv_map_grants(nb->fe_domid, &nb->rx_ref, 1, false);
	if (nb->tx == NULL || nb->rx == NULL) {
		fail(nb, "cannot map the ring grants", nb->tx_ref, nb->rx_ref);
		return;
	}
	if (!hv_evtchn_bind_interdomain(nb->fe_domid, nb->fe_port, &nb->port)) {
		fail(nb, "cannot bind the event channel", nb->fe_port, 0);
		return;
	}
	nb->bound = true;
	/* BACK_RING_ATTACH: start from the shared response index, never zero a
	 * page we did not create. */
	uint32_t t = netif_load_idx(&nb->tx->hdr.rsp_prod);
	uint32_t r = netif_load_idx(&nb->rx->hdr.rsp_prod);
	nb->tx_req_cons = nb->tx_rsp_prod_pvt = t;
	nb->rx_req_cons = nb->rx_rsp_prod_pvt = r;
	nb->phase = PH_CONNECTED;
	nb->want_state = XB_CONNECTED;
	nb->kicked = true;
	nb->stats.connects++;
	log_info("netback %s: connected (dom%u, sg %d, mtu %u)", nb->be, (unsigned)nb->fe_domid,
		 nb->fe_sg ? 1 : 0, (unsigned)nb->mtu);
	set_state(nb, NETDEV_CONNECTED);
}

static void handle_ring_key(struct netback *nb, enum xs_status st)
{
	uint32_t v = 0;
	bool have = st == XS_OK;
	if (st != XS_OK && st != XS_ENOENT) {
		if (st == XS_ERR_VALUE)
			fail(nb, "ring key value too long", nb->step, 0);
		return; /* transient: the same key is read again */
	}
	switch (nb->step) {
	case RK_TX_REF:
	case RK_RX_REF:
		if (!have || !parse_u32(nb->val, UINT32_MAX, &v)) {
			fail(nb, "missing or bad ring reference", nb->step, 0);
			return;
		}
		if (nb->step == RK_TX_REF)
			nb->tx_ref = v;
		else
			nb->rx_ref = v;
		break;
	case RK_EVTCHN:
		if (!have || !parse_u32(nb->val, UINT32_MAX, &v)) {
			fail(nb, "missing or bad event channel", 0, 0);
			return;
		}
		nb->fe_port = v;
		break;
	case RK_RX_COPY:
		if (!have || strcmp(nb->val, "1") != 0) {
			fail(nb, "frontend does not request rx-copy", 0, 0);
			return;
		}
		nb->fe_rx_copy = true;
		break;
	case RK_SG:
		nb->fe_sg = have && !strcmp(nb->val, "1");
		break;
	case RK_QUEUES:
		if (have && (!parse_u32(nb->val, UINT32_MAX, &v) || v != 1)) {
			fail(nb, "multi-queue requested but not offered", v, 0);
			return;
		}
		break;
	case RK_MTU:
		if (have) {
			if (parse_u32(nb->val, NETBACK_MTU_MAX, &v) && v >= NETBACK_MTU_MIN)
				nb->mtu = (uint16_t)v;
			else
				log_warn("netback %s: bad mtu, using %u", nb->be,
					 NETBACK_MTU_DEFAULT);
		}
		break;
	default:
		break;
	}
	nb->step++;
	if (nb->step == RK_COUNT)
		connect_rings(nb);
}

/* ---- the sequencer ------------------------------------------------------------ */

/* Issues the next XenStore request this vif needs, if none is outstanding.
 * Busy/closed clients leave the step pending for netback_poll. */
static void drive(struct netback *nb)
{
	while (!nb->xs_busy) {
		enum xs_status st = XS_OK;
		switch (nb->phase) {
		case PH_IDLE:
		case PH_DONE:
		case PH_STOPPING:
			return;
		case PH_READ_FRONTEND:
			if (!make_key(nb, nb->be, "frontend"))
				return;
			st = xs_read_str(nb->xs, nb->key, nb->val, sizeof(nb->val), on_read_done,
					 nb);
			break;
		case PH_INITWAIT_TX:
			st = xs_transaction(nb->xs, initwait_body, on_initwait_done, nb);
			break;
		case PH_READ_MAC:
			if (!make_key(nb, nb->fe, "mac"))
				return;
			st = xs_read_str(nb->xs, nb->key, nb->val, sizeof(nb->val), on_read_done,
					 nb);
			break;
		case PH_READ_RING:
			if (!make_key(nb, nb->fe, ring_key_names[nb->step]))
				return;
			st = xs_read_str(nb->xs, nb->key, nb->val, sizeof(nb->val), on_read_done,
					 nb);
			break;
		case PH_REMOVING:
			if (nb->want_state == XB_CLOSED) {
				if (!make_key(nb, nb->be, "state"))
					return;
				st = xs_write_str(nb->xs, nb->key, "6", on_write_done, nb);
				if (st == XS_OK) {
					nb->want_state = 0;
					nb->be_written = XB_CLOSED;
				}
			} else if (clock_now() < nb->rm_at) {
				/* Closed is written (anchors §3: before the rm), but
				 * libxl must read it before the directory goes: a
				 * state node already gone fails its wait for Closed
				 * ("unable to remove device"), the detach with it. */
				return;
			} else {
				st = xs_rm(nb->xs, nb->be, on_rm_done, nb);
			}
			break;
		default:
			/* WAIT_FE, CONNECTED, FE_CLOSED, FAILED: state writes first, then
			 * re-reads of what the watches flagged. */
			if (nb->want_state != 0) {
				char v[2] = { (char)('0' + nb->want_state), 0 };
				if (!make_key(nb, nb->be, "state"))
					return;
				st = xs_write_str(nb->xs, nb->key, v, on_write_done, nb);
				if (st == XS_OK) {
					nb->be_written = nb->want_state;
					nb->want_state = 0;
				}
			} else if (nb->be_dirty || nb->step == CHECK_BE_STATE) {
				bool online = nb->step != CHECK_BE_STATE;
				if (!make_key(nb, nb->be, online ? "online" : "state"))
					return;
				st = xs_read_str(nb->xs, nb->key, nb->val, sizeof(nb->val),
						 on_read_done, nb);
				if (st == XS_OK) {
					nb->be_dirty = false;
					nb->step = online ? CHECK_BE_ONLINE : CHECK_BE_STATE;
				}
			} else if (nb->fe_dirty && nb->phase != PH_FAILED) {
				if (!make_key(nb, nb->fe, "state"))
					return;
				st = xs_read_str(nb->xs, nb->key, nb->val, sizeof(nb->val),
						 on_read_done, nb);
				if (st == XS_OK) {
					nb->fe_dirty = false;
					nb->step = CHECK_FE_STATE;
				}
			} else {
				return;
			}
			break;
		}
		if (st != XS_OK) {
			if (st != XS_ERR_BUSY && st != XS_ERR_CLOSED && st != XS_ERR_FULL)
				log_warn("netback %s: XenStore request refused (%s)", nb->be,
					 xs_status_name(st));
			return; /* retried from netback_poll */
		}
		nb->xs_busy = true;
	}
}

/* ---- TX ring: frames from the client --------------------------------------- */

static void put_tx_rsp(struct netback *nb, uint16_t id, int16_t status)
{
	volatile struct netif_tx_response *r =
		(volatile struct netif_tx_response *)&nb->tx->ring[nb->tx_rsp_prod_pvt &
								    (NETIF_TX_RING_SIZE - 1)];
	r->id = id;
	r->status = status;
	nb->tx_rsp_prod_pvt++;
}

static void push_tx(struct netback *nb, uint32_t old)
{
	if (old == nb->tx_rsp_prod_pvt)
		return;
	if (netif_push(&nb->tx->hdr.rsp_prod, &nb->tx->hdr.rsp_event, old, nb->tx_rsp_prod_pvt)) {
		hv_evtchn_notify(nb->port);
		nb->stats.notifies++;
	}
}

struct tx_slot {
	uint16_t id;
	bool extra;
};

/* One packet: returns the slots consumed, 0 when it is not complete yet,
 * -1 when the vif was failed. Responses are written (not pushed). */
static int tx_packet(struct netback *nb, uint32_t avail, bool *delivered)
{
	struct netif_tx_request data[NETBACK_SLOTS_FATAL];
	struct tx_slot order[NETBACK_SLOTS_FATAL + NETBACK_EXTRAS_MAX];
	uint32_t idx = nb->tx_req_cons;
	const uint32_t mask = NETIF_TX_RING_SIZE - 1;
	size_t nd = 0, no = 0;
	uint32_t seen_types = 0;
	bool drop = false;
	const char *why = NULL;

	*delivered = false;
	data[nd++] = netif_read_tx_req(&nb->tx->ring[idx++ & mask]);
	order[no++] = (struct tx_slot){ data[0].id, false };
	if (data[0].flags & NETTXF_EXTRA_INFO) {
		for (;;) {
			if (idx - nb->tx_req_cons >= avail)
				return 0;
			struct netif_extra_info e = netif_read_tx_extra(&nb->tx->ring[idx++ & mask]);
			if (e.type == NETIF_EXTRA_TYPE_NONE || e.type >= NETIF_EXTRA_TYPE_MAX ||
			    (seen_types & (1u << e.type))) {
				fail(nb, "bad extra-info slot", e.type, seen_types);
				return -1;
			}
			seen_types |= 1u << e.type;
			order[no++] = (struct tx_slot){ data[0].id, true };
			if (e.type == NETIF_EXTRA_TYPE_GSO && !drop) {
				drop = true;
				why = "GSO extra (not advertised)";
			}
			if (!(e.flags & NETIF_EXTRA_FLAG_MORE))
				break;
		}
	}
	while (data[nd - 1].flags & NETTXF_MORE_DATA) {
		if (nd == NETBACK_SLOTS_FATAL) {
			fail(nb, "TX slot chain too long", (uint32_t)nd, avail);
			return -1;
		}
		if (idx - nb->tx_req_cons >= avail)
			return 0;
		data[nd] = netif_read_tx_req(&nb->tx->ring[idx++ & mask]);
		order[no++] = (struct tx_slot){ data[nd].id, false };
		nd++;
	}

	/* Every slot's own bounds (impossible for a correct frontend → fatal). */
	uint32_t total = data[0].size, rest = 0;
	for (size_t k = 1; k < nd; k++) {
		if ((uint32_t)data[k].offset + data[k].size > HV_PAGE_SIZE) {
			fail(nb, "TX fragment crosses the page", data[k].offset, data[k].size);
			return -1;
		}
		rest += data[k].size;
	}
	uint32_t first_len = total > rest ? total - rest : 0;
	if (!drop && nd > NETBACK_SLOTS_MAX) {
		drop = true;
		why = "too many slots";
	}
	if (!drop && rest >= total) {
		drop = true;
		why = "first slot size below the fragments";
	}
	if (!drop && (uint32_t)data[0].offset + first_len > HV_PAGE_SIZE) {
		fail(nb, "TX first slot crosses the page", data[0].offset, first_len);
		return -1;
	}
	if (!drop && (total < NETBACK_FRAME_MIN || total > (uint32_t)nb->mtu + 18u ||
		      total > NETBACK_FRAME_MAX)) {
		drop = true;
		why = "bad frame size";
	}

	int16_t status = NETIF_RSP_OKAY;
	if (!drop) {
		struct hv_copy ops[2 * NETBACK_SLOTS_MAX];
		size_t nops = 0;
		uint32_t pos = 0;
		for (size_t k = 0; k < nd; k++) {
			uint32_t len = k == 0 ? first_len : data[k].size;
			uint32_t off = data[k].offset;
			while (len > 0) {
				uint8_t *dst = &nb->frame[pos];
				uint32_t room = HV_PAGE_SIZE -
						(uint32_t)((uintptr_t)dst & (HV_PAGE_SIZE - 1));
				uint32_t n = len < room ? len : room;
				struct hv_copy *op = &ops[nops++];
				memset(op, 0, sizeof(*op));
				op->src.foreign = true;
				op->src.domid = nb->fe_domid;
				op->src.gref = data[k].gref;
				op->src.offset = (uint16_t)off;
				op->dst.local = dst;
				op->len = (uint16_t)n;
				pos += n;
				off += n;
				len -= n;
			}
		}
		(void)hv_grant_copy(ops, nops);
		for (size_t i = 0; i < nops; i++) {
			if (ops[i].status != HV_GNT_OK) {
				drop = true;
				why = "grant copy failed (bad grant)";
				break;
			}
		}
	}
	if (drop) {
		status = NETIF_RSP_ERROR;
		nb->stats.tx_dropped++;
		log_warn("netback %s: TX frame dropped: %s", nb->be, why);
	}
	const int16_t null_status = NETIF_RSP_NULL;
	for (size_t i = 0; i < no; i++) {
		if (order[i].extra)
			put_tx_rsp(nb, order[i].id, null_status);
		else
			put_tx_rsp(nb, order[i].id, status);
	}
	nb->tx_req_cons = idx;
	if (!drop) {
		nb->stats.tx_frames++;
		nb->stats.tx_bytes += total;
		uint32_t flags = 0;
		if (data[0].flags & NETTXF_CSUM_BLANK)
			flags |= NETDEV_RX_CSUM_BLANK;
		if (data[0].flags & NETTXF_DATA_VALIDATED)
			flags |= NETDEV_RX_DATA_VALIDATED;
		*delivered = true;
		if (nb->cb.rx != NULL)
			nb->cb.rx(nb->cb.ctx, nb->frame, total, flags);
	}
	return 1;
}

static bool tx_poll(struct netback *nb, size_t budget)
{
	size_t frames = 0;
	while (nb->phase == PH_CONNECTED) {
		uint32_t prod = netif_load_idx(&nb->tx->hdr.req_prod);
		uint32_t ahead = prod - nb->tx_rsp_prod_pvt;
		if (ahead > NETIF_TX_RING_SIZE) {
			fail(nb, "TX producer index ahead of the ring", prod, nb->tx_rsp_prod_pvt);
			return false;
		}
		uint32_t avail = prod - nb->tx_req_cons;
		if (avail == 0) {
			if (!netif_final_check(&nb->tx->hdr.req_event, &nb->tx->hdr.req_prod,
					       nb->tx_req_cons))
				return false;
			continue;
		}
		if (frames >= budget)
			return true;
		uint32_t old = nb->tx_rsp_prod_pvt;
		bool delivered;
		int r = tx_packet(nb, avail, &delivered);
		if (r < 0)
			return false;
		if (r == 0) {
			/* Incomplete packet: wake us when more is produced. */
			netif_store_idx(&nb->tx->hdr.req_event, prod + 1u);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (netif_load_idx(&nb->tx->hdr.req_prod) == prod)
				return false;
			continue;
		}
		/* The rx callback may have torn the vif down. */
		if (nb->phase != PH_CONNECTED)
			return false;
		push_tx(nb, old);
		frames++;
	}
	return false;
}

/* ---- RX ring: frames to the client ------------------------------------------ */

bool netback_transmit(struct netback *nb, const uint8_t *frame, size_t len)
{
	if (nb->phase != PH_CONNECTED || frame == NULL || len == 0) {
		nb->stats.rx_dropped++;
		return false;
	}
	size_t need = (len + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
	if (len > NETDEV_FRAME_MAX || need > NETBACK_SLOTS_MAX || (need > 1 && !nb->fe_sg)) {
		nb->stats.rx_dropped++;
		return false;
	}
	uint32_t prod = netif_load_idx(&nb->rx->hdr.req_prod);
	if ((uint32_t)(prod - nb->rx_rsp_prod_pvt) > NETIF_RX_RING_SIZE) {
		fail(nb, "RX producer index ahead of the ring", prod, nb->rx_rsp_prod_pvt);
		nb->stats.rx_dropped++;
		return false;
	}
	if ((uint32_t)(prod - nb->rx_req_cons) < need) {
		nb->stats.rx_no_buffer++;
		return false;
	}
	const uint32_t mask = NETIF_RX_RING_SIZE - 1;
	struct netif_rx_request req[NETBACK_SLOTS_MAX];
	struct hv_copy ops[2 * NETBACK_SLOTS_MAX];
	uint8_t op_slot[2 * NETBACK_SLOTS_MAX];
	size_t nops = 0, pos = 0;
	for (size_t s = 0; s < need; s++) {
		req[s] = netif_read_rx_req(&nb->rx->ring[(nb->rx_req_cons + s) & mask]);
		size_t chunk = len - pos < HV_PAGE_SIZE ? len - pos : HV_PAGE_SIZE;
		size_t doff = 0;
		while (chunk > 0) {
			const uint8_t *src = frame + pos;
			size_t room = HV_PAGE_SIZE - ((uintptr_t)src & (HV_PAGE_SIZE - 1));
			size_t n = chunk < room ? chunk : room;
			struct hv_copy *op = &ops[nops];
			memset(op, 0, sizeof(*op));
			op_slot[nops++] = (uint8_t)s;
			op->src.local = (uint8_t *)src; /* only read: hv_copy_end has one pointer type */
			op->dst.foreign = true;
			op->dst.domid = nb->fe_domid;
			op->dst.gref = req[s].gref;
			op->dst.offset = (uint16_t)doff;
			op->len = (uint16_t)n;
			pos += n;
			doff += n;
			chunk -= n;
		}
	}
	(void)hv_grant_copy(ops, nops);
	bool bad[NETBACK_SLOTS_MAX] = { false };
	bool any_bad = false;
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].status != HV_GNT_OK) {
			bad[op_slot[i]] = true;
			any_bad = true;
		}
	}
	uint32_t old = nb->rx_rsp_prod_pvt;
	pos = 0;
	for (size_t s = 0; s < need; s++) {
		size_t chunk = len - pos < HV_PAGE_SIZE ? len - pos : HV_PAGE_SIZE;
		pos += chunk;
		volatile struct netif_rx_response *r =
			(volatile struct netif_rx_response *)&nb->rx->ring[nb->rx_rsp_prod_pvt & mask];
		r->id = req[s].id;
		r->offset = 0;
		r->flags = (uint16_t)(s + 1 < need ? NETRXF_MORE_DATA : 0u);
		r->status = (int16_t)(bad[s] ? NETIF_RSP_ERROR : (int)chunk);
		nb->rx_rsp_prod_pvt++;
	}
	nb->rx_req_cons += (uint32_t)need;
	if (netif_push(&nb->rx->hdr.rsp_prod, &nb->rx->hdr.rsp_event, old, nb->rx_rsp_prod_pvt)) {
		hv_evtchn_notify(nb->port);
		nb->stats.notifies++;
	}
	if (any_bad) {
		log_warn("netback %s: RX copy to the client failed (bad grant)", nb->be);
		nb->stats.rx_dropped++;
		return false;
	}
	nb->stats.rx_frames++;
	nb->stats.rx_bytes += len;
	return true;
}

/* ---- public ------------------------------------------------------------------- */

bool netback_start(struct netback *nb, struct xs_client *xs, const char *backend_path,
		   hv_domid_t frontend_domid, const struct netdev_callbacks *cb)
{
	if (nb == NULL || xs == NULL || backend_path == NULL || cb == NULL)
		return false;
	size_t bl = strnlen(backend_path, NETBACK_PATH_MAX);
	if (bl == 0 || bl >= NETBACK_PATH_MAX || !xs_path_valid(backend_path) ||
	    strncmp(backend_path, "backend/vif/", 12) != 0)
		return false;
	/* "<domid>/<devid>" after the prefix, both strict decimals. */
	const char *d = backend_path + 12;
	const char *slash = strchr(d, '/');
	if (slash == NULL)
		return false;
	uint64_t dom, dev;
	if (!xs_parse_uint(d, (size_t)(slash - d), 0x7fef, &dom) || dom != frontend_domid ||
	    !xs_parse_uint(slash + 1, strlen(slash + 1), 0xffff, &dev))
		return false;
	memset(nb, 0, offsetof(struct netback, frame));
	nb->xs = xs;
	nb->cb = *cb;
	memcpy(nb->be, backend_path, bl + 1);
	nb->fe_domid = frontend_domid;
	nb->devid = (uint32_t)dev;
	nb->owner = NETBACK_XS_OWNER_BASE + (next_owner++ & 0xffffu);
	nb->mtu = NETBACK_MTU_DEFAULT;
	nb->state = NETDEV_STARTING;
	nb->phase = PH_READ_FRONTEND;
	drive(nb);
	return true;
}

void netback_stop(struct netback *nb)
{
	if (nb->phase == PH_IDLE || nb->phase == PH_DONE || nb->phase == PH_STOPPING)
		return;
	nb->want_state = 0;
	finish(nb);
}

bool netback_poll(struct netback *nb, size_t budget)
{
	if (budget == 0)
		budget = NETBACK_POLL_BUDGET;
	if (nb->phase == PH_IDLE || nb->phase == PH_DONE)
		return false;
	drive(nb);
	if (nb->phase != PH_CONNECTED)
		return false;
	nb->kicked = false;
	return tx_poll(nb, budget);
}

void netback_event(struct netback *nb)
{
	nb->kicked = true;
}

bool netback_port(const struct netback *nb, hv_port_t *port)
{
	if (!nb->bound)
		return false;
	*port = nb->port;
	return true;
}

enum netdev_state netback_state(const struct netback *nb)
{
	return nb->state;
}

const uint8_t *netback_client_mac(const struct netback *nb)
{
	return nb->client_mac;
}

uint16_t netback_mtu(const struct netback *nb)
{
	return nb->mtu;
}

const struct netback_stats *netback_stats(const struct netback *nb)
{
	return &nb->stats;
}
