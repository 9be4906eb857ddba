/* router.h — the firewall's data path: one entry point for every frame that
 * arrives on any interface, and transmit callbacks for the frames that leave.
 *
 * Interfaces are the uplink (towards the netvm, NAT applies) and one per
 * client vif. The router owns ARP/ND answers, anti-spoofing, client
 * isolation, rule evaluation for new connections, connection tracking with
 * NAT, TTL handling, fragment reassembly and re-fragmentation, and the ICMP
 * it generates itself (echo replies, admin-prohibited, time-exceeded,
 * fragmentation-needed). Behaviour: DESIGN.md §2.
 *
 * It never allocates after router_init (all tables come from the arena),
 * never blocks, never logs per packet above debug level except through the
 * per-site rate limiter, and never trusts a byte of a frame it was given. */
#ifndef FW_ROUTER_H
#define FW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "net/addr.h"

struct router;
struct rule_set;

#define ROUTER_MAC_LEN 6
/* The MAC the firewall uses on every client link (Qubes convention). */
extern const uint8_t router_client_side_mac[ROUTER_MAC_LEN];

/* Transmit callback: the frame is only valid during the call (the device
 * copies it). Returns false when the device dropped it (ring full). */
typedef bool (*router_transmit_fn)(void *ctx, const uint8_t *frame, size_t len);

/* Frame flags from the device. */
#define ROUTER_RX_CSUM_BLANK 0x1u     /* L4 checksum not computed yet (Xen csum_blank) */
#define ROUTER_RX_DATA_VALIDATED 0x2u /* L4 checksum already checked by the peer */

struct router_config {
	uint32_t max_clients;        /* client interfaces at once */
	uint32_t conntrack_size;     /* --nat-table-size */
	uint32_t client_reasm_bytes; /* reassembly budget per client interface */
	uint32_t uplink_reasm_bytes; /* reassembly budget of the uplink */
	uint32_t icmp_rate_per_s;    /* generated ICMP errors per second, all links */
	/* The established-flow fast path (router.c, "fast path"): same frames
	 * out, same counters, same table as without it, only cheaper. Off only
	 * to prove that (tests/unit/test_router_fastpath.c, fuzz_router). */
	bool fast_path;
};

/* Defaults: 32 clients, 5,000 connections, 64 KiB reassembly per client and
 * 256 KiB for the uplink, 100 ICMP errors per second, fast path on. */
void router_config_default(struct router_config *cfg);

/* Addresses and identity of the uplink side, from QubesDB or the command line. */
struct router_net_config {
	struct ip_addr our_ip4;      /* /qubes-ip: our uplink address and clients' gateway */
	struct ip_addr gateway4;     /* /qubes-gateway: the netvm */
	struct ip_addr dns[2];       /* /qubes-primary-dns, /qubes-secondary-dns */
	bool has_ip6;
	struct ip_addr our_ip6;      /* /qubes-ip6 */
	struct ip_addr gateway6;     /* /qubes-gateway6 */
};

struct router_client_params {
	uint32_t domid, devid;
	uint8_t mac[ROUTER_MAC_LEN]; /* the client's (frontend) MAC */
	bool has_ip4, has_ip6;
	struct ip_addr ip4, ip6;
	uint16_t mtu;
	router_transmit_fn transmit;
	void *transmit_ctx;
};

struct router_uplink_params {
	uint8_t mac[ROUTER_MAC_LEN]; /* our MAC on the uplink */
	uint16_t mtu;
	router_transmit_fn transmit;
	void *transmit_ctx;
};

/* Drop reasons, counted per interface and globally. */
enum router_drop {
	DROP_MALFORMED,       /* the frame failed parsing */
	DROP_NOT_FOR_US,      /* Ethernet destination neither us nor broadcast/ND multicast */
	DROP_SPOOFED,         /* source address does not belong to the link */
	DROP_RULES,           /* the client's rules said drop */
	DROP_CLIENT_TO_CLIENT,/* isolation between clients */
	DROP_NO_CONNECTION,   /* from the uplink, matching no connection */
	DROP_TTL,             /* TTL/hop limit ran out */
	DROP_TOO_BIG,         /* does not fit the MTU and may not be fragmented */
	DROP_FRAGMENT,        /* refused by reassembly */
	DROP_NAT_EXHAUSTED,   /* no free NAT port/id */
	DROP_NO_UPLINK,       /* nowhere to send it */
	DROP_UNSUPPORTED,     /* multicast, broadcast IP, protocols we do not route */
	DROP_TX_FULL,         /* the device refused the frame */
	DROP_REASON_COUNT
};
const char *router_drop_str(enum router_drop d);

struct router_counters {
	uint64_t frames_in, frames_out, bytes_in, bytes_out;
	uint64_t drops[DROP_REASON_COUNT];
	uint64_t icmp_generated, arp_replies, nd_replies;
};

/* Bytes of arena the router needs for this configuration. */
size_t router_memory_needed(const struct router_config *cfg);

/* Builds the router from the arena; false when it does not fit. The CSPRNG
 * must be seeded (connection-table hash key, NAT ports). */
bool router_init(struct router **out, struct arena *a, const struct router_config *cfg);

void router_set_net_config(struct router *r, const struct router_net_config *nc);

/* The uplink comes and goes with the netvm. Removing it keeps connections
 * (a netvm restart should not kill them). */
void router_set_uplink(struct router *r, const struct router_uplink_params *p);
void router_clear_uplink(struct router *r);

/* Returns a client id (>= 0) or -1 when the table is full or an address is
 * already in use by another client. */
int router_add_client(struct router *r, const struct router_client_params *p);
/* Removes the client and every connection it had. */
void router_remove_client(struct router *r, int client);

/* Installs the rules for one family of a client and removes only the
 * client's connections that the new rules block (D11). The router keeps the
 * pointer (the caller owns the storage and keeps it alive and unchanged
 * until the next call for that client and family, or the client's removal).
 * NULL: no rules, everything from that family is dropped. A client starts
 * with no rules (fail closed until dom0's rules arrive). */
void router_set_rules(struct router *r, int client, bool ipv6, const struct rule_set *rules);

/* The firewall's own UDP traffic (the DNS resolver): datagrams from the
 * uplink to our address whose destination port is in [lo, hi] go to fn
 * instead of NAT. fn gets the UDP payload with the addressing. */
typedef void (*router_local_udp_fn)(void *ctx, const struct ip_addr *src, uint16_t sport,
				    uint16_t dport, const uint8_t *payload, size_t len,
				    uint64_t now_ns);
void router_set_local_udp(struct router *r, uint16_t lo, uint16_t hi, router_local_udp_fn fn,
			  void *ctx);

/* Sends a UDP datagram from our uplink address (the resolver's queries).
 * False when there is no way out (no uplink, nor a manual-mode gateway
 * client) or the device refused it. */
bool router_send_local_udp(struct router *r, const struct ip_addr *dst, uint16_t sport,
			   uint16_t dport, const uint8_t *payload, size_t len);

/* An observer of DNS answers reaching clients (the resolver learns the
 * addresses clients are really given, issue 7): called for every UDP
 * datagram with source port 53 that arrives from the uplink on a tracked
 * connection, after NAT is undone, with the client it goes to and the
 * server that sent it. fn NULL removes the observer. */
typedef void (*router_dns_observer_fn)(void *ctx, int client, const uint8_t *payload, size_t len,
				       const struct ip_addr *server, uint64_t now_ns);
void router_set_dns_observer(struct router *r, router_dns_observer_fn fn, void *ctx);

/* One frame from a device. The buffer may be modified in place. */
void router_input_client(struct router *r, int client, uint8_t *frame, size_t len, uint32_t flags,
			 uint64_t now_ns);
void router_input_uplink(struct router *r, uint8_t *frame, size_t len, uint32_t flags,
			 uint64_t now_ns);

/* Periodic work with bounded cost: connection expiry, reassembly timeouts,
 * uplink ARP retries. */
void router_tick(struct router *r, uint64_t now_ns);

const struct router_counters *router_global_counters(const struct router *r);
const struct router_counters *router_client_counters(const struct router *r, int client);
const struct router_counters *router_uplink_counters(const struct router *r);

/* Frames the established-flow fast path forwarded (also counted in the
 * counters above like any other): for status reporting and tests. */
uint64_t router_fast_path_frames(const struct router *r);

/* The connection table (for status reporting and tests). */
struct conntrack *router_conntrack(struct router *r);

#endif
