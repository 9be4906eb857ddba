/* entropy.c — see entropy.h. The gathered words are wiped after use. */
#include "pvh/entropy.h"

#include "base/csprng.h"
#include "base/libc.h"
#include "base/panic.h"
#include "pvh/cpu.h"
#include "pvh/time.h"

#define ENTROPY_WORDS 16u
#define HW_RETRIES 16u
#define STRONG_WORDS 4u

static bool rdseed64(uint64_t *v)
{
	for (uint32_t i = 0; i < HW_RETRIES; i++) {
		uint8_t ok;
		__asm__ volatile("rdseed %0; setc %1" : "=r"(*v), "=qm"(ok) : : "cc");
		if (ok)
			return true;
		__asm__ volatile("pause");
	}
	return false;
}

static bool rdrand64(uint64_t *v)
{
	for (uint32_t i = 0; i < HW_RETRIES; i++) {
		uint8_t ok;
		__asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok) : : "cc");
		if (ok)
			return true;
	}
	return false;
}

/* TSC difference across a CPUID, which traps to the hypervisor (or is
 * emulated): its duration varies with host load and cache state. */
static uint64_t jitter_sample(void)
{
	uint64_t t0 = cpu_rdtsc();
	(void)cpu_cpuid(0, 0);
	return cpu_rdtsc() - t0;
}

void entropy_seed_csprng(struct entropy_report *out)
{
	const struct cpu_features *f = cpu_features();
	volatile uint64_t words[ENTROPY_WORDS * 2];
	uint64_t mix[ENTROPY_WORDS * 2];

	memset(out, 0, sizeof(*out));
	out->rdseed = f->rdseed;
	out->rdrand = f->rdrand;
	for (uint32_t i = 0; i < ENTROPY_WORDS; i++) {
		uint64_t hw = 0;
		bool got = (f->rdseed && rdseed64(&hw)) || (f->rdrand && rdrand64(&hw));
		if (got)
			out->hw_words++;
		words[(size_t)2 * i] = hw;
		words[(size_t)2 * i + 1] = cpu_rdtsc() ^ jitter_sample() << 32 ^ time_now_ns() ^
				   (uint64_t)i << 56;
	}
	words[0] ^= time_wall_ns();
	out->strong = out->hw_words >= STRONG_WORDS;
	for (uint32_t i = 0; i < ENTROPY_WORDS * 2; i++)
		mix[i] = words[i];
	if (!csprng_seed(mix, sizeof(mix)))
		panic("entropy: csprng_seed refused %u bytes", (unsigned)sizeof(mix));
	for (uint32_t i = 0; i < ENTROPY_WORDS * 2; i++) {
		words[i] = 0;
		*(volatile uint64_t *)&mix[i] = 0;
	}
}
