/* clock.h — the monotonic clock as the event loop last read it.
 *
 * The platform sets it once per loop step; everything else reads it. Pure
 * functions that depend on time (conntrack, timers, reassembly) take `now`
 * as an argument instead, so they are testable with a fake clock; this
 * global exists for the logger's rate limiting and similar bookkeeping. */
#ifndef BASE_CLOCK_H
#define BASE_CLOCK_H

#include <stdint.h>

#define NS_PER_SEC 1000000000ull
#define NS_PER_MS 1000000ull

void clock_set_now(uint64_t now_ns);
uint64_t clock_now(void);

/* Wall clock, seconds since the Unix epoch plus nanoseconds; 0 when unknown.
 * Set by the platform at start and by qubes.SetDateTime. */
void clock_set_wall(uint64_t epoch_ns);
uint64_t clock_wall(void);

#endif
