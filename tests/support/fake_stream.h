/* fake_stream.h — a pair of connected in-memory byte streams for tests.
 *
 * End 0 and end 1 each get a struct stream (base/stream.h); bytes written
 * on one end are read on the other. Knobs: the capacity of each direction
 * (write() takes only what fits, write_space() says how much), how many
 * bytes one read() call may return at most on each end ("deliver N bytes
 * at a time"), and closing from either side. Host-only test code: never
 * linked into the unikernel. */
#ifndef TESTS_FAKE_STREAM_H
#define TESTS_FAKE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

#define FAKE_STREAM_MAX_CAP 65536u

struct fake_pipe {
	uint8_t buf[FAKE_STREAM_MAX_CAP];
	size_t cap;  /* configured capacity, ≤ FAKE_STREAM_MAX_CAP */
	size_t head; /* offset of the oldest byte */
	size_t len;  /* bytes waiting */
};

struct fake_end {
	struct fake_stream_pair *pair;
	int side;
};

struct fake_stream_pair {
	struct fake_pipe pipe[2]; /* pipe[i] carries bytes written by end i */
	struct fake_end end[2];
	size_t read_chunk[2];     /* max bytes per read() on end i; 0 = no limit */
	bool closed[2];           /* end i called close() or fake_stream_close(i) */
	unsigned close_calls[2];  /* close() ops called through end i */
	uint64_t read_calls[2];
};

/* Both directions with capacity cap (clamped to FAKE_STREAM_MAX_CAP). */
void fake_stream_init(struct fake_stream_pair *p, size_t cap);
/* Capacity of the direction written by end side. */
void fake_stream_set_capacity(struct fake_stream_pair *p, int side, size_t cap);
/* At most n bytes per read() call on end side (0 = unlimited). */
void fake_stream_set_read_chunk(struct fake_stream_pair *p, int side, size_t n);
/* The stream of end side (0 or 1). */
struct stream fake_stream_end(struct fake_stream_pair *p, int side);

/* Test-side access without going through struct stream. */
size_t fake_stream_pending(const struct fake_stream_pair *p, int reader_side);
/* Writes on behalf of end side; returns bytes taken (≤ len). */
size_t fake_stream_put(struct fake_stream_pair *p, int side, const void *buf, size_t len);
/* Reads what end side can read; returns bytes copied. */
size_t fake_stream_get(struct fake_stream_pair *p, int side, void *buf, size_t len);
/* Looks at the next bytes for end side without removing them. */
size_t fake_stream_peek(const struct fake_stream_pair *p, int side, void *buf, size_t len);
/* End side hangs up: the other end's reads then return STREAM_CLOSED once
 * the queued bytes are gone, and its writes return STREAM_CLOSED. */
void fake_stream_close(struct fake_stream_pair *p, int side);

#endif
