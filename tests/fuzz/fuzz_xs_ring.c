/* fuzz_xs_ring.c — a hostile xenstored against the XenStore ring transport
 * (xen/xs_ring.h).
 *
 * Input bytes 0-7: the page's initial req and rsp indices. Then a sequence
 * of ops [op][args]: honest server steps (consume n request bytes, produce
 * n response bytes), raw writes of any u32 field of the page (indices,
 * features, connection, error) and of ring bytes, our reads and writes of
 * any length, detach and re-attach.
 *
 * Checks: no crash, no out-of-bounds access (ASan: reads land at the end of
 * a heap buffer of exactly the requested length), results within bounds
 * (never more than asked, never more than the ring), the indices we publish
 * never move backwards or by more than what we returned, and while the
 * fuzzer has not touched the indices or flags the bytes arrive intact. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "xen/xs_ring.h"

static struct xs_ring_page page;
static struct xs_ring ring;

struct input {
	const uint8_t *p;
	size_t len;
};

static void check(int cond)
{
	if (!cond)
		abort();
}

static uint8_t take8(struct input *in)
{
	if (in->len == 0)
		return 0;
	in->len--;
	return *in->p++;
}

static uint16_t take16(struct input *in)
{
	return (uint16_t)(take8(in) | take8(in) << 8);
}

static uint32_t take32(struct input *in)
{
	return (uint32_t)take16(in) | (uint32_t)take16(in) << 16;
}

/* Honest byte streams, for the integrity check. */
static uint8_t next_out, next_srv_in, next_srv_out, next_in;
static bool tampered;

static void notify(void *ctx)
{
	(void)ctx;
}

static void op_write(size_t n)
{
	uint8_t *buf = malloc(n ? n : 1);
	uint32_t before = ring.req_prod;
	size_t space = xs_ring_write_space(&ring);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(next_out + i);
	int w = xs_ring_write(&ring, buf, n);
	check(w == STREAM_CLOSED || (w >= 0 && (size_t)w <= n && (size_t)w <= XS_RING_SIZE));
	if (w > 0) {
		check(ring.req_prod == before + (uint32_t)w);
		check(page.req_prod == ring.req_prod);
		check((size_t)w <= space || tampered);
		next_out = (uint8_t)(next_out + w);
	}
	free(buf);
}

static void op_read(size_t n)
{
	uint8_t *buf = malloc(n ? n : 1);
	uint32_t before = ring.rsp_cons;
	int r = xs_ring_read(&ring, buf, n);
	check(r == STREAM_CLOSED || (r >= 0 && (size_t)r <= n && (size_t)r <= XS_RING_SIZE));
	if (r > 0) {
		check(ring.rsp_cons == before + (uint32_t)r);
		check(page.rsp_cons == ring.rsp_cons);
		for (int i = 0; i < r && !tampered; i++)
			check(buf[i] == (uint8_t)(next_in + i));
		next_in = (uint8_t)(next_in + r);
	}
	free(buf);
}

/* The server consumes n request bytes and produces n response bytes. */
static void op_server(size_t take, size_t put)
{
	for (size_t i = 0; i < take && page.req_cons != page.req_prod; i++) {
		check(tampered || page.req[page.req_cons % XS_RING_SIZE] == next_srv_in);
		next_srv_in++;
		page.req_cons++;
	}
	for (size_t i = 0; i < put && page.rsp_prod - page.rsp_cons < XS_RING_SIZE; i++) {
		page.rsp[page.rsp_prod % XS_RING_SIZE] = next_srv_out++;
		page.rsp_prod++;
	}
}

static void op_poke(struct input *in)
{
	uint8_t which = take8(in) % 8;
	uint32_t v = take32(in);
	uint32_t *fields[] = {
		&page.req_cons, &page.req_prod, &page.rsp_cons, &page.rsp_prod,
		&page.server_features, &page.connection, &page.error, &page.rsp_prod,
	};
	*fields[which] = v;
	tampered = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	memset(&page, 0, sizeof(page));
	log_reset();
	next_out = next_srv_in = next_srv_out = next_in = 0;
	tampered = false;
	page.req_cons = page.req_prod = take32(&in);
	page.rsp_cons = page.rsp_prod = take32(&in);
	if (xs_ring_attach(&ring, &page, notify, NULL) != XS_RING_OK)
		return 0;
	for (unsigned steps = 0; in.len > 0 && steps < 256; steps++) {
		uint8_t op = take8(&in);
		switch (op % 8) {
		case 0:
			op_write(take16(&in) % 3000);
			break;
		case 1:
			op_read(take16(&in) % 3000);
			break;
		case 2:
			op_server(take16(&in) % 2048, take16(&in) % 2048);
			break;
		case 3:
			op_poke(&in);
			break;
		case 4:
			/* Raw ring bytes: garbage data, which is the client's
			 * problem, not the transport's. */
			page.rsp[take16(&in) % XS_RING_SIZE] = take8(&in);
			page.req[take16(&in) % XS_RING_SIZE] = take8(&in);
			tampered = true;
			break;
		case 5:
			xs_ring_detach(&ring);
			op_read(1);
			op_write(1);
			check(xs_ring_write_space(&ring) == 0);
			break;
		case 6: {
			enum xs_ring_result r = xs_ring_attach(&ring, &page, notify, NULL);
			check(r == XS_RING_OK || r == XS_RING_BAD_INDEX || r == XS_RING_SERVER_ERROR);
			(void)xs_ring_readable(&ring);
			break;
		}
		default:
			(void)xs_ring_write_space(&ring);
			check(xs_ring_write_space(&ring) <= XS_RING_SIZE);
			break;
		}
	}
	char line[LOG_LINE_MAX + 1];
	while (log_drain_line(line, sizeof(line)) > 0) {
	}
	return 0;
}
