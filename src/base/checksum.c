/* checksum.c — RFC 1071 sums and RFC 1624 incremental updates.
 * Pure functions; must never read past the given length. */
#include "base/checksum.h"

#include "base/byteorder.h"

static uint32_t fold16(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = sum;

	while (len >= 8) {
		acc += load_be32(p);
		acc += load_be32(p + 4);
		p += 8;
		len -= 8;
	}
	while (len >= 2) {
		acc += load_be16(p);
		p += 2;
		len -= 2;
	}
	if (len)
		acc += (uint32_t)p[0] << 8;
	/* Fold 64 → 32 bits; the ones'-complement sum is invariant under folding. */
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

uint16_t csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t csum_buf(const void *data, size_t len)
{
	return csum_fold(csum_partial(data, len, 0));
}

uint32_t csum_pseudo_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
			  uint16_t l4_len)
{
	uint32_t sum = csum_partial(src, 4, 0);
	sum = csum_partial(dst, 4, sum);
	return fold16(sum) + proto + l4_len;
}

uint32_t csum_pseudo_ipv6(const uint8_t src[16], const uint8_t dst[16], uint8_t next_header,
			  uint32_t l4_len)
{
	uint32_t sum = csum_partial(src, 16, 0);
	sum = csum_partial(dst, 16, sum);
	return fold16(sum) + (l4_len >> 16) + (l4_len & 0xffff) + next_header;
}

uint16_t csum_update16(uint16_t csum, uint16_t old_word, uint16_t new_word)
{
	uint32_t sum = (uint16_t)~csum;
	sum += (uint16_t)~old_word;
	sum += new_word;
	return (uint16_t)~fold16(sum);
}

uint16_t csum_update32(uint16_t csum, uint32_t old_word, uint32_t new_word)
{
	uint32_t sum = (uint16_t)~csum;
	sum += (uint16_t)~(old_word >> 16);
	sum += (uint16_t)~(old_word & 0xffff);
	sum += new_word >> 16;
	sum += new_word & 0xffff;
	return (uint16_t)~fold16(sum);
}

uint16_t csum_update_bytes(uint16_t csum, const uint8_t *old_bytes, const uint8_t *new_bytes,
			   size_t len)
{
	uint32_t sum = (uint16_t)~csum;
	for (size_t i = 0; i + 1 < len; i += 2) {
		sum += (uint16_t)~load_be16(old_bytes + i);
		sum += load_be16(new_bytes + i);
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return (uint16_t)~fold16(sum);
}
