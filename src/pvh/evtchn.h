/* evtchn.h — shared_info and 2-level event channels, PVH style (spec §3).
 *
 * Delivery: the per-vCPU upcall vector (CPU_UPCALL_VECTOR), whose handler
 * only EOIs the LAPIC; HVM_PARAM_CALLBACK_IRQ is set non-zero so the
 * toolstack treats us as PV-aware. Interrupts are enabled only inside
 * evtchn_block(), so no handler ever interrupts C code, and an upcall only
 * ever ends a hlt: a busy peer cannot interrupt us more often than we
 * block. All demultiplexing happens in the main loop through
 * evtchn_take_pending(). Ports in use stay unmasked; the rest stay masked. */
#ifndef PVH_EVTCHN_H
#define PVH_EVTCHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvh/xen_abi.h"

/* Maps shared_info, masks every port, enables the LAPIC and the upcall
 * vector, binds VIRQ_TIMER. False if shared_info cannot be mapped; a
 * missing upcall vector only degrades blocking to yielding. */
bool evtchn_init(void);

volatile struct shared_info *evtchn_shared_info(void);

/* VIRQ_TIMER's port (fires when the evtchn_block deadline passes). */
evtchn_port_t evtchn_timer_port(void);

/* hv.h's view (hv_evtchn_take_pending): clears upcall_pending and the
 * selector, then scans every word of the pending bitmap (so ports left
 * over when cap was reached are found by the next call), and for each
 * pending unmasked port clears its pending bit and reports it, ascending,
 * up to cap. Ports stay unmasked. Returns the count. */
size_t evtchn_take_pending(evtchn_port_t *ports, size_t cap);

void evtchn_mask(evtchn_port_t port);
/* Unmasks; when the port became pending meanwhile, asks Xen to re-deliver. */
void evtchn_unmask(evtchn_port_t port);

/* Waits until an event arrives or the system time reaches deadline_ns
 * (absolute, time_now_ns() scale). Returns at once if events are pending. */
void evtchn_block(uint64_t deadline_ns);

#endif
