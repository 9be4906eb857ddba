/* hypercall.c — see hypercall.h. The page is pre-filled with `ret`
 * (0xc3) so a call through a page Xen never filled returns garbage instead
 * of executing zeroes, and so hypercall_init() can see that Xen wrote it. */
#include "pvh/hypercall.h"

#include <stddef.h>

#include "base/libc.h"
#include "pvh/cpu.h"

#define HYPERCALL_PAGE_SIZE 4096u
#define HYPERCALL_STUB_SIZE 32u
#define XEN_HVM_CPUID_DOMID_PRESENT 0x10u

static uint8_t hypercall_page[HYPERCALL_PAGE_SIZE] __attribute__((aligned(4096)));
static bool ready;

bool hypercall_detect(struct xen_info *out)
{
	memset(out, 0, sizeof(*out));
	/* Leaf 1 ecx bit 31: "running under a hypervisor". Without it the
	 * 0x4000xxxx leaves are undefined (they mirror the highest basic leaf
	 * on real hardware). */
	if (!((cpu_cpuid(1, 0).ecx >> 31) & 1))
		return false;
	for (uint32_t base = XEN_CPUID_FIRST_LEAF; base < XEN_CPUID_LAST_LEAF;
	     base += XEN_CPUID_LEAF_STEP) {
		struct cpuid_regs r = cpu_cpuid(base, 0);
		if (r.ebx != XEN_CPUID_SIGNATURE_EBX || r.ecx != XEN_CPUID_SIGNATURE_ECX ||
		    r.edx != XEN_CPUID_SIGNATURE_EDX || r.eax - base < 2)
			continue;
		out->present = true;
		out->base_leaf = base;
		r = cpu_cpuid(base + 1, 0);
		out->major = (uint16_t)(r.eax >> 16);
		out->minor = (uint16_t)r.eax;
		out->hypercall_msr = cpu_cpuid(base + 2, 0).ebx;
		if (r.eax - base >= 4) {
			r = cpu_cpuid(base + 4, 0);
			if (r.eax & XEN_HVM_CPUID_DOMID_PRESENT) {
				out->has_domid = true;
				out->domid = (uint16_t)r.ecx;
			}
		}
		return true;
	}
	return false;
}

bool hypercall_init(const struct xen_info *xi)
{
	if (!xi->present)
		return false;
	memset(hypercall_page, 0xc3, sizeof(hypercall_page));
	cpu_wrmsr(xi->hypercall_msr, (uint64_t)(uintptr_t)hypercall_page);
	cpu_barrier();
	ready = *(volatile uint8_t *)hypercall_page != 0xc3;
	return ready;
}

long hypercall_raw(unsigned nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5)
{
	register uint64_t r10 __asm__("r10") = a4;
	register uint64_t r8 __asm__("r8") = a5;
	long ret;
	const uint8_t *entry = hypercall_page + (size_t)nr * HYPERCALL_STUB_SIZE;

	if (!ready || nr >= HYPERCALL_PAGE_SIZE / HYPERCALL_STUB_SIZE)
		return -38; /* -ENOSYS */
	__asm__ volatile("call *%[entry]"
			 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
			 : [entry] "r"(entry)
			 : "memory", "rcx", "r11");
	return ret;
}

long hypercall_hvm_get_param(uint32_t index, uint64_t *value)
{
	struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index };
	long rc = hypercall_raw(__HYPERVISOR_hvm_op, HVMOP_get_param, (uintptr_t)&p, 0, 0, 0);

	*value = rc == 0 ? p.value : 0;
	return rc;
}

long hypercall_hvm_set_param(uint32_t index, uint64_t value)
{
	struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index, .value = value };
	return hypercall_raw(__HYPERVISOR_hvm_op, HVMOP_set_param, (uintptr_t)&p, 0, 0, 0);
}

long hypercall_set_upcall_vector(uint32_t vcpu, uint8_t vector)
{
	struct xen_hvm_evtchn_upcall_vector a = { .vcpu = vcpu, .vector = vector };
	return hypercall_raw(__HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector, (uintptr_t)&a,
			     0, 0, 0);
}

long hypercall_add_to_physmap(uint32_t space, uint64_t idx, uint64_t gpfn)
{
	struct xen_add_to_physmap a = {
		.domid = DOMID_SELF, .space = space, .idx = idx, .gpfn = gpfn,
	};
	return hypercall_raw(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, (uintptr_t)&a, 0, 0,
			     0);
}

long hypercall_memory_map(struct e820_entry *entries, uint32_t *count)
{
	struct xen_memory_map m = { .nr_entries = *count, .buffer = (uintptr_t)entries };
	long rc = hypercall_raw(__HYPERVISOR_memory_op, XENMEM_memory_map, (uintptr_t)&m, 0, 0,
				0);

	/* Never believe a count larger than what we offered. */
	*count = rc == 0 ? MIN(m.nr_entries, *count) : 0;
	return rc;
}

long hypercall_current_reservation(void)
{
	uint16_t domid = DOMID_SELF;
	return hypercall_raw(__HYPERVISOR_memory_op, XENMEM_current_reservation, (uintptr_t)&domid,
			     0, 0, 0);
}

long hypercall_evtchn_send(evtchn_port_t port)
{
	struct evtchn_send s = { .port = port };
	return hypercall_raw(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (uintptr_t)&s, 0, 0, 0);
}

long hypercall_evtchn_unmask(evtchn_port_t port)
{
	struct evtchn_send u = { .port = port }; /* evtchn_unmask has the same layout */
	return hypercall_raw(__HYPERVISOR_event_channel_op, EVTCHNOP_unmask, (uintptr_t)&u, 0, 0,
			     0);
}

long hypercall_evtchn_bind_virq(uint32_t virq, evtchn_port_t *port)
{
	struct evtchn_bind_virq b = { .virq = virq, .vcpu = 0 };
	long rc = hypercall_raw(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, (uintptr_t)&b,
				0, 0, 0);

	*port = rc == 0 ? b.port : 0;
	return rc;
}

long hypercall_evtchn_alloc_unbound(uint16_t remote_dom, evtchn_port_t *port)
{
	struct evtchn_alloc_unbound a = { .dom = DOMID_SELF, .remote_dom = remote_dom };
	long rc = hypercall_raw(__HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
				(uintptr_t)&a, 0, 0, 0);

	*port = rc == 0 ? a.port : 0;
	return rc;
}

long hypercall_evtchn_bind_interdomain(uint16_t remote_dom, evtchn_port_t remote_port,
				       evtchn_port_t *port)
{
	struct evtchn_bind_interdomain b = { .remote_dom = remote_dom, .remote_port = remote_port };
	long rc = hypercall_raw(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
				(uintptr_t)&b, 0, 0, 0);

	*port = rc == 0 ? b.local_port : 0;
	return rc;
}

long hypercall_evtchn_close(evtchn_port_t port)
{
	struct evtchn_close c = { .port = port };
	return hypercall_raw(__HYPERVISOR_event_channel_op, EVTCHNOP_close, (uintptr_t)&c, 0, 0, 0);
}

long hypercall_grant_table_op(unsigned cmd, void *ops, uint32_t count)
{
	return hypercall_raw(__HYPERVISOR_grant_table_op, cmd, (uintptr_t)ops, count, 0, 0);
}

long hypercall_sched_yield(void)
{
	return hypercall_raw(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
}

long hypercall_sched_shutdown(uint32_t reason)
{
	struct sched_shutdown s = { .reason = reason };
	return hypercall_raw(__HYPERVISOR_sched_op, SCHEDOP_shutdown, (uintptr_t)&s, 0, 0, 0);
}

long hypercall_sched_poll(const evtchn_port_t *ports, uint32_t nr_ports, uint64_t timeout_ns)
{
	struct {
		uint64_t ports;
		uint32_t nr_ports;
		uint32_t pad;
		uint64_t timeout;
	} p = { .ports = (uintptr_t)ports, .nr_ports = nr_ports, .timeout = timeout_ns };
	_Static_assert(sizeof(p) == 0x18, "sched_poll size");
	return hypercall_raw(__HYPERVISOR_sched_op, SCHEDOP_poll, (uintptr_t)&p, 0, 0, 0);
}
