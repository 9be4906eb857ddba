/* fmt.c — bounded printf subset and address text (RFC 5952 for IPv6).
 *
 * Output goes through a tiny sink that counts every character but stores
 * only what fits, so the return value is the untruncated length like C99
 * snprintf. Must never allocate, never write past cap, never call libc
 * formatting (there is none in the unikernel). */
#include "base/fmt.h"

#include <stdbool.h>

#include "base/byteorder.h"
#include "base/libc.h"

struct sink {
	char *buf;
	size_t cap;
	size_t len; /* characters produced so far, stored or not */
};

static void sink_put(struct sink *s, char c)
{
	if (s->cap > 0 && s->len < s->cap - 1)
		s->buf[s->len] = c;
	s->len++;
}

static void sink_repeat(struct sink *s, char c, size_t n)
{
	while (n--)
		sink_put(s, c);
}

static void sink_str(struct sink *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sink_put(s, p[i]);
}

/* A parsed conversion specification. */
struct spec {
	bool left;   /* '-' */
	bool zero;   /* '0' */
	bool plus;   /* '+' */
	bool space;  /* ' ' */
	bool alt;    /* '#' */
	size_t width;
	bool has_prec;
	size_t prec;
};

static void put_padded(struct sink *s, const struct spec *sp, const char *p, size_t n)
{
	size_t pad = sp->width > n ? sp->width - n : 0;
	if (!sp->left)
		sink_repeat(s, ' ', pad);
	sink_str(s, p, n);
	if (sp->left)
		sink_repeat(s, ' ', pad);
}

/* Integer conversion: prefix (sign or "0x"), zero padding from precision
 * or the '0' flag, then the digits. */
static void put_uint(struct sink *s, const struct spec *sp, unsigned long long v, unsigned base,
		     bool upper, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	size_t nd = 0;

	/* C: precision 0 with value 0 prints no digits. */
	if (!(sp->has_prec && sp->prec == 0 && v == 0)) {
		do {
			tmp[nd++] = digits[v % base];
			v /= base;
		} while (v);
	}
	size_t plen = strlen(prefix);
	size_t zeros = sp->has_prec && sp->prec > nd ? sp->prec - nd : 0;
	size_t body = plen + zeros + nd;
	size_t pad = sp->width > body ? sp->width - body : 0;

	if (!sp->left && sp->zero && !sp->has_prec) {
		zeros += pad;
		pad = 0;
	}
	if (!sp->left)
		sink_repeat(s, ' ', pad);
	sink_str(s, prefix, plen);
	sink_repeat(s, '0', zeros);
	while (nd)
		sink_put(s, tmp[--nd]);
	if (sp->left)
		sink_repeat(s, ' ', pad);
}

enum length { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z };

static long long arg_signed(va_list *ap, enum length len)
{
	switch (len) {
	case LEN_HH:
		return (signed char)va_arg(*ap, int);
	case LEN_H:
		return (short)va_arg(*ap, int);
	case LEN_L:
		return va_arg(*ap, long);
	case LEN_LL:
		return va_arg(*ap, long long);
	case LEN_Z:
		/* %zd takes the signed type corresponding to size_t. */
		return (long long)va_arg(*ap, ptrdiff_t);
	case LEN_NONE:
	default:
		return va_arg(*ap, int);
	}
}

static unsigned long long arg_unsigned(va_list *ap, enum length len)
{
	/* Outside the switch: size_t is unsigned long here, which would make
	 * two identical branches. */
	if (len == LEN_Z)
		return va_arg(*ap, size_t);
	switch (len) {
	case LEN_HH:
		return (unsigned char)va_arg(*ap, unsigned int);
	case LEN_H:
		return (unsigned short)va_arg(*ap, unsigned int);
	case LEN_L:
		return va_arg(*ap, unsigned long);
	case LEN_LL:
		return va_arg(*ap, unsigned long long);
	case LEN_Z:
	case LEN_NONE:
	default:
		return va_arg(*ap, unsigned int);
	}
}

/* Reads a decimal field; saturates rather than overflowing. */
static size_t parse_num(const char **fp)
{
	size_t n = 0;
	while (**fp >= '0' && **fp <= '9') {
		if (n < 100000)
			n = n * 10 + (size_t)(**fp - '0');
		(*fp)++;
	}
	return n;
}

static void convert(struct sink *s, const char **fp, va_list *ap)
{
	const char *f = *fp;
	struct spec sp = { 0 };

	for (;; f++) {
		if (*f == '-')
			sp.left = true;
		else if (*f == '0')
			sp.zero = true;
		else if (*f == '+')
			sp.plus = true;
		else if (*f == ' ')
			sp.space = true;
		else if (*f == '#')
			sp.alt = true;
		else
			break;
	}
	if (*f == '*') {
		int w = va_arg(*ap, int);
		if (w < 0) {
			sp.left = true;
			w = w == -__INT_MAX__ - 1 ? __INT_MAX__ : -w;
		}
		sp.width = (size_t)w;
		f++;
	} else {
		sp.width = parse_num(&f);
	}
	if (*f == '.') {
		f++;
		sp.has_prec = true;
		if (*f == '*') {
			int p = va_arg(*ap, int);
			/* A negative precision is taken as if omitted. */
			sp.has_prec = p >= 0;
			sp.prec = p >= 0 ? (size_t)p : 0;
			f++;
		} else {
			sp.prec = parse_num(&f);
		}
	}

	enum length len = LEN_NONE;
	if (f[0] == 'h' && f[1] == 'h') {
		len = LEN_HH;
		f += 2;
	} else if (f[0] == 'h') {
		len = LEN_H;
		f++;
	} else if (f[0] == 'l' && f[1] == 'l') {
		len = LEN_LL;
		f += 2;
	} else if (f[0] == 'l') {
		len = LEN_L;
		f++;
	} else if (f[0] == 'z') {
		len = LEN_Z;
		f++;
	}

	char c = *f;
	if (c != '\0')
		f++;
	*fp = f;

	switch (c) {
	case '%':
		sink_put(s, '%');
		return;
	case 'c': {
		char ch = (char)va_arg(*ap, int);
		put_padded(s, &sp, &ch, 1);
		return;
	}
	case 's': {
		const char *str = va_arg(*ap, const char *);
		if (!str)
			str = "(null)";
		size_t n = sp.has_prec ? strnlen(str, sp.prec) : strlen(str);
		put_padded(s, &sp, str, n);
		return;
	}
	case 'd':
	case 'i': {
		long long v = arg_signed(ap, len);
		/* Negate in unsigned arithmetic so LLONG_MIN is fine. */
		unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
		const char *prefix = v < 0 ? "-" : sp.plus ? "+" : sp.space ? " " : "";
		put_uint(s, &sp, mag, 10, false, prefix);
		return;
	}
	case 'u':
		put_uint(s, &sp, arg_unsigned(ap, len), 10, false, "");
		return;
	case 'x':
	case 'X': {
		unsigned long long v = arg_unsigned(ap, len);
		const char *prefix = sp.alt && v ? (c == 'x' ? "0x" : "0X") : "";
		put_uint(s, &sp, v, 16, c == 'X', prefix);
		return;
	}
	case 'p': {
		const void *p = va_arg(*ap, const void *);
		put_uint(s, &sp, (unsigned long long)(uintptr_t)p, 16, false, "0x");
		return;
	}
	default:
		/* Unsupported conversion (or a lone '%' at the end): no argument
		 * is consumed, since its type is unknown. */
		sink_put(s, '?');
		return;
	}
}

int fmt_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .cap = cap, .len = 0 };
	va_list aq;

	va_copy(aq, ap);
	const char *f = fmt;
	while (*f) {
		if (*f != '%') {
			sink_put(&s, *f++);
			continue;
		}
		f++;
		convert(&s, &f, &aq);
	}
	va_end(aq);
	if (cap > 0)
		buf[s.len < cap ? s.len : cap - 1] = '\0';
	return s.len > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)s.len;
}

int fmt_snprintf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = fmt_vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

/* Appends the decimal text of one octet; returns the new end. */
static char *put_octet(char *p, uint8_t v)
{
	if (v >= 100)
		*p++ = (char)('0' + v / 100);
	if (v >= 10)
		*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

static char *put_quad(char *p, const uint8_t a[4])
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*p++ = '.';
		p = put_octet(p, a[i]);
	}
	return p;
}

char *fmt_ipv4(char buf[FMT_IPV4_LEN], const uint8_t addr[4])
{
	*put_quad(buf, addr) = '\0';
	return buf;
}

/* One group in lower-case hex without leading zeros (RFC 5952 §4.1, §4.3). */
static char *put_group(char *p, uint16_t g)
{
	static const char hex[] = "0123456789abcdef";
	bool started = false;
	for (int shift = 12; shift >= 0; shift -= 4) {
		unsigned d = (g >> shift) & 0xf;
		if (d || started || shift == 0) {
			*p++ = hex[d];
			started = true;
		}
	}
	return p;
}

char *fmt_ipv6(char buf[FMT_IPV6_LEN], const uint8_t addr[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char *p = buf;

	/* IPv4-mapped addresses keep the dotted quad (RFC 5952 §5). */
	if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
		memcpy(p, "::ffff:", 7);
		*put_quad(p + 7, addr + 12) = '\0';
		return buf;
	}

	uint16_t g[8];
	for (int i = 0; i < 8; i++)
		g[i] = load_be16(addr + 2 * (size_t)i);

	/* Longest run of zero groups, at least two long, first on ties
	 * (RFC 5952 §4.2.1-§4.2.3). */
	int best = -1, best_len = 0;
	for (int i = 0; i < 8;) {
		if (g[i] != 0) {
			i++;
			continue;
		}
		int j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > best_len) {
			best = i;
			best_len = j - i;
		}
		i = j;
	}
	if (best_len < 2)
		best = -1;

	for (int i = 0; i < 8;) {
		if (i == best) {
			*p++ = ':';
			*p++ = ':';
			i += best_len;
			continue;
		}
		/* A separator unless at the start or right after "::". */
		if (i > 0 && !(best >= 0 && i == best + best_len))
			*p++ = ':';
		p = put_group(p, g[i]);
		i++;
	}
	*p = '\0';
	return buf;
}

char *fmt_mac(char buf[FMT_MAC_LEN], const uint8_t mac[6])
{
	static const char hex[] = "0123456789abcdef";
	char *p = buf;
	for (int i = 0; i < 6; i++) {
		if (i)
			*p++ = ':';
		*p++ = hex[mac[i] >> 4];
		*p++ = hex[mac[i] & 0xf];
	}
	*p = '\0';
	return buf;
}

void fmt_append(struct fmt_buf *b, const char *fmt, ...)
{
	va_list ap;
	bool room = b->buf != NULL && b->len < b->cap;

	va_start(ap, fmt);
	int n = fmt_vsnprintf(room ? b->buf + b->len : NULL, room ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
}

size_t fmt_buf_stored(const struct fmt_buf *b)
{
	if (b->cap == 0)
		return 0;
	return b->len < b->cap ? b->len : b->cap - 1;
}
