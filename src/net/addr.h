/* addr.h — IP addresses of either family in one 16-byte form.
 *
 * IPv4 addresses are held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so tables,
 * hashes and comparisons need no family switch. Text parsing is strict:
 * anything not a canonical-enough dotted quad or RFC 4291 text is refused.
 * Never reads past the given length. */
#ifndef NET_ADDR_H
#define NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/libc.h"

struct ip_addr {
	uint8_t b[16];
};

static inline bool ip_is_v4(const struct ip_addr *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a->b, mapped, 12) == 0;
}

static inline struct ip_addr ip_from_v4(const uint8_t v4[4])
{
	struct ip_addr a = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}};
	memcpy(a.b + 12, v4, 4);
	return a;
}

static inline struct ip_addr ip_from_v6(const uint8_t v6[16])
{
	struct ip_addr a = {{0}}; /* cppcheck cannot see memcpy fill it */
	memcpy(a.b, v6, 16);
	return a;
}

/* The 4 address bytes of an IPv4 address (only valid when ip_is_v4). */
static inline const uint8_t *ip_v4_bytes(const struct ip_addr *a)
{
	return a->b + 12;
}

static inline bool ip_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

static inline bool ip_is_unspecified(const struct ip_addr *a)
{
	static const uint8_t zero[16];
	return memcmp(a->b, zero, 16) == 0;
}

/* An address with a prefix length counted in the address's own family
 * (0–32 for IPv4, 0–128 for IPv6). */
struct ip_prefix {
	struct ip_addr addr; /* host bits are zero */
	uint8_t len;
};

/* True when a is inside p (families must match: an IPv4 prefix never
 * contains an IPv6 address and vice versa). */
bool ip_prefix_contains(const struct ip_prefix *p, const struct ip_addr *a);

/* Strict text parsers over (s, len), no terminator needed. */
bool ip_parse_v4(const char *s, size_t len, struct ip_addr *out);
bool ip_parse_v6(const char *s, size_t len, struct ip_addr *out);
bool ip_parse(const char *s, size_t len, struct ip_addr *out); /* either */
/* "addr" or "addr/len" (bare address = full length). Host bits are cleared,
 * as dom0 accepts "10.0.0.1/24" and means 10.0.0.0/24. */
bool ip_prefix_parse(const char *s, size_t len, bool v6, struct ip_prefix *out);

/* Text of either family into buf (FMT_IPV6_LEN bytes suffice). */
char *ip_format(char *buf, size_t cap, const struct ip_addr *a);
#define IP_STR(a) ip_format((char[46]){0}, 46, (a))

#endif
