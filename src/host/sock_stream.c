/* sock_stream.c — Unix-socket streams for the host runner.
 * A peer that resets or closes turns the stream into STREAM_CLOSED; no call
 * here ever waits. */
#define _GNU_SOURCE /* accept4 */
#include "host/sock_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

bool sock_vchan_path(char *buf, size_t cap, const char *dir, unsigned server, unsigned client,
		     unsigned port)
{
	int n = snprintf(buf, cap, "%s/vchan.%u.%u.%u.sock", dir, server, client, port);
	return n > 0 && (size_t)n < cap && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path);
}

static bool fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);
	if (len >= sizeof(sa->sun_path))
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return true;
}

bool sock_stream_connect(struct sock_stream *s, const char *path)
{
	struct sockaddr_un sa;
	s->fd = -1;
	s->closed = true;
	if (!fill_addr(&sa, path))
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* Connect while blocking: on a local socket it completes or fails at
	 * once; only afterwards the socket becomes non-blocking. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return false;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
		close(fd);
		return false;
	}
	s->fd = fd;
	s->closed = false;
	return true;
}

int sock_listen(const char *path)
{
	struct sockaddr_un sa;
	if (!fill_addr(&sa, path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool sock_stream_accept(struct sock_stream *s, int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return false;
	s->fd = fd;
	s->closed = false;
	return true;
}

static int ss_read(void *ctx, void *buf, size_t len)
{
	struct sock_stream *s = ctx;
	if (s->closed)
		return STREAM_CLOSED;
	if (len == 0)
		return 0;
	if (len > 1u << 20)
		len = 1u << 20;
	ssize_t n = recv(s->fd, buf, len, 0);
	if (n > 0)
		return (int)n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	s->closed = true;
	return STREAM_CLOSED;
}

static int ss_write(void *ctx, const void *buf, size_t len)
{
	struct sock_stream *s = ctx;
	if (s->closed)
		return STREAM_CLOSED;
	if (len == 0)
		return 0;
	if (len > 1u << 20)
		len = 1u << 20;
	ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	s->closed = true;
	return STREAM_CLOSED;
}

static size_t ss_write_space(void *ctx)
{
	struct sock_stream *s = ctx;
	struct pollfd p = {.fd = s->fd, .events = POLLOUT};
	if (s->closed)
		return 0;
	/* A Unix socket that polls writable takes at least a page at once;
	 * writes may still come back short, which the stream contract allows. */
	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) ? 4096 : 0;
}

static void ss_close(void *ctx)
{
	struct sock_stream *s = ctx;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->closed = true;
}

static const struct stream_ops sock_stream_ops = {
	.read = ss_read,
	.write = ss_write,
	.write_space = ss_write_space,
	.close = ss_close,
};

struct stream sock_stream_stream(struct sock_stream *s)
{
	return (struct stream){.ops = &sock_stream_ops, .ctx = s};
}
