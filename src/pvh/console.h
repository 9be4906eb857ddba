/* console.h — the unikernel's text output.
 *
 * Under Xen: the PV console ring (spec §7). Writers append to a local
 * buffer and return at once; console_flush() (main loop) moves what fits
 * into the ring, publishes out_prod once and sends one notification.
 * When the local buffer is full the new text is dropped and counted, and a
 * "[console: N bytes dropped]" marker follows (CVE-2022-46770: never spin
 * on a slow reader). Without Xen (QEMU smoke test) or without a console
 * ring, text goes straight to the QEMU/Xen debug port 0xE9 and to COM1.
 * Before the platform knows which, text is buffered. Never blocks, except
 * console_flush_sync(), the panic path, which waits a bounded time. */
#ifndef PVH_CONSOLE_H
#define PVH_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_BUFFER_SIZE 16384u
/* Panic-path bound: SCHEDOP_yield rounds waiting for xenconsoled. */
#define CONSOLE_SYNC_MAX_YIELDS 2000u

/* No hypervisor console: use the debug port and COM1 from now on (the
 * buffered text is written out first). */
void console_use_debug_ports(void);

/* Attaches to the Xen console ring named by HVM_PARAM_CONSOLE_PFN/EVTCHN.
 * False (and nothing changed) when Xen gives none; needs the hypercall
 * page. */
bool console_use_xen_ring(void);

bool console_on_xen_ring(void);

/* Appends len bytes; never blocks (drops and counts when full). */
void console_write(const char *s, size_t len);

/* A printf-subset line (base/fmt.h), cut at 512 bytes. */
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* console_printf + console_flush_sync: for the crash paths only. */
void console_printf_sync(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Moves buffered text to the ring (or the debug ports); one notification. */
void console_flush(void);

/* Flushes, yielding to Xen up to CONSOLE_SYNC_MAX_YIELDS times while the
 * ring is full. Before a console is chosen, writes to the debug port. */
void console_flush_sync(void);

/* Bytes dropped because the local buffer was full, since start. */
uint64_t console_dropped_bytes(void);

#endif
