/* vchan.h — libxenvchan-compatible byte channels over xen/hv.h (the
 * transport of QubesDB and qrexec), exposed as a base/stream.h stream.
 *
 * Wire format: /work/shared/specs/qubes-protocols.md §1 (control page
 * struct vchan_interface, ring placement, XenStore rendezvous, notify bits,
 * liveness) and xen-platform.md §8.8, §11.2.
 *
 * The peer is hostile: it can rewrite any byte of the shared pages at any
 * time. Every counter, order, live byte and grant ref is read ONCE from
 * shared memory into a private copy and validated; the counters we own are
 * kept privately and only ever written. A violation marks the channel
 * broken (reads and writes return STREAM_CLOSED, our live byte goes to 0)
 * with a rate-limited log line; never a crash, an out-of-bounds access or
 * a stall. A granted page that cannot be ended because the peer still maps
 * it is quarantined (never reused) and retried later (MSA02).
 *
 * XenStore goes through struct vchan_xs, three small callbacks, so the
 * asynchronous client in xen/xenstore.h can be adapted by the application
 * without this module knowing it. Nothing here blocks or allocates outside
 * hv_pages_alloc. */
#ifndef XEN_VCHAN_H
#define XEN_VCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"
#include "xen/hv.h"

/* The shared control page (spec §1.2): 24-byte header, then grant refs of
 * the out-of-page ring pages (all left-ring pages first). Left ring:
 * written by the client, read by the server; right ring: the reverse. */
struct vchan_ring_shared {
	uint32_t cons;
	uint32_t prod;
};

struct vchan_interface {
	struct vchan_ring_shared left;
	struct vchan_ring_shared right;
	uint16_t left_order;
	uint16_t right_order;
	uint8_t cli_live;
	uint8_t srv_live;
	uint8_t cli_notify;  /* bits the client must honour (set by the server) */
	uint8_t srv_notify;  /* bits the server must honour (set by the client) */
	uint32_t grants[];
};

#define VCHAN_HEADER_LEN 24u
#define VCHAN_NOTIFY_WRITE 0x1u
#define VCHAN_NOTIFY_READ 0x2u
#define VCHAN_LIVE_CLOSED 0u
#define VCHAN_LIVE_CONNECTED 1u
#define VCHAN_LIVE_WAITING 2u

/* Ring orders: 10 = 1 KiB at offset 0x400 of the control page, 11 = 2 KiB
 * at 0x800, >= 12 = 2^(order-12) separate pages. The wire allows up to 20;
 * we accept at most VCHAN_ORDER_MAX (64 KiB covers every Qubes peer in the
 * spec §1.3 table; bigger ones are refused with a log line). */
#define VCHAN_ORDER_MIN 10u
#define VCHAN_ORDER_WIRE_MAX 20u
#define VCHAN_ORDER_MAX 16u
#define VCHAN_RING_PAGES_MAX (1u << (VCHAN_ORDER_MAX - 12u))

/* Quarantined pages (grant still in use at close), all channels together;
 * beyond this a busy page is leaked (never reused) with a log line. */
#define VCHAN_QUARANTINE_MAX 64u

/* XenStore access for the rendezvous (spec §1.4). Paths are absolute.
 * write: creates the key with the value; the adapter sets the permissions
 * to "n<own domid>" + "r<reader>" (owner us, nobody else but the reader).
 * read: the value, NUL-terminated in buf; false when the key is missing,
 * empty or unreadable now (the caller retries after the watch fires).
 * remove: deletes a key or directory (may be NULL: then nothing is removed).
 * Each returns false on failure. ctx is passed back unchanged. */
struct vchan_xs {
	void *ctx;
	bool (*write)(void *ctx, const char *path, const char *value, hv_domid_t reader);
	bool (*read)(void *ctx, const char *path, char *buf, size_t cap);
	bool (*remove)(void *ctx, const char *path);
};

enum vchan_result {
	VCHAN_OK = 0,
	VCHAN_AGAIN,     /* client: the server's keys are not there yet */
	VCHAN_ERR_ARG,   /* bad size request or argument */
	VCHAN_ERR_NOMEM, /* pages, grants, event channel or mapping unavailable */
	VCHAN_ERR_PEER,  /* the peer's keys or control page are invalid (logged) */
	VCHAN_ERR_XS,    /* XenStore write failed */
};

enum vchan_state {
	VCHAN_STATE_IDLE = 0,   /* not set up, or closed by us */
	VCHAN_STATE_WAITING,    /* server: client not connected yet */
	VCHAN_STATE_CONNECTED,
	VCHAN_STATE_PEER_CLOSED, /* peer's live byte went to 0; queued data still readable */
	VCHAN_STATE_BROKEN,     /* protocol violation: everything returns STREAM_CLOSED */
};

/* One direction, private view. `mine` is the counter we own (prod for the
 * ring we write, cons for the one we read): never read back from shared. */
struct vchan_ring {
	uint8_t *data;
	uint32_t size;
	uint32_t mine;
	uint32_t *shared_cons;
	uint32_t *shared_prod;
	uint8_t order;
	void *pages;             /* separate ring pages (server: allocated; client: mapped) */
	size_t npages;
	hv_gref_t grefs[VCHAN_RING_PAGES_MAX]; /* server: the grants we made */
};

struct vchan {
	enum vchan_state state;
	bool is_server;
	hv_domid_t peer;
	uint32_t port;
	hv_port_t evtchn;
	struct vchan_interface *ctrl;
	hv_gref_t ctrl_gref;     /* server */
	struct vchan_ring rx;    /* the ring we read */
	struct vchan_ring tx;    /* the ring we write */
	uint8_t *own_live;       /* our live byte in ctrl */
	uint8_t *peer_live;
	uint8_t *own_notify;     /* bits we honour */
	uint8_t *peer_notify;    /* bits the peer honours: we request by OR-ing here */
	struct vchan_xs xs;
	bool xs_published;       /* server: keys still in XenStore */
	char xs_dir[80];         /* /local/domain/<srv>/data/vchan/<cli>/<port> */
};

/* Server (we grant): rings big enough for read_min bytes from the client
 * (left) and write_min towards it (right), order chosen as libxenvchan does
 * (spec §1.3); grants the pages to `client` read-write, allocates the event
 * channel and, when xs is not NULL, writes .../ring-ref then
 * .../event-channel under /local/domain/<own>/data/vchan/<client>/<port>/.
 * xs (copied; its ctx must outlive the channel) is also used to remove the
 * keys once the client connected or at close. */
enum vchan_result vchan_server_init(struct vchan *v, hv_domid_t client, uint32_t port,
				    size_t read_min, size_t write_min,
				    const struct vchan_xs *xs);

/* For adapters that publish the keys themselves. */
hv_gref_t vchan_server_ring_ref(const struct vchan *v);

/* Client (we map): reads ring-ref and event-channel from the server's
 * directory through xs, then vchan_client_attach(). VCHAN_AGAIN when they
 * are not there yet. */
enum vchan_result vchan_client_init(struct vchan *v, hv_domid_t server, uint32_t port,
				    const struct vchan_xs *xs);

/* Client with the values already read: maps the control page, validates
 * it, maps the rings (left rw, right ro), binds the event channel, sets
 * cli_live = 1, asks for write notifications and signals the server. */
enum vchan_result vchan_client_attach(struct vchan *v, hv_domid_t server, uint32_t port,
				      hv_gref_t ring_ref, hv_port_t remote_evtchn);

/* Our event-channel port: the event loop calls vchan_poll() and then the
 * protocol's own poll when it fires. */
hv_port_t vchan_evtchn(const struct vchan *v);

/* Re-reads the peer's liveness (server: notices the client connecting and
 * removes the XenStore keys). Returns the state. */
enum vchan_state vchan_poll(struct vchan *v);
enum vchan_state vchan_get_state(const struct vchan *v);

/* Stream semantics (base/stream.h): read returns the bytes available (0
 * when none; STREAM_CLOSED once the peer closed and the ring is drained,
 * or when broken); write takes what fits (0 when full; STREAM_CLOSED when
 * the peer closed or broken). Both request the peer's notification when
 * they come up short, so an event follows when progress is possible. */
int vchan_read(struct vchan *v, void *buf, size_t len);
int vchan_write(struct vchan *v, const void *buf, size_t len);
size_t vchan_write_space(struct vchan *v);
size_t vchan_data_ready(struct vchan *v);

/* Marks our side closed (live byte 0), signals, ends grants / unmaps,
 * closes the event channel, removes the XenStore keys. Idempotent. */
void vchan_close(struct vchan *v);

/* The stream view (ops: vchan_read/write/write_space/close). */
struct stream vchan_stream(struct vchan *v);

/* Retries ending quarantined grants; returns how many pages stay
 * quarantined. Also run by every vchan_close(). */
size_t vchan_quarantine_retry(void);
/* Forgets the quarantine without touching hv (tests that reset the fake
 * hypervisor between cases). */
void vchan_quarantine_forget(void);

#endif
