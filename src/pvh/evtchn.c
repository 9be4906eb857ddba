/* evtchn.c — see evtchn.h. Bit operations on the shared bitmaps are
 * atomic: Xen sets pending bits concurrently from other pCPUs. */
#include "pvh/evtchn.h"

#include "base/log.h"
#include "pvh/cpu.h"
#include "pvh/hypercall.h"

#define PAGE_SHIFT 12

static union {
	struct shared_info si;
	uint8_t page[4096];
} shared_page __attribute__((aligned(4096)));

static volatile struct shared_info *shared;
static bool have_vector;
static evtchn_port_t timer_port;

bool evtchn_init(void)
{
	uint64_t gpfn = (uint64_t)(uintptr_t)&shared_page >> PAGE_SHIFT;
	long rc = hypercall_add_to_physmap(XENMAPSPACE_shared_info, 0, gpfn);

	if (rc != 0) {
		log_error("evtchn: mapping shared_info failed (%ld)", rc);
		return false;
	}
	shared = &shared_page.si;
	for (uint32_t w = 0; w < EVTCHN_2L_WORDS; w++)
		__atomic_store_n(&shared->evtchn_mask[w], ~0ull, __ATOMIC_SEQ_CST);

	if (!cpu_lapic_enable()) {
		log_warn("evtchn: no usable local APIC; blocking degrades to yielding");
	} else if ((rc = hypercall_set_upcall_vector(0, CPU_UPCALL_VECTOR)) != 0) {
		log_warn("evtchn: HVMOP_set_evtchn_upcall_vector failed (%ld); "
			 "blocking degrades to yielding", rc);
	} else {
		have_vector = true;
	}
	/* Non-zero so the toolstack sees a PV-aware guest (spec §3.3 item 4);
	 * the upcall vector takes precedence over the GSI this names. */
	if ((rc = hypercall_hvm_set_param(HVM_PARAM_CALLBACK_IRQ, 1)) != 0)
		log_warn("evtchn: setting HVM_PARAM_CALLBACK_IRQ failed (%ld)", rc);
	if ((rc = hypercall_evtchn_bind_virq(VIRQ_TIMER, &timer_port)) != 0)
		log_warn("evtchn: binding VIRQ_TIMER failed (%ld)", rc);
	else
		evtchn_unmask(timer_port);
	return true;
}

volatile struct shared_info *evtchn_shared_info(void)
{
	return shared;
}

evtchn_port_t evtchn_timer_port(void)
{
	return timer_port;
}

void evtchn_mask(evtchn_port_t port)
{
	if (!shared || port >= EVTCHN_2L_NR_CHANNELS)
		return;
	__atomic_fetch_or(&shared->evtchn_mask[port / 64], 1ull << (port % 64), __ATOMIC_SEQ_CST);
}

void evtchn_unmask(evtchn_port_t port)
{
	uint64_t bit = 1ull << (port % 64);

	if (!shared || port >= EVTCHN_2L_NR_CHANNELS)
		return;
	__atomic_fetch_and(&shared->evtchn_mask[port / 64], ~bit, __ATOMIC_SEQ_CST);
	/* Pending while masked: Xen raised no upcall for it, so ask it to
	 * (re-mask first; EVTCHNOP_unmask clears the mask and re-delivers). */
	if (__atomic_load_n(&shared->evtchn_pending[port / 64], __ATOMIC_SEQ_CST) & bit) {
		__atomic_fetch_or(&shared->evtchn_mask[port / 64], bit, __ATOMIC_SEQ_CST);
		(void)hypercall_evtchn_unmask(port);
	}
}

size_t evtchn_take_pending(evtchn_port_t *ports, size_t cap)
{
	volatile struct vcpu_info *v;
	size_t n = 0;

	if (!shared || cap == 0)
		return 0;
	v = &shared->vcpu_info[0];
	/* Clear first (spec §3.2): an event arriving during the scan then
	 * raises upcall_pending again, which evtchn_block() sees. */
	__atomic_store_n(&v->evtchn_upcall_pending, 0, __ATOMIC_SEQ_CST);
	(void)__atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
	for (uint32_t w = 0; w < EVTCHN_2L_WORDS && n < cap; w++) {
		uint64_t ready = __atomic_load_n(&shared->evtchn_pending[w], __ATOMIC_SEQ_CST) &
				 ~__atomic_load_n(&shared->evtchn_mask[w], __ATOMIC_SEQ_CST);
		while (ready && n < cap) {
			uint32_t b = (uint32_t)__builtin_ctzll(ready);
			uint64_t bit = 1ull << b;
			ready &= ready - 1;
			/* Report only what we cleared ourselves. */
			if (__atomic_fetch_and(&shared->evtchn_pending[w], ~bit, __ATOMIC_SEQ_CST) &
			    bit)
				ports[n++] = w * 64 + b;
		}
	}
	return n;
}

void evtchn_block(uint64_t deadline_ns)
{
	if (!shared)
		return;
	if (!have_vector) {
		(void)hypercall_sched_yield();
		return;
	}
	cpu_cli();
	if (__atomic_load_n(&shared->vcpu_info[0].evtchn_upcall_pending, __ATOMIC_SEQ_CST))
		return;
	(void)hypercall_set_timer_op(deadline_ns);
	cpu_sti_hlt();
	cpu_cli();
}
