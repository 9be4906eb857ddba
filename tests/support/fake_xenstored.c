/* fake_xenstored.c — see fake_xenstored.h. The wire format is written
 * here from the spec (xen-platform.md §6.2: 16-byte little-endian header
 * type, req_id, tx_id, len; payload ≤ 4096), not from the client. */
#include "fake_xenstored.h"

#include <stdio.h>
#include <string.h>

#include "fake_stream.h"

#define HDR 16u
#define PAYLOAD_MAX 4096u

enum {
	T_DIRECTORY = 1,
	T_READ = 2,
	T_WATCH = 4,
	T_UNWATCH = 5,
	T_TX_START = 6,
	T_TX_END = 7,
	T_GET_DOMAIN_PATH = 10,
	T_WRITE = 11,
	T_MKDIR = 12,
	T_RM = 13,
	T_WATCH_EVENT = 15,
	T_ERROR = 16,
};

struct node {
	bool used;
	char path[FAKE_XSD_PATH_MAX];
	char value[FAKE_XSD_VALUE_MAX];
	size_t len;
};

struct watch {
	bool used;
	int conn;
	bool relative;
	char path[FAKE_XSD_PATH_MAX]; /* absolute */
	char token[64];
};

struct conn {
	bool used;
	unsigned domid;
	struct fake_stream_pair pair;
	uint8_t in[HDR + PAYLOAD_MAX + 1];
	size_t have;
};

static struct {
	struct node nodes[FAKE_XSD_NODES];
	struct watch watches[FAKE_XSD_WATCHES];
	struct conn conns[FAKE_XSD_CONNS];
	fake_xsd_hook_fn hook;
	void *hook_ctx;
	uint32_t next_tx;
	uint64_t requests[32];
	size_t top;  /* nodes[top..] are all unused: scans stop there (fuzz speed) */
	size_t wtop; /* same for watches */
} xsd;

void fake_xsd_reset(void)
{
	for (size_t i = 0; i < xsd.top; i++)
		xsd.nodes[i].used = false;
	for (size_t i = 0; i < xsd.wtop; i++)
		xsd.watches[i].used = false;
	xsd.top = 0;
	xsd.wtop = 0;
	for (size_t i = 0; i < FAKE_XSD_CONNS; i++)
		xsd.conns[i].used = false;
	xsd.hook = NULL;
	xsd.hook_ctx = NULL;
	xsd.next_tx = 1;
	memset(xsd.requests, 0, sizeof(xsd.requests));
}

void fake_xsd_set_hook(fake_xsd_hook_fn fn, void *ctx)
{
	xsd.hook = fn;
	xsd.hook_ctx = ctx;
}

uint64_t fake_xsd_requests(unsigned type)
{
	return type < 32 ? xsd.requests[type] : 0;
}

int fake_xsd_connect(unsigned domid, struct stream *client)
{
	for (size_t i = 0; i < FAKE_XSD_CONNS; i++) {
		struct conn *c = &xsd.conns[i];
		if (c->used)
			continue;
		c->used = true;
		c->domid = domid;
		c->have = 0;
		fake_stream_init(&c->pair, FAKE_STREAM_MAX_CAP);
		*client = fake_stream_end(&c->pair, 0);
		return (int)i;
	}
	return -1;
}

void fake_xsd_hangup(int conn)
{
	if (conn < 0 || (size_t)conn >= FAKE_XSD_CONNS || !xsd.conns[conn].used)
		return;
	fake_stream_close(&xsd.conns[conn].pair, 1);
	for (size_t i = 0; i < xsd.wtop; i++)
		if (xsd.watches[i].used && xsd.watches[i].conn == conn)
			xsd.watches[i].used = false;
	xsd.conns[conn].used = false;
}

/* ---- store -------------------------------------------------------------- */

static struct node *find(const char *path)
{
	for (size_t i = 0; i < xsd.top; i++)
		if (xsd.nodes[i].used && !strcmp(xsd.nodes[i].path, path))
			return &xsd.nodes[i];
	return NULL;
}

/* path is p itself or below it. */
static bool at_or_below(const char *path, const char *p)
{
	size_t n = strlen(p);
	if (strncmp(path, p, n) != 0)
		return false;
	return path[n] == '\0' || path[n] == '/' || (n == 1 && p[0] == '/');
}

static void send_msg(int conn, uint32_t type, uint32_t req, uint32_t tx, const void *pl,
		     size_t len)
{
	uint8_t b[HDR + PAYLOAD_MAX];
	uint32_t h[4] = { type, req, tx, (uint32_t)len };
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			b[i * 4 + k] = (uint8_t)(h[i] >> (8 * k));
	if (len > PAYLOAD_MAX)
		len = PAYLOAD_MAX;
	memcpy(b + HDR, pl, len);
	(void)fake_stream_put(&xsd.conns[conn].pair, 1, b, HDR + len);
}

static void fire(const char *path)
{
	for (size_t i = 0; i < xsd.wtop; i++) {
		const struct watch *w = &xsd.watches[i];
		if (!w->used || !at_or_below(path, w->path))
			continue;
		const struct conn *c = &xsd.conns[w->conn];
		char prefix[64];
		int pl = snprintf(prefix, sizeof(prefix), "/local/domain/%u/", c->domid);
		const char *shown = path;
		if (w->relative && !strncmp(path, prefix, (size_t)pl))
			shown = path + pl;
		char ev[FAKE_XSD_PATH_MAX + 64];
		size_t a = strlen(shown) + 1, t = strlen(w->token) + 1;
		memcpy(ev, shown, a);
		memcpy(ev + a, w->token, t);
		send_msg(w->conn, T_WATCH_EVENT, 0, 0, ev, a + t);
	}
}

static struct node *create(const char *path)
{
	struct node *n = find(path);
	if (n != NULL)
		return n;
	/* parents first, as xenstored creates them */
	char parent[FAKE_XSD_PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (create(parent) == NULL)
			return NULL;
	}
	for (size_t i = 0; i < FAKE_XSD_NODES; i++) {
		n = &xsd.nodes[i];
		if (n->used)
			continue;
		if (i >= xsd.top)
			xsd.top = i + 1;
		n->used = true;
		snprintf(n->path, sizeof(n->path), "%s", path);
		n->len = 0;
		n->value[0] = '\0';
		return n;
	}
	return NULL;
}

static bool store_write(unsigned domid, const char *path, const void *v, size_t len)
{
	if (strlen(path) >= FAKE_XSD_PATH_MAX || len >= FAKE_XSD_VALUE_MAX)
		return false;
	struct node *n = create(path);
	if (n == NULL)
		return false;
	memcpy(n->value, v, len);
	n->value[len] = '\0';
	n->len = len;
	if (xsd.hook != NULL)
		xsd.hook(xsd.hook_ctx, domid, path, n->value, len);
	fire(path);
	return true;
}

static bool store_rm(unsigned domid, const char *path)
{
	if (find(path) == NULL)
		return false;
	for (size_t i = 0; i < xsd.top; i++) {
		struct node *n = &xsd.nodes[i];
		if (n->used && at_or_below(n->path, path)) {
			char p[FAKE_XSD_PATH_MAX];
			memcpy(p, n->path, sizeof(p));
			n->used = false;
			if (xsd.hook != NULL)
				xsd.hook(xsd.hook_ctx, domid, p, NULL, 0);
			fire(p);
		}
	}
	return true;
}

bool fake_xsd_write(const char *path, const char *value)
{
	return store_write(0, path, value, strlen(value));
}

bool fake_xsd_read(const char *path, char *buf, size_t cap)
{
	const struct node *n = find(path);
	if (n == NULL || cap == 0)
		return false;
	snprintf(buf, cap, "%s", n->value);
	return true;
}

bool fake_xsd_exists(const char *path)
{
	return find(path) != NULL;
}

bool fake_xsd_rm(const char *path)
{
	return store_rm(0, path);
}

size_t fake_xsd_node_count(void)
{
	size_t k = 0;
	for (size_t i = 0; i < xsd.top; i++)
		k += xsd.nodes[i].used;
	return k;
}

size_t fake_xsd_watch_count(int conn)
{
	size_t k = 0;
	for (size_t i = 0; i < xsd.wtop; i++)
		if (xsd.watches[i].used && (conn < 0 || xsd.watches[i].conn == conn))
			k++;
	return k;
}

/* ---- requests ------------------------------------------------------------ */

static void send_err(int conn, uint32_t req, uint32_t tx, const char *name)
{
	send_msg(conn, T_ERROR, req, tx, name, strlen(name) + 1);
}

static void send_ok(int conn, uint32_t type, uint32_t req, uint32_t tx)
{
	send_msg(conn, type, req, tx, "OK", 3);
}

/* Absolute form of a client path; false when malformed. */
static bool abs_path(const struct conn *c, const char *p, char *out)
{
	int n;
	if (p[0] == '/')
		n = snprintf(out, FAKE_XSD_PATH_MAX, "%s", p);
	else
		n = snprintf(out, FAKE_XSD_PATH_MAX, "/local/domain/%u/%s", c->domid, p);
	return p[0] != '\0' && n > 0 && (size_t)n < FAKE_XSD_PATH_MAX;
}

static void handle(int ci, uint32_t type, uint32_t req, uint32_t tx, const char *pl, size_t len)
{
	struct conn *c = &xsd.conns[ci];
	char path[FAKE_XSD_PATH_MAX];
	size_t first = strnlen(pl, len);
	if (type < 32)
		xsd.requests[type]++;
	if (type == T_TX_START) {
		char id[16];
		int n = snprintf(id, sizeof(id), "%u", (unsigned)xsd.next_tx++);
		send_msg(ci, type, req, 0, id, (size_t)n + 1);
		return;
	}
	if (type == T_TX_END) {
		send_ok(ci, type, req, tx);
		return;
	}
	if (type == T_GET_DOMAIN_PATH) {
		char p[64];
		int n = snprintf(p, sizeof(p), "/local/domain/%.*s", (int)first, pl);
		send_msg(ci, type, req, tx, p, (size_t)n + 1);
		return;
	}
	if (first == len || !abs_path(c, pl, path)) {
		send_err(ci, req, tx, "EINVAL");
		return;
	}
	const char *rest = pl + first + 1;
	size_t rest_len = len - first - 1;
	switch (type) {
	case T_READ: {
		const struct node *n = find(path);
		if (n == NULL)
			send_err(ci, req, tx, "ENOENT");
		else
			send_msg(ci, type, req, tx, n->value, n->len);
		break;
	}
	case T_WRITE:
		if (store_write(c->domid, path, rest, rest_len))
			send_ok(ci, type, req, tx);
		else
			send_err(ci, req, tx, "ENOSPC");
		break;
	case T_MKDIR:
		if (find(path) != NULL || create(path) != NULL) {
			fire(path);
			send_ok(ci, type, req, tx);
		} else {
			send_err(ci, req, tx, "ENOSPC");
		}
		break;
	case T_RM:
		if (store_rm(c->domid, path))
			send_ok(ci, type, req, tx);
		else
			send_err(ci, req, tx, "ENOENT");
		break;
	case T_DIRECTORY: {
		if (find(path) == NULL) {
			send_err(ci, req, tx, "ENOENT");
			break;
		}
		char out[PAYLOAD_MAX];
		size_t o = 0, pl_len = strlen(path);
		for (size_t i = 0; i < xsd.top; i++) {
			const struct node *n = &xsd.nodes[i];
			if (!n->used || strncmp(n->path, path, pl_len) != 0 ||
			    n->path[pl_len] != '/' || strchr(n->path + pl_len + 1, '/') != NULL)
				continue;
			size_t l = strlen(n->path + pl_len + 1) + 1;
			if (o + l > sizeof(out))
				break;
			memcpy(out + o, n->path + pl_len + 1, l);
			o += l;
		}
		send_msg(ci, type, req, tx, out, o);
		break;
	}
	case T_WATCH:
	case T_UNWATCH: {
		size_t tl = strnlen(rest, rest_len);
		if (tl == rest_len || tl >= sizeof(xsd.watches[0].token)) {
			send_err(ci, req, tx, "EINVAL");
			break;
		}
		if (type == T_WATCH) {
			struct watch *w = NULL;
			for (size_t i = 0; i < FAKE_XSD_WATCHES && w == NULL; i++)
				if (!xsd.watches[i].used)
					w = &xsd.watches[i];
			if (w == NULL) {
				send_err(ci, req, tx, "E2BIG");
				break;
			}
			if ((size_t)(w - xsd.watches) >= xsd.wtop)
				xsd.wtop = (size_t)(w - xsd.watches) + 1;
			w->used = true;
			w->conn = ci;
			w->relative = pl[0] != '/';
			memcpy(w->path, path, sizeof(path));
			memcpy(w->token, rest, tl + 1);
			send_ok(ci, type, req, tx);
			/* fires at once, with the watched path */
			char ev[FAKE_XSD_PATH_MAX + 64];
			memcpy(ev, pl, first + 1);
			memcpy(ev + first + 1, rest, tl + 1);
			send_msg(ci, T_WATCH_EVENT, 0, 0, ev, first + tl + 2);
		} else {
			bool found = false;
			for (size_t i = 0; i < xsd.wtop && !found; i++) {
				struct watch *w = &xsd.watches[i];
				if (w->used && w->conn == ci && !strcmp(w->path, path) &&
				    !strcmp(w->token, rest)) {
					w->used = false;
					found = true;
				}
			}
			if (found)
				send_ok(ci, type, req, tx);
			else
				send_err(ci, req, tx, "ENOENT");
		}
		break;
	}
	default:
		send_err(ci, req, tx, "ENOSYS");
		break;
	}
}

size_t fake_xsd_poll(void)
{
	size_t handled = 0;
	for (size_t ci = 0; ci < FAKE_XSD_CONNS; ci++) {
		struct conn *c = &xsd.conns[ci];
		for (;;) {
			if (!c->used)
				break;
			if (c->have < HDR) {
				c->have += fake_stream_get(&c->pair, 1, c->in + c->have, HDR - c->have);
				if (c->have < HDR)
					break;
			}
			uint32_t h[4];
			for (int i = 0; i < 4; i++)
				h[i] = (uint32_t)c->in[i * 4] | (uint32_t)c->in[i * 4 + 1] << 8 |
				       (uint32_t)c->in[i * 4 + 2] << 16 |
				       (uint32_t)c->in[i * 4 + 3] << 24;
			if (h[3] > PAYLOAD_MAX) {
				fake_xsd_hangup((int)ci);
				break;
			}
			size_t want = HDR + h[3];
			c->have += fake_stream_get(&c->pair, 1, c->in + c->have, want - c->have);
			if (c->have < want)
				break;
			c->in[want] = '\0';
			c->have = 0;
			handle((int)ci, h[0], h[1], h[2], (const char *)c->in + HDR, h[3]);
			handled++;
		}
	}
	return handled;
}

void fake_xsd_add_vif(unsigned be, unsigned fe, unsigned devid, const char *mac)
{
	char b[96], f[96], p[FAKE_XSD_PATH_MAX], v[32];
	snprintf(b, sizeof(b), "/local/domain/%u/backend/vif/%u/%u", be, fe, devid);
	snprintf(f, sizeof(f), "/local/domain/%u/device/vif/%u", fe, devid);
#define KEY(dir, k, val)                                          \
	do {                                                      \
		snprintf(p, sizeof(p), "%s/%s", (dir), (k));      \
		(void)fake_xsd_write(p, (val));                    \
	} while (0)
	KEY(b, "frontend", f);
	snprintf(v, sizeof(v), "%u", fe);
	KEY(b, "frontend-id", v);
	KEY(b, "online", "1");
	KEY(b, "state", "1");
	KEY(b, "mac", mac);
	snprintf(v, sizeof(v), "%u", devid);
	KEY(b, "handle", v);
	KEY(b, "hotplug-status", "");
	KEY(f, "backend", b);
	snprintf(v, sizeof(v), "%u", be);
	KEY(f, "backend-id", v);
	KEY(f, "state", "1");
	snprintf(v, sizeof(v), "%u", devid);
	KEY(f, "handle", v);
	KEY(f, "mac", mac);
#undef KEY
}
