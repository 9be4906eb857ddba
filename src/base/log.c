/* log.c — the logging ring: fixed storage, per-site rate limiting, drain.
 *
 * Lines are stored as records [2-byte length][text] in one static byte
 * ring; a new line that does not fit pushes out the oldest ones, which are
 * counted. Control characters are replaced so that a peer-supplied string
 * can never forge extra lines. Single-threaded by design (the event loop);
 * must never block, allocate or call the platform. */
#include "base/log.h"

#include <stdarg.h>

#include "base/clock.h"
#include "base/fmt.h"
#include "base/libc.h"

#define LOG_RING_SIZE 65536u
#define LOG_REC_HDR 2u

static uint8_t ring[LOG_RING_SIZE];
static size_t ring_head; /* offset of the oldest record */
static size_t ring_used; /* bytes in use, headers included */
static uint64_t overwritten;
static enum log_level current_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

bool log_enabled(enum log_level level)
{
	return level <= current_level;
}

bool log_level_parse(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "error", LOG_LEVEL_ERROR },
		{ "warn", LOG_LEVEL_WARN },
		{ "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};
	if (!s)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return true;
		}
	}
	return false;
}

static const char *level_prefix(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR:
		return "[ERROR] ";
	case LOG_LEVEL_WARN:
		return "[WARN] ";
	case LOG_LEVEL_INFO:
		return "[INFO] ";
	case LOG_LEVEL_DEBUG:
	default:
		return "[DEBUG] ";
	}
}

static uint8_t ring_byte(size_t off)
{
	return ring[off % LOG_RING_SIZE];
}

static size_t record_len_at(size_t off)
{
	return (size_t)ring_byte(off) << 8 | ring_byte(off + 1);
}

static void drop_oldest(void)
{
	size_t rec = LOG_REC_HDR + record_len_at(ring_head);
	ring_head = (ring_head + rec) % LOG_RING_SIZE;
	ring_used -= rec;
}

/* Appends one line (len <= LOG_LINE_MAX), evicting old lines as needed. */
static void ring_push(const char *text, size_t len)
{
	size_t rec = LOG_REC_HDR + len;
	while (LOG_RING_SIZE - ring_used < rec) {
		drop_oldest();
		overwritten++;
	}
	size_t tail = (ring_head + ring_used) % LOG_RING_SIZE;
	ring[tail] = (uint8_t)(len >> 8);
	ring[(tail + 1) % LOG_RING_SIZE] = (uint8_t)len;
	for (size_t i = 0; i < len; i++)
		ring[(tail + LOG_REC_HDR + i) % LOG_RING_SIZE] = (uint8_t)text[i];
	ring_used += rec;
}

/* Formats prefix + message into a bounded line, cut with "..." when too
 * long, with control characters made harmless, and stores it. */
static void emit_line(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX + 1];
	const char *prefix = level_prefix(level);
	size_t plen = strlen(prefix);

	memcpy(line, prefix, plen + 1);
	int n = fmt_vsnprintf(line + plen, sizeof(line) - plen, fmt, ap);
	size_t len = plen + (n > 0 ? (size_t)n : 0);
	if (len > LOG_LINE_MAX) {
		len = LOG_LINE_MAX;
		memcpy(line + LOG_LINE_MAX - 3, "...", 4);
	}
	for (size_t i = plen; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	ring_push(line, len);
}

static void emit_fmt(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void emit_fmt(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit_line(level, fmt, ap);
	va_end(ap);
}

void log_emit(struct log_site *site, enum log_level level, const char *fmt, ...)
{
	uint64_t now = clock_now();

	/* A fixed window per site; a clock that went backwards (a reset in
	 * tests, a restart) starts a new window too. */
	if (now < site->window_start_ns || now - site->window_start_ns >= LOG_SITE_WINDOW_NS) {
		site->window_start_ns = now;
		site->in_window = 0;
	}
	if (site->in_window >= LOG_SITE_BURST) {
		if (site->suppressed < UINT32_MAX)
			site->suppressed++;
		return;
	}
	site->in_window++;
	if (site->suppressed) {
		emit_fmt(level, "(%u similar messages suppressed)", (unsigned)site->suppressed);
		site->suppressed = 0;
	}

	va_list ap;
	va_start(ap, fmt);
	emit_line(level, fmt, ap);
	va_end(ap);
}

size_t log_drain_line(char *buf, size_t cap)
{
	if (ring_used == 0 || cap == 0)
		return 0;
	size_t len = record_len_at(ring_head);
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)ring_byte(ring_head + LOG_REC_HDR + i);
	buf[n] = '\0';
	drop_oldest();
	return n;
}

uint64_t log_overwritten_lines(void)
{
	return overwritten;
}

void log_reset(void)
{
	ring_head = 0;
	ring_used = 0;
	overwritten = 0;
}
