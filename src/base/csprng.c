/* csprng.c — ChaCha20 key-stream generator with fast key erasure
 * (Bernstein, "Fast-key-erasure random-number generators", 2017).
 *
 * Each refill runs the block function under the current key, immediately
 * replaces the key with the first 32 bytes of the output, and serves the
 * rest. Served bytes are wiped from the buffer, so a later memory
 * disclosure reveals nothing about output already handed out. Seeding
 * absorbs the seed 32 bytes at a time: key ^= chunk, then key = first 32
 * bytes of a block under that key with a domain-separating nonce. */
#include "base/csprng.h"

#include "base/byteorder.h"
#include "base/libc.h"
#include "base/panic.h"

#define REFILL_BLOCKS 4
#define REFILL_LEN ((size_t)REFILL_BLOCKS * CHACHA20_BLOCK_LEN)

static struct {
	uint8_t key[CHACHA20_KEY_LEN];
	uint8_t buf[REFILL_LEN];
	size_t pos; /* next unserved byte of buf; REFILL_LEN = empty */
	bool seeded;
} g = {.pos = REFILL_LEN};

/* The nonces distinguish seeding from output generation. */
static const uint8_t nonce_output[CHACHA20_NONCE_LEN] = {0};
static const uint8_t nonce_seed[CHACHA20_NONCE_LEN] = {'s', 'e', 'e', 'd'};

static inline uint32_t rotl32(uint32_t x, unsigned int b)
{
	return (x << b) | (x >> (32u - b));
}

/* The RFC 8439 §2.1 quarter round on four words of the state. */
static inline void quarter_round(uint32_t x[16], int a, int b, int c, int d)
{
	x[a] += x[b];
	x[d] = rotl32(x[d] ^ x[a], 16);
	x[c] += x[d];
	x[b] = rotl32(x[b] ^ x[c], 12);
	x[a] += x[b];
	x[d] = rotl32(x[d] ^ x[a], 8);
	x[c] += x[d];
	x[b] = rotl32(x[b] ^ x[c], 7);
}

void csprng_chacha20_block(const uint8_t key[CHACHA20_KEY_LEN], uint32_t counter,
			   const uint8_t nonce[CHACHA20_NONCE_LEN], uint8_t out[CHACHA20_BLOCK_LEN])
{
	uint32_t init[16];
	/* "expand 32-byte k" */
	init[0] = 0x61707865u;
	init[1] = 0x3320646eu;
	init[2] = 0x79622d32u;
	init[3] = 0x6b206574u;
	for (int i = 0; i < 8; i++)
		init[4 + i] = load_le32(key + (size_t)4 * i);
	init[12] = counter;
	for (int i = 0; i < 3; i++)
		init[13 + i] = load_le32(nonce + (size_t)4 * i);

	uint32_t x[16];
	memcpy(x, init, sizeof(x));
	for (int i = 0; i < 10; i++) {
		quarter_round(x, 0, 4, 8, 12);
		quarter_round(x, 1, 5, 9, 13);
		quarter_round(x, 2, 6, 10, 14);
		quarter_round(x, 3, 7, 11, 15);
		quarter_round(x, 0, 5, 10, 15);
		quarter_round(x, 1, 6, 11, 12);
		quarter_round(x, 2, 7, 8, 13);
		quarter_round(x, 3, 4, 9, 14);
	}
	for (int i = 0; i < 16; i++)
		store_le32(out + (size_t)4 * i, x[i] + init[i]);
	memset(x, 0, sizeof(x));
	memset(init, 0, sizeof(init));
}

static void refill(void)
{
	ASSERT(g.seeded);
	for (uint32_t i = 0; i < REFILL_BLOCKS; i++)
		csprng_chacha20_block(g.key, i, nonce_output, g.buf + (size_t)i * CHACHA20_BLOCK_LEN);
	/* Erase the old key at once: the first 32 bytes become the next key
	 * and are never served. */
	memcpy(g.key, g.buf, CHACHA20_KEY_LEN);
	memset(g.buf, 0, CHACHA20_KEY_LEN);
	g.pos = CHACHA20_KEY_LEN;
}

bool csprng_seed(const void *seed, size_t len)
{
	const uint8_t *p = seed;
	if (!g.seeded && len < CSPRNG_SEED_MIN)
		return false;
	uint8_t block[CHACHA20_BLOCK_LEN];
	uint8_t nonce[CHACHA20_NONCE_LEN];
	memcpy(nonce, nonce_seed, sizeof(nonce));
	/* The length goes into the nonce so that seeds differing only in
	 * trailing zero bytes still give different keys. */
	store_le64(nonce + 4, (uint64_t)len);
	size_t off = 0;
	uint32_t chunk_no = 0;
	do {
		size_t n = MIN(len - off, (size_t)CHACHA20_KEY_LEN);
		for (size_t i = 0; i < n; i++)
			g.key[i] ^= p[off + i];
		csprng_chacha20_block(g.key, chunk_no, nonce, block);
		memcpy(g.key, block, CHACHA20_KEY_LEN);
		off += n;
		chunk_no++;
	} while (off < len);
	memset(block, 0, sizeof(block));
	/* Buffered output came from the old key: discard it. */
	memset(g.buf, 0, sizeof(g.buf));
	g.pos = REFILL_LEN;
	g.seeded = true;
	return true;
}

bool csprng_is_seeded(void)
{
	return g.seeded;
}

void csprng_bytes(void *out, size_t len)
{
	uint8_t *o = out;
	ASSERT(g.seeded);
	while (len > 0) {
		if (g.pos == REFILL_LEN)
			refill();
		size_t n = MIN(len, (size_t)(REFILL_LEN - g.pos));
		memcpy(o, g.buf + g.pos, n);
		memset(g.buf + g.pos, 0, n);
		g.pos += n;
		o += n;
		len -= n;
	}
}

uint32_t csprng_u32(void)
{
	uint8_t b[4];
	csprng_bytes(b, sizeof(b));
	return load_le32(b);
}

uint32_t csprng_uniform(uint32_t n)
{
	if (n == 0)
		return 0;
	/* 2^32 mod n: draws below it would favour the low residues. */
	uint32_t threshold = (uint32_t)(0u - n) % n;
	uint32_t x = 0;
	for (int i = 0; i < CSPRNG_UNIFORM_MAX_TRIES; i++) {
		x = csprng_u32();
		if (x >= threshold)
			return x % n;
	}
	return x % n;
}

void csprng_reset(void)
{
	memset(&g, 0, sizeof(g));
	g.pos = REFILL_LEN;
}
