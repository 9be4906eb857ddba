/* fmt.h — bounded formatting: a printf subset and address formatters.
 *
 * Always NUL-terminates (when cap > 0), never writes past cap, returns the
 * length the full output would have had (like C99 snprintf). Supported:
 * %% %c %s %.*s %d %i %u %x %X %p with flags '-' '0', width, precision for
 * strings, and length modifiers l, ll, z. Anything else prints as "?".
 * Never allocates. */
#ifndef BASE_FMT_H
#define BASE_FMT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

int fmt_snprintf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fmt_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Text built piece by piece into a fixed buffer. len counts what the whole
 * text would take (as snprintf's result does), so a caller can tell it was
 * cut; the buffer always holds a terminated prefix. Zero-initialise with the
 * buffer and its capacity: struct fmt_buf b = {buf, cap, 0}. */
struct fmt_buf {
	char *buf;
	size_t cap;
	size_t len;
};

void fmt_append(struct fmt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes actually in the buffer (terminator excluded). */
size_t fmt_buf_stored(const struct fmt_buf *b);

/* Buffer sizes that always suffice, terminator included. */
#define FMT_IPV4_LEN 16
#define FMT_IPV6_LEN 46
#define FMT_MAC_LEN 18

/* Dotted quad. Returns buf. */
char *fmt_ipv4(char buf[FMT_IPV4_LEN], const uint8_t addr[4]);
/* RFC 5952 text: lower case, longest zero run (2+ groups) as "::", first on
 * ties, IPv4-mapped as ::ffff:a.b.c.d. Returns buf. */
char *fmt_ipv6(char buf[FMT_IPV6_LEN], const uint8_t addr[16]);
/* aa:bb:cc:dd:ee:ff. Returns buf. */
char *fmt_mac(char buf[FMT_MAC_LEN], const uint8_t mac[6]);

/* For log arguments: a temporary buffer that lives until the end of the
 * enclosing full expression's block. */
#define IPV4_STR(a) fmt_ipv4((char[FMT_IPV4_LEN]){0}, (a))
#define IPV6_STR(a) fmt_ipv6((char[FMT_IPV6_LEN]){0}, (a))
#define MAC_STR(m) fmt_mac((char[FMT_MAC_LEN]){0}, (m))

#endif
