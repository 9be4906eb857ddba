/* netdev.h — what netfront (our uplink to the netvm) and netback (one per
 * client vif) offer the platform: a frame-in callback, a transmit call, a
 * poll, and a lifecycle driven by XenStore. Shared by both so src/pvh can
 * treat them alike.
 *
 * Frames handed to rx are valid only during the call (the router may edit
 * them in place). Transmit copies the frame (grant copy) or refuses it when
 * the peer's ring/queue is full; it never waits. */
#ifndef XEN_NETDEV_H
#define XEN_NETDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flags of a received frame, the router's ROUTER_RX_* values. */
#define NETDEV_RX_CSUM_BLANK 0x1u
#define NETDEV_RX_DATA_VALIDATED 0x2u

/* Largest frame on a Xen vif without GSO: MTU 1500 + Ethernet, or a
 * scatter-gather chain up to 64 KiB when the peer's MTU is larger. */
#define NETDEV_FRAME_MAX 65535u

enum netdev_state {
	NETDEV_STARTING = 0, /* xenbus handshake in progress */
	NETDEV_CONNECTED,    /* rings mapped, frames flow */
	NETDEV_CLOSING,      /* peer went away or asked to close */
	NETDEV_CLOSED,       /* everything released; may be freed/reused */
	NETDEV_FAILED,       /* peer misbehaved: disconnected with a log line */
};

struct netdev_callbacks {
	/* One received frame. */
	void (*rx)(void *ctx, uint8_t *frame, size_t len, uint32_t flags);
	/* The state changed (connected, closing, closed, failed). */
	void (*state)(void *ctx, enum netdev_state st);
	void *ctx;
};

#endif
