/* hv_xen.h — start-up of xen/hv.h on real Xen (the functions of hv.h
 * themselves are in hv_xen.c): the I/O page pool taken from the arena, the
 * grant table, our domid.
 *
 * Must be called once, after mem_init and evtchn_init and before anything
 * uses hv.h. Nothing is allocated later: the pool is fixed. */
#ifndef PVH_HV_XEN_H
#define PVH_HV_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"

/* Pages in the I/O pool (grantable pages for vchan servers, netfront
 * buffers and rings): 640 pages = 2.5 MiB. */
#define HV_XEN_POOL_PAGES 640u

/* Reserves the pool from the arena, sets up the grant table. has_domid /
 * domid: from CPUID (spec §2.1); when unknown, hv_xen_set_domid() must be
 * called before hv.h users start (the platform reads XenStore "domid").
 * False when the pool does not fit (grant-table failure only logs: the
 * calls then fail one by one). */
bool hv_xen_init(struct arena *a, bool has_domid, uint16_t domid);
void hv_xen_set_domid(uint16_t domid);
bool hv_xen_domid_known(void);

size_t hv_xen_pool_free_pages(void);

#endif
