/* pvclock.c — see pvclock.h. */
#include "xen/pvclock.h"

uint64_t pvclock_ns(const struct pvclock_sample *s, uint64_t tsc)
{
	/* Behind the stamp: the stamp came from another pCPU, or Xen's
	 * emulated TSC lags it. Wrapping would make a delta of centuries,
	 * which the caller's never-backwards clamp would then keep forever
	 * (every deadline far in the future). */
	uint64_t delta = (int64_t)(tsc - s->tsc_timestamp) < 0 ? 0 : tsc - s->tsc_timestamp;

	if (s->tsc_shift >= 64 || s->tsc_shift <= -64)
		delta = 0; /* Xen never sends these; shifting by them is undefined */
	else if (s->tsc_shift >= 0)
		delta <<= s->tsc_shift;
	else
		delta >>= -s->tsc_shift;
	return s->system_time + (uint64_t)(((unsigned __int128)delta * s->tsc_to_system_mul) >> 32);
}
