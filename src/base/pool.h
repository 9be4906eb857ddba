/* pool.h — fixed-size objects from a fixed region, with explicit capacity.
 *
 * Every table that holds per-peer state (connections, NAT mappings,
 * reassembly contexts) is a pool sized from configuration at start-up.
 * pool_alloc returns NULL when the pool is full: the caller decides what to
 * evict; a pool never grows. Freeing a pointer twice or a pointer that is
 * not from the pool is our bug and panics. Objects are identified by a
 * stable index (0..capacity-1) for compact references and iteration. */
#ifndef BASE_POOL_H
#define BASE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"

#define POOL_NO_INDEX UINT32_MAX

struct pool {
	uint8_t *objs;    /* capacity * stride bytes */
	uint32_t *link;   /* per object: next free index, or POOL_LINK_USED */
	size_t stride;    /* object size rounded up to the alignment */
	uint32_t capacity;
	uint32_t in_use;
	uint32_t free_head;
};

/* Bytes of link storage pool_init needs for capacity objects. */
#define POOL_LINK_BYTES(capacity) ((size_t)(capacity) * sizeof(uint32_t))

/* A pool over caller memory: objs must hold capacity objects of obj_size
 * bytes each (obj_size must already be a multiple of the objects'
 * alignment, as sizeof is), link must hold capacity uint32_t. */
void pool_init(struct pool *p, void *objs, uint32_t *link, size_t obj_size, uint32_t capacity);

/* A pool whose storage comes from the arena; false (and nothing usable)
 * when the arena cannot hold it. */
bool pool_init_arena(struct pool *p, struct arena *a, size_t obj_size, size_t align,
		     uint32_t capacity) __attribute__((warn_unused_result));

/* A zeroed object, or NULL when all capacity objects are in use. */
void *pool_alloc(struct pool *p);

/* Returns obj to the pool; panics on a double free or a foreign pointer. */
void pool_free(struct pool *p, void *obj);

/* Objects currently allocated, and the fixed capacity. */
uint32_t pool_count(const struct pool *p);
uint32_t pool_capacity(const struct pool *p);

/* The index of an allocated object; panics on a foreign or free pointer. */
uint32_t pool_index_of(const struct pool *p, const void *obj);

/* The object at index if it is allocated, else NULL (also for index >=
 * capacity), so a table can be walked by index. */
void *pool_at(const struct pool *p, uint32_t index);

#endif
