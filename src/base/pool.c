/* pool.c — free list of fixed-size objects, with per-object state so that
 * misuse (double free, foreign pointer) is caught instead of corrupting the
 * list. Never allocates after init; all operations are O(1). */
#include "base/pool.h"

#include "base/libc.h"
#include "base/panic.h"

/* link[] value of an allocated object; POOL_NO_INDEX ends the free list. */
#define POOL_LINK_USED (UINT32_MAX - 1)

void pool_init(struct pool *p, void *objs, uint32_t *link, size_t obj_size, uint32_t capacity)
{
	ASSERT(obj_size > 0);
	ASSERT(capacity < POOL_LINK_USED);
	ASSERT(capacity == 0 || (objs != NULL && link != NULL));
	p->objs = objs;
	p->link = link;
	p->stride = obj_size;
	p->capacity = capacity;
	p->in_use = 0;
	/* Ascending order: the first objects handed out are the lowest. */
	for (uint32_t i = 0; i < capacity; i++)
		link[i] = i + 1 < capacity ? i + 1 : POOL_NO_INDEX;
	p->free_head = capacity ? 0 : POOL_NO_INDEX;
}

bool pool_init_arena(struct pool *p, struct arena *a, size_t obj_size, size_t align,
		     uint32_t capacity)
{
	ASSERT(obj_size > 0);
	ASSERT(align && (align & (align - 1)) == 0);
	size_t stride = (obj_size + align - 1) & ~(align - 1);
	if (stride < obj_size || capacity >= POOL_LINK_USED ||
	    (capacity && stride > SIZE_MAX / capacity))
		return false;
	void *objs = arena_alloc(a, stride * capacity, align);
	uint32_t *link = arena_alloc(a, POOL_LINK_BYTES(capacity), _Alignof(uint32_t));
	if (!objs || !link)
		return false;
	pool_init(p, objs, link, stride, capacity);
	return true;
}

void *pool_alloc(struct pool *p)
{
	uint32_t i = p->free_head;
	if (i == POOL_NO_INDEX)
		return NULL;
	ASSERT(i < p->capacity && p->link[i] != POOL_LINK_USED);
	p->free_head = p->link[i];
	p->link[i] = POOL_LINK_USED;
	p->in_use++;
	void *obj = p->objs + (size_t)i * p->stride;
	memset(obj, 0, p->stride);
	return obj;
}

/* The index of any pointer into the pool's object area at an object start;
 * panics otherwise. */
static uint32_t index_checked(const struct pool *p, const void *obj)
{
	uintptr_t base = (uintptr_t)p->objs;
	uintptr_t ptr = (uintptr_t)obj;
	if (ptr < base || p->capacity == 0)
		panic("pool: foreign pointer %p", obj);
	uintptr_t off = ptr - base;
	if (off / p->stride >= p->capacity || off % p->stride != 0)
		panic("pool: foreign pointer %p", obj);
	return (uint32_t)(off / p->stride);
}

void pool_free(struct pool *p, void *obj)
{
	uint32_t i = index_checked(p, obj);
	if (p->link[i] != POOL_LINK_USED)
		panic("pool: double free of object %u", i);
	p->link[i] = p->free_head;
	p->free_head = i;
	p->in_use--;
}

uint32_t pool_count(const struct pool *p)
{
	return p->in_use;
}

uint32_t pool_capacity(const struct pool *p)
{
	return p->capacity;
}

uint32_t pool_index_of(const struct pool *p, const void *obj)
{
	uint32_t i = index_checked(p, obj);
	if (p->link[i] != POOL_LINK_USED)
		panic("pool: index_of free object %u", i);
	return i;
}

void *pool_at(const struct pool *p, uint32_t index)
{
	if (index >= p->capacity || p->link[index] != POOL_LINK_USED)
		return NULL;
	return p->objs + (size_t)index * p->stride;
}
