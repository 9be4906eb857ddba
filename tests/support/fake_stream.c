/* fake_stream.c — in-memory connected byte streams for unit and fuzz tests.
 * Bounded by construction: each direction is a fixed ring. */
#include "fake_stream.h"

static size_t pipe_put(struct fake_pipe *q, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t room = q->cap - q->len;
	size_t n = len < room ? len : room;
	for (size_t i = 0; i < n; i++)
		q->buf[(q->head + q->len + i) % FAKE_STREAM_MAX_CAP] = b[i];
	q->len += n;
	return n;
}

static size_t pipe_peek(const struct fake_pipe *q, void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t n = len < q->len ? len : q->len;
	for (size_t i = 0; i < n; i++)
		b[i] = q->buf[(q->head + i) % FAKE_STREAM_MAX_CAP];
	return n;
}

static size_t pipe_get(struct fake_pipe *q, void *buf, size_t len)
{
	size_t n = pipe_peek(q, buf, len);
	q->head = (q->head + n) % FAKE_STREAM_MAX_CAP;
	q->len -= n;
	return n;
}

void fake_stream_init(struct fake_stream_pair *p, size_t cap)
{
	/* Field by field: the rings themselves need no clearing (fuzz speed). */
	for (int i = 0; i < 2; i++) {
		p->pipe[i].head = 0;
		p->pipe[i].len = 0;
		p->read_chunk[i] = 0;
		p->closed[i] = false;
		p->close_calls[i] = 0;
		p->read_calls[i] = 0;
		p->end[i].pair = p;
		p->end[i].side = i;
		fake_stream_set_capacity(p, i, cap);
	}
}

void fake_stream_set_capacity(struct fake_stream_pair *p, int side, size_t cap)
{
	p->pipe[side].cap = cap > FAKE_STREAM_MAX_CAP ? FAKE_STREAM_MAX_CAP : cap;
}

void fake_stream_set_read_chunk(struct fake_stream_pair *p, int side, size_t n)
{
	p->read_chunk[side] = n;
}

size_t fake_stream_pending(const struct fake_stream_pair *p, int reader_side)
{
	return p->pipe[1 - reader_side].len;
}

size_t fake_stream_put(struct fake_stream_pair *p, int side, const void *buf, size_t len)
{
	return pipe_put(&p->pipe[side], buf, len);
}

size_t fake_stream_get(struct fake_stream_pair *p, int side, void *buf, size_t len)
{
	return pipe_get(&p->pipe[1 - side], buf, len);
}

size_t fake_stream_peek(const struct fake_stream_pair *p, int side, void *buf, size_t len)
{
	return pipe_peek(&p->pipe[1 - side], buf, len);
}

void fake_stream_close(struct fake_stream_pair *p, int side)
{
	p->closed[side] = true;
}

static int op_read(void *ctx, void *buf, size_t len)
{
	struct fake_end *e = ctx;
	struct fake_stream_pair *p = e->pair;
	size_t chunk = p->read_chunk[e->side];
	p->read_calls[e->side]++;
	if (p->closed[e->side])
		return STREAM_CLOSED;
	if (chunk && len > chunk)
		len = chunk;
	size_t n = pipe_get(&p->pipe[1 - e->side], buf, len);
	if (n == 0 && p->closed[1 - e->side])
		return STREAM_CLOSED;
	return (int)n;
}

static int op_write(void *ctx, const void *buf, size_t len)
{
	struct fake_end *e = ctx;
	struct fake_stream_pair *p = e->pair;
	if (p->closed[0] || p->closed[1])
		return STREAM_CLOSED;
	if (len > (size_t)INT32_MAX)
		len = (size_t)INT32_MAX;
	return (int)pipe_put(&p->pipe[e->side], buf, len);
}

static size_t op_write_space(void *ctx)
{
	struct fake_end *e = ctx;
	const struct fake_pipe *q = &e->pair->pipe[e->side];
	return q->cap - q->len;
}

static void op_close(void *ctx)
{
	struct fake_end *e = ctx;
	e->pair->close_calls[e->side]++;
	e->pair->closed[e->side] = true;
}

static const struct stream_ops fake_ops = {
	.read = op_read,
	.write = op_write,
	.write_space = op_write_space,
	.close = op_close,
};

struct stream fake_stream_end(struct fake_stream_pair *p, int side)
{
	struct stream s = { &fake_ops, &p->end[side] };
	return s;
}
