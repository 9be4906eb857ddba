/* fuzz_base64.c — base64 from QubesDB values: no crash, no overread, and
 * what decodes re-encodes to the same text (strictness). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t encode(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	uint8_t out[4096];
	size_t n;
	if (!s || size > 5000) {
		free(s);
		return 0;
	}
	memcpy(s, data, size);
	if (base64_decode(s, size, out, sizeof(out), &n)) {
		char back[6000];
		size_t m = encode(out, n, back);
		if (m != size || memcmp(back, s, size) != 0)
			abort();
	}
	free(s);
	return 0;
}
