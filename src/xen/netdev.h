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

/* Parses a XenStore "mac" value "xx:xx:xx:xx:xx:xx" (hex digits, either
 * case, exactly 17 characters); false (mac untouched) on anything else. */
static inline bool netdev_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t out[6];
	for (int i = 0; i < 6; i++) {
		uint8_t b = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[i * 3 + k];
			uint8_t d;
			if (c >= '0' && c <= '9')
				d = (uint8_t)(c - '0');
			else if (c >= 'a' && c <= 'f')
				d = (uint8_t)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				d = (uint8_t)(c - 'A' + 10);
			else
				return false;
			b = (uint8_t)(b << 4 | d);
		}
		out[i] = b;
		if (s[i * 3 + 2] != (i == 5 ? '\0' : ':'))
			return false;
	}
	for (int i = 0; i < 6; i++)
		mac[i] = out[i];
	return true;
}

#endif
