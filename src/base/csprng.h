/* csprng.h — the firewall's random numbers: ChaCha20 (RFC 8439) with fast
 * key erasure.
 *
 * Used for everything a peer must not predict: NAT ports and ICMP ids, DNS
 * query ids and ports, the per-boot SipHash keys of hash tables. One
 * generator for the whole program. The platform seeds it once at start with
 * at least CSPRNG_SEED_MIN bytes of real entropy (RDRAND/RDSEED, the host's
 * getrandom) before anything draws from it; drawing from an unseeded
 * generator is a bug and panics. Never blocks, never allocates, never loops
 * without a bound. */
#ifndef BASE_CSPRNG_H
#define BASE_CSPRNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSPRNG_SEED_MIN 32

#define CHACHA20_KEY_LEN 32
#define CHACHA20_NONCE_LEN 12
#define CHACHA20_BLOCK_LEN 64

/* After this many rejected draws csprng_uniform gives up on perfect
 * uniformity and reduces the last draw modulo n. Each draw is rejected with
 * probability < 1/2, so this happens with probability < 2^-64. */
#define CSPRNG_UNIFORM_MAX_TRIES 64

/* Mixes seed into the generator's key. The first call must bring at least
 * CSPRNG_SEED_MIN bytes (false otherwise, and the generator stays
 * unseeded); later calls (reseeding) may bring any amount and always change
 * all future output. */
bool csprng_seed(const void *seed, size_t len);
bool csprng_is_seeded(void);

/* len random bytes into out. */
void csprng_bytes(void *out, size_t len);
uint32_t csprng_u32(void);

/* Uniform in [0, n) by rejection sampling (bounded, see above); 0 when n is 0. */
uint32_t csprng_uniform(uint32_t n);

/* The RFC 8439 §2.3 block function, exposed for its known-answer test:
 * 64 bytes of key stream for (key, counter, nonce). */
void csprng_chacha20_block(const uint8_t key[CHACHA20_KEY_LEN], uint32_t counter,
			   const uint8_t nonce[CHACHA20_NONCE_LEN], uint8_t out[CHACHA20_BLOCK_LEN]);

/* Forgets all state (tests only: the next draw panics until reseeded). */
void csprng_reset(void);

#endif
