/* mem.h — the unikernel's RAM: the memory map and the start-up arena.
 *
 * RAM comes from XENMEM_memory_map under Xen (spec §9.1), cross-checked
 * with the hvm_start_info map, or from the start-info map alone without
 * Xen. The arena is the RAM region that holds the image, from the first
 * page after _end to its end (capped at 4 GiB, the identity-mapped range,
 * and at the pages Xen actually gave us: with populate-on-demand touching
 * more would crash the domain). Everything the firewall allocates comes
 * from this arena at start-up (base/arena.h); nothing is ever freed. */
#ifndef PVH_MEM_H
#define PVH_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"

struct mem_info {
	uint64_t ram_total;    /* bytes of RAM in the map */
	uint64_t arena_start;  /* physical = virtual */
	uint64_t arena_end;
	uint64_t image_end;    /* _end */
	uint32_t map_entries;
	bool from_xen;         /* map came from XENMEM_memory_map */
	bool pod_suspected;    /* RAM in the map > pages we own */
};

/* Builds the map and the arena. False when no usable RAM region holds the
 * image (the caller panics). */
bool mem_init(bool xen);

const struct mem_info *mem_info(void);
/* True when any RAM range of the map overlaps [start, end). */
bool mem_overlaps_ram(uint64_t start, uint64_t end);
struct arena *mem_arena(void);

#endif
