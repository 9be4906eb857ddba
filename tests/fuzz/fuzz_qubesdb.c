/* fuzz_qubesdb.c — arbitrary bytes from "dom0" into a QubesDB session.
 *
 * Byte 0 picks how many bytes one read() returns, byte 1 the room dom0's
 * side leaves for our replies; the rest is dom0's stream, fed in two parts
 * around a reconnect when byte 0's top bit is set. The event callback
 * writes and removes keys as an application would. Everything the client
 * sends is checked against dom0's limits (spec §2.4) by a checker written
 * independently of the client: type, path characters, terminator, padding,
 * data_len, NUL in data, exactly one MULTIREAD per session, whole messages.
 * Memory is fixed (small store, fixed buffers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_stream.h"
#include "qubes/qubesdb.h"

static struct fake_stream_pair pair;
static struct qdb db;
static uint8_t mem[64 * 1024];
static unsigned multireads;
static unsigned counter;

static void die(void)
{
	abort();
}

static int path_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '/' || c == '.' || c == ':' || c == '@';
}

/* Takes and checks every whole message the client has written. */
static void check_output(void)
{
	uint8_t hdr[72];
	static uint8_t data[4096];
	while (fake_stream_pending(&pair, 1) >= 72) {
		fake_stream_peek(&pair, 1, hdr, 72);
		uint32_t len = (uint32_t)hdr[68] | (uint32_t)hdr[69] << 8 |
			       (uint32_t)hdr[70] << 16 | (uint32_t)hdr[71] << 24;
		if (len >= 3072)
			die();
		if (fake_stream_pending(&pair, 1) < 72 + len)
			die(); /* partial message written */
		fake_stream_get(&pair, 1, hdr, 72);
		fake_stream_get(&pair, 1, data, len);
		uint8_t type = hdr[0];
		if (type != 1 && type != 2 && type != 4 && type != 7 && type != 9)
			die();
		const uint8_t *nul = memchr(hdr + 1, 0, 64);
		if (!nul)
			die();
		size_t plen = (size_t)(nul - (hdr + 1));
		for (size_t i = plen; i < 67; i++)
			if (hdr[1 + i] != 0)
				die();
		if (type == 2) {
			if (plen != 0 || len != 0 || ++multireads > 1)
				die();
			continue;
		}
		if (plen == 0 || hdr[1] == '-')
			die();
		for (size_t i = 0; i < plen; i++)
			if (!path_char(hdr[1 + i]))
				die();
		if (type != 1 && len != 0)
			die();
		if (type == 1 && memchr(data, 0, len))
			die();
	}
	if (fake_stream_pending(&pair, 1) > 0)
		die(); /* a partial message */
}

static void on_event(void *ctx, const struct qdb_event *ev)
{
	(void)ctx;
	char path[96];
	counter++;
	switch (ev->type) {
	case QDB_EV_WRITE:
		if (ev->value_len & 1)
			(void)qdb_rm(&db, ev->path);
		else
			(void)qdb_write(&db, ev->path, ev->value, ev->value_len);
		break;
	case QDB_EV_COMMIT: {
		size_t n = strlen(ev->path);
		if (n + 10 < sizeof(path)) {
			memcpy(path, ev->path, n);
			memcpy(path + n, "/handled", 9);
			(void)qdb_write(&db, path, "1", 1); /* may be too long: refused */
		}
		struct qdb_iter it;
		const char *p;
		const uint8_t *v;
		size_t len;
		qdb_iter_init(&it, ev->path);
		while (qdb_iter_next(&db, &it, &p, &v, &len))
			if (len > 3071)
				die();
		break;
	}
	case QDB_EV_RM:
		(void)qdb_rm(&db, ev->path); /* already gone: must be refused */
		break;
	case QDB_EV_SYNCED:
		(void)qdb_write(&db, "/qubes-iptables-error", "", 0);
		(void)qdb_rm(&db, "/qubes-firewall/");
		break;
	default:
		break;
	}
}

static void run(const uint8_t *p, size_t n)
{
	if (fake_stream_put(&pair, 1, p, n) != n)
		die();
	/* dom0 reads everything after each poll, so every poll progresses */
	for (int i = 0; i < 100000; i++) {
		bool more = qdb_poll(&db);
		check_output();
		if (qdb_state(&db) == QDB_DISCONNECTED)
			return;
		if (!more && fake_stream_pending(&pair, 0) == 0)
			return;
	}
	die(); /* stalled */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t chunk = data[0] & 0x3f;
	bool reconnect = data[0] & 0x80;
	size_t room = 72u + 3071u + (size_t)data[1] * 32u; /* a whole message always fits, as in the 4 KiB vchan ring */
	data += 2;
	size -= 2;

	fake_stream_init(&pair, 65536);
	fake_stream_set_read_chunk(&pair, 0, chunk);
	fake_stream_set_capacity(&pair, 0, room);
	multireads = 0;
	if (qdb_init(&db, mem, sizeof(mem), 8, 512, on_event, NULL) != QDB_OK)
		die();
	qdb_attach(&db, fake_stream_end(&pair, 0));
	check_output();

	size_t first = reconnect ? size / 2 : size;
	run(data, first);
	if (reconnect) {
		fake_stream_close(&pair, 1);
		for (int i = 0; i < 4 && qdb_state(&db) != QDB_DISCONNECTED; i++)
			(void)qdb_poll(&db);
		fake_stream_init(&pair, 65536);
		fake_stream_set_read_chunk(&pair, 0, chunk);
		fake_stream_set_capacity(&pair, 0, room);
		multireads = 0;
		qdb_attach(&db, fake_stream_end(&pair, 0));
		check_output();
		run(data + first, size - first);
	}
	/* let everything queued drain */
	fake_stream_set_capacity(&pair, 0, 65536);
	for (int i = 0; i < 8; i++) {
		(void)qdb_poll(&db);
		check_output();
	}
	qdb_close(&db);
	return 0;
}
