/* log.h — the logging ring: levels, per-call-site rate limiting, and a
 * non-blocking drain for the platform.
 *
 * log_* never blocks and never allocates: lines go into a fixed ring; when
 * the ring is full the oldest line is overwritten and counted. Each call
 * site is rate-limited on its own (a burst, then a steady rate per second);
 * the first line after a suppressed stretch says how many were suppressed.
 * Never log packet payloads; at default level (INFO) never log per packet
 * except through the rate limiter. */
#ifndef BASE_LOG_H
#define BASE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

/* Per-call-site state; one static instance per LOG_AT expansion. */
struct log_site {
	uint64_t window_start_ns;
	uint32_t in_window;
	uint32_t suppressed;
};

/* Lines per site per rate window, and the window. */
#define LOG_SITE_BURST 10
#define LOG_SITE_WINDOW_NS 1000000000ull
/* Longest line kept (longer ones are cut and end in "..."). */
#define LOG_LINE_MAX 240

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* Parses "error", "warn", "info", "debug"; false on anything else. */
bool log_level_parse(const char *s, enum log_level *out);

/* Formats a line (printf subset of base/fmt.h) into the ring. */
void log_emit(struct log_site *site, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_AT(level, ...)                                          \
	do {                                                        \
		static struct log_site log_site_;                   \
		if (log_enabled(level))                             \
			log_emit(&log_site_, (level), __VA_ARGS__); \
	} while (0)

#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Copies the oldest complete line (with its level prefix, without the
 * newline, NUL-terminated) into buf and removes it from the ring. Returns
 * its length, or 0 when the ring is empty. Never blocks. */
size_t log_drain_line(char *buf, size_t cap);

/* Lines lost because the ring was full, since start. */
uint64_t log_overwritten_lines(void);

/* Empties the ring and resets counters (tests, restart). */
void log_reset(void);

#endif
