/* evtchn.h — shared_info and 2-level event channels, PVH style (spec §3).
 *
 * Delivery: the per-vCPU upcall vector (CPU_UPCALL_VECTOR), whose handler
 * only EOIs the LAPIC; HVM_PARAM_CALLBACK_IRQ is set non-zero so the
 * toolstack treats us as PV-aware. Interrupts are enabled only inside
 * evtchn_block(), so no handler ever interrupts C code. All demultiplexing
 * happens in the main loop through evtchn_demux(). A port that fired stays
 * masked until its owner calls evtchn_unmask() after handling it, so a busy
 * peer cannot raise upcalls faster than we serve it. */
#ifndef PVH_EVTCHN_H
#define PVH_EVTCHN_H

#include <stdbool.h>
#include <stdint.h>

#include "pvh/xen_abi.h"

/* Maps shared_info, masks every port, enables the LAPIC and the upcall
 * vector, binds VIRQ_TIMER. False if shared_info cannot be mapped; a
 * missing upcall vector only degrades blocking to yielding. */
bool evtchn_init(void);

volatile struct shared_info *evtchn_shared_info(void);

/* VIRQ_TIMER's port (fires when the evtchn_block deadline passes). */
evtchn_port_t evtchn_timer_port(void);

typedef void (*evtchn_handler)(evtchn_port_t port, void *ctx);

/* Collects fired ports: clears upcall_pending, takes the selector, and for
 * every pending unmasked port masks it, clears pending and calls fn.
 * Returns the number of ports handed to fn. */
uint32_t evtchn_demux(evtchn_handler fn, void *ctx);

void evtchn_mask(evtchn_port_t port);
/* Unmasks; when the port became pending meanwhile, asks Xen to re-deliver. */
void evtchn_unmask(evtchn_port_t port);

/* Waits until an event arrives or the system time reaches deadline_ns
 * (absolute, time_now_ns() scale). Returns at once if events are pending. */
void evtchn_block(uint64_t deadline_ns);

#endif
