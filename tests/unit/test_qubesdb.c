/* test_qubesdb.c — the QubesDB client against a scripted dom0 on an
 * in-memory stream: the spec's example bytes (§2.6), every message type,
 * every split of the byte stream, commit semantics (§2.5, §6.1), store
 * limits, refusal of writes dom0 would find fatal (§2.4), reconnect. Every
 * message the client sends is checked by an independent §2.4 validator. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_stream.h"
#include "qubes/qubesdb.h"

#define VM 0
#define DOM0 1

/* ---- recorded events ------------------------------------------------------ */

struct rec_event {
	size_t len;
	enum qdb_event_type type;
	bool resync;
	char path[64];
	char value[3200];
};

static struct rec_event events[4096];
static size_t nevents;

static struct qdb db;
static uint8_t db_mem[1 << 20];
static struct fake_stream_pair pair;

/* Optional hook run from the callback (for re-entrancy tests). */
static void (*on_event_hook)(const struct qdb_event *ev);

static void record(void *ctx, const struct qdb_event *ev)
{
	(void)ctx;
	assert_true(nevents < sizeof(events) / sizeof(events[0]));
	struct rec_event *r = &events[nevents++];
	memset(r, 0, sizeof(*r));
	r->type = ev->type;
	assert_non_null(ev->path);
	assert_true(strlen(ev->path) < sizeof(r->path));
	strcpy(r->path, ev->path);
	r->len = ev->value_len;
	if (ev->value_len)
		memcpy(r->value, ev->value, ev->value_len);
	r->resync = ev->resync;
	if (on_event_hook)
		on_event_hook(ev);
}

static size_t count_events(enum qdb_event_type t, const char *path)
{
	size_t n = 0;
	for (size_t i = 0; i < nevents; i++)
		if (events[i].type == t && (!path || strcmp(events[i].path, path) == 0))
			n++;
	return n;
}

/* ---- independent §2.4 checker for what the VM sends ------------------------ */

struct vm_msg {
	uint8_t type;
	char path[64];
	uint8_t data[3200];
	uint32_t len;
};

static unsigned multireads_seen;

static bool path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-_/.:@", c) != NULL;
}

static void check_vm_msg(const uint8_t *hdr, const uint8_t *data)
{
	uint8_t type = hdr[0];
	uint32_t len = (uint32_t)hdr[68] | (uint32_t)hdr[69] << 8 | (uint32_t)hdr[70] << 16 |
		       (uint32_t)hdr[71] << 24;
	assert_true(type == 1 || type == 2 || type == 4 || type == 7 || type == 9);
	const uint8_t *nul = memchr(hdr + 1, 0, 64);
	assert_non_null(nul);
	size_t plen = (size_t)(nul - (hdr + 1));
	for (size_t i = plen; i < 64; i++)
		assert_int_equal(hdr[1 + i], 0); /* zero padded */
	assert_int_equal(hdr[65] | hdr[66] | hdr[67], 0);
	assert_true(len < 3072);
	if (type == 2) {
		assert_int_equal(plen, 0);
		assert_int_equal(len, 0);
		multireads_seen++;
		assert_int_equal(multireads_seen, 1);
		return;
	}
	assert_true(plen > 0);
	assert_true(hdr[1] != '-');
	for (size_t i = 0; i < plen; i++)
		assert_true(path_char((char)hdr[1 + i]));
	if (type != 1)
		assert_int_equal(len, 0);
	else
		assert_null(memchr(data, 0, len));
}

/* Takes one whole message the VM sent; false when none is pending. */
static bool vm_take(struct vm_msg *m)
{
	uint8_t hdr[72];
	memset(m, 0, sizeof(*m));
	if (fake_stream_pending(&pair, DOM0) < 72)
		return false;
	fake_stream_peek(&pair, DOM0, hdr, 72);
	uint32_t len = (uint32_t)hdr[68] | (uint32_t)hdr[69] << 8 | (uint32_t)hdr[70] << 16 |
		       (uint32_t)hdr[71] << 24;
	assert_true(len < 3072);
	assert_true(fake_stream_pending(&pair, DOM0) >= 72 + len); /* whole messages only */
	fake_stream_get(&pair, DOM0, hdr, 72);
	memset(m, 0, sizeof(*m));
	fake_stream_get(&pair, DOM0, m->data, len);
	check_vm_msg(hdr, m->data);
	m->type = hdr[0];
	memcpy(m->path, hdr + 1, 64);
	m->len = len;
	return true;
}

static size_t vm_drain(void)
{
	struct vm_msg m;
	size_t n = 0;
	while (vm_take(&m))
		n++;
	return n;
}

/* ---- building dom0's messages ------------------------------------------- */

/* Copies the characters of s without its NUL. */
static void put_text(uint8_t *dst, const char *s)
{
	for (size_t i = 0; s[i]; i++)
		dst[i] = (uint8_t)s[i];
}

static size_t mk(uint8_t *buf, uint8_t type, const char *path, const void *data, uint32_t len)
{
	memset(buf, 0, 72);
	buf[0] = type;
	memcpy(buf + 1, path, strlen(path) + 1); /* path < 64: NUL fits the field */
	buf[68] = (uint8_t)len;
	buf[69] = (uint8_t)(len >> 8);
	buf[70] = (uint8_t)(len >> 16);
	buf[71] = (uint8_t)(len >> 24);
	if (len)
		memcpy(buf + 72, data, len);
	return 72 + len;
}

static void dom0_send(uint8_t type, const char *path, const char *value)
{
	uint8_t buf[72 + 3200];
	size_t n = mk(buf, type, path, value, value ? (uint32_t)strlen(value) : 0);
	assert_int_equal(fake_stream_put(&pair, DOM0, buf, n), n);
	while (qdb_poll(&db))
		;
}

static void setup_db(size_t max_keys, size_t value_bytes)
{
	nevents = 0;
	multireads_seen = 0;
	on_event_hook = NULL;
	fake_stream_init(&pair, 65536);
	assert_int_equal(qdb_init(&db, db_mem, sizeof(db_mem), max_keys, value_bytes, record, NULL),
			 QDB_OK);
	qdb_attach(&db, fake_stream_end(&pair, VM));
}

static void sync_with(const char *const *kv, size_t n)
{
	struct vm_msg m;
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_CMD_MULTIREAD);
	for (size_t i = 0; i < n; i++)
		dom0_send(QDB_RESP_MULTIREAD, kv[2 * i], kv[2 * i + 1]);
	dom0_send(QDB_RESP_MULTIREAD, "", NULL);
	assert_int_equal(qdb_state(&db), QDB_SYNCED);
	assert_int_equal(fake_stream_pending(&pair, DOM0), 0); /* no replies to the dump */
}

static const char *const base_kv[] = {
	"/qubes-ip", "10.137.0.23",
	"/qubes-firewall/10.137.0.5", "",
	"/qubes-firewall/10.137.0.5/policy", "drop",
	"/qubes-firewall/10.137.0.5/0000", "action=accept",
	"/qubes-firewall/10.137.0.6/policy", "drop",
};

/* ---- tests --------------------------------------------------------------- */

/* §2.6: the MULTIREAD is exactly 02, 64 zero bytes, pad, zero length. */
static void test_multiread_bytes(void **state)
{
	(void)state;
	setup_db(16, 4096);
	uint8_t got[100];
	assert_int_equal(fake_stream_pending(&pair, DOM0), 72);
	fake_stream_get(&pair, DOM0, got, 72);
	uint8_t want[72] = { 0x02 };
	assert_memory_equal(got, want, 72);
	assert_int_equal(qdb_state(&db), QDB_SYNCING);
}

/* §2.6: a RESP_MULTIREAD with garbage padding, then the terminator. */
static void test_sync_known_answer(void **state)
{
	(void)state;
	setup_db(16, 4096);
	vm_drain();
	uint8_t msg[72 + 11] = { 0x0B, '/', 'q', 'u', 'b', 'e', 's', '-', 'i', 'p' };
	msg[65] = 0xAA;
	msg[66] = 0x55;
	msg[67] = 0xFF; /* "?? ?? ??" padding: ignored */
	msg[68] = 0x0B;
	put_text(msg + 72, "10.137.0.23");
	fake_stream_put(&pair, DOM0, msg, sizeof(msg));
	uint8_t term[72] = { 0x0B };
	fake_stream_put(&pair, DOM0, term, sizeof(term));
	qdb_poll(&db);
	const uint8_t *v;
	size_t len;
	assert_true(qdb_get(&db, "/qubes-ip", &v, &len));
	assert_int_equal(len, 11);
	assert_memory_equal(v, "10.137.0.23", 11);
	assert_int_equal(qdb_state(&db), QDB_SYNCED);
	assert_int_equal(nevents, 2);
	assert_int_equal(events[0].type, QDB_EV_WRITE);
	assert_int_equal(events[1].type, QDB_EV_SYNCED);
	assert_false(events[1].resync);
}

/* At the end of the initial sync every empty-valued key is committed. */
static void test_initial_sync_commits(void **state)
{
	(void)state;
	setup_db(16, 4096);
	sync_with(base_kv, 5);
	assert_int_equal(count_events(QDB_EV_WRITE, NULL), 5);
	assert_int_equal(count_events(QDB_EV_COMMIT, NULL), 1);
	assert_int_equal(count_events(QDB_EV_COMMIT, "/qubes-firewall/10.137.0.5"), 1);
	/* commit after all writes, SYNCED last */
	assert_int_equal(events[nevents - 2].type, QDB_EV_COMMIT);
	assert_int_equal(events[nevents - 1].type, QDB_EV_SYNCED);
	assert_int_equal(qdb_count(&db), 5);
}

/* §2.6 RESP_OK bytes for dom0's write of /qubes-firewall/10.137.0.5. */
static void test_write_reply_known_answer(void **state)
{
	(void)state;
	setup_db(16, 4096);
	sync_with(base_kv, 0);
	nevents = 0;
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5", "");
	uint8_t want[72] = { 0x07 };
	put_text(want + 1, "/qubes-firewall/10.137.0.5");
	uint8_t got[72];
	assert_int_equal(fake_stream_pending(&pair, DOM0), 72);
	fake_stream_get(&pair, DOM0, got, 72);
	assert_memory_equal(got, want, 72);
	assert_int_equal(nevents, 2);
	assert_int_equal(events[0].type, QDB_EV_WRITE);
	assert_int_equal(events[0].len, 0);
	assert_int_equal(events[1].type, QDB_EV_COMMIT);
	assert_string_equal(events[1].path, "/qubes-firewall/10.137.0.5");
}

static char committed_rules[8][64];
static size_t ncommitted;

static void snapshot_on_commit(const struct qdb_event *ev)
{
	if (ev->type != QDB_EV_COMMIT)
		return;
	char prefix[64];
	(void)snprintf(prefix, sizeof(prefix), "%s/", ev->path);
	struct qdb_iter it;
	const char *p;
	qdb_iter_init(&it, prefix);
	ncommitted = 0;
	while (qdb_iter_next(&db, &it, &p, NULL, NULL)) {
		assert_true(ncommitted < 8);
		strcpy(committed_rules[ncommitted++], p);
	}
}

/* §6.1: RM prefix, policy, NNNN..., then the empty base write = commit. */
static void test_rule_update_sequence(void **state)
{
	(void)state;
	setup_db(64, 8192);
	sync_with(base_kv, 5);
	vm_drain();
	nevents = 0;
	on_event_hook = snapshot_on_commit;
	dom0_send(QDB_CMD_RM, "/qubes-firewall/10.137.0.5/", NULL);
	assert_int_equal(count_events(QDB_EV_RM, NULL), 2);
	assert_int_equal(count_events(QDB_EV_RM, "/qubes-firewall/10.137.0.5/policy"), 1);
	assert_int_equal(count_events(QDB_EV_RM, "/qubes-firewall/10.137.0.5/0000"), 1);
	assert_true(qdb_get(&db, "/qubes-firewall/10.137.0.5", NULL, NULL)); /* base stays */
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5/policy", "drop");
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5/0000", "action=accept proto=tcp");
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5/0002", "action=drop");
	assert_int_equal(count_events(QDB_EV_COMMIT, NULL), 0);
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5", "");
	assert_int_equal(count_events(QDB_EV_COMMIT, NULL), 1);
	assert_int_equal(ncommitted, 3);
	assert_string_equal(committed_rules[0], "/qubes-firewall/10.137.0.5/0000");
	assert_string_equal(committed_rules[1], "/qubes-firewall/10.137.0.5/0002");
	assert_string_equal(committed_rules[2], "/qubes-firewall/10.137.0.5/policy");
	/* one RESP_OK per command, same path */
	struct vm_msg m;
	const char *want[] = { "/qubes-firewall/10.137.0.5/", "/qubes-firewall/10.137.0.5/policy",
			       "/qubes-firewall/10.137.0.5/0000",
			       "/qubes-firewall/10.137.0.5/0002", "/qubes-firewall/10.137.0.5" };
	for (size_t i = 0; i < 5; i++) {
		assert_true(vm_take(&m));
		assert_int_equal(m.type, QDB_RESP_OK);
		assert_string_equal(m.path, want[i]);
	}
	assert_false(vm_take(&m));
	/* the other client's subtree is untouched */
	assert_true(qdb_get(&db, "/qubes-firewall/10.137.0.6/policy", NULL, NULL));
}

/* RM of a key we do not have: RESP_OK all the same, no event. */
static void test_rm_missing(void **state)
{
	(void)state;
	setup_db(16, 4096);
	sync_with(base_kv, 1);
	nevents = 0;
	dom0_send(QDB_CMD_RM, "/nothing/here", NULL);
	dom0_send(QDB_CMD_RM, "/nothing/", NULL);
	assert_int_equal(nevents, 0);
	struct vm_msg m;
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_RESP_OK);
	assert_string_equal(m.path, "/nothing/here");
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_RESP_OK);
	assert_false(vm_take(&m));
	/* exact RM removes only the exact key */
	dom0_send(QDB_CMD_RM, "/qubes-ip", NULL);
	assert_false(qdb_get(&db, "/qubes-ip", NULL, NULL));
	assert_int_equal(count_events(QDB_EV_RM, "/qubes-ip"), 1);
}

/* Types dom0 does not send on the vchan, responses, bad headers: ignored,
 * no reply, framing kept (the next message still works). */
static void test_other_types_ignored(void **state)
{
	(void)state;
	setup_db(16, 4096);
	sync_with(base_kv, 0);
	const uint8_t types[] = { 0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99, 255 };
	for (size_t i = 0; i < sizeof(types); i++) {
		nevents = 0;
		dom0_send(types[i], "/qubes-ip", "xyz");
		dom0_send(QDB_CMD_WRITE, "/after", "1");
		assert_int_equal(count_events(QDB_EV_WRITE, "/after"), 1);
		struct vm_msg m;
		assert_true(vm_take(&m));
		assert_int_equal(m.type, QDB_RESP_OK);
		assert_string_equal(m.path, "/after");
		assert_false(vm_take(&m));
	}
	assert_false(qdb_get(&db, "/qubes-ip", NULL, NULL));
}

static void test_bad_headers_skipped(void **state)
{
	(void)state;
	setup_db(16, 4096);
	sync_with(base_kv, 0);
	static uint8_t buf[72 + 5000];
	/* data_len 3072 (one too many), with its data */
	memset(buf, 'x', sizeof(buf));
	size_t n = mk(buf, QDB_CMD_WRITE, "/big", buf + 72, 3072);
	fake_stream_put(&pair, DOM0, buf, n);
	/* unterminated path */
	memset(buf, 'a', 72);
	buf[0] = QDB_CMD_WRITE;
	buf[68] = 2;
	buf[69] = buf[70] = buf[71] = 0;
	buf[72] = 'h';
	buf[73] = 'i';
	fake_stream_put(&pair, DOM0, buf, 74);
	/* invalid characters, leading '-', empty path: valid framing, no reply */
	dom0_send(QDB_CMD_WRITE, "/bad path", "v");
	dom0_send(QDB_CMD_WRITE, "-lead", "v");
	dom0_send(QDB_CMD_WRITE, "", "v");
	dom0_send(QDB_CMD_RM, "/bad\npath", NULL);
	/* RM with data: no change, still RESP_OK */
	dom0_send(QDB_CMD_WRITE, "/keep", "1");
	dom0_send(QDB_CMD_RM, "/keep", "data");
	assert_true(qdb_get(&db, "/keep", NULL, NULL));
	dom0_send(QDB_CMD_WRITE, "/after", "1");
	assert_true(qdb_get(&db, "/after", NULL, NULL));
	assert_false(qdb_get(&db, "/big", NULL, NULL));
	struct vm_msg m;
	assert_true(vm_take(&m));
	assert_string_equal(m.path, "/keep");
	assert_true(vm_take(&m));
	assert_string_equal(m.path, "/keep");
	assert_true(vm_take(&m));
	assert_string_equal(m.path, "/after");
	assert_false(vm_take(&m));
	/* the largest legal value is accepted */
	memset(buf, 'y', sizeof(buf));
	n = mk(buf, QDB_CMD_WRITE, "/max", buf + 72, 3071);
	fake_stream_put(&pair, DOM0, buf, n);
	qdb_poll(&db);
	size_t len;
	assert_true(qdb_get(&db, "/max", NULL, &len));
	assert_int_equal(len, 3071);
}

/* A multiread entry after the sync is spurious: ignored. */
static void test_spurious_multiread(void **state)
{
	(void)state;
	setup_db(16, 4096);
	sync_with(base_kv, 1);
	nevents = 0;
	dom0_send(QDB_RESP_MULTIREAD, "/late", "1");
	dom0_send(QDB_RESP_MULTIREAD, "", NULL);
	assert_int_equal(nevents, 0);
	assert_false(qdb_get(&db, "/late", NULL, NULL));
	assert_int_equal(vm_drain(), 0);
}

/* Builds a whole session's byte stream, runs it at every split point and
 * byte by byte; the outcome must not depend on the split. */
static size_t build_script(uint8_t *s)
{
	size_t n = 0;
	for (size_t i = 0; i < 5; i++)
		n += mk(s + n, QDB_RESP_MULTIREAD, base_kv[2 * i], base_kv[2 * i + 1],
			(uint32_t)strlen(base_kv[2 * i + 1]));
	n += mk(s + n, QDB_RESP_MULTIREAD, "", NULL, 0);
	n += mk(s + n, QDB_CMD_RM, "/qubes-firewall/10.137.0.5/", NULL, 0);
	n += mk(s + n, QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5/policy", "accept", 6);
	n += mk(s + n, 77, "/junk", "zz", 2);
	n += mk(s + n, QDB_RESP_OK, "/qubes-firewall-handled/10.137.0.5", NULL, 0);
	n += mk(s + n, QDB_CMD_WRITE, "/qubes-firewall/10.137.0.5", "", 0);
	n += mk(s + n, QDB_RESP_ERROR, "/x", NULL, 0);
	n += mk(s + n, QDB_CMD_RM, "/qubes-ip", NULL, 0);
	return n;
}

struct outcome {
	size_t nevents;
	struct rec_event ev[32];
	size_t replies;
};

static void run_split(const uint8_t *s, size_t n, size_t split, size_t chunk, struct outcome *o)
{
	setup_db(16, 4096);
	vm_drain();
	fake_stream_set_read_chunk(&pair, VM, chunk);
	fake_stream_put(&pair, DOM0, s, split);
	while (qdb_poll(&db))
		;
	fake_stream_put(&pair, DOM0, s + split, n - split);
	for (size_t i = 0; i < n + 2; i++)
		qdb_poll(&db);
	o->nevents = nevents;
	assert_true(nevents <= 32);
	memcpy(o->ev, events, nevents * sizeof(events[0]));
	o->replies = vm_drain();
}

static void test_every_split(void **state)
{
	(void)state;
	static uint8_t script[4096];
	static struct outcome ref, got;
	size_t n = build_script(script);
	run_split(script, n, n, 0, &ref);
	assert_int_equal(ref.replies, 4); /* RM, WRITE, WRITE, RM */
	assert_int_equal(count_events(QDB_EV_COMMIT, "/qubes-firewall/10.137.0.5"), 2);
	for (size_t split = 0; split <= n; split++) {
		run_split(script, n, split, 0, &got);
		assert_int_equal(got.nevents, ref.nevents);
		assert_memory_equal(got.ev, ref.ev, ref.nevents * sizeof(ref.ev[0]));
		assert_int_equal(got.replies, ref.replies);
	}
	/* byte by byte */
	run_split(script, n, 0, 1, &got);
	assert_int_equal(got.nevents, ref.nevents);
	assert_memory_equal(got.ev, ref.ev, ref.nevents * sizeof(ref.ev[0]));
	assert_int_equal(got.replies, ref.replies);
}

/* Store full by key count: refused with an event, dom0 still gets RESP_OK. */
static void test_store_full_keys(void **state)
{
	(void)state;
	setup_db(3, 4096);
	sync_with(base_kv, 3);
	nevents = 0;
	dom0_send(QDB_CMD_WRITE, "/fourth", "x");
	assert_int_equal(qdb_count(&db), 3);
	assert_false(qdb_get(&db, "/fourth", NULL, NULL));
	assert_int_equal(count_events(QDB_EV_REFUSED, "/fourth"), 1);
	struct vm_msg m;
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_RESP_OK);
	assert_string_equal(m.path, "/fourth");
	/* updating an existing key still works */
	dom0_send(QDB_CMD_WRITE, "/qubes-ip", "10.0.0.1");
	const uint8_t *v;
	size_t len;
	assert_true(qdb_get(&db, "/qubes-ip", &v, &len));
	assert_memory_equal(v, "10.0.0.1", len);
	/* and our own writes are refused locally, nothing sent */
	vm_drain();
	assert_int_equal(qdb_write(&db, "/qubes-iptables-error", "", 0), QDB_ERR_FULL);
	assert_int_equal(fake_stream_pending(&pair, DOM0), 0);
}

/* Store full by value bytes: an update that does not fit removes the old
 * value (reported) rather than keeping a stale one. */
static void test_store_full_bytes(void **state)
{
	(void)state;
	setup_db(16, 64);
	sync_with(base_kv, 0);
	static char big[100];
	memset(big, 'b', 60);
	big[60] = 0;
	dom0_send(QDB_CMD_WRITE, "/a", "0123456789");
	nevents = 0;
	dom0_send(QDB_CMD_WRITE, "/a", big); /* 8 + 60 > 64 */
	assert_false(qdb_get(&db, "/a", NULL, NULL));
	assert_int_equal(count_events(QDB_EV_RM, "/a"), 1);
	assert_int_equal(count_events(QDB_EV_REFUSED, "/a"), 1);
	/* space comes back after removal and compaction */
	big[56] = 0;
	dom0_send(QDB_CMD_WRITE, "/b", big); /* 8 + 56 = 64 fits exactly */
	assert_true(qdb_get(&db, "/b", NULL, NULL));
	/* empty values cost no bytes */
	dom0_send(QDB_CMD_WRITE, "/c", "");
	assert_true(qdb_get(&db, "/c", NULL, NULL));
}

/* Random writes/removes against a reference model through a small pool
 * (forces compaction). */
static void test_store_model(void **state)
{
	(void)state;
	static char model[32][200];
	static size_t mlen[32];
	static bool mhas[32];
	setup_db(32, 1024);
	sync_with(base_kv, 0);
	memset(mhas, 0, sizeof(mhas));
	srand(1234);
	for (int step = 0; step < 20000; step++) {
		unsigned k = (unsigned)rand() % 32;
		char path[32];
		(void)snprintf(path, sizeof(path), "/k/%02u", k);
		if (rand() % 4 == 0) {
			dom0_send(QDB_CMD_RM, path, NULL);
			mhas[k] = false;
		} else {
			char val[200];
			size_t len = (size_t)rand() % 120;
			for (size_t i = 0; i < len; i++)
				val[i] = (char)('a' + rand() % 26);
			val[len] = 0;
			size_t live = 0;
			for (unsigned j = 0; j < 32; j++)
				if (mhas[j] && j != k && mlen[j] > 0)
					live += 8 + mlen[j];
			bool fits = len == 0 || live + 8 + len <= 1024;
			dom0_send(QDB_CMD_WRITE, path, val);
			mhas[k] = fits;
			if (fits) {
				memcpy(model[k], val, len);
				mlen[k] = len;
			}
		}
		vm_drain();
		nevents = 0;
		if (step % 97 == 0) {
			for (unsigned j = 0; j < 32; j++) {
				char p[32];
				const uint8_t *v;
				size_t len;
				(void)snprintf(p, sizeof(p), "/k/%02u", j);
				assert_int_equal(qdb_get(&db, p, &v, &len), mhas[j]);
				if (mhas[j]) {
					assert_int_equal(len, mlen[j]);
					assert_memory_equal(v, model[j], len);
				}
			}
		}
	}
}

/* Our writes: exact bytes, and everything dom0 would kill itself over is
 * refused before it reaches the stream. */
static void test_our_writes(void **state)
{
	(void)state;
	setup_db(16, 8192);
	sync_with(base_kv, 0);
	assert_int_equal(qdb_write(&db, "/qubes-firewall-handled/10.137.0.5", "1", 1), QDB_OK);
	uint8_t want[73] = { 0x01 };
	put_text(want + 1, "/qubes-firewall-handled/10.137.0.5");
	want[68] = 1;
	want[72] = '1';
	uint8_t got[73];
	assert_int_equal(fake_stream_pending(&pair, DOM0), 73);
	fake_stream_get(&pair, DOM0, got, 73);
	assert_memory_equal(got, want, 73);

	const char *bad_paths[] = { "", "-dash", "/with space", "/tab\t", "/q?", "/é",
				    "/star*", "/0123456789012345678901234567890123456789012345678901234567890123" };
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		assert_int_equal(qdb_write(&db, bad_paths[i], "v", 1), QDB_ERR_PATH);
		assert_int_equal(qdb_rm(&db, bad_paths[i]), QDB_ERR_PATH);
	}
	/* 63 characters is the longest legal path */
	char p63[64];
	memset(p63, 'a', 63);
	p63[0] = '/';
	p63[63] = 0;
	assert_int_equal(qdb_write(&db, p63, "v", 1), QDB_OK);
	static char data[4000];
	memset(data, 'd', sizeof(data));
	assert_int_equal(qdb_write(&db, "/dns/10.137.0.5/a.example", data, 3072), QDB_ERR_DATA);
	assert_int_equal(qdb_write(&db, "/dns/10.137.0.5/a.example", "a\0b", 3), QDB_ERR_DATA);
	assert_int_equal(qdb_write(&db, "/dns/10.137.0.5/a.example", data, 3071), QDB_OK);
	assert_int_equal(qdb_write(&db, "/dns/10.137.0.5/b_host.example", "1.2.3.4", 7), QDB_OK);
	assert_int_equal(qdb_write(&db, "/qubes-iptables-error", "", 0), QDB_OK);
	struct vm_msg m;
	assert_true(vm_take(&m));
	assert_string_equal(m.path, p63);
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_CMD_WRITE);
	assert_int_equal(m.len, 3071);
	assert_true(vm_take(&m));
	assert_true(vm_take(&m));
	assert_string_equal(m.path, "/qubes-iptables-error");
	assert_int_equal(m.len, 0);
	assert_false(vm_take(&m));
	const uint8_t *v;
	size_t len;
	assert_true(qdb_get(&db, "/dns/10.137.0.5/b_host.example", &v, &len));
	assert_memory_equal(v, "1.2.3.4", 7);
}

/* RM is sent only for keys dom0 has. */
static void test_our_rm(void **state)
{
	(void)state;
	setup_db(16, 8192);
	sync_with(base_kv, 2);
	assert_int_equal(qdb_rm(&db, "/dns/10.137.0.5/x"), QDB_ERR_NOENT);
	assert_int_equal(qdb_rm(&db, "/dns/10.137.0.5/"), QDB_ERR_NOENT);
	assert_int_equal(fake_stream_pending(&pair, DOM0), 0);
	assert_int_equal(qdb_write(&db, "/dns/10.137.0.5/x", "1.1.1.1", 7), QDB_OK);
	assert_int_equal(qdb_write(&db, "/dns/10.137.0.5/y", "2.2.2.2", 7), QDB_OK);
	assert_int_equal(vm_drain(), 2);
	assert_int_equal(qdb_rm(&db, "/dns/10.137.0.5/x"), QDB_OK);
	assert_int_equal(qdb_rm(&db, "/dns/10.137.0.5/x"), QDB_ERR_NOENT);
	assert_int_equal(qdb_rm(&db, "/dns/10.137.0.5/"), QDB_OK);
	assert_int_equal(qdb_rm(&db, "/dns/10.137.0.5/"), QDB_ERR_NOENT);
	struct vm_msg m;
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_CMD_RM);
	assert_string_equal(m.path, "/dns/10.137.0.5/x");
	assert_true(vm_take(&m));
	assert_int_equal(m.type, QDB_CMD_RM);
	assert_string_equal(m.path, "/dns/10.137.0.5/");
	assert_false(vm_take(&m));
	/* a key dom0 removed can no longer be removed by us */
	dom0_send(QDB_CMD_RM, "/qubes-firewall/10.137.0.5", NULL);
	vm_drain();
	assert_int_equal(qdb_rm(&db, "/qubes-firewall/10.137.0.5"), QDB_ERR_NOENT);
	assert_int_equal(vm_drain(), 0);
}

/* Our writes from inside the callback (e.g. handled counter on commit). */
static void write_on_commit(const struct qdb_event *ev)
{
	if (ev->type == QDB_EV_COMMIT)
		assert_int_equal(qdb_write(&db, "/qubes-firewall-handled/10.137.0.5", "7", 1),
				 QDB_OK);
	if (ev->type == QDB_EV_RM)
		(void)qdb_rm(&db, "/qubes-ip");
}

static void test_reentrant_callback(void **state)
{
	(void)state;
	setup_db(16, 8192);
	on_event_hook = write_on_commit;
	sync_with(base_kv, 0);
	(void)vm_drain();
	dom0_send(QDB_CMD_WRITE, "/qubes-ip", "1");
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.9/policy", "drop");
	dom0_send(QDB_CMD_WRITE, "/qubes-firewall/10.137.0.9", "");
	dom0_send(QDB_CMD_RM, "/qubes-firewall/10.137.0.9/", NULL);
	assert_false(qdb_get(&db, "/qubes-ip", NULL, NULL));
	const uint8_t *v;
	assert_true(qdb_get(&db, "/qubes-firewall-handled/10.137.0.5", &v, NULL));
	assert_int_equal(v[0], '7');
	assert_true(vm_drain() >= 6);
}

/* Disconnect, reconnect: one fresh MULTIREAD, only differences reported,
 * commits again, SYNCED with resync. */
static void test_reconnect(void **state)
{
	(void)state;
	setup_db(16, 8192);
	sync_with(base_kv, 5);
	assert_int_equal(qdb_write(&db, "/qubes-iptables-error", "", 0), QDB_OK);
	vm_drain();
	nevents = 0;
	fake_stream_close(&pair, DOM0);
	qdb_poll(&db);
	assert_int_equal(qdb_state(&db), QDB_DISCONNECTED);
	assert_int_equal(pair.close_calls[VM], 1);
	assert_int_equal(count_events(QDB_EV_DISCONNECTED, NULL), 1);
	assert_int_equal(qdb_write(&db, "/x", "1", 1), QDB_ERR_NOT_CONNECTED);
	assert_int_equal(qdb_rm(&db, "/qubes-ip"), QDB_ERR_NOT_CONNECTED);
	assert_true(qdb_get(&db, "/qubes-ip", NULL, NULL)); /* store kept */

	/* new session */
	fake_stream_init(&pair, 65536);
	multireads_seen = 0;
	nevents = 0;
	qdb_attach(&db, fake_stream_end(&pair, VM));
	static const char *const kv2[] = {
		"/qubes-ip", "10.137.0.23",                        /* same */
		"/qubes-firewall/10.137.0.5", "",                   /* same, committed */
		"/qubes-firewall/10.137.0.5/policy", "accept",      /* changed */
		"/qubes-new", "1",                                  /* new */
	};
	sync_with(kv2, 4);
	assert_int_equal(count_events(QDB_EV_WRITE, NULL), 2);
	assert_int_equal(count_events(QDB_EV_WRITE, "/qubes-firewall/10.137.0.5/policy"), 1);
	assert_int_equal(count_events(QDB_EV_WRITE, "/qubes-new"), 1);
	assert_int_equal(count_events(QDB_EV_RM, NULL), 3);
	assert_int_equal(count_events(QDB_EV_RM, "/qubes-firewall/10.137.0.5/0000"), 1);
	assert_int_equal(count_events(QDB_EV_RM, "/qubes-firewall/10.137.0.6/policy"), 1);
	assert_int_equal(count_events(QDB_EV_RM, "/qubes-iptables-error"), 1);
	assert_int_equal(count_events(QDB_EV_COMMIT, "/qubes-firewall/10.137.0.5"), 1);
	assert_int_equal(events[nevents - 1].type, QDB_EV_SYNCED);
	assert_true(events[nevents - 1].resync);
	assert_int_equal(qdb_count(&db), 4);
	/* steady state traffic never triggers another MULTIREAD */
	for (int i = 0; i < 50; i++)
		dom0_send(QDB_CMD_WRITE, "/qubes-new", "2");
	assert_int_equal(vm_drain(), 50);
	assert_int_equal(multireads_seen, 1);
}

/* Write space smaller than two messages: whole messages only, in order. */
static void test_backpressure(void **state)
{
	(void)state;
	setup_db(16, 8192);
	fake_stream_set_capacity(&pair, VM, 100);
	sync_with(base_kv, 0);
	static uint8_t buf[300 * 80];
	size_t n = 0;
	for (int i = 0; i < 300; i++) {
		char path[32];
		(void)snprintf(path, sizeof(path), "/k%d", i);
		n += mk(buf + n, QDB_CMD_WRITE, path, "v", 1);
	}
	fake_stream_set_capacity(&pair, DOM0, sizeof(buf));
	assert_int_equal(fake_stream_put(&pair, DOM0, buf, n), n);
	int next = 0;
	for (int round = 0; round < 100000 && next < 300; round++) {
		qdb_poll(&db);
		assert_true(fake_stream_pending(&pair, DOM0) % 72 == 0);
		struct vm_msg m;
		while (vm_take(&m)) {
			char path[32];
			(void)snprintf(path, sizeof(path), "/k%d", next++);
			assert_int_equal(m.type, QDB_RESP_OK);
			assert_string_equal(m.path, path);
		}
	}
	assert_int_equal(next, 300);
	assert_int_equal(qdb_count(&db), 300 > 16 ? 16 : 300);
}

/* Own writes when the send queue is full are refused, not dropped silently. */
static void test_queue_full(void **state)
{
	(void)state;
	setup_db(1024, 1 << 19);
	vm_drain(); /* the MULTIREAD */
	fake_stream_set_capacity(&pair, VM, 0); /* dom0 never reads */
	static char data[3000];
	memset(data, 'q', sizeof(data));
	int ok = 0, full = 0;
	for (int i = 0; i < 20; i++) {
		char path[32];
		(void)snprintf(path, sizeof(path), "/q%d", i);
		enum qdb_result r = qdb_write(&db, path, data, sizeof(data));
		if (r == QDB_OK)
			ok++;
		else if (r == QDB_ERR_QUEUE)
			full++;
	}
	assert_true(ok >= 4 && full > 0);
	fake_stream_set_capacity(&pair, VM, 65536);
	qdb_poll(&db);
	assert_int_equal(vm_drain(), (size_t)ok);
}

static void test_init_config(void **state)
{
	(void)state;
	struct qdb q;
	assert_int_equal(qdb_init(&q, db_mem, 10, 16, 4096, NULL, NULL), QDB_ERR_CONFIG);
	assert_int_equal(qdb_init(&q, db_mem, sizeof(db_mem), 0, 4096, NULL, NULL), QDB_ERR_CONFIG);
	assert_int_equal(qdb_init(&q, db_mem, sizeof(db_mem), 70000, 4096, NULL, NULL),
			 QDB_ERR_CONFIG);
	assert_int_equal(qdb_init(&q, NULL, sizeof(db_mem), 16, 4096, NULL, NULL), QDB_ERR_CONFIG);
	assert_true(qdb_mem_size(QDB_DEFAULT_MAX_KEYS, QDB_DEFAULT_VALUE_BYTES) <= sizeof(db_mem));
	assert_int_equal(qdb_init(&q, db_mem, sizeof(db_mem), QDB_DEFAULT_MAX_KEYS,
				  QDB_DEFAULT_VALUE_BYTES, NULL, NULL),
			 QDB_OK);
	assert_int_equal(qdb_state(&q), QDB_DISCONNECTED);
	assert_false(qdb_poll(&q));
}

static void test_path_valid(void **state)
{
	(void)state;
	assert_true(qdb_path_valid("/a-b_c.d:e@f/G9", 15));
	assert_true(qdb_path_valid("a", 1));
	assert_false(qdb_path_valid("", 0));
	assert_false(qdb_path_valid("-a", 2));
	assert_false(qdb_path_valid("/a b", 4));
	assert_false(qdb_path_valid("/a+b", 4));
	char p[70];
	memset(p, 'x', sizeof(p));
	assert_true(qdb_path_valid(p, 63));
	assert_false(qdb_path_valid(p, 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multiread_bytes),
		cmocka_unit_test(test_sync_known_answer),
		cmocka_unit_test(test_initial_sync_commits),
		cmocka_unit_test(test_write_reply_known_answer),
		cmocka_unit_test(test_rule_update_sequence),
		cmocka_unit_test(test_rm_missing),
		cmocka_unit_test(test_other_types_ignored),
		cmocka_unit_test(test_bad_headers_skipped),
		cmocka_unit_test(test_spurious_multiread),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_store_full_keys),
		cmocka_unit_test(test_store_full_bytes),
		cmocka_unit_test(test_store_model),
		cmocka_unit_test(test_our_writes),
		cmocka_unit_test(test_our_rm),
		cmocka_unit_test(test_reentrant_callback),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_init_config),
		cmocka_unit_test(test_path_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
