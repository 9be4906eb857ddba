/* test_xs_ring.c — the XenStore ring transport (xen/xs_ring.h) against a
 * fake shared page and a fake xenstored: wrap-around at any starting index,
 * full and empty rings, hostile indices (producer running ahead, consumer
 * beyond what we produced), the server's error and reconnect flags,
 * notification, detach/re-attach, and the XenStore client running on it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base/log.h"
#include "xen/xenstore.h"
#include "xen/xs_ring.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

static struct xs_ring_page page;
static struct xs_ring ring;
static unsigned notifies;

static void notify(void *ctx)
{
	(void)ctx;
	notifies++;
}

static int setup(void **state)
{
	(void)state;
	memset(&page, 0, sizeof(page));
	memset(&ring, 0, sizeof(ring));
	notifies = 0;
	log_reset();
	return 0;
}

/* ---- the fake server's side of the ring ---- */

/* Takes up to cap request bytes the way xenstored would. */
static size_t server_take(uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (n < cap && page.req_cons != page.req_prod) {
		out[n++] = page.req[page.req_cons % XS_RING_SIZE];
		page.req_cons++;
	}
	return n;
}

/* Produces up to len response bytes; returns how many fitted. */
static size_t server_put(const uint8_t *p, size_t len)
{
	size_t n = 0;
	while (n < len && page.rsp_prod - page.rsp_cons < XS_RING_SIZE) {
		page.rsp[page.rsp_prod % XS_RING_SIZE] = p[n++];
		page.rsp_prod++;
	}
	return n;
}

static void set_indices(uint32_t req, uint32_t rsp)
{
	page.req_cons = page.req_prod = req;
	page.rsp_cons = page.rsp_prod = rsp;
}

/* ---- tests ---- */

static void test_attach_takes_indices_as_found(void **state)
{
	(void)state;
	set_indices(0xfffffe00u, 0x12345678u);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	assert_int_equal(xs_ring_write_space(&ring), XS_RING_SIZE);
	assert_int_equal(ring.req_prod, 0xfffffe00u);
	assert_int_equal(ring.rsp_cons, 0x12345678u);
	/* Nothing to read yet. */
	uint8_t b[8];
	assert_int_equal(xs_ring_read(&ring, b, sizeof(b)), 0);
	assert_int_equal(notifies, 0);
}

static void test_attach_null_page(void **state)
{
	(void)state;
	assert_int_equal(xs_ring_attach(&ring, NULL, notify, NULL), XS_RING_DETACHED);
	uint8_t b[4] = {0};
	assert_int_equal(xs_ring_read(&ring, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(xs_ring_write_space(&ring), 0);
}

static void test_attach_rejects_bad_indices(void **state)
{
	(void)state;
	/* Response producer more than a ring ahead of the consumer. */
	page.rsp_cons = 100;
	page.rsp_prod = 100 + XS_RING_SIZE + 1;
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_BAD_INDEX);
	uint8_t b[4] = {0};
	assert_int_equal(xs_ring_read(&ring, b, sizeof(b)), STREAM_CLOSED);
	/* Request consumer beyond our producer. */
	setup(NULL);
	page.req_prod = 10;
	page.req_cons = 11;
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_BAD_INDEX);
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), STREAM_CLOSED);
	/* Exactly a full ring is legal. */
	setup(NULL);
	page.rsp_cons = 0xfffffff0u;
	page.rsp_prod = 0xfffffff0u + XS_RING_SIZE;
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
}

static void test_write_fills_ring_then_waits(void **state)
{
	(void)state;
	uint8_t big[3000], got[3000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	set_indices(0xfffffc10u, 0); /* wraps the u32 space while writing */
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	assert_int_equal(xs_ring_write(&ring, big, sizeof(big)), XS_RING_SIZE);
	assert_int_equal(notifies, 1);
	assert_int_equal(page.req_prod, 0xfffffc10u + XS_RING_SIZE);
	assert_int_equal(xs_ring_write_space(&ring), 0);
	assert_int_equal(xs_ring_write(&ring, big, sizeof(big)), 0);
	assert_int_equal(notifies, 1); /* no notification for nothing */
	size_t n = server_take(got, 100);
	assert_int_equal(n, 100);
	assert_int_equal(xs_ring_write_space(&ring), 100);
	assert_int_equal(xs_ring_write(&ring, big + XS_RING_SIZE, sizeof(big) - XS_RING_SIZE), 100);
	n += server_take(got + n, sizeof(got) - n);
	assert_int_equal(n, XS_RING_SIZE + 100);
	assert_memory_equal(got, big, n);
}

static void test_read_across_wrap(void **state)
{
	(void)state;
	uint8_t msg[600], got[600];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(255 - i);
	set_indices(0, 700); /* offset 700: the message wraps at 1024 */
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	assert_int_equal(server_put(msg, sizeof(msg)), sizeof(msg));
	assert_true(xs_ring_readable(&ring));
	assert_int_equal(xs_ring_read(&ring, got, 250), 250);
	assert_int_equal(xs_ring_read(&ring, got + 250, sizeof(got)), 350);
	assert_memory_equal(got, msg, sizeof(msg));
	assert_int_equal(page.rsp_cons, 1300);
	assert_false(xs_ring_readable(&ring));
	assert_int_equal(notifies, 2);
}

static void test_hostile_response_producer(void **state)
{
	(void)state;
	uint8_t got[2048];
	set_indices(0, 5);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	/* A full ring is fine ... */
	page.rsp_prod = 5 + XS_RING_SIZE;
	assert_int_equal(xs_ring_read(&ring, got, sizeof(got)), XS_RING_SIZE);
	/* ... running ahead by more than the ring is not. */
	page.rsp_prod = ring.rsp_cons + XS_RING_SIZE + 1;
	assert_int_equal(xs_ring_read(&ring, got, sizeof(got)), STREAM_CLOSED);
	assert_int_equal(ring.protocol_errors, 1);
	/* Broken for good, even once the index looks sane again. */
	page.rsp_prod = ring.rsp_cons;
	assert_int_equal(xs_ring_read(&ring, got, sizeof(got)), STREAM_CLOSED);
	assert_int_equal(xs_ring_write(&ring, got, 1), STREAM_CLOSED);
	/* A producer "behind" our consumer is the same as far ahead. */
	setup(NULL);
	set_indices(0, 50);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	page.rsp_prod = 49;
	assert_int_equal(xs_ring_read(&ring, got, sizeof(got)), STREAM_CLOSED);
	char line[LOG_LINE_MAX + 1];
	assert_true(log_drain_line(line, sizeof(line)) > 0);
}

static void test_hostile_request_consumer(void **state)
{
	(void)state;
	uint8_t b[16] = {0};
	set_indices(1000, 0);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), 16);
	page.req_cons = 1017; /* consumed more than we produced */
	assert_int_equal(xs_ring_write_space(&ring), 0);
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), STREAM_CLOSED);
	assert_true(ring.broken);
	/* Re-attaching re-validates: still impossible. */
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_BAD_INDEX);
	/* Once the server is sane again, a new attach works. */
	page.req_cons = 1016;
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), 16);
}

static void test_server_error_and_reconnect_flags(void **state)
{
	(void)state;
	uint8_t b[8] = {0};
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	/* Error without the feature bit: not ours to interpret. */
	page.error = 1;
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), 8);
	page.server_features = XS_RING_FEATURE_ERROR;
	assert_int_equal(xs_ring_read(&ring, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_SERVER_ERROR);
	/* Reconnection in progress: wait (0), not fail. */
	setup(NULL);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	page.server_features = XS_RING_FEATURE_RECONNECTION;
	page.connection = 1;
	assert_int_equal(xs_ring_write_space(&ring), 0);
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), 0);
	page.connection = 0;
	assert_int_equal(xs_ring_write(&ring, b, sizeof(b)), 8);
}

static void test_detach_closes_stream(void **state)
{
	(void)state;
	uint8_t b[4] = {1, 2, 3, 4};
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	struct stream s = xs_ring_stream(&ring);
	assert_int_equal(s.ops->write(s.ctx, b, sizeof(b)), 4);
	assert_int_equal(s.ops->write_space(s.ctx), XS_RING_SIZE - 4);
	s.ops->close(s.ctx);
	assert_int_equal(s.ops->read(s.ctx, b, sizeof(b)), STREAM_CLOSED);
	assert_int_equal(s.ops->write(s.ctx, b, sizeof(b)), STREAM_CLOSED);
	/* Re-attach continues from the indices on the page. */
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	assert_int_equal(ring.req_prod, 4);
	assert_int_equal(xs_ring_write_space(&ring), XS_RING_SIZE - 4);
}

/* Many messages of odd sizes through both directions, from an index near
 * the u32 wrap: every byte arrives once and in order. */
static void test_stream_integrity(void **state)
{
	(void)state;
	static uint8_t sent[200000], got[200000];
	uint32_t rng = 12345;
	size_t out = 0, in = 0, back = 0, echoed = 0;
	set_indices(0xffff0000u, 0xfffffff0u);
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	for (size_t i = 0; i < sizeof(sent); i++)
		sent[i] = (uint8_t)(i ^ (i >> 8));
	while (back < sizeof(sent)) {
		rng = rng * 1103515245u + 12345u;
		size_t want = (rng >> 16) % 1500 + 1;
		if (out < sizeof(sent)) {
			int w = xs_ring_write(&ring, sent + out, MIN(want, sizeof(sent) - out));
			assert_true(w >= 0);
			out += (size_t)w;
		}
		/* The server echoes what it consumed. */
		uint8_t tmp[2048];
		size_t room = XS_RING_SIZE - (page.rsp_prod - page.rsp_cons);
		size_t t = server_take(tmp, MIN((rng >> 4) % 2048, room));
		in += t;
		size_t p = server_put(tmp, t);
		assert_int_equal(p, t); /* the echo always fits: we read below */
		echoed += p;
		int r = xs_ring_read(&ring, got + back, MIN((rng >> 8) % 1500 + 1, sizeof(got) - back));
		assert_true(r >= 0);
		back += (size_t)r;
		/* Keep the echo ring from overflowing: drain fully now and then. */
		if ((rng & 3) == 0) {
			r = xs_ring_read(&ring, got + back, sizeof(got) - back);
			assert_true(r >= 0);
			back += (size_t)r;
		}
		if (page.rsp_prod - page.rsp_cons > XS_RING_SIZE / 2) {
			r = xs_ring_read(&ring, got + back, sizeof(got) - back);
			back += (size_t)r;
		}
	}
	assert_int_equal(in, sizeof(sent));
	assert_int_equal(echoed, sizeof(sent));
	assert_memory_equal(got, sent, sizeof(sent));
	assert_int_equal(ring.protocol_errors, 0);
}

/* ---- the XenStore client on the ring, with a tiny fake xenstored ---- */

static char read_value[64];
static enum xs_status read_status = XS_ERR_ARG;
static bool read_done;

static void on_read(void *ctx, enum xs_status st)
{
	(void)ctx;
	read_status = st;
	read_done = true;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_xenstore_client_over_ring(void **state)
{
	(void)state;
	static struct xs_client c;
	uint8_t req[64] = {0}, rsp[64] = {0};
	set_indices(0xfffffff8u, 0xfffffffcu); /* header and reply both wrap */
	assert_int_equal(xs_ring_attach(&ring, &page, notify, NULL), XS_RING_OK);
	xs_client_init(&c, NULL, NULL);
	xs_client_attach(&c, xs_ring_stream(&ring));
	read_done = false;
	assert_int_equal(xs_read_str(&c, "domid", read_value, sizeof(read_value), on_read, NULL),
			 XS_OK);
	(void)xs_poll(&c);
	/* The server sees READ "domid\0". */
	size_t n = server_take(req, sizeof(req));
	assert_int_equal(n, XS_HEADER_LEN + 6);
	assert_int_equal(get_u32(req), XS_MSG_READ);
	assert_int_equal(get_u32(req + 12), 6);
	assert_memory_equal(req + XS_HEADER_LEN, "domid", 6);
	/* It answers "42" with the same req_id, in two pieces. */
	put_u32(rsp, XS_MSG_READ);
	memcpy(rsp + 4, req + 4, 4);
	put_u32(rsp + 8, 0);
	put_u32(rsp + 12, 2);
	rsp[XS_HEADER_LEN] = '4'; /* the value has no NUL on the wire */
	rsp[XS_HEADER_LEN + 1] = '2';
	assert_int_equal(server_put(rsp, 10), 10);
	(void)xs_poll(&c);
	assert_false(read_done);
	assert_int_equal(server_put(rsp + 10, XS_HEADER_LEN + 2 - 10), XS_HEADER_LEN + 2 - 10);
	(void)xs_poll(&c);
	assert_true(read_done);
	assert_int_equal(read_status, XS_OK);
	assert_string_equal(read_value, "42");
	/* A hostile index closes the client's connection. */
	read_done = false;
	assert_int_equal(xs_read_str(&c, "name", read_value, sizeof(read_value), on_read, NULL),
			 XS_OK);
	page.rsp_prod += 5000;
	(void)xs_poll(&c);
	assert_true(read_done);
	assert_int_equal(read_status, XS_ERR_CLOSED);
	assert_false(xs_client_is_open(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_attach_takes_indices_as_found, setup),
		cmocka_unit_test_setup(test_attach_null_page, setup),
		cmocka_unit_test_setup(test_attach_rejects_bad_indices, setup),
		cmocka_unit_test_setup(test_write_fills_ring_then_waits, setup),
		cmocka_unit_test_setup(test_read_across_wrap, setup),
		cmocka_unit_test_setup(test_hostile_response_producer, setup),
		cmocka_unit_test_setup(test_hostile_request_consumer, setup),
		cmocka_unit_test_setup(test_server_error_and_reconnect_flags, setup),
		cmocka_unit_test_setup(test_detach_closes_stream, setup),
		cmocka_unit_test_setup(test_stream_integrity, setup),
		cmocka_unit_test_setup(test_xenstore_client_over_ring, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
