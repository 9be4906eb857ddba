/* fake_hv.h — a fake hypervisor for host tests: the functions of xen/hv.h
 * for several "domains" living in one process.
 *
 * Each domain has its own domid, grant table and event-channel table; the
 * hv_* calls act as the CURRENT domain (fake_hv_set_current). I/O pages
 * live in one memfd-backed pool; a foreign mapping is a second mmap of the
 * same pages (with PROT_NONE guard pages either side, read-only mappings
 * really read-only), so what domain A writes into a page it granted is what
 * domain B reads through its mapping. Grant copy checks domain, gref,
 * permission and bounds and reports a per-op status; end-access fails while
 * the grant is mapped; notify sets the pending flag of the bound remote
 * port. Free pool pages are ASan-poisoned.
 *
 * Deterministic, no global constructors (set up lazily), host-only test
 * code: never linked into the unikernel. Misuse by the code under test
 * (granting a page not from the pool, freeing a still-granted page, ending
 * an unknown grant) panics: those are our bugs, not peer input. */
#ifndef TESTS_FAKE_HV_H
#define TESTS_FAKE_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xen/hv.h"

#define FAKE_HV_MAX_DOMAINS 8u
#define FAKE_HV_POOL_PAGES 1024u
#define FAKE_HV_GRANTS 256u       /* per domain; refs 0..7 reserved as on Xen */
#define FAKE_HV_FIRST_GREF 8u
#define FAKE_HV_PORTS 64u         /* per domain; port 0 is never allocated */
#define FAKE_HV_MAPPINGS 64u      /* live hv_map_grants() results, all domains */
#define FAKE_HV_MAP_MAX_PAGES 256u

enum fake_hv_port_state {
	FAKE_HV_PORT_FREE = 0,
	FAKE_HV_PORT_UNBOUND,
	FAKE_HV_PORT_INTERDOMAIN,
};

/* Forgets every domain, grant, port and mapping (mappings are unmapped,
 * pages returned to the pool). The current domain becomes 0. */
void fake_hv_reset(void);

/* Creates the domain if it does not exist yet (false when the table is
 * full). Domains must exist before another one names them. */
bool fake_hv_add_domain(hv_domid_t domid);

/* Makes domid the current domain (creating it if needed). */
void fake_hv_set_current(hv_domid_t domid);
hv_domid_t fake_hv_current(void);

/* At most `pages` pool pages in use at once (0 = the whole pool): lets a
 * test run a caller out of memory. */
void fake_hv_set_pool_limit(size_t pages);
size_t fake_hv_pages_in_use(void);

/* Grant inspection (any domain, without mapping). */
bool fake_hv_grant_active(hv_domid_t granter, hv_gref_t gref);
unsigned fake_hv_grant_map_count(hv_domid_t granter, hv_gref_t gref);
size_t fake_hv_grants_in_use(hv_domid_t granter);
/* The granted page's memory as the granter sees it (NULL if not active). */
void *fake_hv_grant_page(hv_domid_t granter, hv_gref_t gref);
size_t fake_hv_mappings_in_use(void);

/* Event-channel inspection. */
enum fake_hv_port_state fake_hv_evtchn_state(hv_domid_t dom, hv_port_t port);
bool fake_hv_evtchn_pending(hv_domid_t dom, hv_port_t port);
/* Notifications delivered to (dom, port) since it was allocated. */
uint64_t fake_hv_evtchn_delivered(hv_domid_t dom, hv_port_t port);
/* Clears the pending flag of (dom, port). */
void fake_hv_evtchn_clear(hv_domid_t dom, hv_port_t port);

#endif
