/* entropy.h — seeding the CSPRNG (base/csprng.h) at start-up.
 *
 * Sources, best first: RDSEED, RDRAND (each only when CPUID advertises
 * it, each with a bounded retry), then TSC jitter around exiting
 * instructions and the clocks, which are always mixed in but are weak on
 * their own. Runs once; never loops without a bound. */
#ifndef PVH_ENTROPY_H
#define PVH_ENTROPY_H

#include <stdbool.h>
#include <stdint.h>

struct entropy_report {
	uint32_t hw_words;   /* 64-bit words from RDSEED/RDRAND */
	bool rdseed, rdrand; /* what CPUID advertised */
	bool strong;         /* at least 256 bits from hardware */
};

/* Gathers and seeds; the report says how good the seed is. */
void entropy_seed_csprng(struct entropy_report *out);

#endif
