/* netif.h — the Xen netif shared rings (TX and RX, one 4 KiB page each):
 * layouts, flags, status values and the index arithmetic both netfront and
 * netback use.
 *
 * Layouts: /work/shared/specs/xen-platform.md §8.4 (verified offsets),
 * qubes-protocols.md §5.6; notification discipline §8.4 and §11.2 items
 * 1-5. Written from the spec, no Xen headers.
 *
 * Never: read a shared slot field twice (copy the slot once with
 * netif_read_* and use the copy), trust a peer's index without checking it
 * against our private copies, index a ring without masking. */
#ifndef XEN_NETIF_H
#define XEN_NETIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants ---- */

#define NETIF_RING_HDR_LEN 64u
#define NETIF_TX_RING_SIZE 256u /* (4096 - 64) / 12 rounded down to a power of 2 */
#define NETIF_RX_RING_SIZE 256u /* (4096 - 64) / 8 rounded down to a power of 2 */

/* TX request flags (NETTXF_*). */
#define NETTXF_CSUM_BLANK 0x1u
#define NETTXF_DATA_VALIDATED 0x2u
#define NETTXF_MORE_DATA 0x4u
#define NETTXF_EXTRA_INFO 0x8u

/* RX response flags (NETRXF_*): bits 0/1 are swapped relative to TX. */
#define NETRXF_DATA_VALIDATED 0x1u
#define NETRXF_CSUM_BLANK 0x2u
#define NETRXF_MORE_DATA 0x4u
#define NETRXF_EXTRA_INFO 0x8u
#define NETRXF_GSO_PREFIX 0x10u

/* Response status values. RX: > 0 is the byte count of the slot. */
#define NETIF_RSP_DROPPED (-2)
#define NETIF_RSP_ERROR (-1)
#define NETIF_RSP_OKAY 0
#define NETIF_RSP_NULL 1

/* Extra-info slots. */
#define NETIF_EXTRA_TYPE_NONE 0u
#define NETIF_EXTRA_TYPE_GSO 1u
#define NETIF_EXTRA_TYPE_MCAST_ADD 2u
#define NETIF_EXTRA_TYPE_MCAST_DEL 3u
#define NETIF_EXTRA_TYPE_HASH 4u
#define NETIF_EXTRA_TYPE_MAX 5u
#define NETIF_EXTRA_FLAG_MORE 0x1u
#define NETIF_GSO_TYPE_NONE 0u
#define NETIF_GSO_TYPE_TCPV4 1u
#define NETIF_GSO_TYPE_TCPV6 2u

/* A backend must accept packets of up to this many slots
 * (XEN_NETIF_NR_SLOTS_MIN); Linux treats more than 20 as malicious. */
#define NETIF_SLOTS_MIN 18u
#define NETIF_SLOTS_FATAL 20u
#define NETIF_MAX_TX_SIZE 0xFFFFu

/* ---- layouts ---- */

struct netif_sring_hdr {
	uint32_t req_prod;
	uint32_t req_event;
	uint32_t rsp_prod;
	uint32_t rsp_event;
	uint8_t pad[48];
};

struct netif_tx_request {
	uint32_t gref;
	uint16_t offset;
	uint16_t flags;
	uint16_t id;
	uint16_t size;
};

struct netif_tx_response {
	uint16_t id;
	int16_t status;
};

struct netif_extra_info {
	uint8_t type;
	uint8_t flags;
	union {
		struct {
			uint16_t size;
			uint8_t type;
			uint8_t pad;
			uint16_t features;
		} gso;
		uint8_t mcast_addr[6];
		struct {
			uint8_t type;
			uint8_t alg;
			uint8_t value[4];
		} hash;
	} u;
};

struct netif_rx_request {
	uint16_t id;
	uint16_t pad;
	uint32_t gref;
};

struct netif_rx_response {
	uint16_t id;
	uint16_t offset;
	uint16_t flags;
	int16_t status;
};

union netif_tx_slot {
	struct netif_tx_request req;
	struct netif_tx_response rsp;
	struct netif_extra_info extra;
	uint8_t raw[12];
};

union netif_rx_slot {
	struct netif_rx_request req;
	struct netif_rx_response rsp;
	struct netif_extra_info extra;
	uint8_t raw[8];
};

struct netif_tx_sring {
	struct netif_sring_hdr hdr;
	union netif_tx_slot ring[NETIF_TX_RING_SIZE];
};

struct netif_rx_sring {
	struct netif_sring_hdr hdr;
	union netif_rx_slot ring[NETIF_RX_RING_SIZE];
};

_Static_assert(sizeof(struct netif_sring_hdr) == NETIF_RING_HDR_LEN, "ring header 64 bytes");
_Static_assert(offsetof(struct netif_sring_hdr, req_event) == 4, "req_event @4");
_Static_assert(offsetof(struct netif_sring_hdr, rsp_prod) == 8, "rsp_prod @8");
_Static_assert(offsetof(struct netif_sring_hdr, rsp_event) == 12, "rsp_event @12");
_Static_assert(sizeof(struct netif_tx_request) == 12, "tx request 12 bytes");
_Static_assert(offsetof(struct netif_tx_request, offset) == 4, "tx offset @4");
_Static_assert(offsetof(struct netif_tx_request, flags) == 6, "tx flags @6");
_Static_assert(offsetof(struct netif_tx_request, id) == 8, "tx id @8");
_Static_assert(offsetof(struct netif_tx_request, size) == 10, "tx size @10");
_Static_assert(sizeof(struct netif_tx_response) == 4, "tx response 4 bytes");
_Static_assert(offsetof(struct netif_tx_response, status) == 2, "tx status @2");
_Static_assert(sizeof(struct netif_extra_info) == 8, "extra info 8 bytes");
_Static_assert(offsetof(struct netif_extra_info, u.gso.type) == 4, "gso type @4");
_Static_assert(offsetof(struct netif_extra_info, u.gso.features) == 6, "gso features @6");
_Static_assert(sizeof(struct netif_rx_request) == 8, "rx request 8 bytes");
_Static_assert(offsetof(struct netif_rx_request, gref) == 4, "rx gref @4");
_Static_assert(sizeof(struct netif_rx_response) == 8, "rx response 8 bytes");
_Static_assert(offsetof(struct netif_rx_response, offset) == 2, "rx offset @2");
_Static_assert(offsetof(struct netif_rx_response, flags) == 4, "rx flags @4");
_Static_assert(offsetof(struct netif_rx_response, status) == 6, "rx status @6");
_Static_assert(sizeof(union netif_tx_slot) == 12, "tx slot 12 bytes");
_Static_assert(sizeof(union netif_rx_slot) == 8, "rx slot 8 bytes");
_Static_assert(offsetof(struct netif_tx_sring, ring) == 64, "tx entries @0x40");
_Static_assert(offsetof(struct netif_rx_sring, ring) == 64, "rx entries @0x40");
_Static_assert(sizeof(struct netif_tx_sring) <= 4096, "tx ring fits a page");
_Static_assert(sizeof(struct netif_rx_sring) <= 4096, "rx ring fits a page");
_Static_assert(2u * NETIF_TX_RING_SIZE * 12u + 64u > 4096u, "tx ring is the largest power of 2");
_Static_assert(2u * NETIF_RX_RING_SIZE * 8u + 64u > 4096u, "rx ring is the largest power of 2");

/* ---- shared-memory access ----
 * Indices are free-running u32 (never assumed to start at 0); a slot is
 * ring[idx & (SIZE - 1)]. Loads of the peer's index are acquire loads, our
 * index stores are release stores (x86-64 TSO, spec §11.2 item 1). */

static inline uint32_t netif_load_idx(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void netif_store_idx(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Copies of one slot, each field read exactly once (volatile loads): the
 * peer may rewrite the slot at any time, only the copy is validated. */
static inline struct netif_tx_request netif_read_tx_req(const union netif_tx_slot *s)
{
	const volatile struct netif_tx_request *v = (const volatile struct netif_tx_request *)s;
	struct netif_tx_request r;
	r.gref = v->gref;
	r.offset = v->offset;
	r.flags = v->flags;
	r.id = v->id;
	r.size = v->size;
	return r;
}

static inline struct netif_extra_info netif_read_tx_extra(const union netif_tx_slot *s)
{
	const volatile struct netif_extra_info *v = (const volatile struct netif_extra_info *)s;
	struct netif_extra_info e;
	e.type = v->type;
	e.flags = v->flags;
	e.u.gso.size = v->u.gso.size;
	e.u.gso.type = v->u.gso.type;
	e.u.gso.pad = v->u.gso.pad;
	e.u.gso.features = v->u.gso.features;
	return e;
}

static inline struct netif_tx_response netif_read_tx_rsp(const union netif_tx_slot *s)
{
	const volatile struct netif_tx_response *v = (const volatile struct netif_tx_response *)s;
	struct netif_tx_response r;
	r.id = v->id;
	r.status = v->status;
	return r;
}

static inline struct netif_rx_request netif_read_rx_req(const union netif_rx_slot *s)
{
	const volatile struct netif_rx_request *v = (const volatile struct netif_rx_request *)s;
	struct netif_rx_request r;
	r.id = v->id;
	r.pad = 0;
	r.gref = v->gref;
	return r;
}

static inline struct netif_rx_response netif_read_rx_rsp(const union netif_rx_slot *s)
{
	const volatile struct netif_rx_response *v = (const volatile struct netif_rx_response *)s;
	struct netif_rx_response r;
	r.id = v->id;
	r.offset = v->offset;
	r.flags = v->flags;
	r.status = v->status;
	return r;
}

/* Publishes our producer index (after the slots were written) and says
 * whether the peer asked to be notified: RING_PUSH_*_AND_CHECK_NOTIFY —
 * release store, full fence, then (new - event) < (new - old). */
static inline bool netif_push(uint32_t *shared_prod, const uint32_t *shared_event, uint32_t old,
			      uint32_t new_prod)
{
	netif_store_idx(shared_prod, new_prod);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint32_t event = netif_load_idx(shared_event);
	return (uint32_t)(new_prod - event) < (uint32_t)(new_prod - old);
}

/* RING_FINAL_CHECK_FOR_*: true when the peer produced beyond cons. When
 * there is nothing, asks to be woken for the next item (event = cons + 1),
 * full fence, and re-checks so that an item published meanwhile is not
 * lost. */
static inline bool netif_final_check(uint32_t *shared_event, const uint32_t *shared_prod,
				     uint32_t cons)
{
	if (netif_load_idx(shared_prod) != cons)
		return true;
	netif_store_idx(shared_event, cons + 1u);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return netif_load_idx(shared_prod) != cons;
}

#endif
