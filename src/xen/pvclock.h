/* pvclock.h — the arithmetic of Xen's pvclock (xen-platform.md §4.1): the
 * system time in ns from one consistent sample of vcpu_time_info and a TSC
 * read. Pure, so it is unit-tested on the host; src/pvh/time.c does the
 * seqlock and the TSC read.
 *
 * Must never: return a time before the sample's system_time (a TSC read
 * that is behind the stamp counts as no time elapsed, it must not wrap). */
#ifndef XEN_PVCLOCK_H
#define XEN_PVCLOCK_H

#include <stdint.h>

struct pvclock_sample {
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
};

uint64_t pvclock_ns(const struct pvclock_sample *s, uint64_t tsc);

#endif
