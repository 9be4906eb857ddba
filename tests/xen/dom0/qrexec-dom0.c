/* qrexec-dom0.c — dom0's qrexec-daemon + qrexec-client for the real-Xen test
 * tier (docs/xen-tier.md), over real vchan (Debian's libxenvchan). Protocol:
 * specs/qubes-protocols.md §3 (control channel: the VM agent is the vchan
 * server on port 512 and dom0 the client; data channels: dom0 serves port
 * 513.. and the VM connects as client).
 *
 *   qrexec-dom0 DOMID [CONNECT-TIMEOUT-S]
 *
 * Connects to the agent (retrying until the timeout), answers its HELLO by
 * echoing it (as qrexec-daemon does), then reads commands from stdin, one per
 * line:
 *   S <service> [user]      run "user:QUBESRPC <service> dom0" (user: root)
 * Results go to stdout as "XW qrexec-..." lines. Stays connected until stdin
 * closes: the agent must not see its control channel drop mid-test.
 *
 * Runs inside the test dom0 only. Any protocol violation by the VM ends the
 * current call with a line saying why; nothing the VM sends is trusted for
 * lengths (bodies are bounded before they are read). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxenvchan.h>

#define CONTROL_PORT 512
#define DATA_PORT_BASE 513
#define DATA_RING 65536
#define MAX_BODY 65536
#define OUR_VERSION 3

enum {
	MSG_DATA_STDIN = 0x190,
	MSG_DATA_STDOUT = 0x191,
	MSG_DATA_STDERR = 0x192,
	MSG_DATA_EXIT_CODE = 0x193,
	MSG_EXEC_CMDLINE = 0x200,
	MSG_CONNECTION_TERMINATED = 0x211,
	MSG_HELLO = 0x300,
};

struct hdr {
	uint32_t type;
	uint32_t len;
};

static int domid;
static struct libxenvchan *ctl;
static unsigned next_port;

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("XW ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for an event on v until `deadline`; returns -1 on timeout. */
static int wait_event(struct libxenvchan *v, double deadline)
{
	double left = deadline - now_s();
	if (left <= 0)
		return -1;
	struct pollfd p = { .fd = libxenvchan_fd_for_select(v), .events = POLLIN };
	int r = poll(&p, 1, (int)(left * 1000) + 1);
	if (r > 0)
		libxenvchan_wait(v);
	return 0;
}

/* Exactly n bytes, or -1 (timeout, or the peer closed). */
static int recv_exact(struct libxenvchan *v, void *buf, size_t n, double deadline)
{
	v->blocking = 0;
	for (;;) {
		if (libxenvchan_data_ready(v) >= (int)n)
			return n == 0 || libxenvchan_recv(v, buf, n) == (int)n ? 0 : -1;
		if (libxenvchan_is_open(v) != 1)
			return -1;
		if (wait_event(v, deadline) < 0)
			return -1;
	}
}

static int send_all(struct libxenvchan *v, const void *buf, size_t n)
{
	v->blocking = 1;
	return n == 0 || libxenvchan_send(v, buf, n) == (int)n ? 0 : -1;
}

static int send_msg(struct libxenvchan *v, uint32_t type, const void *body, uint32_t len)
{
	struct hdr h = { type, len };
	if (send_all(v, &h, sizeof(h)) < 0)
		return -1;
	return send_all(v, body, len);
}

/* A message whose body fits in `cap`; returns the body length or -1. */
static int recv_msg(struct libxenvchan *v, struct hdr *h, void *body, size_t cap, double deadline)
{
	if (recv_exact(v, h, sizeof(*h), deadline) < 0)
		return -1;
	if (h->len > cap) {
		say("qrexec-error message 0x%x with body %u > %zu", (unsigned)h->type,
		    (unsigned)h->len, cap);
		return -1;
	}
	if (recv_exact(v, body, h->len, deadline) < 0)
		return -1;
	return (int)h->len;
}

static int connect_control(double timeout)
{
	char xs[96];
	double start = now_s(), deadline = start + timeout;
	snprintf(xs, sizeof(xs), "/local/domain/%d/data/vchan/0/%d", domid, CONTROL_PORT);
	while (!(ctl = libxenvchan_client_init(NULL, domid, xs))) {
		if (now_s() > deadline) {
			say("qrexec-error no agent at %s after %.0f s", xs, timeout);
			return -1;
		}
		usleep(200 * 1000);
	}
	struct hdr h;
	uint32_t version = 0;
	if (recv_msg(ctl, &h, &version, sizeof(version), deadline) != 4 || h.type != MSG_HELLO) {
		say("qrexec-error bad or missing HELLO from the agent (type 0x%x)", (unsigned)h.type);
		return -1;
	}
	/* qrexec-daemon echoes the agent's own peer_info (spec §3.3). */
	if (send_msg(ctl, MSG_HELLO, &version, sizeof(version)) < 0)
		return -1;
	say("qrexec-connected version %u after %.2f s at %.2f", (unsigned)version, now_s() - start,
	    now_s());
	return 0;
}

static void print_lines(const char *svc, const char *what, const char *buf, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && buf[j] != '\n')
			j++;
		say("qrexec-%s %s %.*s", what, svc, (int)(j - i), buf + i);
		i = j + 1;
	}
}

static void run_service(const char *svc, const char *user)
{
	static char body[MAX_BODY + 1];
	char xs[96];
	unsigned port = DATA_PORT_BASE + (next_port++ % 256);
	double start = now_s(), deadline = start + 20;
	struct libxenvchan *d;
	struct hdr h;
	int exit_code = -1, n;
	size_t outn = 0;
	static char out[MAX_BODY];

	snprintf(xs, sizeof(xs), "/local/domain/0/data/vchan/%d/%u", domid, port);
	d = libxenvchan_server_init(NULL, domid, xs, DATA_RING, DATA_RING);
	if (!d) {
		say("qrexec-result %s rc=-1 error=server_init", svc);
		return;
	}
	n = snprintf(body + 8, sizeof(body) - 8, "%s:QUBESRPC %s dom0", user, svc);
	uint32_t params[2] = { 0, port };
	memcpy(body, params, sizeof(params));
	if (send_msg(ctl, MSG_EXEC_CMDLINE, body, (uint32_t)(8 + n + 1)) < 0) {
		say("qrexec-result %s rc=-1 error=control-send", svc);
		libxenvchan_close(d);
		return;
	}
	/* The agent connects as client (dom0 waits 10 s, qrexec-client.c). */
	double connect_deadline = start + 10;
	while (libxenvchan_is_open(d) == 2) {
		if (wait_event(d, connect_deadline) < 0)
			break;
	}
	if (libxenvchan_is_open(d) != 1) {
		say("qrexec-result %s rc=-1 error=agent-did-not-connect", svc);
		libxenvchan_close(d);
		return;
	}
	uint32_t version = OUR_VERSION, peer = 0;
	if (send_msg(d, MSG_HELLO, &version, 4) < 0 ||
	    recv_msg(d, &h, &peer, sizeof(peer), deadline) != 4 || h.type != MSG_HELLO) {
		say("qrexec-result %s rc=-1 error=data-hello", svc);
		libxenvchan_close(d);
		return;
	}
	send_msg(d, MSG_DATA_STDIN, NULL, 0);
	for (;;) {
		n = recv_msg(d, &h, body, MAX_BODY, deadline);
		if (n < 0) {
			say("qrexec-error %s: data channel ended without an exit code", svc);
			break;
		}
		if (h.type == MSG_DATA_STDOUT && n > 0) {
			size_t take = (size_t)n < sizeof(out) - outn ? (size_t)n : sizeof(out) - outn;
			memcpy(out + outn, body, take);
			outn += take;
		} else if (h.type == MSG_DATA_STDERR && n > 0) {
			print_lines(svc, "stderr", body, (size_t)n);
		} else if (h.type == MSG_DATA_EXIT_CODE) {
			int32_t code = 255;
			if (n >= 4)
				memcpy(&code, body, 4);
			exit_code = code;
			break;
		} else if (h.type != MSG_DATA_STDOUT && h.type != MSG_DATA_STDERR) {
			say("qrexec-error %s: unexpected message 0x%x", svc, (unsigned)h.type);
			break;
		}
	}
	print_lines(svc, "stdout", out, outn);
	say("qrexec-result %s rc=%d version=%u time=%.3f", svc, exit_code, (unsigned)peer,
	    now_s() - start);
	/* The agent reports CONNECTION_TERMINATED on the control channel. */
	for (;;) {
		n = recv_msg(ctl, &h, body, MAX_BODY, now_s() + 5);
		if (n < 0) {
			say("qrexec-error %s: no CONNECTION_TERMINATED", svc);
			break;
		}
		if (h.type == MSG_CONNECTION_TERMINATED && n >= 8) {
			uint32_t p[2];
			memcpy(p, body, sizeof(p));
			if (p[1] == port) {
				say("qrexec-terminated %s port %u", svc, port);
				break;
			}
		}
		say("qrexec-control message 0x%x len %d", (unsigned)h.type, n);
	}
	libxenvchan_close(d);
}

int main(int argc, char **argv)
{
	char line[512];
	if (argc < 2) {
		fprintf(stderr, "usage: qrexec-dom0 DOMID [CONNECT-TIMEOUT-S]\n");
		return 2;
	}
	domid = atoi(argv[1]);
	if (connect_control(argc > 2 ? atof(argv[2]) : 60) < 0)
		return 1;
	while (fgets(line, sizeof(line), stdin)) {
		char svc[256], user[64] = "root";
		if (sscanf(line, "S %255s %63s", svc, user) >= 1)
			run_service(svc, user);
		if (libxenvchan_is_open(ctl) != 1) {
			say("qrexec-closed the agent closed its control channel at %.2f", now_s());
			return 1;
		}
	}
	say("qrexec-exit at %.2f", now_s());
	libxenvchan_close(ctl);
	return 0;
}
