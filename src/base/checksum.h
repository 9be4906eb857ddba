/* checksum.h — the Internet checksum (RFC 1071) and its incremental update
 * (RFC 1624), as IPv4, ICMP, UDP, TCP and ICMPv6 use it.
 *
 * Values are host-order 16-bit numbers as they read with load_be16() from the
 * wire. Partial sums may be chained over several buffers; only the last
 * buffer of a chain may have an odd length. Never reads outside the buffer. */
#ifndef BASE_CHECKSUM_H
#define BASE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Adds the bytes to a running ones'-complement sum (unfolded). */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);

/* Folds a running sum and complements it: the value to store in a header.
 * A buffer that includes a correct checksum folds to 0. */
uint16_t csum_fold(uint32_t sum);

/* csum_fold(csum_partial(data, len, 0)). */
uint16_t csum_buf(const void *data, size_t len);

/* Running sums of the pseudo-headers (RFC 768/793 for IPv4, RFC 8200 §8.1). */
uint32_t csum_pseudo_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
			  uint16_t l4_len);
uint32_t csum_pseudo_ipv6(const uint8_t src[16], const uint8_t dst[16], uint8_t next_header,
			  uint32_t l4_len);

/* RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from
 * old_word to new_word, HC' = ~(~HC + ~m + m'). */
uint16_t csum_update16(uint16_t csum, uint16_t old_word, uint16_t new_word);

/* The same for a changed 32-bit field (an IPv4 address). */
uint16_t csum_update32(uint16_t csum, uint32_t old_word, uint32_t new_word);

/* The same for a changed run of bytes of even length (an IPv6 address);
 * old and new must be 16-bit aligned within the checksummed data. */
uint16_t csum_update_bytes(uint16_t csum, const uint8_t *old_bytes, const uint8_t *new_bytes,
			   size_t len);

#endif
