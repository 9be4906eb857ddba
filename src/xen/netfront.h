/* netfront.h — our uplink to the netvm: the frontend of device/vif/0.
 *
 * Facts: /work/shared/specs/xen-platform.md §8.3 (keys we write), §8.4
 * (rings), §8.5 (sequence: wait for the backend keys, backend ≥ InitWait
 * before reading its features, rings and RX buffers granted, one
 * transaction with our keys and state 4, traffic once the backend is
 * Connected; disconnect/reconnect), §8.6, §11.2 items 12-16 (grants:
 * quarantine pages whose grant cannot be ended, MSA02).
 *
 * The backend (sys-net) is not trusted: every response is read once into a
 * private copy and validated (index within what we posted, id within
 * range and outstanding, offset + size within the page, status); received
 * data is copied out of the granted page before anyone parses it. A
 * violation drops the frame, or — for impossible ring indexes — fails the
 * device (NETDEV_FAILED, log line); never a crash or a stall.
 *
 * Memory: NETFRONT_RX_BUFS + NETFRONT_TX_PAGES + 2 I/O pages per
 * connection, from hv_pages_alloc at netfront_start, returned on close
 * except pages whose grant the backend still holds (kept in the quarantine
 * and retried by netfront_poll/netfront_start, never reused while busy). */
#ifndef XEN_NETFRONT_H
#define XEN_NETFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xen/hv.h"
#include "xen/netdev.h"
#include "xen/netif.h"
#include "xen/xenstore.h"

#define NETFRONT_RX_BUFS 128u  /* RX pages kept posted (≤ NETIF_RX_RING_SIZE) */
#define NETFRONT_TX_PAGES 64u  /* TX pool: two 2 KiB blocks per page */
#define NETFRONT_TX_BLOCK 2048u
#define NETFRONT_TX_BLOCKS ((size_t)2u * NETFRONT_TX_PAGES)
#define NETFRONT_SLOTS_MAX NETIF_SLOTS_MIN /* per frame, either direction */
/* Largest frame either way: 18 RX pages; TX 18 blocks. */
#define NETFRONT_FRAME_MAX NETDEV_FRAME_MAX
#define NETFRONT_TX_FRAME_MAX ((size_t)NETFRONT_SLOTS_MAX * NETFRONT_TX_BLOCK)
#define NETFRONT_MTU_DEFAULT 1500u
#define NETFRONT_POLL_BUDGET 64u
#define NETFRONT_QUARANTINE_MAX ((size_t)(NETFRONT_RX_BUFS + NETFRONT_TX_PAGES + 2u) * 2u)
#define NETFRONT_XS_OWNER_BASE 0x4e460000u

#define NETFRONT_PATH_MAX 64u
#define NETFRONT_BE_PATH_MAX 96u
#define NETFRONT_KEY_MAX 128u
#define NETFRONT_VAL_MAX 112u

_Static_assert(NETFRONT_RX_BUFS <= NETIF_RX_RING_SIZE, "RX buffers fit the ring");
_Static_assert(NETFRONT_TX_BLOCKS <= NETIF_TX_RING_SIZE, "TX blocks fit the ring");

struct netfront_stats {
	uint64_t rx_frames, rx_bytes;
	uint64_t rx_dropped;   /* bad responses, error status, oversize chains */
	uint64_t tx_frames, tx_bytes;
	uint64_t tx_full;      /* netfront_transmit refused: pool or ring full */
	uint64_t tx_errors;    /* responses with an error status */
	uint64_t bad_responses;
	uint64_t notifies;
	uint64_t quarantined;  /* pages put into the quarantine */
};

struct netfront_quarantined {
	void *page;
	hv_gref_t gref;
	hv_domid_t owner;
};

/* Internal state, exposed only so that callers can provide storage. */
struct netfront {
	struct xs_client *xs;
	struct netdev_callbacks cb;
	char dev[NETFRONT_PATH_MAX];    /* "device/vif/0" */
	char be[NETFRONT_BE_PATH_MAX];  /* backend path (absolute) */
	char key[NETFRONT_KEY_MAX];
	char val[NETFRONT_VAL_MAX];
	hv_domid_t be_domid;
	uint32_t owner;
	uint8_t phase;                  /* enum in netfront.c */
	bool xs_busy;
	bool be_dirty;                  /* backend state must be re-read */
	bool dev_dirty;                 /* our backend/backend-id keys changed */
	bool watches;
	bool be_watch;
	bool kicked;
	bool be_rx_copy;
	bool be_sg;
	enum netdev_state state;
	uint8_t mac[6];
	uint16_t mtu;
	/* rings and buffers of the current connection */
	struct netif_tx_sring *tx;
	struct netif_rx_sring *rx;
	hv_gref_t tx_ref, rx_ref;
	hv_port_t port;
	bool port_open;
	uint8_t *rx_pages;              /* NETFRONT_RX_BUFS contiguous pages */
	uint8_t *tx_pages;              /* NETFRONT_TX_PAGES contiguous pages */
	hv_gref_t rx_gref[NETFRONT_RX_BUFS];
	hv_gref_t tx_gref[NETFRONT_TX_PAGES];
	bool rx_posted[NETFRONT_RX_BUFS];
	uint16_t rx_slot_id[NETIF_RX_RING_SIZE]; /* buffer posted at each ring slot */
	bool tx_busy[NETFRONT_TX_BLOCKS];
	uint16_t tx_free[NETFRONT_TX_BLOCKS];
	size_t tx_nfree;
	uint32_t tx_req_prod_pvt, tx_rsp_cons;
	uint32_t rx_req_prod_pvt, rx_rsp_cons;
	struct netfront_stats stats;
	/* quarantine survives connections */
	struct netfront_quarantined quarantine[NETFRONT_QUARANTINE_MAX];
	size_t quarantine_len;
	/* a received frame, copied out of the granted pages */
	uint8_t frame[NETFRONT_FRAME_MAX];
};

/* One-time initialisation of the storage (empty quarantine). */
void netfront_init(struct netfront *nf);

/* Starts the frontend in dev_path ("device/vif/0", relative to our home):
 * waits for backend/backend-id, reads mac and mtu, waits for the backend
 * to reach InitWait, checks feature-rx-copy, allocates and grants the
 * rings and buffers, writes our keys and state 4 in one transaction, and
 * reports CONNECTED once the backend is Connected. False when it cannot
 * start (bad arguments, already running). Callable again after CLOSED
 * (new netvm). */
bool netfront_start(struct netfront *nf, struct xs_client *xs, const char *dev_path,
		    const struct netdev_callbacks *cb);

/* We drop the uplink (netvm change): state 6 written, grants ended
 * (quarantined if busy), watches removed; CLOSED follows once no XenStore
 * request is outstanding. */
void netfront_stop(struct netfront *nf);

/* Bounded work: XenStore steps, TX responses, RX frames (at most budget,
 * 0 = NETFRONT_POLL_BUDGET), re-posting RX buffers, quarantine retries.
 * True when work is left. */
bool netfront_poll(struct netfront *nf, size_t budget);
void netfront_event(struct netfront *nf);
bool netfront_port(const struct netfront *nf, hv_port_t *port);

/* Copies a frame into free TX blocks (several slots with more_data when
 * longer than a block) and pushes it. False when not connected, the frame
 * is empty or too big, or no block/slot is free (the caller counts a drop).
 * Frames go with flags 0: their checksums are complete. */
bool netfront_transmit(struct netfront *nf, const uint8_t *frame, size_t len);

enum netdev_state netfront_state(const struct netfront *nf);
/* Our MAC (device/vif/0/mac) and MTU (device/vif/0/mtu, default 1500). */
const uint8_t *netfront_mac(const struct netfront *nf);
uint16_t netfront_mtu(const struct netfront *nf);
const struct netfront_stats *netfront_stats(const struct netfront *nf);
/* Pages still in the quarantine (their grant is held by a backend). */
size_t netfront_quarantine_len(const struct netfront *nf);

#endif
