/* qubesdb-dom0.c — dom0's per-VM QubesDB daemon for the real-Xen test tier
 * (docs/xen-tier.md). Speaks the QubesDB vchan protocol of
 * specs/qubes-protocols.md §2 as the vchan SERVER on port 111, over real
 * vchan (Debian's libxenvchan), like qubesdb-daemon does in Qubes dom0.
 *
 *   qubesdb-dom0 DOMID KEYS-FILE
 *
 * KEYS-FILE: the initial database, one "path<TAB>value" per line, in the
 * order dom0 writes it (tests/sim/qubessim/world.py produces it). Afterwards
 * stdin takes dom0's later operations, one per line:
 *   W <path> <value...>     write (forwarded once the VM has synced)
 *   R <path>                remove; a path ending in '/' removes the subtree
 * Events go to stdout as "XW qdb-<what> ..." lines (the harness reads them).
 *
 * Runs inside the test dom0 only; never exposed to anything but the firewall
 * under test. Like the real daemon, a malformed message from the VM ends the
 * session (here: the program exits non-zero with a line saying why). */
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

#define QDB_PORT 111
#define QDB_MAX_PATH 64
#define QDB_MAX_DATA 3072
#define HDR_LEN 72
#define MAX_KEYS 1024

enum {
	QDB_CMD_READ = 0,
	QDB_CMD_WRITE = 1,
	QDB_CMD_MULTIREAD = 2,
	QDB_CMD_LIST = 3,
	QDB_CMD_RM = 4,
	QDB_RESP_OK = 7,
	QDB_RESP_ERROR_NOENT = 8,
	QDB_RESP_ERROR = 9,
	QDB_RESP_MULTIREAD = 11,
};

struct entry {
	char path[QDB_MAX_PATH];
	char *value;
	size_t len;
};

static struct entry db[MAX_KEYS];
static size_t ndb;
static struct libxenvchan *vc;
static int domid;
static int synced;

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

static int path_ok(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n >= QDB_MAX_PATH || p[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("-_/.:@", c)))
			return 0;
	}
	return 1;
}

static struct entry *find(const char *path)
{
	for (size_t i = 0; i < ndb; i++)
		if (strcmp(db[i].path, path) == 0)
			return &db[i];
	return NULL;
}

static int store(const char *path, const char *value, size_t len)
{
	struct entry *e = find(path);
	if (!e) {
		if (ndb == MAX_KEYS)
			return -1;
		e = &db[ndb++];
		snprintf(e->path, sizeof(e->path), "%s", path);
		e->value = NULL;
	}
	free(e->value);
	e->value = malloc(len + 1);
	if (!e->value) {
		perror("malloc");
		exit(1);
	}
	memcpy(e->value, value, len);
	e->value[len] = '\0';
	e->len = len;
	return 0;
}

/* Removes path, or every key under it when it ends in '/'; returns the count. */
static size_t remove_keys(const char *path)
{
	size_t n = strlen(path), removed = 0, j = 0;
	int prefix = n > 0 && path[n - 1] == '/';
	for (size_t i = 0; i < ndb; i++) {
		int hit = prefix ? strncmp(db[i].path, path, n) == 0 : strcmp(db[i].path, path) == 0;
		if (hit) {
			free(db[i].value);
			removed++;
		} else {
			db[j++] = db[i];
		}
	}
	ndb = j;
	return removed;
}

static int send_msg(int type, const char *path, const void *data, size_t len)
{
	unsigned char hdr[HDR_LEN];
	uint32_t l = (uint32_t)len;
	memset(hdr, 0, sizeof(hdr));
	hdr[0] = (unsigned char)type;
	if (path) {
		size_t n = strnlen(path, QDB_MAX_PATH - 1);
		memcpy(hdr + 1, path, n);
	}
	memcpy(hdr + 68, &l, 4); /* little-endian host */
	vc->blocking = 1;
	if (libxenvchan_send(vc, hdr, sizeof(hdr)) != (int)sizeof(hdr))
		return -1;
	if (len && libxenvchan_send(vc, data, len) != (int)len)
		return -1;
	return 0;
}

static void load_keys(const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	if (!f) {
		perror(file);
		exit(1);
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab = '\0';
		if (!path_ok(line) || strlen(tab + 1) >= QDB_MAX_DATA || store(line, tab + 1,
		    strlen(tab + 1)) < 0) {
			fprintf(stderr, "qubesdb-dom0: bad initial key %s\n", line);
			exit(1);
		}
	}
	free(line);
	fclose(f);
}

static int open_server(void)
{
	char xs[96];
	snprintf(xs, sizeof(xs), "/local/domain/0/data/vchan/%d/%d", domid, QDB_PORT);
	vc = libxenvchan_server_init(NULL, domid, xs, 4096, 4096);
	if (!vc) {
		say("qdb-error server_init %s: %s", xs, strerror(errno));
		return -1;
	}
	vc->blocking = 0;
	synced = 0;
	say("qdb-listening dom%d port %d at %.2f", domid, QDB_PORT, now_s());
	return 0;
}

/* One message from the VM; returns -1 when the session must end. */
static int handle_vm_msg(void)
{
	unsigned char hdr[HDR_LEN];
	char path[QDB_MAX_PATH], *data = NULL;
	uint32_t len;
	vc->blocking = 0;
	if (libxenvchan_data_ready(vc) < HDR_LEN)
		return 1;
	if (libxenvchan_recv(vc, hdr, sizeof(hdr)) != (int)sizeof(hdr))
		return -1;
	memcpy(path, hdr + 1, QDB_MAX_PATH);
	memcpy(&len, hdr + 68, 4);
	if (memchr(path, '\0', sizeof(path)) == NULL) {
		say("qdb-fatal unterminated path");
		return -1;
	}
	if (len >= QDB_MAX_DATA) {
		say("qdb-fatal data_len %u", (unsigned)len);
		return -1;
	}
	data = malloc(len + 1);
	if (!data)
		return -1;
	if (len) {
		vc->blocking = 1;
		if (libxenvchan_recv(vc, data, len) != (int)len) {
			free(data);
			return -1;
		}
	}
	data[len] = '\0';
	int rc = 0;
	switch (hdr[0]) {
	case QDB_CMD_MULTIREAD:
		if (synced) {
			say("qdb-fatal spurious MULTIREAD");
			rc = -1;
			break;
		}
		for (size_t i = 0; i < ndb && rc == 0; i++)
			if (strncmp(db[i].path, path, strlen(path)) == 0)
				rc = send_msg(QDB_RESP_MULTIREAD, db[i].path, db[i].value, db[i].len);
		if (rc == 0)
			rc = send_msg(QDB_RESP_MULTIREAD, NULL, NULL, 0);
		synced = 1;
		say("qdb-synced %zu keys at %.2f", ndb, now_s());
		break;
	case QDB_CMD_WRITE:
		if (!path_ok(path) || memchr(data, '\0', len)) {
			rc = send_msg(QDB_RESP_ERROR, path, NULL, 0);
			break;
		}
		store(path, data, len);
		say("qdb-vm-write %s %s", path, data);
		rc = send_msg(QDB_RESP_OK, path, NULL, 0);
		break;
	case QDB_CMD_RM:
		if (remove_keys(path) == 0) {
			send_msg(QDB_RESP_ERROR_NOENT, path, NULL, 0);
			say("qdb-fatal VM removed missing key %s", path);
			rc = -1;
			break;
		}
		rc = send_msg(QDB_RESP_OK, path, NULL, 0);
		break;
	case QDB_RESP_OK:
		break;
	case QDB_RESP_ERROR:
		say("qdb-vm-error %s", path);
		break;
	default:
		say("qdb-fatal invalid message type %u", (unsigned)hdr[0]);
		rc = -1;
	}
	free(data);
	return rc < 0 ? -1 : 0;
}

static void handle_cmd(char *line)
{
	char *path, *value;
	size_t n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n < 3 || line[1] != ' ')
		return;
	path = line + 2;
	value = strchr(path, ' ');
	if (value)
		*value++ = '\0';
	else
		value = "";
	if (!path_ok(path)) {
		say("qdb-error bad path %s", path);
		return;
	}
	if (line[0] == 'W') {
		store(path, value, strlen(value));
		if (synced && send_msg(QDB_CMD_WRITE, path, value, strlen(value)) < 0)
			say("qdb-error send failed");
	} else if (line[0] == 'R') {
		if (remove_keys(path) && synced && send_msg(QDB_CMD_RM, path, NULL, 0) < 0)
			say("qdb-error send failed");
	}
}

int main(int argc, char **argv)
{
	char line[8192];
	size_t used = 0;
	int stdin_open = 1;
	if (argc != 3) {
		fprintf(stderr, "usage: qubesdb-dom0 DOMID KEYS-FILE\n");
		return 2;
	}
	domid = atoi(argv[1]);
	load_keys(argv[2]);
	if (open_server() < 0)
		return 1;
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = libxenvchan_fd_for_select(vc), .events = POLLIN },
			{ .fd = stdin_open ? 0 : -1, .events = POLLIN },
		};
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN)
			libxenvchan_wait(vc);
		int r;
		while ((r = handle_vm_msg()) == 0)
			;
		if (r < 0 || libxenvchan_is_open(vc) == 0) {
			say("qdb-closed %s at %.2f", r < 0 ? "(protocol error)" : "(VM went away)",
			    now_s());
			libxenvchan_close(vc);
			if (r < 0)
				return 1;
			if (open_server() < 0)
				return 1;
			continue;
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			ssize_t got = read(0, line + used, sizeof(line) - 1 - used);
			if (got <= 0) {
				stdin_open = 0;
				continue;
			}
			used += (size_t)got;
			line[used] = '\0';
			char *nl;
			while ((nl = strchr(line, '\n')) != NULL) {
				*nl = '\0';
				handle_cmd(line);
				used -= (size_t)(nl + 1 - line);
				memmove(line, nl + 1, used + 1);
			}
			if (used == sizeof(line) - 1)
				used = 0; /* an over-long line: dropped */
		}
	}
}
