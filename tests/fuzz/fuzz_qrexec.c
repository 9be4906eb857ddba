/* fuzz_qrexec.c — arbitrary bytes from "dom0" into the qrexec agent: on the
 * control channel and on every data channel it opens.
 *
 * Input: byte 0 = read chunk (low 5 bits), connect failures (bit 7);
 * bytes 1-2 = length of the control part; then the control bytes; the rest
 * is what each data peer sends. What the agent writes is checked: control =
 * one HELLO(3) then only CONNECTION_TERMINATED(8 bytes); data = HELLO(3)
 * first, STDOUT/STDERR bodies <= 4096, EXIT_CODE(4 bytes) last, whole
 * messages only. After the time-out every channel must be gone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_stream.h"
#include "qubes/qrexec.h"

#define NPAIRS 8

static struct qrexec_agent agent;
static struct fake_stream_pair ctl;
static struct fake_stream_pair dpair[NPAIRS];
static bool dexit[NPAIRS];
static bool dhello[NPAIRS];
static size_t nconn;
static bool fail_connect;
static size_t chunk;
static const uint8_t *dbytes;
static size_t dlen;
static bool ctl_hello_seen;

static void die(void)
{
	abort();
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool fconnect(void *ctx, uint32_t domid, uint32_t port, struct stream *out)
{
	(void)ctx;
	(void)domid;
	(void)port;
	if (fail_connect && (nconn & 1)) {
		nconn++;
		return false;
	}
	if (nconn >= NPAIRS)
		return false;
	size_t i = nconn++;
	fake_stream_init(&dpair[i], 65536);
	fake_stream_set_read_chunk(&dpair[i], 0, chunk);
	dexit[i] = dhello[i] = false;
	fake_stream_put(&dpair[i], 1, dbytes, dlen);
	*out = fake_stream_end(&dpair[i], 0);
	return true;
}

static size_t fstatus(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	memset(buf, 's', cap);
	return cap + 10; /* an over-long answer must be clipped */
}

static void check_ctl(void)
{
	uint8_t m[64];
	while (fake_stream_pending(&ctl, 1) >= 8) {
		fake_stream_peek(&ctl, 1, m, 8);
		uint32_t t = get32(m), l = get32(m + 4);
		if (l > 8 || fake_stream_pending(&ctl, 1) < 8 + l)
			die();
		fake_stream_get(&ctl, 1, m, 8 + l);
		if (!ctl_hello_seen) {
			if (t != QREXEC_MSG_HELLO || l != 4 || get32(m + 8) != 3)
				die();
			ctl_hello_seen = true;
		} else if (t != QREXEC_MSG_CONNECTION_TERMINATED || l != 8) {
			die();
		}
	}
	if (fake_stream_pending(&ctl, 1) != 0)
		die();
}

static void check_data(size_t i)
{
	static uint8_t m[8 + 4096];
	struct fake_stream_pair *p = &dpair[i];
	while (fake_stream_pending(p, 1) >= 8) {
		fake_stream_peek(p, 1, m, 8);
		uint32_t t = get32(m), l = get32(m + 4);
		if (l > 4096 || fake_stream_pending(p, 1) < 8 + l)
			die();
		fake_stream_get(p, 1, m, 8 + l);
		if (dexit[i])
			die(); /* nothing after the exit code */
		if (!dhello[i]) {
			if (t != QREXEC_MSG_HELLO || l != 4 || get32(m + 8) != 3)
				die();
			dhello[i] = true;
		} else if (t == QREXEC_MSG_DATA_EXIT_CODE) {
			if (l != 4)
				die();
			dexit[i] = true;
		} else if (t != QREXEC_MSG_DATA_STDOUT && t != QREXEC_MSG_DATA_STDERR) {
			die();
		}
	}
	if (fake_stream_pending(p, 1) != 0)
		die();
}

static void check_all(void)
{
	check_ctl();
	for (size_t i = 0; i < nconn && i < NPAIRS; i++)
		check_data(i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct qrexec_connector conn = { fconnect, NULL };
	static const struct qrexec_services svc = { fstatus, NULL };
	if (size < 3)
		return 0;
	chunk = data[0] & 0x1f;
	fail_connect = (data[0] & 0x80) != 0;
	size_t clen = (size_t)data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	if (clen > size)
		clen = size;
	dbytes = data + clen;
	dlen = size - clen;
	nconn = 0;
	ctl_hello_seen = false;

	fake_stream_init(&ctl, 65536);
	fake_stream_set_read_chunk(&ctl, 0, chunk);
	qrexec_init(&agent, &conn, &svc);
	qrexec_attach(&agent, fake_stream_end(&ctl, 0));
	check_all();
	fake_stream_put(&ctl, 1, data, clen);
	uint64_t now = 1;
	for (int i = 0; i < 200; i++) {
		bool more = qrexec_poll(&agent, now);
		check_all();
		now += 1000000;
		if (!more && fake_stream_pending(&ctl, 0) == 0 && i > 4)
			break;
	}
	if (agent.state == QREXEC_READY)
		fake_stream_close(&ctl, 1); /* EOF: back to waiting, channels go on */
	now += QREXEC_CHANNEL_TIMEOUT_NS + 1;
	for (int i = 0; i < 4; i++) {
		(void)qrexec_poll(&agent, now);
		check_all();
	}
	if (qrexec_active_channels(&agent) != 0)
		die(); /* every channel ends, one way or another */
	if (qrexec_state(&agent) == QREXEC_READY)
		die();
	qrexec_close(&agent);
	return 0;
}
