/* clock.c — storage for the loop's monotonic and wall clocks.
 * Wall time is kept as an offset from the monotonic clock so that it
 * advances between updates. Never reads hardware itself. */
#include "base/clock.h"

static uint64_t mono_now;
static int64_t wall_offset;
static int wall_known;

void clock_set_now(uint64_t now_ns)
{
	mono_now = now_ns;
}

uint64_t clock_now(void)
{
	return mono_now;
}

void clock_set_wall(uint64_t epoch_ns)
{
	wall_offset = (int64_t)(epoch_ns - mono_now);
	wall_known = 1;
}

uint64_t clock_wall(void)
{
	return wall_known ? (uint64_t)((int64_t)mono_now + wall_offset) : 0;
}
