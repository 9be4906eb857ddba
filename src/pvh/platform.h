/* platform.h — the unikernel's top level: start-up (kmain), which hands
 * over to the application's loop (pvh/pvh_app.h), and the ways the domain
 * stops.
 *
 * Stopping: under Xen SCHEDOP_shutdown (poweroff, or crash on fatal
 * errors, spec §10); without Xen the QEMU isa-debug-exit port (0xf4), so a
 * smoke test's QEMU exits, then cli;hlt forever. */
#ifndef PVH_PLATFORM_H
#define PVH_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

/* QEMU's isa-debug-exit: writing v makes QEMU exit with status 2v+1. */
#define PLATFORM_DEBUG_EXIT_PORT 0xf4u
#define PLATFORM_EXIT_HALT 0u  /* QEMU status 1: orderly stop (no Xen) */
#define PLATFORM_EXIT_ERROR 1u /* QEMU status 3: bad config, crash, panic */

/* Entry from boot.S, with the hvm_start_info physical address. */
_Noreturn void kmain(uint32_t start_info_paddr);

/* Moves the base log ring (base/log.h) to the console and flushes it. */
void platform_drain_log(void);

/* Orderly stop: flushes logs, then poweroff (Xen) or debug-exit (QEMU). */
_Noreturn void platform_poweroff(void);

/* Fatal stop: flushes what it can, then crash (Xen) or debug-exit with
 * PLATFORM_EXIT_ERROR. Used by panics and the exception reporter. */
_Noreturn void platform_stop_crash(void);

bool platform_xen_present(void);

#endif
