/* fake_hv.c — xen/hv.h for host tests: several domains in one process,
 * memory really shared through a memfd (see fake_hv.h). Must never crash
 * on bad grefs, offsets, lengths or domids handed to it (those come from a
 * peer): they get an error status. Our own misuse panics. */
#define _GNU_SOURCE
#include <sanitizer/asan_interface.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/panic.h"
#include "fake_hv.h"

#define POOL_BYTES ((size_t)FAKE_HV_POOL_PAGES * HV_PAGE_SIZE)

struct fake_grant {
	bool used;
	bool readonly;
	hv_domid_t to;
	uint32_t page;      /* pool page index */
	uint32_t map_count;
};

struct fake_port {
	uint8_t state;      /* enum fake_hv_port_state */
	bool pending;
	hv_domid_t remote_dom;
	hv_port_t remote_port;
	uint64_t delivered;
};

struct fake_domain {
	bool used;
	hv_domid_t domid;
	struct fake_grant grants[FAKE_HV_GRANTS];
	struct fake_port ports[FAKE_HV_PORTS];
};

struct fake_mapping {
	bool used;
	uint8_t *reserve;   /* guard page, n pages, guard page */
	size_t n;
	hv_domid_t from;
	hv_gref_t grefs[FAKE_HV_MAP_MAX_PAGES];
};

static struct {
	bool ready;
	int fd;
	uint8_t *pool;
	bool page_used[FAKE_HV_POOL_PAGES];
	size_t pages_used;
	size_t pool_limit;
	hv_domid_t current;
	struct fake_domain doms[FAKE_HV_MAX_DOMAINS];
	struct fake_mapping maps[FAKE_HV_MAPPINGS];
} hv;

static void ensure_ready(void)
{
	if (hv.ready)
		return;
	hv.fd = memfd_create("fake_hv_pool", 0);
	if (hv.fd < 0 || ftruncate(hv.fd, (off_t)POOL_BYTES) != 0)
		panic("fake_hv: memfd setup failed");
	void *p = mmap(NULL, POOL_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, hv.fd, 0);
	if (p == MAP_FAILED)
		panic("fake_hv: pool mmap failed");
	hv.pool = p;
	ASAN_POISON_MEMORY_REGION(hv.pool, POOL_BYTES);
	hv.ready = true;
}

static struct fake_domain *find_dom(hv_domid_t domid)
{
	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS; i++)
		if (hv.doms[i].used && hv.doms[i].domid == domid)
			return &hv.doms[i];
	return NULL;
}

static struct fake_domain *cur_dom(void)
{
	struct fake_domain *d = find_dom(hv.current);
	if (d == NULL) {
		ASSERT(fake_hv_add_domain(hv.current));
		d = find_dom(hv.current);
	}
	return d;
}

static struct fake_grant *find_grant(struct fake_domain *d, hv_gref_t gref)
{
	if (d == NULL || gref < FAKE_HV_FIRST_GREF || gref >= FAKE_HV_GRANTS)
		return NULL;
	struct fake_grant *g = &d->grants[gref];
	return g->used ? g : NULL;
}

static struct fake_port *find_port(struct fake_domain *d, hv_port_t port)
{
	if (d == NULL || port == 0 || port >= FAKE_HV_PORTS)
		return NULL;
	struct fake_port *p = &d->ports[port];
	return p->state != FAKE_HV_PORT_FREE ? p : NULL;
}

static uint8_t *page_addr(uint32_t idx)
{
	return hv.pool + (size_t)idx * HV_PAGE_SIZE;
}

/* Pool page index of p, or -1 when p is not a page-aligned pool address. */
static long pool_index(const void *p)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)hv.pool;
	if (!hv.ready || a < base || a >= base + POOL_BYTES || (a - base) % HV_PAGE_SIZE != 0)
		return -1;
	return (long)((a - base) / HV_PAGE_SIZE);
}

static void unmap_slot(struct fake_mapping *m)
{
	for (size_t i = 0; i < m->n; i++) {
		struct fake_grant *g = find_grant(find_dom(m->from), m->grefs[i]);
		if (g != NULL && g->map_count > 0)
			g->map_count--;
	}
	munmap(m->reserve, (m->n + 2) * HV_PAGE_SIZE);
	memset(m, 0, sizeof(*m));
}

void fake_hv_reset(void)
{
	ensure_ready();
	for (size_t i = 0; i < FAKE_HV_MAPPINGS; i++)
		if (hv.maps[i].used)
			unmap_slot(&hv.maps[i]);
	memset(hv.doms, 0, sizeof(hv.doms));
	memset(hv.page_used, 0, sizeof(hv.page_used));
	hv.pages_used = 0;
	hv.pool_limit = 0;
	hv.current = 0;
	ASAN_POISON_MEMORY_REGION(hv.pool, POOL_BYTES);
}

bool fake_hv_add_domain(hv_domid_t domid)
{
	ensure_ready();
	if (find_dom(domid) != NULL)
		return true;
	for (size_t i = 0; i < FAKE_HV_MAX_DOMAINS; i++) {
		if (!hv.doms[i].used) {
			memset(&hv.doms[i], 0, sizeof(hv.doms[i]));
			hv.doms[i].used = true;
			hv.doms[i].domid = domid;
			return true;
		}
	}
	return false;
}

void fake_hv_set_current(hv_domid_t domid)
{
	ensure_ready();
	ASSERT(fake_hv_add_domain(domid));
	hv.current = domid;
}

hv_domid_t fake_hv_current(void)
{
	return hv.current;
}

void fake_hv_set_pool_limit(size_t pages)
{
	hv.pool_limit = pages;
}

size_t fake_hv_pages_in_use(void)
{
	return hv.pages_used;
}

bool fake_hv_grant_active(hv_domid_t granter, hv_gref_t gref)
{
	return find_grant(find_dom(granter), gref) != NULL;
}

unsigned fake_hv_grant_map_count(hv_domid_t granter, hv_gref_t gref)
{
	const struct fake_grant *g = find_grant(find_dom(granter), gref);
	return g != NULL ? g->map_count : 0;
}

size_t fake_hv_grants_in_use(hv_domid_t granter)
{
	const struct fake_domain *d = find_dom(granter);
	size_t n = 0;
	if (d == NULL)
		return 0;
	for (size_t i = 0; i < FAKE_HV_GRANTS; i++)
		n += d->grants[i].used;
	return n;
}

void *fake_hv_grant_page(hv_domid_t granter, hv_gref_t gref)
{
	const struct fake_grant *g = find_grant(find_dom(granter), gref);
	return g != NULL ? page_addr(g->page) : NULL;
}

size_t fake_hv_mappings_in_use(void)
{
	size_t n = 0;
	for (size_t i = 0; i < FAKE_HV_MAPPINGS; i++)
		n += hv.maps[i].used;
	return n;
}

enum fake_hv_port_state fake_hv_evtchn_state(hv_domid_t dom, hv_port_t port)
{
	const struct fake_port *p = find_port(find_dom(dom), port);
	return p != NULL ? (enum fake_hv_port_state)p->state : FAKE_HV_PORT_FREE;
}

bool fake_hv_evtchn_pending(hv_domid_t dom, hv_port_t port)
{
	const struct fake_port *p = find_port(find_dom(dom), port);
	return p != NULL && p->pending;
}

uint64_t fake_hv_evtchn_delivered(hv_domid_t dom, hv_port_t port)
{
	const struct fake_port *p = find_port(find_dom(dom), port);
	return p != NULL ? p->delivered : 0;
}

void fake_hv_evtchn_clear(hv_domid_t dom, hv_port_t port)
{
	struct fake_port *p = find_port(find_dom(dom), port);
	if (p != NULL)
		p->pending = false;
}

/* ---- xen/hv.h ------------------------------------------------------------ */

hv_domid_t hv_domid(void)
{
	return hv.current;
}

void *hv_pages_alloc(size_t n)
{
	ensure_ready();
	if (n == 0 || n > FAKE_HV_POOL_PAGES)
		return NULL;
	if (hv.pool_limit != 0 && hv.pages_used + n > hv.pool_limit)
		return NULL;
	for (size_t start = 0; start + n <= FAKE_HV_POOL_PAGES; start++) {
		size_t k = 0;
		while (k < n && !hv.page_used[start + k])
			k++;
		if (k < n) {
			start += k; /* skip past the used page */
			continue;
		}
		for (k = 0; k < n; k++)
			hv.page_used[start + k] = true;
		hv.pages_used += n;
		uint8_t *p = page_addr((uint32_t)start);
		ASAN_UNPOISON_MEMORY_REGION(p, n * HV_PAGE_SIZE);
		memset(p, 0, n * HV_PAGE_SIZE);
		return p;
	}
	return NULL;
}

void hv_pages_free(void *pages, size_t n)
{
	long first = pool_index(pages);
	ASSERT(first >= 0 && n <= FAKE_HV_POOL_PAGES - (size_t)first);
	for (size_t k = 0; k < n; k++) {
		uint32_t idx = (uint32_t)first + (uint32_t)k;
		ASSERT(hv.page_used[idx]);
		for (size_t d = 0; d < FAKE_HV_MAX_DOMAINS; d++) {
			if (!hv.doms[d].used)
				continue;
			for (size_t g = 0; g < FAKE_HV_GRANTS; g++) {
				const struct fake_grant *gr = &hv.doms[d].grants[g];
				if (gr->used && gr->page == idx)
					panic("fake_hv: freeing page %u still granted (gref %zu)",
					      idx, g);
			}
		}
		hv.page_used[idx] = false;
	}
	hv.pages_used -= n;
	ASAN_POISON_MEMORY_REGION(pages, n * HV_PAGE_SIZE);
}

bool hv_grant(void *page, hv_domid_t to, bool readonly, hv_gref_t *gref)
{
	long idx = pool_index(page);
	ASSERT(idx >= 0 && hv.page_used[idx]);
	struct fake_domain *d = cur_dom();
	for (uint32_t r = FAKE_HV_FIRST_GREF; r < FAKE_HV_GRANTS; r++) {
		struct fake_grant *g = &d->grants[r];
		if (g->used)
			continue;
		g->used = true;
		g->readonly = readonly;
		g->to = to;
		g->page = (uint32_t)idx;
		g->map_count = 0;
		*gref = r;
		return true;
	}
	return false;
}

bool hv_grant_end(hv_gref_t gref)
{
	struct fake_grant *g = find_grant(cur_dom(), gref);
	if (g != NULL) {
		if (g->map_count > 0)
			return false;
		memset(g, 0, sizeof(*g));
		return true;
	}
	panic("fake_hv: ending unknown grant %u of domain %u", gref, hv.current);
}

/* Resolves one copy end to an address, or returns a GNTST status. */
static int16_t copy_end(const struct hv_copy_end *e, uint16_t len, bool is_dst, uint8_t **out)
{
	if (!e->foreign) {
		uintptr_t a = (uintptr_t)e->local;
		if (a == 0)
			return HV_GNT_BAD_VIRT_ADDR;
		if ((a & (HV_PAGE_SIZE - 1)) + len > HV_PAGE_SIZE)
			return HV_GNT_BAD_COPY_ARG;
		*out = e->local;
		return HV_GNT_OK;
	}
	struct fake_domain *d = find_dom(e->domid);
	if (d == NULL)
		return HV_GNT_BAD_DOMAIN;
	const struct fake_grant *g = find_grant(d, e->gref);
	if (g == NULL)
		return HV_GNT_BAD_GREF;
	if (g->to != hv.current || (is_dst && g->readonly))
		return HV_GNT_PERMISSION_DENIED;
	if ((uint32_t)e->offset + len > HV_PAGE_SIZE)
		return HV_GNT_BAD_COPY_ARG;
	*out = page_addr(g->page) + e->offset;
	return HV_GNT_OK;
}

bool hv_grant_copy(struct hv_copy *ops, size_t n)
{
	if (n != 0 && ops == NULL)
		return false;
	cur_dom();
	for (size_t i = 0; i < n; i++) {
		struct hv_copy *op = &ops[i];
		uint8_t *src = NULL, *dst = NULL;
		int16_t st = copy_end(&op->src, op->len, false, &src);
		if (st == HV_GNT_OK)
			st = copy_end(&op->dst, op->len, true, &dst);
		if (st == HV_GNT_OK && op->len != 0)
			memmove(dst, src, op->len);
		op->status = st;
	}
	return true;
}

void *hv_map_grants(hv_domid_t from, const hv_gref_t *grefs, size_t n, bool readonly)
{
	ensure_ready();
	if (n == 0 || n > FAKE_HV_MAP_MAX_PAGES || grefs == NULL)
		return NULL;
	struct fake_domain *d = find_dom(from);
	cur_dom();
	if (d == NULL)
		return NULL;
	struct fake_mapping *m = NULL;
	for (size_t i = 0; i < FAKE_HV_MAPPINGS && m == NULL; i++)
		if (!hv.maps[i].used)
			m = &hv.maps[i];
	if (m == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct fake_grant *g = find_grant(d, grefs[i]);
		if (g == NULL || g->to != hv.current || (g->readonly && !readonly))
			return NULL;
	}
	void *r = mmap(NULL, (n + 2) * HV_PAGE_SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	m->used = true;
	m->reserve = r;
	m->n = 0;
	m->from = from;
	int prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
	for (size_t i = 0; i < n; i++) {
		struct fake_grant *g = find_grant(d, grefs[i]);
		void *want = m->reserve + (i + 1) * HV_PAGE_SIZE;
		void *got = mmap(want, HV_PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED, hv.fd,
				 (off_t)g->page * (off_t)HV_PAGE_SIZE);
		if (got != want) {
			unmap_slot(m);
			return NULL;
		}
		g->map_count++;
		m->grefs[i] = grefs[i];
		m->n = i + 1;
	}
	return m->reserve + HV_PAGE_SIZE;
}

void hv_unmap_grants(void *addr, size_t n)
{
	for (size_t i = 0; i < FAKE_HV_MAPPINGS; i++) {
		struct fake_mapping *m = &hv.maps[i];
		if (m->used && m->reserve + HV_PAGE_SIZE == (uint8_t *)addr) {
			ASSERT(m->n == n);
			unmap_slot(m);
			return;
		}
	}
	panic("fake_hv: unmapping %p which is not mapped", addr);
}

static struct fake_port *new_port(struct fake_domain *d, hv_port_t *out)
{
	for (hv_port_t p = 1; p < FAKE_HV_PORTS; p++) {
		if (d->ports[p].state == FAKE_HV_PORT_FREE) {
			memset(&d->ports[p], 0, sizeof(d->ports[p]));
			*out = p;
			return &d->ports[p];
		}
	}
	return NULL;
}

bool hv_evtchn_alloc_unbound(hv_domid_t remote, hv_port_t *port)
{
	struct fake_domain *d = cur_dom();
	if (find_dom(remote) == NULL)
		return false;
	struct fake_port *p = new_port(d, port);
	if (p == NULL)
		return false;
	p->state = FAKE_HV_PORT_UNBOUND;
	p->remote_dom = remote;
	return true;
}

bool hv_evtchn_bind_interdomain(hv_domid_t remote, hv_port_t remote_port, hv_port_t *port)
{
	struct fake_domain *d = cur_dom();
	struct fake_domain *rd = find_dom(remote);
	struct fake_port *rp = find_port(rd, remote_port);
	if (rp == NULL || rp->state != FAKE_HV_PORT_UNBOUND || rp->remote_dom != hv.current)
		return false;
	struct fake_port *p = new_port(d, port);
	if (p == NULL)
		return false;
	p->state = FAKE_HV_PORT_INTERDOMAIN;
	p->remote_dom = remote;
	p->remote_port = remote_port;
	rp->state = FAKE_HV_PORT_INTERDOMAIN;
	rp->remote_dom = hv.current;
	rp->remote_port = *port;
	return true;
}

void hv_evtchn_notify(hv_port_t port)
{
	const struct fake_port *p = find_port(cur_dom(), port);
	if (p == NULL || p->state != FAKE_HV_PORT_INTERDOMAIN)
		return;
	struct fake_port *rp = find_port(find_dom(p->remote_dom), p->remote_port);
	if (rp == NULL)
		return;
	rp->pending = true;
	rp->delivered++;
}

void hv_evtchn_close(hv_port_t port)
{
	struct fake_port *p = find_port(cur_dom(), port);
	if (p == NULL)
		return;
	if (p->state == FAKE_HV_PORT_INTERDOMAIN) {
		struct fake_port *rp = find_port(find_dom(p->remote_dom), p->remote_port);
		if (rp != NULL && rp->state == FAKE_HV_PORT_INTERDOMAIN) {
			/* As on Xen: the remote end falls back to unbound, waiting for us. */
			rp->state = FAKE_HV_PORT_UNBOUND;
			rp->remote_dom = hv.current;
			rp->remote_port = 0;
		}
	}
	memset(p, 0, sizeof(*p));
}

size_t hv_evtchn_take_pending(hv_port_t *ports, size_t cap)
{
	struct fake_domain *d = cur_dom();
	size_t n = 0;
	for (hv_port_t p = 1; p < FAKE_HV_PORTS && n < cap; p++) {
		if (d->ports[p].state != FAKE_HV_PORT_FREE && d->ports[p].pending) {
			d->ports[p].pending = false;
			ports[n++] = p;
		}
	}
	return n;
}
