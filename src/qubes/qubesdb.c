/* qubesdb.c — QubesDB client session and local key store (spec §2).
 *
 * Input from dom0 is parsed incrementally from any split of the stream into
 * a private buffer, one message at a time; a message whose header fails
 * validation is discarded by its declared length, so framing is never lost.
 * Output is checked against dom0's limits (§2.4) before it is queued; the
 * queue holds whole messages and a message is written only when the stream
 * has room for all of it. Must never send anything dom0 would consider
 * fatal, never block, never grow. */
#include "qubes/qubesdb.h"

#include "base/byteorder.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"

#define KEY_USED 0x01u
#define KEY_STALE 0x02u /* present before a resync, not yet seen in the dump */

#define REC_HDR 8u /* value record: u32 slot, u32 len, then the bytes */
#define NO_VALUE UINT32_MAX

#define HDR_OFF_PATH 1u
#define HDR_OFF_LEN 68u

/* ---- validation ---------------------------------------------------------- */

static bool path_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '/' || c == '.' || c == ':' || c == '@';
}

bool qdb_path_valid(const char *path, size_t len)
{
	if (len == 0 || len >= QDB_MAX_PATH || path[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!path_char_ok(path[i]))
			return false;
	}
	return true;
}

/* ---- store --------------------------------------------------------------- */

size_t qdb_mem_size(size_t max_keys, size_t value_bytes)
{
	size_t keys = max_keys * sizeof(struct qdb_key);
	size_t index = (max_keys * sizeof(uint16_t) + 7u) & ~(size_t)7u;
	return keys + index + value_bytes;
}

/* First position in the index whose path is >= path. */
static size_t lower_bound(const struct qdb *q, const char *path)
{
	size_t lo = 0, hi = q->nkeys;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(q->keys[q->index[mid]].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First position whose path is > path. */
static size_t upper_bound(const struct qdb *q, const char *path)
{
	size_t lo = 0, hi = q->nkeys;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(q->keys[q->index[mid]].path, path) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct qdb_key *find_key(const struct qdb *q, const char *path, size_t *pos_out)
{
	size_t pos = lower_bound(q, path);
	if (pos_out)
		*pos_out = pos;
	if (pos < q->nkeys && strcmp(q->keys[q->index[pos]].path, path) == 0)
		return &q->keys[q->index[pos]];
	return NULL;
}

static const uint8_t *key_value(const struct qdb *q, const struct qdb_key *k)
{
	static const uint8_t empty[1];
	if (k->val_off == NO_VALUE)
		return empty;
	return q->pool + k->val_off + REC_HDR;
}

static void value_free(struct qdb *q, struct qdb_key *k)
{
	if (k->val_off != NO_VALUE)
		q->pool_garbage += REC_HDR + k->val_len;
	k->val_off = NO_VALUE;
	k->val_len = 0;
}

/* Slides live value records down over the garbage. */
static void pool_compact(struct qdb *q)
{
	size_t rd = 0, wr = 0;
	while (rd < q->pool_used) {
		uint32_t slot = load_le32(q->pool + rd);
		uint32_t len = load_le32(q->pool + rd + 4);
		size_t rec = REC_HDR + len;
		ASSERT(rd + rec <= q->pool_used);
		if (slot < q->max_keys && (q->keys[slot].flags & KEY_USED) &&
		    q->keys[slot].val_off == rd) {
			if (wr != rd)
				memmove(q->pool + wr, q->pool + rd, rec);
			q->keys[slot].val_off = (uint32_t)wr;
			wr += rec;
		}
		rd += rec;
	}
	q->pool_used = wr;
	q->pool_garbage = 0;
}

/* Room for a record of len bytes, compacting if that helps. */
static bool pool_reserve(struct qdb *q, size_t len)
{
	size_t need = REC_HDR + len;
	if (q->pool_size - q->pool_used >= need)
		return true;
	if (q->pool_size - (q->pool_used - q->pool_garbage) < need)
		return false;
	pool_compact(q);
	return q->pool_size - q->pool_used >= need;
}

static void remove_at(struct qdb *q, size_t pos)
{
	uint16_t slot = q->index[pos];
	struct qdb_key *k = &q->keys[slot];
	value_free(q, k);
	k->flags = 0;
	k->path[0] = '\0';
	memmove(&q->index[pos], &q->index[pos + 1], (q->nkeys - pos - 1) * sizeof(q->index[0]));
	q->nkeys--;
}

enum put_result { PUT_SAME, PUT_CHANGED, PUT_FULL };

/* Stores path = value (path already valid). On PUT_FULL any old value of
 * the key has been removed (*removed_old set). */
static enum put_result store_put(struct qdb *q, const char *path, const uint8_t *val, size_t len,
				 bool *removed_old)
{
	size_t pos;
	struct qdb_key *k = find_key(q, path, &pos);
	*removed_old = false;
	if (k) {
		k->flags &= (uint8_t)~KEY_STALE;
		if (k->val_len == len && memcmp(key_value(q, k), val, len) == 0)
			return PUT_SAME;
		value_free(q, k);
		if (len == 0)
			return PUT_CHANGED;
		if (!pool_reserve(q, len)) {
			remove_at(q, pos);
			*removed_old = true;
			return PUT_FULL;
		}
	} else {
		if (q->nkeys >= q->max_keys || (len > 0 && !pool_reserve(q, len)))
			return PUT_FULL;
		size_t slot = 0;
		while (q->keys[slot].flags & KEY_USED)
			slot++;
		ASSERT(slot < q->max_keys);
		k = &q->keys[slot];
		memset(k, 0, sizeof(*k));
		memcpy(k->path, path, strlen(path) + 1);
		k->flags = KEY_USED;
		k->val_off = NO_VALUE;
		memmove(&q->index[pos + 1], &q->index[pos], (q->nkeys - pos) * sizeof(q->index[0]));
		q->index[pos] = (uint16_t)slot;
		q->nkeys++;
		if (len == 0)
			return PUT_CHANGED;
	}
	size_t slot = (size_t)(k - q->keys);
	store_le32(q->pool + q->pool_used, (uint32_t)slot);
	store_le32(q->pool + q->pool_used + 4, (uint32_t)len);
	memcpy(q->pool + q->pool_used + REC_HDR, val, len);
	k->val_off = (uint32_t)q->pool_used;
	k->val_len = (uint32_t)len;
	q->pool_used += REC_HDR + len;
	return PUT_CHANGED;
}

static bool has_prefix(const char *s, const char *prefix, size_t plen)
{
	return strncmp(s, prefix, plen) == 0;
}

enum qdb_result qdb_init(struct qdb *q, void *mem, size_t mem_len, size_t max_keys,
			 size_t value_bytes, qdb_event_fn fn, void *ctx)
{
	memset(q, 0, sizeof(*q));
	if (max_keys == 0 || max_keys > QDB_MAX_KEYS_LIMIT || value_bytes >= UINT32_MAX ||
	    mem == NULL || mem_len < qdb_mem_size(max_keys, value_bytes))
		return QDB_ERR_CONFIG;
	uint8_t *m = mem;
	q->keys = (struct qdb_key *)(void *)m;
	q->max_keys = max_keys;
	m += max_keys * sizeof(struct qdb_key);
	q->index = (uint16_t *)(void *)m;
	m += (max_keys * sizeof(uint16_t) + 7u) & ~(size_t)7u;
	q->pool = m;
	q->pool_size = value_bytes;
	memset(q->keys, 0, max_keys * sizeof(struct qdb_key));
	q->event_fn = fn;
	q->event_ctx = ctx;
	q->state = QDB_DISCONNECTED;
	return QDB_OK;
}

size_t qdb_count(const struct qdb *q)
{
	return q->nkeys;
}

bool qdb_get(const struct qdb *q, const char *path, const uint8_t **value, size_t *len)
{
	if (strnlen(path, QDB_MAX_PATH) >= QDB_MAX_PATH)
		return false;
	const struct qdb_key *k = find_key(q, path, NULL);
	if (!k)
		return false;
	if (value)
		*value = key_value(q, k);
	if (len)
		*len = k->val_len;
	return true;
}

void qdb_iter_init(struct qdb_iter *it, const char *prefix)
{
	size_t n = strnlen(prefix, QDB_MAX_PATH);
	memset(it, 0, sizeof(*it));
	if (n >= QDB_MAX_PATH) {
		it->bad = true;
		return;
	}
	memcpy(it->prefix, prefix, n);
}

bool qdb_iter_next(const struct qdb *q, struct qdb_iter *it, const char **path,
		   const uint8_t **value, size_t *len)
{
	if (it->bad)
		return false;
	size_t plen = strlen(it->prefix);
	size_t pos = it->started ? upper_bound(q, it->last) : lower_bound(q, it->prefix);
	if (pos >= q->nkeys)
		return false;
	const struct qdb_key *k = &q->keys[q->index[pos]];
	if (!has_prefix(k->path, it->prefix, plen))
		return false;
	memcpy(it->last, k->path, sizeof(it->last));
	it->started = true;
	if (path)
		*path = k->path;
	if (value)
		*value = key_value(q, k);
	if (len)
		*len = k->val_len;
	return true;
}

/* ---- events -------------------------------------------------------------- */

static void emit(struct qdb *q, enum qdb_event_type type, const char *path, const uint8_t *val,
		 size_t len)
{
	if (!q->event_fn)
		return;
	struct qdb_event ev = {
		.type = type,
		.path = path ? path : "",
		.value = val,
		.value_len = len,
		.resync = q->synced_once,
	};
	q->event_fn(q->event_ctx, &ev);
}

/* Removes one key or a prefix, reporting each removed key. Returns the
 * number removed. */
static size_t remove_and_report(struct qdb *q, const char *path, bool report)
{
	size_t plen = strlen(path);
	bool prefix = plen > 0 && path[plen - 1] == '/';
	size_t removed = 0;
	char copy[QDB_MAX_PATH];
	char target[QDB_MAX_PATH];
	memcpy(target, path, plen + 1);
	for (;;) {
		size_t pos = lower_bound(q, target);
		if (pos >= q->nkeys)
			break;
		const char *kp = q->keys[q->index[pos]].path;
		if (prefix ? !has_prefix(kp, target, plen) : strcmp(kp, target) != 0)
			break;
		memcpy(copy, kp, QDB_MAX_PATH);
		remove_at(q, pos);
		removed++;
		if (report)
			emit(q, QDB_EV_RM, copy, NULL, 0);
		if (!prefix)
			break;
	}
	return removed;
}

/* ---- send queue ---------------------------------------------------------- */

static size_t tx_free(const struct qdb *q)
{
	return QDB_TX_CAP - (q->tx_tail - q->tx_head);
}

/* Builds and queues one message; the caller has validated it. */
static bool tx_queue(struct qdb *q, uint8_t type, const char *path, const void *data,
		     size_t len)
{
	size_t plen = strlen(path);
	size_t total = QDB_HDR_LEN + len;
	ASSERT(plen < QDB_MAX_PATH && len < QDB_MAX_DATA);
	if (tx_free(q) < total)
		return false;
	if (QDB_TX_CAP - q->tx_tail < total) {
		memmove(q->tx, q->tx + q->tx_head, q->tx_tail - q->tx_head);
		q->tx_tail -= q->tx_head;
		q->tx_head = 0;
	}
	uint8_t *m = q->tx + q->tx_tail;
	memset(m, 0, QDB_HDR_LEN);
	m[0] = type;
	memcpy(m + HDR_OFF_PATH, path, plen + 1); /* with its NUL; the rest is zero */
	store_le32(m + HDR_OFF_LEN, (uint32_t)len);
	if (len)
		memcpy(m + QDB_HDR_LEN, data, len);
	q->tx_tail += total;
	return true;
}

static void disconnect(struct qdb *q)
{
	if (!q->attached)
		return;
	q->stream.ops->close(q->stream.ctx);
	q->attached = false;
	q->dead = false;
	q->state = QDB_DISCONNECTED;
	q->tx_head = q->tx_tail = q->tx_partial = 0;
	q->rx_have = q->rx_need = 0;
	q->rx_skip = 0;
	/* Keys still marked stale from an unfinished resync stay in the store;
	 * the next sync decides about them. */
	log_warn("qubesdb: connection to dom0 closed");
	emit(q, QDB_EV_DISCONNECTED, "", NULL, 0);
}

/* Writes whole queued messages while the stream has room for them. */
static void tx_flush(struct qdb *q)
{
	while (q->attached && !q->dead && q->tx_head < q->tx_tail) {
		size_t want = q->tx_partial;
		if (want == 0) {
			want = QDB_HDR_LEN + load_le32(q->tx + q->tx_head + HDR_OFF_LEN);
			if (q->stream.ops->write_space(q->stream.ctx) < want)
				return;
		}
		int n = q->stream.ops->write(q->stream.ctx, q->tx + q->tx_head, want);
		if (n == STREAM_CLOSED || n < 0 || (size_t)n > want) {
			/* qdb_poll disconnects: never report it from inside qdb_write. */
			q->dead = true;
			return;
		}
		if (n == 0)
			return;
		q->tx_head += (size_t)n;
		q->tx_partial = want - (size_t)n;
		if (q->tx_partial != 0)
			return;
	}
	if (q->tx_head == q->tx_tail)
		q->tx_head = q->tx_tail = 0;
}

/* ---- our writes ---------------------------------------------------------- */

enum qdb_result qdb_write(struct qdb *q, const char *path, const void *value, size_t len)
{
	size_t plen = strnlen(path, QDB_MAX_PATH);
	if (!qdb_path_valid(path, plen)) {
		log_warn("qubesdb: refusing write to an invalid path");
		return QDB_ERR_PATH;
	}
	if (len >= QDB_MAX_DATA || (len > 0 && memchr(value, 0, len) != NULL)) {
		log_warn("qubesdb: refusing write to %s: value too long or contains NUL", path);
		return QDB_ERR_DATA;
	}
	if (!q->attached)
		return QDB_ERR_NOT_CONNECTED;
	if (tx_free(q) < QDB_HDR_LEN + len) {
		log_warn("qubesdb: send queue full, write to %s deferred", path);
		return QDB_ERR_QUEUE;
	}
	bool removed_old;
	if (store_put(q, path, value, len, &removed_old) == PUT_FULL) {
		log_warn("qubesdb: store full, refusing our write to %s", path);
		/* An old value of ours was dropped locally; dom0 still has it, so
		 * keep that consistent by not sending anything. qdb_rm cannot
		 * remove it any more, which is harmless: dom0 keeps a stale key. */
		return QDB_ERR_FULL;
	}
	bool ok = tx_queue(q, QDB_CMD_WRITE, path, value, len);
	ASSERT(ok);
	tx_flush(q);
	return QDB_OK;
}

enum qdb_result qdb_rm(struct qdb *q, const char *path)
{
	size_t plen = strnlen(path, QDB_MAX_PATH);
	if (!qdb_path_valid(path, plen)) {
		log_warn("qubesdb: refusing rm of an invalid path");
		return QDB_ERR_PATH;
	}
	if (!q->attached)
		return QDB_ERR_NOT_CONNECTED;
	if (tx_free(q) < QDB_HDR_LEN) {
		log_warn("qubesdb: send queue full, rm of %s deferred", path);
		return QDB_ERR_QUEUE;
	}
	/* dom0 has every key of our store (it sent them or took our write),
	 * so the store decides whether the RM is safe. */
	if (remove_and_report(q, path, false) == 0) {
		log_warn("qubesdb: not removing %s: dom0 does not have it", path);
		return QDB_ERR_NOENT;
	}
	bool ok = tx_queue(q, QDB_CMD_RM, path, NULL, 0);
	ASSERT(ok);
	tx_flush(q);
	return QDB_OK;
}

/* ---- session ------------------------------------------------------------- */

void qdb_attach(struct qdb *q, struct stream s)
{
	if (q->attached) {
		q->stream.ops->close(q->stream.ctx);
		q->attached = false;
	}
	q->stream = s;
	q->attached = true;
	q->dead = false;
	q->state = QDB_SYNCING;
	q->sessions++;
	q->tx_head = q->tx_tail = q->tx_partial = 0;
	q->rx_have = q->rx_need = 0;
	q->rx_skip = 0;
	for (size_t i = 0; i < q->nkeys; i++)
		q->keys[q->index[i]].flags |= KEY_STALE;
	/* The one MULTIREAD of this session (a second one is fatal for dom0). */
	bool ok = tx_queue(q, QDB_CMD_MULTIREAD, "", NULL, 0);
	ASSERT(ok);
	tx_flush(q);
}

void qdb_close(struct qdb *q)
{
	if (!q->attached)
		return;
	q->stream.ops->close(q->stream.ctx);
	q->attached = false;
	q->dead = false;
	q->state = QDB_DISCONNECTED;
}

enum qdb_state qdb_state(const struct qdb *q)
{
	return q->state;
}

static void finish_sync(struct qdb *q)
{
	char last[QDB_MAX_PATH];
	char copy[QDB_MAX_PATH];
	size_t pos;

	/* Keys dom0 no longer has. */
	last[0] = '\0';
	pos = 0;
	while (pos < q->nkeys) {
		struct qdb_key *k = &q->keys[q->index[pos]];
		if (!(k->flags & KEY_STALE)) {
			pos++;
			continue;
		}
		memcpy(copy, k->path, QDB_MAX_PATH);
		remove_at(q, pos);
		emit(q, QDB_EV_RM, copy, NULL, 0);
		memcpy(last, copy, QDB_MAX_PATH);
		pos = upper_bound(q, last);
	}

	/* Every empty-value key counts as committed (spec §2.5). */
	pos = 0;
	while (pos < q->nkeys) {
		struct qdb_key *k = &q->keys[q->index[pos]];
		if (k->val_len != 0) {
			pos++;
			continue;
		}
		memcpy(copy, k->path, QDB_MAX_PATH);
		emit(q, QDB_EV_COMMIT, copy, NULL, 0);
		pos = upper_bound(q, copy);
	}

	q->state = QDB_SYNCED;
	emit(q, QDB_EV_SYNCED, "", NULL, 0);
	q->synced_once = true;
}

/* dom0 wrote path = data (during the dump or in steady state). */
static void apply_write(struct qdb *q, const char *path, const uint8_t *data, size_t len,
			bool commit)
{
	bool removed_old;
	enum put_result r = store_put(q, path, data, len, &removed_old);
	if (r == PUT_FULL) {
		q->refused_writes++;
		log_warn("qubesdb: store full (%zu keys), refusing %s", q->nkeys, path);
		if (removed_old)
			emit(q, QDB_EV_RM, path, NULL, 0);
		emit(q, QDB_EV_REFUSED, path, NULL, 0);
		return;
	}
	if (r == PUT_CHANGED || commit) {
		/* A repeated write is still reported in steady state: dom0's
		 * empty write is the commit signal and must never be lost. */
		const uint8_t *v;
		size_t vl;
		char copy[QDB_MAX_PATH];
		memcpy(copy, path, strlen(path) + 1);
		if (qdb_get(q, copy, &v, &vl))
			emit(q, QDB_EV_WRITE, copy, v, vl);
		if (commit && len == 0)
			emit(q, QDB_EV_COMMIT, copy, NULL, 0);
	}
}

static bool reply_ok(struct qdb *q, const char *path)
{
	/* Room was checked before the message was taken. */
	bool ok = tx_queue(q, QDB_RESP_OK, path, NULL, 0);
	ASSERT(ok);
	return ok;
}

static void handle_message(struct qdb *q, uint8_t type, const char *path, const uint8_t *data,
			   size_t len)
{
	size_t plen = strlen(path);
	bool path_ok = qdb_path_valid(path, plen);

	switch (type) {
	case QDB_CMD_WRITE:
		if (!path_ok) {
			q->bad_messages++;
			log_warn("qubesdb: dom0 wrote an invalid path, ignored");
			return;
		}
		apply_write(q, path, data, len, true);
		reply_ok(q, path);
		return;
	case QDB_CMD_RM:
		if (!path_ok) {
			q->bad_messages++;
			log_warn("qubesdb: dom0 removed an invalid path, ignored");
			return;
		}
		if (len != 0) {
			q->bad_messages++;
			log_warn("qubesdb: dom0 rm of %s carries data, ignored", path);
		} else if (remove_and_report(q, path, true) == 0) {
			log_debug("qubesdb: dom0 removed %s which we do not have", path);
		}
		reply_ok(q, path);
		return;
	case QDB_RESP_OK:
		return;
	case QDB_RESP_ERROR:
	case QDB_RESP_ERROR_NOENT:
		log_warn("qubesdb: dom0 answered error %u for %s", type, path_ok ? path : "?");
		return;
	case QDB_RESP_MULTIREAD:
		if (q->state != QDB_SYNCING) {
			q->bad_messages++;
			log_warn("qubesdb: unexpected multiread entry, ignored");
			return;
		}
		if (plen == 0 && len == 0) {
			finish_sync(q);
			return;
		}
		if (!path_ok) {
			q->bad_messages++;
			log_warn("qubesdb: dump entry with an invalid path, ignored");
			return;
		}
		apply_write(q, path, data, len, false);
		return;
	default:
		q->bad_messages++;
		log_warn("qubesdb: unexpected message type %u from dom0, ignored", type);
		return;
	}
}

/* Validates a complete header in q->rx. On success sets rx_need. */
static bool header_ok(struct qdb *q, uint32_t *data_len)
{
	uint8_t type = q->rx[0];
	*data_len = load_le32(q->rx + HDR_OFF_LEN);
	if (type > QDB_RESP_WATCH) {
		log_warn("qubesdb: bad message type %u from dom0, skipped", type);
		return false;
	}
	if (memchr(q->rx + HDR_OFF_PATH, 0, QDB_MAX_PATH) == NULL) {
		log_warn("qubesdb: unterminated path from dom0, skipped");
		return false;
	}
	if (*data_len >= QDB_MAX_DATA) {
		log_warn("qubesdb: data_len %u from dom0 too large, skipped", *data_len);
		return false;
	}
	return true;
}

bool qdb_poll(struct qdb *q)
{
	unsigned budget = QDB_POLL_BUDGET;

	tx_flush(q);
	while (q->attached) {
		if (q->dead) {
			disconnect(q);
			return false;
		}
		int n;
		if (q->rx_skip > 0) {
			size_t want = q->rx_skip < sizeof(q->rx) ? (size_t)q->rx_skip : sizeof(q->rx);
			n = q->stream.ops->read(q->stream.ctx, q->rx, want);
			if (n > 0)
				q->rx_skip -= (uint64_t)n;
		} else {
			size_t need = q->rx_have < QDB_HDR_LEN ? QDB_HDR_LEN : q->rx_need;
			if (q->rx_have < need) {
				n = q->stream.ops->read(q->stream.ctx, q->rx + q->rx_have,
							need - q->rx_have);
				if (n > 0)
					q->rx_have += (size_t)n;
			} else {
				n = 1; /* a complete message is waiting for send room */
			}
		}
		if (n == STREAM_CLOSED || n < 0) {
			disconnect(q);
			return false;
		}
		if (n == 0)
			break;
		if (q->rx_skip > 0)
			continue;
		if (q->rx_have == QDB_HDR_LEN && q->rx_need == 0) {
			uint32_t dl;
			if (!header_ok(q, &dl)) {
				q->bad_messages++;
				q->rx_skip = dl;
				q->rx_have = 0;
				continue;
			}
			q->rx_need = QDB_HDR_LEN + dl;
		}
		if (q->rx_have < QDB_HDR_LEN || q->rx_have < q->rx_need)
			continue;
		/* Complete. Handle it only when its reply fits the queue. */
		if (tx_free(q) < QDB_HDR_LEN) {
			tx_flush(q);
			if (tx_free(q) < QDB_HDR_LEN)
				return false; /* resumes when the stream drains */
		}
		char path[QDB_MAX_PATH];
		memcpy(path, q->rx + HDR_OFF_PATH, QDB_MAX_PATH);
		uint8_t type = q->rx[0];
		size_t len = q->rx_need - QDB_HDR_LEN;
		q->rx_have = 0;
		q->rx_need = 0;
		handle_message(q, type, path, q->rx + QDB_HDR_LEN, len);
		tx_flush(q);
		if (--budget == 0)
			return q->attached;
	}
	tx_flush(q);
	if (q->dead)
		disconnect(q);
	return false;
}
