/* hv.h — the hypervisor operations the Xen PV protocols (vchan, netfront,
 * netback, XenStore ring) are written against: I/O pages, grants, grant
 * copy, foreign mappings, event channels, our domid.
 *
 * Plain functions, bound at LINK time: src/pvh implements them on real Xen
 * (hypercalls), tests/support/fake_hv.c on the host (several "domains" in
 * one process). DESIGN.md §3 keeps function-pointer structs for run-time
 * variation only; nothing here varies at run time, so no ops table.
 *
 * Facts: /work/shared/specs/xen-platform.md §3 (event channels), §5 (grant
 * tables), §8.8 (vchan needs), §11.2 items 12-16 (grant pitfalls).
 *
 * Never: free or reuse a page whose grant could not be ended (MSA02), hand a
 * peer-supplied gref/offset/length to memory without hv checking it, block.
 * All calls are single-threaded and non-blocking. */
#ifndef XEN_HV_H
#define XEN_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HV_PAGE_SIZE 4096u
#define HV_PAGE_SHIFT 12u

typedef uint16_t hv_domid_t;
typedef uint32_t hv_gref_t;
typedef uint32_t hv_port_t;

/* Grant-operation status codes: the values of Xen's GNTST_* (spec §5.4) so
 * the real implementation passes them through unchanged. */
enum hv_gnt_status {
	HV_GNT_OK = 0,
	HV_GNT_GENERAL_ERROR = -1,
	HV_GNT_BAD_DOMAIN = -2,
	HV_GNT_BAD_GREF = -3,
	HV_GNT_BAD_HANDLE = -4,
	HV_GNT_BAD_VIRT_ADDR = -5,
	HV_GNT_PERMISSION_DENIED = -8,
	HV_GNT_BAD_PAGE = -9,
	HV_GNT_BAD_COPY_ARG = -10,
	HV_GNT_EAGAIN = -12,
};

/* Our own domain id. */
hv_domid_t hv_domid(void);

/* ---- I/O pages ------------------------------------------------------------
 * Page-aligned, zeroed 4 KiB pages from a pool reserved at start-up; only
 * these may be granted. n pages are contiguous. NULL when the pool cannot
 * satisfy the request. hv_pages_free() takes any page-aligned subrange of
 * an allocation (so a caller may keep one quarantined page and free the
 * rest); every page freed must have no grant left on it. */
void *hv_pages_alloc(size_t n);
void hv_pages_free(void *pages, size_t n);

/* ---- grants (we are the granting side) ------------------------------------
 * Grants `page` (one page from hv_pages_alloc) to domain `to`, read-only or
 * read-write. False when the grant table is full. Refs 0..7 are reserved
 * (spec §5.1) and never returned, so callers may use 0 as "no grant". */
bool hv_grant(void *page, hv_domid_t to, bool readonly, hv_gref_t *gref);

/* Ends a grant. False when the peer still has it mapped or in use: the
 * grant stays and the page must then be quarantined, never freed or reused
 * (MSA02, spec §5.2 "Revoke"); the caller retries later. */
bool hv_grant_end(hv_gref_t gref);

/* ---- grant copy ------------------------------------------------------------
 * One end of a copy: a foreign grant (gref of domain domid, byte offset in
 * that page) or a local address. Neither end may cross its page:
 * offset + len <= 4096 (for a local end, the address's offset in its page).
 * Local memory must be ordinary RAM (not a foreign mapping). */
struct hv_copy_end {
	bool foreign;
	hv_domid_t domid;  /* foreign only */
	hv_gref_t gref;    /* foreign only */
	uint16_t offset;   /* foreign only */
	void *local;       /* local only */
};

struct hv_copy {
	struct hv_copy_end src;
	struct hv_copy_end dst;
	uint16_t len;
	int16_t status;    /* out: HV_GNT_OK or a negative enum hv_gnt_status */
};

/* Runs n copies as one batch (one hypercall on Xen, split if huge). Every
 * op gets its own status; a bad op (wrong gref, domid, permission, range)
 * fails alone. Returns false only when the batch could not be issued at
 * all (then every status is set to an error). */
bool hv_grant_copy(struct hv_copy *ops, size_t n);

/* ---- foreign mappings (the peer granted, we map) --------------------------
 * Maps n grants of domain `from` contiguously, in order, into our private
 * window and returns the address, or NULL when any of them fails (nothing
 * stays mapped then) or the window is full. readonly maps read-only (the
 * peer's grant may be read-only only if readonly is true). */
void *hv_map_grants(hv_domid_t from, const hv_gref_t *grefs, size_t n, bool readonly);

/* Unmaps what hv_map_grants(…, n, …) returned. Always call it on teardown:
 * a mapping keeps a dead peer's memory alive (spec §11.2 item 15). */
void hv_unmap_grants(void *addr, size_t n);

/* ---- event channels --------------------------------------------------------
 * Ports come back unmasked. alloc_unbound: a port domain `remote` may bind
 * to (vchan server, netfront). bind_interdomain: our end of (remote,
 * remote_port) (vchan client, netback). False on failure (bad domain or
 * port, table full). */
bool hv_evtchn_alloc_unbound(hv_domid_t remote, hv_port_t *port);
bool hv_evtchn_bind_interdomain(hv_domid_t remote, hv_port_t remote_port, hv_port_t *port);
void hv_evtchn_notify(hv_port_t port);
void hv_evtchn_close(hv_port_t port);

/* The event loop's question "which ports fired?": stores up to cap pending
 * ports (ascending), clearing their pending flags before the caller handles
 * them (spec §3.2: clear first, then process, so no event is lost). Ports
 * that did not fit stay pending for the next call. Returns the count. */
size_t hv_evtchn_take_pending(hv_port_t *ports, size_t cap);

#endif
