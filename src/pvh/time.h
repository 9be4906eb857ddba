/* time.h — monotonic and wall-clock time for the unikernel (spec §4).
 *
 * Under Xen: pvclock from shared_info's vcpu_info[0].time (seqlock on the
 * version, 128-bit scaled multiply), never going backwards; wall clock from
 * shared_info's wc_* fields plus system time, re-read on every call.
 * Without Xen (the QEMU smoke test) the TSC scaled by the CPUID frequency
 * (or an assumed 1 GHz) stands in: good enough for log timestamps and rate
 * limiting, never for protocol timing. */
#ifndef PVH_TIME_H
#define PVH_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "pvh/xen_abi.h"

/* shared_info may be NULL (no Xen): TSC fallback. */
void time_init(volatile struct shared_info *si);

/* Nanoseconds since boot (Xen: since domain creation), monotonic. */
uint64_t time_now_ns(void);

/* Unix time in ns, 0 when unknown (no Xen). */
uint64_t time_wall_ns(void);

bool time_is_pvclock(void);

#endif
