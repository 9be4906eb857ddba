/* router.c — the data path (see router.h for the contract).
 *
 * Every frame is parsed once by packet_parse; everything after works on the
 * view's offsets. L4 checksums of forwarded traffic are not verified (the
 * end hosts do that; NAT updates them incrementally, so a bad one stays
 * bad) but csum_blank frames get theirs completed. Frames addressed to the
 * firewall itself are verified fully.
 *
 * Must never: allocate after router_init, log per packet above debug level
 * except through the per-site rate limiter, forward a frame whose source
 * address does not belong to the link it leaves on, or let a peer make any
 * loop here run longer than a fixed bound. */
#include "fw/router.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"
#include "fw/conntrack.h"
#include "fw/nat.h"
#include "fw/rules.h"
#include "net/fragment.h"
#include "net/packet.h"
#include "net/reasm.h"

const uint8_t router_client_side_mac[ROUTER_MAC_LEN] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t broadcast_mac[ROUTER_MAC_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* Largest frame the router handles in its own buffers: a reassembled IPv6
 * datagram plus an Ethernet header. */
#define FRAME_MAX (ETH_HDR_LEN + REASM_OUT_MAX)
#define UPLINK_ID (-1)
#define NO_IFACE (-2) /* no way out (see way_out) */
#define ARP_RETRY_NS (1000ull * 1000 * 1000)
#define ARP_MAX_TRIES 3u
#define REASM_DATAGRAMS 32u
#define EXPIRE_BUDGET 256u
#define ICMP_BURST 20u

/* The fast path's memory of the last connection one interface forwarded in
 * one direction (see "fast path" below). Valid while e is set and both
 * generations still match. */
struct flow_cache {
	struct ct_entry *e;
	uint64_t ct_gen;      /* conntrack_generation when filled */
	uint32_t cfg_gen;     /* router cfg_gen when filled */
	uint64_t addrs;       /* the packet's source and destination bytes, in memory order */
	uint32_t ports;       /* its 4 port bytes, likewise */
	uint8_t proto;
	uint8_t dir;          /* enum ct_dir of the packets */
	uint8_t addr_off;     /* the rewritten address: IPv4 header offset 12 or 16 */
	uint8_t port_off;     /* the rewritten port: L4 offset 0 or 2 */
	int32_t out_iface;
	uint32_t new_addr;    /* its new bytes, in memory order */
	uint16_t new_port;    /* likewise */
	uint16_t ip_delta;    /* RFC 1624 sum of the IP header words that change, folded */
	uint16_t l4_delta;    /* the same for the L4 checksum (pseudo-header and port) */
};

struct client_slot {
	bool in_use;
	struct flow_cache fc; /* this client's packets (original direction) */
	struct router_client_params p;
	const struct rule_set *rules[2]; /* [0] IPv4, [1] IPv6 */
	struct reasm reasm;
	struct router_counters ctr;
};

/* Open-addressing index of client addresses, rebuilt whenever the client
 * set changes (rare). Keys are dom0's addresses; lookups of any address stop
 * at an empty slot, so a peer's source addresses cannot lengthen probes. */
struct addr_slot {
	struct ip_addr addr;
	int32_t client; /* -1: empty */
};

struct uplink {
	bool present;
	struct router_uplink_params p;
	uint8_t gw_mac[ROUTER_MAC_LEN];  /* learned by ARP, else fe:ff:ff:ff:ff:ff */
	bool gw_mac_learned;
	uint8_t gw6_mac[ROUTER_MAC_LEN]; /* learned by ND, else fe:ff:ff:ff:ff:ff */
	uint32_t arp_tries;
	uint64_t arp_next_ns;
	struct flow_cache fc; /* replies from the uplink */
	struct reasm reasm;
	struct router_counters ctr;
};

struct router {
	struct router_config cfg;
	bool has_net;
	struct router_net_config net;
	struct client_slot *clients;
	struct addr_slot *index;
	uint32_t index_mask;
	struct uplink up;
	struct conntrack *ct;
	struct router_counters global;
	uint8_t *work; /* a reassembled datagram as a frame */
	uint8_t *out;  /* frames we build: ICMP, ARP, ND, fragments */
	uint64_t icmp_tokens_ns; /* token bucket, in ns of credit */
	uint64_t icmp_last_ns;
	uint64_t now;
	router_local_udp_fn local_udp;
	void *local_udp_ctx;
	uint16_t local_udp_lo, local_udp_hi;
	router_dns_observer_fn dns_observer;
	void *dns_observer_ctx;
	/* The packet in hand is an IPv6 datagram we reassembled: it may leave
	 * fragmented again (with its original identification) instead of
	 * drawing a packet-too-big. Reset for every frame. */
	bool reassembled_v6;
	uint32_t reassembled_v6_id;
	uint32_t cfg_gen; /* bumped by every configuration change: flow caches revalidate */
	const uint64_t *ct_gen; /* conntrack_generation_ref(ct) */
	uint64_t fast_frames;   /* forwarded by the fast path */
};

static const char *const drop_names[DROP_REASON_COUNT] = {
	[DROP_MALFORMED] = "malformed",
	[DROP_NOT_FOR_US] = "not-for-us",
	[DROP_SPOOFED] = "spoofed-source",
	[DROP_RULES] = "rules",
	[DROP_CLIENT_TO_CLIENT] = "client-to-client",
	[DROP_NO_CONNECTION] = "no-connection",
	[DROP_TTL] = "ttl-exceeded",
	[DROP_TOO_BIG] = "too-big",
	[DROP_FRAGMENT] = "fragment",
	[DROP_NAT_EXHAUSTED] = "nat-exhausted",
	[DROP_NO_UPLINK] = "no-uplink",
	[DROP_UNSUPPORTED] = "unsupported",
	[DROP_TX_FULL] = "tx-full",
};

const char *router_drop_str(enum router_drop d)
{
	return (unsigned)d < DROP_REASON_COUNT ? drop_names[d] : "?";
}

void router_config_default(struct router_config *cfg)
{
	cfg->max_clients = 32;
	cfg->conntrack_size = 5000;
	cfg->client_reasm_bytes = 64 * 1024;
	cfg->uplink_reasm_bytes = 256 * 1024;
	cfg->icmp_rate_per_s = 100;
	cfg->fast_path = true;
}

/* ---- sizing and set-up ------------------------------------------------- */

static uint32_t index_size(uint32_t max_clients)
{
	uint32_t n = 8;
	while (n < 4 * 2 * max_clients) /* two addresses per client, load ≤ 1/4 */
		n <<= 1;
	return n;
}

static size_t align_up(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

size_t router_memory_needed(const struct router_config *cfg)
{
	size_t n = align_up(sizeof(struct router));
	n += align_up(sizeof(struct client_slot) * cfg->max_clients);
	n += align_up(sizeof(struct addr_slot) * index_size(cfg->max_clients));
	n += 2 * align_up(FRAME_MAX);
	n += align_up(conntrack_memory_needed(cfg->conntrack_size)) + 64;
	n += cfg->max_clients * align_up(reasm_memory_needed(cfg->client_reasm_bytes, REASM_DATAGRAMS));
	n += align_up(reasm_memory_needed(cfg->uplink_reasm_bytes, REASM_DATAGRAMS));
	return n + 512;
}

static bool reasm_setup(struct reasm *ra, struct arena *a, uint32_t budget)
{
	struct reasm_config rc;
	reasm_config_default(&rc);
	rc.budget_bytes = budget;
	rc.max_datagrams = REASM_DATAGRAMS;
	size_t need = reasm_memory_needed(budget, REASM_DATAGRAMS);
	void *mem = need ? arena_alloc(a, need, 64) : NULL;
	return mem && reasm_init(ra, &rc, mem, need);
}

static void rebuild_index(struct router *r);

bool router_init(struct router **out, struct arena *a, const struct router_config *cfg)
{
	if (cfg->max_clients == 0 || cfg->max_clients > 4096)
		return false;
	struct router *r = arena_alloc(a, sizeof(*r), 64);
	if (!r)
		return false;
	r->cfg = *cfg;
	r->clients = arena_alloc(a, sizeof(struct client_slot) * cfg->max_clients, 64);
	uint32_t isz = index_size(cfg->max_clients);
	r->index = arena_alloc(a, sizeof(struct addr_slot) * isz, 64);
	r->index_mask = isz - 1;
	r->work = arena_alloc(a, FRAME_MAX, 64);
	r->out = arena_alloc(a, FRAME_MAX, 64);
	r->ct = conntrack_create(a, cfg->conntrack_size);
	if (!r->clients || !r->index || !r->work || !r->out || !r->ct)
		return false;
	for (uint32_t i = 0; i < cfg->max_clients; i++)
		if (!reasm_setup(&r->clients[i].reasm, a, cfg->client_reasm_bytes))
			return false;
	if (!reasm_setup(&r->up.reasm, a, cfg->uplink_reasm_bytes))
		return false;
	memcpy(r->up.gw_mac, broadcast_mac, ROUTER_MAC_LEN);
	r->up.gw_mac[0] = 0xfe;
	memcpy(r->up.gw6_mac, r->up.gw_mac, ROUTER_MAC_LEN);
	r->icmp_tokens_ns = (uint64_t)ICMP_BURST * 1000000000ull;
	r->cfg_gen = 1;
	r->ct_gen = conntrack_generation_ref(r->ct);
	rebuild_index(r);
	*out = r;
	return true;
}

/* ---- the client address index ------------------------------------------ */

static uint32_t addr_hash(const struct ip_addr *a)
{
	uint64_t x = load_le64(a->b) * 0x9e3779b97f4a7c15ull;
	x ^= load_le64(a->b + 8) * 0xc2b2ae3d27d4eb4full;
	return (uint32_t)(x >> 32) ^ (uint32_t)x;
}

static void index_insert(struct router *r, const struct ip_addr *a, int32_t client)
{
	for (uint32_t i = addr_hash(a) & r->index_mask;; i = (i + 1) & r->index_mask) {
		if (r->index[i].client < 0) {
			r->index[i].addr = *a;
			r->index[i].client = client;
			return;
		}
	}
}

static void rebuild_index(struct router *r)
{
	for (uint32_t i = 0; i <= r->index_mask; i++)
		r->index[i].client = -1;
	for (uint32_t c = 0; c < r->cfg.max_clients; c++) {
		const struct client_slot *s = &r->clients[c];
		if (!s->in_use)
			continue;
		if (s->p.has_ip4)
			index_insert(r, &s->p.ip4, (int32_t)c);
		if (s->p.has_ip6)
			index_insert(r, &s->p.ip6, (int32_t)c);
	}
}

/* The client owning address a, or -1. */
static int client_by_addr(const struct router *r, const struct ip_addr *a)
{
	for (uint32_t i = addr_hash(a) & r->index_mask;; i = (i + 1) & r->index_mask) {
		if (r->index[i].client < 0)
			return -1;
		if (ip_equal(&r->index[i].addr, a))
			return r->index[i].client;
	}
}

static struct client_slot *client_get(struct router *r, int id)
{
	if (id < 0 || (uint32_t)id >= r->cfg.max_clients || !r->clients[id].in_use)
		return NULL;
	return &r->clients[id];
}

/* ---- manual mode: a netvm attached as a client ----------------------------
 *
 * A netvm that cannot be a Qubes netvm (a BSD router, qubes-protocols.md
 * §7.2, §7.5-7.6) is attached as a client of the firewall, whose address is
 * given as the gateway on the command line. While no uplink device exists,
 * that client's link plays the uplink: what would leave on the uplink goes
 * there (NATed to our address, to that client's MAC), and its frames whose
 * source is not its own address arrive as if from the uplink (replies,
 * ICMP errors, traffic to us; internal sources are spoofing). Its own
 * source stays client traffic under its rules. Counters and the ICMP we
 * send stay on the link the frames really use. With an uplink present
 * none of this applies (the fast path declines everything without one). */

/* The client standing in for the netvm, or -1. */
static int manual_gateway_client(const struct router *r)
{
	if (r->up.present || !r->has_net)
		return -1;
	return client_by_addr(r, &r->net.gateway4);
}

/* The interface traffic towards the netvm leaves on now: the uplink, the
 * manual-mode gateway client, or NO_IFACE. */
static int way_out(const struct router *r)
{
	if (r->up.present)
		return UPLINK_ID;
	int g = manual_gateway_client(r);
	return g >= 0 ? g : NO_IFACE;
}

/* ---- counters ---------------------------------------------------------- */

static struct router_counters *ctr_of(struct router *r, int iface)
{
	return iface == UPLINK_ID ? &r->up.ctr : &r->clients[iface].ctr;
}

static void count_drop(struct router *r, int iface, enum router_drop why)
{
	ctr_of(r, iface)->drops[why]++;
	r->global.drops[why]++;
}

/* ---- addresses --------------------------------------------------------- */

static bool is_our_addr(const struct router *r, const struct ip_addr *a)
{
	if (!r->has_net)
		return false;
	return ip_equal(a, &r->net.our_ip4) || (r->net.has_ip6 && ip_equal(a, &r->net.our_ip6));
}

/* Multicast, broadcast, unspecified, loopback, link-local: never routed. */
static bool is_unroutable(const struct ip_addr *a)
{
	if (ip_is_v4(a)) {
		const uint8_t *b = ip_v4_bytes(a);
		return b[0] == 0 || b[0] == 127 || b[0] >= 224 || (b[0] == 169 && b[1] == 254);
	}
	return a->b[0] == 0xff || ip_is_unspecified(a) ||
	       (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80) ||
	       (memcmp(a->b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0);
}

static const struct ip_addr *our_addr_for(const struct router *r, bool v6)
{
	if (!r->has_net)
		return NULL;
	if (!v6)
		return &r->net.our_ip4;
	return r->net.has_ip6 ? &r->net.our_ip6 : NULL;
}

/* ---- transmit ---------------------------------------------------------- */

static const uint8_t *iface_our_mac(const struct router *r, int iface)
{
	return iface == UPLINK_ID ? r->up.p.mac : router_client_side_mac;
}

static uint16_t iface_mtu(const struct router *r, int iface)
{
	uint16_t m = iface == UPLINK_ID ? r->up.p.mtu : r->clients[iface].p.mtu;
	return m ? m : 1500;
}

static void transmit(struct router *r, int iface, const uint8_t *frame, size_t len)
{
	router_transmit_fn fn;
	void *ctx;
	if (iface == UPLINK_ID) {
		fn = r->up.p.transmit;
		ctx = r->up.p.transmit_ctx;
	} else {
		fn = r->clients[iface].p.transmit;
		ctx = r->clients[iface].p.transmit_ctx;
	}
	struct router_counters *c = ctr_of(r, iface);
	if (fn && fn(ctx, frame, len)) {
		c->frames_out++;
		c->bytes_out += len;
		r->global.frames_out++;
		r->global.bytes_out += len;
	} else {
		count_drop(r, iface, DROP_TX_FULL);
	}
}

/* Destination MAC for a forwarded IP packet leaving on iface. */
static const uint8_t *next_hop_mac(const struct router *r, int iface, bool v6)
{
	if (iface != UPLINK_ID)
		return r->clients[iface].p.mac;
	return v6 ? r->up.gw6_mac : r->up.gw_mac;
}

struct frag_ctx {
	struct router *r;
	int iface;
	uint8_t eth[ETH_HDR_LEN];
};

static bool emit_fragment(void *vctx, const uint8_t *hdr, size_t hdr_len, const uint8_t *payload,
			  size_t payload_len)
{
	struct frag_ctx *fc = vctx;
	struct router *r = fc->r;
	if (ETH_HDR_LEN + hdr_len + payload_len > FRAME_MAX)
		return false;
	memcpy(r->out, fc->eth, ETH_HDR_LEN);
	memcpy(r->out + ETH_HDR_LEN, hdr, hdr_len);
	memcpy(r->out + ETH_HDR_LEN + hdr_len, payload, payload_len);
	transmit(r, fc->iface, r->out, ETH_HDR_LEN + hdr_len + payload_len);
	return true;
}

/* Sends the IP datagram of p (already rewritten) out of iface with a fresh
 * Ethernet header, fragmenting IPv4 when it exceeds the MTU (the caller has
 * already refused what may not be fragmented). */
static void output_ip(struct router *r, int iface, uint8_t *frame, const struct packet *p)
{
	bool v6 = p->family == PACKET_IPV6;
	/* The Ethernet header goes right before the IP header, which also drops
	 * a VLAN tag the frame arrived with. */
	uint8_t *start = frame + p->l3_off - ETH_HDR_LEN;
	eth_build(start, ETH_HDR_LEN, next_hop_mac(r, iface, v6), iface_our_mac(r, iface),
		  v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
	if (p->l3_len <= iface_mtu(r, iface)) {
		transmit(r, iface, start, ETH_HDR_LEN + p->l3_len);
		return;
	}
	struct frag_ctx fc = {.r = r, .iface = iface};
	struct fragment_result res;
	enum fragment_status st;
	memcpy(fc.eth, start, ETH_HDR_LEN);
	if (!v6)
		st = fragment_ipv4(frame + p->l3_off, p->l3_len, iface_mtu(r, iface), emit_fragment, &fc,
				   &res);
	else if (r->reassembled_v6)
		st = fragment_ipv6_refragment(frame + p->l3_off, p->l3_len, iface_mtu(r, iface),
					      r->reassembled_v6_id, emit_fragment, &fc, &res);
	else
		st = FRAGMENT_NEED_TOO_BIG;
	if (st != FRAGMENT_DONE)
		count_drop(r, iface, DROP_TOO_BIG);
}

/* ---- ICMP we generate --------------------------------------------------- */

static bool icmp_rate_ok(struct router *r)
{
	uint64_t rate = r->cfg.icmp_rate_per_s ? r->cfg.icmp_rate_per_s : 1;
	uint64_t cap = (uint64_t)ICMP_BURST * 1000000000ull;
	uint64_t elapsed = r->now - r->icmp_last_ns;
	r->icmp_last_ns = r->now;
	r->icmp_tokens_ns = elapsed >= cap ? cap : MIN(cap, r->icmp_tokens_ns + elapsed);
	uint64_t cost = 1000000000ull / rate;
	if (r->icmp_tokens_ns < cost)
		return false;
	r->icmp_tokens_ns -= cost;
	return true;
}

/* An ICMP error about the frame p that arrived on iface, sent back to its
 * source from our address. Never about ICMP errors, broadcasts, multicasts
 * or non-first fragments, and rate-limited. */
static void send_icmp_error(struct router *r, int iface, const uint8_t *frame, const struct packet *p,
			    uint8_t type4, uint8_t code4, uint8_t type6, uint8_t code6, uint32_t rest)
{
	bool v6 = p->family == PACKET_IPV6;
	const struct ip_addr *src = our_addr_for(r, v6);
	if (!src || !packet_may_send_icmp_error(frame, p) || !icmp_rate_ok(r))
		return;
	struct packet_addrs a;
	memcpy(a.eth_dst, frame + 6, ETH_ADDR_LEN);
	memcpy(a.eth_src, iface_our_mac(r, iface), ETH_ADDR_LEN);
	a.src = *src;
	a.dst = p->src;
	size_t n = packet_build_icmp_error(r->out, FRAME_MAX, &a, v6 ? type6 : type4,
					   v6 ? code6 : code4, rest, frame + p->l3_off, p->l3_len);
	if (n == 0)
		return;
	ctr_of(r, iface)->icmp_generated++;
	r->global.icmp_generated++;
	transmit(r, iface, r->out, n);
}

static void send_admin_prohibited(struct router *r, int iface, const uint8_t *frame,
				  const struct packet *p)
{
	send_icmp_error(r, iface, frame, p, ICMP_DEST_UNREACH, ICMP_CODE_ADMIN_PROHIBITED,
			ICMP6_DEST_UNREACH, ICMP6_CODE_ADMIN_PROHIBITED, 0);
}

static void send_time_exceeded(struct router *r, int iface, const uint8_t *frame,
			       const struct packet *p)
{
	send_icmp_error(r, iface, frame, p, ICMP_TIME_EXCEEDED, ICMP_CODE_TTL_EXCEEDED,
			ICMP6_TIME_EXCEEDED, ICMP6_CODE_HOP_LIMIT, 0);
}

/* True (and the error sent) when p may not leave on out_iface as it is:
 * bigger than its MTU with DF set, or IPv6. */
static bool refuse_too_big(struct router *r, int in_iface, int out_iface, const uint8_t *frame,
			   const struct packet *p)
{
	uint16_t mtu = iface_mtu(r, out_iface);
	if (p->l3_len <= mtu || (p->family == PACKET_IPV4 && !p->dont_fragment) ||
	    (p->family == PACKET_IPV6 && r->reassembled_v6 && mtu >= FRAGMENT_IPV6_MIN_MTU))
		return false;
	send_icmp_error(r, in_iface, frame, p, ICMP_DEST_UNREACH, ICMP_CODE_FRAG_NEEDED,
			ICMP6_PACKET_TOO_BIG, 0, mtu);
	count_drop(r, in_iface, DROP_TOO_BIG);
	return true;
}

/* ---- ARP and neighbour discovery ---------------------------------------- */

static void send_arp(struct router *r, int iface, uint16_t op, const uint8_t eth_dst[6],
		     const uint8_t sha[6], const uint8_t spa[4], const uint8_t tha[6],
		     const uint8_t tpa[4])
{
	eth_build(r->out, ETH_HDR_LEN, eth_dst, iface_our_mac(r, iface), ETHERTYPE_ARP);
	arp_build(r->out + ETH_HDR_LEN, ARP_LEN, op, sha, spa, tha, tpa);
	/* Pad to the 60-byte Ethernet minimum. */
	memset(r->out + ETH_HDR_LEN + ARP_LEN, 0, 60 - ETH_HDR_LEN - ARP_LEN);
	transmit(r, iface, r->out, 60);
}

/* Client links: answer every request with our MAC except for the
 * requester's own address (duplicate address detection must succeed). */
static void client_arp(struct router *r, int id, const struct packet *p)
{
	struct client_slot *c = &r->clients[id];
	const struct arp_view *a = &p->arp;
	if (a->op != ARP_OP_REQUEST) {
		log_debug("client %u.%u: ignored ARP reply", c->p.domid, c->p.devid);
		return;
	}
	if (!c->p.has_ip4) {
		count_drop(r, id, DROP_SPOOFED);
		return;
	}
	static const uint8_t zero[4];
	bool from_client = memcmp(a->spa, ip_v4_bytes(&c->p.ip4), 4) == 0;
	if (!from_client && memcmp(a->spa, zero, 4) != 0) {
		count_drop(r, id, DROP_SPOOFED);
		log_warn("client %u.%u: ARP request from %s, which is not its address",
			 c->p.domid, c->p.devid, IPV4_STR(a->spa));
		return;
	}
	if (memcmp(a->tpa, ip_v4_bytes(&c->p.ip4), 4) == 0 || !from_client)
		return;
	c->ctr.arp_replies++;
	r->global.arp_replies++;
	send_arp(r, id, ARP_OP_REPLY, a->sha, router_client_side_mac, a->tpa, a->sha, a->spa);
}

static void uplink_send_arp_query(struct router *r)
{
	static const uint8_t zero_mac[6];
	if (!r->up.present || !r->has_net)
		return;
	send_arp(r, UPLINK_ID, ARP_OP_REQUEST, broadcast_mac, r->up.p.mac,
		 ip_v4_bytes(&r->net.our_ip4), zero_mac, ip_v4_bytes(&r->net.gateway4));
}

static void uplink_arp(struct router *r, const struct packet *p)
{
	const struct arp_view *a = &p->arp;
	if (!r->has_net)
		return;
	if (memcmp(a->spa, ip_v4_bytes(&r->net.gateway4), 4) == 0) {
		if (!r->up.gw_mac_learned || memcmp(r->up.gw_mac, a->sha, 6) != 0)
			log_info("uplink: netvm %s is at %s", IPV4_STR(a->spa), MAC_STR(a->sha));
		memcpy(r->up.gw_mac, a->sha, 6);
		r->up.gw_mac_learned = true;
	}
	if (a->op == ARP_OP_REQUEST && memcmp(a->tpa, ip_v4_bytes(&r->net.our_ip4), 4) == 0) {
		r->up.ctr.arp_replies++;
		r->global.arp_replies++;
		send_arp(r, UPLINK_ID, ARP_OP_REPLY, a->sha, r->up.p.mac, a->tpa, a->sha, a->spa);
	}
}

/* A neighbour advertisement for target, to dst (eth_dst), from our MAC. */
static void send_na(struct router *r, int iface, const uint8_t eth_dst[6],
		    const struct ip_addr *dst, const uint8_t target[16], bool router_flag)
{
	uint8_t *l4 = r->out + ETH_HDR_LEN + IPV6_HDR_LEN;
	uint8_t flags = ND_NA_SOLICITED | ND_NA_OVERRIDE | (router_flag ? ND_NA_ROUTER : 0);
	size_t n = icmp6_build_na(l4, FRAME_MAX - ETH_HDR_LEN - IPV6_HDR_LEN, target, dst->b, target,
				  flags, iface_our_mac(r, iface));
	if (n == 0)
		return;
	struct ipv6_fields f = {.next_header = IP_PROTO_ICMPV6, .hop_limit = 255,
				.payload_len = (uint16_t)n};
	memcpy(f.src, target, 16);
	memcpy(f.dst, dst->b, 16);
	ipv6_build(r->out + ETH_HDR_LEN, IPV6_HDR_LEN, &f);
	eth_build(r->out, ETH_HDR_LEN, eth_dst, iface_our_mac(r, iface), ETHERTYPE_IPV6);
	ctr_of(r, iface)->nd_replies++;
	r->global.nd_replies++;
	transmit(r, iface, r->out, ETH_HDR_LEN + IPV6_HDR_LEN + n);
}

/* Neighbour solicitations: on client links we answer for every target but
 * the client's own address (as with ARP); on the uplink for our address. */
static void handle_nd(struct router *r, int iface, const uint8_t *frame, const struct packet *p)
{
	if (p->icmp_type == ICMP6_NEIGHBOR_ADVERT && iface == UPLINK_ID && r->has_net &&
	    r->net.has_ip6 && p->nd_target_off && p->nd_lladdr_off &&
	    memcmp(frame + p->nd_target_off, r->net.gateway6.b, 16) == 0) {
		memcpy(r->up.gw6_mac, frame + p->nd_lladdr_off, 6);
		return;
	}
	if (p->icmp_type != ICMP6_NEIGHBOR_SOLICIT || !p->nd_target_off)
		return;
	/* DAD probes come from :: and need no answer unless someone else has
	 * the address; we never claim a client's own address. */
	if (ip_is_unspecified(&p->src))
		return;
	const uint8_t *target = frame + p->nd_target_off;
	const uint8_t *eth_dst = p->nd_lladdr_off ? frame + p->nd_lladdr_off : frame + 6;
	if (iface == UPLINK_ID) {
		if (r->has_net && r->net.has_ip6 && memcmp(target, r->net.our_ip6.b, 16) == 0)
			send_na(r, iface, eth_dst, &p->src, target, false);
		return;
	}
	struct client_slot *c = &r->clients[iface];
	if (c->p.has_ip6 && memcmp(target, c->p.ip6.b, 16) == 0)
		return;
	send_na(r, iface, eth_dst, &p->src, target, true);
}

/* ---- frames for the firewall itself ------------------------------------ */

static bool l4_checksum_ok(const uint8_t *frame, const struct packet *p)
{
	if (!p->has_l4 || !p->l4_csum_off)
		return false;
	uint16_t want = packet_l4_checksum(&p->src, &p->dst, p->protocol, frame + p->l4_off, p->l4_len);
	uint16_t have = load_be16(frame + p->l4_csum_off);
	/* UDP over IPv4 without a checksum. */
	if (p->protocol == IP_PROTO_UDP && p->family == PACKET_IPV4 && have == 0)
		return true;
	return want == have;
}

/* iface is the link the frame came in on; from_up says it arrived as
 * uplink traffic (on the uplink or the manual-mode gateway client). */
static void local_input(struct router *r, int iface, bool from_up, uint8_t *frame, size_t len,
			const struct packet *p)
{
	bool echo = p->has_l4 && p->icmp_is_query &&
		    ((p->protocol == IP_PROTO_ICMP && p->icmp_type == ICMP_ECHO_REQUEST) ||
		     (p->protocol == IP_PROTO_ICMPV6 && p->icmp_type == ICMP6_ECHO_REQUEST));
	if (echo) {
		if (!l4_checksum_ok(frame, p)) {
			count_drop(r, iface, DROP_MALFORMED);
			return;
		}
		size_t n = packet_build_echo_reply(r->out, FRAME_MAX, frame, p, iface_our_mac(r, iface));
		if (n)
			transmit(r, iface, r->out, n);
		return;
	}
	if (from_up && p->protocol == IP_PROTO_UDP && p->has_l4 && r->local_udp &&
	    p->dst_port >= r->local_udp_lo && p->dst_port <= r->local_udp_hi) {
		if (!l4_checksum_ok(frame, p)) {
			count_drop(r, iface, DROP_MALFORMED);
			return;
		}
		r->local_udp(r->local_udp_ctx, &p->src, p->src_port, p->dst_port,
			     frame + p->l4_off + UDP_HDR_LEN, p->l4_len - UDP_HDR_LEN, r->now);
		return;
	}
	(void)len;
	if (from_up) {
		count_drop(r, iface, DROP_NO_CONNECTION);
		return;
	}
	/* Clients get a clear answer for anything else sent to the gateway. */
	count_drop(r, iface, DROP_UNSUPPORTED);
	send_admin_prohibited(r, iface, frame, p);
}

/* ---- connection tuples -------------------------------------------------- */

static bool icmp_query_is_reply(const struct packet *p)
{
	uint8_t t = p->icmp_type;
	if (p->protocol == IP_PROTO_ICMP)
		return t == ICMP_ECHO_REPLY || t == 14 /* timestamp reply */ || t == 16 /* info reply */;
	return t == ICMP6_ECHO_REPLY;
}

static bool icmp_query_is_request(const struct packet *p)
{
	uint8_t t = p->icmp_type;
	if (p->protocol == IP_PROTO_ICMP)
		return t == ICMP_ECHO_REQUEST || t == 13 || t == 15;
	return t == ICMP6_ECHO_REQUEST;
}

/* The conntrack tuple of a packet in its own direction (ICMP queries: the
 * identifier is the initiator's port, see conntrack.h). */
static struct ct_tuple tuple_of(const struct packet *p)
{
	uint16_t sport = 0, dport = 0;
	if (p->has_l4 && (p->protocol == IP_PROTO_TCP || p->protocol == IP_PROTO_UDP)) {
		sport = p->src_port;
		dport = p->dst_port;
	} else if (p->has_l4 && p->icmp_is_query) {
		if (icmp_query_is_reply(p))
			dport = p->icmp_id;
		else
			sport = p->icmp_id;
	}
	return ct_tuple_make(p->protocol, &p->src, sport, &p->dst, dport);
}

static uint8_t tcp_flags_of(const struct packet *p)
{
	return p->protocol == IP_PROTO_TCP && p->has_l4 ? p->tcp_flags : 0;
}

/* ---- forwarding --------------------------------------------------------- */

/* A packet of connection e in direction dir leaves towards its peer: the
 * uplink for the original direction, the client for replies. */
static void forward_on_entry(struct router *r, int in_iface, uint8_t *frame, struct packet *p,
			     struct ct_entry *e, enum ct_dir dir, bool l4_partial)
{
	int out_iface;
	const struct ct_tuple *orig = &e->tuple[CT_DIR_ORIG];
	const struct ct_tuple *reply = &e->tuple[CT_DIR_REPLY];

	if (dir == CT_DIR_ORIG) {
		out_iface = way_out(r);
		if (out_iface == NO_IFACE) {
			count_drop(r, in_iface, DROP_NO_UPLINK);
			return;
		}
	} else {
		out_iface = (int)e->mark - 1;
		struct client_slot *c = client_get(r, out_iface);
		if (!c || client_by_addr(r, &orig->src) != out_iface) {
			count_drop(r, in_iface, DROP_NO_CONNECTION);
			return;
		}
	}
	if (refuse_too_big(r, in_iface, out_iface, frame, p))
		return;
	if (!nat_decrement_ttl(frame, p)) {
		send_time_exceeded(r, in_iface, frame, p);
		count_drop(r, in_iface, DROP_TTL);
		return;
	}
	if (dir == CT_DIR_ORIG)
		nat_rewrite(frame, p, NAT_SRC, &reply->dst, reply->dport, l4_partial);
	else
		nat_rewrite(frame, p, NAT_DST, &orig->src, orig->sport, l4_partial);
	if (l4_partial)
		packet_fill_l4_checksum(frame, p->l3_off + p->l3_len, p);
	conntrack_seen(r->ct, e, dir, tcp_flags_of(p), r->now);
	if (dir == CT_DIR_REPLY && r->dns_observer && p->protocol == IP_PROTO_UDP && p->has_l4 &&
	    p->src_port == 53 && p->l4_len >= UDP_HDR_LEN)
		r->dns_observer(r->dns_observer_ctx, out_iface, frame + p->l4_off + UDP_HDR_LEN,
				p->l4_len - UDP_HDR_LEN, &p->src, r->now);
	output_ip(r, out_iface, frame, p);
}

/* An ICMP error about a tracked connection: the quote is a packet of the
 * connection going the other way. Translates quote and outer header and
 * forwards; false when it matches nothing. */
static bool forward_icmp_error(struct router *r, int in_iface, bool from_up, uint8_t *frame,
			       size_t len, struct packet *p)
{
	struct packet inner;
	if (packet_parse_embedded(frame, len, p, &inner) != PKT_OK)
		return false;
	struct ct_tuple quoted = tuple_of(&inner);
	struct ct_tuple t = ct_tuple_reverse(&quoted);
	enum ct_dir dir;
	struct ct_entry *e = conntrack_lookup(r->ct, &t, r->now, &dir);
	if (!e)
		return false;
	const struct ct_tuple *orig = &e->tuple[CT_DIR_ORIG];
	const struct ct_tuple *reply = &e->tuple[CT_DIR_REPLY];
	int out_iface;
	if (from_up) {
		/* The quote is our NATed packet: must match as the reply direction. */
		if (dir != CT_DIR_REPLY || !ip_equal(&p->dst, &reply->dst))
			return false;
		out_iface = (int)e->mark - 1;
		if (!client_get(r, out_iface) || client_by_addr(r, &orig->src) != out_iface)
			return false;
	} else {
		out_iface = way_out(r);
		if (dir != CT_DIR_ORIG || !ip_equal(&p->src, &orig->src) || out_iface == NO_IFACE)
			return false;
	}
	if (!nat_decrement_ttl(frame, p)) {
		count_drop(r, in_iface, DROP_TTL);
		return true;
	}
	if (from_up) {
		nat_rewrite_inner(frame, &inner, NAT_SRC, &orig->src, orig->sport);
		nat_rewrite(frame, p, NAT_DST, &orig->src, 0, true);
	} else {
		nat_rewrite_inner(frame, &inner, NAT_DST, &reply->dst, reply->dport);
		nat_rewrite(frame, p, NAT_SRC, &reply->dst, 0, true);
	}
	nat_finish_icmp_error(frame, p->l3_off + p->l3_len, p);
	output_ip(r, out_iface, frame, p);
	return true;
}

static const struct rule_set *rules_for(const struct client_slot *c, bool v6)
{
	return c->rules[v6 ? 1 : 0];
}

/* A packet from a client that matches no connection. */
static void new_from_client(struct router *r, int id, uint8_t *frame, struct packet *p,
			    bool l4_partial)
{
	struct client_slot *c = &r->clients[id];
	bool v6 = p->family == PACKET_IPV6;

	if (client_by_addr(r, &p->dst) >= 0) {
		/* D10: clients never open connections to each other. */
		count_drop(r, id, DROP_CLIENT_TO_CLIENT);
		log_debug("client %u.%u: dropped packet to client %s", c->p.domid, c->p.devid,
			  IP_STR(&p->dst));
		return;
	}
	bool icmp = p->protocol == IP_PROTO_ICMP || p->protocol == IP_PROTO_ICMPV6;
	if (icmp && (!p->has_l4 || !p->icmp_is_query || !icmp_query_is_request(p))) {
		/* Errors and replies that belong to nothing, and non-query ICMP. */
		count_drop(r, id, DROP_NO_CONNECTION);
		return;
	}
	const struct rule_set *set = rules_for(c, v6);
	struct rule_packet rp = {
		.family = v6 ? RULE_FAMILY_V6 : RULE_FAMILY_V4,
		.proto = p->protocol,
		.dst_port = (p->protocol == IP_PROTO_TCP || p->protocol == IP_PROTO_UDP) ? p->dst_port
											   : 0,
		.icmp_type = icmp ? p->icmp_type : 0,
		.dst = p->dst,
	};
	struct rule_verdict v = {.action = RULE_DROP, .reason = RULE_BY_ERROR};
	if (set)
		v = rules_match(set, &rp);
	if (v.action != RULE_ACCEPT) {
		count_drop(r, id, DROP_RULES);
		if (v.reason == RULE_BY_RULE || v.reason == RULE_BY_UNRESOLVED)
			log_debug("client %s: rule %04u drops proto %u to %s", IP_STR(&p->src),
				  v.number, p->protocol, IP_STR(&p->dst));
		else
			log_debug("client %s: %s drops proto %u to %s", IP_STR(&p->src),
				  set ? rules_reason_name((enum rule_reason)v.reason) : "no rules yet",
				  p->protocol, IP_STR(&p->dst));
		send_admin_prohibited(r, id, frame, p);
		return;
	}
	if (v.reason == RULE_BY_RULE)
		log_debug("client %s: rule %04u accepts proto %u to %s", IP_STR(&p->src), v.number,
			  p->protocol, IP_STR(&p->dst));
	else
		log_debug("client %s: policy accepts proto %u to %s", IP_STR(&p->src), p->protocol,
			  IP_STR(&p->dst));
	const struct ip_addr *nat_addr = our_addr_for(r, v6);
	int out = way_out(r);
	if (out == NO_IFACE || !nat_addr) {
		count_drop(r, id, DROP_NO_UPLINK);
		return;
	}
	/* Refuse before creating state for a packet that cannot be sent. */
	if (p->ttl <= 1) {
		send_time_exceeded(r, id, frame, p);
		count_drop(r, id, DROP_TTL);
		return;
	}
	if (refuse_too_big(r, id, out, frame, p))
		return;
	struct ct_tuple orig = tuple_of(p), reply;
	if (conntrack_alloc_nat_port(r->ct, &orig, nat_addr, r->now, &reply) != CT_OK) {
		count_drop(r, id, DROP_NAT_EXHAUSTED);
		log_warn("client %s: no free NAT port for proto %u to %s", IP_STR(&p->src),
			 p->protocol, IP_STR(&p->dst));
		return;
	}
	struct ct_entry *e;
	if (conntrack_insert(r->ct, &orig, &reply, tcp_flags_of(p), r->now, &e) != CT_OK) {
		count_drop(r, id, DROP_NAT_EXHAUSTED);
		return;
	}
	e->mark = (uint32_t)id + 1;
	forward_on_entry(r, id, frame, p, e, CT_DIR_ORIG, l4_partial);
}

/* An IP packet from a client, parsed, source checked, not a fragment. */
static void route_from_client(struct router *r, int id, uint8_t *frame, size_t len,
			      struct packet *p, bool l4_partial)
{
	if (!r->has_net) {
		count_drop(r, id, DROP_NO_UPLINK);
		return;
	}
	/* Manual mode: a router's errors about what we sent through it (time
	 * exceeded, fragmentation needed) come from its own address; they
	 * match only as the reply direction of our NAT, which no client's own
	 * packets can. */
	if (p->has_l4 && p->icmp_is_error && is_our_addr(r, &p->dst) &&
	    id == manual_gateway_client(r) && forward_icmp_error(r, id, true, frame, len, p))
		return;
	if (is_our_addr(r, &p->dst)) {
		local_input(r, id, false, frame, len, p);
		return;
	}
	if (p->has_l4 && p->icmp_is_error) {
		if (!forward_icmp_error(r, id, false, frame, len, p))
			count_drop(r, id, DROP_NO_CONNECTION);
		return;
	}
	struct ct_tuple t = tuple_of(p);
	enum ct_dir dir;
	struct ct_entry *e = conntrack_lookup(r->ct, &t, r->now, &dir);
	if (e) {
		if (dir == CT_DIR_ORIG && e->mark == (uint32_t)id + 1) {
			forward_on_entry(r, id, frame, p, e, dir, l4_partial);
			return;
		}
		/* A client's packet matching someone else's connection, or a
		 * reply tuple (which names our address): never forwarded. */
		count_drop(r, id, DROP_SPOOFED);
		return;
	}
	new_from_client(r, id, frame, p, l4_partial);
}

/* An IP packet from the uplink side, parsed, not a fragment; in is the link
 * it came in on (the uplink or the manual-mode gateway client). */
static void route_from_uplink(struct router *r, int in, uint8_t *frame, size_t len,
			      struct packet *p, bool l4_partial)
{
	if (!is_our_addr(r, &p->dst)) {
		count_drop(r, in, DROP_NOT_FOR_US);
		return;
	}
	if (p->has_l4 && p->icmp_is_error) {
		if (!forward_icmp_error(r, in, true, frame, len, p))
			count_drop(r, in, DROP_NO_CONNECTION);
		return;
	}
	struct ct_tuple t = tuple_of(p);
	enum ct_dir dir;
	struct ct_entry *e = conntrack_lookup(r->ct, &t, r->now, &dir);
	if (e && dir == CT_DIR_REPLY) {
		forward_on_entry(r, in, frame, p, e, dir, l4_partial);
		return;
	}
	local_input(r, in, true, frame, len, p);
}

/* ---- fast path ----------------------------------------------------------
 *
 * Established IPv4 TCP and UDP, the bulk of the traffic, costs here a
 * fraction of the general path (bench/README.md): a parse of just the
 * fields it needs, a per-interface cache of the last connection with its
 * NAT rewrite precomputed, one checksum update per header, direct stores.
 *
 * Contract: for every frame it either returns false having changed
 * nothing (no counter, no table entry, no byte of the frame) except what
 * the general path would do first anyway — the connection lookup, which
 * may remove the expired entry it finds — or it does exactly what the
 * general path would do: the same bytes out, the same counters, the same
 * conntrack_seen. So it only takes a frame when every check the general
 * path makes up to its lookup is known to pass (own MAC, untagged IPv4,
 * no options, not a fragment, header checksum, lengths, the L4 header,
 * anti-spoofing, destination) and every check after it too (direction and
 * owner of the entry, not expired, uplink or client still there, within
 * the MTU, TTL > 1, no DNS observer interested); anything else — IPv6,
 * ICMP, options, fragments, too big, TTL running out, unknown flows —
 * returns false and the general path handles it from the start. The
 * differential tests (tests/unit/test_router_fastpath.c, fuzz_router) run
 * two routers, with and without, and require identical output.
 *
 * Checksums: RFC 1624 eqn. 3, HC' = ~(~HC + sum(~m + m')), is one ones'-
 * complement sum over the old and new words of every changed field, so the
 * general path's chain of per-field updates (TTL, address, port, each
 * folded) equals one update with the precomputed sum of the address and
 * port terms: the folds keep the value mod 0xffff and keep a non-zero sum
 * non-zero, which is all the final fold depends on. Fields the general
 * path leaves alone (an unchanged address or port) contribute no terms
 * here either (an update with m == m' is not a no-op: it turns 0xffff into
 * 0). UDP's "no checksum" 0 stays 0 and a computed 0 is sent as 0xffff,
 * as in nat.c. Validity of a cached entry: conntrack_generation (bumped by
 * every removal, so the pointer still names the same connection) and
 * cfg_gen (bumped by every configuration change: addresses, clients,
 * uplink, MTUs, rules). */

struct fast_pkt {
	uint8_t *ip;
	uint8_t *l4;
	uint64_t addrs;   /* source and destination bytes, in memory order */
	uint32_t ports;   /* the 4 port bytes, in memory order */
	uint16_t total;   /* IPv4 total length */
	uint16_t l4_len;  /* TCP: the IP payload; UDP: the UDP length */
	uint8_t proto;
	uint8_t csum_off; /* the L4 checksum field */
	uint8_t tcp_flags;
};

/* The fast path is a handful of short steps: calls would cost a tenth of it. */
#define FAST_INLINE static inline __attribute__((always_inline))

/* Checksum arithmetic below works on 16-bit words in the machine's own
 * byte order: the ones'-complement sum commutes with swapping the bytes of
 * every word (RFC 1071 §2(B)), so stored and loaded words need no swaps. */
FAST_INLINE uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

FAST_INLINE uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

FAST_INLINE uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

FAST_INLINE void st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void fast_invalidate(struct router *r)
{
	r->cfg_gen++;
}

static inline uint16_t fast_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* True when the 20-byte IPv4 header's checksum verifies, i.e. the
 * ones'-complement sum of its words is 0xffff (negative zero): the plain
 * sum is then a non-zero multiple of 0xffff, since each end-around carry
 * keeps the value mod 0xffff. */
FAST_INLINE bool fast_ip_csum_ok(const uint8_t *ip)
{
	uint64_t acc = (uint64_t)ld32(ip) + ld32(ip + 4) + ld32(ip + 8) + ld32(ip + 12) +
		       ld32(ip + 16);
	return acc != 0 && acc % 0xffff == 0;
}

/* The frame, if it is one the fast path may take: to mac, untagged IPv4
 * with a 20-byte header, valid checksum and lengths, not a fragment, TTL
 * above 1, TCP or UDP with a valid header. Mirrors the acceptance of
 * eth_parse, ipv4_parse, tcp_parse and udp_parse for this subset. */
FAST_INLINE bool fast_parse(uint8_t *frame, size_t len, const uint8_t *mac, struct fast_pkt *f)
{
	if (len < ETH_HDR_LEN + IPV4_HDR_MIN + UDP_HDR_LEN)
		return false;
	uint8_t *ip = frame + ETH_HDR_LEN;
	/* Ethertype IPv4 untagged, version 4 with IHL 5; then neither MF nor
	 * an offset nor the reserved bit, and TTL > 1. */
	if (ld32(frame) != ld32(mac) || ld16(frame + 4) != ld16(mac + 4) ||
	    load_be32(frame + 12) >> 8 != ((uint32_t)ETHERTYPE_IPV4 << 8 | 0x45))
		return false;
	uint32_t w = load_be32(ip + 6);
	uint32_t total = load_be16(ip + 2);
	if ((w & 0xbfff0000u) != 0 || (w & 0xff00u) <= 0x100u || total > len - ETH_HDR_LEN ||
	    !fast_ip_csum_ok(ip))
		return false;
	uint8_t *l4 = ip + IPV4_HDR_MIN;
	uint32_t avail = total - IPV4_HDR_MIN; /* wraps when total < 20: fails below */
	f->proto = (uint8_t)w;
	if (f->proto == IP_PROTO_TCP) {
		/* avail <= len - 34, so the 20 bytes read here are in the frame. */
		if (avail < TCP_HDR_MIN || avail > 0xffff)
			return false;
		uint32_t hl = (uint32_t)(l4[12] >> 4) * 4;
		if (hl < TCP_HDR_MIN || hl > avail)
			return false;
		f->l4_len = (uint16_t)avail;
		f->csum_off = TCP_OFF_CSUM;
		f->tcp_flags = l4[13];
	} else if (f->proto == IP_PROTO_UDP) {
		if (avail < UDP_HDR_LEN || avail > 0xffff)
			return false;
		uint32_t ulen = load_be16(l4 + 4);
		if (ulen < UDP_HDR_LEN || ulen > avail)
			return false;
		f->l4_len = (uint16_t)ulen;
		f->csum_off = UDP_OFF_CSUM;
		f->tcp_flags = 0;
	} else {
		return false;
	}
	f->ip = ip;
	f->l4 = l4;
	f->total = (uint16_t)total;
	f->addrs = ld64(ip + IPV4_OFF_SRC);
	f->ports = ld32(l4);
	return true;
}

FAST_INLINE bool fast_cache_hit(const struct router *r, const struct flow_cache *fc,
				const struct fast_pkt *f)
{
	return fc->e && fc->addrs == f->addrs && fc->ports == f->ports && fc->proto == f->proto &&
	       fc->cfg_gen == r->cfg_gen && fc->ct_gen == *r->ct_gen;
}

/* The general path's lookup (same tuple, same side effects): the live entry
 * when the packet belongs to it in direction want, else NULL. */
static struct ct_entry *fast_lookup(struct router *r, const struct fast_pkt *f, enum ct_dir want)
{
	struct ip_addr s = ip_from_v4(f->ip + IPV4_OFF_SRC), d = ip_from_v4(f->ip + IPV4_OFF_DST);
	struct ct_tuple t =
		ct_tuple_make(f->proto, &s, load_be16(f->l4), &d, load_be16(f->l4 + 2));
	enum ct_dir dir;
	struct ct_entry *e = conntrack_lookup(r->ct, &t, r->now, &dir);
	return e && dir == want ? e : NULL;
}

/* ~m + m' over the 16-bit words of a field that changes from old to new. */
static uint32_t fast_terms(const uint8_t *old_bytes, const uint8_t *new_bytes, size_t n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i += 2)
		sum += (uint16_t)~ld16(old_bytes + i) + (uint32_t)ld16(new_bytes + i);
	return sum;
}

/* Remembers e for the packets like f and precomputes their rewrite: the
 * source (original direction) or destination (replies) address and port
 * become those of the other tuple, as forward_on_entry does. */
static void fast_cache_fill(struct router *r, struct flow_cache *fc, const struct fast_pkt *f,
			    struct ct_entry *e, enum ct_dir dir, int out_iface)
{
	bool orig = dir == CT_DIR_ORIG;
	const struct ct_tuple *to = orig ? &e->tuple[CT_DIR_REPLY] : &e->tuple[CT_DIR_ORIG];
	const uint8_t *na = ip_v4_bytes(orig ? &to->dst : &to->src);
	uint8_t np[2];
	store_be16(np, orig ? to->dport : to->sport);
	fc->e = e;
	fc->ct_gen = *r->ct_gen;
	fc->cfg_gen = r->cfg_gen;
	fc->addrs = f->addrs;
	fc->ports = f->ports;
	fc->proto = f->proto;
	fc->dir = (uint8_t)dir;
	fc->out_iface = out_iface;
	fc->addr_off = orig ? IPV4_OFF_SRC : IPV4_OFF_DST;
	fc->port_off = orig ? 0 : 2;
	fc->new_addr = ld32(na);
	fc->new_port = ld16(np);
	/* Only fields that change contribute terms, as in nat.c. */
	uint32_t addr = 0, port = 0;
	const uint8_t *old_a = f->ip + fc->addr_off;
	if (ld32(old_a) != fc->new_addr)
		addr = fast_terms(old_a, na, 4);
	if (ld16(f->l4 + fc->port_off) != fc->new_port)
		port = fast_terms(f->l4 + fc->port_off, np, 2);
	fc->ip_delta = fast_fold(addr);
	fc->l4_delta = fast_fold(addr + port);
}

/* Commits a packet the checks have cleared: exactly the general path's
 * accept_frame counting, nat_decrement_ttl, nat_rewrite (and for csum_blank
 * packet_fill_l4_checksum), conntrack_seen, output_ip and transmit. */
FAST_INLINE void fast_forward(struct router *r, int in_iface, const struct flow_cache *fc,
			      uint8_t *frame, size_t len, const struct fast_pkt *f, uint32_t flags)
{
	struct router_counters *ic = ctr_of(r, in_iface);
	r->fast_frames++;
	ic->frames_in++;
	ic->bytes_in += len;
	r->global.frames_in++;
	r->global.bytes_in += len;

	uint8_t *ip = f->ip, *l4 = f->l4;
	uint16_t old_w = ld16(ip + IPV4_OFF_TTL);
	ip[IPV4_OFF_TTL]--; /* > 1, checked */
	uint16_t new_w = ld16(ip + IPV4_OFF_TTL);
	uint32_t sum = (uint32_t)(uint16_t)~ld16(ip + IPV4_OFF_CSUM) + (uint16_t)~old_w + new_w +
		       fc->ip_delta;
	st16(ip + IPV4_OFF_CSUM, (uint16_t)~fast_fold(sum));
	memcpy(ip + fc->addr_off, &fc->new_addr, 4);
	st16(l4 + fc->port_off, fc->new_port);
	uint8_t *csum = l4 + f->csum_off;
	if (flags & ROUTER_RX_CSUM_BLANK) {
		struct ip_addr s = ip_from_v4(ip + IPV4_OFF_SRC), d = ip_from_v4(ip + IPV4_OFF_DST);
		store_be16(csum, packet_l4_checksum(&s, &d, f->proto, l4, f->l4_len));
	} else {
		uint16_t c = ld16(csum);
		bool udp = f->proto == IP_PROTO_UDP;
		if (!(udp && c == 0)) {
			c = (uint16_t)~fast_fold((uint32_t)(uint16_t)~c + fc->l4_delta);
			st16(csum, udp && c == 0 ? 0xffff : c);
		}
	}
	conntrack_seen(r->ct, fc->e, (enum ct_dir)fc->dir, f->tcp_flags, r->now);

	/* output_ip (untagged, within the MTU) and transmit. */
	int out = fc->out_iface;
	size_t n = ETH_HDR_LEN + (size_t)f->total;
	router_transmit_fn fn;
	void *ctx;
	struct router_counters *oc;
	if (out == UPLINK_ID) {
		memcpy(frame, r->up.gw_mac, ETH_ADDR_LEN);
		memcpy(frame + ETH_ADDR_LEN, r->up.p.mac, ETH_ADDR_LEN);
		fn = r->up.p.transmit;
		ctx = r->up.p.transmit_ctx;
		oc = &r->up.ctr;
	} else {
		struct client_slot *c = &r->clients[out];
		memcpy(frame, c->p.mac, ETH_ADDR_LEN);
		memcpy(frame + ETH_ADDR_LEN, router_client_side_mac, ETH_ADDR_LEN);
		fn = c->p.transmit;
		ctx = c->p.transmit_ctx;
		oc = &c->ctr;
	}
	if (fn && fn(ctx, frame, n)) {
		oc->frames_out++;
		oc->bytes_out += n;
		r->global.frames_out++;
		r->global.bytes_out += n;
	} else {
		count_drop(r, out, DROP_TX_FULL);
	}
}

static bool fast_unroutable4(const uint8_t *b)
{
	return b[0] == 0 || b[0] == 127 || b[0] >= 224 || (b[0] == 169 && b[1] == 254);
}

/* router_input_client's fast path (see above). */
static bool fast_from_client(struct router *r, int id, struct client_slot *c, uint8_t *frame,
			     size_t len, uint32_t flags)
{
	struct fast_pkt f;
	if (!fast_parse(frame, len, router_client_side_mac, &f) || !c->p.has_ip4 || !r->has_net ||
	    ld32(f.ip + IPV4_OFF_SRC) != ld32(ip_v4_bytes(&c->p.ip4)))
		return false;
	struct flow_cache *fc = &c->fc;
	if (!fast_cache_hit(r, fc, &f)) {
		/* What route_from_client checks before its lookup. */
		const uint8_t *dst = f.ip + IPV4_OFF_DST;
		if (fast_unroutable4(dst) || ld32(dst) == ld32(ip_v4_bytes(&r->net.our_ip4)))
			return false;
		struct ct_entry *e = fast_lookup(r, &f, CT_DIR_ORIG);
		if (!e || e->mark != (uint32_t)id + 1)
			return false;
		fast_cache_fill(r, fc, &f, e, CT_DIR_ORIG, UPLINK_ID);
	}
	if (r->now >= fc->e->expires_ns || !r->up.present || f.total > iface_mtu(r, UPLINK_ID))
		return false;
	fast_forward(r, id, fc, frame, len, &f, flags);
	return true;
}

/* router_input_uplink's fast path (see above); the uplink is present. */
static bool fast_from_uplink(struct router *r, uint8_t *frame, size_t len, uint32_t flags)
{
	struct fast_pkt f;
	if (!fast_parse(frame, len, r->up.p.mac, &f) || !r->has_net)
		return false;
	struct flow_cache *fc = &r->up.fc;
	if (!fast_cache_hit(r, fc, &f)) {
		/* What router_input_uplink and route_from_uplink check before
		 * the lookup: QSB-56 anti-spoofing, and that it is for us. */
		uint32_t ours = ld32(ip_v4_bytes(&r->net.our_ip4));
		struct ip_addr src = ip_from_v4(f.ip + IPV4_OFF_SRC);
		if (ld32(f.ip + IPV4_OFF_DST) != ours || ld32(f.ip + IPV4_OFF_SRC) == ours ||
		    client_by_addr(r, &src) >= 0)
			return false;
		struct ct_entry *e = fast_lookup(r, &f, CT_DIR_REPLY);
		if (!e)
			return false;
		/* forward_on_entry's checks of the client it goes to. */
		int out = (int)e->mark - 1;
		if (!client_get(r, out) || client_by_addr(r, &e->tuple[CT_DIR_ORIG].src) != out)
			return false;
		fast_cache_fill(r, fc, &f, e, CT_DIR_REPLY, out);
	}
	if (r->now >= fc->e->expires_ns || f.total > iface_mtu(r, fc->out_iface) ||
	    (r->dns_observer && f.proto == IP_PROTO_UDP && load_be16(f.l4) == 53))
		return false;
	fast_forward(r, UPLINK_ID, fc, frame, len, &f, flags);
	return true;
}

/* ---- input: common part ------------------------------------------------- */

/* Feeds a fragment to the interface's reassembly; on completion the whole
 * datagram is re-parsed as a frame in r->work, and frame, len and p point
 * there. False when there is nothing (more) to do now. */
static bool reassemble(struct router *r, int iface, uint8_t **frame, size_t *len, struct packet *p)
{
	struct reasm *ra = iface == UPLINK_ID ? &r->up.reasm : &r->clients[iface].reasm;
	const uint8_t *f = *frame;
	struct reasm_frag rf = {
		.family = p->family,
		.more = p->more_fragments,
		.id = p->frag_id,
		.offset = p->frag_offset,
		.src = p->src,
		.dst = p->dst,
	};
	if (p->family == PACKET_IPV4) {
		rf.proto = p->protocol;
		rf.data = f + p->l3_off + p->l3_hdr_len;
		rf.data_len = p->l3_len - p->l3_hdr_len;
		rf.hdr = f + p->l3_off;
		rf.hdr_len = p->l3_hdr_len;
	} else {
		/* Everything before the Fragment header is unfragmentable. */
		uint32_t fh = p->frag_hdr_off;
		if (fh < p->l3_off + IPV6_HDR_LEN || fh + 8 > p->l3_off + p->l3_len) {
			count_drop(r, iface, DROP_FRAGMENT);
			return false;
		}
		rf.proto = f[fh];
		rf.data = f + fh + 8;
		rf.data_len = p->l3_off + p->l3_len - (fh + 8);
		rf.hdr = f + p->l3_off;
		rf.hdr_len = fh - p->l3_off;
		/* Where the Next Header byte naming the Fragment header sits: in
		 * the fixed header, or in the last extension header before it.
		 * The parser validated this chain; the walk is bounded anyway. */
		size_t nh_off = 6, off = IPV6_HDR_LEN;
		uint8_t nh = f[p->l3_off + 6];
		for (unsigned guard = 0; guard < 16 && nh != IP_PROTO_FRAGMENT &&
					 p->l3_off + off + 2 <= fh;
		     guard++) {
			nh_off = off;
			uint8_t next = f[p->l3_off + off];
			size_t units = f[p->l3_off + off + 1];
			off += nh == IP_PROTO_AH ? (units + 2) * 4 : (units + 1) * 8;
			nh = next;
		}
		if (nh != IP_PROTO_FRAGMENT || p->l3_off + off != fh) {
			count_drop(r, iface, DROP_FRAGMENT);
			return false;
		}
		rf.hdr_nh_off = nh_off;
	}
	struct reasm_result res;
	switch (reasm_add(ra, &rf, r->now, &res)) {
	case REASM_NEED_MORE:
		return false;
	case REASM_DROPPED:
		count_drop(r, iface, DROP_FRAGMENT);
		log_warn("%s: dropped fragment from %s (%s)", iface == UPLINK_ID ? "uplink" : "client",
			 IP_STR(&p->src), reasm_drop_str(res.reason));
		return false;
	case REASM_COMPLETE:
		break;
	}
	if (ETH_HDR_LEN + res.len > FRAME_MAX)
		return false;
	if (p->family == PACKET_IPV6) {
		r->reassembled_v6 = true;
		r->reassembled_v6_id = p->frag_id;
	}
	memcpy(r->work, f + p->l3_off - ETH_HDR_LEN, ETH_HDR_LEN);
	store_be16(r->work + 12, p->family == PACKET_IPV6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
	memcpy(r->work + ETH_HDR_LEN, res.datagram, res.len);
	*frame = r->work;
	*len = ETH_HDR_LEN + res.len;
	if (packet_parse_flags(*frame, *len, PACKET_SKIP_L4_CSUM, p) != PKT_OK || p->is_fragment) {
		count_drop(r, iface, DROP_FRAGMENT);
		return false;
	}
	return true;
}

static bool mac_eq(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 6) == 0;
}

/* Parses and checks the Ethernet destination. False (counted) to drop. */
static bool accept_frame(struct router *r, int iface, const uint8_t *frame, size_t len,
			 struct packet *p)
{
	struct router_counters *c = ctr_of(r, iface);
	c->frames_in++;
	c->bytes_in += len;
	r->global.frames_in++;
	r->global.bytes_in += len;
	enum pkt_result res = packet_parse_flags(frame, len, PACKET_SKIP_L4_CSUM, p);
	if (res != PKT_OK) {
		count_drop(r, iface, DROP_MALFORMED);
		if (iface == UPLINK_ID)
			log_warn("uplink: dropped malformed frame (%s)", pkt_result_str(res));
		else
			log_warn("client %u.%u: dropped malformed frame (%s)",
				 r->clients[iface].p.domid, r->clients[iface].p.devid,
				 pkt_result_str(res));
		return false;
	}
	const uint8_t *dmac = frame;
	bool ours = mac_eq(dmac, iface_our_mac(r, iface));
	bool bcast = mac_eq(dmac, broadcast_mac);
	bool nd_mcast = dmac[0] == 0x33 && dmac[1] == 0x33 && p->family == PACKET_IPV6;
	if (ours || (bcast && p->family == PACKET_ARP) || (nd_mcast && p->has_l4 && p->icmp_is_nd))
		return true;
	count_drop(r, iface, (bcast || (dmac[0] & 1)) ? DROP_UNSUPPORTED : DROP_NOT_FOR_US);
	return false;
}

/* An IP packet (not ARP/ND) arriving as uplink traffic on in: the uplink, or
 * the manual-mode gateway client with a source other than its own. */
static void uplink_side_ip(struct router *r, int in, uint8_t *frame, size_t len,
			   struct packet *p, uint32_t flags)
{
	if (!r->has_net) {
		count_drop(r, in, DROP_NO_UPLINK);
		return;
	}
	/* QSB-56: the netvm may not speak for our clients or for us. */
	if (client_by_addr(r, &p->src) >= 0 || is_our_addr(r, &p->src)) {
		count_drop(r, in, DROP_SPOOFED);
		log_warn("%s: dropped packet with internal source %s",
			 in == UPLINK_ID ? "uplink" : "netvm client", IP_STR(&p->src));
		return;
	}
	bool l4_partial = (flags & ROUTER_RX_CSUM_BLANK) != 0;
	if (p->is_fragment) {
		if (!is_our_addr(r, &p->dst)) {
			count_drop(r, in, DROP_NOT_FOR_US);
			return;
		}
		if (!reassemble(r, in, &frame, &len, p))
			return;
		l4_partial = false;
	}
	route_from_uplink(r, in, frame, len, p, l4_partial);
}

/* The general path for a client's frame (the fast path declined it). Not
 * inlined so that the fast path does not pay for its stack frame. */
static __attribute__((noinline)) void input_client(struct router *r, int client,
						   struct client_slot *c, uint8_t *frame,
						   size_t len, uint32_t flags)
{
	struct packet p;
	if (!accept_frame(r, client, frame, len, &p))
		return;
	if (p.family == PACKET_ARP) {
		client_arp(r, client, &p);
		return;
	}
	bool v6 = p.family == PACKET_IPV6;
	if (v6 && p.has_l4 && p.icmp_is_nd) {
		handle_nd(r, client, frame, &p);
		return;
	}
	bool own = v6 ? c->p.has_ip6 && ip_equal(&p.src, &c->p.ip6)
		      : c->p.has_ip4 && ip_equal(&p.src, &c->p.ip4);
	if (!own && !v6 && client == manual_gateway_client(r)) {
		uplink_side_ip(r, client, frame, len, &p, flags);
		return;
	}
	if (!own) {
		count_drop(r, client, DROP_SPOOFED);
		log_warn("client %u.%u: dropped packet with source %s, which is not its address",
			 c->p.domid, c->p.devid, IP_STR(&p.src));
		return;
	}
	if (is_unroutable(&p.dst)) {
		/* Multicast and broadcast are not routed, and not logged above
		 * debug level (CVE-2022-46770: logging them was a DoS). */
		count_drop(r, client, DROP_UNSUPPORTED);
		return;
	}
	bool l4_partial = (flags & ROUTER_RX_CSUM_BLANK) != 0;
	if (p.is_fragment) {
		if (!reassemble(r, client, &frame, &len, &p))
			return;
		l4_partial = false;
	}
	route_from_client(r, client, frame, len, &p, l4_partial);
}

void router_input_client(struct router *r, int client, uint8_t *frame, size_t len, uint32_t flags,
			 uint64_t now_ns)
{
	struct client_slot *c = client_get(r, client);
	if (!c)
		return;
	r->now = now_ns;
	r->reassembled_v6 = false;
	if (r->cfg.fast_path && fast_from_client(r, client, c, frame, len, flags))
		return;
	input_client(r, client, c, frame, len, flags);
}

/* The general path for a frame from the uplink (see input_client). */
static __attribute__((noinline)) void input_uplink(struct router *r, uint8_t *frame, size_t len,
						   uint32_t flags)
{
	struct packet p;
	if (!accept_frame(r, UPLINK_ID, frame, len, &p))
		return;
	if (p.family == PACKET_ARP) {
		uplink_arp(r, &p);
		return;
	}
	if (p.family == PACKET_IPV6 && p.has_l4 && p.icmp_is_nd) {
		handle_nd(r, UPLINK_ID, frame, &p);
		return;
	}
	uplink_side_ip(r, UPLINK_ID, frame, len, &p, flags);
}

void router_input_uplink(struct router *r, uint8_t *frame, size_t len, uint32_t flags,
			 uint64_t now_ns)
{
	if (!r->up.present)
		return;
	r->now = now_ns;
	r->reassembled_v6 = false;
	if (r->cfg.fast_path && fast_from_uplink(r, frame, len, flags))
		return;
	input_uplink(r, frame, len, flags);
}

/* ---- configuration ------------------------------------------------------ */

/* A NAT connection made with an address we no longer have can never work
 * again (replies would go to the old address) and its frames would leave
 * with a source that is not ours: they go when our address changes. */
static bool keep_unless_natted_to(const struct ct_entry *e, void *ctx)
{
	const struct ip_addr *old = ctx;
	return !(e->flags & CT_F_NAT) || !ip_equal(&e->tuple[CT_DIR_REPLY].dst, old);
}

void router_set_net_config(struct router *r, const struct router_net_config *nc)
{
	fast_invalidate(r);
	bool changed = !r->has_net || !ip_equal(&nc->gateway4, &r->net.gateway4);
	if (r->has_net && !ip_equal(&nc->our_ip4, &r->net.our_ip4))
		conntrack_remove_if(r->ct, NULL, keep_unless_natted_to, &r->net.our_ip4);
	if (r->has_net && r->net.has_ip6 && (!nc->has_ip6 || !ip_equal(&nc->our_ip6, &r->net.our_ip6)))
		conntrack_remove_if(r->ct, NULL, keep_unless_natted_to, &r->net.our_ip6);
	r->net = *nc;
	r->has_net = true;
	if (changed) {
		r->up.gw_mac_learned = false;
		r->up.arp_tries = 0;
		r->up.arp_next_ns = 0;
	}
	rebuild_index(r);
}

void router_set_uplink(struct router *r, const struct router_uplink_params *p)
{
	fast_invalidate(r);
	r->up.present = true;
	r->up.p = *p;
	r->up.gw_mac_learned = false;
	memcpy(r->up.gw_mac, router_client_side_mac, ROUTER_MAC_LEN);
	memcpy(r->up.gw6_mac, router_client_side_mac, ROUTER_MAC_LEN);
	r->up.arp_tries = 0;
	r->up.arp_next_ns = 0;
}

void router_clear_uplink(struct router *r)
{
	fast_invalidate(r);
	r->up.present = false;
	r->up.p.transmit = NULL;
}

static bool addr_taken(struct router *r, const struct ip_addr *a)
{
	return client_by_addr(r, a) >= 0 || is_our_addr(r, a);
}

int router_add_client(struct router *r, const struct router_client_params *p)
{
	if ((!p->has_ip4 && !p->has_ip6) || (p->has_ip4 && !ip_is_v4(&p->ip4)) ||
	    (p->has_ip6 && ip_is_v4(&p->ip6)))
		return -1;
	if ((p->has_ip4 && addr_taken(r, &p->ip4)) || (p->has_ip6 && addr_taken(r, &p->ip6)))
		return -1;
	for (uint32_t i = 0; i < r->cfg.max_clients; i++) {
		struct client_slot *c = &r->clients[i];
		if (c->in_use)
			continue;
		struct reasm keep = c->reasm;
		memset(c, 0, sizeof(*c));
		c->reasm = keep;
		c->in_use = true;
		c->p = *p;
		fast_invalidate(r);
		rebuild_index(r);
		return (int)i;
	}
	return -1;
}

void router_remove_client(struct router *r, int client)
{
	struct client_slot *c = client_get(r, client);
	if (!c)
		return;
	if (c->p.has_ip4)
		conntrack_remove_client(r->ct, &c->p.ip4);
	if (c->p.has_ip6)
		conntrack_remove_client(r->ct, &c->p.ip6);
	/* Drop half-reassembled datagrams: far in the future expires all. */
	reasm_expire(&c->reasm, UINT64_MAX, NULL, NULL);
	c->in_use = false;
	c->rules[0] = c->rules[1] = NULL;
	fast_invalidate(r);
	rebuild_index(r);
}

struct keep_ctx {
	const struct rule_set *set;
	bool v6;
};

/* D11: a connection survives a rule change iff its first packet would still
 * be accepted. */
static bool keep_if_allowed(const struct ct_entry *e, void *vctx)
{
	const struct keep_ctx *k = vctx;
	const struct ct_tuple *o = &e->tuple[CT_DIR_ORIG];
	if (!k->set)
		return false;
	bool icmp = o->proto == IP_PROTO_ICMP || o->proto == IP_PROTO_ICMPV6;
	struct rule_packet rp = {
		.family = k->v6 ? RULE_FAMILY_V6 : RULE_FAMILY_V4,
		.proto = o->proto,
		.dst_port = (o->proto == IP_PROTO_TCP || o->proto == IP_PROTO_UDP) ? o->dport : 0,
		.icmp_type = icmp ? (k->v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO_REQUEST) : 0,
		.dst = o->dst,
	};
	return rules_flow_allowed(k->set, &rp);
}

void router_set_rules(struct router *r, int client, bool ipv6, const struct rule_set *rules)
{
	struct client_slot *c = client_get(r, client);
	if (!c)
		return;
	c->rules[ipv6 ? 1 : 0] = rules;
	fast_invalidate(r);
	const struct ip_addr *a = ipv6 ? (c->p.has_ip6 ? &c->p.ip6 : NULL)
				       : (c->p.has_ip4 ? &c->p.ip4 : NULL);
	if (!a)
		return;
	struct keep_ctx k = {.set = rules, .v6 = ipv6};
	uint32_t n = conntrack_remove_if(r->ct, a, keep_if_allowed, &k);
	if (n)
		log_info("client %s: new rules end %u connection%s", IP_STR(a), n, n == 1 ? "" : "s");
}

void router_set_local_udp(struct router *r, uint16_t lo, uint16_t hi, router_local_udp_fn fn,
			  void *ctx)
{
	fast_invalidate(r);
	r->local_udp = fn;
	r->local_udp_ctx = ctx;
	r->local_udp_lo = lo;
	r->local_udp_hi = hi;
	/* Keep NAT away from the ports we receive on ourselves. */
	if (fn && lo > CT_NAT_PORT_MIN + 1024)
		conntrack_set_nat_port_range(r->ct, CT_NAT_PORT_MIN, (uint16_t)(lo - 1));
	else if (fn && hi < CT_NAT_PORT_MAX - 1024)
		conntrack_set_nat_port_range(r->ct, (uint16_t)(hi + 1), CT_NAT_PORT_MAX);
}

bool router_send_local_udp(struct router *r, const struct ip_addr *dst, uint16_t sport,
			   uint16_t dport, const uint8_t *payload, size_t len)
{
	bool v6 = !ip_is_v4(dst);
	const struct ip_addr *src = our_addr_for(r, v6);
	size_t hdr = ETH_HDR_LEN + (v6 ? IPV6_HDR_LEN : IPV4_HDR_MIN);
	int out = way_out(r); /* manual mode: the gateway client */
	if (out == NO_IFACE || !src || len > 1400 || hdr + UDP_HDR_LEN + len > FRAME_MAX)
		return false;
	uint8_t *udp = r->out + hdr;
	store_be16(udp, sport);
	store_be16(udp + 2, dport);
	store_be16(udp + 4, (uint16_t)(UDP_HDR_LEN + len));
	store_be16(udp + 6, 0);
	memcpy(udp + UDP_HDR_LEN, payload, len);
	store_be16(udp + 6, packet_l4_checksum(src, dst, IP_PROTO_UDP, udp, UDP_HDR_LEN + len));
	if (v6) {
		struct ipv6_fields f = {.next_header = IP_PROTO_UDP, .hop_limit = PACKET_TTL,
					.payload_len = (uint16_t)(UDP_HDR_LEN + len)};
		memcpy(f.src, src->b, 16);
		memcpy(f.dst, dst->b, 16);
		ipv6_build(r->out + ETH_HDR_LEN, IPV6_HDR_LEN, &f);
	} else {
		struct ipv4_fields f = {.ttl = PACKET_TTL, .proto = IP_PROTO_UDP, .df = true,
					.payload_len = (uint16_t)(UDP_HDR_LEN + len)};
		memcpy(f.src, ip_v4_bytes(src), 4);
		memcpy(f.dst, ip_v4_bytes(dst), 4);
		ipv4_build(r->out + ETH_HDR_LEN, IPV4_HDR_MIN, &f);
	}
	eth_build(r->out, ETH_HDR_LEN, next_hop_mac(r, out, v6), iface_our_mac(r, out),
		  v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
	uint64_t before = ctr_of(r, out)->frames_out;
	transmit(r, out, r->out, hdr + UDP_HDR_LEN + len);
	return ctr_of(r, out)->frames_out != before;
}

void router_set_dns_observer(struct router *r, router_dns_observer_fn fn, void *ctx)
{
	fast_invalidate(r);
	r->dns_observer = fn;
	r->dns_observer_ctx = ctx;
}

/* ---- periodic work ------------------------------------------------------ */

void router_tick(struct router *r, uint64_t now_ns)
{
	r->now = now_ns;
	conntrack_expire(r->ct, now_ns, EXPIRE_BUDGET);
	for (uint32_t i = 0; i < r->cfg.max_clients; i++)
		if (r->clients[i].in_use)
			reasm_expire(&r->clients[i].reasm, now_ns, NULL, NULL);
	reasm_expire(&r->up.reasm, now_ns, NULL, NULL);
	/* Ask for the netvm's MAC a few times; until it answers (a VPN qube
	 * may never) fe:ff:ff:ff:ff:ff is used, Qubes' convention. */
	if (r->up.present && r->has_net && !r->up.gw_mac_learned && r->up.arp_tries < ARP_MAX_TRIES &&
	    now_ns >= r->up.arp_next_ns) {
		r->up.arp_tries++;
		r->up.arp_next_ns = now_ns + ARP_RETRY_NS;
		uplink_send_arp_query(r);
	}
}

const struct router_counters *router_global_counters(const struct router *r)
{
	return &r->global;
}

const struct router_counters *router_client_counters(const struct router *r, int client)
{
	if (client < 0 || (uint32_t)client >= r->cfg.max_clients || !r->clients[client].in_use)
		return NULL;
	return &r->clients[client].ctr;
}

const struct router_counters *router_uplink_counters(const struct router *r)
{
	return &r->up.ctr;
}

uint64_t router_fast_path_frames(const struct router *r)
{
	return r->fast_frames;
}

struct conntrack *router_conntrack(struct router *r)
{
	return r->ct;
}
