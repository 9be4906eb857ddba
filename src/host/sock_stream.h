/* sock_stream.h — the byte-stream interface (base/stream.h) over Unix
 * stream sockets, with the path scheme of Qubes' socket vchan:
 *   <dir>/vchan.<server-domid>.<client-domid>.<port>.sock
 * so the firewall's protocol code can talk to Qubes' own socket-backend
 * daemons and to our simulated dom0 (tests/sim). Host platform only.
 * Never blocks: sockets are non-blocking, connects that are refused are
 * reported for the caller to retry later. */
#ifndef HOST_SOCK_STREAM_H
#define HOST_SOCK_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "base/stream.h"

struct sock_stream {
	int fd;
	bool closed;
};

/* Formats the socket-vchan path; false when it does not fit. */
bool sock_vchan_path(char *buf, size_t cap, const char *dir, unsigned server, unsigned client,
		     unsigned port);

/* Connects to path. Returns true with s ready, false when the server is not
 * there yet (ENOENT/ECONNREFUSED: retry later) or on another error. */
bool sock_stream_connect(struct sock_stream *s, const char *path);

/* Listening socket at path (stale file removed), non-blocking; -1 on error. */
int sock_listen(const char *path);

/* Accepts one pending connection into s; false when none is pending. */
bool sock_stream_accept(struct sock_stream *s, int listen_fd);

/* The stream view of s (s must outlive it). close() closes the fd. */
struct stream sock_stream_stream(struct sock_stream *s);

#endif
