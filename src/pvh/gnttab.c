/* gnttab.c — see gnttab.h. Grant entries are written with the order the
 * spec requires (§5.2, §11.2 item 12): frame and domid, release barrier,
 * then flags; revoked with a compare-and-swap on flags that fails while Xen
 * shows GTF_reading/GTF_writing. Peer-supplied grant refs, domids and
 * offsets only ever reach Xen, which checks them; we check page bounds
 * before the hypercall so a bad op fails alone with its own status. */
#include "pvh/gnttab.h"

#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"
#include "pvh/cpu.h"
#include "pvh/hypercall.h"
#include "pvh/xen_abi.h"

#define PAGE_SHIFT 12
#define PAGE_MASK 4095u
#define COPY_BATCH 64u
#define REF_WORDS (GNT_TABLE_MAX_REFS / 64u)
#define SLOT_WORDS (GNT_MAP_SLOTS / 64u)
#define HANDLE_NONE 0xffffffffu

static struct {
	bool ready;
	uint32_t frames;        /* table frames mapped */
	uint32_t max_frames;
	uint32_t cursor;        /* next ref to look at */
	uint32_t in_use;
	uint64_t ref_used[REF_WORDS];
	bool window_ok;
	uint64_t slot_used[SLOT_WORDS];
	uint32_t slot_handle[GNT_MAP_SLOTS];
	uint16_t slot_len[GNT_MAP_SLOTS]; /* pages, at the first slot of a mapping */
	uint32_t slots_in_use;
	uint64_t copy_ops, copy_errors, map_errors, unmap_errors;
} gt;

static struct grant_entry_v1 *entries(void)
{
	return cpu_phys(GNT_WINDOW_BASE);
}

static bool bit_get(const uint64_t *map, uint32_t i)
{
	return (map[i / 64] >> (i % 64)) & 1u;
}

static void bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static void bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

static bool add_frame(void)
{
	uint64_t gfn = (GNT_WINDOW_BASE >> PAGE_SHIFT) + gt.frames;
	long rc;

	if (gt.frames >= gt.max_frames)
		return false;
	rc = hypercall_add_to_physmap(XENMAPSPACE_grant_table, gt.frames, gfn);
	if (rc != 0) {
		log_warn("gnttab: mapping table frame %u failed (%ld)", (unsigned)gt.frames, rc);
		gt.max_frames = gt.frames; /* do not retry on every grant */
		return false;
	}
	gt.frames++;
	return true;
}

bool gnttab_init(bool window_ok)
{
	struct gnttab_query_size q = { .dom = DOMID_SELF };
	long rc;

	memset(&gt, 0, sizeof(gt));
	gt.window_ok = window_ok;
	if (!window_ok) {
		log_error("gnttab: RAM overlaps the grant window at 4 GiB; grants disabled");
		return false;
	}
	rc = hypercall_grant_table_op(GNTTABOP_query_size, &q, 1);
	if (rc != 0 || q.status != 0 || q.max_nr_frames == 0) {
		log_error("gnttab: GNTTABOP_query_size failed (%ld, status %d)", rc, (int)q.status);
		return false;
	}
	gt.max_frames = MIN(q.max_nr_frames, GNT_TABLE_MAX_FRAMES);
	for (uint32_t r = 0; r < GNTTAB_NR_RESERVED_ENTRIES; r++)
		bit_set(gt.ref_used, r);
	gt.cursor = GNTTAB_NR_RESERVED_ENTRIES;
	if (!add_frame())
		return false;
	gt.ready = true;
	log_info("gnttab: v1 table, %u of at most %u frames mapped at 0x%llx (Xen has %u)",
		 (unsigned)gt.frames, (unsigned)gt.max_frames,
		 (unsigned long long)GNT_WINDOW_BASE, (unsigned)q.nr_frames);
	return true;
}

/* A free ref inside the mapped frames, growing the table when needed. */
static bool ref_alloc(uint32_t *out)
{
	for (int pass = 0; pass < 2; pass++) {
		uint32_t limit = gt.frames * GNTTAB_ENTRIES_PER_FRAME;
		for (uint32_t k = 0; k < limit; k++) {
			uint32_t r = gt.cursor + k;
			if (r >= limit)
				r -= limit;
			if (r < GNTTAB_NR_RESERVED_ENTRIES || bit_get(gt.ref_used, r))
				continue;
			bit_set(gt.ref_used, r);
			gt.cursor = r + 1;
			*out = r;
			return true;
		}
		if (!add_frame())
			return false;
	}
	return false;
}

bool gnttab_grant(uint64_t gfn, hv_domid_t to, bool readonly, hv_gref_t *gref)
{
	struct grant_entry_v1 *e;
	uint32_t r;

	if (!gt.ready || gfn > UINT32_MAX || !ref_alloc(&r))
		return false;
	e = &entries()[r];
	__atomic_store_n(&e->frame, (uint32_t)gfn, __ATOMIC_RELAXED);
	__atomic_store_n(&e->domid, to, __ATOMIC_RELAXED);
	/* Frame and domid must be visible before the entry becomes valid. */
	__atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
			 __ATOMIC_RELEASE);
	gt.in_use++;
	*gref = r;
	return true;
}

bool gnttab_end(hv_gref_t gref, uint64_t *gfn)
{
	struct grant_entry_v1 *e;
	uint16_t flags;

	if (!gt.ready || gref < GNTTAB_NR_RESERVED_ENTRIES || gref >= GNT_TABLE_MAX_REFS ||
	    !bit_get(gt.ref_used, gref))
		panic("gnttab: ending grant %u which we never made", (unsigned)gref);
	e = &entries()[gref];
	flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
	do {
		/* Xen sets these while the peer maps or copies the page. */
		if (flags & (GTF_reading | GTF_writing))
			return false;
	} while (!__atomic_compare_exchange_n(&e->flags, &flags, 0, false, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	*gfn = __atomic_load_n(&e->frame, __ATOMIC_RELAXED);
	bit_clear(gt.ref_used, gref);
	gt.in_use--;
	return true;
}

/* ---- copy -------------------------------------------------------------------- */

/* Fills one side; returns HV_GNT_OK or the status the op fails with. */
static int16_t copy_side(const struct hv_copy_end *e, uint16_t len, struct gnttab_copy_ptr *p,
			 uint16_t *flags, uint16_t gref_flag)
{
	if (e->foreign) {
		if ((uint32_t)e->offset + len > HV_PAGE_SIZE)
			return HV_GNT_BAD_COPY_ARG;
		p->u = e->gref;
		p->domid = e->domid;
		p->offset = e->offset;
		*flags |= gref_flag;
		return HV_GNT_OK;
	}
	uint64_t a = (uint64_t)(uintptr_t)e->local;
	/* Ordinary RAM only: never the window of foreign frames (or NULL). */
	if (a < 4096u || a >= GNT_WINDOW_BASE)
		return HV_GNT_BAD_VIRT_ADDR;
	if ((a & PAGE_MASK) + len > HV_PAGE_SIZE)
		return HV_GNT_BAD_COPY_ARG;
	p->u = a >> PAGE_SHIFT;
	p->domid = DOMID_SELF;
	p->offset = (uint16_t)(a & PAGE_MASK);
	return HV_GNT_OK;
}

static bool copy_batch(struct hv_copy *ops, size_t n)
{
	struct gnttab_copy xo[COPY_BATCH];
	uint16_t idx[COPY_BATCH];
	uint32_t k = 0;
	long rc;

	for (size_t i = 0; i < n; i++) {
		struct gnttab_copy *c = &xo[k];
		int16_t st;
		memset(c, 0, sizeof(*c));
		c->len = ops[i].len;
		st = copy_side(&ops[i].src, ops[i].len, &c->source, &c->flags, GNTCOPY_source_gref);
		if (st == HV_GNT_OK)
			st = copy_side(&ops[i].dst, ops[i].len, &c->dest, &c->flags,
				       GNTCOPY_dest_gref);
		ops[i].status = st;
		if (st != HV_GNT_OK) {
			gt.copy_errors++;
			continue;
		}
		idx[k++] = (uint16_t)i;
	}
	if (k == 0)
		return true;
	rc = hypercall_grant_table_op(GNTTABOP_copy, xo, k);
	if (rc != 0) {
		log_warn("gnttab: GNTTABOP_copy of %u ops failed (%ld)", (unsigned)k, rc);
		for (uint32_t j = 0; j < k; j++)
			ops[idx[j]].status = HV_GNT_GENERAL_ERROR;
		gt.copy_errors += k;
		return false;
	}
	for (uint32_t j = 0; j < k; j++) {
		ops[idx[j]].status = xo[j].status;
		if (xo[j].status != 0)
			gt.copy_errors++;
	}
	gt.copy_ops += k;
	return true;
}

bool gnttab_copy(struct hv_copy *ops, size_t n)
{
	bool ok = true;

	if (!gt.ready) {
		for (size_t i = 0; i < n; i++)
			ops[i].status = HV_GNT_GENERAL_ERROR;
		return n == 0;
	}
	for (size_t i = 0; i < n; i += COPY_BATCH) {
		if (!copy_batch(ops + i, MIN((size_t)COPY_BATCH, n - i))) {
			for (size_t j = i + COPY_BATCH; j < n; j++)
				ops[j].status = HV_GNT_GENERAL_ERROR;
			ok = false;
			break;
		}
	}
	return ok;
}

/* ---- foreign mappings ------------------------------------------------------------ */

static bool slots_find(size_t n, uint32_t *first)
{
	for (uint32_t s = 0; s + n <= GNT_MAP_SLOTS; s++) {
		size_t k = 0;
		while (k < n && !bit_get(gt.slot_used, s + (uint32_t)k))
			k++;
		if (k == n) {
			*first = s;
			return true;
		}
		s += (uint32_t)k; /* past the used slot */
	}
	return false;
}

static uint64_t slot_addr(uint32_t s)
{
	return GNT_MAP_BASE + ((uint64_t)s << PAGE_SHIFT);
}

/* Unmaps the given slots (handles recorded); a slot whose unmap fails stays
 * marked used forever: a foreign frame may still sit at that GFN. */
static void unmap_slots(uint32_t first, size_t n)
{
	struct gnttab_unmap_grant_ref uo[GNT_MAP_MAX_BATCH];
	uint32_t which[GNT_MAP_MAX_BATCH];
	uint32_t k = 0;
	long rc;

	for (size_t i = 0; i < n; i++) {
		uint32_t s = first + (uint32_t)i;
		if (gt.slot_handle[s] == HANDLE_NONE) {
			bit_clear(gt.slot_used, s);
			gt.slots_in_use--;
			continue;
		}
		memset(&uo[k], 0, sizeof(uo[k]));
		uo[k].host_addr = slot_addr(s);
		uo[k].handle = gt.slot_handle[s];
		uo[k].status = 1;
		which[k++] = s;
	}
	if (k == 0)
		return;
	rc = hypercall_grant_table_op(GNTTABOP_unmap_grant_ref, uo, k);
	for (uint32_t j = 0; j < k; j++) {
		uint32_t s = which[j];
		if (rc == 0 && uo[j].status == 0) {
			gt.slot_handle[s] = HANDLE_NONE;
			bit_clear(gt.slot_used, s);
			gt.slots_in_use--;
		} else {
			gt.unmap_errors++;
			log_error("gnttab: unmapping slot 0x%llx failed (%ld, status %d); "
				  "slot retired", (unsigned long long)slot_addr(s), rc,
				  (int)uo[j].status);
		}
	}
}

void *gnttab_map(hv_domid_t from, const hv_gref_t *grefs, size_t n, bool readonly)
{
	struct gnttab_map_grant_ref mo[GNT_MAP_MAX_BATCH];
	uint32_t first;
	bool ok = true;
	long rc;

	if (!gt.ready || n == 0 || n > GNT_MAP_MAX_BATCH || grefs == NULL || !slots_find(n, &first))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		uint32_t s = first + (uint32_t)i;
		bit_set(gt.slot_used, s);
		gt.slot_handle[s] = HANDLE_NONE;
		memset(&mo[i], 0, sizeof(mo[i]));
		mo[i].host_addr = slot_addr(s);
		mo[i].flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0);
		mo[i].ref = grefs[i];
		mo[i].dom = from;
		mo[i].status = 1; /* not processed */
	}
	gt.slots_in_use += (uint32_t)n;
	rc = hypercall_grant_table_op(GNTTABOP_map_grant_ref, mo, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		if (mo[i].status == 0)
			gt.slot_handle[first + i] = mo[i].handle;
		else
			ok = false;
	}
	if (rc != 0 || !ok) {
		gt.map_errors++;
		log_warn("gnttab: mapping %u grant(s) of dom%u failed (%ld, first status %d)",
			 (unsigned)n, (unsigned)from, rc, (int)mo[0].status);
		unmap_slots(first, n);
		return NULL;
	}
	gt.slot_len[first] = (uint16_t)n;
	return cpu_phys(slot_addr(first));
}

void gnttab_unmap(void *addr, size_t n)
{
	uint64_t a = (uint64_t)(uintptr_t)addr;
	uint32_t first;

	if (a < GNT_MAP_BASE || (a & PAGE_MASK) != 0 ||
	    ((a - GNT_MAP_BASE) >> PAGE_SHIFT) >= GNT_MAP_SLOTS)
		panic("gnttab: unmapping %p which is not in the map window", addr);
	first = (uint32_t)((a - GNT_MAP_BASE) >> PAGE_SHIFT);
	if (n == 0 || gt.slot_len[first] != n || !bit_get(gt.slot_used, first))
		panic("gnttab: unmapping %zu page(s) at %p, mapped as %u", n, addr,
		      (unsigned)gt.slot_len[first]);
	gt.slot_len[first] = 0;
	unmap_slots(first, n);
}

void gnttab_get_stats(struct gnttab_stats *out)
{
	out->frames = gt.frames;
	out->max_frames = gt.max_frames;
	out->grants_in_use = gt.in_use;
	out->map_slots_in_use = gt.slots_in_use;
	out->copy_ops = gt.copy_ops;
	out->copy_errors = gt.copy_errors;
	out->map_errors = gt.map_errors;
	out->unmap_errors = gt.unmap_errors;
}
