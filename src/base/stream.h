/* stream.h — a non-blocking byte stream: a vchan on Xen, a Unix socket on
 * the host. The protocol code (XenStore client, QubesDB client, qrexec
 * agent) is written against this and must not know which one it has.
 *
 * No call ever waits. Readiness comes from the platform's event loop, which
 * calls the protocol's poll function after any event. */
#ifndef BASE_STREAM_H
#define BASE_STREAM_H

#include <stddef.h>

#define STREAM_CLOSED (-1)

struct stream_ops {
	/* Copies up to len available bytes; returns their count, 0 when none
	 * are available now, STREAM_CLOSED when the peer closed or failed. */
	int (*read)(void *ctx, void *buf, size_t len);
	/* Queues up to len bytes; returns how many were taken (may be fewer,
	 * may be 0 when the ring is full), STREAM_CLOSED when closed. */
	int (*write)(void *ctx, const void *buf, size_t len);
	/* Bytes that write() would take now. */
	size_t (*write_space)(void *ctx);
	/* Releases the stream; ctx is not used afterwards. */
	void (*close)(void *ctx);
};

struct stream {
	const struct stream_ops *ops;
	void *ctx;
};

#endif
