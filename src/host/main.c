/* main.c — the host runner: the whole firewall (src/app and everything
 * below it) as a Linux process, with TAP devices for vifs, Unix sockets
 * for XenStore and the vchans (Qubes' socket-vchan naming), an epoll loop,
 * monotonic and wall clocks and getrandom entropy. For tests, demos and
 * development: it is not how the firewall runs in Qubes (that is the
 * unikernel, with the same application code).
 *
 * Must never block in the loop except in epoll_wait, and must leave no
 * device behind when it stops (TAPs vanish with their fd). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/platform.h"
#include "base/arena.h"
#include "base/clock.h"
#include "base/csprng.h"
#include "base/panic.h"
#include "fw/router.h"
#include "host/sock_stream.h"
#include "host/tap.h"
#include "xen/netdev.h"
#include "xen/xenstore.h"

#define MAX_CLIENT_DEVS 64
#define MAX_SOCKS 16
#define FRAME_BUF 65600
#define RX_BUDGET 64

struct client_dev {
	bool used;
	int fd;
	uint32_t cookie;
	char name[16];
	/* The backend half of the xenbus handshake that netback does on Xen,
	 * so dom0's attach and detach complete the same way here. */
	struct xs_client *xs;
	char backend[64];
	char path[80];
	char online[8];
	char state[8];
	xs_watch_id watch;
	bool closing;
	uint32_t gen; /* distinguishes this use of the slot in XenStore callbacks */
};

static struct {
	const char *vchan_dir;
	const char *xs_path;
	const char *uplink_name;
	unsigned domid;
	uint8_t uplink_mac[6];
	uint16_t uplink_mtu;
	int epfd;
	int qrexec_listen;
	int uplink_fd;
	struct sock_stream socks[MAX_SOCKS];
	struct client_dev clients[MAX_CLIENT_DEVS];
	struct app *app;
	volatile sig_atomic_t stop;
} host = {
	.vchan_dir = "/run/qubes-c-firewall",
	.domid = 1,
	.uplink_mac = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x01},
	.uplink_mtu = 1500,
	.epfd = -1,
	.qrexec_listen = -1,
	.uplink_fd = -1,
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

_Noreturn void platform_panic(const char *message)
{
	fprintf(stderr, "PANIC: %s\n", message);
	abort();
}

void platform_console_line(const char *line, size_t len)
{
	uint64_t t = mono_ns();
	fprintf(stderr, "%5llu.%03llu %.*s\n", (unsigned long long)(t / 1000000000ull),
		(unsigned long long)(t / 1000000ull % 1000), (int)len, line);
}

static void watch_fd(int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	if (fd >= 0)
		(void)epoll_ctl(host.epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* ---- streams ---------------------------------------------------------------- */

static struct sock_stream *sock_slot(void)
{
	for (int i = 0; i < MAX_SOCKS; i++)
		if (host.socks[i].fd < 0)
			return &host.socks[i];
	return NULL;
}

static bool connect_path(const char *path, struct stream *out)
{
	struct sock_stream *s = sock_slot();
	if (!s || !sock_stream_connect(s, path)) {
		if (s)
			s->fd = -1;
		return false;
	}
	watch_fd(s->fd);
	*out = sock_stream_stream(s);
	return true;
}

bool platform_xenstore_connect(struct stream *out)
{
	return host.xs_path && connect_path(host.xs_path, out);
}

bool platform_qubesdb_connect(struct stream *out)
{
	char path[256];
	return sock_vchan_path(path, sizeof(path), host.vchan_dir, 0, host.domid, 111) &&
	       connect_path(path, out);
}

bool platform_vchan_connect(uint32_t domid, uint32_t port, struct stream *out)
{
	char path[256];
	return sock_vchan_path(path, sizeof(path), host.vchan_dir, domid, host.domid, port) &&
	       connect_path(path, out);
}

bool platform_qrexec_accept(struct stream *out)
{
	struct sock_stream *s = sock_slot();
	if (!s || host.qrexec_listen < 0 || !sock_stream_accept(s, host.qrexec_listen)) {
		if (s)
			s->fd = -1;
		return false;
	}
	watch_fd(s->fd);
	*out = sock_stream_stream(s);
	return true;
}

/* ---- devices ---------------------------------------------------------------- */

#define XS_OWNER_BASE 1000u

/* XenStore callbacks carry (slot, generation) rather than a pointer, so a
 * reply that arrives after the slot was reused is recognised and ignored. */
static void *dev_ctx(const struct client_dev *d)
{
	return (void *)(uintptr_t)(((uintptr_t)d->gen << 8) | (uintptr_t)(d - host.clients)); /* NOLINT(performance-no-int-to-ptr) */
}

static struct client_dev *dev_of(void *ctx)
{
	uintptr_t v = (uintptr_t)ctx;
	struct client_dev *d = &host.clients[v & 0xff];
	return d->used && (uint32_t)(v >> 8) == d->gen ? d : NULL;
}

static void backend_path(struct client_dev *d, const char *key)
{
	size_t b = strlen(d->backend), k = strlen(key);
	if (b + 1 + k >= sizeof(d->path)) {
		d->path[0] = 0;
		return;
	}
	memcpy(d->path, d->backend, b);
	d->path[b] = '/';
	memcpy(d->path + b + 1, key, k + 1);
}

static void on_backend_removed(void *ctx, enum xs_status st, const char *data, size_t len)
{
	struct client_dev *d = dev_of(ctx);
	(void)st;
	(void)data;
	(void)len;
	if (d)
		app_client_closed(host.app, d->cookie);
}

static void on_closed_written(void *ctx, enum xs_status st, const char *data, size_t len)
{
	struct client_dev *d = dev_of(ctx);
	(void)data;
	(void)len;
	/* Closed is written: the toolstack now waits for the directory to go. */
	if (st == XS_OK && d)
		xs_rm(d->xs, d->backend, on_backend_removed, ctx);
}

static void on_state_read(void *ctx, enum xs_status st)
{
	struct client_dev *d = dev_of(ctx);
	if (!d || d->closing)
		return;
	bool gone = st == XS_ENOENT;
	bool closing = strcmp(d->online, "0") == 0 || strcmp(d->state, "5") == 0;
	if (closing && !gone) {
		d->closing = true;
		backend_path(d, "state");
		xs_write_str(d->xs, d->path, "6", on_closed_written, ctx);
	}
}

static void on_online_read(void *ctx, enum xs_status st)
{
	struct client_dev *d = dev_of(ctx);
	(void)st;
	if (!d)
		return;
	backend_path(d, "state");
	xs_read_str(d->xs, d->path, d->state, sizeof(d->state), on_state_read, ctx);
}

static void on_backend_change(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	struct client_dev *d = dev_of(ctx);
	(void)id;
	(void)path;
	(void)len;
	if (!d || d->closing)
		return;
	backend_path(d, "online");
	xs_read_str(d->xs, d->path, d->online, sizeof(d->online), on_online_read, ctx);
}

int platform_client_open(uint32_t domid, uint32_t devid, const char *backend_path_rel,
			 struct xs_client *xs, uint32_t cookie)
{
	for (int i = 0; i < MAX_CLIENT_DEVS; i++) {
		struct client_dev *d = &host.clients[i];
		if (d->used)
			continue;
		uint32_t gen = d->gen + 1;
		memset(d, 0, sizeof(*d));
		d->gen = gen;
		snprintf(d->name, sizeof(d->name), "vif%u.%u", domid, devid);
		d->fd = tap_open(d->name);
		if (d->fd < 0) {
			fprintf(stderr, "host: cannot open TAP %s: %s\n", d->name, strerror(errno));
			return -1;
		}
		d->used = true;
		d->cookie = cookie;
		d->xs = xs;
		snprintf(d->backend, sizeof(d->backend), "%s", backend_path_rel);
		watch_fd(d->fd);
		/* InitWait then Connected at once: a TAP needs no rings. */
		backend_path(d, "state");
		xs_write_str(xs, d->path, "4", NULL, NULL);
		if (xs_watch_add(xs, XS_OWNER_BASE + (uint32_t)i, d->backend, on_backend_change,
				 dev_ctx(d), &d->watch) != XS_OK)
			d->watch = 0;
		return i;
	}
	return -1;
}

void platform_client_close(int dev)
{
	if (dev < 0 || dev >= MAX_CLIENT_DEVS || !host.clients[dev].used)
		return;
	struct client_dev *d = &host.clients[dev];
	xs_watch_remove_owner(d->xs, XS_OWNER_BASE + (uint32_t)dev);
	close(d->fd);
	d->used = false;
	d->fd = -1;
}

bool platform_client_transmit(void *ctx, const uint8_t *frame, size_t len)
{
	intptr_t dev = (intptr_t)ctx;
	if (dev < 0 || dev >= MAX_CLIENT_DEVS || !host.clients[dev].used)
		return false;
	return tap_write(host.clients[dev].fd, frame, len);
}

bool platform_uplink_open(struct xs_client *xs, uint8_t mac[6], uint16_t *mtu)
{
	(void)xs;
	if (!host.uplink_name)
		return false;
	if (host.uplink_fd < 0) {
		host.uplink_fd = tap_open(host.uplink_name);
		if (host.uplink_fd < 0)
			return false;
		watch_fd(host.uplink_fd);
	}
	memcpy(mac, host.uplink_mac, 6);
	*mtu = host.uplink_mtu;
	return true;
}

void platform_uplink_close(void)
{
	/* The TAP stays: in the simulation it stands for the netvm's vif, which
	 * the harness re-plugs into whichever namespace is the netvm now. */
}

bool platform_uplink_transmit(void *ctx, const uint8_t *frame, size_t len)
{
	(void)ctx;
	return host.uplink_fd >= 0 && tap_write(host.uplink_fd, frame, len);
}

/* ---- the loop --------------------------------------------------------------- */

static void drain_devices(uint8_t *buf)
{
	for (int i = 0; i < MAX_CLIENT_DEVS; i++) {
		struct client_dev *d = &host.clients[i];
		for (int k = 0; d->used && k < RX_BUDGET; k++) {
			long n = tap_read(d->fd, buf, FRAME_BUF);
			if (n <= 0)
				break;
			app_client_frame(host.app, d->cookie, buf, (size_t)n, 0, mono_ns());
		}
	}
	for (int k = 0; host.uplink_fd >= 0 && k < RX_BUDGET; k++) {
		long n = tap_read(host.uplink_fd, buf, FRAME_BUF);
		if (n < 0) {
			/* The netvm's end went away (namespace deleted). */
			close(host.uplink_fd);
			host.uplink_fd = -1;
			app_uplink_lost(host.app);
			break;
		}
		if (n == 0)
			break;
		app_uplink_frame(host.app, buf, (size_t)n, 0, mono_ns());
	}
}

static void on_signal(int sig)
{
	(void)sig;
	host.stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qubes-firewall-host [OPTION]...\n"
		"The qubes-c-firewall engine and Qubes control plane as a Linux process:\n"
		"TAP devices stand in for Xen vifs, Unix sockets for XenStore and vchans.\n"
		"For tests and development; in Qubes the firewall runs as the unikernel.\n"
		"\n"
		"  --domid=N          our domain id (default 1)\n"
		"  --vchan-dir=DIR    directory of socket vchans, named\n"
		"                     vchan.<server>.<client>.<port>.sock as Qubes' socket\n"
		"                     vchan does (default /run/qubes-c-firewall). QubesDB is\n"
		"                     reached at vchan.0.<domid>.111.sock; the qrexec agent\n"
		"                     listens at vchan.<domid>.0.512.sock.\n"
		"  --xenstore=PATH    Unix socket of the XenStore daemon (required)\n"
		"  --uplink=IFNAME    TAP device towards the netvm (created if missing)\n"
		"  --uplink-mac=MAC   our MAC on the uplink (default 00:16:3e:5e:6c:01)\n"
		"  --uplink-mtu=N     MTU of the uplink (default 1500)\n"
		"  --max-clients=N    client vifs at once (default 32)\n"
		"  --cmdline=TEXT     the kernel command line, as in the unikernel's\n"
		"                     kernelopts: --ipv4=A --ipv4-gw=A --ipv4-dns=A\n"
		"                     --ipv4-dns2=A --nat-table-size=N (16..1000000,\n"
		"                     default 5000) --log-level=error|warn|info|debug\n"
		"  --help             this text\n"
		"\n"
		"Client vifs are discovered in XenStore under backend/vif/<domid>/<devid>\n"
		"and served on TAP devices named vif<domid>.<devid>. Logs go to stderr.\n");
}

static bool parse_num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"domid", required_argument, NULL, 'd'},   {"vchan-dir", required_argument, NULL, 'v'},
		{"xenstore", required_argument, NULL, 'x'}, {"uplink", required_argument, NULL, 'u'},
		{"uplink-mac", required_argument, NULL, 'm'}, {"uplink-mtu", required_argument, NULL, 't'},
		{"max-clients", required_argument, NULL, 'c'}, {"cmdline", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	const char *kernel_cmdline = "";
	unsigned long n;
	struct app_config cfg = {0};
	int opt;

	for (int i = 0; i < MAX_SOCKS; i++)
		host.socks[i].fd = -1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!parse_num(optarg, 0x7fef, &n))
				goto bad;
			host.domid = (unsigned)n;
			break;
		case 'v':
			host.vchan_dir = optarg;
			break;
		case 'x':
			host.xs_path = optarg;
			break;
		case 'u':
			host.uplink_name = optarg;
			break;
		case 'm':
			if (!netdev_parse_mac(optarg, host.uplink_mac))
				goto bad;
			break;
		case 't':
			if (!parse_num(optarg, 65535, &n) || n < 1280)
				goto bad;
			host.uplink_mtu = (uint16_t)n;
			break;
		case 'c':
			if (!parse_num(optarg, MAX_CLIENT_DEVS, &n) || n == 0)
				goto bad;
			cfg.max_clients = (uint32_t)n;
			break;
		case 'k':
			kernel_cmdline = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !host.xs_path) {
		usage(stderr);
		return 2;
	}
	char err[160];
	if (!cmdline_parse(kernel_cmdline, strlen(kernel_cmdline), &cfg.cmdline, err, sizeof(err))) {
		fprintf(stderr, "qubes-firewall-host: bad --cmdline: %s\n", err);
		return 2;
	}

	uint8_t seed[48];
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed) || !csprng_seed(seed, sizeof(seed))) {
		fprintf(stderr, "qubes-firewall-host: no entropy\n");
		return 1;
	}
	memset(seed, 0, sizeof(seed));
	clock_set_now(mono_ns());
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	clock_set_wall((uint64_t)wall.tv_sec * 1000000000ull + (uint64_t)wall.tv_nsec);

	size_t need = app_memory_needed(&cfg);
	void *mem = malloc(need);
	struct arena arena;
	if (!mem) {
		fprintf(stderr, "qubes-firewall-host: cannot allocate %zu bytes\n", need);
		return 1;
	}
	arena_init(&arena, mem, need);
	host.epfd = epoll_create1(EPOLL_CLOEXEC);
	host.app = app_init(&arena, &cfg);
	if (!host.app || host.epfd < 0) {
		fprintf(stderr, "qubes-firewall-host: start-up failed\n");
		return 1;
	}
	arena_seal(&arena);
	fprintf(stderr, "qubes-firewall-host: %zu KiB of memory for the firewall\n",
		arena_used(&arena) / 1024);

	char path[256];
	if (!sock_vchan_path(path, sizeof(path), host.vchan_dir, host.domid, 0, 512) ||
	    (host.qrexec_listen = sock_listen(path)) < 0) {
		fprintf(stderr, "qubes-firewall-host: cannot listen on %s: %s\n", path, strerror(errno));
		return 1;
	}
	watch_fd(host.qrexec_listen);

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	static uint8_t buf[FRAME_BUF];
	struct epoll_event evs[64];
	while (!host.stop) {
		uint64_t now = mono_ns();
		drain_devices(buf);
		bool more = app_step(host.app, now);
		now = mono_ns();
		uint64_t deadline = app_next_deadline(host.app, now);
		uint64_t wait_ms = (deadline - now + 999999) / 1000000;
		int timeout = more ? 0 : (int)(wait_ms > 1000 ? 1000 : wait_ms);
		(void)epoll_wait(host.epfd, evs, 64, timeout);
	}
	app_flush_log();
	fprintf(stderr, "qubes-firewall-host: stopped\n");
	unlink(path);
	return 0;

bad:
	fprintf(stderr, "qubes-firewall-host: bad value for an option: %s\n", optarg);
	usage(stderr);
	return 2;
}
