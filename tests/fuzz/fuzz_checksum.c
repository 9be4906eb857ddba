/* fuzz_checksum.c — the checksum code on arbitrary bytes: the sum must
 * match a naive reference, never read outside the buffer (ASan), and an
 * incremental update must match recomputation. Input layout: byte 0 picks
 * a field offset, byte 1 a field length, the rest is the data; the field is
 * replaced with its bytes rotated. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/checksum.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t ref_csum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	for (size_t i = 0; i < len; i += 2)
		s += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size heap copy so ASan sees any over-read. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (csum_buf(buf, size) != ref_csum(buf, size))
		abort();

	if (size >= 6) {
		size_t body = (size - 2) & ~(size_t)1; /* even data after 2 control bytes */
		uint8_t *d = buf + 2;
		size_t flen = 2 * (1 + buf[1] % 8);
		if (flen < body) {
			size_t at = 2 + 2 * (buf[0] % ((body - flen) / 2 + 1));
			if (at + flen <= body) {
				d[0] = d[1] = 0; /* checksum field at the front */
				uint16_t c = ref_csum(d, body);
				d[0] = (uint8_t)(c >> 8);
				d[1] = (uint8_t)c;
				uint8_t old[16] = { 0 }, neu[16] = { 0 };
				memcpy(old, d + at, flen);
				for (size_t i = 0; i < flen; i++)
					neu[i] = old[(i + 1) % flen] ^ (uint8_t)i;
				memcpy(d + at, neu, flen);
				uint16_t inc = csum_update_bytes(c, old, neu, flen);
				d[0] = d[1] = 0;
				bool all_zero = true;
				for (size_t i = 2; i < body; i++)
					all_zero &= d[i] == 0;
				uint16_t full = ref_csum(d, body);
				if (all_zero ? (inc != 0 && inc != 0xffff) : inc != full)
					abort();
				if (flen == 2 &&
				    csum_update16(c, (uint16_t)(old[0] << 8 | old[1]),
						  (uint16_t)(neu[0] << 8 | neu[1])) != inc)
					abort();
			}
		}
	}
	free(buf);
	return 0;
}
