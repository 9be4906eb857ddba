/* hv_xen.c — xen/hv.h on real Xen: the I/O page pool, grants (pvh/gnttab),
 * event channels (EVTCHNOP_*, pvh/evtchn for the shared bitmaps).
 *
 * Own misuse (freeing a page still granted, a page not from the pool)
 * panics, as the fake hypervisor does; anything a peer supplies (grant
 * refs, remote ports, domids) only reaches Xen, whose refusal becomes a
 * false return or a status. Never frees or reuses a page with a grant on
 * it (MSA02): each pool page counts its live grants. */
#include "pvh/hv_xen.h"

#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"
#include "pvh/evtchn.h"
#include "pvh/gnttab.h"
#include "pvh/hypercall.h"
#include "pvh/mem.h"
#include "xen/hv.h"

#define POOL_WORDS ((HV_XEN_POOL_PAGES + 63u) / 64u)

static struct {
	bool domid_known;
	uint16_t domid;
	uint8_t *pool;
	uint64_t used[POOL_WORDS];
	uint16_t grants[HV_XEN_POOL_PAGES];
	size_t free_pages;
} hx;

bool hv_xen_init(struct arena *a, bool has_domid, uint16_t domid)
{
	memset(&hx, 0, sizeof(hx));
	hx.domid_known = has_domid;
	hx.domid = domid;
	hx.pool = arena_alloc(a, (size_t)HV_XEN_POOL_PAGES * HV_PAGE_SIZE, HV_PAGE_SIZE);
	if (hx.pool == NULL)
		return false;
	hx.free_pages = HV_XEN_POOL_PAGES;
	(void)gnttab_init(!mem_overlaps_ram(GNT_WINDOW_BASE, GNT_WINDOW_BASE + GNT_WINDOW_SIZE));
	log_info("hv: %u-page I/O pool at 0x%llx, domid %s%u", HV_XEN_POOL_PAGES,
		 (unsigned long long)(uintptr_t)hx.pool, has_domid ? "" : "unknown ",
		 (unsigned)domid);
	return true;
}

void hv_xen_set_domid(uint16_t domid)
{
	hx.domid = domid;
	hx.domid_known = true;
}

bool hv_xen_domid_known(void)
{
	return hx.domid_known;
}

size_t hv_xen_pool_free_pages(void)
{
	return hx.free_pages;
}

hv_domid_t hv_domid(void)
{
	return hx.domid;
}

/* ---- I/O pages ------------------------------------------------------------ */

static bool page_used(uint32_t i)
{
	return (hx.used[i / 64] >> (i % 64)) & 1u;
}

static void page_mark(uint32_t i, bool used)
{
	if (used)
		hx.used[i / 64] |= 1ull << (i % 64);
	else
		hx.used[i / 64] &= ~(1ull << (i % 64));
}

/* Pool index of a page-aligned pool address, or -1. */
static long pool_index(const void *p)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)hx.pool;

	if (hx.pool == NULL || a < base || a >= base + (size_t)HV_XEN_POOL_PAGES * HV_PAGE_SIZE ||
	    (a - base) % HV_PAGE_SIZE != 0)
		return -1;
	return (long)((a - base) / HV_PAGE_SIZE);
}

void *hv_pages_alloc(size_t n)
{
	if (hx.pool == NULL || n == 0 || n > hx.free_pages)
		return NULL;
	for (uint32_t s = 0; s + n <= HV_XEN_POOL_PAGES; s++) {
		size_t k = 0;
		while (k < n && !page_used(s + (uint32_t)k))
			k++;
		if (k < n) {
			s += (uint32_t)k;
			continue;
		}
		for (k = 0; k < n; k++)
			page_mark(s + (uint32_t)k, true);
		hx.free_pages -= n;
		uint8_t *p = hx.pool + (size_t)s * HV_PAGE_SIZE;
		memset(p, 0, n * HV_PAGE_SIZE); /* no stale data to a new peer */
		return p;
	}
	return NULL;
}

void hv_pages_free(void *pages, size_t n)
{
	long first = pool_index(pages);

	if (first < 0 || n > HV_XEN_POOL_PAGES - (size_t)first)
		panic("hv: freeing %zu page(s) at %p, not from the pool", n, pages);
	for (size_t k = 0; k < n; k++) {
		uint32_t i = (uint32_t)first + (uint32_t)k;
		if (!page_used(i))
			panic("hv: freeing pool page %u twice", (unsigned)i);
		if (hx.grants[i] != 0)
			panic("hv: freeing pool page %u with %u grant(s) on it", (unsigned)i,
			      (unsigned)hx.grants[i]);
		page_mark(i, false);
	}
	hx.free_pages += n;
}

/* ---- grants ------------------------------------------------------------------ */

bool hv_grant(void *page, hv_domid_t to, bool readonly, hv_gref_t *gref)
{
	long i = pool_index(page);

	if (i >= 0 && page_used((uint32_t)i)) {
		if (hx.grants[i] == UINT16_MAX ||
		    !gnttab_grant((uint64_t)(uintptr_t)page / HV_PAGE_SIZE, to, readonly, gref))
			return false;
		hx.grants[i]++;
		return true;
	}
	panic("hv: granting %p, which is not an allocated pool page", page);
}

bool hv_grant_end(hv_gref_t gref)
{
	uint64_t gfn;
	long i;

	if (!gnttab_end(gref, &gfn))
		return false;
	i = pool_index((void *)(uintptr_t)(gfn * HV_PAGE_SIZE)); // NOLINT(performance-no-int-to-ptr)
	if (i >= 0 && hx.grants[i] > 0)
		hx.grants[i]--;
	return true;
}

bool hv_grant_copy(struct hv_copy *ops, size_t n)
{
	if (n != 0 && ops == NULL)
		return false;
	return gnttab_copy(ops, n);
}

void *hv_map_grants(hv_domid_t from, const hv_gref_t *grefs, size_t n, bool readonly)
{
	return gnttab_map(from, grefs, n, readonly);
}

void hv_unmap_grants(void *addr, size_t n)
{
	gnttab_unmap(addr, n);
}

/* ---- event channels ---------------------------------------------------------- */

bool hv_evtchn_alloc_unbound(hv_domid_t remote, hv_port_t *port)
{
	evtchn_port_t p;
	long rc = hypercall_evtchn_alloc_unbound(remote, &p);

	if (rc != 0 || p == 0 || p >= EVTCHN_2L_NR_CHANNELS) {
		log_warn("hv: EVTCHNOP_alloc_unbound for dom%u failed (%ld)", (unsigned)remote, rc);
		return false;
	}
	evtchn_unmask(p);
	*port = p;
	return true;
}

bool hv_evtchn_bind_interdomain(hv_domid_t remote, hv_port_t remote_port, hv_port_t *port)
{
	evtchn_port_t p;
	long rc = hypercall_evtchn_bind_interdomain(remote, remote_port, &p);

	if (rc != 0 || p == 0 || p >= EVTCHN_2L_NR_CHANNELS) {
		log_warn("hv: EVTCHNOP_bind_interdomain dom%u port %u failed (%ld)",
			 (unsigned)remote, (unsigned)remote_port, rc);
		return false;
	}
	evtchn_unmask(p);
	*port = p;
	return true;
}

void hv_evtchn_notify(hv_port_t port)
{
	if (port != 0)
		(void)hypercall_evtchn_send(port);
}

void hv_evtchn_close(hv_port_t port)
{
	long rc;

	if (port == 0)
		return;
	/* Masked first, so a late event does not wake a later owner of the
	 * number; Xen clears its pending bit when the port is reused. */
	evtchn_mask(port);
	rc = hypercall_evtchn_close(port);
	if (rc != 0)
		log_warn("hv: EVTCHNOP_close %u failed (%ld)", (unsigned)port, rc);
}

size_t hv_evtchn_take_pending(hv_port_t *ports, size_t cap)
{
	return evtchn_take_pending(ports, cap);
}
