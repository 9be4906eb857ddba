/* base64.h — strict RFC 4648 base64 decoding (standard alphabet, '='
 * padding required to a multiple of 4, no whitespace), for values dom0
 * hands us such as /qubes-random-seed. Never reads past len or writes past
 * cap. */
#ifndef BASE_BASE64_H
#define BASE_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes s[0..len) into out; false (and *out_len 0) on any bad character,
 * bad padding, a length that is not a multiple of 4, or output larger than
 * cap. */
bool base64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif
