/* app.h — the firewall application: the same code in the host runner and
 * the unikernel. It brings up the control plane (XenStore, QubesDB,
 * qrexec), builds the router from the configuration, creates and removes
 * client interfaces as vifs come and go, rebuilds the uplink when the netvm
 * changes, applies every client's rules on each QubesDB commit, and drains
 * the log to the console.
 *
 * One instance per process. Single-threaded: the platform calls app_step
 * after any event (or at the deadline app_next_deadline gives) and feeds
 * frames from its devices between steps. Nothing here blocks or allocates
 * after app_init. */
#ifndef APP_APP_H
#define APP_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "qubes/cmdline.h"

struct app;
struct xs_client;

struct app_config {
	struct cmdline cmdline;
	uint32_t max_clients; /* 0: default (32) */
};

/* Bytes of arena the application needs for this configuration. */
size_t app_memory_needed(const struct app_config *cfg);

/* Builds the application from the arena (the CSPRNG must be seeded and the
 * clock set). NULL when the memory does not suffice. */
struct app *app_init(struct arena *a, const struct app_config *cfg);

/* Runs the control plane and periodic work once. Returns true when work is
 * left over (call again without waiting). */
bool app_step(struct app *app, uint64_t now_ns);

/* The latest time the platform may wait before calling app_step again. */
uint64_t app_next_deadline(const struct app *app, uint64_t now_ns);

/* A frame from a client device (cookie as given to platform_client_open)
 * or from the uplink. flags: ROUTER_RX_* (fw/router.h). */
void app_client_frame(struct app *app, uint32_t cookie, uint8_t *frame, size_t len,
		      uint32_t flags, uint64_t now_ns);
void app_uplink_frame(struct app *app, uint8_t *frame, size_t len, uint32_t flags,
		      uint64_t now_ns);

/* Text for qubes.FirewallStatus (also used by tests); returns its length. */
size_t app_status(struct app *app, char *buf, size_t cap);

/* Platform events: the uplink device went away (netvm died); a client
 * device finished closing (its backend directory is gone), so the vif is
 * released at once and a new vif with the same ids starts afresh. */
void app_uplink_lost(struct app *app);
void app_client_closed(struct app *app, uint32_t cookie);

/* The application's XenStore client: the one connection to XenStore, which
 * the platform also uses (vchan rendezvous keys, control/shutdown). */
struct xs_client *app_xenstore(struct app *app);

/* Drains the log ring to platform_console_line. */
void app_flush_log(void);

#endif
