/* qrexec.c — qrexec agent: control channel, data channels, built-in
 * services (spec §3).
 *
 * Every length from dom0 is checked before it is used; bodies are consumed
 * incrementally from any split of the stream and only the bytes we need are
 * kept (the rest is discarded by count, so framing is never lost). Output is
 * written as whole messages only when the stream has room. Must never wait,
 * never grow, and never stop the firewall: a broken control channel is
 * closed and the owner attaches the next one. */
#include "qubes/qrexec.h"

#include "base/byteorder.h"
#include "base/clock.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"

#define DOMID_FIRST_RESERVED 0x7FF0u
#define CTL_POLL_BUDGET 32u
#define CH_POLL_BYTES 65536u
#define OUT_CHUNK QREXEC_CHUNK_V2
#define NAME_SHOWN_MAX 64u

enum out_step { STEP_STDOUT, STEP_STDERR, STEP_STDOUT_EOF, STEP_STDERR_EOF, STEP_EXIT, STEP_DONE };

/* ---- parsing helpers ----------------------------------------------------- */

static bool starts_with(const char *p, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

enum qrexec_service qrexec_parse_cmdline(const char *cmd, size_t len, const char **name,
					 size_t *name_len)
{
	static const struct {
		const char *name;
		enum qrexec_service svc;
	} known[] = {
		{ "qubes.WaitForSession", QREXEC_SVC_WAIT_FOR_SESSION },
		{ "qubes.SetDateTime", QREXEC_SVC_SET_DATE_TIME },
		{ "qubes.FirewallStatus", QREXEC_SVC_FIREWALL_STATUS },
	};
	const char *p = cmd;
	const char *end = cmd + len;

	/* "<user>:" (DEFAULT, root, user...) unless the line starts with the
	 * RPC marker itself. */
	if (!starts_with(p, end, "QUBESRPC ")) {
		const char *colon = memchr(p, ':', len);
		if (colon)
			p = colon + 1;
	}
	if (starts_with(p, end, "nogui:"))
		p += 6;
	if (!starts_with(p, end, "QUBESRPC ")) {
		*name = p;
		*name_len = (size_t)(end - p);
		return QREXEC_SVC_UNKNOWN;
	}
	p += 9;
	const char *svc_end = memchr(p, ' ', (size_t)(end - p));
	if (!svc_end)
		svc_end = end;
	const char *name_end = memchr(p, '+', (size_t)(svc_end - p));
	if (!name_end)
		name_end = svc_end;
	*name = p;
	*name_len = (size_t)(name_end - p);
	for (size_t i = 0; i < ARRAY_LEN(known); i++) {
		size_t kl = strlen(known[i].name);
		if (*name_len == kl && memcmp(p, known[i].name, kl) == 0)
			return known[i].svc;
	}
	return QREXEC_SVC_UNKNOWN;
}

static bool parse_digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10u + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

static bool is_leap(unsigned y)
{
	return (y % 4u == 0 && y % 100u != 0) || y % 400u == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1970). */
static int64_t days_since_epoch(unsigned y, unsigned m, unsigned d)
{
	static const unsigned before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
	int64_t days = 0;
	for (unsigned yy = 1970; yy < y; yy++)
		days += is_leap(yy) ? 366 : 365;
	days += before[m - 1];
	if (m > 2 && is_leap(y))
		days++;
	return days + (int64_t)d - 1;
}

bool qrexec_parse_datetime(const char *s, size_t len, uint64_t *epoch_ns)
{
	static const unsigned dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, se, oh = 0, om = 0;
	int sign = 0;

	if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		return false;
	if (!parse_digits(s, 4, &y) || !parse_digits(s + 5, 2, &mo) ||
	    !parse_digits(s + 8, 2, &d) || !parse_digits(s + 11, 2, &h) ||
	    !parse_digits(s + 14, 2, &mi) || !parse_digits(s + 17, 2, &se))
		return false;
	if (s[19] == 'Z') {
		if (len != 20)
			return false;
	} else if (s[19] == '+' || s[19] == '-') {
		sign = s[19] == '+' ? 1 : -1;
		if (len == 24) {
			if (!parse_digits(s + 20, 2, &oh) || !parse_digits(s + 22, 2, &om))
				return false;
		} else if (len == 25) {
			if (s[22] != ':' || !parse_digits(s + 20, 2, &oh) ||
			    !parse_digits(s + 23, 2, &om))
				return false;
		} else {
			return false;
		}
	} else {
		return false;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59 || oh > 23 ||
	    om > 59)
		return false;
	unsigned maxd = dim[mo - 1] + (mo == 2 && is_leap(y) ? 1u : 0u);
	if (d > maxd)
		return false;
	int64_t t = days_since_epoch(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + se;
	t -= sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	if (t < 0)
		return false;
	*epoch_ns = (uint64_t)t * 1000000000ull;
	return true;
}

/* ---- control channel output ---------------------------------------------- */

static bool ctl_queue(struct qrexec_agent *a, uint32_t type, const void *body, uint32_t len)
{
	if (sizeof(a->tx) - a->tx_len < QREXEC_HDR_LEN + len)
		return false;
	uint8_t *m = a->tx + a->tx_len;
	store_le32(m, type);
	store_le32(m + 4, len);
	if (len)
		memcpy(m + QREXEC_HDR_LEN, body, len);
	a->tx_len += QREXEC_HDR_LEN + len;
	return true;
}

static void ctl_flush(struct qrexec_agent *a)
{
	while (a->attached && !a->dead && a->tx_len > 0) {
		size_t want = a->tx_partial;
		if (want == 0) {
			want = QREXEC_HDR_LEN + load_le32(a->tx + 4);
			if (a->control.ops->write_space(a->control.ctx) < want)
				return;
		}
		int n = a->control.ops->write(a->control.ctx, a->tx, want);
		if (n < 0 || (size_t)n > want) {
			a->dead = true;
			return;
		}
		if (n == 0)
			return;
		memmove(a->tx, a->tx + n, a->tx_len - (size_t)n);
		a->tx_len -= (size_t)n;
		a->tx_partial = want - (size_t)n;
	}
}

static void ctl_disconnect(struct qrexec_agent *a, const char *why)
{
	if (!a->attached)
		return;
	a->control.ops->close(a->control.ctx);
	a->attached = false;
	a->dead = false;
	a->state = QREXEC_WAITING;
	a->tx_len = a->tx_partial = 0;
	log_warn("qrexec: control channel closed (%s); waiting for dom0 to reconnect", why);
}

/* Tells the daemon that asked for (domid, port) that the port is free.
 * Never to a newer daemon session: it did not allocate that port. */
static void send_terminated(struct qrexec_agent *a, uint32_t session, uint32_t domid,
			    uint32_t port)
{
	uint8_t b[8];
	if (!a->attached || a->state != QREXEC_READY || session != a->session)
		return;
	store_le32(b, domid);
	store_le32(b + 4, port);
	if (!ctl_queue(a, QREXEC_MSG_CONNECTION_TERMINATED, b, sizeof(b)))
		log_warn("qrexec: control queue full, CONNECTION_TERMINATED for port %u lost",
			 port);
}

/* ---- data channels ------------------------------------------------------- */

static uint32_t chunk_limit(uint32_t version)
{
	return version >= 3 ? QREXEC_CHUNK_V3 : QREXEC_CHUNK_V2;
}

static void channel_end(struct qrexec_agent *a, struct qrexec_channel *ch, const char *why)
{
	if (why)
		log_warn("qrexec: data channel to %u:%u aborted: %s", ch->domid, ch->port, why);
	ch->s.ops->close(ch->s.ctx);
	ch->used = false;
	send_terminated(a, ch->session, ch->domid, ch->port);
}

/* A service or command name from dom0 made fit for a log line or a
 * message: printable ASCII only, at most NAME_SHOWN_MAX characters. */
static void sanitize_name(char shown[NAME_SHOWN_MAX + 4], const char *name, size_t n)
{
	size_t k = MIN(n, (size_t)NAME_SHOWN_MAX);
	for (size_t i = 0; i < k; i++) {
		shown[i] = name[i];
		if (name[i] < 0x20 || name[i] >= 0x7f)
			shown[i] = '?';
	}
	shown[k] = '\0';
	if (n > k)
		memcpy(shown + k, "...", 4);
}

static void set_unsupported(struct qrexec_channel *ch, const char *name, size_t n)
{
	char shown[NAME_SHOWN_MAX + 4];
	sanitize_name(shown, name, n);
	int r = fmt_snprintf(ch->err, sizeof(ch->err),
			     "service %s not supported by qubes-c-firewall\n", shown);
	ch->err_len = MIN((size_t)(r < 0 ? 0 : r), sizeof(ch->err) - 1);
	ch->exit_code = QREXEC_EXIT_NOT_FOUND;
}

static void set_error(struct qrexec_channel *ch, const char *msg, int32_t code)
{
	size_t n = MIN(strlen(msg), sizeof(ch->err));
	memcpy(ch->err, msg, n);
	ch->err_len = n;
	ch->exit_code = code;
}

static void channel_start(struct qrexec_agent *a, uint32_t type, uint32_t domid, uint32_t port,
			  const char *cmd, size_t cmd_len, bool cmd_ok, uint64_t now_ns)
{
	struct qrexec_channel *ch = NULL;
	for (size_t i = 0; i < QREXEC_MAX_CHANNELS; i++) {
		if (!a->ch[i].used) {
			ch = &a->ch[i];
			break;
		}
	}
	a->commands++;
	if (domid >= DOMID_FIRST_RESERVED || port == 0) {
		a->bad_messages++;
		log_warn("qrexec: exec request with bad domain %u / port %u, ignored", domid, port);
		return;
	}
	if (!ch) {
		a->refused++;
		log_warn("qrexec: %u data channels busy, refusing request for %u:%u",
			 QREXEC_MAX_CHANNELS, domid, port);
		send_terminated(a, a->session, domid, port);
		return;
	}
	struct stream s;
	if (!a->connector.connect || !a->connector.connect(a->connector.ctx, domid, port, &s)) {
		log_warn("qrexec: cannot open data channel to %u:%u", domid, port);
		send_terminated(a, a->session, domid, port);
		return;
	}
	memset(ch, 0, sizeof(*ch));
	ch->used = true;
	ch->s = s;
	ch->domid = domid;
	ch->port = port;
	ch->start_ns = now_ns;
	ch->session = a->session;
	ch->just_exec = type == QREXEC_MSG_JUST_EXEC;
	ch->step = STEP_STDOUT;
	if (!cmd_ok) {
		ch->svc = QREXEC_SVC_UNKNOWN;
		set_error(ch, "invalid or too long command line (qubes-c-firewall)\n",
			  QREXEC_EXIT_NOT_FOUND);
		return;
	}
	const char *name;
	size_t name_len;
	ch->svc = qrexec_parse_cmdline(cmd, cmd_len, &name, &name_len);
	if (ch->svc == QREXEC_SVC_UNKNOWN)
		set_unsupported(ch, name, name_len);
	char shown[NAME_SHOWN_MAX + 4];
	sanitize_name(shown, name, name_len);
	log_info("qrexec: request for %s from domain %u", shown, domid);
}

static void feed_line(struct qrexec_channel *ch, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && !ch->line_done; i++) {
		if (p[i] == '\n') {
			ch->line_done = true;
		} else if (ch->line_len < sizeof(ch->line)) {
			ch->line[ch->line_len++] = (char)p[i];
		} else {
			ch->line_done = true;
			ch->line_overflow = true;
		}
	}
}

/* Decides the result once the service has what it needs. */
static void channel_run(struct qrexec_agent *a, struct qrexec_channel *ch)
{
	if (ch->just_exec)
		ch->stdin_eof = true; /* JUST_EXEC has no stdin */
	switch (ch->svc) {
	case QREXEC_SVC_WAIT_FOR_SESSION:
		ch->exit_code = 0;
		break;
	case QREXEC_SVC_FIREWALL_STATUS:
		if (a->services.firewall_status) {
			size_t n = a->services.firewall_status(a->services.ctx, ch->out,
							       sizeof(ch->out));
			ch->out_len = MIN(n, sizeof(ch->out));
		}
		ch->exit_code = 0;
		break;
	case QREXEC_SVC_SET_DATE_TIME: {
		uint64_t ns;
		if (!ch->line_done && !ch->stdin_eof)
			return; /* wait for the line */
		if (ch->line_overflow) {
			set_error(ch, "qubes.SetDateTime: input line too long\n", 1);
		} else if (ch->line_len == 0) {
			set_error(ch, "qubes.SetDateTime: no date on stdin\n", 1);
		} else if (!qrexec_parse_datetime(ch->line, ch->line_len, &ns)) {
			set_error(ch, "qubes.SetDateTime: cannot parse date (want date -u -Iseconds)\n", 1);
			log_warn("qrexec: qubes.SetDateTime: unparsable date");
		} else {
			clock_set_wall(ns);
			ch->exit_code = 0;
			log_info("qrexec: wall clock set to %.*s", (int)ch->line_len, ch->line);
		}
		break;
	}
	case QREXEC_SVC_UNKNOWN:
	default:
		break; /* err/exit_code set at start */
	}
	ch->running = true;
	if (ch->just_exec)
		ch->step = STEP_EXIT;
}

/* Writes one message if the whole of it fits now. Returns 1 sent, 0 no
 * room, -1 stream broken. */
static int ch_send(struct qrexec_channel *ch, uint32_t type, const void *body, uint32_t len)
{
	uint8_t h[QREXEC_HDR_LEN];
	if (ch->s.ops->write_space(ch->s.ctx) < QREXEC_HDR_LEN + (size_t)len)
		return 0;
	store_le32(h, type);
	store_le32(h + 4, len);
	int n = ch->s.ops->write(ch->s.ctx, h, sizeof(h));
	if (n != (int)sizeof(h))
		return -1;
	if (len) {
		n = ch->s.ops->write(ch->s.ctx, body, len);
		if (n != (int)len)
			return -1;
	}
	return 1;
}

/* Sends data from buf[*sent..len) in chunks that fit. */
static int ch_send_data(struct qrexec_channel *ch, uint32_t type, const char *buf, size_t len,
			size_t *sent)
{
	size_t space = ch->s.ops->write_space(ch->s.ctx);
	if (space <= QREXEC_HDR_LEN)
		return 0;
	size_t n = MIN(len - *sent, MIN(space - QREXEC_HDR_LEN, (size_t)OUT_CHUNK));
	int r = ch_send(ch, type, buf + *sent, (uint32_t)n);
	if (r == 1)
		*sent += n;
	return r;
}

/* Advances the output sequence; returns false when the channel ended. */
static bool channel_output(struct qrexec_agent *a, struct qrexec_channel *ch)
{
	while (ch->step != STEP_DONE) {
		int r;
		uint8_t code[4];
		switch (ch->step) {
		case STEP_STDOUT:
			if (ch->out_sent >= ch->out_len) {
				ch->step = STEP_STDERR;
				continue;
			}
			r = ch_send_data(ch, QREXEC_MSG_DATA_STDOUT, ch->out, ch->out_len,
					 &ch->out_sent);
			break;
		case STEP_STDERR:
			if (ch->err_sent >= ch->err_len) {
				ch->step = STEP_STDOUT_EOF;
				continue;
			}
			r = ch_send_data(ch, QREXEC_MSG_DATA_STDERR, ch->err, ch->err_len,
					 &ch->err_sent);
			break;
		case STEP_STDOUT_EOF:
			r = ch_send(ch, QREXEC_MSG_DATA_STDOUT, NULL, 0);
			if (r == 1)
				ch->step = STEP_STDERR_EOF;
			break;
		case STEP_STDERR_EOF:
			r = ch_send(ch, QREXEC_MSG_DATA_STDERR, NULL, 0);
			if (r == 1)
				ch->step = STEP_EXIT;
			break;
		case STEP_EXIT:
		default:
			store_le32(code, (uint32_t)ch->exit_code);
			r = ch_send(ch, QREXEC_MSG_DATA_EXIT_CODE, code, sizeof(code));
			if (r == 1)
				ch->step = STEP_DONE;
			break;
		}
		if (r < 0) {
			channel_end(a, ch, "write failed");
			return false;
		}
		if (r == 0)
			return true;
	}
	channel_end(a, ch, NULL);
	return false;
}

/* Handles a complete data-channel header. Returns false on protocol error. */
static bool ch_header(struct qrexec_channel *ch)
{
	uint32_t type = load_le32(ch->hdr);
	uint32_t len = load_le32(ch->hdr + 4);
	if (!ch->hello_done) {
		if (type != QREXEC_MSG_HELLO || len != 4)
			return false;
	} else if (len > chunk_limit(ch->version)) {
		return false;
	} else if (type != QREXEC_MSG_DATA_STDIN) {
		log_warn("qrexec: unexpected message 0x%x on a data channel, ignored", type);
	}
	ch->body_type = type;
	ch->body_left = len;
	ch->in_body = true;
	return true;
}

/* Consumes body bytes; returns false on protocol error. */
static bool ch_body(struct qrexec_channel *ch, const uint8_t *p, size_t n)
{
	if (!ch->hello_done) {
		/* ch_header allowed only HELLO with a 4-byte body here; a later
		 * HELLO is an ignored message like any other. */
		if (ch->hello_have + n > sizeof(ch->hello_body))
			return false;
		memcpy(ch->hello_body + ch->hello_have, p, n);
		ch->hello_have += n;
	} else if (ch->body_type == QREXEC_MSG_DATA_STDIN && ch->svc == QREXEC_SVC_SET_DATE_TIME) {
		feed_line(ch, p, n);
	}
	ch->body_left -= (uint32_t)n;
	if (ch->body_left > 0)
		return true;
	ch->in_body = false;
	if (!ch->hello_done) {
		uint32_t v = load_le32(ch->hello_body);
		if (v < QREXEC_PROTOCOL_MIN) {
			log_warn("qrexec: data peer speaks protocol %u, need >= 2", v);
			return false;
		}
		ch->version = MIN(v, (uint32_t)QREXEC_PROTOCOL_VERSION);
		ch->hello_done = true;
	}
	return true;
}

/* Returns true when more work is pending. */
static bool channel_poll(struct qrexec_agent *a, struct qrexec_channel *ch, uint64_t now_ns)
{
	if (now_ns > ch->start_ns && now_ns - ch->start_ns > QREXEC_CHANNEL_TIMEOUT_NS) {
		channel_end(a, ch, "timed out");
		return false;
	}
	if (!ch->hello_sent) {
		uint8_t v[4];
		store_le32(v, QREXEC_PROTOCOL_VERSION);
		int r = ch_send(ch, QREXEC_MSG_HELLO, v, sizeof(v));
		if (r < 0) {
			channel_end(a, ch, "write failed");
			return false;
		}
		ch->hello_sent = r == 1;
	}

	size_t budget = CH_POLL_BYTES;
	uint8_t buf[256] = { 0 };
	while (budget > 0) {
		int n;
		if (!ch->in_body) {
			n = ch->s.ops->read(ch->s.ctx, ch->hdr + ch->hdr_have,
					    QREXEC_HDR_LEN - ch->hdr_have);
		} else {
			/* in_body implies body_left > 0 */
			n = ch->s.ops->read(ch->s.ctx, buf, MIN((size_t)ch->body_left, sizeof(buf)));
		}
		if (n < 0) {
			/* Closed before our EXIT_CODE went out: nothing left to
			 * deliver to. */
			channel_end(a, ch, "peer closed the data channel");
			return false;
		}
		if (n == 0)
			break;
		budget -= MIN(budget, (size_t)n);
		if (!ch->in_body) {
			ch->hdr_have += (size_t)n;
			if (ch->hdr_have < QREXEC_HDR_LEN)
				continue;
			ch->hdr_have = 0;
			if (!ch_header(ch)) {
				channel_end(a, ch, "protocol error");
				return false;
			}
			if (ch->body_left == 0) {
				ch->in_body = false;
				if (ch->body_type == QREXEC_MSG_DATA_STDIN)
					ch->stdin_eof = true;
			}
			continue;
		}
		if (!ch_body(ch, buf, (size_t)n)) {
			channel_end(a, ch, "protocol error");
			return false;
		}
	}

	if (!ch->running && ch->hello_done && ch->hello_sent)
		channel_run(a, ch);
	if (ch->running && !channel_output(a, ch))
		return false;
	return budget == 0;
}

/* ---- control channel input ----------------------------------------------- */

static void ctl_message(struct qrexec_agent *a, uint64_t now_ns)
{
	uint32_t type = a->body_type;
	uint32_t len = a->body_len;

	if (a->state == QREXEC_HELLO) {
		uint32_t v = load_le32(a->body);
		if (v < QREXEC_PROTOCOL_MIN) {
			log_warn("qrexec: dom0 speaks protocol %u, need >= 2", v);
			a->dead = true;
			return;
		}
		a->version = MIN(v, (uint32_t)QREXEC_PROTOCOL_VERSION);
		a->state = QREXEC_READY;
		log_info("qrexec: connected to dom0, protocol %u", a->version);
		return;
	}
	switch (type) {
	case QREXEC_MSG_EXEC_CMDLINE:
	case QREXEC_MSG_JUST_EXEC: {
		if (len < 8 || len > 8 + QREXEC_MAX_CMD_LEN) {
			a->bad_messages++;
			log_warn("qrexec: exec request with bad length %u, ignored", len);
			return;
		}
		uint32_t domid = load_le32(a->body);
		uint32_t port = load_le32(a->body + 4);
		size_t cmd_len = len - 8;
		const char *cmd = (const char *)a->body + 8;
		const char *nul = NULL;
		if (cmd_len <= QREXEC_CMDLINE_MAX)
			nul = memchr(cmd, 0, cmd_len);
		if (!nul) {
			a->bad_messages++;
			log_warn("qrexec: command line unterminated or longer than %u bytes",
				 QREXEC_CMDLINE_MAX);
		}
		channel_start(a, type, domid, port, cmd, nul ? (size_t)(nul - cmd) : 0, nul != NULL,
			      now_ns);
		return;
	}
	case QREXEC_MSG_SERVICE_CONNECT:
	case QREXEC_MSG_SERVICE_REFUSED:
		/* Answers to service calls we never make (§3.5). */
		a->bad_messages++;
		log_warn("qrexec: unexpected 0x%x for a call we never made, ignored", type);
		return;
	default:
		a->bad_messages++;
		log_warn("qrexec: unexpected control message 0x%x (len %u), ignored", type, len);
		return;
	}
}

/* Validates a control header; returns false on a fatal protocol error. */
static bool ctl_header(struct qrexec_agent *a)
{
	a->body_type = load_le32(a->hdr);
	a->body_len = load_le32(a->hdr + 4);
	a->body_have = 0;
	if (a->state == QREXEC_HELLO &&
	    (a->body_type != QREXEC_MSG_HELLO || a->body_len != 4)) {
		log_warn("qrexec: dom0 did not start with HELLO (type 0x%x len %u)", a->body_type,
			 a->body_len);
		return false;
	}
	a->in_body = true;
	return true;
}

static bool control_poll(struct qrexec_agent *a, uint64_t now_ns)
{
	unsigned budget = CTL_POLL_BUDGET;
	while (a->attached && !a->dead) {
		int n;
		uint8_t scratch[256];
		if (!a->in_body) {
			n = a->control.ops->read(a->control.ctx, a->hdr + a->hdr_have,
						 QREXEC_HDR_LEN - a->hdr_have);
		} else if (a->body_have < a->body_len) {
			size_t left = a->body_len - a->body_have;
			if (a->body_have < sizeof(a->body)) {
				size_t want = MIN(left, sizeof(a->body) - a->body_have);
				n = a->control.ops->read(a->control.ctx, a->body + a->body_have,
							 want);
			} else {
				n = a->control.ops->read(a->control.ctx, scratch,
							 MIN(left, sizeof(scratch)));
			}
		} else {
			n = 1; /* empty body: complete already */
		}
		if (n < 0) {
			ctl_disconnect(a, "dom0 closed it");
			return false;
		}
		if (n == 0)
			break;
		if (!a->in_body) {
			a->hdr_have += (size_t)n;
			if (a->hdr_have < QREXEC_HDR_LEN)
				continue;
			a->hdr_have = 0;
			if (!ctl_header(a)) {
				a->dead = true;
				break;
			}
			if (a->body_len > 0)
				continue;
		} else if (a->body_have < a->body_len) {
			a->body_have += (uint32_t)n;
			if (a->body_have < a->body_len)
				continue;
		}
		a->in_body = false;
		ctl_message(a, now_ns);
		if (--budget == 0)
			return true;
	}
	return false;
}

/* ---- public -------------------------------------------------------------- */

void qrexec_init(struct qrexec_agent *a, const struct qrexec_connector *conn,
		 const struct qrexec_services *svc)
{
	memset(a, 0, sizeof(*a));
	if (conn)
		a->connector = *conn;
	if (svc)
		a->services = *svc;
	a->state = QREXEC_WAITING;
}

void qrexec_attach(struct qrexec_agent *a, struct stream control)
{
	uint8_t v[4];
	if (a->attached)
		a->control.ops->close(a->control.ctx);
	a->control = control;
	a->attached = true;
	a->session++;
	a->dead = false;
	a->state = QREXEC_HELLO;
	a->version = 0;
	a->hdr_have = 0;
	a->in_body = false;
	a->tx_len = a->tx_partial = 0;
	store_le32(v, QREXEC_PROTOCOL_VERSION);
	bool ok = ctl_queue(a, QREXEC_MSG_HELLO, v, sizeof(v));
	ASSERT(ok);
	ctl_flush(a);
}

bool qrexec_poll(struct qrexec_agent *a, uint64_t now_ns)
{
	bool more = false;
	if (a->attached) {
		ctl_flush(a);
		more = control_poll(a, now_ns);
	}
	for (size_t i = 0; i < QREXEC_MAX_CHANNELS; i++) {
		if (a->ch[i].used && channel_poll(a, &a->ch[i], now_ns))
			more = true;
	}
	if (a->attached)
		ctl_flush(a);
	if (a->dead)
		ctl_disconnect(a, "protocol error or write failure");
	return more;
}

void qrexec_close(struct qrexec_agent *a)
{
	for (size_t i = 0; i < QREXEC_MAX_CHANNELS; i++) {
		if (a->ch[i].used) {
			a->ch[i].s.ops->close(a->ch[i].s.ctx);
			a->ch[i].used = false;
		}
	}
	if (a->attached) {
		a->control.ops->close(a->control.ctx);
		a->attached = false;
	}
	a->dead = false;
	a->state = QREXEC_WAITING;
}

enum qrexec_state qrexec_state(const struct qrexec_agent *a)
{
	return a->state;
}

uint32_t qrexec_version(const struct qrexec_agent *a)
{
	return a->version;
}

size_t qrexec_active_channels(const struct qrexec_agent *a)
{
	size_t n = 0;
	for (size_t i = 0; i < QREXEC_MAX_CHANNELS; i++)
		n += a->ch[i].used ? 1u : 0u;
	return n;
}
