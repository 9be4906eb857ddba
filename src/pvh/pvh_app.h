/* pvh_app.h — the firewall application (src/app) on Xen: app/platform.h
 * for the unikernel and its event loop.
 *
 * The XenStore ring becomes the app's XenStore stream; QubesDB and qrexec
 * data channels are vchan clients whose rendezvous keys are read with the
 * app's XenStore client in the background; the qrexec agent is a vchan
 * server for dom0 on port 512; client vifs are served by xen/netback; the
 * uplink (xen/netfront) is not wired yet. control/shutdown is watched and
 * honoured. Nothing here blocks except evtchn_block() at the bottom of the
 * loop, and nothing is allocated after start-up. */
#ifndef PVH_PVH_APP_H
#define PVH_PVH_APP_H

#include <stdint.h>

#include "pvh/hypercall.h"
#include "qubes/cmdline.h"

/* Builds the application from the arena and runs it until dom0 asks us to
 * stop; returns the SCHEDOP_shutdown reason (SHUTDOWN_poweroff or
 * SHUTDOWN_reboot). Panics when the memory does not suffice. */
uint32_t pvh_app_run(const struct cmdline *options, const struct xen_info *xen);

#endif
