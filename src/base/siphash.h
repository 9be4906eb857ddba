/* siphash.h — SipHash-2-4 (Aumasson & Bernstein, 2012): a keyed 64-bit PRF
 * for hash tables whose keys a peer chooses.
 *
 * With a secret per-boot key a peer cannot predict which bucket a tuple
 * lands in, so it cannot build long chains (hash flooding). Never use it
 * with a fixed or guessable key for that purpose, and never as a MAC of
 * anything longer-lived than the boot. */
#ifndef BASE_SIPHASH_H
#define BASE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

/* The 128-bit key as the two little-endian words k0 = key[0..7],
 * k1 = key[8..15], loaded once so hashing never re-reads key bytes. */
struct siphash_key {
	uint64_t k0;
	uint64_t k1;
};

void siphash_key_from_bytes(struct siphash_key *key, const uint8_t bytes[SIPHASH_KEY_LEN]);

/* SipHash-2-4 of len bytes. The paper's output byte string is this value
 * stored little-endian (store_le64). */
uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len);

#endif
