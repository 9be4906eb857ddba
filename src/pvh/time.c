/* time.c — see time.h. Both seqlocks are bounded: a version that stays odd
 * (a broken hypervisor) gives up after TIME_SEQ_TRIES and returns the last
 * value, so a clock read can never hang the firewall. */
#include "pvh/time.h"

#include "pvh/cpu.h"
#include "xen/pvclock.h"

#define TIME_SEQ_TRIES 1000u
#define NS_PER_SEC_U 1000000000ull

static volatile struct shared_info *shared;
static uint64_t last_ns;
static uint64_t tsc_start;
static uint32_t tsc_khz;

void time_init(volatile struct shared_info *si)
{
	shared = si;
	tsc_start = cpu_rdtsc();
	tsc_khz = cpu_features()->tsc_khz ? cpu_features()->tsc_khz : 1000000u;
	last_ns = 0;
}

bool time_is_pvclock(void)
{
	return shared != NULL;
}

static bool pvclock_read(uint64_t *ns)
{
	volatile struct vcpu_time_info *t = &shared->vcpu_info[0].time;

	for (uint32_t i = 0; i < TIME_SEQ_TRIES; i++) {
		uint32_t v = t->version;
		struct pvclock_sample smp;
		cpu_barrier();
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		smp.tsc_timestamp = t->tsc_timestamp;
		smp.system_time = t->system_time;
		smp.tsc_to_system_mul = t->tsc_to_system_mul;
		smp.tsc_shift = t->tsc_shift;
		uint64_t tsc = cpu_rdtsc();
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if ((v & 1) || v != t->version)
			continue;
		*ns = pvclock_ns(&smp, tsc);
		return true;
	}
	return false;
}

uint64_t time_now_ns(void)
{
	uint64_t ns;

	if (shared) {
		if (!pvclock_read(&ns))
			return last_ns;
	} else {
		uint64_t ticks = cpu_rdtsc() - tsc_start;
		/* ticks * 1e6 / khz, split so nothing overflows (and no
		 * 128-bit division, which would need libgcc) */
		ns = ticks / tsc_khz * 1000000u + ticks % tsc_khz * 1000000u / tsc_khz;
	}
	if (ns < last_ns) /* the vCPU moved to a pCPU with a slightly older TSC */
		ns = last_ns;
	last_ns = ns;
	return ns;
}

uint64_t time_wall_ns(void)
{
	if (!shared)
		return 0;
	for (uint32_t i = 0; i < TIME_SEQ_TRIES; i++) {
		uint32_t v = shared->wc_version;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint64_t sec = (uint64_t)shared->wc_sec_hi << 32 | shared->wc_sec;
		uint32_t nsec = shared->wc_nsec;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if ((v & 1) || v != shared->wc_version)
			continue;
		return sec * NS_PER_SEC_U + nsec + time_now_ns();
	}
	return 0;
}
