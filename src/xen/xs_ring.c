/* xs_ring.c — see xs_ring.h. Indices are free-running u32: the distance
 * prod - cons (unsigned) is what counts, bytes live at index & (size - 1).
 * Peer indices are loaded once per call with acquire semantics; ring bytes
 * are copied out once into the caller's buffer (never re-read). */
#include "xen/xs_ring.h"

#include "base/libc.h"
#include "base/log.h"

#define RING_MASK (XS_RING_SIZE - 1u)

static uint32_t load_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_u32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

bool xs_ring_indices_ok(uint32_t prod, uint32_t cons)
{
	return prod - cons <= XS_RING_SIZE;
}

static void mark_broken(struct xs_ring *r)
{
	r->broken = true;
	r->protocol_errors++;
}

/* The server's error indicator (spec §6.1: only meaningful when it
 * advertises the feature). */
static bool server_failed(const struct xs_ring *r)
{
	uint32_t f = load_u32(&r->page->server_features);
	return (f & XS_RING_FEATURE_ERROR) && load_u32(&r->page->error) != 0;
}

/* A reconnection in progress (feature bit 0 and connection != 0): wait. */
static bool server_reconnecting(const struct xs_ring *r)
{
	uint32_t f = load_u32(&r->page->server_features);
	return (f & XS_RING_FEATURE_RECONNECTION) && load_u32(&r->page->connection) != 0;
}

enum xs_ring_result xs_ring_attach(struct xs_ring *r, struct xs_ring_page *page,
				   void (*notify)(void *ctx), void *notify_ctx)
{
	uint32_t req_cons, rsp_prod;

	memset(r, 0, sizeof(*r));
	if (page == NULL)
		return XS_RING_DETACHED;
	r->page = page;
	r->notify = notify;
	r->notify_ctx = notify_ctx;
	/* Our indices as found: they are ours, but after a previous
	 * connection (or a boot loader) they need not be 0. */
	r->req_prod = load_u32(&page->req_prod);
	r->rsp_cons = load_u32(&page->rsp_cons);
	req_cons = load_u32(&page->req_cons);
	rsp_prod = load_u32(&page->rsp_prod);
	if (!xs_ring_indices_ok(r->req_prod, req_cons) || !xs_ring_indices_ok(rsp_prod, r->rsp_cons)) {
		log_warn("xenstore ring: impossible indices at attach (req %u/%u, rsp %u/%u)",
			 (unsigned)r->req_prod, (unsigned)req_cons, (unsigned)rsp_prod,
			 (unsigned)r->rsp_cons);
		mark_broken(r);
		return XS_RING_BAD_INDEX;
	}
	if (server_failed(r)) {
		log_warn("xenstore ring: the server reports error %u on the ring",
			 (unsigned)load_u32(&page->error));
		mark_broken(r);
		return XS_RING_SERVER_ERROR;
	}
	r->attached = true;
	return XS_RING_OK;
}

static bool usable(struct xs_ring *r)
{
	if (!r->attached || r->broken || r->page == NULL)
		return false;
	if (server_failed(r)) {
		log_warn("xenstore ring: the server reports error %u; closing",
			 (unsigned)load_u32(&r->page->error));
		mark_broken(r);
		return false;
	}
	return true;
}

int xs_ring_read(struct xs_ring *r, void *buf, size_t len)
{
	uint32_t prod, avail, n, off, first;

	if (!usable(r))
		return STREAM_CLOSED;
	prod = load_u32(&r->page->rsp_prod);
	avail = prod - r->rsp_cons;
	if (avail > XS_RING_SIZE) {
		log_warn("xenstore ring: response producer %u is %u bytes ahead of our consumer "
			 "%u (ring %u); closing", (unsigned)prod, (unsigned)avail,
			 (unsigned)r->rsp_cons, XS_RING_SIZE);
		mark_broken(r);
		return STREAM_CLOSED;
	}
	if (len > (size_t)INT32_MAX)
		len = (size_t)INT32_MAX;
	n = (uint32_t)MIN((size_t)avail, len);
	if (n == 0)
		return 0;
	off = r->rsp_cons & RING_MASK;
	first = MIN(n, XS_RING_SIZE - off);
	memcpy(buf, &r->page->rsp[off], first);
	if (n > first)
		memcpy((uint8_t *)buf + first, &r->page->rsp[0], n - first);
	/* Finished reading the bytes before handing the space back. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r->rsp_cons += n;
	store_u32(&r->page->rsp_cons, r->rsp_cons);
	r->bytes_in += n;
	if (r->notify)
		r->notify(r->notify_ctx);
	return (int)n;
}

/* Free space in req, or -1 on an impossible consumer index. */
static long req_space(struct xs_ring *r)
{
	uint32_t cons = load_u32(&r->page->req_cons);
	uint32_t used = r->req_prod - cons;

	if (used > XS_RING_SIZE) {
		log_warn("xenstore ring: request consumer %u is not within the %u bytes we "
			 "produced (producer %u); closing", (unsigned)cons, XS_RING_SIZE,
			 (unsigned)r->req_prod);
		mark_broken(r);
		return -1;
	}
	return (long)(XS_RING_SIZE - used);
}

int xs_ring_write(struct xs_ring *r, const void *buf, size_t len)
{
	long space;
	uint32_t n, off, first;

	if (!usable(r))
		return STREAM_CLOSED;
	space = req_space(r);
	if (space < 0)
		return STREAM_CLOSED;
	if (server_reconnecting(r))
		return 0;
	n = (uint32_t)MIN((size_t)space, len);
	if (n == 0)
		return 0;
	off = r->req_prod & RING_MASK;
	first = MIN(n, XS_RING_SIZE - off);
	memcpy(&r->page->req[off], buf, first);
	if (n > first)
		memcpy(&r->page->req[0], (const uint8_t *)buf + first, n - first);
	r->req_prod += n;
	store_u32(&r->page->req_prod, r->req_prod); /* release: bytes before prod */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r->bytes_out += n;
	if (r->notify)
		r->notify(r->notify_ctx);
	return (int)n;
}

size_t xs_ring_write_space(struct xs_ring *r)
{
	long space;

	if (!usable(r) || server_reconnecting(r))
		return 0;
	space = req_space(r);
	return space < 0 ? 0 : (size_t)space;
}

bool xs_ring_readable(struct xs_ring *r)
{
	if (!r->attached || r->broken || r->page == NULL)
		return false;
	return load_u32(&r->page->rsp_prod) != r->rsp_cons;
}

void xs_ring_detach(struct xs_ring *r)
{
	r->attached = false;
}

static int stream_read(void *ctx, void *buf, size_t len)
{
	return xs_ring_read(ctx, buf, len);
}

static int stream_write(void *ctx, const void *buf, size_t len)
{
	return xs_ring_write(ctx, buf, len);
}

static size_t stream_write_space(void *ctx)
{
	return xs_ring_write_space(ctx);
}

static void stream_close(void *ctx)
{
	xs_ring_detach(ctx);
}

static const struct stream_ops xs_ring_stream_ops = {
	.read = stream_read,
	.write = stream_write,
	.write_space = stream_write_space,
	.close = stream_close,
};

struct stream xs_ring_stream(struct xs_ring *r)
{
	struct stream s = { .ops = &xs_ring_stream_ops, .ctx = r };
	return s;
}
