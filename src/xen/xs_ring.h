/* xs_ring.h — the XenStore ring transport (the byte pipe between us and
 * xenstored in one shared page), exposed as a base/stream.h stream so the
 * XenStore client (xen/xenstore.h) runs on it unchanged.
 *
 * Layout and rules: /work/shared/specs/xen-platform.md §6.1 (struct
 * xenstore_domain_interface: req[1024], rsp[1024], req_cons, req_prod,
 * rsp_cons, rsp_prod, server_features, connection, error) and §11.2
 * items 1, 2, 4, 5.
 *
 * Pure logic over a page pointer and a notify callback, so the same code
 * runs in the unikernel (src/pvh: the page from HVM_PARAM_STORE_PFN, notify
 * = EVTCHNOP_send on HVM_PARAM_STORE_EVTCHN) and in host tests on a fake
 * page. The indices we own (req_prod, rsp_cons) are kept privately and only
 * ever written to the page; the peer's (req_cons, rsp_prod) are read once
 * per call and checked: a consumer ahead of our producer, or a producer more
 * than the ring size ahead of our consumer, is a protocol error that marks
 * the ring broken (the stream then returns STREAM_CLOSED; the client
 * reconnects through xs_ring_attach, which re-validates). Never zeroes the
 * page (that would wipe server_features, spec §6.1), never blocks. */
#ifndef XEN_XS_RING_H
#define XEN_XS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

#define XS_RING_SIZE 1024u
#define XS_RING_FEATURE_RECONNECTION 0x1u
#define XS_RING_FEATURE_ERROR 0x2u

struct xs_ring_page {
	uint8_t req[XS_RING_SIZE]; /* guest -> xenstored */
	uint8_t rsp[XS_RING_SIZE]; /* xenstored -> guest */
	uint32_t req_cons;         /* written by xenstored */
	uint32_t req_prod;         /* written by us */
	uint32_t rsp_cons;         /* written by us */
	uint32_t rsp_prod;         /* written by xenstored */
	uint32_t server_features;
	uint32_t connection;       /* 0 connected, 1 reconnect in progress */
	uint32_t error;            /* 0 none, else the server saw an error */
};
_Static_assert(offsetof(struct xs_ring_page, req_cons) == 0x800, "xs req_cons");
_Static_assert(offsetof(struct xs_ring_page, rsp_prod) == 0x80c, "xs rsp_prod");
_Static_assert(offsetof(struct xs_ring_page, server_features) == 0x810, "xs features");
_Static_assert(offsetof(struct xs_ring_page, error) == 0x818, "xs error");

enum xs_ring_result {
	XS_RING_OK = 0,
	XS_RING_BAD_INDEX,  /* peer index impossible (logged) */
	XS_RING_SERVER_ERROR, /* the server flagged an error on the ring */
	XS_RING_DETACHED,   /* no page, or closed by the stream user */
};

struct xs_ring {
	struct xs_ring_page *page;
	uint32_t req_prod;     /* ours, private */
	uint32_t rsp_cons;     /* ours, private */
	bool attached;
	bool broken;
	void (*notify)(void *ctx);
	void *notify_ctx;
	/* counters (tests, status) */
	uint64_t bytes_in, bytes_out, protocol_errors;
};

/* Takes the page as found: our indices start from the page's values (never
 * assumed to be 0), then the peer's indices are checked against them.
 * XS_RING_OK, or the reason the ring cannot be used (logged). notify is
 * called after we published bytes or consumed some (may be NULL). */
enum xs_ring_result xs_ring_attach(struct xs_ring *r, struct xs_ring_page *page,
				   void (*notify)(void *ctx), void *notify_ctx);

/* Copies up to len bytes from rsp; returns the count (0: nothing now), or
 * STREAM_CLOSED when broken/detached. Notifies once when it consumed. */
int xs_ring_read(struct xs_ring *r, void *buf, size_t len);

/* Copies up to len bytes into req; returns the count (0: ring full or the
 * server is reconnecting), or STREAM_CLOSED. Notifies once when it wrote. */
int xs_ring_write(struct xs_ring *r, const void *buf, size_t len);

/* Bytes xs_ring_write would take now (0 when broken). */
size_t xs_ring_write_space(struct xs_ring *r);

/* True when the peer produced bytes we have not read (wake-up check). */
bool xs_ring_readable(struct xs_ring *r);

/* Marks detached (the page stays as it is). */
void xs_ring_detach(struct xs_ring *r);

/* Index checks, exposed for tests: prod - cons must not exceed the ring. */
bool xs_ring_indices_ok(uint32_t prod, uint32_t cons);

/* The stream view; close = xs_ring_detach. */
struct stream xs_ring_stream(struct xs_ring *r);

#endif
