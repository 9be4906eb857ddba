/* platform.h — what a platform (src/host: Linux process; src/pvh: the
 * unikernel) provides to the application, and the entry points it calls.
 *
 * The implementation varies at link time, so these are plain functions.
 * Every one of them returns at once: connecting that cannot happen yet
 * returns false and the application retries on a later step. Frames the
 * devices receive are handed to app_client_frame / app_uplink_frame from
 * the platform's event loop, never from inside one of these calls. */
#ifndef APP_PLATFORM_H
#define APP_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

struct xs_client;

/* Control-plane streams. */
bool platform_xenstore_connect(struct stream *out);
bool platform_qubesdb_connect(struct stream *out);
/* A new qrexec control connection from dom0, if one is waiting. */
bool platform_qrexec_accept(struct stream *out);
/* A data vchan as client to (domid, port) (qrexec services). */
bool platform_vchan_connect(uint32_t domid, uint32_t port, struct stream *out);

/* Network devices. A client device serves the vif whose backend directory
 * (relative to our XenStore home) is backend_path; xs is the application's
 * XenStore client for the device's own state machine (Xen netback). Frames
 * it receives go to app_client_frame(cookie, ...). Returns a device handle
 * >= 0, or -1. */
int platform_client_open(uint32_t domid, uint32_t devid, const char *backend_path,
			 struct xs_client *xs, uint32_t cookie);
void platform_client_close(int dev);
/* The router's transmit callback for a client device; ctx is the handle
 * cast to a pointer-sized integer. */
bool platform_client_transmit(void *ctx, const uint8_t *frame, size_t len);

/* The uplink device towards the netvm; *mac and *mtu describe our side. */
bool platform_uplink_open(struct xs_client *xs, uint8_t mac[6], uint16_t *mtu);
void platform_uplink_close(void);
bool platform_uplink_transmit(void *ctx, const uint8_t *frame, size_t len);

/* Writes one log line (no newline) to the console; never blocks (drops
 * and counts when the console cannot keep up). */
void platform_console_line(const char *line, size_t len);

#endif
