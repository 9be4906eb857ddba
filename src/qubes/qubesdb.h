/* qubesdb.h — the VM side of QubesDB over a byte stream (vchan port 111 on
 * Xen, a vchan-socket on the host): one full sync, then dom0's writes and
 * removes into a fixed-size local key store, and our own writes to dom0.
 *
 * Protocol facts: specs/qubes-protocols.md §2. Every message we send is
 * checked against §2.4 first: one bad message makes dom0's qubesdb-daemon
 * exit, so anything dom0 would find fatal is refused here with an error.
 * Never sends a second MULTIREAD on a session, an RM for a key dom0 does not
 * have, or RESP_ERROR_NOENT. Never grows: the store, the receive buffer and
 * the send queue are fixed at init.
 *
 * Events (callback, synchronous, from qdb_poll only):
 *   QDB_EV_WRITE   a key was stored. In steady state every write from dom0
 *                  is reported, even with an unchanged value; during a sync
 *                  only new/changed keys are (first sync: all).
 *   QDB_EV_RM      a key was removed (one event per key, also for prefix
 *                  removal and for keys that vanished across a reconnect).
 *   QDB_EV_COMMIT  "everything under path/ is complete": follows the WRITE
 *                  event of every empty-value write from dom0, and at the end
 *                  of each sync is sent for every key holding an empty value
 *                  (spec §2.5, §6.1).
 *   QDB_EV_REFUSED dom0 wrote a key the store could not hold (full). Any old
 *                  value of that key was removed first (QDB_EV_RM), so the
 *                  store never holds a stale value; the application should
 *                  fail closed for whatever the key configures.
 *   QDB_EV_SYNCED  the sync is complete (resync = true after a reconnect).
 *   QDB_EV_DISCONNECTED  the stream closed; the store is kept as it was.
 * Order at the end of a sync: RM (stale keys), COMMIT (empty-value keys),
 * SYNCED.
 *
 * Reconnect: when the stream closes, qdb_poll closes it, reports
 * QDB_EV_DISCONNECTED and the owner attaches a new stream with qdb_attach.
 * The new session sends one MULTIREAD; keys are compared against the store
 * and only the differences are reported (WRITE/RM as above), then all
 * commits and SYNCED with resync = true. Keys we wrote that dom0 no longer
 * has disappear like any other key: the application writes its own keys
 * again on QDB_EV_SYNCED.
 *
 * The callback may call qdb_write, qdb_rm, qdb_get and the iterator, but not
 * qdb_poll, qdb_attach or qdb_close. Pointers in an event (path, value) are
 * valid until the callback returns or calls qdb_write/qdb_rm. */
#ifndef QUBES_QUBESDB_H
#define QUBES_QUBESDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

#define QDB_VCHAN_PORT 111u
#define QDB_HDR_LEN 72u
#define QDB_MAX_PATH 64u       /* path field size, NUL included: <= 63 chars */
#define QDB_MAX_DATA 3072u     /* data_len must be < QDB_MAX_DATA */
#define QDB_MSG_MAX (QDB_HDR_LEN + QDB_MAX_DATA - 1u)

/* Message types (spec §2.3). */
enum qdb_msg_type {
	QDB_CMD_READ = 0,
	QDB_CMD_WRITE = 1,
	QDB_CMD_MULTIREAD = 2,
	QDB_CMD_LIST = 3,
	QDB_CMD_RM = 4,
	QDB_CMD_WATCH = 5,
	QDB_CMD_UNWATCH = 6,
	QDB_RESP_OK = 7,
	QDB_RESP_ERROR_NOENT = 8,
	QDB_RESP_ERROR = 9,
	QDB_RESP_READ = 10,
	QDB_RESP_MULTIREAD = 11,
	QDB_RESP_LIST = 12,
	QDB_RESP_WATCH = 13,
};

/* Default store size: 2048 keys, 512 KiB of values (each non-empty value
 * costs its length plus an 8-byte record header). */
#define QDB_DEFAULT_MAX_KEYS 2048u
#define QDB_DEFAULT_VALUE_BYTES 524288u /* 512 KiB */
#define QDB_MAX_KEYS_LIMIT 65535u
/* Send queue: our writes and the replies to dom0's. */
#define QDB_TX_CAP 16384u
/* Messages handled per qdb_poll call before it returns "more pending". */
#define QDB_POLL_BUDGET 64u

enum qdb_result {
	QDB_OK = 0,
	QDB_ERR_PATH,          /* path dom0 would reject (§2.4) */
	QDB_ERR_DATA,          /* value too long or containing NUL */
	QDB_ERR_NOENT,         /* qdb_rm: dom0 does not have that key */
	QDB_ERR_FULL,          /* local store full */
	QDB_ERR_QUEUE,         /* send queue full; try again after qdb_poll */
	QDB_ERR_NOT_CONNECTED, /* no session attached */
	QDB_ERR_CONFIG,        /* qdb_init: bad sizes or too little memory */
};

enum qdb_state {
	QDB_DISCONNECTED = 0, /* no stream; the store keeps the last contents */
	QDB_SYNCING,          /* MULTIREAD sent, dump arriving */
	QDB_SYNCED,           /* steady state */
};

enum qdb_event_type {
	QDB_EV_WRITE,
	QDB_EV_RM,
	QDB_EV_COMMIT,
	QDB_EV_REFUSED,
	QDB_EV_SYNCED,
	QDB_EV_DISCONNECTED,
};

struct qdb_event {
	enum qdb_event_type type;
	const char *path;     /* "" for SYNCED, DISCONNECTED */
	const uint8_t *value; /* WRITE: the value (not NUL-terminated) */
	size_t value_len;
	bool resync;          /* SYNCED: not the first sync */
};

typedef void (*qdb_event_fn)(void *ctx, const struct qdb_event *ev);

/* One stored key (internal layout; exposed for sizing only). */
struct qdb_key {
	char path[QDB_MAX_PATH];
	uint32_t val_off; /* record offset in the value pool, UINT32_MAX if empty */
	uint32_t val_len;
	uint8_t flags;
};

struct qdb {
	/* store */
	struct qdb_key *keys;
	uint16_t *index; /* slots of used keys, sorted by path */
	size_t max_keys;
	size_t nkeys;
	uint8_t *pool;
	size_t pool_size;
	size_t pool_used;
	size_t pool_garbage;

	qdb_event_fn event_fn;
	void *event_ctx;

	/* session */
	struct stream stream;
	bool attached;
	bool dead; /* a write failed; qdb_poll reports the disconnect */
	bool synced_once;
	enum qdb_state state;
	uint32_t sessions;

	/* receive: one message at a time */
	uint8_t rx[QDB_MSG_MAX];
	size_t rx_have;
	size_t rx_need;
	uint64_t rx_skip; /* bytes of a rejected message still to discard */

	/* send queue of whole messages */
	uint8_t tx[QDB_TX_CAP];
	size_t tx_head;
	size_t tx_tail;
	size_t tx_partial; /* bytes of the head message still owed after a short write */

	/* counters */
	uint64_t refused_writes;
	uint64_t bad_messages;
};

/* Bytes of caller memory for a store of max_keys keys and value_bytes of
 * value pool (align it to 8). */
size_t qdb_mem_size(size_t max_keys, size_t value_bytes);

/* Carves the store from mem (qdb_mem_size bytes). No session yet. */
enum qdb_result qdb_init(struct qdb *q, void *mem, size_t mem_len, size_t max_keys,
			 size_t value_bytes, qdb_event_fn fn, void *ctx);

/* Starts a session on a connected stream: queues the one MULTIREAD of ""
 * and marks the store for comparison. Closes a previous stream if any. */
void qdb_attach(struct qdb *q, struct stream s);

/* Reads, handles and answers dom0's messages, flushes the send queue.
 * Returns true when work is left (the message budget ran out): call again
 * without waiting for an event. */
bool qdb_poll(struct qdb *q);

/* Closes the stream (shutdown). The store is kept. */
void qdb_close(struct qdb *q);

enum qdb_state qdb_state(const struct qdb *q);

/* Stores path = value locally and queues CMD_WRITE to dom0. Refused (and
 * logged) when dom0 would reject it: path not 1..63 of [A-Za-z0-9-_/.:@]
 * without a leading '-', len >= 3072, a NUL in value. */
enum qdb_result qdb_write(struct qdb *q, const char *path, const void *value, size_t len);

/* Removes path (every key under it when it ends in '/') locally and queues
 * CMD_RM. Refused with QDB_ERR_NOENT when the store has no such key, since
 * dom0 treats an RM of a missing key as fatal. */
enum qdb_result qdb_rm(struct qdb *q, const char *path);

/* Exact lookup. The value stays valid until the next store change. */
bool qdb_get(const struct qdb *q, const char *path, const uint8_t **value, size_t *len);

/* Iteration over keys starting with prefix, in strcmp order. Safe across
 * store changes (continues after the last path returned). */
struct qdb_iter {
	char prefix[QDB_MAX_PATH];
	char last[QDB_MAX_PATH];
	bool started;
	bool bad;
};
void qdb_iter_init(struct qdb_iter *it, const char *prefix);
bool qdb_iter_next(const struct qdb *q, struct qdb_iter *it, const char **path,
		   const uint8_t **value, size_t *len);

size_t qdb_count(const struct qdb *q);

/* True when path (len chars, no NUL) is a key dom0 accepts from us. */
bool qdb_path_valid(const char *path, size_t len);

#endif
