/* arena.c — bump allocation for start-up, sealed afterwards. */
#include "base/arena.h"

#include "base/libc.h"
#include "base/panic.h"

void arena_init(struct arena *a, void *mem, size_t size)
{
	a->base = mem;
	a->size = size;
	a->used = 0;
	a->sealed = false;
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
	ASSERT(align && (align & (align - 1)) == 0);
	if (a->sealed)
		panic("arena_alloc(%zu) after start-up", size);
	uintptr_t start = ((uintptr_t)a->base + a->used + align - 1) & ~(uintptr_t)(align - 1);
	size_t offset = (size_t)(start - (uintptr_t)a->base);
	if (offset > a->size || size > a->size - offset)
		return NULL;
	a->used = offset + size;
	/* Back to a pointer by offset from base, not from the integer. */
	uint8_t *p = a->base + offset;
	memset(p, 0, size);
	return p;
}

void arena_seal(struct arena *a)
{
	a->sealed = true;
}

size_t arena_used(const struct arena *a)
{
	return a->used;
}
