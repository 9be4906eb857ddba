/* timer.c — binary min-heap of timer handles keyed by deadline.
 *
 * Invariants: slots[0..count) hold armed handles, slots[i]->heap_index == i,
 * and no child's deadline is earlier than its parent's. Must never allocate
 * or touch a handle that is not in the heap except to mark it idle. */
#include "base/timer.h"

#include "base/panic.h"

static void place(struct timer_heap *h, uint32_t i, struct timer *t)
{
	h->slots[i] = t;
	t->heap_index = i;
}

static void sift_up(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->slots[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (h->slots[parent]->deadline_ns <= t->deadline_ns)
			break;
		place(h, i, h->slots[parent]);
		i = parent;
	}
	place(h, i, t);
}

static void sift_down(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->slots[i];
	for (;;) {
		uint32_t left = 2 * i + 1;
		if (left >= h->count)
			break;
		uint32_t child = left;
		if (left + 1 < h->count &&
		    h->slots[left + 1]->deadline_ns < h->slots[left]->deadline_ns)
			child = left + 1;
		if (t->deadline_ns <= h->slots[child]->deadline_ns)
			break;
		place(h, i, h->slots[child]);
		i = child;
	}
	place(h, i, t);
}

/* Restores the heap property after slots[i]'s deadline changed either way. */
static void fix(struct timer_heap *h, uint32_t i)
{
	if (i > 0 && h->slots[(i - 1) / 2]->deadline_ns > h->slots[i]->deadline_ns)
		sift_up(h, i);
	else
		sift_down(h, i);
}

void timer_init(struct timer *t)
{
	t->deadline_ns = 0;
	t->heap_index = TIMER_IDLE;
}

void timer_heap_init(struct timer_heap *h, struct timer **storage, uint32_t capacity)
{
	ASSERT(storage != NULL || capacity == 0);
	ASSERT(capacity < TIMER_IDLE);
	h->slots = storage;
	h->capacity = capacity;
	h->count = 0;
}

/* A handle that claims a slot must really be in that slot of this heap. */
static void check_member(const struct timer_heap *h, const struct timer *t)
{
	ASSERT(t->heap_index < h->count && h->slots[t->heap_index] == t);
}

bool timer_arm(struct timer_heap *h, struct timer *t, uint64_t deadline_ns)
{
	if (timer_armed(t)) {
		check_member(h, t);
		t->deadline_ns = deadline_ns;
		fix(h, t->heap_index);
		return true;
	}
	if (h->count == h->capacity)
		return false;
	t->deadline_ns = deadline_ns;
	place(h, h->count, t);
	h->count++;
	sift_up(h, t->heap_index);
	return true;
}

static void remove_at(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->slots[i];
	h->count--;
	if (i != h->count) {
		place(h, i, h->slots[h->count]);
		fix(h, i);
	}
	h->slots[h->count] = NULL;
	t->heap_index = TIMER_IDLE;
}

void timer_cancel(struct timer_heap *h, struct timer *t)
{
	if (!timer_armed(t))
		return;
	check_member(h, t);
	remove_at(h, t->heap_index);
}

uint64_t timer_next_deadline(const struct timer_heap *h)
{
	return h->count ? h->slots[0]->deadline_ns : TIMER_NEVER;
}

struct timer *timer_pop_expired(struct timer_heap *h, uint64_t now_ns)
{
	if (h->count == 0 || h->slots[0]->deadline_ns > now_ns)
		return NULL;
	struct timer *t = h->slots[0];
	remove_at(h, 0);
	return t;
}

uint32_t timer_count(const struct timer_heap *h)
{
	return h->count;
}
