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

/* SCHEDOP_poll takes at most this many ports (Xen's limit). */
#define POLL_PORTS_MAX 128u

static volatile struct shared_info *shared;
static evtchn_port_t timer_port;
/* Ports in use (unmasked): the ones evtchn_block() waits on. */
static uint64_t in_use[EVTCHN_2L_WORDS];
static bool poll_refused;

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

	/* The vector is registered so Xen has somewhere to deliver upcalls,
	 * but interrupts stay disabled: evtchn_block() waits in SCHEDOP_poll,
	 * which does not depend on interrupt delivery. */
	if (!cpu_lapic_enable())
		log_warn("evtchn: no usable local APIC");
	else if ((rc = hypercall_set_upcall_vector(0, CPU_UPCALL_VECTOR)) != 0)
		log_warn("evtchn: HVMOP_set_evtchn_upcall_vector failed (%ld)", rc);
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
	in_use[port / 64] &= ~(1ull << (port % 64));
	__atomic_fetch_or(&shared->evtchn_mask[port / 64], 1ull << (port % 64), __ATOMIC_SEQ_CST);
}

void evtchn_unmask(evtchn_port_t port)
{
	uint64_t bit = 1ull << (port % 64);

	if (!shared || port >= EVTCHN_2L_NR_CHANNELS)
		return;
	in_use[port / 64] |= bit;
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

/* SCHEDOP_poll marks the vCPU blocked, then looks at the listed ports'
 * pending bits, and any event of the domain wakes a vCPU that polls more
 * than one port: an event arriving at any moment after the caller's last
 * evtchn_take_pending() ends the wait, with interrupts never enabled. (The
 * classic "sti; hlt" on the upcall vector lost that race under QEMU's SVM
 * emulation: the firewall then slept through every event and its timer,
 * issue 6.) Only ports in use are listed; beyond Xen's limit of 128 the
 * rest still wake us, only their "already pending" check is skipped. */
void evtchn_block(uint64_t deadline_ns)
{
	evtchn_port_t ports[POLL_PORTS_MAX];
	uint32_t n = 0;
	long rc;

	if (!shared)
		return;
	for (uint32_t w = 0; w < EVTCHN_2L_WORDS && n < POLL_PORTS_MAX; w++)
		for (uint64_t bits = in_use[w]; bits && n < POLL_PORTS_MAX; bits &= bits - 1)
			ports[n++] = w * 64 + (uint32_t)__builtin_ctzll(bits);
	if (n == 0 || poll_refused) {
		(void)hypercall_sched_yield();
		return;
	}
	/* timeout 0 would mean "none": a deadline is always at least 1 ns. */
	rc = hypercall_sched_poll(ports, n, deadline_ns ? deadline_ns : 1);
	if (rc != 0) {
		poll_refused = true;
		log_error("evtchn: SCHEDOP_poll failed (%ld); the firewall will yield "
			  "instead of sleeping", rc);
	}
}
