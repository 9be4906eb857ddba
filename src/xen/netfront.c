/* netfront.c — the uplink frontend (device/vif/0): xenbus sequence of
 * xen-platform.md §8.5, rings of §8.4, grant hygiene of §11.2 items 12-16.
 *
 * XenStore work is one request at a time (a small sequencer run from the
 * reply callbacks and netfront_poll). RX buffers are whole pages granted
 * read-write and kept posted; response k belongs to the buffer posted at
 * ring slot k (Linux netback answers in ring order, §8.4), its id is
 * cross-checked. TX uses 2 KiB blocks of pages granted read-only; a
 * block's index is the request id, so ids are unique among outstanding
 * requests (MSA00).
 *
 * Must never: re-read a response slot after copying it, parse data in a
 * page the backend can still write (frames are copied out first), free or
 * reuse a page whose grant could not be ended (MSA02), or report CLOSED
 * while a XenStore callback can still run. */
#include "xen/netfront.h"

#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"

enum phase {
	NF_IDLE = 0,
	NF_READ_BACKEND,
	NF_WAIT_DEV,
	NF_READ_BACKEND_ID,
	NF_READ_MAC,
	NF_READ_MTU,
	NF_WAIT_INITWAIT,
	NF_READ_RX_COPY,
	NF_READ_SG,
	NF_WRITE_TX,
	NF_WAIT_CONNECTED,
	NF_CONNECTED,
	NF_CLOSING,
	NF_STOPPING,
	NF_DONE,
};

static uint32_t next_owner;

static void drive(struct netfront *nf);

static void set_state(struct netfront *nf, enum netdev_state st)
{
	if (nf->state == st)
		return;
	nf->state = st;
	if (nf->cb.state != NULL)
		nf->cb.state(nf->cb.ctx, st);
}

static bool make_key(struct netfront *nf, const char *base, const char *leaf)
{
	int n = fmt_snprintf(nf->key, sizeof(nf->key), "%s/%s", base, leaf);
	return n > 0 && (size_t)n < sizeof(nf->key);
}

/* ---- pages and grants --------------------------------------------------------- */

static void quarantine_retry(struct netfront *nf)
{
	size_t kept = 0;
	for (size_t i = 0; i < nf->quarantine_len; i++) {
		struct netfront_quarantined *q = &nf->quarantine[i];
		if (q->owner == hv_domid() && hv_grant_end(q->gref))
			hv_pages_free(q->page, 1);
		else
			nf->quarantine[kept++] = *q;
	}
	nf->quarantine_len = kept;
}

/* Ends the grant and frees the page, or keeps it out of circulation. */
static void release_page(struct netfront *nf, void *page, hv_gref_t gref)
{
	if (gref == 0) {
		hv_pages_free(page, 1);
		return;
	}
	if (hv_grant_end(gref)) {
		hv_pages_free(page, 1);
		return;
	}
	nf->stats.quarantined++;
	if (nf->quarantine_len < NETFRONT_QUARANTINE_MAX) {
		struct netfront_quarantined *q = &nf->quarantine[nf->quarantine_len++];
		q->page = page;
		q->gref = gref;
		q->owner = hv_domid();
		log_warn("netfront %s: grant %u still in use by the backend; page quarantined",
			 nf->dev, (unsigned)gref);
	} else {
		log_warn("netfront %s: grant %u still in use, quarantine full; page leaked",
			 nf->dev, (unsigned)gref);
	}
}

static void teardown(struct netfront *nf)
{
	if (nf->port_open) {
		hv_evtchn_close(nf->port);
		nf->port_open = false;
	}
	if (nf->tx != NULL) {
		release_page(nf, nf->tx, nf->tx_ref);
		release_page(nf, nf->rx, nf->rx_ref);
		nf->tx = NULL;
		nf->rx = NULL;
	}
	if (nf->rx_pages != NULL) {
		for (size_t i = 0; i < NETFRONT_RX_BUFS; i++)
			release_page(nf, nf->rx_pages + i * HV_PAGE_SIZE, nf->rx_gref[i]);
		nf->rx_pages = NULL;
	}
	if (nf->tx_pages != NULL) {
		for (size_t i = 0; i < NETFRONT_TX_PAGES; i++)
			release_page(nf, nf->tx_pages + i * HV_PAGE_SIZE, nf->tx_gref[i]);
		nf->tx_pages = NULL;
	}
}

static void finish(struct netfront *nf)
{
	teardown(nf);
	if (nf->watches) {
		xs_watch_remove_owner(nf->xs, nf->owner);
		nf->watches = false;
	}
	nf->phase = nf->xs_busy ? NF_STOPPING : NF_DONE;
	if (nf->phase == NF_DONE)
		set_state(nf, NETDEV_CLOSED);
}

/* The backend misbehaved or went away: stop the data path now, write
 * Closed, then finish. */
static void close_now(struct netfront *nf, enum netdev_state report)
{
	if (nf->phase == NF_CLOSING || nf->phase == NF_STOPPING || nf->phase == NF_DONE ||
	    nf->phase == NF_IDLE)
		return;
	teardown(nf);
	nf->phase = NF_CLOSING;
	set_state(nf, report);
	drive(nf);
}

static void fail(struct netfront *nf, const char *why, uint32_t a, uint32_t b)
{
	log_warn("netfront %s: backend dom%u misbehaved: %s (%u, %u); uplink disconnected",
		 nf->dev, (unsigned)nf->be_domid, why, (unsigned)a, (unsigned)b);
	close_now(nf, NETDEV_FAILED);
}

static bool setup_rings(struct netfront *nf)
{
	uint8_t *rings = hv_pages_alloc(2);
	if (rings == NULL)
		return false;
	nf->tx = (struct netif_tx_sring *)(void *)rings;
	nf->rx = (struct netif_rx_sring *)(void *)(rings + HV_PAGE_SIZE);
	nf->tx_ref = nf->rx_ref = 0;
	nf->rx_pages = hv_pages_alloc(NETFRONT_RX_BUFS);
	nf->tx_pages = hv_pages_alloc(NETFRONT_TX_PAGES);
	memset(nf->rx_gref, 0, sizeof(nf->rx_gref));
	memset(nf->tx_gref, 0, sizeof(nf->tx_gref));
	if (nf->rx_pages == NULL || nf->tx_pages == NULL)
		return false;
	/* Pages are zeroed; the creator sets both event indices to 1. */
	nf->tx->hdr.req_event = nf->tx->hdr.rsp_event = 1;
	nf->rx->hdr.req_event = nf->rx->hdr.rsp_event = 1;
	if (!hv_grant(nf->tx, nf->be_domid, false, &nf->tx_ref) ||
	    !hv_grant(nf->rx, nf->be_domid, false, &nf->rx_ref))
		return false;
	for (size_t i = 0; i < NETFRONT_RX_BUFS; i++)
		if (!hv_grant(nf->rx_pages + i * HV_PAGE_SIZE, nf->be_domid, false,
			      &nf->rx_gref[i]))
			return false;
	for (size_t i = 0; i < NETFRONT_TX_PAGES; i++)
		if (!hv_grant(nf->tx_pages + i * HV_PAGE_SIZE, nf->be_domid, true,
			      &nf->tx_gref[i]))
			return false;
	if (!hv_evtchn_alloc_unbound(nf->be_domid, &nf->port))
		return false;
	nf->port_open = true;
	nf->tx_req_prod_pvt = nf->tx_rsp_cons = 0;
	nf->rx_req_prod_pvt = nf->rx_rsp_cons = 0;
	nf->tx_nfree = 0;
	for (size_t b = 0; b < NETFRONT_TX_BLOCKS; b++) {
		nf->tx_busy[b] = false;
		nf->tx_free[nf->tx_nfree++] = (uint16_t)(NETFRONT_TX_BLOCKS - 1 - b);
	}
	for (size_t i = 0; i < NETFRONT_RX_BUFS; i++)
		nf->rx_posted[i] = false;
	return true;
}

/* Posts every free RX buffer; notifies if the backend asked. */
static void post_rx(struct netfront *nf)
{
	const uint32_t mask = NETIF_RX_RING_SIZE - 1;
	uint32_t old = nf->rx_req_prod_pvt;
	for (size_t i = 0; i < NETFRONT_RX_BUFS; i++) {
		if (nf->rx_posted[i])
			continue;
		if (nf->rx_req_prod_pvt - nf->rx_rsp_cons >= NETIF_RX_RING_SIZE)
			break;
		uint32_t slot = nf->rx_req_prod_pvt & mask;
		volatile struct netif_rx_request *r =
			(volatile struct netif_rx_request *)&nf->rx->ring[slot];
		r->id = (uint16_t)i;
		r->pad = 0;
		r->gref = nf->rx_gref[i];
		nf->rx_slot_id[slot] = (uint16_t)i;
		nf->rx_posted[i] = true;
		nf->rx_req_prod_pvt++;
	}
	if (old != nf->rx_req_prod_pvt &&
	    netif_push(&nf->rx->hdr.req_prod, &nf->rx->hdr.req_event, old, nf->rx_req_prod_pvt) &&
	    nf->phase == NF_CONNECTED) {
		hv_evtchn_notify(nf->port);
		nf->stats.notifies++;
	}
}

/* ---- XenStore ----------------------------------------------------------------- */

static void on_dev_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)id;
	(void)path;
	(void)len;
	struct netfront *nf = ctx;
	nf->dev_dirty = true;
	drive(nf);
}

static void on_be_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)id;
	(void)path;
	(void)len;
	struct netfront *nf = ctx;
	nf->be_dirty = true;
	drive(nf);
}

static bool read_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (!xs_parse_uint(s, strlen(s), max, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static void handle_be_state(struct netfront *nf, enum xs_status st)
{
	uint32_t s = 0;
	if (st == XS_OK && !read_u32(nf->val, 255, &s)) {
		log_warn("netfront %s: unparseable backend state", nf->dev);
		return;
	}
	if (st != XS_OK && st != XS_ENOENT)
		return;
	bool gone = st == XS_ENOENT || s == 0 || s >= 5;
	switch (nf->phase) {
	case NF_WAIT_INITWAIT:
		if (st == XS_OK && s >= 2 && s <= 4)
			nf->phase = NF_READ_RX_COPY;
		break;
	case NF_WAIT_CONNECTED:
		if (st == XS_OK && s == 4) {
			nf->phase = NF_CONNECTED;
			log_info("netfront %s: connected to dom%u", nf->dev, (unsigned)nf->be_domid);
			set_state(nf, NETDEV_CONNECTED);
			nf->kicked = true;
		} else if (gone) {
			log_info("netfront %s: backend went away (state %u)", nf->dev, (unsigned)s);
			close_now(nf, NETDEV_CLOSING);
		}
		break;
	case NF_CONNECTED:
		if (gone || s == 1) {
			log_info("netfront %s: backend went away (state %u)", nf->dev, (unsigned)s);
			close_now(nf, NETDEV_CLOSING);
		}
		break;
	default:
		break;
	}
}

static void on_read_done(void *ctx, enum xs_status st)
{
	struct netfront *nf = ctx;
	uint32_t v = 0;
	nf->xs_busy = false;
	if (nf->phase == NF_STOPPING) {
		nf->phase = NF_DONE;
		set_state(nf, NETDEV_CLOSED);
		return;
	}
	if (st == XS_ERR_CLOSED || st == XS_ERR_BUSY)
		return; /* retried from netfront_poll */
	switch (nf->phase) {
	case NF_READ_BACKEND:
		if (st != XS_OK) {
			nf->phase = NF_WAIT_DEV; /* the watch says when it appears */
			break;
		}
		if (nf->val[0] != '/' || !xs_path_valid(nf->val) ||
		    strlen(nf->val) + sizeof("/state") > XS_WATCH_PATH_MAX) {
			log_warn("netfront %s: bad backend path", nf->dev);
			nf->phase = NF_WAIT_DEV;
			break;
		}
		memcpy(nf->be, nf->val, strlen(nf->val) + 1);
		nf->phase = NF_READ_BACKEND_ID;
		break;
	case NF_READ_BACKEND_ID:
		if (st != XS_OK || !read_u32(nf->val, 0x7fef, &v)) {
			log_warn("netfront %s: missing or bad backend-id", nf->dev);
			nf->phase = NF_WAIT_DEV;
			break;
		}
		nf->be_domid = (hv_domid_t)v;
		nf->phase = NF_READ_MAC;
		break;
	case NF_READ_MAC:
		if (st != XS_OK || !netdev_parse_mac(nf->val, nf->mac)) {
			log_warn("netfront %s: missing or bad mac", nf->dev);
			nf->phase = NF_WAIT_DEV;
			break;
		}
		nf->phase = NF_READ_MTU;
		break;
	case NF_READ_MTU:
		nf->mtu = NETFRONT_MTU_DEFAULT;
		if (st == XS_OK) {
			if (read_u32(nf->val, 65535, &v) && v >= 68)
				nf->mtu = (uint16_t)v;
			else
				log_warn("netfront %s: bad mtu, using 1500", nf->dev);
		}
		if (!nf->be_watch) {
			char p[XS_WATCH_PATH_MAX];
			xs_watch_id w;
			fmt_snprintf(p, sizeof(p), "%s/state", nf->be);
			if (xs_watch_add(nf->xs, nf->owner, p, on_be_watch, nf, &w) != XS_OK) {
				log_warn("netfront %s: cannot watch the backend state", nf->dev);
				finish(nf);
				return;
			}
			nf->be_watch = true;
		}
		nf->phase = NF_WAIT_INITWAIT;
		break;
	case NF_READ_RX_COPY:
		if (st != XS_OK || strcmp(nf->val, "1") != 0) {
			log_warn("netfront %s: backend lacks feature-rx-copy; uplink refused",
				 nf->dev);
			nf->phase = NF_CLOSING;
			set_state(nf, NETDEV_FAILED);
			break;
		}
		nf->be_rx_copy = true;
		nf->phase = NF_READ_SG;
		break;
	case NF_READ_SG:
		nf->be_sg = st == XS_OK && !strcmp(nf->val, "1");
		if (!setup_rings(nf)) {
			log_warn("netfront %s: out of pages, grants or ports", nf->dev);
			close_now(nf, NETDEV_FAILED);
			return;
		}
		post_rx(nf);
		nf->phase = NF_WRITE_TX;
		break;
	case NF_WAIT_INITWAIT:
	case NF_WAIT_CONNECTED:
	case NF_CONNECTED:
		handle_be_state(nf, st);
		break;
	default:
		break;
	}
	drive(nf);
}

static enum xs_status keys_body(void *ctx, struct xs_tx *tx)
{
	struct netfront *nf = ctx;
	char v[3][16];
	fmt_snprintf(v[0], sizeof(v[0]), "%u", (unsigned)nf->tx_ref);
	fmt_snprintf(v[1], sizeof(v[1]), "%u", (unsigned)nf->rx_ref);
	fmt_snprintf(v[2], sizeof(v[2]), "%u", (unsigned)nf->port);
	const struct {
		const char *key;
		const char *val;
	} keys[] = {
		{ "tx-ring-ref", v[0] },	   { "rx-ring-ref", v[1] },
		{ "event-channel", v[2] },	   { "request-rx-copy", "1" },
		{ "feature-rx-notify", "1" },	   { "feature-sg", "1" },
		{ "feature-no-csum-offload", "1" }, { "feature-gso-tcpv4", "0" },
		{ "feature-gso-tcpv6", "0" },	   { "feature-rx-flip", "0" },
		{ "state", "4" },
	};
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		char path[NETFRONT_KEY_MAX];
		int n = fmt_snprintf(path, sizeof(path), "%s/%s", nf->dev, keys[i].key);
		if (n <= 0 || (size_t)n >= sizeof(path))
			return XS_ERR_ARG;
		enum xs_status st = xs_tx_write_str(tx, path, keys[i].val);
		if (st != XS_OK)
			return st;
	}
	return XS_OK;
}

static void on_keys_done(void *ctx, enum xs_status st)
{
	struct netfront *nf = ctx;
	nf->xs_busy = false;
	if (nf->phase == NF_STOPPING) {
		nf->phase = NF_DONE;
		set_state(nf, NETDEV_CLOSED);
		return;
	}
	if (nf->phase != NF_WRITE_TX)
		return;
	if (st == XS_ERR_CLOSED)
		return; /* retried from netfront_poll */
	if (st != XS_OK) {
		log_warn("netfront %s: writing our keys failed (%s)", nf->dev, xs_status_name(st));
		close_now(nf, NETDEV_FAILED);
		return;
	}
	nf->phase = NF_WAIT_CONNECTED;
	nf->be_dirty = true;
	drive(nf);
}

static void on_write_done(void *ctx, enum xs_status st, const char *data, size_t len)
{
	(void)data;
	(void)len;
	struct netfront *nf = ctx;
	nf->xs_busy = false;
	if (nf->phase == NF_STOPPING) {
		nf->phase = NF_DONE;
		set_state(nf, NETDEV_CLOSED);
		return;
	}
	if (st != XS_OK && st != XS_ENOENT)
		log_warn("netfront %s: writing Closed failed (%s)", nf->dev, xs_status_name(st));
	finish(nf);
}

static void drive(struct netfront *nf)
{
	while (!nf->xs_busy) {
		enum xs_status st;
		switch (nf->phase) {
		case NF_READ_BACKEND:
			if (!make_key(nf, nf->dev, "backend"))
				return;
			break;
		case NF_WAIT_DEV:
			if (!nf->dev_dirty)
				return;
			nf->dev_dirty = false;
			nf->phase = NF_READ_BACKEND;
			continue;
		case NF_READ_BACKEND_ID:
			if (!make_key(nf, nf->dev, "backend-id"))
				return;
			break;
		case NF_READ_MAC:
			if (!make_key(nf, nf->dev, "mac"))
				return;
			break;
		case NF_READ_MTU:
			if (!make_key(nf, nf->dev, "mtu"))
				return;
			break;
		case NF_READ_RX_COPY:
			if (!make_key(nf, nf->be, "feature-rx-copy"))
				return;
			break;
		case NF_READ_SG:
			if (!make_key(nf, nf->be, "feature-sg"))
				return;
			break;
		case NF_WAIT_INITWAIT:
		case NF_WAIT_CONNECTED:
		case NF_CONNECTED:
			if (!nf->be_dirty || !make_key(nf, nf->be, "state"))
				return;
			break;
		case NF_WRITE_TX:
			st = xs_transaction(nf->xs, keys_body, on_keys_done, nf);
			if (st != XS_OK)
				return;
			nf->xs_busy = true;
			continue;
		case NF_CLOSING:
			if (!make_key(nf, nf->dev, "state"))
				return;
			st = xs_write_str(nf->xs, nf->key, "6", on_write_done, nf);
			if (st != XS_OK)
				return;
			nf->xs_busy = true;
			continue;
		default:
			return;
		}
		st = xs_read_str(nf->xs, nf->key, nf->val, sizeof(nf->val), on_read_done, nf);
		if (st != XS_OK)
			return; /* busy or closed: retried from netfront_poll */
		nf->xs_busy = true;
		if (nf->phase == NF_WAIT_INITWAIT || nf->phase == NF_WAIT_CONNECTED ||
		    nf->phase == NF_CONNECTED)
			nf->be_dirty = false;
	}
}

/* ---- data path ------------------------------------------------------------------ */

static bool tx_complete(struct netfront *nf)
{
	const uint32_t mask = NETIF_TX_RING_SIZE - 1;
	uint32_t prod = netif_load_idx(&nf->tx->hdr.rsp_prod);
	if ((uint32_t)(prod - nf->tx_rsp_cons) > (uint32_t)(nf->tx_req_prod_pvt - nf->tx_rsp_cons)) {
		fail(nf, "TX response index beyond the requests", prod, nf->tx_req_prod_pvt);
		return false;
	}
	while (nf->tx_rsp_cons != prod) {
		struct netif_tx_response r = netif_read_tx_rsp(&nf->tx->ring[nf->tx_rsp_cons & mask]);
		nf->tx_rsp_cons++;
		if (r.id >= NETFRONT_TX_BLOCKS || !nf->tx_busy[r.id] || r.status == NETIF_RSP_NULL) {
			nf->stats.bad_responses++;
			log_warn("netfront %s: TX response with bad id %u / status %d", nf->dev,
				 (unsigned)r.id, (int)r.status);
			continue;
		}
		if (r.status != NETIF_RSP_OKAY)
			nf->stats.tx_errors++;
		nf->tx_busy[r.id] = false;
		nf->tx_free[nf->tx_nfree++] = r.id;
	}
	return netif_final_check(&nf->tx->hdr.rsp_event, &nf->tx->hdr.rsp_prod, nf->tx_rsp_cons);
}

bool netfront_transmit(struct netfront *nf, const uint8_t *frame, size_t len)
{
	if (nf->phase != NF_CONNECTED || frame == NULL || len == 0 ||
	    len > NETFRONT_TX_FRAME_MAX || len > NETIF_MAX_TX_SIZE)
		return false;
	size_t need = (len + NETFRONT_TX_BLOCK - 1) / NETFRONT_TX_BLOCK;
	if (need > 1 && !nf->be_sg)
		return false;
	if (nf->tx_nfree < need ||
	    NETIF_TX_RING_SIZE - (nf->tx_req_prod_pvt - nf->tx_rsp_cons) < need) {
		nf->stats.tx_full++;
		return false;
	}
	const uint32_t mask = NETIF_TX_RING_SIZE - 1;
	uint32_t old = nf->tx_req_prod_pvt;
	size_t pos = 0;
	for (size_t s = 0; s < need; s++) {
		uint16_t b = nf->tx_free[--nf->tx_nfree];
		size_t chunk = len - pos < NETFRONT_TX_BLOCK ? len - pos : NETFRONT_TX_BLOCK;
		size_t page = b / 2u, off = (size_t)(b & 1u) * NETFRONT_TX_BLOCK;
		memcpy(nf->tx_pages + page * HV_PAGE_SIZE + off, frame + pos, chunk);
		nf->tx_busy[b] = true;
		volatile struct netif_tx_request *r =
			(volatile struct netif_tx_request *)&nf->tx->ring[nf->tx_req_prod_pvt & mask];
		r->gref = nf->tx_gref[page];
		r->offset = (uint16_t)off;
		r->flags = (uint16_t)(s + 1 < need ? NETTXF_MORE_DATA : 0u);
		r->id = b;
		r->size = (uint16_t)(s == 0 ? len : chunk);
		nf->tx_req_prod_pvt++;
		pos += chunk;
	}
	if (netif_push(&nf->tx->hdr.req_prod, &nf->tx->hdr.req_event, old, nf->tx_req_prod_pvt)) {
		hv_evtchn_notify(nf->port);
		nf->stats.notifies++;
	}
	nf->stats.tx_frames++;
	nf->stats.tx_bytes += len;
	return true;
}

/* One frame from rx_rsp_cons: slots consumed, or 0 when incomplete. */
static uint32_t rx_frame(struct netfront *nf, uint32_t avail, bool all_posted_used)
{
	const uint32_t mask = NETIF_RX_RING_SIZE - 1;
	uint32_t i = 0;
	size_t len = 0;
	uint16_t flags0 = 0;
	bool bad = false, extra_next = false, more = true;
	const char *why = NULL;
	size_t data_slots = 0;

	while (more) {
		if (i == avail) {
			if (!all_posted_used)
				return 0; /* wait for the rest */
			bad = true;   /* the chain can never end: every buffer is in it */
			why = "RX chain never ends";
			break;
		}
		uint32_t slot = (nf->rx_rsp_cons + i) & mask;
		uint16_t buf = nf->rx_slot_id[slot];
		i++;
		if (extra_next) {
			const union netif_rx_slot *s = &nf->rx->ring[slot];
			uint8_t ef = __atomic_load_n(&s->extra.flags, __ATOMIC_RELAXED);
			extra_next = (ef & NETIF_EXTRA_FLAG_MORE) != 0;
			continue;
		}
		struct netif_rx_response r = netif_read_rx_rsp(&nf->rx->ring[slot]);
		data_slots++;
		if (data_slots == 1)
			flags0 = r.flags;
		more = (r.flags & NETRXF_MORE_DATA) != 0;
		extra_next = (r.flags & NETRXF_EXTRA_INFO) != 0;
		if (extra_next)
			more = true;
		if (bad) {
			/* keep consuming the chain */
		} else if (r.id != buf) {
			bad = true;
			why = "response id does not match the slot";
		} else if (r.status <= 0) {
			bad = true;
			why = "error status";
		} else if ((uint32_t)r.offset + (uint32_t)r.status > HV_PAGE_SIZE) {
			bad = true;
			why = "offset and size beyond the page";
		} else if (len + (size_t)r.status > NETFRONT_FRAME_MAX) {
			bad = true;
			why = "frame too long";
		} else {
			memcpy(nf->frame + len, nf->rx_pages + (size_t)buf * HV_PAGE_SIZE + r.offset,
			       (size_t)r.status);
			len += (size_t)r.status;
		}
		if (data_slots > NETFRONT_SLOTS_MAX + NETIF_EXTRA_TYPE_MAX) {
			if (!bad)
				why = "RX chain too long";
			bad = true;
			break;
		}
	}
	for (uint32_t k = 0; k < i; k++)
		nf->rx_posted[nf->rx_slot_id[(nf->rx_rsp_cons + k) & mask]] = false;
	nf->rx_rsp_cons += i;
	if (bad) {
		nf->stats.rx_dropped++;
		log_warn("netfront %s: RX frame dropped: %s", nf->dev, why);
		return i;
	}
	nf->stats.rx_frames++;
	nf->stats.rx_bytes += len;
	uint32_t flags = 0;
	if (flags0 & NETRXF_CSUM_BLANK)
		flags |= NETDEV_RX_CSUM_BLANK;
	if (flags0 & NETRXF_DATA_VALIDATED)
		flags |= NETDEV_RX_DATA_VALIDATED;
	if (nf->cb.rx != NULL)
		nf->cb.rx(nf->cb.ctx, nf->frame, len, flags);
	return i;
}

static bool rx_poll(struct netfront *nf, size_t budget)
{
	size_t frames = 0;
	bool more = false;
	while (nf->phase == NF_CONNECTED) {
		uint32_t prod = netif_load_idx(&nf->rx->hdr.rsp_prod);
		uint32_t posted = nf->rx_req_prod_pvt - nf->rx_rsp_cons;
		uint32_t avail = prod - nf->rx_rsp_cons;
		if (avail > posted) {
			fail(nf, "RX response index beyond the requests", prod, nf->rx_req_prod_pvt);
			return false;
		}
		if (avail == 0) {
			if (netif_final_check(&nf->rx->hdr.rsp_event, &nf->rx->hdr.rsp_prod,
					      nf->rx_rsp_cons))
				continue;
			break;
		}
		if (frames >= budget) {
			more = true;
			break;
		}
		if (rx_frame(nf, avail, avail == posted) == 0) {
			/* Incomplete: wake us when more is produced. */
			netif_store_idx(&nf->rx->hdr.rsp_event, prod + 1u);
			break;
		}
		frames++;
	}
	if (nf->phase == NF_CONNECTED)
		post_rx(nf);
	return more;
}

/* ---- public --------------------------------------------------------------------- */

void netfront_init(struct netfront *nf)
{
	memset(nf, 0, offsetof(struct netfront, frame));
}

bool netfront_start(struct netfront *nf, struct xs_client *xs, const char *dev_path,
		    const struct netdev_callbacks *cb)
{
	if (nf == NULL || xs == NULL || dev_path == NULL || cb == NULL)
		return false;
	if (nf->phase != NF_IDLE && nf->phase != NF_DONE)
		return false;
	size_t dl = strnlen(dev_path, NETFRONT_PATH_MAX);
	if (dl == 0 || dl >= NETFRONT_PATH_MAX || !xs_path_valid(dev_path) ||
	    dl + sizeof("/backend") > XS_WATCH_PATH_MAX)
		return false;
	quarantine_retry(nf);
	/* Everything but the quarantine starts afresh. */
	memset(nf, 0, offsetof(struct netfront, quarantine));
	nf->xs = xs;
	nf->cb = *cb;
	memcpy(nf->dev, dev_path, dl + 1);
	nf->owner = NETFRONT_XS_OWNER_BASE + (next_owner++ & 0xffffu);
	nf->mtu = NETFRONT_MTU_DEFAULT;
	nf->state = NETDEV_STARTING;
	nf->phase = NF_READ_BACKEND;
	char p[XS_WATCH_PATH_MAX];
	xs_watch_id w;
	fmt_snprintf(p, sizeof(p), "%s/backend", nf->dev);
	if (xs_watch_add(xs, nf->owner, p, on_dev_watch, nf, &w) != XS_OK) {
		nf->phase = NF_IDLE;
		return false;
	}
	nf->watches = true;
	drive(nf);
	return true;
}

void netfront_stop(struct netfront *nf)
{
	switch (nf->phase) {
	case NF_IDLE:
	case NF_DONE:
	case NF_STOPPING:
	case NF_CLOSING:
		return;
	case NF_WRITE_TX:
	case NF_WAIT_CONNECTED:
	case NF_CONNECTED:
		close_now(nf, NETDEV_CLOSING);
		return;
	default:
		finish(nf);
		return;
	}
}

bool netfront_poll(struct netfront *nf, size_t budget)
{
	if (budget == 0)
		budget = NETFRONT_POLL_BUDGET;
	if (nf->quarantine_len > 0)
		quarantine_retry(nf);
	if (nf->phase == NF_IDLE || nf->phase == NF_DONE)
		return false;
	drive(nf);
	if (nf->phase != NF_CONNECTED)
		return false;
	nf->kicked = false;
	bool more = tx_complete(nf);
	if (nf->phase != NF_CONNECTED)
		return false;
	return rx_poll(nf, budget) || more;
}

void netfront_event(struct netfront *nf)
{
	nf->kicked = true;
}

bool netfront_port(const struct netfront *nf, hv_port_t *port)
{
	if (!nf->port_open)
		return false;
	*port = nf->port;
	return true;
}

enum netdev_state netfront_state(const struct netfront *nf)
{
	return nf->state;
}

const uint8_t *netfront_mac(const struct netfront *nf)
{
	return nf->mac;
}

uint16_t netfront_mtu(const struct netfront *nf)
{
	return nf->mtu;
}

const struct netfront_stats *netfront_stats(const struct netfront *nf)
{
	return &nf->stats;
}

size_t netfront_quarantine_len(const struct netfront *nf)
{
	return nf->quarantine_len;
}
