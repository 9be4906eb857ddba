/* libc.h — the only C-library functions the portable core may call.
 *
 * The core is built with -nostdinc, so this header is the whole libc it
 * sees. On the host the names bind to the system libc; in the unikernel
 * src/base/libc.c provides them (built with -DFW_FREESTANDING). The same
 * code is unit-tested on the host under the fwlibc_ prefix. Never add a
 * function here that allocates, blocks or touches global state. */
#ifndef BASE_LIBC_H
#define BASE_LIBC_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* The freestanding implementations, always built and always testable. */
void *fwlibc_memcpy(void *restrict dst, const void *restrict src, size_t n);
void *fwlibc_memmove(void *dst, const void *src, size_t n);
void *fwlibc_memset(void *dst, int c, size_t n);
int fwlibc_memcmp(const void *a, const void *b, size_t n);
void *fwlibc_memchr(const void *s, int c, size_t n);
size_t fwlibc_strlen(const char *s);
size_t fwlibc_strnlen(const char *s, size_t max);
int fwlibc_strcmp(const char *a, const char *b);
int fwlibc_strncmp(const char *a, const char *b, size_t n);
char *fwlibc_strchr(const char *s, int c);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
