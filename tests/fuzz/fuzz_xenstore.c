/* fuzz_xenstore.c — arbitrary bytes from "xenstored" into a XenStore client
 * that has requests, a transaction and watches outstanding.
 *
 * Input: a sequence of segments [ctl][data...]: (ctl & 0x3f) + 1 data bytes
 * are handed to the client (it reads them 1..7 bytes per read() call, as
 * chosen by the data), then xs_poll runs; ctl >> 6 picks an extra action
 * between segments (new requests, watch churn, reconnect). Checks: no
 * crash, tables stay within their bounds, and every accepted request is
 * completed exactly once by the time the client is closed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_stream.h"
#include "xen/xenstore.h"

static struct fake_stream_pair pair;
static struct xs_client cl;
static uint64_t issued, completed, tx_issued, tx_done, body_runs;
static xs_watch_id watch_ids[8];
static char read_buf[16];

static void check(int cond)
{
	if (!cond)
		abort();
}

static void reply_cb(void *ctx, enum xs_status st, const char *data, size_t len)
{
	(void)ctx;
	(void)st;
	check(data != NULL && data[len] == '\0');
	check(len <= XS_PAYLOAD_MAX);
	completed++;
}

static void done_cb(void *ctx, enum xs_status st)
{
	(void)ctx;
	(void)st;
	check(strnlen(read_buf, sizeof(read_buf)) < sizeof(read_buf));
	completed++;
}

static void tx_done_cb(void *ctx, enum xs_status st)
{
	(void)ctx;
	(void)st;
	tx_done++;
}

static enum xs_status tx_body(void *ctx, struct xs_tx *tx)
{
	(void)ctx;
	body_runs++;
	check(body_runs <= 1000000);
	(void)xs_tx_write_str(tx, "device/vif/0/tx-ring-ref", "8");
	(void)xs_tx_mkdir(tx, "device/vif/0/x");
	return XS_OK;
}

static void watch_cb(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)ctx;
	check(path[len] == '\0' && len > 0);
	/* A watch that removes itself and one that drops its owner's set. */
	if ((id & 1) == 0)
		(void)xs_watch_remove(&cl, id);
	else
		(void)xs_read(&cl, "again", NULL, NULL);
}

static void watch_owner_cb(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)id;
	(void)path;
	(void)len;
	(void)xs_watch_remove_owner(&cl, (uint32_t)(uintptr_t)ctx);
}

static void issue(enum xs_status st)
{
	if (st == XS_OK)
		issued++;
}

static void issue_requests(void)
{
	issue(xs_read(&cl, "domid", reply_cb, NULL));
	issue(xs_write_str(&cl, "data/x", "1", reply_cb, NULL));
	issue(xs_directory(&cl, "backend/vif", reply_cb, NULL));
	issue(xs_get_domain_path(&cl, 7, reply_cb, NULL));
	issue(xs_mkdir(&cl, "/a", reply_cb, NULL));
	issue(xs_rm(&cl, "/a", reply_cb, NULL));
	issue(xs_read_str(&cl, "name", read_buf, sizeof(read_buf), done_cb, NULL));
}

static void add_watches(void)
{
	(void)xs_watch_add(&cl, 1, "backend/vif", watch_cb, NULL, &watch_ids[0]);
	(void)xs_watch_add(&cl, 2, "device/vif/0/state", watch_owner_cb, (void *)2, &watch_ids[1]);
	(void)xs_watch_add(&cl, 2, "control/shutdown", watch_cb, NULL, &watch_ids[2]);
}

static void drain_client_output(void)
{
	uint8_t sink[4096];
	while (fake_stream_get(&pair, 1, sink, sizeof(sink)) > 0) {
	}
}

static void connect_client(void)
{
	fake_stream_init(&pair, 65536);
	xs_client_attach(&cl, fake_stream_end(&pair, 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	issued = completed = tx_issued = tx_done = body_runs = 0;
	memset(read_buf, 0, sizeof(read_buf));
	xs_client_init(&cl, NULL, NULL);
	connect_client();
	add_watches();
	issue_requests();
	if (xs_transaction(&cl, tx_body, tx_done_cb, NULL) == XS_OK)
		tx_issued++;

	while (off < size) {
		uint8_t ctl = data[off++];
		size_t n = (size_t)(ctl & 0x3f) + 1;
		if (n > size - off)
			n = size - off;
		drain_client_output();
		fake_stream_set_read_chunk(&pair, 0, (size_t)(ctl & 7) + 1);
		fake_stream_put(&pair, 1, data + off, n);
		off += n;
		for (int i = 0; i < 4 && xs_poll(&cl); i++) {
		}
		check(xs_in_flight(&cl) <= XS_MAX_IN_FLIGHT);
		check(xs_watch_count(&cl) <= XS_WATCH_MAX);
		switch (ctl >> 6) {
		case 1:
			issue_requests();
			break;
		case 2:
			if ((ctl & 8) != 0) {
				add_watches();
			} else {
				(void)xs_watch_remove(&cl, watch_ids[ctl & 7 & 3]);
			}
			if ((ctl & 16) != 0 && xs_transaction(&cl, tx_body, tx_done_cb, NULL) == XS_OK)
				tx_issued++;
			break;
		case 3:
			if ((ctl & 0x3f) == 0x3f) {
				/* Reconnect: everything outstanding fails, watches come back. */
				xs_client_close(&cl);
				connect_client();
			}
			break;
		default:
			break;
		}
		if (!xs_client_is_open(&cl))
			connect_client();
	}
	xs_client_close(&cl);
	check(issued == completed);
	check(tx_issued == tx_done);
	check(body_runs <= tx_issued * XS_TX_ATTEMPTS);
	check(xs_in_flight(&cl) == 0);
	return 0;
}
