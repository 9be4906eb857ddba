/* timer.h — deadlines driven by the caller's clock: a binary min-heap of
 * timer handles in caller-owned storage.
 *
 * A handle (struct timer) is embedded in its owner (a connection, a
 * reassembly context); the heap only stores pointers to handles, and each
 * handle remembers its heap slot, so arm, re-arm and cancel are O(log n).
 * Capacity is fixed at init from the caller's storage: nothing allocates.
 * Time is always a parameter (now_ns); nothing here reads a clock. Timers
 * with equal deadlines expire in no particular order. */
#ifndef BASE_TIMER_H
#define BASE_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* timer_next_deadline() when nothing is armed. */
#define TIMER_NEVER UINT64_MAX
/* heap_index of a handle that is not armed. */
#define TIMER_IDLE UINT32_MAX

struct timer {
	uint64_t deadline_ns;
	uint32_t heap_index; /* slot in the heap, or TIMER_IDLE */
};

struct timer_heap {
	struct timer **slots;
	uint32_t capacity;
	uint32_t count;
};

/* The owner of a handle, from the handle: TIMER_OWNER(t, struct conn, timer). */
#define TIMER_OWNER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Makes a handle idle; every handle must be initialised before first use. */
void timer_init(struct timer *t);

/* An empty heap over storage[capacity] (from the arena or static). */
void timer_heap_init(struct timer_heap *h, struct timer **storage, uint32_t capacity);

/* Arms t for deadline_ns, or moves it if it is already armed in h. False
 * only when t is idle and the heap is full (size the heap to the number of
 * handles and this never happens). */
bool timer_arm(struct timer_heap *h, struct timer *t, uint64_t deadline_ns)
	__attribute__((warn_unused_result));

/* Disarms t; a no-op when t is idle. */
void timer_cancel(struct timer_heap *h, struct timer *t);

static inline bool timer_armed(const struct timer *t)
{
	return t->heap_index != TIMER_IDLE;
}

/* The earliest deadline, or TIMER_NEVER when nothing is armed. */
uint64_t timer_next_deadline(const struct timer_heap *h);

/* Removes and returns one timer whose deadline is <= now_ns (the earliest),
 * now idle, or NULL when none has expired. O(log n) per call: the caller
 * loops with its own budget so one step never does unbounded work. */
struct timer *timer_pop_expired(struct timer_heap *h, uint64_t now_ns);

/* Number of armed timers. */
uint32_t timer_count(const struct timer_heap *h);

#endif
