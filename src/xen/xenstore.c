/* xenstore.c — the XenStore client: message framing over a byte stream, the
 * pending-request table, the watch registry and transactions.
 *
 * Protocol facts: /work/shared/specs/xen-platform.md §6 and §11.2 (17-18).
 * The incremental parser reads exactly the bytes of the message it is
 * assembling, so any split of the incoming stream is handled; a length above
 * XS_PAYLOAD_MAX closes the connection. Every reply is checked against the
 * request it answers before a callback sees it. Must never block, allocate,
 * trust xenstored's bytes, or create a watch the caller did not ask for
 * (the mirage 0.8.3 watch leak, anchors §3). */
#include "xen/xenstore.h"

#include "base/byteorder.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"

enum pending_kind {
	PK_FREE = 0,
	PK_USER,
	PK_READ_STR,
	PK_WATCH,
	PK_UNWATCH,
	PK_TX_START,
	PK_TX_OP,
	PK_TX_END,
};

enum watch_state {
	WS_FREE = 0,
	WS_LIVE,
	WS_ZOMBIE, /* removed by the caller, UNWATCH still to be sent */
};

enum tx_state {
	TS_FREE = 0,
	TS_NEED_START,
	TS_STARTING,
	TS_OPS,
	TS_NEED_END,
	TS_ENDING,
};

#define WATCH_GEN_MASK 0xffffffu
#define WATCH_SLOT_SHIFT 8u

struct part {
	const void *p;
	size_t len;
};

static const char *const errno_names[] = {
	[XS_EINVAL] = "EINVAL",	  [XS_EACCES] = "EACCES", [XS_EEXIST] = "EEXIST",
	[XS_EISDIR] = "EISDIR",	  [XS_ENOENT] = "ENOENT", [XS_ENOMEM] = "ENOMEM",
	[XS_ENOSPC] = "ENOSPC",	  [XS_EIO] = "EIO",	  [XS_ENOTEMPTY] = "ENOTEMPTY",
	[XS_ENOSYS] = "ENOSYS",	  [XS_EROFS] = "EROFS",	  [XS_EBUSY] = "EBUSY",
	[XS_EAGAIN] = "EAGAIN",	  [XS_EISCONN] = "EISCONN", [XS_E2BIG] = "E2BIG",
	[XS_EPERM] = "EPERM",
};

const char *xs_status_name(enum xs_status st)
{
	switch (st) {
	case XS_OK:
		return "OK";
	case XS_EOTHER:
		return "unknown error";
	case XS_ERR_BUSY:
		return "busy";
	case XS_ERR_FULL:
		return "table full";
	case XS_ERR_ARG:
		return "bad argument";
	case XS_ERR_CLOSED:
		return "connection closed";
	case XS_ERR_PROTO:
		return "malformed reply";
	case XS_ERR_VALUE:
		return "unexpected value";
	default:
		break;
	}
	if ((size_t)st < ARRAY_LEN(errno_names) && errno_names[st])
		return errno_names[st];
	return "?";
}

static const char *msg_type_name(uint32_t type)
{
	switch (type) {
	case XS_MSG_DIRECTORY:
		return "DIRECTORY";
	case XS_MSG_READ:
		return "READ";
	case XS_MSG_WATCH:
		return "WATCH";
	case XS_MSG_UNWATCH:
		return "UNWATCH";
	case XS_MSG_TRANSACTION_START:
		return "TRANSACTION_START";
	case XS_MSG_TRANSACTION_END:
		return "TRANSACTION_END";
	case XS_MSG_GET_DOMAIN_PATH:
		return "GET_DOMAIN_PATH";
	case XS_MSG_WRITE:
		return "WRITE";
	case XS_MSG_MKDIR:
		return "MKDIR";
	case XS_MSG_RM:
		return "RM";
	case XS_MSG_WATCH_EVENT:
		return "WATCH_EVENT";
	case XS_MSG_ERROR:
		return "ERROR";
	default:
		return "other";
	}
}

/* ---- helpers ---------------------------------------------------------- */

bool xs_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

bool xs_dir_next(const char *data, size_t len, size_t *off, const char **name,
		 size_t *name_len)
{
	while (*off < len) {
		const char *start = data + *off;
		const char *nul = memchr(start, 0, len - *off);
		if (!nul) {
			*off = len;
			return false;
		}
		size_t n = (size_t)(nul - start);
		*off += n + 1;
		if (n > 0) {
			*name = start;
			*name_len = n;
			return true;
		}
	}
	return false;
}

bool xs_value_copy(const char *data, size_t len, char *buf, size_t cap)
{
	if (cap == 0)
		return false;
	if (len >= cap || (len > 0 && memchr(data, 0, len))) {
		buf[0] = '\0';
		return false;
	}
	if (len > 0)
		memcpy(buf, data, len);
	buf[len] = '\0';
	return true;
}

static bool path_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '/' || ch == '_' || ch == '@';
}

bool xs_path_valid(const char *path)
{
	if (!path)
		return false;
	size_t n = strnlen(path, XS_ABS_PATH_MAX + 1);
	if (n == 0)
		return false;
	if (n > (path[0] == '/' ? XS_ABS_PATH_MAX : XS_REL_PATH_MAX))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!path_char_ok(path[i]))
			return false;
		if (path[i] == '/' && i > 0 && path[i - 1] == '/')
			return false;
	}
	return n == 1 || path[n - 1] != '/';
}

static enum xs_status errno_from_name(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_LEN(errno_names); i++) {
		const char *e = errno_names[i];
		if (e && strlen(e) == len && memcmp(e, name, len) == 0)
			return (enum xs_status)i;
	}
	return XS_EOTHER;
}

/* ---- outgoing ----------------------------------------------------------- */

static void out_push(struct xs_client *c, const void *p, size_t len)
{
	const uint8_t *b = p;
	ASSERT(len <= XS_OUT_BUF_SIZE - c->out_len);
	for (size_t done = 0; done < len;) {
		size_t tail = (c->out_head + c->out_len) % XS_OUT_BUF_SIZE;
		size_t chunk = MIN(len - done, XS_OUT_BUF_SIZE - tail);
		memcpy(c->out + tail, b + done, chunk);
		c->out_len += chunk;
		done += chunk;
	}
}

/* Hands queued bytes to the stream as far as it takes them. A failing
 * stream only marks the client broken: the close (and its callbacks)
 * happens in xs_poll, never inside a request call. */
static void flush_out(struct xs_client *c)
{
	while (c->open && !c->broken && c->out_len > 0) {
		size_t chunk = MIN(c->out_len, XS_OUT_BUF_SIZE - c->out_head);
		size_t space = c->stream.ops->write_space(c->stream.ctx);
		if (space == 0)
			break;
		chunk = MIN(chunk, space);
		int n = c->stream.ops->write(c->stream.ctx, c->out + c->out_head, chunk);
		if (n < 0 || (size_t)n > chunk) {
			log_warn("xenstore: stream write failed, closing");
			c->broken = true;
			break;
		}
		if (n == 0)
			break;
		c->out_head = (c->out_head + (size_t)n) % XS_OUT_BUF_SIZE;
		c->out_len -= (size_t)n;
	}
}

static bool req_id_in_use(const struct xs_client *c, uint32_t id)
{
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++)
		if (c->pending[i].kind != PK_FREE && c->pending[i].req_id == id)
			return true;
	return false;
}

static uint32_t alloc_req_id(struct xs_client *c)
{
	/* At most XS_MAX_IN_FLIGHT ids are taken, plus 0 which we skip. */
	for (size_t tries = 0; tries < XS_MAX_IN_FLIGHT + 2; tries++) {
		uint32_t id = c->next_req_id++;
		if (id != 0 && !req_id_in_use(c, id))
			return id;
	}
	panic("xenstore: no free request id");
}

/* Queues one whole message and takes a pending slot for its reply. */
static enum xs_status send_msg(struct xs_client *c, uint8_t kind, uint8_t type, uint32_t tx_id,
			       const struct part *parts, size_t nparts, struct xs_pending **out)
{
	size_t len = 0;
	struct xs_pending *p = NULL;
	uint8_t hdr[XS_HEADER_LEN];

	if (!c->open || c->broken)
		return XS_ERR_CLOSED;
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].len > XS_PAYLOAD_MAX - len)
			return XS_ERR_ARG;
		len += parts[i].len;
	}
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT && !p; i++)
		if (c->pending[i].kind == PK_FREE)
			p = &c->pending[i];
	if (!p || XS_OUT_BUF_SIZE - c->out_len < XS_HEADER_LEN + len)
		return XS_ERR_BUSY;

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->type = type;
	p->req_id = alloc_req_id(c);
	store_le32(hdr, type);
	store_le32(hdr + 4, p->req_id);
	store_le32(hdr + 8, tx_id);
	store_le32(hdr + 12, (uint32_t)len);
	out_push(c, hdr, sizeof(hdr));
	for (size_t i = 0; i < nparts; i++)
		out_push(c, parts[i].p, parts[i].len);
	flush_out(c);
	if (out)
		*out = p;
	return XS_OK;
}

/* A path as a NUL-terminated payload part, after validation. */
static bool path_part(const char *path, struct part *pt)
{
	if (!xs_path_valid(path))
		return false;
	pt->p = path;
	pt->len = strlen(path) + 1;
	return true;
}

static enum xs_status user_request(struct xs_client *c, uint8_t type, uint32_t tx_id,
				   const struct part *parts, size_t nparts, xs_reply_fn cb,
				   void *ctx)
{
	struct xs_pending *p;
	enum xs_status st = send_msg(c, PK_USER, type, tx_id, parts, nparts, &p);
	if (st == XS_OK) {
		p->reply = cb;
		p->ctx = ctx;
	}
	return st;
}

static enum xs_status path_request(struct xs_client *c, uint8_t type, const char *path,
				   xs_reply_fn cb, void *ctx)
{
	struct part pt;
	if (!path_part(path, &pt))
		return XS_ERR_ARG;
	return user_request(c, type, 0, &pt, 1, cb, ctx);
}

enum xs_status xs_read(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx)
{
	return path_request(c, XS_MSG_READ, path, cb, ctx);
}

enum xs_status xs_mkdir(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx)
{
	return path_request(c, XS_MSG_MKDIR, path, cb, ctx);
}

enum xs_status xs_rm(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx)
{
	return path_request(c, XS_MSG_RM, path, cb, ctx);
}

enum xs_status xs_directory(struct xs_client *c, const char *path, xs_reply_fn cb, void *ctx)
{
	return path_request(c, XS_MSG_DIRECTORY, path, cb, ctx);
}

enum xs_status xs_write(struct xs_client *c, const char *path, const void *value, size_t len,
			xs_reply_fn cb, void *ctx)
{
	struct part pt[2];
	if (!path_part(path, &pt[0]) || (!value && len > 0))
		return XS_ERR_ARG;
	pt[1].p = value;
	pt[1].len = len;
	return user_request(c, XS_MSG_WRITE, 0, pt, 2, cb, ctx);
}

enum xs_status xs_write_str(struct xs_client *c, const char *path, const char *value,
			    xs_reply_fn cb, void *ctx)
{
	if (!value)
		return XS_ERR_ARG;
	return xs_write(c, path, value, strnlen(value, XS_PAYLOAD_MAX + 1), cb, ctx);
}

enum xs_status xs_get_domain_path(struct xs_client *c, uint32_t domid, xs_reply_fn cb,
				  void *ctx)
{
	char num[12];
	struct part pt;
	int n = fmt_snprintf(num, sizeof(num), "%u", domid);
	pt.p = num;
	pt.len = (size_t)n + 1;
	return user_request(c, XS_MSG_GET_DOMAIN_PATH, 0, &pt, 1, cb, ctx);
}

enum xs_status xs_read_str(struct xs_client *c, const char *path, char *buf, size_t cap,
			   xs_done_fn done, void *ctx)
{
	struct part pt;
	struct xs_pending *p;

	if (!buf || cap == 0 || !done || !path_part(path, &pt))
		return XS_ERR_ARG;
	enum xs_status st = send_msg(c, PK_READ_STR, XS_MSG_READ, 0, &pt, 1, &p);
	if (st == XS_OK) {
		p->buf = buf;
		p->cap = cap;
		p->done = done;
		p->ctx = ctx;
	}
	return st;
}

size_t xs_in_flight(const struct xs_client *c)
{
	size_t n = 0;
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++)
		n += c->pending[i].kind != PK_FREE;
	return n;
}

/* ---- watches ------------------------------------------------------------ */

static xs_watch_id watch_id(size_t slot, uint32_t gen)
{
	return gen << WATCH_SLOT_SHIFT | (uint32_t)slot;
}

static struct xs_watch *watch_by_id(struct xs_client *c, xs_watch_id id)
{
	size_t slot = id & ((1u << WATCH_SLOT_SHIFT) - 1);
	uint32_t gen = id >> WATCH_SLOT_SHIFT;
	if (id == 0 || slot >= XS_WATCH_MAX)
		return NULL;
	struct xs_watch *w = &c->watches[slot];
	if (w->state == WS_FREE || w->gen != gen)
		return NULL;
	return w;
}

static enum xs_status send_watch_msg(struct xs_client *c, size_t slot, uint8_t kind, uint8_t type)
{
	struct xs_watch *w = &c->watches[slot];
	struct part pt[2] = {
		{ w->path, strlen(w->path) + 1 },
		{ w->token, strlen(w->token) + 1 },
	};
	struct xs_pending *p;
	enum xs_status st = send_msg(c, kind, type, 0, pt, 2, &p);
	if (st == XS_OK)
		p->ref = watch_id(slot, w->gen);
	return st;
}

static enum xs_status try_send_watch(struct xs_client *c, size_t slot)
{
	struct xs_watch *w = &c->watches[slot];
	enum xs_status st = send_watch_msg(c, slot, PK_WATCH, XS_MSG_WATCH);
	if (st == XS_OK)
		w->need_watch = false;
	else
		c->deferred = true;
	return st;
}

static enum xs_status try_send_unwatch(struct xs_client *c, size_t slot)
{
	struct xs_watch *w = &c->watches[slot];
	enum xs_status st = send_watch_msg(c, slot, PK_UNWATCH, XS_MSG_UNWATCH);
	if (st == XS_OK)
		memset(w, 0, sizeof(*w));
	else
		c->deferred = true;
	return st;
}

enum xs_status xs_watch_add(struct xs_client *c, uint32_t owner, const char *path,
			    xs_watch_fn cb, void *ctx, xs_watch_id *out)
{
	size_t slot;

	if (!cb || !xs_path_valid(path) || strnlen(path, XS_WATCH_PATH_MAX) >= XS_WATCH_PATH_MAX)
		return XS_ERR_ARG;
	for (slot = 0; slot < XS_WATCH_MAX; slot++)
		if (c->watches[slot].state == WS_FREE)
			break;
	if (slot == XS_WATCH_MAX) {
		log_warn("xenstore: watch table full (%u), not watching %s", XS_WATCH_MAX, path);
		return XS_ERR_FULL;
	}
	c->next_watch_gen = (c->next_watch_gen + 1) & WATCH_GEN_MASK;
	if (c->next_watch_gen == 0)
		c->next_watch_gen = 1;

	struct xs_watch *w = &c->watches[slot];
	memset(w, 0, sizeof(*w));
	w->state = WS_LIVE;
	w->need_watch = true;
	w->gen = c->next_watch_gen;
	w->owner = owner;
	w->cb = cb;
	w->ctx = ctx;
	memcpy(w->path, path, strlen(path) + 1);
	/* Unique per registration (§6.4): slot and generation. */
	fmt_snprintf(w->token, sizeof(w->token), "w%zu.%u", slot, w->gen);
	if (out)
		*out = watch_id(slot, w->gen);
	if (c->open)
		(void)try_send_watch(c, slot);
	else
		c->deferred = true;
	return XS_OK;
}

bool xs_watch_remove(struct xs_client *c, xs_watch_id id)
{
	struct xs_watch *w = watch_by_id(c, id);
	if (!w || w->state != WS_LIVE)
		return false;
	w->cb = NULL;
	w->ctx = NULL;
	if (!c->open || w->need_watch || w->failed) {
		/* The server does not hold it on this connection. */
		memset(w, 0, sizeof(*w));
		return true;
	}
	w->state = WS_ZOMBIE;
	(void)try_send_unwatch(c, (size_t)(w - c->watches));
	return true;
}

size_t xs_watch_remove_owner(struct xs_client *c, uint32_t owner)
{
	size_t n = 0;
	for (size_t i = 0; i < XS_WATCH_MAX; i++) {
		struct xs_watch *w = &c->watches[i];
		if (w->state == WS_LIVE && w->owner == owner)
			n += xs_watch_remove(c, watch_id(i, w->gen));
	}
	return n;
}

size_t xs_watch_count(const struct xs_client *c)
{
	size_t n = 0;
	for (size_t i = 0; i < XS_WATCH_MAX; i++)
		n += c->watches[i].state == WS_LIVE;
	return n;
}

static void watch_acked(struct xs_client *c, xs_watch_id id, enum xs_status st)
{
	struct xs_watch *w = watch_by_id(c, id);
	if (!w || w->state != WS_LIVE)
		return; /* removed meanwhile; its UNWATCH follows */
	if (st == XS_OK) {
		w->registered = true;
	} else if (st != XS_ERR_CLOSED) {
		w->failed = true;
		log_warn("xenstore: WATCH %s refused: %s", w->path, xs_status_name(st));
	}
}

/* "w<slot>.<gen>" → slot, or -1. The full token is compared afterwards. */
static long token_slot(const char *tok, size_t len)
{
	size_t slot = 0, i = 1;
	if (len < 4 || len >= XS_TOKEN_MAX || tok[0] != 'w')
		return -1;
	for (; i < len && tok[i] >= '0' && tok[i] <= '9' && i < 5; i++)
		slot = slot * 10 + (size_t)(tok[i] - '0');
	if (i == 1 || i >= len || tok[i] != '.' || slot >= XS_WATCH_MAX)
		return -1;
	return (long)slot;
}

static void handle_watch_event(struct xs_client *c, const char *data, size_t len)
{
	const char *nul = memchr(data, 0, len);
	if (!nul || nul == data) {
		log_warn("xenstore: watch event without a path, dropped");
		c->dropped_messages++;
		return;
	}
	size_t plen = (size_t)(nul - data);
	const char *tok = nul + 1;
	size_t rest = len - plen - 1;
	const char *tnul = memchr(tok, 0, rest);
	if (!tnul || tnul == tok) {
		log_warn("xenstore: watch event without a token, dropped");
		c->dropped_messages++;
		return;
	}
	size_t tlen = (size_t)(tnul - tok);
	long slot = token_slot(tok, tlen);
	struct xs_watch *w = slot >= 0 ? &c->watches[slot] : NULL;
	if (!w || w->state != WS_LIVE || !w->cb || strlen(w->token) != tlen ||
	    memcmp(w->token, tok, tlen) != 0) {
		/* Normal after UNWATCH (§6.4): late events for removed watches. */
		log_debug("xenstore: watch event for unknown token, ignored");
		return;
	}
	c->watch_events++;
	w->cb(w->ctx, watch_id((size_t)slot, w->gen), data, plen);
}

/* ---- transactions --------------------------------------------------------- */

static void tx_finish(struct xs_tx *t, enum xs_status st)
{
	xs_done_fn done = t->done;
	void *ctx = t->ctx;
	memset(t, 0, sizeof(*t));
	done(ctx, st);
}

static size_t tx_index(const struct xs_client *c, const struct xs_tx *t)
{
	return (size_t)(t - c->tx);
}

static void tx_try_start(struct xs_client *c, struct xs_tx *t)
{
	static const char empty[1] = { 0 };
	struct part pt = { empty, 1 };
	struct xs_pending *p;
	enum xs_status st = send_msg(c, PK_TX_START, XS_MSG_TRANSACTION_START, 0, &pt, 1, &p);
	if (st == XS_OK) {
		p->ref = (uint32_t)tx_index(c, t);
		t->state = TS_STARTING;
	} else if (st == XS_ERR_BUSY) {
		t->state = TS_NEED_START;
		c->deferred = true;
	} else {
		tx_finish(t, st);
	}
}

static void tx_try_end(struct xs_client *c, struct xs_tx *t)
{
	struct part pt = { t->commit ? "T" : "F", 2 };
	struct xs_pending *p;
	enum xs_status st = send_msg(c, PK_TX_END, XS_MSG_TRANSACTION_END, t->tx_id, &pt, 1, &p);
	if (st == XS_OK) {
		p->ref = (uint32_t)tx_index(c, t);
		t->state = TS_ENDING;
	} else if (st == XS_ERR_BUSY) {
		t->state = TS_NEED_END;
		c->deferred = true;
	} else {
		tx_finish(t, st);
	}
}

static void tx_maybe_end(struct xs_client *c, struct xs_tx *t)
{
	if (t->in_body || t->ops_pending > 0)
		return;
	t->commit = t->op_status == XS_OK;
	tx_try_end(c, t);
}

static void tx_retry_or_finish(struct xs_client *c, struct xs_tx *t, enum xs_status st)
{
	if (st == XS_EAGAIN && t->attempts < XS_TX_ATTEMPTS) {
		tx_try_start(c, t);
		return;
	}
	if (st == XS_EAGAIN)
		log_warn("xenstore: transaction still conflicting after %u attempts, giving up",
			 XS_TX_ATTEMPTS);
	tx_finish(t, st);
}

enum xs_status xs_transaction(struct xs_client *c, xs_tx_body_fn body, xs_done_fn done,
			      void *ctx)
{
	struct xs_tx *t = NULL;

	if (!body || !done)
		return XS_ERR_ARG;
	if (!c->open || c->broken)
		return XS_ERR_CLOSED;
	for (size_t i = 0; i < XS_TX_MAX && !t; i++)
		if (c->tx[i].state == TS_FREE)
			t = &c->tx[i];
	if (!t)
		return XS_ERR_FULL;
	memset(t, 0, sizeof(*t));
	t->client = c;
	t->body = body;
	t->done = done;
	t->ctx = ctx;
	/* Busy: the START goes out from a later poll. Other failures cannot
	 * happen here (the connection is open), so done is not called now. */
	tx_try_start(c, t);
	return XS_OK;
}

static void tx_started(struct xs_client *c, struct xs_tx *t, enum xs_status st, const char *data,
		       size_t len)
{
	uint64_t id;

	if (st != XS_OK) {
		tx_finish(t, st);
		return;
	}
	if (!xs_parse_uint(data, len, UINT32_MAX, &id) || id == 0) {
		log_warn("xenstore: bad transaction id in TRANSACTION_START reply");
		c->protocol_errors++;
		tx_finish(t, XS_ERR_PROTO);
		return;
	}
	t->tx_id = (uint32_t)id;
	t->attempts++;
	t->ops_pending = 0;
	t->op_status = XS_OK;
	t->state = TS_OPS;
	t->in_body = true;
	enum xs_status body_st = t->body(t->ctx, t);
	t->in_body = false;
	if (body_st != XS_OK && t->op_status == XS_OK)
		t->op_status = body_st;
	tx_maybe_end(c, t);
}

static void tx_op_done(struct xs_client *c, struct xs_tx *t, enum xs_status st)
{
	ASSERT(t->ops_pending > 0);
	t->ops_pending--;
	if (st != XS_OK && t->op_status == XS_OK)
		t->op_status = st;
	tx_maybe_end(c, t);
}

static void tx_ended(struct xs_client *c, struct xs_tx *t, enum xs_status st)
{
	if (t->commit) {
		tx_retry_or_finish(c, t, st);
		return;
	}
	if (st != XS_OK && st != XS_ERR_CLOSED)
		log_debug("xenstore: transaction abort answered %s", xs_status_name(st));
	tx_retry_or_finish(c, t, t->op_status);
}

static enum xs_status tx_op(struct xs_tx *t, uint8_t type, const struct part *parts, size_t n)
{
	ASSERT(t->in_body && t->state == TS_OPS);
	struct xs_client *c = t->client;
	struct xs_pending *p;
	enum xs_status st = send_msg(c, PK_TX_OP, type, t->tx_id, parts, n, &p);
	if (st == XS_OK) {
		p->ref = (uint32_t)tx_index(c, t);
		t->ops_pending++;
	} else if (t->op_status == XS_OK) {
		t->op_status = st;
	}
	return st;
}

enum xs_status xs_tx_write(struct xs_tx *tx, const char *path, const void *value, size_t len)
{
	struct part pt[2];
	if (!path_part(path, &pt[0]) || (!value && len > 0)) {
		if (tx->op_status == XS_OK)
			tx->op_status = XS_ERR_ARG;
		return XS_ERR_ARG;
	}
	pt[1].p = value;
	pt[1].len = len;
	return tx_op(tx, XS_MSG_WRITE, pt, 2);
}

enum xs_status xs_tx_write_str(struct xs_tx *tx, const char *path, const char *value)
{
	if (!value)
		return xs_tx_write(tx, path, NULL, 1);
	return xs_tx_write(tx, path, value, strnlen(value, XS_PAYLOAD_MAX + 1));
}

static enum xs_status tx_path_op(struct xs_tx *tx, uint8_t type, const char *path)
{
	struct part pt;
	if (!path_part(path, &pt)) {
		if (tx->op_status == XS_OK)
			tx->op_status = XS_ERR_ARG;
		return XS_ERR_ARG;
	}
	return tx_op(tx, type, &pt, 1);
}

enum xs_status xs_tx_mkdir(struct xs_tx *tx, const char *path)
{
	return tx_path_op(tx, XS_MSG_MKDIR, path);
}

enum xs_status xs_tx_rm(struct xs_tx *tx, const char *path)
{
	return tx_path_op(tx, XS_MSG_RM, path);
}

/* ---- completion and dispatch ---------------------------------------------- */

/* p is a copy: the table slot is already free, so callbacks may reuse it. */
static void complete(struct xs_client *c, const struct xs_pending *p, enum xs_status st,
		     const char *data, size_t len)
{
	struct xs_tx *t = NULL;

	if (p->kind == PK_TX_START || p->kind == PK_TX_OP || p->kind == PK_TX_END) {
		ASSERT(p->ref < XS_TX_MAX);
		t = &c->tx[p->ref];
	}
	switch (p->kind) {
	case PK_USER:
		if (p->reply)
			p->reply(p->ctx, st, data, len);
		else if (st != XS_OK && st != XS_ERR_CLOSED)
			log_warn("xenstore: %s failed: %s", msg_type_name(p->type),
				 xs_status_name(st));
		break;
	case PK_READ_STR:
		if (st == XS_OK && !xs_value_copy(data, len, p->buf, p->cap)) {
			log_warn("xenstore: value of %zu bytes does not fit a %zu-byte string", len,
				 p->cap);
			st = XS_ERR_VALUE;
		}
		if (st != XS_OK)
			p->buf[0] = '\0';
		p->done(p->ctx, st);
		break;
	case PK_WATCH:
		watch_acked(c, p->ref, st);
		break;
	case PK_UNWATCH:
		/* The node may be gone already (anchors §3, unwatch crash). */
		if (st == XS_ENOENT)
			log_debug("xenstore: UNWATCH answered ENOENT (node gone), fine");
		else if (st != XS_OK && st != XS_ERR_CLOSED)
			log_warn("xenstore: UNWATCH failed: %s", xs_status_name(st));
		break;
	case PK_TX_START:
		if (t->state == TS_STARTING)
			tx_started(c, t, st, data, len);
		break;
	case PK_TX_OP:
		if (t->state == TS_OPS)
			tx_op_done(c, t, st);
		break;
	case PK_TX_END:
		if (t->state == TS_ENDING)
			tx_ended(c, t, st);
		break;
	default:
		panic("xenstore: pending entry of kind %u", p->kind);
	}
}

static bool is_ok_ack(const char *data, size_t len)
{
	return len == 3 && memcmp(data, "OK", 3) == 0;
}

/* Checks a successful reply's payload against its request type and trims it
 * to what callbacks get. False when malformed. */
static bool check_reply(uint8_t type, const char **data, size_t *len)
{
	switch (type) {
	case XS_MSG_READ:
		return true;
	case XS_MSG_DIRECTORY:
		return *len == 0 || (*data)[*len - 1] == '\0';
	case XS_MSG_GET_DOMAIN_PATH:
	case XS_MSG_TRANSACTION_START:
		/* One string: NUL at the end and nowhere else. */
		if (*len < 2 || memchr(*data, 0, *len) != *data + *len - 1)
			return false;
		(*len)--;
		return true;
	case XS_MSG_WRITE:
	case XS_MSG_MKDIR:
	case XS_MSG_RM:
	case XS_MSG_WATCH:
	case XS_MSG_UNWATCH:
	case XS_MSG_TRANSACTION_END:
		if (!is_ok_ack(*data, *len))
			return false;
		*len = 2;
		return true;
	default:
		return false;
	}
}

static void handle_message(struct xs_client *c, uint32_t type, uint32_t req_id, const char *data,
			   size_t len)
{
	struct xs_pending *slot = NULL;
	struct xs_pending p;
	enum xs_status st = XS_OK;

	if (type == XS_MSG_WATCH_EVENT) {
		handle_watch_event(c, data, len);
		return;
	}
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT && !slot; i++)
		if (c->pending[i].kind != PK_FREE && c->pending[i].req_id == req_id)
			slot = &c->pending[i];
	if (!slot) {
		log_warn("xenstore: %s reply for unknown request id %u, ignored",
			 msg_type_name(type), req_id);
		c->dropped_messages++;
		return;
	}
	p = *slot;
	memset(slot, 0, sizeof(*slot));

	if (type == XS_MSG_ERROR) {
		if (len < 2 || memchr(data, 0, len) != data + len - 1) {
			log_warn("xenstore: malformed ERROR reply to %s", msg_type_name(p.type));
			c->protocol_errors++;
			complete(c, &p, XS_ERR_PROTO, "", 0);
			return;
		}
		len--;
		st = errno_from_name(data, len);
		if (st == XS_EOTHER)
			log_warn("xenstore: %s failed with unknown error %.16s", msg_type_name(p.type),
				 data);
		complete(c, &p, st, data, len);
		return;
	}
	if (type != p.type || !check_reply(p.type, &data, &len)) {
		log_warn("xenstore: malformed reply (type %s) to %s", msg_type_name(type),
			 msg_type_name(p.type));
		c->protocol_errors++;
		complete(c, &p, XS_ERR_PROTO, "", 0);
		return;
	}
	complete(c, &p, XS_OK, data, len);
}

/* ---- connection ------------------------------------------------------------ */

void xs_client_init(struct xs_client *c, xs_closed_fn on_closed, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->next_req_id = 1;
	c->on_closed = on_closed;
	c->closed_ctx = ctx;
}

bool xs_client_is_open(const struct xs_client *c)
{
	return c->open;
}

static void send_deferred(struct xs_client *c)
{
	if (!c->deferred || !c->open || c->broken)
		return;
	c->deferred = false;
	/* UNWATCH first: it frees server quota. Stop at the first busy one. */
	for (size_t i = 0; i < XS_WATCH_MAX; i++) {
		if (c->watches[i].state == WS_ZOMBIE && try_send_unwatch(c, i) != XS_OK)
			return;
	}
	for (size_t i = 0; i < XS_WATCH_MAX; i++) {
		struct xs_watch *w = &c->watches[i];
		if (w->state == WS_LIVE && w->need_watch && try_send_watch(c, i) != XS_OK)
			return;
	}
	for (size_t i = 0; i < XS_TX_MAX; i++) {
		struct xs_tx *t = &c->tx[i];
		if (t->state == TS_NEED_START)
			tx_try_start(c, t);
		else if (t->state == TS_NEED_END)
			tx_try_end(c, t);
		if (t->state == TS_NEED_START || t->state == TS_NEED_END)
			return;
	}
}

static void close_internal(struct xs_client *c, bool notify)
{
	struct xs_pending pend[XS_MAX_IN_FLIGHT];
	struct xs_tx txs[XS_TX_MAX];

	if (!c->open)
		return;
	c->open = false;
	c->broken = false;
	c->conn_gen++;
	c->stream.ops->close(c->stream.ctx);
	c->stream.ops = NULL;
	c->stream.ctx = NULL;
	c->in_have = 0;
	c->in_len = 0;
	c->out_head = 0;
	c->out_len = 0;
	/* The server forgets our watches with the connection. */
	for (size_t i = 0; i < XS_WATCH_MAX; i++) {
		struct xs_watch *w = &c->watches[i];
		if (w->state == WS_ZOMBIE) {
			memset(w, 0, sizeof(*w));
		} else if (w->state == WS_LIVE) {
			w->need_watch = true;
			w->registered = false;
			w->failed = false;
		}
	}
	/* Take everything out of the tables first, then call back: callbacks
	 * may start new work (or even attach a new stream). */
	memcpy(pend, c->pending, sizeof(pend));
	memset(c->pending, 0, sizeof(c->pending));
	memcpy(txs, c->tx, sizeof(txs));
	memset(c->tx, 0, sizeof(c->tx));
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++) {
		if (pend[i].kind == PK_USER || pend[i].kind == PK_READ_STR)
			complete(c, &pend[i], XS_ERR_CLOSED, "", 0);
	}
	for (size_t i = 0; i < XS_TX_MAX; i++) {
		if (txs[i].state != TS_FREE)
			txs[i].done(txs[i].ctx, XS_ERR_CLOSED);
	}
	if (notify && c->on_closed)
		c->on_closed(c->closed_ctx);
}

void xs_client_close(struct xs_client *c)
{
	close_internal(c, false);
}

void xs_client_attach(struct xs_client *c, struct stream s)
{
	ASSERT(s.ops && s.ops->read && s.ops->write && s.ops->write_space && s.ops->close);
	close_internal(c, false);
	c->stream = s;
	c->open = true;
	c->broken = false;
	c->conn_gen++;
	c->in_have = 0;
	c->in_len = 0;
	c->out_head = 0;
	c->out_len = 0;
	for (size_t i = 0; i < XS_WATCH_MAX; i++)
		if (c->watches[i].state != WS_FREE)
			c->deferred = true;
	send_deferred(c);
}

/* Reads toward the current message. Returns true when one is complete. */
static bool read_step(struct xs_client *c, bool *idle)
{
	size_t want = c->in_have < XS_HEADER_LEN ? XS_HEADER_LEN - c->in_have
						 : XS_HEADER_LEN + c->in_len - c->in_have;
	int n = c->stream.ops->read(c->stream.ctx, c->in + c->in_have, want);

	*idle = false;
	if (n == 0) {
		*idle = true;
		return false;
	}
	if (n < 0 || (size_t)n > want) {
		log_info("xenstore: connection closed");
		c->broken = true;
		return false;
	}
	c->in_have += (size_t)n;
	if (c->in_have == XS_HEADER_LEN) {
		uint32_t len = load_le32(c->in + 12);
		if (len > XS_PAYLOAD_MAX) {
			log_warn("xenstore: message of %u bytes (max %u) from xenstored, closing",
				 len, XS_PAYLOAD_MAX);
			c->protocol_errors++;
			c->broken = true;
			return false;
		}
		c->in_len = len;
	}
	return c->in_have >= XS_HEADER_LEN && c->in_have == XS_HEADER_LEN + c->in_len;
}

bool xs_poll(struct xs_client *c)
{
	bool more = false;
	unsigned handled = 0;

	if (c->in_poll || !c->open)
		return false;
	c->in_poll = true;
	uint32_t gen = c->conn_gen;
	flush_out(c);
	while (c->open && !c->broken && gen == c->conn_gen) {
		bool idle;
		if (handled >= XS_POLL_BUDGET) {
			more = true;
			break;
		}
		if (!read_step(c, &idle)) {
			if (idle)
				break;
			continue;
		}
		uint32_t type = load_le32(c->in);
		uint32_t req_id = load_le32(c->in + 4);
		size_t len = c->in_len;
		c->in[XS_HEADER_LEN + len] = 0;
		c->in_have = 0;
		c->in_len = 0;
		handled++;
		handle_message(c, type, req_id, (const char *)c->in + XS_HEADER_LEN, len);
	}
	if (c->open && !c->broken) {
		send_deferred(c);
		flush_out(c);
	}
	if (c->open && c->broken)
		close_internal(c, true);
	c->in_poll = false;
	return more && c->open;
}
