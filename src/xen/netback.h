/* netback.h — the backend of one client vif: the xenbus state machine in
 * our backend directory, the client's TX ring (frames from the client) and
 * RX ring (frames to the client), both by grant copy.
 *
 * Facts: /work/shared/specs/xen-platform.md §8 (states, keys, ring layouts,
 * §8.7 exact steps), §5.4 (grant copy), §11.2; qubes-protocols.md
 * §5.3-5.6 (libxl: InitWait within 10 s; detach: online=0 + state 5 →
 * we write Closed (6), then remove the backend directory); anchors.md §3
 * (detach fails without Closed first; Windows PV close cycle before
 * connect; a vif that never completes blocks nobody; size-exact frames).
 *
 * The frontend is hostile: every ring slot is read once into a private
 * copy and validated; an impossible index, a slot chain longer than
 * NETBACK_SLOTS_FATAL, an offset/size beyond the page or a bad extra-info
 * slot disconnects THIS vif (NETDEV_FAILED, log line); a bad grant, a
 * frame too big or too small only drops that frame (ERROR responses).
 * Nothing here blocks, allocates, or keeps a foreign mapping after
 * teardown. Every XenStore watch it adds carries its owner id and goes
 * with the device.
 *
 * Lifecycle: netback_start → STARTING (state 2 written as soon as the
 * frontend path is read) → CONNECTED (rings mapped, state 4) → CLOSING
 * while the frontend is closed but the toolstack keeps the vif (a Windows
 * frontend that comes back is served again) → CLOSED once the toolstack
 * removed the vif (state 6 written, directory removed), the directory
 * vanished, or netback_stop ran, and no XenStore request of this vif is
 * outstanding: only then may the storage be reused. FAILED (hostile
 * frontend) is followed by CLOSED when the toolstack removes the vif. */
#ifndef XEN_NETBACK_H
#define XEN_NETBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xen/hv.h"
#include "xen/netdev.h"
#include "xen/netif.h"
#include "xen/xenstore.h"

/* The MAC of our side of every client link (qubes-protocols.md §5.5). */
#define NETBACK_MAC { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff }

#define NETBACK_MTU_DEFAULT 1500u
#define NETBACK_MTU_MIN 68u
#define NETBACK_MTU_MAX 9000u
/* Largest frame we accept from a client: MTU + Ethernet header + VLAN tag
 * (no GSO advertised, spec §8.6). */
#define NETBACK_FRAME_MAX (NETBACK_MTU_MAX + 18u)
#define NETBACK_FRAME_MIN 14u
/* Data slots per TX packet: up to NETIF_SLOTS_MIN accepted, up to
 * NETIF_SLOTS_FATAL answered with ERROR, beyond that the vif is failed. */
#define NETBACK_SLOTS_MAX NETIF_SLOTS_MIN
#define NETBACK_SLOTS_FATAL NETIF_SLOTS_FATAL
/* Extra-info slots per packet: each type at most once. */
#define NETBACK_EXTRAS_MAX (NETIF_EXTRA_TYPE_MAX - 1u)
/* Frames handled per netback_poll when the caller passes budget 0. */
#define NETBACK_POLL_BUDGET 64u
/* Between writing Closed on a toolstack removal and removing the backend
 * directory: time for libxl to read Closed (qubes-protocols.md §5.3). */
#define NETBACK_RM_DELAY_NS (2ull * 1000000000ull)
/* Watch owner ids: NETBACK_XS_OWNER_BASE + a per-process counter (16 bits). */
#define NETBACK_XS_OWNER_BASE 0x4e420000u

#define NETBACK_PATH_MAX 64u   /* "backend/vif/<domid>/<devid>" */
#define NETBACK_FE_PATH_MAX 80u /* "/local/domain/<domid>/device/vif/<devid>" */
#define NETBACK_KEY_MAX 112u
#define NETBACK_VAL_MAX 32u

struct netback_stats {
	uint64_t tx_frames;       /* from the client, delivered */
	uint64_t tx_bytes;
	uint64_t tx_dropped;      /* from the client, answered with ERROR */
	uint64_t rx_frames;       /* to the client, copied */
	uint64_t rx_bytes;
	uint64_t rx_no_buffer;    /* to the client, dropped: no RX request posted */
	uint64_t rx_dropped;      /* to the client, dropped: too big, not connected, copy error */
	uint64_t notifies;        /* event-channel notifications sent */
	uint64_t connects;        /* times the rings were connected */
};

/* Internal state, exposed only so that callers can provide storage. */
struct netback {
	struct xs_client *xs;
	struct netdev_callbacks cb;
	char be[NETBACK_PATH_MAX];
	char fe[NETBACK_FE_PATH_MAX];
	char key[NETBACK_KEY_MAX];   /* path of the request in flight */
	char val[NETBACK_VAL_MAX];   /* value read by the request in flight */
	hv_domid_t fe_domid;
	uint32_t devid;
	uint32_t owner;
	uint8_t phase;               /* enum in netback.c */
	uint8_t step;                /* sub-step of the phase */
	uint8_t be_written;          /* last xenbus state we wrote (0 = none) */
	uint8_t want_state;          /* xenbus state still to write (0 = none) */
	bool xs_busy;                /* one XenStore request of ours outstanding */
	bool fe_dirty;               /* frontend state must be re-read */
	bool be_dirty;               /* backend online/state must be re-read */
	bool be_online_zero;         /* last read of online said 0 */
	bool watches;                /* our watches are registered */
	bool kicked;                 /* event channel fired since the last poll */
	uint64_t rm_at;              /* removal: when the directory may go */
	enum netdev_state state;
	uint8_t client_mac[6];
	uint16_t mtu;
	/* frontend configuration (read on connect) */
	uint32_t tx_ref, rx_ref, fe_port;
	bool fe_sg;
	bool fe_rx_copy;
	/* rings */
	struct netif_tx_sring *tx;
	struct netif_rx_sring *rx;
	hv_port_t port;
	bool bound;
	uint32_t tx_req_cons, tx_rsp_prod_pvt;
	uint32_t rx_req_cons, rx_rsp_prod_pvt;
	struct netback_stats stats;
	/* a frame from the client, assembled by grant copy */
	uint8_t frame[NETBACK_FRAME_MAX];
};

/* Starts serving the vif whose backend directory (relative to our XenStore
 * home) is backend_path = "backend/vif/<frontend_domid>/<devid>". Returns
 * false (nothing started, no callback) on a malformed path or NULL
 * arguments. The handshake runs from XenStore callbacks and netback_poll;
 * cb->state reports every change, cb->rx every frame from the client
 * (flags NETDEV_RX_CSUM_BLANK / NETDEV_RX_DATA_VALIDATED from the request). */
bool netback_start(struct netback *nb, struct xs_client *xs, const char *backend_path,
		   hv_domid_t frontend_domid, const struct netdev_callbacks *cb);

/* The application drops the vif (its directory vanished, shutdown): rings
 * torn down, watches removed, no XenStore write; CLOSED follows once no
 * request is outstanding (possibly from inside this call). */
void netback_stop(struct netback *nb);

/* Bounded work: retries XenStore steps that were busy, takes at most
 * `budget` frames (0 = NETBACK_POLL_BUDGET) from the client's TX ring,
 * pushes responses and notifies. Returns true when work is left (poll
 * again soon). */
bool netback_poll(struct netback *nb, size_t budget);

/* Our event channel fired (the caller then calls netback_poll). */
void netback_event(struct netback *nb);

/* Our end of the vif's event channel, when bound. */
bool netback_port(const struct netback *nb, hv_port_t *port);

/* Copies one frame into the client's posted RX buffers (multi-slot when
 * longer than a page and the frontend supports SG), size-exact responses,
 * notify. False (and counted) when not connected, no buffer is posted
 * (no queue: a client that does not read loses frames), the frame is too
 * big, or the copy failed. Never waits. */
bool netback_transmit(struct netback *nb, const uint8_t *frame, size_t len);

enum netdev_state netback_state(const struct netback *nb);
/* The frontend's MAC from <frontend>/mac (zero when absent/unparseable). */
const uint8_t *netback_client_mac(const struct netback *nb);
uint16_t netback_mtu(const struct netback *nb);
const struct netback_stats *netback_stats(const struct netback *nb);

#endif
