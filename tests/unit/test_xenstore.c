/* test_xenstore.c — the XenStore client against a scripted fake xenstored
 * over an in-memory stream pair: every request type on the wire, every
 * split of every reply, errors, bounds, transactions with EAGAIN, the watch
 * registry (anchors §3: the watch leak and the unwatch ENOENT crash). The
 * wire layout is written here from the spec (xen-platform.md §6.2), not
 * taken from the code under test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fake_stream.h"
#include "xen/xenstore.h"

#define CLIENT 0
#define SERVER 1

static struct fake_stream_pair pair;
static struct xs_client cl;
static int closed_calls;

static void on_closed(void *ctx)
{
	(void)ctx;
	closed_calls++;
}

static void setup_client(void)
{
	fake_stream_init(&pair, 65536);
	closed_calls = 0;
	xs_client_init(&cl, on_closed, NULL);
	xs_client_attach(&cl, fake_stream_end(&pair, CLIENT));
}

/* ---- wire helpers written from the spec --------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t build_msg(uint8_t *out, uint32_t type, uint32_t req, uint32_t tx, const void *pl,
			size_t len)
{
	put_le32(out, type);
	put_le32(out + 4, req);
	put_le32(out + 8, tx);
	put_le32(out + 12, (uint32_t)len);
	if (len)
		memcpy(out + 16, pl, len);
	return 16 + len;
}

static void srv_send(uint32_t type, uint32_t req, uint32_t tx, const void *pl, size_t len)
{
	uint8_t buf[16 + 8192];
	size_t n = build_msg(buf, type, req, tx, pl, len);
	assert_int_equal(fake_stream_put(&pair, SERVER, buf, n), n);
}

static void srv_send_str(uint32_t type, uint32_t req, uint32_t tx, const char *s)
{
	srv_send(type, req, tx, s, strlen(s) + 1);
}

struct req {
	uint32_t type, req_id, tx_id, len;
	char payload[4200];
};

/* Takes one complete request from the client, if there is one. */
static bool srv_recv(struct req *r)
{
	uint8_t hdr[16];
	if (fake_stream_peek(&pair, SERVER, hdr, 16) < 16)
		return false;
	uint32_t len = get_le32(hdr + 12);
	assert_true(len <= 4096);
	if (fake_stream_pending(&pair, SERVER) < 16 + len)
		return false;
	fake_stream_get(&pair, SERVER, hdr, 16);
	r->type = get_le32(hdr);
	r->req_id = get_le32(hdr + 4);
	r->tx_id = get_le32(hdr + 8);
	r->len = len;
	assert_int_equal(fake_stream_get(&pair, SERVER, r->payload, len), len);
	r->payload[len] = 0;
	return true;
}

static void expect_req(struct req *r, uint32_t type, const void *payload, size_t len)
{
	assert_true(srv_recv(r));
	assert_int_equal(r->type, type);
	assert_int_equal(r->len, len);
	assert_memory_equal(r->payload, payload, len);
}

/* ---- reply recording ------------------------------------------------------ */

struct rec {
	int calls;
	enum xs_status st;
	char data[4200];
	size_t len;
	bool terminated;
};

static void rec_cb(void *ctx, enum xs_status st, const char *data, size_t len)
{
	struct rec *r = ctx;
	r->calls++;
	r->st = st;
	assert_true(len < sizeof(r->data));
	memcpy(r->data, data, len);
	r->len = len;
	r->terminated = data[len] == '\0';
}

struct done_rec {
	int calls;
	enum xs_status st;
};

static void done_cb(void *ctx, enum xs_status st)
{
	struct done_rec *d = ctx;
	d->calls++;
	d->st = st;
}

struct wrec {
	int calls;
	xs_watch_id last_id;
	char path[300];
};

static void watch_cb(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	struct wrec *w = ctx;
	w->calls++;
	w->last_id = id;
	assert_true(len < sizeof(w->path));
	assert_int_equal(path[len], '\0');
	memcpy(w->path, path, len + 1);
}

/* ---- basic request types -------------------------------------------------- */

static void test_read(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct req q = { 0 };
	setup_client();
	assert_int_equal(xs_read(&cl, "/local/domain/3/name", rec_cb, &r), XS_OK);
	expect_req(&q, 2, "/local/domain/3/name", 21);
	assert_int_equal(q.tx_id, 0);
	assert_int_equal(xs_in_flight(&cl), 1);
	xs_poll(&cl);
	assert_int_equal(r.calls, 0);
	srv_send(2, q.req_id, 0, "sys-net", 7);
	xs_poll(&cl);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.st, XS_OK);
	assert_int_equal(r.len, 7);
	assert_memory_equal(r.data, "sys-net", 7);
	assert_true(r.terminated);
	assert_int_equal(xs_in_flight(&cl), 0);
}

static void test_request_payloads(void **state)
{
	(void)state;
	struct rec r[6];
	struct req q = { 0 };
	memset(r, 0, sizeof(r));
	setup_client();
	assert_int_equal(xs_write(&cl, "a/b", "xyz", 3, rec_cb, &r[0]), XS_OK);
	expect_req(&q, 11, "a/b\0xyz", 7);
	srv_send_str(11, q.req_id, 0, "OK");
	assert_int_equal(xs_write_str(&cl, "a/c", "", rec_cb, &r[1]), XS_OK);
	expect_req(&q, 11, "a/c", 4);
	srv_send_str(11, q.req_id, 0, "OK");
	assert_int_equal(xs_mkdir(&cl, "/x", rec_cb, &r[2]), XS_OK);
	expect_req(&q, 12, "/x", 3);
	srv_send_str(12, q.req_id, 0, "OK");
	assert_int_equal(xs_rm(&cl, "/x/y", rec_cb, &r[3]), XS_OK);
	expect_req(&q, 13, "/x/y", 5);
	srv_send_str(13, q.req_id, 0, "OK");
	assert_int_equal(xs_directory(&cl, "backend/vif", rec_cb, &r[4]), XS_OK);
	expect_req(&q, 1, "backend/vif", 12);
	srv_send(1, q.req_id, 0, "12\0" "13", 6);
	assert_int_equal(xs_get_domain_path(&cl, 4294967295u, rec_cb, &r[5]), XS_OK);
	expect_req(&q, 10, "4294967295", 11);
	srv_send_str(10, q.req_id, 0, "/local/domain/4294967295");
	xs_poll(&cl);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].st, XS_OK);
	}
	assert_int_equal(r[4].st, XS_OK);
	assert_int_equal(r[4].len, 6);
	size_t off = 0, nl;
	const char *name;
	assert_true(xs_dir_next(r[4].data, r[4].len, &off, &name, &nl));
	assert_int_equal(nl, 2);
	assert_memory_equal(name, "12", 2);
	assert_true(xs_dir_next(r[4].data, r[4].len, &off, &name, &nl));
	assert_int_equal(nl, 2);
	assert_memory_equal(name, "13", 2);
	assert_false(xs_dir_next(r[4].data, r[4].len, &off, &name, &nl));
	assert_int_equal(r[5].st, XS_OK);
	assert_int_equal(r[5].len, 24);
	assert_string_equal(r[5].data, "/local/domain/4294967295");
	/* Request ids are distinct. */
}

static void test_request_ids_unique(void **state)
{
	(void)state;
	struct req q[16] = { 0 };
	setup_client();
	for (int i = 0; i < 16; i++)
		assert_int_equal(xs_read(&cl, "k", NULL, NULL), XS_OK);
	for (int i = 0; i < 16; i++) {
		assert_true(srv_recv(&q[i]));
		for (int j = 0; j < i; j++)
			assert_int_not_equal(q[i].req_id, q[j].req_id);
	}
}

/* ---- splits ------------------------------------------------------------------ */

struct split_case {
	const char *payload;
	size_t len;
	size_t want_len;
	uint32_t type; /* reply type */
	enum xs_status want;
};

static enum xs_status issue_for(uint32_t reply_type, struct rec *r)
{
	(void)reply_type;
	return xs_read(&cl, "k", rec_cb, r);
}

/* Issues a READ, then delivers a reply in the given chunking: parts[i]
 * bytes, polling after each; the callback must come exactly at the end. */
static void run_split(const struct split_case *sc, const size_t *parts, size_t nparts)
{
	struct rec r = { 0 };
	struct req q = { 0 };
	uint8_t msg[16 + 4200];
	setup_client();
	assert_int_equal(issue_for(sc->type, &r), XS_OK);
	assert_true(srv_recv(&q));
	size_t total = build_msg(msg, sc->type, q.req_id, 0, sc->payload, sc->len);
	size_t off = 0;
	for (size_t i = 0; i < nparts; i++) {
		assert_int_equal(r.calls, 0);
		fake_stream_put(&pair, SERVER, msg + off, parts[i]);
		off += parts[i];
		xs_poll(&cl);
	}
	assert_int_equal(off, total);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.st, sc->want);
	assert_int_equal(r.len, sc->want_len);
	assert_true(xs_client_is_open(&cl));
}

static const struct split_case split_cases[] = {
	{ "value", 5, 5, 2, XS_OK },
	{ "", 0, 0, 2, XS_OK },
	{ "ENOENT", 7, 6, 16, XS_ENOENT },
	{ "EACCES", 7, 6, 16, XS_EACCES },
};

static void test_every_split_of_replies(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(split_cases) / sizeof(split_cases[0]); c++) {
		const struct split_case *sc = &split_cases[c];
		size_t total = 16 + sc->len;
		/* Two parts at every cut. */
		for (size_t k = 1; k < total; k++) {
			size_t parts[2] = { k, total - k };
			run_split(sc, parts, 2);
		}
		/* Byte by byte, polling after each byte. */
		size_t ones[16 + 64];
		for (size_t i = 0; i < total; i++)
			ones[i] = 1;
		run_split(sc, ones, total);
	}
}

/* Every reply type of every request, byte by byte across polls. */
static void test_every_type_byte_by_byte(void **state)
{
	(void)state;
	struct {
		uint32_t type;
		const char *pl;
		size_t len;
		size_t want_len;
	} cases[] = {
		{ 1, "a\0bb\0", 5, 5 }, { 2, "v", 1, 1 },    { 10, "/local/domain/7", 16, 15 },
		{ 11, "OK", 3, 2 },     { 12, "OK", 3, 2 }, { 13, "OK", 3, 2 },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct rec r = { 0 };
		struct req q = { 0 };
		uint8_t msg[64];
		setup_client();
		switch (cases[c].type) {
		case 1:
			xs_directory(&cl, "d", rec_cb, &r);
			break;
		case 2:
			xs_read(&cl, "d", rec_cb, &r);
			break;
		case 10:
			xs_get_domain_path(&cl, 7, rec_cb, &r);
			break;
		case 11:
			xs_write_str(&cl, "d", "v", rec_cb, &r);
			break;
		case 12:
			xs_mkdir(&cl, "d", rec_cb, &r);
			break;
		default:
			xs_rm(&cl, "d", rec_cb, &r);
			break;
		}
		assert_true(srv_recv(&q));
		assert_int_equal(q.type, cases[c].type);
		size_t total = build_msg(msg, cases[c].type, q.req_id, 0, cases[c].pl, cases[c].len);
		for (size_t i = 0; i < total; i++) {
			assert_int_equal(r.calls, 0);
			fake_stream_put(&pair, SERVER, msg + i, 1);
			xs_poll(&cl);
		}
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.st, XS_OK);
		assert_int_equal(r.len, cases[c].want_len);
		assert_true(r.terminated);
	}
}

/* Several messages back to back (a reply, a watch event, another reply),
 * delivered with every read chunk size from 1 up. */
static void test_stream_of_messages_any_chunk(void **state)
{
	(void)state;
	for (size_t chunk = 1; chunk <= 80; chunk++) {
		struct rec r1 = { 0 }, r2 = { 0 };
		struct wrec w = { 0 };
		struct req q1 = { 0 }, q2 = { 0 }, qw = { 0 };
		uint8_t buf[256];
		size_t n = 0;
		setup_client();
		assert_int_equal(xs_watch_add(&cl, 1, "backend/vif", watch_cb, &w, NULL), XS_OK);
		assert_true(srv_recv(&qw));
		assert_int_equal(xs_read(&cl, "a", rec_cb, &r1), XS_OK);
		assert_int_equal(xs_read(&cl, "b", rec_cb, &r2), XS_OK);
		assert_true(srv_recv(&q1));
		assert_true(srv_recv(&q2));
		char ev[64];
		size_t tl = strlen(qw.payload + 12);
		static const char evpath[14] = "backend/vif/3";
		memcpy(ev, evpath, sizeof(evpath));
		memcpy(ev + 14, qw.payload + 12, tl + 1);
		/* Out of order replies, and an event in between. */
		n += build_msg(buf + n, 2, q2.req_id, 0, "two", 3);
		n += build_msg(buf + n, 15, 0, 0, ev, 14 + tl + 1);
		n += build_msg(buf + n, 4, qw.req_id, 0, "OK", 3);
		n += build_msg(buf + n, 2, q1.req_id, 0, "one", 3);
		fake_stream_set_read_chunk(&pair, CLIENT, chunk);
		fake_stream_put(&pair, SERVER, buf, n);
		xs_poll(&cl);
		assert_int_equal(r1.calls, 1);
		assert_memory_equal(r1.data, "one", 3);
		assert_int_equal(r2.calls, 1);
		assert_memory_equal(r2.data, "two", 3);
		assert_int_equal(w.calls, 1);
		assert_string_equal(w.path, "backend/vif/3");
	}
}

/* ---- errors and malformed input ---------------------------------------------- */

static void test_error_names(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum xs_status st;
	} names[] = {
		{ "EINVAL", XS_EINVAL },   { "EACCES", XS_EACCES }, { "EEXIST", XS_EEXIST },
		{ "EISDIR", XS_EISDIR },   { "ENOENT", XS_ENOENT }, { "ENOMEM", XS_ENOMEM },
		{ "ENOSPC", XS_ENOSPC },   { "EIO", XS_EIO },	     { "ENOTEMPTY", XS_ENOTEMPTY },
		{ "ENOSYS", XS_ENOSYS },   { "EROFS", XS_EROFS },   { "EBUSY", XS_EBUSY },
		{ "EAGAIN", XS_EAGAIN },   { "EISCONN", XS_EISCONN }, { "E2BIG", XS_E2BIG },
		{ "EPERM", XS_EPERM },     { "EWHATEVER", XS_EOTHER }, { "ENOEN", XS_EOTHER },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct rec r = { 0 };
		struct req q = { 0 };
		setup_client();
		xs_write_str(&cl, "k", "v", rec_cb, &r);
		assert_true(srv_recv(&q));
		srv_send_str(16, q.req_id, 0, names[i].name);
		xs_poll(&cl);
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.st, names[i].st);
		assert_string_equal(r.data, names[i].name);
		assert_string_equal(xs_status_name(r.st),
				    names[i].st == XS_EOTHER ? "unknown error" : names[i].name);
	}
}

/* A malformed reply fails that request with XS_ERR_PROTO; the connection
 * stays and later replies still work. */
static void test_malformed_replies(void **state)
{
	(void)state;
	static const struct {
		int op; /* 0 write, 1 directory, 2 domain path, 3 read */
		uint32_t type;
		const char *pl;
		size_t len;
	} bad[] = {
		{ 0, 11, "OK", 2 },	     /* missing NUL */
		{ 0, 11, "OK\0x", 4 },	     /* trailing bytes */
		{ 0, 11, "NO", 3 },	     /* not OK */
		{ 0, 11, "", 0 },	     /* empty */
		{ 0, 2, "OK", 3 },	     /* wrong reply type */
		{ 0, 15, "", 0 },	     /* (watch event: dropped, request stays) */
		{ 1, 1, "a\0b", 3 },	     /* unterminated last name */
		{ 2, 10, "/local\0/x", 10 }, /* NUL inside */
		{ 2, 10, "/local", 6 },	     /* no NUL */
		{ 2, 10, "", 1 },	     /* empty string */
		{ 3, 16, "ENOENT", 6 },	     /* error without NUL */
		{ 3, 16, "", 0 },	     /* empty error */
		{ 3, 16, "EN\0OENT", 8 },    /* NUL inside error */
		{ 3, 6, "1", 2 },	     /* reply type of another request */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rec r = { 0 }, r2 = { 0 };
		struct req q = { 0 };
		setup_client();
		switch (bad[i].op) {
		case 0:
			xs_write_str(&cl, "k", "v", rec_cb, &r);
			break;
		case 1:
			xs_directory(&cl, "k", rec_cb, &r);
			break;
		case 2:
			xs_get_domain_path(&cl, 1, rec_cb, &r);
			break;
		default:
			xs_read(&cl, "k", rec_cb, &r);
			break;
		}
		assert_true(srv_recv(&q));
		srv_send(bad[i].type, bad[i].type == 15 ? 0 : q.req_id, 0, bad[i].pl, bad[i].len);
		xs_poll(&cl);
		if (bad[i].type == 15) {
			assert_int_equal(r.calls, 0);
		} else {
			assert_int_equal(r.calls, 1);
			assert_int_equal(r.st, XS_ERR_PROTO);
			assert_int_equal(r.len, 0);
		}
		assert_true(xs_client_is_open(&cl));
		assert_int_equal(closed_calls, 0);
		xs_read(&cl, "k2", rec_cb, &r2);
		assert_true(srv_recv(&q));
		srv_send(2, q.req_id, 0, "fine", 4);
		xs_poll(&cl);
		assert_int_equal(r2.calls, 1);
		assert_int_equal(r2.st, XS_OK);
	}
}

static void test_unknown_req_id_ignored(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct req q = { 0 };
	setup_client();
	xs_read(&cl, "k", rec_cb, &r);
	assert_true(srv_recv(&q));
	srv_send(2, q.req_id + 1000, 0, "bogus", 5);
	srv_send(2, 0, 0, "bogus", 5);
	srv_send_str(16, q.req_id + 7, 0, "ENOENT");
	xs_poll(&cl);
	assert_int_equal(r.calls, 0);
	assert_true(xs_client_is_open(&cl));
	assert_int_equal(cl.dropped_messages, 3);
	srv_send(2, q.req_id, 0, "real", 4);
	xs_poll(&cl);
	assert_int_equal(r.calls, 1);
	assert_memory_equal(r.data, "real", 4);
	/* A duplicate reply for a completed request is unknown too. */
	srv_send(2, q.req_id, 0, "again", 5);
	xs_poll(&cl);
	assert_int_equal(r.calls, 1);
}

static void test_max_payload_accepted(void **state)
{
	(void)state;
	static char big[4096];
	struct rec r = { 0 };
	struct req q = { 0 };
	memset(big, 'v', sizeof(big));
	setup_client();
	xs_read(&cl, "k", rec_cb, &r);
	assert_true(srv_recv(&q));
	srv_send(2, q.req_id, 0, big, sizeof(big));
	xs_poll(&cl);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.st, XS_OK);
	assert_int_equal(r.len, 4096);
	assert_true(r.terminated);
}

static void test_oversize_len_closes(void **state)
{
	(void)state;
	static const uint32_t lens[] = { 4097, 65536, 0xffffffffu };
	for (size_t i = 0; i < 3; i++) {
		struct rec r = { 0 };
		struct req q = { 0 };
		uint8_t hdr[16];
		setup_client();
		xs_read(&cl, "k", rec_cb, &r);
		assert_true(srv_recv(&q));
		put_le32(hdr, 2);
		put_le32(hdr + 4, q.req_id);
		put_le32(hdr + 8, 0);
		put_le32(hdr + 12, lens[i]);
		/* Header split over two polls, still detected. */
		fake_stream_put(&pair, SERVER, hdr, 15);
		xs_poll(&cl);
		assert_true(xs_client_is_open(&cl));
		fake_stream_put(&pair, SERVER, hdr + 15, 1);
		xs_poll(&cl);
		assert_false(xs_client_is_open(&cl));
		assert_int_equal(closed_calls, 1);
		assert_int_equal(pair.close_calls[CLIENT], 1);
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.st, XS_ERR_CLOSED);
		assert_int_equal(cl.protocol_errors, 1);
		assert_int_equal(xs_read(&cl, "k", rec_cb, &r), XS_ERR_CLOSED);
		xs_poll(&cl);
		assert_int_equal(closed_calls, 1);
	}
}

static void test_peer_close(void **state)
{
	(void)state;
	struct rec r = { 0 };
	struct done_rec rs = { 0 };
	char buf[16];
	setup_client();
	xs_read(&cl, "k", rec_cb, &r);
	xs_read_str(&cl, "k", buf, sizeof(buf), done_cb, &rs);
	fake_stream_close(&pair, SERVER);
	xs_poll(&cl);
	assert_false(xs_client_is_open(&cl));
	assert_int_equal(closed_calls, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.st, XS_ERR_CLOSED);
	assert_int_equal(rs.calls, 1);
	assert_int_equal(rs.st, XS_ERR_CLOSED);
	assert_string_equal(buf, "");
	assert_int_equal(xs_in_flight(&cl), 0);
}

/* ---- bounds --------------------------------------------------------------------- */

static void test_in_flight_bound(void **state)
{
	(void)state;
	struct rec r[XS_MAX_IN_FLIGHT + 1];
	struct req q = { 0 };
	memset(r, 0, sizeof(r));
	setup_client();
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++)
		assert_int_equal(xs_read(&cl, "k", rec_cb, &r[i]), XS_OK);
	assert_int_equal(xs_in_flight(&cl), XS_MAX_IN_FLIGHT);
	assert_int_equal(xs_read(&cl, "k", rec_cb, &r[XS_MAX_IN_FLIGHT]), XS_ERR_BUSY);
	assert_int_equal(xs_write_str(&cl, "k", "v", NULL, NULL), XS_ERR_BUSY);
	assert_true(srv_recv(&q));
	srv_send(2, q.req_id, 0, "x", 1);
	xs_poll(&cl);
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(xs_read(&cl, "k", rec_cb, &r[XS_MAX_IN_FLIGHT]), XS_OK);
	/* No callback ran for the refused requests. */
	for (size_t i = 1; i <= XS_MAX_IN_FLIGHT; i++)
		assert_int_equal(r[i].calls, 0);
}

static void test_slow_stream_queues_and_flushes(void **state)
{
	(void)state;
	static char value[4000];
	struct rec r = { 0 };
	struct req q = { 0 };
	memset(value, 'z', sizeof(value));
	setup_client();
	fake_stream_set_capacity(&pair, CLIENT, 10);
	assert_int_equal(xs_write(&cl, "/big", value, sizeof(value), rec_cb, &r), XS_OK);
	assert_int_equal(fake_stream_pending(&pair, SERVER), 10);
	/* The server drains 10 bytes per round; the client refills per poll. */
	uint8_t got[16 + 4100];
	size_t have = 0;
	for (int round = 0; round < 1000 && have < 16 + 5 + sizeof(value); round++) {
		have += fake_stream_get(&pair, SERVER, got + have, sizeof(got) - have);
		xs_poll(&cl);
	}
	assert_int_equal(have, 16 + 5 + sizeof(value));
	assert_int_equal(get_le32(got), 11);
	assert_int_equal(get_le32(got + 12), 5 + sizeof(value));
	assert_memory_equal(got + 16, "/big", 5);
	assert_memory_equal(got + 21, value, sizeof(value));
	(void)q;
}

static void test_out_buffer_full_is_busy(void **state)
{
	(void)state;
	static char value[4000];
	memset(value, 'z', sizeof(value));
	setup_client();
	fake_stream_set_capacity(&pair, CLIENT, 0);
	size_t ok = 0;
	enum xs_status st;
	while ((st = xs_write(&cl, "/v", value, sizeof(value), NULL, NULL)) == XS_OK)
		ok++;
	assert_int_equal(st, XS_ERR_BUSY);
	assert_int_equal(ok, XS_OUT_BUF_SIZE / (16 + 3 + sizeof(value)));
	/* Small requests that still fit are taken. */
	assert_int_equal(xs_read(&cl, "k", NULL, NULL), XS_OK);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	static char big[4100];
	static char longpath[3100];
	setup_client();
	memset(big, 'a', sizeof(big) - 1);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	assert_int_equal(xs_read(&cl, "", NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_read(&cl, NULL, NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_read(&cl, "a b", NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_read(&cl, "a//b", NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_read(&cl, "a/", NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_read(&cl, "a.b", NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_read(&cl, longpath, NULL, NULL), XS_ERR_ARG);
	/* "/k\0" + value: 4096 bytes is the limit. */
	assert_int_equal(xs_write(&cl, "/k", big, 4094, NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_write(&cl, "/k", big, 4093, NULL, NULL), XS_OK);
	assert_int_equal(xs_write_str(&cl, "/k", big, NULL, NULL), XS_ERR_ARG);
	assert_int_equal(xs_watch_add(&cl, 1, "a", NULL, NULL, NULL), XS_ERR_ARG);
	char wp[XS_WATCH_PATH_MAX + 1];
	memset(wp, 'w', sizeof(wp));
	wp[XS_WATCH_PATH_MAX] = 0;
	assert_int_equal(xs_watch_add(&cl, 1, wp, watch_cb, NULL, NULL), XS_ERR_ARG);
	wp[XS_WATCH_PATH_MAX - 1] = 0;
	struct wrec w = { 0 };
	assert_int_equal(xs_watch_add(&cl, 1, wp, watch_cb, &w, NULL), XS_OK);
	char buf[4];
	assert_int_equal(xs_read_str(&cl, "k", buf, 0, done_cb, NULL), XS_ERR_ARG);
	assert_int_equal(xs_transaction(&cl, NULL, done_cb, NULL), XS_ERR_ARG);
	assert_true(xs_path_valid("/"));
	assert_true(xs_path_valid("@introduceDomain"));
	assert_true(xs_path_valid("backend/vif/12/0/state"));
	assert_false(xs_path_valid("//"));
	assert_false(xs_path_valid("a\nb"));
}

/* ---- helpers --------------------------------------------------------------- */

static void test_parse_uint(void **state)
{
	(void)state;
	uint64_t v = 99;
	assert_true(xs_parse_uint("0", 1, 10, &v));
	assert_int_equal(v, 0);
	assert_true(xs_parse_uint("4", 1, 10, &v));
	assert_int_equal(v, 4);
	assert_true(xs_parse_uint("18446744073709551615", 20, UINT64_MAX, &v));
	assert_true(v == UINT64_MAX);
	assert_false(xs_parse_uint("18446744073709551616", 20, UINT64_MAX, &v));
	assert_false(xs_parse_uint("99999999999999999999", 20, UINT64_MAX, &v));
	assert_false(xs_parse_uint("000000000000000000001", 21, UINT64_MAX, &v));
	assert_true(xs_parse_uint("4294967295", 10, UINT32_MAX, &v));
	assert_false(xs_parse_uint("4294967296", 10, UINT32_MAX, &v));
	assert_false(xs_parse_uint("11", 2, 10, &v));
	assert_false(xs_parse_uint("", 0, 10, &v));
	assert_false(xs_parse_uint("-1", 2, 10, &v));
	assert_false(xs_parse_uint("+1", 2, 10, &v));
	assert_false(xs_parse_uint(" 1", 2, 10, &v));
	assert_false(xs_parse_uint("1\n", 2, 10, &v));
	assert_false(xs_parse_uint("1\0", 2, 10, &v));
	assert_false(xs_parse_uint("0x1", 3, 10, &v));
	/* Length is respected: "12" with len 1 is 1. */
	assert_true(xs_parse_uint("12", 1, 10, &v));
	assert_int_equal(v, 1);
}

static void test_dir_next_and_value_copy(void **state)
{
	(void)state;
	const char *name;
	size_t nl, off = 0;
	const char list[] = "a\0\0bc\0d"; /* empty entry skipped, "d" unterminated */
	int seen = 0;
	while (xs_dir_next(list, 7, &off, &name, &nl)) {
		assert_true(off <= 7);
		seen++;
	}
	assert_int_equal(seen, 2);
	off = 0;
	assert_false(xs_dir_next(list, 0, &off, &name, &nl));
	char buf[4];
	assert_true(xs_value_copy("abc", 3, buf, 4));
	assert_string_equal(buf, "abc");
	assert_false(xs_value_copy("abcd", 4, buf, 4));
	assert_string_equal(buf, "");
	assert_false(xs_value_copy("a\0c", 3, buf, 4));
	assert_string_equal(buf, "");
	assert_true(xs_value_copy("", 0, buf, 1));
	assert_false(xs_value_copy("", 0, buf, 0));
}

static void test_read_str(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		size_t len;
		enum xs_status st;
		const char *want;
	} cases[] = {
		{ "4", 1, XS_OK, "4" },
		{ "1234567", 7, XS_OK, "1234567" },
		{ "12345678", 8, XS_ERR_VALUE, "" },
		{ "1\0002", 3, XS_ERR_VALUE, "" },
		{ "", 0, XS_OK, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[8];
		struct done_rec d = { 0 };
		struct req q = { 0 };
		setup_client();
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(xs_read_str(&cl, "state", buf, sizeof(buf), done_cb, &d), XS_OK);
		assert_true(srv_recv(&q));
		assert_int_equal(q.type, 2);
		srv_send(2, q.req_id, 0, cases[i].v, cases[i].len);
		xs_poll(&cl);
		assert_int_equal(d.calls, 1);
		assert_int_equal(d.st, cases[i].st);
		assert_string_equal(buf, cases[i].want);
	}
	/* ERROR reply: buf emptied, errno status. */
	char buf[8] = "junk";
	struct done_rec d = { 0 };
	struct req q = { 0 };
	setup_client();
	xs_read_str(&cl, "state", buf, sizeof(buf), done_cb, &d);
	assert_true(srv_recv(&q));
	srv_send_str(16, q.req_id, 0, "ENOENT");
	xs_poll(&cl);
	assert_int_equal(d.st, XS_ENOENT);
	assert_string_equal(buf, "");
}

/* ---- transactions -------------------------------------------------------------- */

struct tx_ctx {
	int runs;
	enum xs_status ret;
	int nwrites;
};

static enum xs_status tx_body(void *ctx, struct xs_tx *tx)
{
	struct tx_ctx *t = ctx;
	t->runs++;
	for (int i = 0; i < t->nwrites; i++) {
		char path[16];
		(void)snprintf(path, sizeof(path), "k%d", i);
		assert_int_equal(xs_tx_write_str(tx, path, "v"), XS_OK);
	}
	return t->ret;
}

/* Plays the server for one transaction run: START → id, the writes (all
 * carrying the id), END → end_reply. Returns the END payload's first byte. */
static char serve_tx_run(uint32_t id, int nwrites, const char *end_error, const char *op_error)
{
	struct req q = { 0 };
	char idstr[16];
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 6);
	assert_int_equal(q.tx_id, 0);
	assert_int_equal(q.len, 1);
	assert_int_equal(q.payload[0], 0);
	(void)snprintf(idstr, sizeof(idstr), "%u", id);
	srv_send_str(6, q.req_id, 0, idstr);
	xs_poll(&cl);
	for (int i = 0; i < nwrites; i++) {
		assert_true(srv_recv(&q));
		assert_int_equal(q.type, 11);
		assert_int_equal(q.tx_id, id);
		if (op_error && i == 0)
			srv_send_str(16, q.req_id, id, op_error);
		else
			srv_send_str(11, q.req_id, id, "OK");
	}
	/* END comes only after every operation was answered. */
	if (nwrites > 0) {
		assert_false(srv_recv(&q));
		xs_poll(&cl);
	}
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 7);
	assert_int_equal(q.tx_id, id);
	assert_int_equal(q.len, 2);
	assert_int_equal(q.payload[1], 0);
	if (end_error)
		srv_send_str(16, q.req_id, id, end_error);
	else
		srv_send_str(7, q.req_id, id, "OK");
	xs_poll(&cl);
	return q.payload[0];
}

struct tx_both {
	struct tx_ctx t;
	struct done_rec d;
};

static enum xs_status both_body(void *ctx, struct xs_tx *tx);
static void both_done(void *ctx, enum xs_status st);

static void test_transaction_commit(void **state)
{
	(void)state;
	struct tx_both b = { { 0, XS_OK, 2 }, { 0, XS_OK } };
	setup_client();
	assert_int_equal(xs_transaction(&cl, both_body, both_done, &b), XS_OK);
	assert_int_equal(serve_tx_run(42, 2, NULL, NULL), 'T');
	assert_int_equal(b.t.runs, 1);
	assert_int_equal(b.d.calls, 1);
	assert_int_equal(b.d.st, XS_OK);
	assert_int_equal(xs_in_flight(&cl), 0);
}

static enum xs_status both_body(void *ctx, struct xs_tx *tx)
{
	return tx_body(&((struct tx_both *)ctx)->t, tx);
}

static void both_done(void *ctx, enum xs_status st)
{
	done_cb(&((struct tx_both *)ctx)->d, st);
}

static void test_transaction_eagain_retry(void **state)
{
	(void)state;
	struct tx_both b = { { 0, XS_OK, 2 }, { 0, XS_OK } };
	setup_client();
	assert_int_equal(xs_transaction(&cl, both_body, both_done, &b), XS_OK);
	assert_int_equal(serve_tx_run(5, 2, "EAGAIN", NULL), 'T');
	assert_int_equal(b.d.calls, 0);
	assert_int_equal(serve_tx_run(6, 2, "EAGAIN", NULL), 'T');
	assert_int_equal(serve_tx_run(7, 2, NULL, NULL), 'T');
	assert_int_equal(b.t.runs, 3);
	assert_int_equal(b.d.calls, 1);
	assert_int_equal(b.d.st, XS_OK);
	assert_int_equal(xs_in_flight(&cl), 0);
}

static void test_transaction_eagain_bounded(void **state)
{
	(void)state;
	struct tx_both b = { { 0, XS_OK, 1 }, { 0, XS_OK } };
	struct req q = { 0 };
	setup_client();
	assert_int_equal(xs_transaction(&cl, both_body, both_done, &b), XS_OK);
	for (unsigned i = 0; i < XS_TX_ATTEMPTS; i++)
		assert_int_equal(serve_tx_run(10 + i, 1, "EAGAIN", NULL), 'T');
	assert_int_equal(b.t.runs, XS_TX_ATTEMPTS);
	assert_int_equal(b.d.calls, 1);
	assert_int_equal(b.d.st, XS_EAGAIN);
	assert_false(srv_recv(&q)); /* no further START */
}

static void test_transaction_abort(void **state)
{
	(void)state;
	/* The body refuses: END "F", done gets the body's status. */
	struct tx_both b = { { 0, XS_ERR_VALUE, 1 }, { 0, XS_OK } };
	setup_client();
	xs_transaction(&cl, both_body, both_done, &b);
	assert_int_equal(serve_tx_run(9, 1, NULL, NULL), 'F');
	assert_int_equal(b.d.calls, 1);
	assert_int_equal(b.d.st, XS_ERR_VALUE);
	/* An operation fails: END "F", done gets the operation's error. */
	struct tx_both b2 = { { 0, XS_OK, 2 }, { 0, XS_OK } };
	setup_client();
	xs_transaction(&cl, both_body, both_done, &b2);
	assert_int_equal(serve_tx_run(9, 2, NULL, "EACCES"), 'F');
	assert_int_equal(b2.d.calls, 1);
	assert_int_equal(b2.d.st, XS_EACCES);
	assert_int_equal(b2.t.runs, 1);
	/* An operation answered EAGAIN: abort and re-run. */
	struct tx_both b3 = { { 0, XS_OK, 1 }, { 0, XS_OK } };
	setup_client();
	xs_transaction(&cl, both_body, both_done, &b3);
	assert_int_equal(serve_tx_run(9, 1, NULL, "EAGAIN"), 'F');
	assert_int_equal(serve_tx_run(10, 1, NULL, NULL), 'T');
	assert_int_equal(b3.t.runs, 2);
	assert_int_equal(b3.d.st, XS_OK);
	assert_int_equal(b3.d.calls, 1);
}

static void test_transaction_bad_start_reply(void **state)
{
	(void)state;
	static const char *bad[] = { "abc", "0", "4294967296", "", "-1" };
	for (size_t i = 0; i < 5; i++) {
		struct tx_both b = { { 0, XS_OK, 1 }, { 0, XS_OK } };
		struct req q = { 0 };
		setup_client();
		xs_transaction(&cl, both_body, both_done, &b);
		assert_true(srv_recv(&q));
		srv_send_str(6, q.req_id, 0, bad[i]);
		xs_poll(&cl);
		assert_int_equal(b.t.runs, 0);
		assert_int_equal(b.d.calls, 1);
		assert_int_equal(b.d.st, XS_ERR_PROTO);
	}
	/* START refused. */
	struct tx_both b = { { 0, XS_OK, 1 }, { 0, XS_OK } };
	struct req q = { 0 };
	setup_client();
	xs_transaction(&cl, both_body, both_done, &b);
	assert_true(srv_recv(&q));
	srv_send_str(16, q.req_id, 0, "ENOSPC");
	xs_poll(&cl);
	assert_int_equal(b.d.st, XS_ENOSPC);
	assert_int_equal(b.t.runs, 0);
}

static void test_transaction_table_and_close(void **state)
{
	(void)state;
	struct tx_both b[XS_TX_MAX + 1];
	memset(b, 0, sizeof(b));
	setup_client();
	for (size_t i = 0; i < XS_TX_MAX; i++)
		assert_int_equal(xs_transaction(&cl, both_body, both_done, &b[i]), XS_OK);
	assert_int_equal(xs_transaction(&cl, both_body, both_done, &b[XS_TX_MAX]), XS_ERR_FULL);
	xs_client_close(&cl);
	for (size_t i = 0; i < XS_TX_MAX; i++) {
		assert_int_equal(b[i].d.calls, 1);
		assert_int_equal(b[i].d.st, XS_ERR_CLOSED);
	}
	assert_int_equal(b[XS_TX_MAX].d.calls, 0);
	assert_int_equal(xs_transaction(&cl, both_body, both_done, &b[0]), XS_ERR_CLOSED);
}

/* A transaction started while the in-flight table is full goes out later. */
static void test_transaction_deferred_when_busy(void **state)
{
	(void)state;
	struct tx_both b = { { 0, XS_OK, 0 }, { 0, XS_OK } };
	struct req q = { 0 };
	setup_client();
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++)
		xs_read(&cl, "k", NULL, NULL);
	assert_int_equal(xs_transaction(&cl, both_body, both_done, &b), XS_OK);
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++) {
		assert_true(srv_recv(&q));
		assert_int_equal(q.type, 2);
		if (i == 0)
			srv_send(2, q.req_id, 0, "", 0);
	}
	assert_false(srv_recv(&q));
	xs_poll(&cl);
	assert_int_equal(serve_tx_run(3, 0, NULL, NULL), 'T');
	assert_int_equal(b.d.calls, 1);
	assert_int_equal(b.d.st, XS_OK);
}

/* ---- watches ------------------------------------------------------------------ */

/* A scripted xenstored for watch traffic: acknowledges WATCH (then fires
 * it once, as xenstored does), UNWATCH (ENOENT when it holds no such
 * pair), and answers everything else "OK"/"". */
struct srv_watch {
	char path[300];
	char token[32];
};

static struct {
	struct srv_watch w[512];
	size_t n;
	uint64_t watch_msgs, unwatch_msgs, unwatch_enoent;
	bool unwatch_always_enoent;
} srv;

static void srv_reset(void)
{
	memset(&srv, 0, sizeof(srv));
}

static void srv_auto(void)
{
	struct req q = { 0 };
	while (srv_recv(&q)) {
		const char *path = q.payload;
		const char *tok = path + strlen(path) + 1;
		if (q.type == 4) {
			srv.watch_msgs++;
			assert_true(srv.n < 512);
			assert_true(strlen(path) < sizeof(srv.w[0].path));
			assert_true(strlen(tok) < sizeof(srv.w[0].token));
			memcpy(srv.w[srv.n].path, path, strlen(path) + 1);
			memcpy(srv.w[srv.n].token, tok, strlen(tok) + 1);
			srv.n++;
			srv_send_str(4, q.req_id, 0, "OK");
			char ev[400];
			size_t pl = strlen(path) + 1, tl = strlen(tok) + 1;
			memcpy(ev, path, pl);
			memcpy(ev + pl, tok, tl);
			srv_send(15, 0, 0, ev, pl + tl);
		} else if (q.type == 5) {
			srv.unwatch_msgs++;
			size_t i;
			for (i = 0; i < srv.n; i++)
				if (!strcmp(srv.w[i].path, path) && !strcmp(srv.w[i].token, tok))
					break;
			bool found = i < srv.n;
			if (found)
				srv.w[i] = srv.w[--srv.n];
			if (!found || srv.unwatch_always_enoent) {
				srv.unwatch_enoent++;
				srv_send_str(16, q.req_id, 0, "ENOENT");
			} else {
				srv_send_str(5, q.req_id, 0, "OK");
			}
		} else if (q.type == 2) {
			srv_send(2, q.req_id, q.tx_id, "", 0);
		} else {
			srv_send_str(q.type, q.req_id, q.tx_id, "OK");
		}
	}
}

static void pump(void)
{
	for (int i = 0; i < 8; i++) {
		xs_poll(&cl);
		srv_auto();
	}
	xs_poll(&cl);
}

static void test_watch_registration_and_events(void **state)
{
	(void)state;
	struct wrec a = { 0 }, b = { 0 };
	xs_watch_id ia, ib;
	struct req qa = { 0 }, qb = { 0 };
	setup_client();
	assert_int_equal(xs_watch_add(&cl, 1, "backend/vif", watch_cb, &a, &ia), XS_OK);
	assert_int_equal(xs_watch_add(&cl, 2, "/local/domain/0/x", watch_cb, &b, &ib), XS_OK);
	assert_int_not_equal(ia, 0);
	assert_int_not_equal(ib, 0);
	assert_int_not_equal(ia, ib);
	assert_int_equal(xs_watch_count(&cl), 2);
	assert_true(srv_recv(&qa));
	assert_true(srv_recv(&qb));
	assert_int_equal(qa.type, 4);
	assert_string_equal(qa.payload, "backend/vif");
	const char *ta = qa.payload + strlen(qa.payload) + 1;
	const char *tb = qb.payload + strlen(qb.payload) + 1;
	/* path\0token\0 exactly. */
	assert_int_equal(qa.len, strlen(qa.payload) + 1 + strlen(ta) + 1);
	assert_true(strlen(ta) > 0);
	assert_string_not_equal(ta, tb);
	srv_send_str(4, qa.req_id, 0, "OK");
	srv_send_str(4, qb.req_id, 0, "OK");
	char ev[128];
	size_t n = (size_t)snprintf(ev, sizeof(ev), "backend/vif/7/0%c%s", 0, ta) + 1;
	srv_send(15, 0, 0, ev, n);
	n = (size_t)snprintf(ev, sizeof(ev), "/local/domain/0/x%c%s", 0, tb) + 1;
	srv_send(15, 0, 0, ev, n);
	xs_poll(&cl);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.last_id, ia);
	assert_string_equal(a.path, "backend/vif/7/0");
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.last_id, ib);
	assert_int_equal(cl.watch_events, 2);
	/* Missing token, empty token, empty path, unknown token: dropped. */
	srv_send(15, 0, 0, "backend/vif/7", 14);
	srv_send(15, 0, 0, "backend/vif/7\0\0", 15);
	n = (size_t)snprintf(ev, sizeof(ev), "%c%s", 0, ta) + 1;
	srv_send(15, 0, 0, ev, n);
	srv_send(15, 0, 0, "backend/vif/7\0w1.999\0", 21);
	srv_send(15, 0, 0, "backend/vif/7\0w127.1\0", 21);
	srv_send(15, 0, 0, "backend/vif/7\0w99999999999.1\0", 29);
	srv_send(15, 0, 0, "backend/vif/7\0zzz\0", 18);
	srv_send(15, 0, 0, "", 0);
	/* The token alone, without its terminator. */
	n = (size_t)snprintf(ev, sizeof(ev), "backend/vif%c%s", 0, ta);
	srv_send(15, 0, 0, ev, n);
	xs_poll(&cl);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(cl.watch_events, 2); /* only delivered events count */
	assert_true(xs_client_is_open(&cl));
}

static void test_events_for_removed_watch_ignored(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	xs_watch_id ia;
	struct req q = { 0 };
	setup_client();
	xs_watch_add(&cl, 1, "device/vif/0/state", watch_cb, &a, &ia);
	assert_true(srv_recv(&q));
	char token[32];
	assert_true(strlen(q.payload + strlen(q.payload) + 1) < sizeof(token));
	memcpy(token, q.payload + strlen(q.payload) + 1, strlen(q.payload + strlen(q.payload) + 1) + 1);
	srv_send_str(4, q.req_id, 0, "OK");
	xs_poll(&cl);
	assert_true(xs_watch_remove(&cl, ia));
	assert_false(xs_watch_remove(&cl, ia)); /* stale handle */
	assert_int_equal(xs_watch_count(&cl), 0);
	struct req u = { 0 };
	assert_true(srv_recv(&u));
	assert_int_equal(u.type, 5);
	assert_int_equal(u.len, q.len);
	assert_memory_equal(u.payload, q.payload, q.len); /* identical pair */
	char ev[64];
	size_t n = (size_t)snprintf(ev, sizeof(ev), "device/vif/0/state%c%s", 0, token) + 1;
	srv_send(15, 0, 0, ev, n);
	srv_send_str(5, u.req_id, 0, "OK");
	srv_send(15, 0, 0, ev, n);
	xs_poll(&cl);
	assert_int_equal(a.calls, 0);
	/* A new watch in the same slot gets a new token: old events stay dead. */
	struct wrec b = { 0 };
	xs_watch_id ib;
	xs_watch_add(&cl, 1, "device/vif/0/state", watch_cb, &b, &ib);
	assert_int_not_equal(ia, ib);
	assert_true(srv_recv(&q));
	assert_string_not_equal(q.payload + strlen(q.payload) + 1, token);
	srv_send(15, 0, 0, ev, n);
	xs_poll(&cl);
	assert_int_equal(b.calls, 0);
}

static void test_unwatch_enoent_tolerated(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	xs_watch_id ia;
	setup_client();
	srv_reset();
	srv.unwatch_always_enoent = true;
	xs_watch_add(&cl, 7, "backend/vif/7/0/state", watch_cb, &a, &ia);
	pump();
	assert_int_equal(a.calls, 1); /* fired once on registration */
	assert_true(xs_watch_remove(&cl, ia));
	pump();
	assert_int_equal(srv.unwatch_enoent, 1);
	assert_true(xs_client_is_open(&cl));
	assert_int_equal(closed_calls, 0);
	assert_int_equal(xs_watch_count(&cl), 0);
	assert_int_equal(cl.protocol_errors, 0);
}

/* anchors §3: 200 attach/detach cycles of a client with 2 watches each;
 * the live watch count and the server's watch count stay constant. */
static void test_watch_churn_no_leak(void **state)
{
	(void)state;
	struct wrec global = { 0 }, per[2];
	setup_client();
	srv_reset();
	assert_int_equal(xs_watch_add(&cl, 0, "backend/vif", watch_cb, &global, NULL), XS_OK);
	pump();
	size_t base = xs_watch_count(&cl);
	assert_int_equal(base, 1);
	assert_int_equal(srv.n, 1);
	for (uint32_t cycle = 0; cycle < 200; cycle++) {
		uint32_t owner = 100 + cycle % 7;
		char p1[64], p2[64];
		memset(per, 0, sizeof(per));
		(void)snprintf(p1, sizeof(p1), "backend/vif/%u/0/state", owner);
		(void)snprintf(p2, sizeof(p2), "/local/domain/%u/device/vif/0/state", owner);
		assert_int_equal(xs_watch_add(&cl, owner, p1, watch_cb, &per[0], NULL), XS_OK);
		assert_int_equal(xs_watch_add(&cl, owner, p2, watch_cb, &per[1], NULL), XS_OK);
		pump();
		assert_int_equal(per[0].calls, 1);
		assert_int_equal(per[1].calls, 1);
		assert_int_equal(xs_watch_count(&cl), base + 2);
		assert_int_equal(srv.n, base + 2);
		/* Half the time the vif vanishes first (UNWATCH may see ENOENT). */
		srv.unwatch_always_enoent = cycle % 2;
		assert_int_equal(xs_watch_remove_owner(&cl, owner), 2);
		assert_int_equal(xs_watch_count(&cl), base);
		pump();
		assert_int_equal(srv.n, base);
		assert_int_equal(xs_in_flight(&cl), 0);
	}
	assert_int_equal(srv.watch_msgs, 1 + 400);
	assert_int_equal(srv.unwatch_msgs, 400);
	assert_int_equal(xs_watch_count(&cl), base);
	assert_true(xs_client_is_open(&cl));
}

/* Removing a watch whose WATCH is still unanswered sends UNWATCH after it;
 * removing one never sent sends nothing. */
static void test_watch_remove_before_ack(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	xs_watch_id ia;
	struct req q = { 0 };
	setup_client();
	xs_watch_add(&cl, 1, "p", watch_cb, &a, &ia);
	assert_true(xs_watch_remove(&cl, ia));
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 4);
	assert_string_equal(q.payload, "p");
	uint32_t wid = q.req_id;
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 5);
	srv_send_str(4, wid, 0, "OK");
	srv_send_str(5, q.req_id, 0, "OK");
	xs_poll(&cl);
	assert_int_equal(xs_watch_count(&cl), 0);
	assert_int_equal(xs_in_flight(&cl), 0);

	/* Busy: the WATCH waits; removal then costs nothing on the wire. */
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++)
		xs_read(&cl, "k", NULL, NULL);
	assert_int_equal(xs_watch_add(&cl, 1, "p", watch_cb, &a, &ia), XS_OK);
	assert_true(xs_watch_remove(&cl, ia));
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++) {
		assert_true(srv_recv(&q));
		srv_send(2, q.req_id, 0, "", 0);
	}
	xs_poll(&cl);
	assert_false(srv_recv(&q));
}

static void test_watch_and_unwatch_deferred_when_busy(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	xs_watch_id ia;
	struct req q = { 0 };
	setup_client();
	srv_reset();
	struct req reads[XS_MAX_IN_FLIGHT] = { 0 };
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++)
		xs_read(&cl, "k", NULL, NULL);
	assert_int_equal(xs_watch_add(&cl, 1, "p", watch_cb, &a, &ia), XS_OK);
	assert_int_equal(xs_watch_count(&cl), 1);
	for (size_t i = 0; i < XS_MAX_IN_FLIGHT; i++) {
		assert_true(srv_recv(&reads[i]));
		assert_int_equal(reads[i].type, 2);
	}
	assert_false(srv_recv(&q));
	srv_send(2, reads[XS_MAX_IN_FLIGHT - 1].req_id, 0, "", 0);
	xs_poll(&cl);
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 4);
	srv_send_str(4, q.req_id, 0, "OK");
	xs_poll(&cl);
	/* Fill again; remove: UNWATCH waits for room, callbacks stop now. */
	assert_int_equal(xs_read(&cl, "k", NULL, NULL), XS_OK);
	assert_int_equal(xs_read(&cl, "k", NULL, NULL), XS_ERR_BUSY);
	assert_true(xs_watch_remove(&cl, ia));
	assert_int_equal(xs_watch_count(&cl), 0);
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 2);
	assert_false(srv_recv(&q));
	srv_send(2, reads[0].req_id, 0, "", 0);
	xs_poll(&cl);
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 5);
	assert_string_equal(q.payload, "p");
}

static void test_watch_table_full(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	xs_watch_id ids[XS_WATCH_MAX];
	setup_client();
	srv_reset();
	for (size_t i = 0; i < XS_WATCH_MAX; i++) {
		assert_int_equal(xs_watch_add(&cl, (uint32_t)i, "p", watch_cb, &a, &ids[i]), XS_OK);
		pump();
	}
	assert_int_equal(xs_watch_add(&cl, 999, "p", watch_cb, &a, NULL), XS_ERR_FULL);
	assert_int_equal(xs_watch_count(&cl), XS_WATCH_MAX);
	assert_int_equal(srv.n, XS_WATCH_MAX);
	for (size_t i = 0; i < XS_WATCH_MAX; i++)
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
	assert_int_equal(xs_watch_remove_owner(&cl, 5), 1);
	pump();
	assert_int_equal(xs_watch_add(&cl, 999, "p", watch_cb, &a, NULL), XS_OK);
	pump();
	assert_int_equal(srv.n, XS_WATCH_MAX);
}

static void test_watch_refused(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	xs_watch_id ia;
	struct req q = { 0 };
	setup_client();
	xs_watch_add(&cl, 1, "p", watch_cb, &a, &ia);
	assert_true(srv_recv(&q));
	srv_send_str(16, q.req_id, 0, "ENOSPC");
	xs_poll(&cl);
	assert_int_equal(xs_watch_count(&cl), 1);
	assert_true(xs_watch_remove(&cl, ia));
	assert_false(srv_recv(&q)); /* the server does not hold it: no UNWATCH */
	assert_int_equal(xs_watch_count(&cl), 0);
}

/* Reconnection: live watches are registered again on the new stream; removed
 * ones are not. */
static void test_reconnect_reregisters(void **state)
{
	(void)state;
	struct wrec a = { 0 }, b = { 0 };
	xs_watch_id ia, ib;
	struct req q = { 0 };
	setup_client();
	srv_reset();
	xs_watch_add(&cl, 1, "a", watch_cb, &a, &ia);
	xs_watch_add(&cl, 2, "b", watch_cb, &b, &ib);
	pump();
	fake_stream_close(&pair, SERVER);
	xs_poll(&cl);
	assert_int_equal(closed_calls, 1);
	assert_false(xs_client_is_open(&cl));
	xs_watch_remove(&cl, ib);
	assert_int_equal(xs_watch_count(&cl), 1);
	fake_stream_init(&pair, 65536);
	xs_client_attach(&cl, fake_stream_end(&pair, CLIENT));
	assert_true(srv_recv(&q));
	assert_int_equal(q.type, 4);
	assert_string_equal(q.payload, "a");
	assert_false(srv_recv(&q));
}

/* Callbacks may issue requests and remove the firing watch. */
static xs_watch_id self_id;
static int self_calls;
static struct rec chained;

static void self_removing_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)ctx;
	(void)path;
	(void)len;
	self_calls++;
	assert_int_equal(id, self_id);
	assert_true(xs_watch_remove(&cl, id));
	assert_int_equal(xs_read(&cl, "again", rec_cb, &chained), XS_OK);
	assert_false(xs_poll(&cl)); /* re-entry refused */
}

static void test_callback_reentrancy(void **state)
{
	(void)state;
	setup_client();
	srv_reset();
	memset(&chained, 0, sizeof(chained));
	self_calls = 0;
	assert_int_equal(xs_watch_add(&cl, 1, "p", self_removing_watch, NULL, &self_id), XS_OK);
	pump();
	assert_int_equal(self_calls, 1);
	assert_int_equal(xs_watch_count(&cl), 0);
	assert_int_equal(srv.n, 0);
	assert_int_equal(chained.calls, 1);
	assert_int_equal(chained.st, XS_OK);
}

/* Many messages at once: the poll budget stops, the rest comes next poll. */
static void test_poll_budget(void **state)
{
	(void)state;
	struct wrec a = { 0 };
	struct req q = { 0 };
	setup_client();
	xs_watch_add(&cl, 1, "p", watch_cb, &a, NULL);
	assert_true(srv_recv(&q));
	const char *tok = q.payload + 2;
	char ev[32];
	size_t n = (size_t)snprintf(ev, sizeof(ev), "p%c%s", 0, tok) + 1;
	for (unsigned i = 0; i < XS_POLL_BUDGET + 10; i++)
		srv_send(15, 0, 0, ev, n);
	assert_true(xs_poll(&cl));
	assert_int_equal(a.calls, XS_POLL_BUDGET);
	assert_false(xs_poll(&cl));
	assert_int_equal(a.calls, XS_POLL_BUDGET + 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_request_payloads),
		cmocka_unit_test(test_request_ids_unique),
		cmocka_unit_test(test_every_split_of_replies),
		cmocka_unit_test(test_every_type_byte_by_byte),
		cmocka_unit_test(test_stream_of_messages_any_chunk),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_malformed_replies),
		cmocka_unit_test(test_unknown_req_id_ignored),
		cmocka_unit_test(test_max_payload_accepted),
		cmocka_unit_test(test_oversize_len_closes),
		cmocka_unit_test(test_peer_close),
		cmocka_unit_test(test_in_flight_bound),
		cmocka_unit_test(test_slow_stream_queues_and_flushes),
		cmocka_unit_test(test_out_buffer_full_is_busy),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_dir_next_and_value_copy),
		cmocka_unit_test(test_read_str),
		cmocka_unit_test(test_transaction_commit),
		cmocka_unit_test(test_transaction_eagain_retry),
		cmocka_unit_test(test_transaction_eagain_bounded),
		cmocka_unit_test(test_transaction_abort),
		cmocka_unit_test(test_transaction_bad_start_reply),
		cmocka_unit_test(test_transaction_table_and_close),
		cmocka_unit_test(test_transaction_deferred_when_busy),
		cmocka_unit_test(test_watch_registration_and_events),
		cmocka_unit_test(test_events_for_removed_watch_ignored),
		cmocka_unit_test(test_unwatch_enoent_tolerated),
		cmocka_unit_test(test_watch_churn_no_leak),
		cmocka_unit_test(test_watch_remove_before_ack),
		cmocka_unit_test(test_watch_and_unwatch_deferred_when_busy),
		cmocka_unit_test(test_watch_table_full),
		cmocka_unit_test(test_watch_refused),
		cmocka_unit_test(test_reconnect_reregisters),
		cmocka_unit_test(test_callback_reentrancy),
		cmocka_unit_test(test_poll_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
