/* base64.c — strict base64 decoding; see base64.h. */
#include "base/base64.h"

static int sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool base64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n = 0;
	*out_len = 0;
	if (len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = 0;
		uint32_t v = 0;
		for (size_t k = 0; k < 4; k++) {
			char c = s[i + k];
			int x;
			if (c == '=' && last && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				pad++;
				x = 0;
			} else if (pad || (x = sextet(c)) < 0) {
				return false;
			}
			v = v << 6 | (uint32_t)x;
		}
		size_t bytes = 3u - (size_t)pad;
		/* Padding must not hide set bits (canonical encoding). */
		if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
			return false;
		if (n + bytes > cap)
			return false;
		for (size_t b = 0; b < bytes; b++)
			out[n++] = (uint8_t)(v >> (16 - 8 * b));
	}
	*out_len = n;
	return true;
}
