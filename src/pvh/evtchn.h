/* evtchn.h — shared_info and 2-level event channels, PVH style (spec §3).
 *
 * Interrupts are never enabled: the firewall waits for events in
 * SCHEDOP_poll (spec §3.3, "alternative without interrupts"), which has no
 * lost-wake-up window and does not depend on interrupt delivery, so a
 * busy peer can never interrupt C code. The per-vCPU upcall vector is
 * still registered (its handler only EOIs the LAPIC) and
 * HVM_PARAM_CALLBACK_IRQ is set non-zero so the toolstack treats us as
 * PV-aware. All demultiplexing happens in the main loop through
 * evtchn_take_pending(). Ports in use stay unmasked (and are the ones
 * evtchn_block() polls); the rest stay masked.
 *
 * Must never: enable interrupts, or sleep past an event on a port in use. */
#ifndef PVH_EVTCHN_H
#define PVH_EVTCHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvh/xen_abi.h"

/* Maps shared_info, masks every port, enables the LAPIC and the upcall
 * vector, binds VIRQ_TIMER. False if shared_info cannot be mapped. */
bool evtchn_init(void);

volatile struct shared_info *evtchn_shared_info(void);

/* VIRQ_TIMER's port (bound so Xen's timer events land somewhere known;
 * evtchn_block's deadline is SCHEDOP_poll's timeout). */
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

/* Waits until an event arrives on a port in use or the system time
 * reaches deadline_ns (absolute, time_now_ns() scale). Returns at once if
 * one of those ports is pending. Falls back to yielding (with one log
 * line) if Xen refuses SCHEDOP_poll. */
void evtchn_block(uint64_t deadline_ns);

#endif
