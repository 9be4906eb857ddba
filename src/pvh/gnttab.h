/* gnttab.h — grant tables v1 on real Xen (spec §5): our table (we grant),
 * batched GNTTABOP_copy, and foreign mappings into a private GFN window.
 *
 * GFN window (spec §0.1, §5.3): 4 GiB .. 4 GiB + 64 MiB, identity-mapped by
 * boot.S (PDPT[4]) but not RAM: the grant-table frames are placed at its
 * start with XENMEM_add_to_physmap(XENMAPSPACE_grant_table), foreign grants
 * are mapped into slots from GNT_MAP_BASE on. Nothing there is touched
 * unless Xen put a frame in it. Never: zero the table (refs 0/1 belong to
 * the toolstack), hand out refs 0..7, reuse a ref whose access could not be
 * ended, map onto RAM. */
#ifndef PVH_GNTTAB_H
#define PVH_GNTTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xen/hv.h"

#define GNT_WINDOW_BASE 0x100000000ull
#define GNT_WINDOW_SIZE (64ull << 20)
/* Table frames: at most 64 (Xen's default max_grant_frames), 32768 refs. */
#define GNT_TABLE_MAX_FRAMES 64u
#define GNT_TABLE_MAX_REFS (GNT_TABLE_MAX_FRAMES * 512u)
/* Foreign-map slots: 4096 pages (16 MiB) from 4 GiB + 1 MiB. */
#define GNT_MAP_BASE (GNT_WINDOW_BASE + (1ull << 20))
#define GNT_MAP_SLOTS 4096u
/* Largest single hv_map_grants request (pages). */
#define GNT_MAP_MAX_BATCH 64u

_Static_assert(GNT_MAP_BASE + (uint64_t)GNT_MAP_SLOTS * 4096u <= GNT_WINDOW_BASE + GNT_WINDOW_SIZE,
	       "map slots inside the window");
_Static_assert((uint64_t)GNT_TABLE_MAX_FRAMES * 4096u <= GNT_MAP_BASE - GNT_WINDOW_BASE,
	       "table frames below the map slots");

/* GNTTABOP_query_size, then maps the first table frame. False when Xen
 * refuses (logged); every grant call then fails cleanly. window_ok: the
 * memory map leaves the window free (no RAM at 4 GiB). */
bool gnttab_init(bool window_ok);

/* Grants the page at guest-physical frame gfn. */
bool gnttab_grant(uint64_t gfn, hv_domid_t to, bool readonly, hv_gref_t *gref);
/* Ends it unless the peer has it in use; *gfn gets the frame it named. */
bool gnttab_end(hv_gref_t gref, uint64_t *gfn);

bool gnttab_copy(struct hv_copy *ops, size_t n);
void *gnttab_map(hv_domid_t from, const hv_gref_t *grefs, size_t n, bool readonly);
void gnttab_unmap(void *addr, size_t n);

/* Counters for the status report and tests. */
struct gnttab_stats {
	uint32_t frames, max_frames;
	uint32_t grants_in_use;
	uint32_t map_slots_in_use;
	uint64_t copy_ops, copy_errors, map_errors, unmap_errors;
};
void gnttab_get_stats(struct gnttab_stats *out);

#endif
