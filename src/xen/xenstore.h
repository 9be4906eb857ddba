/* xenstore.h — the XenStore client: requests, replies, watches and
 * transactions over a non-blocking byte stream (the XenStore ring on Xen, a
 * Unix socket on the host).
 *
 * Wire format and semantics: /work/shared/specs/xen-platform.md §6 (ring,
 * struct xsd_sockmsg, paths, watches, transactions, client design) and
 * §11.2 items 17-18. Nothing here ever blocks, allocates or trusts the
 * server: every reply is validated before a callback sees it, an oversized
 * message closes the connection, and every table has a fixed size.
 *
 * Callbacks run only from xs_poll() and xs_client_close(); they may issue
 * new requests and add or remove watches, but must not call xs_poll().
 * Payload pointers handed to callbacks are valid only during the call. */
#ifndef XEN_XENSTORE_H
#define XEN_XENSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

/* Message types (spec §6.2 table; same values as Xen's public/io/xs_wire.h). */
enum xs_msg_type {
	XS_MSG_CONTROL = 0,
	XS_MSG_DIRECTORY = 1,
	XS_MSG_READ = 2,
	XS_MSG_GET_PERMS = 3,
	XS_MSG_WATCH = 4,
	XS_MSG_UNWATCH = 5,
	XS_MSG_TRANSACTION_START = 6,
	XS_MSG_TRANSACTION_END = 7,
	XS_MSG_INTRODUCE = 8,
	XS_MSG_RELEASE = 9,
	XS_MSG_GET_DOMAIN_PATH = 10,
	XS_MSG_WRITE = 11,
	XS_MSG_MKDIR = 12,
	XS_MSG_RM = 13,
	XS_MSG_SET_PERMS = 14,
	XS_MSG_WATCH_EVENT = 15,
	XS_MSG_ERROR = 16,
};

/* Wire limits (spec §6.2): a 16-byte header of four little-endian u32
 * (type, req_id, tx_id, len) and at most 4096 payload bytes either way. */
#define XS_HEADER_LEN 16u
#define XS_PAYLOAD_MAX 4096u
#define XS_ABS_PATH_MAX 3072u
#define XS_REL_PATH_MAX 2048u

/* Our own bounds. In flight: spec §6.6 (≤ 16, below C xenstored's quota of
 * 20 outstanding requests). Watches: C xenstored allows 128 per domain,
 * oxenstored 100 (§6.4), so the server may refuse before the table is full. */
#define XS_MAX_IN_FLIGHT 16u
#define XS_WATCH_MAX 128u
#define XS_WATCH_PATH_MAX 256u /* bytes, NUL included */
#define XS_TOKEN_MAX 24u       /* bytes, NUL included */
#define XS_TX_MAX 4u           /* concurrent transactions (quota 10) */
#define XS_TX_ATTEMPTS 5u      /* body runs per transaction (EAGAIN retries + 1) */
#define XS_OUT_BUF_SIZE 16384u /* queued outgoing bytes */
#define XS_POLL_BUDGET 64u     /* messages handled per xs_poll() */

/* Result of a request: OK, an errno name from an XS_ERROR reply, or a local
 * condition. */
enum xs_status {
	XS_OK = 0,
	/* ERROR replies from xenstored (spec §6.2 list of names). */
	XS_EINVAL,
	XS_EACCES,
	XS_EEXIST,
	XS_EISDIR,
	XS_ENOENT,
	XS_ENOMEM,
	XS_ENOSPC,
	XS_EIO,
	XS_ENOTEMPTY,
	XS_ENOSYS,
	XS_EROFS,
	XS_EBUSY,
	XS_EAGAIN,
	XS_EISCONN,
	XS_E2BIG,
	XS_EPERM,
	XS_EOTHER, /* an ERROR reply with a name not listed above */
	/* Local conditions. */
	XS_ERR_BUSY,   /* in-flight table or outgoing buffer full: retry after a poll */
	XS_ERR_FULL,   /* watch or transaction table full */
	XS_ERR_ARG,    /* bad path, value too long, NULL callback where one is needed */
	XS_ERR_CLOSED, /* no connection, or it closed before the reply came */
	XS_ERR_PROTO,  /* the reply was malformed (logged) */
	XS_ERR_VALUE,  /* a valid reply that does not fit the caller's buffer/format */
};

/* "OK", "ENOENT", "busy", ... (static strings). */
const char *xs_status_name(enum xs_status st);

/* Request completion. On XS_OK, data/len is the reply payload: READ — the
 * value bytes; DIRECTORY — the NUL-separated child list (iterate with
 * xs_dir_next); GET_DOMAIN_PATH — the path without its NUL; WRITE, MKDIR,
 * RM — "OK". data[len] is always '\0' (added by us), but a READ value may
 * contain NULs itself. On an ERROR reply data is the errno name ("ENOENT");
 * on local errors it is "". */
typedef void (*xs_reply_fn)(void *ctx, enum xs_status st, const char *data, size_t len);

/* Completion without data (xs_read_str, transactions). */
typedef void (*xs_done_fn)(void *ctx, enum xs_status st);

/* Called once after the client closed the connection by itself (peer closed,
 * stream failure, protocol error). The caller reconnects with
 * xs_client_attach(); live watches are re-registered then. */
typedef void (*xs_closed_fn)(void *ctx);

/* A watch handle; 0 is never a valid one. */
typedef uint32_t xs_watch_id;

/* A watch fired: path is the changed node (relative if the watch path was
 * relative), NUL-terminated, path_len without the NUL. XenStore fires every
 * watch once right after registration (path = the watched path) and may
 * fire spuriously: handlers must be idempotent and re-read state (§6.4). */
typedef void (*xs_watch_fn)(void *ctx, xs_watch_id id, const char *path, size_t path_len);

struct xs_client;
struct xs_tx;

/* Transaction body: issue the transaction's operations with xs_tx_write /
 * xs_tx_mkdir / xs_tx_rm and return XS_OK to commit, anything else to
 * abort. It may run several times (EAGAIN on commit re-runs it, at most
 * XS_TX_ATTEMPTS runs in all), so it must only depend on ctx. The tx
 * pointer is valid only during the call. */
typedef enum xs_status (*xs_tx_body_fn)(void *ctx, struct xs_tx *tx);

/* ---- internal state, exposed only so that callers can provide storage ---- */

struct xs_pending {
	uint8_t kind;  /* enum in xenstore.c; 0 = free */
	uint8_t type;  /* message type sent */
	uint32_t req_id;
	uint32_t ref;  /* watch id or transaction index */
	xs_reply_fn reply;
	xs_done_fn done;
	void *ctx;
	char *buf;
	size_t cap;
};

struct xs_watch {
	uint8_t state;     /* free, live, zombie (UNWATCH owed) */
	bool need_watch;   /* WATCH not sent yet (busy, or after reconnect) */
	bool registered;   /* WATCH acknowledged */
	bool failed;       /* WATCH refused by the server */
	uint32_t gen;
	uint32_t owner;
	xs_watch_fn cb;
	void *ctx;
	char path[XS_WATCH_PATH_MAX];
	char token[XS_TOKEN_MAX];
};

struct xs_tx {
	struct xs_client *client;
	xs_tx_body_fn body;
	xs_done_fn done;
	void *ctx;
	uint32_t tx_id;
	uint32_t ops_pending;
	enum xs_status op_status; /* first failure of this run */
	uint8_t state;
	uint8_t attempts;
	bool commit;              /* the END in flight commits */
	bool in_body;
};

struct xs_client {
	struct stream stream;
	bool open;
	bool broken;    /* stream failed during a send; closed at the next poll */
	bool in_poll;
	bool deferred;  /* WATCH/UNWATCH/transaction messages waiting for room */
	uint32_t conn_gen;
	uint32_t next_req_id;
	uint32_t next_watch_gen;
	xs_closed_fn on_closed;
	void *closed_ctx;
	/* incoming message being assembled */
	size_t in_have;
	uint32_t in_len;
	uint8_t in[XS_HEADER_LEN + XS_PAYLOAD_MAX + 1];
	/* outgoing byte FIFO */
	size_t out_head;
	size_t out_len;
	uint8_t out[XS_OUT_BUF_SIZE];
	struct xs_pending pending[XS_MAX_IN_FLIGHT];
	struct xs_watch watches[XS_WATCH_MAX];
	struct xs_tx tx[XS_TX_MAX];
	/* counters (debug/tests) */
	uint64_t protocol_errors;
	uint64_t dropped_messages;
	uint64_t watch_events; /* delivered to a live watch */
};

/* ---- connection ---- */

void xs_client_init(struct xs_client *c, xs_closed_fn on_closed, void *ctx);
/* Starts using the stream (closing the previous one if still open). Live
 * watches are re-registered on the new connection. */
void xs_client_attach(struct xs_client *c, struct stream s);
/* Closes the stream; every outstanding request completes with
 * XS_ERR_CLOSED, every transaction's done with XS_ERR_CLOSED. Watches stay
 * in the table (re-registered on the next attach). on_closed is not called. */
void xs_client_close(struct xs_client *c);
bool xs_client_is_open(const struct xs_client *c);
/* Sends queued bytes, reads and dispatches replies and watch events, sends
 * deferred WATCH/UNWATCH/transaction messages. Returns true when it stopped
 * because of XS_POLL_BUDGET with input possibly left: poll again soon. */
bool xs_poll(struct xs_client *c);
/* Requests in flight (sent or queued, reply not yet received). */
size_t xs_in_flight(const struct xs_client *c);

/* ---- requests (cb may be NULL: failures are then logged) ----
 * Return XS_OK when queued (cb will be called exactly once, later, from
 * xs_poll or xs_client_close), or XS_ERR_BUSY / XS_ERR_ARG / XS_ERR_CLOSED
 * (cb is not called). */

enum xs_status xs_read(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx);
enum xs_status xs_write(struct xs_client *c, const char *path, const void *value, size_t len,
			xs_reply_fn cb, void *ctx);
enum xs_status xs_write_str(struct xs_client *c, const char *path, const char *value,
			    xs_reply_fn cb, void *ctx);
enum xs_status xs_mkdir(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx);
enum xs_status xs_rm(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx);
enum xs_status xs_directory(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx);
enum xs_status xs_get_domain_path(struct xs_client *c, uint32_t domid, xs_reply_fn cb,
				  void *ctx);

/* Reads a value into buf as a NUL-terminated string, then calls done. A
 * value that contains a NUL or needs more than cap bytes with its NUL
 * completes with XS_ERR_VALUE. buf must stay valid until done runs; on any
 * failure buf holds "" (cap > 0 required). */
enum xs_status xs_read_str(struct xs_client *c, const char *path, char *buf, size_t cap,
			   xs_done_fn done, void *ctx);

/* ---- watches (spec §6.4) ----
 * The registry holds at most XS_WATCH_MAX watches; each has a unique token
 * and an owner id so that everything of one device goes in one call. Reads
 * never create watches. */

/* Registers path (≤ XS_WATCH_PATH_MAX - 1 bytes) and sends WATCH (now, or
 * from a later poll when busy). XS_ERR_FULL when the table is full. If the
 * server refuses the watch it is logged and the entry stays (inactive)
 * until removed. */
enum xs_status xs_watch_add(struct xs_client *c, uint32_t owner, const char *path,
			    xs_watch_fn cb, void *ctx, xs_watch_id *out);
/* Stops callbacks at once and sends UNWATCH (now or from a later poll).
 * An UNWATCH answered with ENOENT (node already gone) is fine and logged at
 * debug. Stale or unknown ids are ignored (returns false). */
bool xs_watch_remove(struct xs_client *c, xs_watch_id id);
/* Removes every watch of owner; returns how many. */
size_t xs_watch_remove_owner(struct xs_client *c, uint32_t owner);
/* Live watches in the registry (a removed watch does not count, even while
 * its UNWATCH is still waiting to be sent). */
size_t xs_watch_count(const struct xs_client *c);

/* ---- transactions (spec §6.5) ----
 * START, then body (queueing the operations), then, once all of them
 * completed, END "T" (or "F" when the body or an operation failed). EAGAIN
 * from END or from an operation re-runs the whole thing, at most
 * XS_TX_ATTEMPTS times; done gets the final status (XS_EAGAIN when every
 * attempt conflicted). Returns XS_OK (done will run exactly once, from a
 * later xs_poll or xs_client_close; a busy client sends START later),
 * XS_ERR_ARG, XS_ERR_CLOSED, or XS_ERR_FULL (XS_TX_MAX running). The
 * operations only queue requests, so a body cannot read inside the
 * transaction; use transactions for multi-key atomic writes (§6.5). Any
 * xs_tx_* failure (busy, bad path) aborts the run with that status. */
enum xs_status xs_transaction(struct xs_client *c, xs_tx_body_fn body, xs_done_fn done,
			      void *ctx);
enum xs_status xs_tx_write(struct xs_tx *tx, const char *path, const void *value, size_t len);
enum xs_status xs_tx_write_str(struct xs_tx *tx, const char *path, const char *value);
enum xs_status xs_tx_mkdir(struct xs_tx *tx, const char *path);
enum xs_status xs_tx_rm(struct xs_tx *tx, const char *path);

/* ---- helpers for replies ---- */

/* Strict unsigned decimal: 1 to 20 ASCII digits, nothing else (no sign,
 * space or newline), value ≤ max. */
bool xs_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Iterates a DIRECTORY reply: *off starts at 0; each call yields the next
 * non-empty NUL-terminated name (never reading past len) and returns false
 * at the end. An unterminated last name is not returned. */
bool xs_dir_next(const char *data, size_t len, size_t *off, const char **name,
		 size_t *name_len);

/* Copies a READ value into buf as a string; false (buf = "") when it holds
 * a NUL or does not fit with its terminator. */
bool xs_value_copy(const char *data, size_t len, char *buf, size_t cap);

/* Path check used for every outgoing path: non-empty, characters
 * [A-Za-z0-9-/_@], no "//", no trailing '/', ≤ XS_ABS_PATH_MAX when
 * absolute, ≤ XS_REL_PATH_MAX when relative (spec §6.2). */
bool xs_path_valid(const char *path);

#endif
