/* vchan.c — libxenvchan-compatible channels over xen/hv.h (spec:
 * qubes-protocols.md §1; xen-platform.md §8.8, §11.2).
 *
 * Memory ordering (x86-64 TSO, spec §11.2 item 1): the producer copies the
 * bytes, then publishes prod with a release store; the consumer reads prod
 * with an acquire load before the bytes, and a full fence separates the
 * copy-out from publishing cons. Notify requests are atomic ORs (locked
 * instructions: full barriers) followed by a re-check of the counters.
 *
 * Must never: re-read a shared field after validating it, read our own
 * counters back from shared memory, index a ring without masking, trust an
 * order or gref list from the peer, or reuse a page whose grant is busy. */
#include "xen/vchan.h"

#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"

_Static_assert(sizeof(struct vchan_interface) == VCHAN_HEADER_LEN, "vchan header is 24 bytes");
_Static_assert(offsetof(struct vchan_interface, left_order) == 0x10, "left_order");
_Static_assert(offsetof(struct vchan_interface, cli_live) == 0x14, "cli_live");
_Static_assert(offsetof(struct vchan_interface, srv_notify) == 0x17, "srv_notify");
/* The grant list of the biggest rings we accept ends below an in-page ring. */
_Static_assert(VCHAN_HEADER_LEN + 4u * 2u * VCHAN_RING_PAGES_MAX <= 0x400u, "grant list fits");
_Static_assert(VCHAN_ORDER_MAX >= 12 && VCHAN_ORDER_MAX <= VCHAN_ORDER_WIRE_MAX, "order max");

#define INPAGE_OFF_10 0x400u
#define INPAGE_OFF_11 0x800u
#define IO_ROUNDS 4 /* request-notify-and-recheck rounds per read/write call */

/* ---- quarantine of busy grants (MSA02) ------------------------------------ */

struct quarantined {
	void *page;
	hv_gref_t gref;
	hv_domid_t owner; /* always us on Xen; the host fake runs several domains */
};

static struct quarantined quarantine[VCHAN_QUARANTINE_MAX];
static size_t quarantine_len;

/* Ends the grant and frees its page, or keeps the page out of circulation. */
static void release_page(void *page, hv_gref_t gref)
{
	if (hv_grant_end(gref)) {
		hv_pages_free(page, 1);
		return;
	}
	if (quarantine_len < VCHAN_QUARANTINE_MAX) {
		quarantine[quarantine_len].page = page;
		quarantine[quarantine_len].gref = gref;
		quarantine[quarantine_len].owner = hv_domid();
		quarantine_len++;
		log_warn("vchan: grant %u still in use by the peer; page quarantined", gref);
	} else {
		log_warn("vchan: grant %u still in use and quarantine full; page leaked", gref);
	}
}

size_t vchan_quarantine_retry(void)
{
	size_t kept = 0;
	for (size_t i = 0; i < quarantine_len; i++) {
		if (quarantine[i].owner == hv_domid() && hv_grant_end(quarantine[i].gref))
			hv_pages_free(quarantine[i].page, 1);
		else
			quarantine[kept++] = quarantine[i];
	}
	quarantine_len = kept;
	return kept;
}

void vchan_quarantine_forget(void)
{
	quarantine_len = 0;
}

/* ---- shared-memory access ------------------------------------------------- */

static uint32_t load_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_u32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint8_t load_u8(const uint8_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_u8(uint8_t *p, uint8_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* Asks the peer to signal us on `bit`; a full barrier follows (spec §1.5). */
static void request_notify(struct vchan *v, uint8_t bit)
{
	__atomic_fetch_or(v->peer_notify, bit, __ATOMIC_SEQ_CST);
}

/* Signals the peer if it asked for `bit` (fetch-and-clear of our byte). */
static void send_notify(struct vchan *v, uint8_t bit)
{
	uint8_t old = __atomic_fetch_and(v->own_notify, (uint8_t)~bit, __ATOMIC_SEQ_CST);
	if (old & bit)
		hv_evtchn_notify(v->evtchn);
}

static const char *role(const struct vchan *v)
{
	return v->is_server ? "server" : "client";
}

static void mark_broken(struct vchan *v, const char *why, uint32_t a, uint32_t b)
{
	if (v->state == VCHAN_STATE_BROKEN || v->state == VCHAN_STATE_IDLE)
		return;
	log_warn("vchan %s peer dom%u port %u: %s (%u, %u); channel broken", role(v),
		 (unsigned)v->peer, (unsigned)v->port, why, (unsigned)a, (unsigned)b);
	v->state = VCHAN_STATE_BROKEN;
	store_u8(v->own_live, VCHAN_LIVE_CLOSED);
	hv_evtchn_notify(v->evtchn);
}

static void xs_remove_keys(struct vchan *v)
{
	if (!v->xs_published)
		return;
	v->xs_published = false;
	if (v->xs.remove != NULL && !v->xs.remove(v->xs.ctx, v->xs_dir))
		log_warn("vchan: could not remove %s", v->xs_dir);
}

/* Reads the peer's live byte once and moves the state machine (spec §1.6). */
static void check_peer(struct vchan *v)
{
	if (v->state == VCHAN_STATE_IDLE || v->state == VCHAN_STATE_BROKEN)
		return;
	uint8_t live = load_u8(v->peer_live);
	switch (live) {
	case VCHAN_LIVE_CLOSED:
		v->state = VCHAN_STATE_PEER_CLOSED;
		break;
	case VCHAN_LIVE_CONNECTED:
		if (v->state == VCHAN_STATE_WAITING) {
			v->state = VCHAN_STATE_CONNECTED;
			xs_remove_keys(v);
		} else if (v->state == VCHAN_STATE_PEER_CLOSED) {
			mark_broken(v, "peer came back to life after closing", live, 0);
		}
		break;
	case VCHAN_LIVE_WAITING:
		if (v->state != VCHAN_STATE_WAITING)
			mark_broken(v, "peer live byte went back to not-connected", live, 0);
		break;
	default:
		mark_broken(v, "bad live byte", live, 0);
		break;
	}
}

/* Bytes readable in rx, or -1 (channel marked broken) on impossible counters. */
static long rx_ready(struct vchan *v)
{
	uint32_t prod = load_u32(v->rx.shared_prod);
	uint32_t used = prod - v->rx.mine;
	if (used > v->rx.size) {
		mark_broken(v, "producer index ahead of the ring", prod, v->rx.mine);
		return -1;
	}
	return (long)used;
}

/* Bytes writable in tx, or -1 (channel marked broken). */
static long tx_space(struct vchan *v)
{
	uint32_t cons = load_u32(v->tx.shared_cons);
	uint32_t used = v->tx.mine - cons;
	if (used > v->tx.size) {
		mark_broken(v, "consumer index beyond the producer", cons, v->tx.mine);
		return -1;
	}
	return (long)(v->tx.size - used);
}

static bool usable(const struct vchan *v)
{
	return v->state != VCHAN_STATE_IDLE && v->state != VCHAN_STATE_BROKEN;
}

int vchan_read(struct vchan *v, void *buf, size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;

	if (!usable(v))
		return STREAM_CLOSED;
	check_peer(v);
	if (!usable(v))
		return STREAM_CLOSED;
	if (len > (size_t)__INT_MAX__)
		len = (size_t)__INT_MAX__;
	for (int round = 0; round < IO_ROUNDS && done < len; round++) {
		long ready = rx_ready(v);
		if (ready < 0)
			return STREAM_CLOSED;
		if (ready == 0) {
			/* Ask for a write notification, then re-check: closes the race
			 * with a producer that looked at the bit before we set it. */
			request_notify(v, VCHAN_NOTIFY_WRITE);
			ready = rx_ready(v);
			if (ready <= 0) {
				if (ready < 0)
					return STREAM_CLOSED;
				break;
			}
		}
		size_t n = MIN(len - done, (size_t)ready);
		uint32_t off = v->rx.mine & (v->rx.size - 1u);
		size_t first = MIN(n, (size_t)(v->rx.size - off));
		memcpy(out + done, v->rx.data + off, first);
		memcpy(out + done + first, v->rx.data, n - first);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		v->rx.mine += (uint32_t)n;
		store_u32(v->rx.shared_cons, v->rx.mine);
		done += n;
		send_notify(v, VCHAN_NOTIFY_READ);
	}
	if (done == 0 && v->state == VCHAN_STATE_PEER_CLOSED)
		return STREAM_CLOSED;
	return (int)done;
}

int vchan_write(struct vchan *v, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	size_t done = 0;

	if (!usable(v))
		return STREAM_CLOSED;
	check_peer(v);
	if (!usable(v) || v->state == VCHAN_STATE_PEER_CLOSED)
		return STREAM_CLOSED;
	if (len > (size_t)__INT_MAX__)
		len = (size_t)__INT_MAX__;
	for (int round = 0; round < IO_ROUNDS && done < len; round++) {
		long space = tx_space(v);
		if (space < 0)
			return STREAM_CLOSED;
		if (space == 0) {
			request_notify(v, VCHAN_NOTIFY_READ);
			space = tx_space(v);
			if (space <= 0) {
				if (space < 0)
					return STREAM_CLOSED;
				break;
			}
		}
		size_t n = MIN(len - done, (size_t)space);
		uint32_t off = v->tx.mine & (v->tx.size - 1u);
		size_t first = MIN(n, (size_t)(v->tx.size - off));
		memcpy(v->tx.data + off, in + done, first);
		memcpy(v->tx.data, in + done + first, n - first);
		v->tx.mine += (uint32_t)n;
		store_u32(v->tx.shared_prod, v->tx.mine); /* release: bytes before prod */
		done += n;
		send_notify(v, VCHAN_NOTIFY_WRITE);
	}
	return (int)done;
}

size_t vchan_write_space(struct vchan *v)
{
	if (!usable(v))
		return 0;
	check_peer(v);
	if (!usable(v) || v->state == VCHAN_STATE_PEER_CLOSED)
		return 0;
	long space = tx_space(v);
	if (space >= 0 && (uint32_t)space < v->tx.size) {
		request_notify(v, VCHAN_NOTIFY_READ);
		space = tx_space(v);
	}
	return space > 0 ? (size_t)space : 0;
}

size_t vchan_data_ready(struct vchan *v)
{
	if (!usable(v))
		return 0;
	check_peer(v);
	if (!usable(v))
		return 0;
	long ready = rx_ready(v);
	if (ready == 0) {
		request_notify(v, VCHAN_NOTIFY_WRITE);
		ready = rx_ready(v);
	}
	return ready > 0 ? (size_t)ready : 0;
}

enum vchan_state vchan_poll(struct vchan *v)
{
	check_peer(v);
	if (usable(v)) {
		/* Counters are checked here too, so a wild index is noticed even
		 * by a side that is neither reading nor writing. */
		if (rx_ready(v) >= 0)
			(void)tx_space(v);
	}
	return v->state;
}

enum vchan_state vchan_get_state(const struct vchan *v)
{
	return v->state;
}

hv_port_t vchan_evtchn(const struct vchan *v)
{
	return v->evtchn;
}

hv_gref_t vchan_server_ring_ref(const struct vchan *v)
{
	return v->ctrl_gref;
}

/* ---- set-up ---------------------------------------------------------------- */

static size_t ring_pages(unsigned order)
{
	return order >= 12 ? (size_t)1 << (order - 12) : 0;
}

/* Smallest order >= 12 whose ring holds `bytes`, or 0 when above our max. */
static unsigned page_order_for(size_t bytes)
{
	for (unsigned o = 12; o <= VCHAN_ORDER_MAX; o++)
		if (((size_t)1 << o) >= bytes)
			return o;
	return 0;
}

/* Points the private ring view at its bytes and the shared counters. */
static void ring_setup(struct vchan_ring *r, struct vchan_interface *ctrl, unsigned order,
		       struct vchan_ring_shared *sh, uint8_t *pages)
{
	r->order = (uint8_t)order;
	r->size = (uint32_t)1 << order;
	r->shared_cons = &sh->cons;
	r->shared_prod = &sh->prod;
	r->mine = 0;
	if (order == 10)
		r->data = (uint8_t *)ctrl + INPAGE_OFF_10;
	else if (order == 11)
		r->data = (uint8_t *)ctrl + INPAGE_OFF_11;
	else
		r->data = pages;
}

static void wire_roles(struct vchan *v)
{
	struct vchan_interface *c = v->ctrl;
	if (v->is_server) {
		v->own_live = &c->srv_live;
		v->peer_live = &c->cli_live;
		v->own_notify = &c->srv_notify;
		v->peer_notify = &c->cli_notify;
	} else {
		v->own_live = &c->cli_live;
		v->peer_live = &c->srv_live;
		v->own_notify = &c->cli_notify;
		v->peer_notify = &c->srv_notify;
	}
}

/* Frees what a server set up; every grant is ended or quarantined. */
static void server_teardown(struct vchan *v)
{
	struct vchan_ring *rings[2] = { &v->rx, &v->tx };
	for (size_t r = 0; r < 2; r++) {
		struct vchan_ring *ring = rings[r];
		for (size_t i = 0; i < ring->npages; i++) {
			uint8_t *page = (uint8_t *)ring->pages + i * HV_PAGE_SIZE;
			if (ring->grefs[i] != 0)
				release_page(page, ring->grefs[i]);
			else
				hv_pages_free(page, 1);
		}
		ring->pages = NULL;
		ring->npages = 0;
	}
	if (v->ctrl != NULL) {
		if (v->ctrl_gref != 0)
			release_page(v->ctrl, v->ctrl_gref);
		else
			hv_pages_free(v->ctrl, 1);
		v->ctrl = NULL;
	}
}

static void client_teardown(struct vchan *v)
{
	struct vchan_ring *rings[2] = { &v->rx, &v->tx };
	for (size_t r = 0; r < 2; r++) {
		if (rings[r]->pages != NULL)
			hv_unmap_grants(rings[r]->pages, rings[r]->npages);
		rings[r]->pages = NULL;
		rings[r]->npages = 0;
	}
	if (v->ctrl != NULL)
		hv_unmap_grants(v->ctrl, 1);
	v->ctrl = NULL;
}

static enum vchan_result choose_orders(size_t left_min, size_t right_min, unsigned *lo,
				       unsigned *ro)
{
	/* libxenvchan's policy (spec §1.3), so peers see familiar sizes. */
	if (left_min <= 1024 && right_min <= 2048) {
		*lo = 10;
		*ro = 11;
	} else if (left_min <= 2048 && right_min <= 1024) {
		*lo = 11;
		*ro = 10;
	} else if (left_min <= 2048) {
		*lo = 11;
		*ro = page_order_for(right_min);
	} else if (right_min <= 2048) {
		*ro = 11;
		*lo = page_order_for(left_min);
	} else {
		*lo = page_order_for(left_min);
		*ro = page_order_for(right_min);
	}
	return (*lo == 0 || *ro == 0) ? VCHAN_ERR_ARG : VCHAN_OK;
}

static enum vchan_result server_alloc_ring(struct vchan *v, struct vchan_ring *r, unsigned order,
					   struct vchan_ring_shared *sh)
{
	size_t n = ring_pages(order);
	uint8_t *pages = NULL;
	if (n != 0) {
		pages = hv_pages_alloc(n);
		if (pages == NULL)
			return VCHAN_ERR_NOMEM;
		r->pages = pages;
		r->npages = n;
		for (size_t i = 0; i < n; i++)
			if (!hv_grant(pages + i * HV_PAGE_SIZE, v->peer, false, &r->grefs[i]))
				return VCHAN_ERR_NOMEM;
	}
	ring_setup(r, v->ctrl, order, sh, pages);
	return VCHAN_OK;
}

static enum vchan_result server_publish(struct vchan *v, const struct vchan_xs *xs)
{
	char path[sizeof(v->xs_dir) + 16];
	char value[16];

	v->xs = *xs;
	fmt_snprintf(path, sizeof(path), "%s/ring-ref", v->xs_dir);
	fmt_snprintf(value, sizeof(value), "%u", (unsigned)v->ctrl_gref);
	v->xs_published = true; /* from here on, close removes the directory */
	if (xs->write == NULL || !xs->write(xs->ctx, path, value, v->peer))
		return VCHAN_ERR_XS;
	/* The event-channel key goes last: clients watch it (spec §1.4). */
	fmt_snprintf(path, sizeof(path), "%s/event-channel", v->xs_dir);
	fmt_snprintf(value, sizeof(value), "%u", (unsigned)v->evtchn);
	if (!xs->write(xs->ctx, path, value, v->peer))
		return VCHAN_ERR_XS;
	return VCHAN_OK;
}

enum vchan_result vchan_server_init(struct vchan *v, hv_domid_t client, uint32_t port,
				    size_t read_min, size_t write_min,
				    const struct vchan_xs *xs)
{
	unsigned lo, ro;
	enum vchan_result res;

	memset(v, 0, sizeof(*v));
	(void)vchan_quarantine_retry();
	if (choose_orders(read_min, write_min, &lo, &ro) != VCHAN_OK)
		return VCHAN_ERR_ARG;
	v->is_server = true;
	v->peer = client;
	v->port = port;
	fmt_snprintf(v->xs_dir, sizeof(v->xs_dir), "/local/domain/%u/data/vchan/%u/%u",
		     (unsigned)hv_domid(), (unsigned)client, (unsigned)port);
	v->ctrl = hv_pages_alloc(1);
	if (v->ctrl == NULL)
		return VCHAN_ERR_NOMEM;
	/* From here on a failure undoes through server_teardown (gref 0 marks
	 * a page not granted yet: refs 0..7 are reserved on Xen). */
	v->state = VCHAN_STATE_WAITING;
	wire_roles(v);
	res = server_alloc_ring(v, &v->rx, lo, &v->ctrl->left);
	if (res == VCHAN_OK)
		res = server_alloc_ring(v, &v->tx, ro, &v->ctrl->right);
	if (res == VCHAN_OK && !hv_grant(v->ctrl, client, false, &v->ctrl_gref))
		res = VCHAN_ERR_NOMEM;
	if (res == VCHAN_OK && !hv_evtchn_alloc_unbound(client, &v->evtchn))
		res = VCHAN_ERR_NOMEM;
	if (res != VCHAN_OK) {
		server_teardown(v);
		memset(v, 0, sizeof(*v));
		return res;
	}
	struct vchan_interface *c = v->ctrl;
	c->left_order = (uint16_t)lo;
	c->right_order = (uint16_t)ro;
	for (size_t i = 0; i < v->rx.npages; i++)
		c->grants[i] = v->rx.grefs[i];
	for (size_t i = 0; i < v->tx.npages; i++)
		c->grants[v->rx.npages + i] = v->tx.grefs[i];
	c->cli_live = VCHAN_LIVE_WAITING;
	c->cli_notify = VCHAN_NOTIFY_WRITE;
	c->srv_notify = 0;
	store_u8(&c->srv_live, VCHAN_LIVE_CONNECTED); /* last: publishes the header */
	if (xs != NULL) {
		res = server_publish(v, xs);
		if (res != VCHAN_OK) {
			log_warn("vchan server dom%u port %u: XenStore write failed",
				 (unsigned)client, (unsigned)port);
			vchan_close(v);
			return res;
		}
	}
	return VCHAN_OK;
}

/* Decimal u32, non-zero, digits only (spec §1.4 step 3). */
static bool parse_u32_nonzero(const char *s, uint32_t *out)
{
	uint64_t val = 0;
	size_t i = 0;
	for (; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return false;
		val = val * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0 || val == 0 || val > UINT32_MAX)
		return false;
	*out = (uint32_t)val;
	return true;
}

enum vchan_result vchan_client_init(struct vchan *v, hv_domid_t server, uint32_t port,
				    const struct vchan_xs *xs)
{
	char path[96], ref_s[16], evt_s[16];
	uint32_t ref, evt;

	memset(v, 0, sizeof(*v));
	if (xs == NULL || xs->read == NULL)
		return VCHAN_ERR_ARG;
	fmt_snprintf(path, sizeof(path), "/local/domain/%u/data/vchan/%u/%u/event-channel",
		     (unsigned)server, (unsigned)hv_domid(), (unsigned)port);
	memset(evt_s, 0, sizeof(evt_s));
	if (!xs->read(xs->ctx, path, evt_s, sizeof(evt_s)) || evt_s[0] == '\0')
		return VCHAN_AGAIN;
	fmt_snprintf(path, sizeof(path), "/local/domain/%u/data/vchan/%u/%u/ring-ref",
		     (unsigned)server, (unsigned)hv_domid(), (unsigned)port);
	memset(ref_s, 0, sizeof(ref_s));
	if (!xs->read(xs->ctx, path, ref_s, sizeof(ref_s)) || ref_s[0] == '\0')
		return VCHAN_AGAIN;
	ref_s[sizeof(ref_s) - 1] = '\0';
	evt_s[sizeof(evt_s) - 1] = '\0';
	if (!parse_u32_nonzero(ref_s, &ref) || !parse_u32_nonzero(evt_s, &evt)) {
		log_warn("vchan client: server dom%u port %u published bad ring-ref/event-channel",
			 (unsigned)server, (unsigned)port);
		return VCHAN_ERR_PEER;
	}
	return vchan_client_attach(v, server, port, ref, evt);
}

/* Validates the peer's orders (private copies). */
static bool orders_ok(const struct vchan *v, unsigned lo, unsigned ro)
{
	if (lo < VCHAN_ORDER_MIN || lo > VCHAN_ORDER_WIRE_MAX || ro < VCHAN_ORDER_MIN ||
	    ro > VCHAN_ORDER_WIRE_MAX || (lo == ro && lo < 12)) {
		log_warn("vchan client dom%u port %u: bad ring orders %u/%u", (unsigned)v->peer,
			 (unsigned)v->port, lo, ro);
		return false;
	}
	if (lo > VCHAN_ORDER_MAX || ro > VCHAN_ORDER_MAX) {
		log_warn("vchan client dom%u port %u: rings %u/%u bigger than we accept (%u)",
			 (unsigned)v->peer, (unsigned)v->port, lo, ro, VCHAN_ORDER_MAX);
		return false;
	}
	return true;
}

static enum vchan_result client_map_ring(struct vchan *v, struct vchan_ring *r, unsigned order,
					 struct vchan_ring_shared *sh, size_t first_grant,
					 bool readonly)
{
	size_t n = ring_pages(order);
	hv_gref_t grefs[VCHAN_RING_PAGES_MAX];
	uint8_t *pages = NULL;

	if (n != 0) {
		for (size_t i = 0; i < n; i++)
			grefs[i] = load_u32(&v->ctrl->grants[first_grant + i]);
		pages = hv_map_grants(v->peer, grefs, n, readonly);
		if (pages == NULL) {
			log_warn("vchan client dom%u port %u: cannot map ring pages",
				 (unsigned)v->peer, (unsigned)v->port);
			return VCHAN_ERR_PEER;
		}
		r->pages = pages;
		r->npages = n;
	}
	ring_setup(r, v->ctrl, order, sh, pages);
	return VCHAN_OK;
}

enum vchan_result vchan_client_attach(struct vchan *v, hv_domid_t server, uint32_t port,
				      hv_gref_t ring_ref, hv_port_t remote_evtchn)
{
	enum vchan_result res;

	memset(v, 0, sizeof(*v));
	v->peer = server;
	v->port = port;
	v->ctrl = hv_map_grants(server, &ring_ref, 1, false);
	if (v->ctrl == NULL) {
		log_warn("vchan client: cannot map control page %u of dom%u", (unsigned)ring_ref,
			 (unsigned)server);
		return VCHAN_ERR_PEER;
	}
	wire_roles(v);
	/* Orders are read once; the peer may change the shared copy later, we
	 * never look again. */
	unsigned lo = __atomic_load_n(&v->ctrl->left_order, __ATOMIC_ACQUIRE);
	unsigned ro = __atomic_load_n(&v->ctrl->right_order, __ATOMIC_ACQUIRE);
	res = orders_ok(v, lo, ro) ? VCHAN_OK : VCHAN_ERR_PEER;
	if (res == VCHAN_OK)
		res = client_map_ring(v, &v->tx, lo, &v->ctrl->left, 0, false);
	if (res == VCHAN_OK)
		res = client_map_ring(v, &v->rx, ro, &v->ctrl->right, ring_pages(lo), true);
	if (res == VCHAN_OK && !hv_evtchn_bind_interdomain(server, remote_evtchn, &v->evtchn)) {
		log_warn("vchan client dom%u port %u: cannot bind event channel %u",
			 (unsigned)server, (unsigned)port, (unsigned)remote_evtchn);
		res = VCHAN_ERR_PEER;
	}
	if (res != VCHAN_OK) {
		client_teardown(v);
		memset(v, 0, sizeof(*v));
		return res;
	}
	/* Our counters start where the server left them (0 for a fresh page;
	 * the values are read once and then only written by us). */
	v->tx.mine = load_u32(v->tx.shared_prod);
	v->rx.mine = load_u32(v->rx.shared_cons);
	v->state = VCHAN_STATE_CONNECTED;
	store_u8(v->own_live, VCHAN_LIVE_CONNECTED);
	request_notify(v, VCHAN_NOTIFY_WRITE);
	hv_evtchn_notify(v->evtchn);
	check_peer(v);
	return VCHAN_OK;
}

void vchan_close(struct vchan *v)
{
	if (v->state == VCHAN_STATE_IDLE)
		return;
	if (v->ctrl != NULL) {
		store_u8(v->own_live, VCHAN_LIVE_CLOSED);
		if (v->evtchn != 0)
			hv_evtchn_notify(v->evtchn);
	}
	if (v->is_server) {
		xs_remove_keys(v);
		server_teardown(v);
	} else {
		client_teardown(v);
	}
	if (v->evtchn != 0)
		hv_evtchn_close(v->evtchn);
	memset(v, 0, sizeof(*v));
	(void)vchan_quarantine_retry();
}

/* ---- stream view ------------------------------------------------------------ */

static int stream_read(void *ctx, void *buf, size_t len)
{
	return vchan_read(ctx, buf, len);
}

static int stream_write(void *ctx, const void *buf, size_t len)
{
	return vchan_write(ctx, buf, len);
}

static size_t stream_write_space(void *ctx)
{
	return vchan_write_space(ctx);
}

static void stream_close(void *ctx)
{
	vchan_close(ctx);
}

static const struct stream_ops vchan_stream_ops = {
	.read = stream_read,
	.write = stream_write,
	.write_space = stream_write_space,
	.close = stream_close,
};

struct stream vchan_stream(struct vchan *v)
{
	struct stream s = { .ops = &vchan_stream_ops, .ctx = v };
	return s;
}
