/* test_qrexec.c — the qrexec agent against a scripted dom0 on in-memory
 * streams: HELLO bytes and v2/v3 negotiation (§3.3), the spec's exec
 * example (§3.4), each service and its exit code, SetDateTime parsing,
 * bad lengths, channel limits, every split of the control stream, control
 * EOF and reattach. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "fake_stream.h"
#include "qubes/qrexec.h"

#define AGENT 0
#define PEER 1
#define NDATA 8

static struct qrexec_agent agent;
static struct fake_stream_pair ctl;
static struct fake_stream_pair data[NDATA];
static size_t nconnects;
static uint32_t conn_dom[NDATA], conn_port[NDATA];
static bool connect_fails;
static uint64_t now;

static bool fake_connect(void *ctx, uint32_t domid, uint32_t port, struct stream *out)
{
	(void)ctx;
	if (connect_fails || nconnects >= NDATA)
		return false;
	fake_stream_init(&data[nconnects], 65536);
	conn_dom[nconnects] = domid;
	conn_port[nconnects] = port;
	*out = fake_stream_end(&data[nconnects], AGENT);
	nconnects++;
	return true;
}

static const char *status_text;

static size_t fake_status(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	size_t n = 0;
	while (n < cap && status_text[n]) {
		buf[n] = status_text[n];
		n++;
	}
	return n;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void poll_all(void)
{
	for (int i = 0; i < 50; i++)
		if (!qrexec_poll(&agent, now) && i > 3)
			break;
}

static size_t mk(uint8_t *buf, uint32_t type, const void *body, uint32_t len)
{
	put32(buf, type);
	put32(buf + 4, len);
	if (len)
		memcpy(buf + 8, body, len);
	return 8 + len;
}

static void peer_send(struct fake_stream_pair *p, uint32_t type, const void *body, uint32_t len)
{
	static uint8_t buf[70000 + 8];
	size_t n = mk(buf, type, body, len);
	assert_int_equal(fake_stream_put(p, PEER, buf, n), n);
}

/* A control message larger than the ring: fed in pieces. */
static void peer_send_big(uint32_t type, const void *body, uint32_t len)
{
	static uint8_t buf[70000 + 8];
	size_t n = mk(buf, type, body, len), off = 0;
	while (off < n) {
		off += fake_stream_put(&ctl, PEER, buf + off, n - off);
		for (int i = 0; i < 10; i++)
			qrexec_poll(&agent, now);
	}
}

/* Reads one whole message written by the agent on p. */
static bool peer_take(struct fake_stream_pair *p, uint32_t *type, uint8_t *body, uint32_t *len)
{
	uint8_t h[8] = { 0 };
	*type = 0;
	*len = 0;
	if (fake_stream_pending(p, PEER) < 8)
		return false;
	fake_stream_peek(p, PEER, h, 8);
	uint32_t l = get32(h + 4);
	assert_true(fake_stream_pending(p, PEER) >= 8 + l); /* whole messages */
	fake_stream_get(p, PEER, h, 8);
	*type = get32(h);
	*len = l;
	fake_stream_get(p, PEER, body, l);
	return true;
}

static void hello(uint32_t version)
{
	uint8_t v[4];
	put32(v, version);
	peer_send(&ctl, QREXEC_MSG_HELLO, v, 4);
	poll_all();
}

static void setup(void)
{
	static const struct qrexec_connector conn = { fake_connect, NULL };
	static const struct qrexec_services svc = { fake_status, NULL };
	nconnects = 0;
	connect_fails = false;
	now = 1000;
	status_text = "";
	clock_set_now(0);
	fake_stream_init(&ctl, 65536);
	qrexec_init(&agent, &conn, &svc);
	qrexec_attach(&agent, fake_stream_end(&ctl, AGENT));
}

static void ready(uint32_t version)
{
	setup();
	uint8_t b[16];
	uint32_t t, l;
	assert_true(peer_take(&ctl, &t, b, &l));
	assert_int_equal(t, QREXEC_MSG_HELLO);
	hello(version);
	assert_int_equal(qrexec_state(&agent), QREXEC_READY);
}

static void exec(uint32_t type, uint32_t dom, uint32_t port, const char *cmd)
{
	static uint8_t body[2048];
	size_t cl = strlen(cmd) + 1;
	put32(body, dom);
	put32(body + 4, port);
	memcpy(body + 8, cmd, cl);
	peer_send(&ctl, type, body, (uint32_t)(8 + cl));
	poll_all();
}

struct result {
	char out[8192];
	size_t out_len;
	char err[1024];
	size_t err_len;
	bool out_eof, err_eof;
	bool have_exit;
	int32_t exit_code;
	unsigned msgs_after_exit;
	uint32_t last_type;
};

/* Data-channel peer: reads the agent's HELLO, answers with version,
 * optionally sends stdin, collects the output. */
static void data_run(size_t idx, uint32_t version, const char *stdin_text, bool send_eof,
		     struct result *r)
{
	static uint8_t body[70000];
	uint32_t t, l;
	memset(r, 0, sizeof(*r));
	struct fake_stream_pair *p = &data[idx];
	assert_true(peer_take(p, &t, body, &l));
	assert_int_equal(t, QREXEC_MSG_HELLO);
	assert_int_equal(l, 4);
	assert_int_equal(get32(body), 3);
	uint8_t v[4];
	put32(v, version);
	peer_send(p, QREXEC_MSG_HELLO, v, 4);
	if (stdin_text && *stdin_text)
		peer_send(p, QREXEC_MSG_DATA_STDIN, stdin_text, (uint32_t)strlen(stdin_text));
	if (send_eof)
		peer_send(p, QREXEC_MSG_DATA_STDIN, NULL, 0);
	poll_all();
	while (peer_take(p, &t, body, &l)) {
		if (r->have_exit)
			r->msgs_after_exit++;
		r->last_type = t;
		switch (t) {
		case QREXEC_MSG_DATA_STDOUT:
			if (l == 0) {
				r->out_eof = true;
			} else {
				assert_false(r->out_eof);
				assert_true(l <= (version >= 3 ? 65536u : 4096u));
				memcpy(r->out + r->out_len, body, l);
				r->out_len += l;
			}
			break;
		case QREXEC_MSG_DATA_STDERR:
			if (l == 0) {
				r->err_eof = true;
			} else {
				memcpy(r->err + r->err_len, body, l);
				r->err_len += l;
			}
			break;
		case QREXEC_MSG_DATA_EXIT_CODE:
			assert_int_equal(l, 4);
			r->have_exit = true;
			r->exit_code = (int32_t)get32(body);
			break;
		default:
			fail_msg("unexpected type 0x%x", t);
		}
	}
}

/* The control channel carries CONNECTION_TERMINATED for (dom, port). */
static void expect_terminated(uint32_t dom, uint32_t port)
{
	uint8_t b[64];
	uint32_t t, l;
	assert_true(peer_take(&ctl, &t, b, &l));
	assert_int_equal(t, QREXEC_MSG_CONNECTION_TERMINATED);
	assert_int_equal(l, 8);
	assert_int_equal(get32(b), dom);
	assert_int_equal(get32(b + 4), port);
}

/* ---- tests --------------------------------------------------------------- */

/* §3.3: the agent speaks first: 00 03 00 00 04 00 00 00 03 00 00 00. */
static void test_hello_bytes(void **state)
{
	(void)state;
	setup();
	static const uint8_t want[12] = { 0x00, 0x03, 0, 0, 0x04, 0, 0, 0, 0x03, 0, 0, 0 };
	uint8_t got[12];
	assert_int_equal(fake_stream_pending(&ctl, PEER), 12);
	fake_stream_get(&ctl, PEER, got, 12);
	assert_memory_equal(got, want, 12);
	assert_int_equal(qrexec_state(&agent), QREXEC_HELLO);
	poll_all();
	assert_int_equal(qrexec_state(&agent), QREXEC_HELLO); /* waits, no busy error */
}

static void test_negotiation(void **state)
{
	(void)state;
	const uint32_t theirs[] = { 2, 3, 4, 100 };
	const uint32_t want[] = { 2, 3, 3, 3 };
	for (size_t i = 0; i < 4; i++) {
		ready(theirs[i]);
		assert_int_equal(qrexec_version(&agent), want[i]);
	}
	/* version 1 or 0: refused, channel closed, waiting for a new one */
	for (uint32_t v = 0; v < 2; v++) {
		setup();
		hello(v);
		assert_int_equal(qrexec_state(&agent), QREXEC_WAITING);
		assert_int_equal(ctl.close_calls[AGENT], 1);
	}
}

static void test_bad_hello(void **state)
{
	(void)state;
	uint8_t b[8] = { 3, 0, 0, 0, 0, 0, 0, 0 };
	/* wrong length */
	setup();
	peer_send(&ctl, QREXEC_MSG_HELLO, b, 8);
	poll_all();
	assert_int_equal(qrexec_state(&agent), QREXEC_WAITING);
	/* wrong type first */
	setup();
	peer_send(&ctl, QREXEC_MSG_EXEC_CMDLINE, b, 4);
	poll_all();
	assert_int_equal(qrexec_state(&agent), QREXEC_WAITING);
	assert_int_equal(nconnects, 0);
	/* EOF before HELLO */
	setup();
	fake_stream_close(&ctl, PEER);
	poll_all();
	assert_int_equal(qrexec_state(&agent), QREXEC_WAITING);
}

/* HELLO delivered one byte per read and split at every point. */
static void test_hello_splits(void **state)
{
	(void)state;
	uint8_t msg[12];
	uint8_t v[4] = { 3, 0, 0, 0 };
	mk(msg, QREXEC_MSG_HELLO, v, 4);
	for (size_t split = 0; split <= 12; split++) {
		setup();
		fake_stream_set_read_chunk(&ctl, AGENT, 1);
		fake_stream_put(&ctl, PEER, msg, split);
		poll_all();
		fake_stream_put(&ctl, PEER, msg + split, 12 - split);
		poll_all();
		assert_int_equal(qrexec_state(&agent), QREXEC_READY);
		assert_int_equal(qrexec_version(&agent), 3);
	}
}

/* §3.4 example bytes: root:QUBESRPC qubes.WaitForSession dom0, port 513. */
static void test_wait_for_session_known_answer(void **state)
{
	(void)state;
	ready(3);
	static const uint8_t head[16] = { 0x00, 0x02, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0, 0 };
	uint8_t msg[16 + 40];
	memcpy(msg, head, 16);
	memcpy(msg + 16, "root:QUBESRPC qubes.WaitForSession dom0", 40);
	fake_stream_put(&ctl, PEER, msg, sizeof(msg));
	poll_all();
	assert_int_equal(nconnects, 1);
	assert_int_equal(conn_dom[0], 0);
	assert_int_equal(conn_port[0], 513);
	/* the data peer (dom0 qrexec-client, R4.3) says 4 */
	uint8_t hv[12] = { 0x00, 0x03, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0 };
	uint8_t got[12];
	fake_stream_get(&data[0], PEER, got, 12); /* agent's HELLO */
	assert_int_equal(get32(got), QREXEC_MSG_HELLO);
	fake_stream_put(&data[0], PEER, hv, 12);
	poll_all();
	/* STDOUT EOF, STDERR EOF, then exit code 0 as in §3.4 */
	static const uint8_t want[] = {
		0x91, 0x01, 0, 0, 0, 0, 0, 0,
		0x92, 0x01, 0, 0, 0, 0, 0, 0,
		0x93, 0x01, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
	};
	uint8_t out[sizeof(want)];
	assert_int_equal(fake_stream_pending(&data[0], PEER), sizeof(want));
	fake_stream_get(&data[0], PEER, out, sizeof(out));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(data[0].close_calls[AGENT], 1);
	expect_terminated(0, 513);
	assert_int_equal(qrexec_active_channels(&agent), 0);
}

/* Any argument form of WaitForSession, with or without a user. */
static void test_wait_for_session_forms(void **state)
{
	(void)state;
	const char *forms[] = {
		"DEFAULT:QUBESRPC qubes.WaitForSession dom0",
		"user:QUBESRPC qubes.WaitForSession+ dom0",
		"user:QUBESRPC qubes.WaitForSession+arg dom0",
		"root:QUBESRPC qubes.WaitForSession none",
		"user:nogui:QUBESRPC qubes.WaitForSession dom0",
		"QUBESRPC qubes.WaitForSession dom0",
		"user:QUBESRPC qubes.WaitForSession",
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		for (uint32_t v = 2; v <= 3; v++) {
			struct result r;
			ready(3);
			exec(QREXEC_MSG_EXEC_CMDLINE, 0, 514, forms[i]);
			assert_int_equal(nconnects, 1);
			data_run(0, v, NULL, false, &r);
			assert_true(r.have_exit);
			assert_int_equal(r.exit_code, 0);
			assert_true(r.out_eof && r.err_eof);
			assert_int_equal(r.last_type, QREXEC_MSG_DATA_EXIT_CODE);
			expect_terminated(0, 514);
		}
	}
}

static void test_unknown_service(void **state)
{
	(void)state;
	struct result r;
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 515, "user:QUBESRPC qubes.Foo+bar dom0");
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
	r.err[r.err_len] = 0;
	assert_non_null(strstr(r.err, "service qubes.Foo not supported by qubes-c-firewall"));
	assert_int_equal(r.out_len, 0);
	/* a shell command is not a service either */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 516, "user:ls -l /");
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
	r.err[r.err_len] = 0;
	assert_non_null(strstr(r.err, "ls -l /"));
	/* non-printable bytes in the name are not echoed */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 517, "user:QUBESRPC a\x1b[2Jb dom0");
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
	for (size_t i = 0; i < r.err_len; i++)
		assert_true(r.err[i] == '\n' || (r.err[i] >= 0x20 && r.err[i] < 0x7f));
	/* WaitForSessionX is not WaitForSession */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 518, "user:QUBESRPC qubes.WaitForSessionX dom0");
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
}

static void test_set_date_time(void **state)
{
	(void)state;
	struct result r;
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 520, "DEFAULT:QUBESRPC qubes.SetDateTime dom0");
	data_run(0, 3, "2015-07-31T16:10:43+0000\n", true, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(clock_wall(), 1438359043ull * 1000000000ull);
	expect_terminated(0, 520);

	/* the line alone (no EOF yet) is enough; byte by byte */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 521, "root:QUBESRPC qubes.SetDateTime dom0");
	fake_stream_set_read_chunk(&data[0], AGENT, 1);
	data_run(0, 2, "2026-11-29T12:34:56+00:00\n", false, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(clock_wall(), 1795955696ull * 1000000000ull);

	/* EOF without newline still parses */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 522, "root:QUBESRPC qubes.SetDateTime dom0");
	data_run(0, 3, "2024-02-29T23:59:59-05:30", true, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(clock_wall(), 1709270999ull * 1000000000ull);

	/* bad input: exit 1 with a message, clock untouched */
	const char *bad[] = { "yesterday\n", "2015-07-31 16:10:43+0000\n", "\n", "",
			      "2015-02-29T00:00:00Z\n",
			      "2015-07-31T16:10:43+0000 and a lot more text after it....\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ready(3);
		clock_set_wall(42);
		exec(QREXEC_MSG_EXEC_CMDLINE, 0, 523, "root:QUBESRPC qubes.SetDateTime dom0");
		data_run(0, 3, bad[i], true, &r);
		assert_int_equal(r.exit_code, 1);
		assert_true(r.err_len > 0);
		assert_int_equal(clock_wall(), 42);
	}
	/* no newline and no EOF: still waiting */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 524, "root:QUBESRPC qubes.SetDateTime dom0");
	data_run(0, 3, "2015-07-31T16", false, &r);
	assert_false(r.have_exit);
	assert_int_equal(qrexec_active_channels(&agent), 1);
}

static void test_parse_datetime(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t secs;
	} good[] = {
		{ "2015-07-31T16:10:43+0000", 1438359043 },
		{ "2015-07-31T16:10:43+00:00", 1438359043 },
		{ "2015-07-31T16:10:43Z", 1438359043 },
		{ "1970-01-01T00:00:00+00:00", 0 },
		{ "2000-03-01T01:00:00+01:00", 951868800 },
		{ "2024-02-29T23:59:59-05:30", 1709270999 },
		{ "9999-12-31T23:59:59+00:00", 253402300799ull },
		{ "2100-02-28T12:00:00+14:00", 4107448800ull },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t ns = 0;
		assert_true(qrexec_parse_datetime(good[i].s, strlen(good[i].s), &ns));
		assert_int_equal(ns, good[i].secs * 1000000000ull);
	}
	const char *bad[] = {
		"", "2015", "2015-07-31T16:10:43", "2015-07-31T16:10:43+000",
		"2015-07-31T16:10:43+00000", "2015-07-31T16:10:43+00:0", "2015-07-31T16:10:43z",
		"2015-07-31T16:10:43 +0000", "2015-07-31t16:10:43Z", "2015-13-01T00:00:00Z",
		"2015-00-01T00:00:00Z", "2015-04-31T00:00:00Z", "2023-02-29T00:00:00Z",
		"2100-02-29T00:00:00Z", "2015-07-00T00:00:00Z", "2015-07-31T24:00:00Z",
		"2015-07-31T23:60:00Z", "2015-07-31T23:59:60Z", "1969-12-31T23:59:59Z",
		"1970-01-01T00:00:00+01:00", "2015-07-31T16:10:43+2400", "2015-07-31T16:10:43+0060",
		"2015-07-31T16:10:43ZZ", "20a5-07-31T16:10:43Z", "+015-07-31T16:10:43Z",
		"2015-07-31T16:10:43+-1:00", "1438359043",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t ns = 7;
		assert_false(qrexec_parse_datetime(bad[i], strlen(bad[i]), &ns));
		assert_int_equal(ns, 7);
	}
	/* 2000-02-29 is a leap day (divisible by 400) */
	uint64_t ns;
	assert_true(qrexec_parse_datetime("2000-02-29T00:00:00Z", 20, &ns));
	assert_int_equal(ns, 951782400ull * 1000000000ull);
}

static void test_parse_cmdline(void **state)
{
	(void)state;
	const char *name;
	size_t n;
	const char *c = "user:QUBESRPC qubes.FirewallStatus+x dom0";
	assert_int_equal(qrexec_parse_cmdline(c, strlen(c), &name, &n), QREXEC_SVC_FIREWALL_STATUS);
	assert_int_equal(n, strlen("qubes.FirewallStatus"));
	c = "user:QUBESRPC ";
	assert_int_equal(qrexec_parse_cmdline(c, strlen(c), &name, &n), QREXEC_SVC_UNKNOWN);
	assert_int_equal(n, 0);
	c = "user:QUBESRPCqubes.WaitForSession dom0";
	assert_int_equal(qrexec_parse_cmdline(c, strlen(c), &name, &n), QREXEC_SVC_UNKNOWN);
	c = "";
	assert_int_equal(qrexec_parse_cmdline(c, 0, &name, &n), QREXEC_SVC_UNKNOWN);
	c = "qubes.SetDateTime";
	assert_int_equal(qrexec_parse_cmdline(c, strlen(c), &name, &n), QREXEC_SVC_UNKNOWN);
}

static void test_firewall_status(void **state)
{
	(void)state;
	struct result r;
	ready(3);
	status_text = "clients: 2\nrules: ok\n";
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 530, "user:QUBESRPC qubes.FirewallStatus dom0");
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, strlen(status_text));
	assert_memory_equal(r.out, status_text, r.out_len);
	/* the largest status, through a small ring: chunks, in order */
	static char big[QREXEC_STATUS_MAX + 100];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = 0;
	ready(2);
	status_text = big;
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 531, "user:QUBESRPC qubes.FirewallStatus dom0");
	fake_stream_set_capacity(&data[0], AGENT, 100);
	static struct result acc;
	memset(&acc, 0, sizeof(acc));
	data_run(0, 2, NULL, false, &r);
	memcpy(acc.out, r.out, r.out_len);
	acc.out_len = r.out_len;
	for (int i = 0; i < 1000 && !r.have_exit; i++) {
		uint32_t t, l;
		static uint8_t body[200];
		poll_all();
		while (peer_take(&data[0], &t, body, &l)) {
			if (t == QREXEC_MSG_DATA_STDOUT && l) {
				memcpy(acc.out + acc.out_len, body, l);
				acc.out_len += l;
			}
			if (t == QREXEC_MSG_DATA_EXIT_CODE)
				r.have_exit = true;
		}
	}
	assert_true(r.have_exit);
	assert_int_equal(acc.out_len, QREXEC_STATUS_MAX);
	assert_memory_equal(acc.out, big, QREXEC_STATUS_MAX);
}

/* JUST_EXEC: only the exit code, as the Linux agent does. */
static void test_just_exec(void **state)
{
	(void)state;
	struct result r;
	ready(3);
	exec(QREXEC_MSG_JUST_EXEC, 0, 540, "user:QUBESRPC qubes.WaitForSession dom0");
	data_run(0, 3, NULL, false, &r);
	assert_true(r.have_exit);
	assert_int_equal(r.exit_code, 0);
	assert_false(r.out_eof);
	assert_int_equal(r.err_len, 0);
	expect_terminated(0, 540);
	ready(3);
	exec(QREXEC_MSG_JUST_EXEC, 0, 541, "user:xterm");
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
	assert_int_equal(r.err_len, 0);
}

/* At most QREXEC_MAX_CHANNELS at once; the rest get CONNECTION_TERMINATED. */
static void test_channel_limit(void **state)
{
	(void)state;
	ready(3);
	for (uint32_t i = 0; i <= QREXEC_MAX_CHANNELS; i++)
		exec(QREXEC_MSG_EXEC_CMDLINE, 0, 600 + i, "user:QUBESRPC qubes.SetDateTime dom0");
	assert_int_equal(nconnects, QREXEC_MAX_CHANNELS);
	assert_int_equal(qrexec_active_channels(&agent), QREXEC_MAX_CHANNELS);
	expect_terminated(0, 600 + QREXEC_MAX_CHANNELS);
	/* finish one: room for a new one */
	struct result r;
	data_run(1, 3, "", true, &r);
	assert_int_equal(r.exit_code, 1);
	expect_terminated(0, 601);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 700, "user:QUBESRPC qubes.WaitForSession dom0");
	assert_int_equal(nconnects, QREXEC_MAX_CHANNELS + 1);
	/* a failed connect is answered on the control channel too */
	ready(3);
	connect_fails = true;
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 710, "user:QUBESRPC qubes.WaitForSession dom0");
	expect_terminated(0, 710);
	assert_int_equal(qrexec_active_channels(&agent), 0);
}

/* Bad lengths and unknown messages on the control channel: dropped with
 * framing kept; a following good request is served. */
static void test_control_bad_messages(void **state)
{
	(void)state;
	static uint8_t body[70000];
	ready(3);
	memset(body, 'x', sizeof(body));
	peer_send(&ctl, QREXEC_MSG_EXEC_CMDLINE, body, 4);            /* < 8 */
	peer_send_big(QREXEC_MSG_EXEC_CMDLINE, body, 8 + 65536);       /* > max */
	peer_send(&ctl, 0x4444, body, 1000);                          /* unknown */
	peer_send(&ctl, QREXEC_MSG_SERVICE_REFUSED, body, 32);
	peer_send(&ctl, QREXEC_MSG_SERVICE_CONNECT, body, 40);
	peer_send(&ctl, QREXEC_MSG_HELLO, body, 4);                   /* late HELLO */
	peer_send(&ctl, QREXEC_MSG_DATA_STDOUT, NULL, 0);
	poll_all();
	assert_int_equal(nconnects, 0);
	assert_int_equal(qrexec_state(&agent), QREXEC_READY);
	/* domain id out of range, port 0 */
	exec(QREXEC_MSG_EXEC_CMDLINE, 0x7ff0, 600, "user:QUBESRPC qubes.WaitForSession dom0");
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 0, "user:QUBESRPC qubes.WaitForSession dom0");
	assert_int_equal(nconnects, 0);
	/* unterminated command line: served as invalid, exit 127 */
	put32(body, 0);
	put32(body + 4, 777);
	peer_send(&ctl, QREXEC_MSG_EXEC_CMDLINE, body, 8 + 20);
	poll_all();
	assert_int_equal(nconnects, 1);
	struct result r;
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
	/* command line longer than we keep: 127 */
	put32(body + 4, 778);
	memset(body + 8, 'y', 5000);
	body[8 + 4999] = 0;
	peer_send(&ctl, QREXEC_MSG_EXEC_CMDLINE, body, 8 + 5000);
	poll_all();
	assert_int_equal(nconnects, 2);
	data_run(1, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 127);
	/* and a good one still works */
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 800, "user:QUBESRPC qubes.WaitForSession dom0");
	assert_int_equal(nconnects, 3);
	data_run(2, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 0);
}

/* A whole control script split at every point gives the same requests. */
static void test_control_splits(void **state)
{
	(void)state;
	static uint8_t script[1024];
	size_t n = 0;
	uint8_t v[4] = { 3, 0, 0, 0 };
	n += mk(script + n, QREXEC_MSG_HELLO, v, 4);
	static uint8_t body[128];
	const char *cmd = "root:QUBESRPC qubes.WaitForSession dom0";
	put32(body, 0);
	put32(body + 4, 513);
	memcpy(body + 8, cmd, strlen(cmd) + 1);
	n += mk(script + n, 0x5555, body, 17);
	n += mk(script + n, QREXEC_MSG_EXEC_CMDLINE, body, (uint32_t)(8 + strlen(cmd) + 1));
	put32(body + 4, 514);
	n += mk(script + n, QREXEC_MSG_JUST_EXEC, body, (uint32_t)(8 + strlen(cmd) + 1));
	for (size_t split = 0; split <= n; split++) {
		for (size_t chunk = 0; chunk <= 1; chunk++) {
			setup();
			fake_stream_set_read_chunk(&ctl, AGENT, chunk);
			fake_stream_put(&ctl, PEER, script, split);
			poll_all();
			fake_stream_put(&ctl, PEER, script + split, n - split);
			poll_all();
			assert_int_equal(qrexec_state(&agent), QREXEC_READY);
			assert_int_equal(nconnects, 2);
			assert_int_equal(conn_port[0], 513);
			assert_int_equal(conn_port[1], 514);
		}
	}
}

/* Data-channel protocol errors end the channel (terminated on control). */
static void test_data_protocol_errors(void **state)
{
	(void)state;
	static uint8_t big[5000];
	uint8_t v[4];
	/* first message is not HELLO */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 900, "user:QUBESRPC qubes.SetDateTime dom0");
	peer_send(&data[0], QREXEC_MSG_DATA_STDIN, "x", 1);
	poll_all();
	assert_int_equal(qrexec_active_channels(&agent), 0);
	assert_int_equal(data[0].close_calls[AGENT], 1);
	expect_terminated(0, 900);
	/* HELLO version 1 */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 901, "user:QUBESRPC qubes.SetDateTime dom0");
	put32(v, 1);
	peer_send(&data[0], QREXEC_MSG_HELLO, v, 4);
	poll_all();
	assert_int_equal(qrexec_active_channels(&agent), 0);
	/* v2 chunk limit: 4097 bytes of stdin */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 902, "user:QUBESRPC qubes.SetDateTime dom0");
	put32(v, 2);
	peer_send(&data[0], QREXEC_MSG_HELLO, v, 4);
	peer_send(&data[0], QREXEC_MSG_DATA_STDIN, big, 4097);
	poll_all();
	assert_int_equal(qrexec_active_channels(&agent), 0);
	/* v3 allows it (and the long line is rejected as input, exit 1) */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 903, "user:QUBESRPC qubes.SetDateTime dom0");
	memset(big, '1', sizeof(big));
	struct result r;
	big[4097] = 0;
	data_run(0, 3, (const char *)big, false, &r);
	assert_int_equal(r.exit_code, 1);
	/* unexpected types on the data channel are skipped */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 904, "user:QUBESRPC qubes.SetDateTime dom0");
	put32(v, 3);
	peer_send(&data[0], QREXEC_MSG_HELLO, v, 4);
	peer_send(&data[0], QREXEC_MSG_DATA_STDOUT, "junk", 4);
	peer_send(&data[0], QREXEC_MSG_DATA_EXIT_CODE, "1234", 4);
	peer_send(&data[0], QREXEC_MSG_HELLO, big, 3000); /* late HELLO (fuzz finding) */
	uint8_t skip[4];
	fake_stream_get(&data[0], PEER, skip, 4);
	fake_stream_get(&data[0], PEER, skip, 4);
	fake_stream_get(&data[0], PEER, skip, 4); /* agent's HELLO (12 bytes) */
	peer_send(&data[0], QREXEC_MSG_DATA_STDIN, "2015-07-31T16:10:43Z\n", 21);
	poll_all();
	uint32_t t, l;
	static uint8_t body[100];
	bool exit_seen = false;
	while (peer_take(&data[0], &t, body, &l))
		if (t == QREXEC_MSG_DATA_EXIT_CODE) {
			exit_seen = true;
			assert_int_equal(get32(body), 0);
		}
	assert_true(exit_seen);
	/* peer closes before we answer */
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 905, "user:QUBESRPC qubes.SetDateTime dom0");
	fake_stream_close(&data[0], PEER);
	poll_all();
	assert_int_equal(qrexec_active_channels(&agent), 0);
	expect_terminated(0, 905);
}

/* A data channel whose peer never answers is ended after the timeout. */
static void test_channel_timeout(void **state)
{
	(void)state;
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 950, "user:QUBESRPC qubes.WaitForSession dom0");
	now += QREXEC_CHANNEL_TIMEOUT_NS / 2;
	poll_all();
	assert_int_equal(qrexec_active_channels(&agent), 1);
	now += QREXEC_CHANNEL_TIMEOUT_NS;
	poll_all();
	assert_int_equal(qrexec_active_channels(&agent), 0);
	expect_terminated(0, 950);
}

/* Control EOF: back to waiting; running data channels finish; a new
 * control stream gets a fresh HELLO. */
static void test_control_eof_reattach(void **state)
{
	(void)state;
	ready(3);
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 960, "user:QUBESRPC qubes.WaitForSession dom0");
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 962, "user:QUBESRPC qubes.WaitForSession dom0");
	fake_stream_close(&ctl, PEER);
	poll_all();
	assert_int_equal(qrexec_state(&agent), QREXEC_WAITING);
	assert_int_equal(ctl.close_calls[AGENT], 1);
	assert_int_equal(qrexec_active_channels(&agent), 2);
	struct result r;
	data_run(0, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(qrexec_active_channels(&agent), 1);
	/* reattach */
	fake_stream_init(&ctl, 65536);
	qrexec_attach(&agent, fake_stream_end(&ctl, AGENT));
	uint8_t b[16];
	uint32_t t, l;
	assert_true(peer_take(&ctl, &t, b, &l));
	assert_int_equal(t, QREXEC_MSG_HELLO);
	assert_int_equal(get32(b), 3);
	assert_false(peer_take(&ctl, &t, b, &l)); /* nothing stale from the old session */
	hello(2);
	assert_int_equal(qrexec_state(&agent), QREXEC_READY);
	assert_int_equal(qrexec_version(&agent), 2);
	/* the old session's channel ends: the new daemon is not told */
	data_run(1, 3, NULL, false, &r);
	assert_int_equal(r.exit_code, 0);
	assert_false(peer_take(&ctl, &t, b, &l));
	exec(QREXEC_MSG_EXEC_CMDLINE, 0, 961, "user:QUBESRPC qubes.WaitForSession dom0");
	data_run(2, 2, NULL, false, &r);
	assert_int_equal(r.exit_code, 0);
	expect_terminated(0, 961);
	qrexec_close(&agent);
	assert_int_equal(qrexec_state(&agent), QREXEC_WAITING);
}

/* A control ring with little room: HELLO waits until it fits whole. */
static void test_control_write_space(void **state)
{
	(void)state;
	static const struct qrexec_connector conn = { fake_connect, NULL };
	fake_stream_init(&ctl, 65536);
	fake_stream_set_capacity(&ctl, AGENT, 11);
	qrexec_init(&agent, &conn, NULL);
	qrexec_attach(&agent, fake_stream_end(&ctl, AGENT));
	poll_all();
	assert_int_equal(fake_stream_pending(&ctl, PEER), 0);
	fake_stream_set_capacity(&ctl, AGENT, 12);
	poll_all();
	assert_int_equal(fake_stream_pending(&ctl, PEER), 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_bytes),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_bad_hello),
		cmocka_unit_test(test_hello_splits),
		cmocka_unit_test(test_wait_for_session_known_answer),
		cmocka_unit_test(test_wait_for_session_forms),
		cmocka_unit_test(test_unknown_service),
		cmocka_unit_test(test_set_date_time),
		cmocka_unit_test(test_parse_datetime),
		cmocka_unit_test(test_parse_cmdline),
		cmocka_unit_test(test_firewall_status),
		cmocka_unit_test(test_just_exec),
		cmocka_unit_test(test_channel_limit),
		cmocka_unit_test(test_control_bad_messages),
		cmocka_unit_test(test_control_splits),
		cmocka_unit_test(test_data_protocol_errors),
		cmocka_unit_test(test_channel_timeout),
		cmocka_unit_test(test_control_eof_reattach),
		cmocka_unit_test(test_control_write_space),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
