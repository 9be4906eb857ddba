/* arena.h — start-up memory: one region carved into the fixed tables.
 *
 * Every table (connection table, pools, rings) is sized from configuration
 * and taken from an arena while the firewall starts. After arena_seal() any
 * further allocation is a bug and panics: nothing is allocated while
 * packets flow, so no peer can make us grow. Nothing is ever freed. */
#ifndef BASE_ARENA_H
#define BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena {
	uint8_t *base;
	size_t size;
	size_t used;
	bool sealed;
};

void arena_init(struct arena *a, void *mem, size_t size);

/* Zeroed memory aligned to align (a power of two), or NULL when the arena
 * cannot hold it (the caller reports the configuration as too large). */
void *arena_alloc(struct arena *a, size_t size, size_t align);

void arena_seal(struct arena *a);
size_t arena_used(const struct arena *a);

#endif
