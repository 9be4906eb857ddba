/* xen_abi.h — the slice of Xen's public x86-64 ABI the PVH platform uses.
 *
 * Written from the layouts in /work/shared/specs/xen-platform.md (§1.3,
 * §2.4, §3.1, §4.1, §7.1, Appendix A), which were verified there against
 * Xen 4.17's public headers. Every size and offset the code relies on is
 * pinned by a _Static_assert, so a mistake fails the build, not the guest.
 * Kept in-tree (no libxen-dev build dependency). Declarations only: never
 * put code or state here. */
#ifndef PVH_XEN_ABI_H
#define PVH_XEN_ABI_H

#include <stddef.h>
#include <stdint.h>

/* ---- PVH boot (§1) ---- */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 0x38, "hvm_start_info size");
_Static_assert(offsetof(struct hvm_start_info, cmdline_paddr) == 0x18, "cmdline_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 0x28, "memmap_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 0x30, "memmap_entries");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry size");

#define E820_RAM 1u
#define E820_RESERVED 2u

/* XENMEM_memory_map returns packed 20-byte E820 entries. */
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry size");

/* ---- CPUID detection (§2.1) ---- */
#define XEN_CPUID_FIRST_LEAF 0x40000000u
#define XEN_CPUID_LAST_LEAF 0x40010000u
#define XEN_CPUID_LEAF_STEP 0x100u
#define XEN_CPUID_SIGNATURE_EBX 0x566e6558u /* "XenV" */
#define XEN_CPUID_SIGNATURE_ECX 0x65584d4du /* "MMXe" */
#define XEN_CPUID_SIGNATURE_EDX 0x4d4d566eu /* "nVMM" */

/* ---- hypercall numbers (§2.3) ---- */
#define __HYPERVISOR_memory_op 12
#define __HYPERVISOR_set_timer_op 15
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_hvm_op 34

#define DOMID_SELF 0x7ff0u

/* ---- memory_op (§2.4) ---- */
#define XENMEM_current_reservation 3
#define XENMEM_add_to_physmap 7
#define XENMEM_memory_map 9
#define XENMAPSPACE_shared_info 0u
#define XENMAPSPACE_grant_table 1u

struct xen_add_to_physmap {
	uint16_t domid;
	uint16_t size;
	uint32_t space;
	uint64_t idx;
	uint64_t gpfn;
};
_Static_assert(sizeof(struct xen_add_to_physmap) == 0x18, "xen_add_to_physmap size");
_Static_assert(offsetof(struct xen_add_to_physmap, space) == 4, "add_to_physmap.space");
_Static_assert(offsetof(struct xen_add_to_physmap, gpfn) == 0x10, "add_to_physmap.gpfn");

struct xen_memory_map {
	uint32_t nr_entries;
	uint32_t pad;
	uint64_t buffer; /* guest address of the e820_entry array */
};
_Static_assert(sizeof(struct xen_memory_map) == 0x10, "xen_memory_map size");

/* ---- hvm_op (§2.4) ---- */
#define HVMOP_set_param 0
#define HVMOP_get_param 1
#define HVMOP_set_evtchn_upcall_vector 23

#define HVM_PARAM_CALLBACK_IRQ 0u
#define HVM_PARAM_STORE_PFN 1u
#define HVM_PARAM_STORE_EVTCHN 2u
#define HVM_PARAM_CONSOLE_PFN 17u
#define HVM_PARAM_CONSOLE_EVTCHN 18u

struct xen_hvm_param {
	uint16_t domid;
	uint16_t pad;
	uint32_t index;
	uint64_t value;
};
_Static_assert(sizeof(struct xen_hvm_param) == 0x10, "xen_hvm_param size");
_Static_assert(offsetof(struct xen_hvm_param, index) == 4, "xen_hvm_param.index");
_Static_assert(offsetof(struct xen_hvm_param, value) == 8, "xen_hvm_param.value");

struct xen_hvm_evtchn_upcall_vector {
	uint32_t vcpu;
	uint8_t vector;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct xen_hvm_evtchn_upcall_vector) == 8, "upcall_vector size");

/* ---- sched_op (§2.4, §10) ---- */
#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SCHEDOP_poll 3

#define SHUTDOWN_poweroff 0u
#define SHUTDOWN_reboot 1u
#define SHUTDOWN_suspend 2u
#define SHUTDOWN_crash 3u

struct sched_shutdown {
	uint32_t reason;
};

/* ---- event_channel_op (§2.4) ---- */
#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_virq 1
#define EVTCHNOP_close 3
#define EVTCHNOP_send 4
#define EVTCHNOP_alloc_unbound 6
#define EVTCHNOP_unmask 9

typedef uint32_t evtchn_port_t;

struct evtchn_send {
	evtchn_port_t port;
};

#define VIRQ_TIMER 0u

struct evtchn_bind_interdomain {
	uint16_t remote_dom;
	uint16_t pad;
	evtchn_port_t remote_port;
	evtchn_port_t local_port; /* out */
};
_Static_assert(sizeof(struct evtchn_bind_interdomain) == 0xc, "bind_interdomain size");
_Static_assert(offsetof(struct evtchn_bind_interdomain, remote_port) == 4, "remote_port");

struct evtchn_alloc_unbound {
	uint16_t dom;
	uint16_t remote_dom;
	evtchn_port_t port; /* out */
};
_Static_assert(sizeof(struct evtchn_alloc_unbound) == 8, "alloc_unbound size");

struct evtchn_close {
	evtchn_port_t port;
};

struct evtchn_bind_virq {
	uint32_t virq;
	uint32_t vcpu;
	evtchn_port_t port; /* out */
};
_Static_assert(sizeof(struct evtchn_bind_virq) == 0xc, "evtchn_bind_virq size");
_Static_assert(offsetof(struct evtchn_bind_virq, port) == 8, "evtchn_bind_virq.port");

#define EVTCHN_2L_NR_CHANNELS 4096u

/* ---- shared_info (§3.1, §4.1, §4.2) ---- */
struct vcpu_time_info {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad1[2];
};
_Static_assert(sizeof(struct vcpu_time_info) == 32, "vcpu_time_info size");
_Static_assert(offsetof(struct vcpu_time_info, tsc_timestamp) == 0x08, "tsc_timestamp");
_Static_assert(offsetof(struct vcpu_time_info, system_time) == 0x10, "system_time");
_Static_assert(offsetof(struct vcpu_time_info, tsc_to_system_mul) == 0x18, "tsc_to_system_mul");
_Static_assert(offsetof(struct vcpu_time_info, tsc_shift) == 0x1c, "tsc_shift");

struct vcpu_info {
	uint8_t evtchn_upcall_pending;
	uint8_t evtchn_upcall_mask;
	uint8_t pad[6];
	uint64_t evtchn_pending_sel;
	uint64_t arch_cr2;
	uint64_t arch_pad;
	struct vcpu_time_info time;
};
_Static_assert(sizeof(struct vcpu_info) == 0x40, "vcpu_info size");
_Static_assert(offsetof(struct vcpu_info, evtchn_pending_sel) == 8, "evtchn_pending_sel");
_Static_assert(offsetof(struct vcpu_info, time) == 0x20, "vcpu_info.time");

#define XEN_LEGACY_MAX_VCPUS 32
#define EVTCHN_2L_WORDS 64

struct shared_info {
	struct vcpu_info vcpu_info[XEN_LEGACY_MAX_VCPUS];
	uint64_t evtchn_pending[EVTCHN_2L_WORDS];
	uint64_t evtchn_mask[EVTCHN_2L_WORDS];
	uint32_t wc_version;
	uint32_t wc_sec;
	uint32_t wc_nsec;
	uint32_t wc_sec_hi;
	/* arch_shared_info follows; unused. */
};
_Static_assert(offsetof(struct shared_info, evtchn_pending) == 0x800, "evtchn_pending");
_Static_assert(offsetof(struct shared_info, evtchn_mask) == 0xa00, "evtchn_mask");
_Static_assert(offsetof(struct shared_info, wc_version) == 0xc00, "wc_version");
_Static_assert(offsetof(struct shared_info, wc_sec_hi) == 0xc0c, "wc_sec_hi");

/* ---- grant tables v1 (§5) ---- */
#define GNTTABOP_map_grant_ref 0
#define GNTTABOP_unmap_grant_ref 1
#define GNTTABOP_copy 5
#define GNTTABOP_query_size 6

#define GNTTAB_NR_RESERVED_ENTRIES 8u
#define GNTTAB_ENTRIES_PER_FRAME 512u

#define GTF_permit_access 0x1u
#define GTF_readonly 0x4u
#define GTF_reading 0x8u
#define GTF_writing 0x10u

#define GNTMAP_host_map 0x2u
#define GNTMAP_readonly 0x4u

#define GNTCOPY_source_gref 0x1u
#define GNTCOPY_dest_gref 0x2u

struct grant_entry_v1 {
	uint16_t flags;
	uint16_t domid;
	uint32_t frame;
};
_Static_assert(sizeof(struct grant_entry_v1) == 8, "grant_entry_v1 size");

struct gnttab_query_size {
	uint16_t dom;
	uint16_t pad;
	uint32_t nr_frames;     /* out */
	uint32_t max_nr_frames; /* out */
	int16_t status;         /* out */
	uint16_t pad2;
};
_Static_assert(sizeof(struct gnttab_query_size) == 0x10, "gnttab_query_size size");
_Static_assert(offsetof(struct gnttab_query_size, status) == 0xc, "query_size.status");

struct gnttab_map_grant_ref {
	uint64_t host_addr;     /* guest-physical address of the slot (PVH) */
	uint32_t flags;
	uint32_t ref;
	uint16_t dom;
	int16_t status;         /* out */
	uint32_t handle;        /* out */
	uint64_t dev_bus_addr;  /* out */
};
_Static_assert(sizeof(struct gnttab_map_grant_ref) == 0x20, "map_grant_ref size");
_Static_assert(offsetof(struct gnttab_map_grant_ref, dom) == 0x10, "map.dom");
_Static_assert(offsetof(struct gnttab_map_grant_ref, status) == 0x12, "map.status");
_Static_assert(offsetof(struct gnttab_map_grant_ref, handle) == 0x14, "map.handle");

struct gnttab_unmap_grant_ref {
	uint64_t host_addr;
	uint64_t dev_bus_addr;
	uint32_t handle;
	int16_t status;         /* out */
	uint16_t pad;
};
_Static_assert(sizeof(struct gnttab_unmap_grant_ref) == 0x18, "unmap_grant_ref size");
_Static_assert(offsetof(struct gnttab_unmap_grant_ref, status) == 0x14, "unmap.status");

struct gnttab_copy_ptr {
	uint64_t u;             /* grant ref (low 32 bits) or our GFN */
	uint16_t domid;
	uint16_t offset;
	uint32_t pad;
};

struct gnttab_copy {
	struct gnttab_copy_ptr source;
	struct gnttab_copy_ptr dest;
	uint16_t len;
	uint16_t flags;
	int16_t status;         /* out */
	uint16_t pad;
};
_Static_assert(sizeof(struct gnttab_copy) == 0x28, "gnttab_copy size");
_Static_assert(offsetof(struct gnttab_copy, dest) == 0x10, "copy.dest");
_Static_assert(offsetof(struct gnttab_copy, dest.domid) == 0x18, "copy.dest.domid");
_Static_assert(offsetof(struct gnttab_copy, dest.offset) == 0x1a, "copy.dest.offset");
_Static_assert(offsetof(struct gnttab_copy, len) == 0x20, "copy.len");
_Static_assert(offsetof(struct gnttab_copy, status) == 0x24, "copy.status");

/* ---- console ring (§7.1) ---- */
#define XENCONS_IN_SIZE 1024u
#define XENCONS_OUT_SIZE 2048u

struct xencons_interface {
	char in[XENCONS_IN_SIZE];
	char out[XENCONS_OUT_SIZE];
	uint32_t in_cons, in_prod;
	uint32_t out_cons, out_prod;
};
_Static_assert(offsetof(struct xencons_interface, out) == 0x400, "xencons.out");
_Static_assert(offsetof(struct xencons_interface, in_cons) == 0xc00, "xencons.in_cons");
_Static_assert(offsetof(struct xencons_interface, out_cons) == 0xc08, "xencons.out_cons");
_Static_assert(offsetof(struct xencons_interface, out_prod) == 0xc0c, "xencons.out_prod");

#endif
