/* addr.c — strict text parsing and prefix tests for struct ip_addr.
 *
 * Text comes from dom0 (firewall rules, QubesDB network keys) and from the
 * kernel command line. The parsers accept one spelling per meaning where the
 * RFCs allow it and refuse the rest; they never read past the given length
 * and never need a terminator.
 *
 * Decisions (documented for rules and config users):
 * - IPv4: exactly four decimal parts 0-255, 1-3 digits each, nothing else
 *   (no '+', no blanks, no hex, no short forms like "127.1"). A leading zero
 *   is refused ("010.0.0.1"): inet_aton reads it as octal, dom0's Python
 *   ipaddress refuses it, so no reading is safe.
 * - IPv6: RFC 4291 §2.2 text: 1-4 hex digits per group (either case), one
 *   "::" standing for one or more zero groups, an optional dotted-quad tail
 *   in the last 32 bits. No zone index ("%eth0"), no brackets, at most 45
 *   characters.
 * - Prefixes: "addr" or "addr/len" with len decimal, no leading zeros, no
 *   blanks; host bits are cleared. An IPv6 prefix of length >= 96 inside
 *   ::ffff:0:0/96 (IPv4-mapped) is stored as the IPv4 prefix it denotes
 *   (len - 96), because IPv4 addresses live in that range here; IPv6
 *   packets with IPv4-mapped destinations are not routable (RFC 4291
 *   §2.5.5.2) and the router drops them before the rules.
 * Must never allocate or keep state. */
#include "net/addr.h"

#include "base/fmt.h"

/* Longest IPv6 text: 6 groups of 4 + 6 colons + "255.255.255.255". */
#define IPV6_TEXT_MAX 45

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A decimal number of 1..max_digits digits without a leading zero (except
 * "0" itself) at s[*i]; advances *i. */
static bool parse_decimal(const char *s, size_t len, size_t *i, size_t max_digits,
			  unsigned *out)
{
	size_t start = *i;
	unsigned v = 0;

	while (*i < len && is_digit(s[*i]) && *i - start < max_digits) {
		v = v * 10u + (unsigned)(s[*i] - '0');
		(*i)++;
	}
	if (*i == start)
		return false;
	if (*i < len && is_digit(s[*i]))
		return false; /* too many digits */
	if (*i - start > 1 && s[start] == '0')
		return false;
	*out = v;
	return true;
}

static bool parse_v4_bytes(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v;
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		if (!parse_decimal(s, len, &i, 3, &v) || v > 255)
			return false;
		out[part] = (uint8_t)v;
	}
	return i == len;
}

bool ip_parse_v4(const char *s, size_t len, struct ip_addr *out)
{
	uint8_t b[4];

	if (s == NULL || !parse_v4_bytes(s, len, b))
		return false;
	*out = ip_from_v4(b);
	return true;
}

bool ip_parse_v6(const char *s, size_t len, struct ip_addr *out)
{
	uint16_t group[8];
	size_t ngroups = 0;
	size_t gap = SIZE_MAX; /* index of the group where "::" stands */
	size_t i = 0;

	if (s == NULL || len < 2 || len > IPV6_TEXT_MAX)
		return false;
	if (s[0] == ':') {
		if (s[1] != ':')
			return false;
		gap = 0;
		i = 2;
	}
	while (i < len) {
		size_t start = i;
		unsigned v = 0;
		int h;

		while (i < len && i - start < 5 && (h = hex_value(s[i])) >= 0) {
			v = v * 16u + (unsigned)h;
			i++;
		}
		if (i < len && s[i] == '.') {
			uint8_t v4[4];
			/* Dotted-quad tail: the last 32 bits. */
			if (ngroups > 6 || !parse_v4_bytes(s + start, len - start, v4))
				return false;
			group[ngroups++] = (uint16_t)(v4[0] << 8 | v4[1]);
			group[ngroups++] = (uint16_t)(v4[2] << 8 | v4[3]);
			break;
		}
		if (i == start || i - start > 4 || ngroups == 8)
			return false;
		group[ngroups++] = (uint16_t)v;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':') {
			if (gap != SIZE_MAX)
				return false;
			gap = ngroups;
			i++;
		} else if (i == len) {
			return false; /* a single trailing ':' */
		}
	}

	uint8_t b[16] = {0};
	if (gap == SIZE_MAX) {
		if (ngroups != 8)
			return false;
		for (size_t g = 0; g < 8; g++) {
			b[2 * g] = (uint8_t)(group[g] >> 8);
			b[2 * g + 1] = (uint8_t)group[g];
		}
	} else {
		if (ngroups > 7)
			return false; /* "::" stands for at least one group */
		size_t tail = ngroups - gap;
		for (size_t g = 0; g < gap; g++) {
			b[2 * g] = (uint8_t)(group[g] >> 8);
			b[2 * g + 1] = (uint8_t)group[g];
		}
		for (size_t g = 0; g < tail; g++) {
			size_t at = 8 - tail + g;
			b[2 * at] = (uint8_t)(group[gap + g] >> 8);
			b[2 * at + 1] = (uint8_t)group[gap + g];
		}
	}
	memcpy(out->b, b, sizeof(out->b));
	return true;
}

bool ip_parse(const char *s, size_t len, struct ip_addr *out)
{
	if (s == NULL)
		return false;
	if (memchr(s, ':', len) != NULL)
		return ip_parse_v6(s, len, out);
	return ip_parse_v4(s, len, out);
}

/* Clears every bit of a from bit position `bits` (counted from the first
 * byte of the 16-byte form) on. */
static void clear_from_bit(struct ip_addr *a, unsigned bits)
{
	for (unsigned byte = 0; byte < 16; byte++) {
		unsigned first = byte * 8;
		if (first >= bits)
			a->b[byte] = 0;
		else if (bits - first < 8)
			a->b[byte] &= (uint8_t)(0xffu << (8 - (bits - first)));
	}
}

bool ip_prefix_parse(const char *s, size_t len, bool v6, struct ip_prefix *out)
{
	struct ip_addr a;
	size_t addr_len = len;
	unsigned plen;
	unsigned max = v6 ? 128 : 32;

	if (s == NULL)
		return false;
	const char *slash = memchr(s, '/', len);
	if (slash != NULL)
		addr_len = (size_t)(slash - s);
	if (v6 ? !ip_parse_v6(s, addr_len, &a) : !ip_parse_v4(s, addr_len, &a))
		return false;
	if (slash == NULL) {
		plen = max;
	} else {
		size_t i = addr_len + 1;
		if (!parse_decimal(s, len, &i, 3, &plen) || i != len || plen > max)
			return false;
	}
	bool as_v4 = !v6;
	if (v6 && ip_is_v4(&a) && plen >= 96) {
		plen -= 96; /* an IPv4-mapped range: held as the IPv4 prefix */
		as_v4 = true;
	}
	/* A shorter IPv6 prefix loses bit 95, so it never looks IPv4-mapped. */
	clear_from_bit(&a, as_v4 ? 96 + plen : plen);
	out->addr = a;
	out->len = (uint8_t)plen;
	return true;
}

bool ip_prefix_contains(const struct ip_prefix *p, const struct ip_addr *a)
{
	bool pv4 = ip_is_v4(&p->addr);

	if (pv4 != ip_is_v4(a))
		return false;
	unsigned bits = pv4 ? 96u + p->len : p->len;
	if (bits > 128)
		bits = 128;
	unsigned full = bits / 8;
	if (memcmp(p->addr.b, a->b, full) != 0)
		return false;
	if (bits % 8 == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - bits % 8));
	return ((p->addr.b[full] ^ a->b[full]) & mask) == 0;
}

char *ip_format(char *buf, size_t cap, const struct ip_addr *a)
{
	char tmp[FMT_IPV6_LEN];

	if (cap == 0)
		return buf;
	if (ip_is_v4(a))
		fmt_ipv4(tmp, ip_v4_bytes(a));
	else
		fmt_ipv6(tmp, a->b);
	size_t n = strnlen(tmp, sizeof(tmp) - 1);
	if (n > cap - 1)
		n = cap - 1;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return buf;
}
