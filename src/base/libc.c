/* libc.c — the tiny C-library subset of the unikernel.
 *
 * Byte loops, kept simple and obviously correct; the compiler inlines the
 * fixed-size copies on the hot path as builtins anyway. Built under the
 * fwlibc_ names everywhere (so unit tests exercise them on the host) and,
 * with FW_FREESTANDING, also exported under the standard names. Must never
 * call anything, allocate or keep state. */
#include "base/libc.h"

#include <stdint.h>

/* GCC at -O2 turns these very loops into calls to memcpy/memset, which in
 * the unikernel are these functions: endless recursion. Keep them loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

void *fwlibc_memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *fwlibc_memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if ((uintptr_t)d - (uintptr_t)s >= n) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *fwlibc_memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int fwlibc_memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

void *fwlibc_memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;
	for (size_t i = 0; i < n; i++)
		if (p[i] == (unsigned char)c)
			return (void *)(p + i); /* drops const, as the C signature does */
	return NULL;
}

size_t fwlibc_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

size_t fwlibc_strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

int fwlibc_strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int fwlibc_strncmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return (unsigned char)a[i] - (unsigned char)b[i];
		if (!a[i])
			return 0;
	}
	return 0;
}

char *fwlibc_strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s; /* drops const, as the C signature does */
		if (!*s)
			return NULL;
	}
}

#ifdef FW_FREESTANDING
void *memcpy(void *restrict dst, const void *restrict src, size_t n) { return fwlibc_memcpy(dst, src, n); }
void *memmove(void *dst, const void *src, size_t n) { return fwlibc_memmove(dst, src, n); }
void *memset(void *dst, int c, size_t n) { return fwlibc_memset(dst, c, n); }
int memcmp(const void *a, const void *b, size_t n) { return fwlibc_memcmp(a, b, n); }
void *memchr(const void *s, int c, size_t n) { return fwlibc_memchr(s, c, n); }
size_t strlen(const char *s) { return fwlibc_strlen(s); }
size_t strnlen(const char *s, size_t max) { return fwlibc_strnlen(s, max); }
int strcmp(const char *a, const char *b) { return fwlibc_strcmp(a, b); }
int strncmp(const char *a, const char *b, size_t n) { return fwlibc_strncmp(a, b, n); }
char *strchr(const char *s, int c) { return fwlibc_strchr(s, c); }
#endif
