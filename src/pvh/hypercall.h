/* hypercall.h — Xen detection and typed hypercall wrappers (spec §2).
 *
 * Calls go through the hypercall page Xen fills in (32-byte stubs, call
 * page + 32 * nr); arguments in rdi, rsi, rdx, r10, r8, all of which are
 * treated as clobbered (debug Xen builds poison them). Results are Xen's
 * negative errno values or >= 0. Nothing here may be called before
 * hypercall_init() succeeded. */
#ifndef PVH_HYPERCALL_H
#define PVH_HYPERCALL_H

#include <stdbool.h>
#include <stdint.h>

#include "pvh/xen_abi.h"

struct xen_info {
	bool present;
	uint32_t base_leaf;      /* 0x40000000 + k * 0x100 */
	uint16_t major, minor;
	uint32_t hypercall_msr;
	bool has_domid;
	uint16_t domid;          /* valid when has_domid */
};

/* Scans the hypervisor CPUID leaves for "XenVMMXenVMM". */
bool hypercall_detect(struct xen_info *out);

/* Installs the hypercall page through the MSR from CPUID base+2 and checks
 * that Xen filled it. */
bool hypercall_init(const struct xen_info *xi);

long hypercall_raw(unsigned nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5);

long hypercall_hvm_get_param(uint32_t index, uint64_t *value);
long hypercall_hvm_set_param(uint32_t index, uint64_t value);
long hypercall_set_upcall_vector(uint32_t vcpu, uint8_t vector);
long hypercall_add_to_physmap(uint32_t space, uint64_t idx, uint64_t gpfn);
/* Fills up to *count E820 entries; *count becomes the number returned. */
long hypercall_memory_map(struct e820_entry *entries, uint32_t *count);
long hypercall_current_reservation(void);
long hypercall_evtchn_send(evtchn_port_t port);
long hypercall_evtchn_unmask(evtchn_port_t port);
/* Binds a VIRQ (e.g. VIRQ_TIMER) on vCPU 0; *port receives the local port. */
long hypercall_evtchn_bind_virq(uint32_t virq, evtchn_port_t *port);
/* EVTCHNOP_alloc_unbound / bind_interdomain / close (spec §2.4). */
long hypercall_evtchn_alloc_unbound(uint16_t remote_dom, evtchn_port_t *port);
long hypercall_evtchn_bind_interdomain(uint16_t remote_dom, evtchn_port_t remote_port,
				       evtchn_port_t *port);
long hypercall_evtchn_close(evtchn_port_t port);
/* GNTTABOP_* on an array of count ops (spec §5); per-op status inside. */
long hypercall_grant_table_op(unsigned cmd, void *ops, uint32_t count);
long hypercall_sched_yield(void);
long hypercall_sched_shutdown(uint32_t reason);
long hypercall_sched_poll(const evtchn_port_t *ports, uint32_t nr_ports, uint64_t timeout_ns);

#endif
