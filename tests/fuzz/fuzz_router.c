/* fuzz_router.c — random frame sequences on random interfaces through the
 * whole data path, run twice: once with the established-flow fast path off
 * and once with it on (router_config.fast_path). The two runs must agree
 * exactly: every frame out (interface and bytes), every counter, the
 * connection-table statistics, after every record. Also the original
 * invariants: no crash or sanitizer report; every frame on the uplink comes
 * from our MAC and, when IP, from our address; every IP frame to a client
 * is addressed to that client (or is our ICMP/ND from the gateway); the
 * connection table stays within capacity.
 *
 * Input: records [op:1][a:1][len:2 LE][len bytes] (op 0-2), [op:1][a:1][b:1][x:1]
 * (op 3-4) or [op:1][8 parameter bytes] (op 5-7), op taken modulo 8:
 *   0 raw frame from the uplink, 1..2 raw frame from client 0/1 (a: bit 0
 *   csum_blank), 3 clock advance by a seconds (and router_tick unless bit
 *   0 of b is set), 4 rules change (a),
 *   5 a well-formed IPv4 TCP/UDP frame from a client to a remote
 *   (parameters choose client, protocol, TCP flags, remote, ports, TTL,
 *   size, DF, csum_blank, damage),
 *   (a source port or an L4 checksum may be given explicitly),
 *   6 a reply from the uplink to one of the last flows seen leaving on it
 *   (so NAT ports need not be guessed; an L4 checksum may be given), or an
 *   ICMP error quoting it,
 *   7 a configuration change (client removal and re-adding, uplink MTU,
 *   uplink gone and back, our address, DNS observer, gateway MAC).
 * tests/unit/test_router_fastpath.c includes this file and drives
 * router_diff_run with fixed and pseudo-random sequences. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/byteorder.h"
#include "base/csprng.h"
#include "fw/conntrack.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t our_ip_choice[2][4] = {{10, 137, 0, 6}, {10, 137, 0, 7}};
static const uint8_t gw_ip[4] = {10, 137, 0, 5};
static const uint8_t c_ip[2][4] = {{10, 137, 0, 20}, {10, 137, 0, 21}};
static const uint8_t our_ip6[16] = {0xfd, 9, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 6};
static const uint8_t c_ip6[16] = {0xfd, 9, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 0x14};
static const uint8_t up_mac[6] = {0, 0x16, 0x3e, 0x5e, 0x6c, 6};
static const uint8_t gw_macs[2][6] = {{0, 0x16, 0x3e, 0x5e, 0x6c, 5}, {0, 0x16, 0x3e, 0x11, 0x22, 5}};

#define MAX_STEPS 4096
#define FLOW_SLOTS 8
#define FLOW_BYTES 128

struct world {
	struct router *r;
	int ids[2];
	struct rule_set sets[2][2];
	struct ip_addr client_addr[2][2];
	uint8_t our_ip[4];
	uint16_t client_mtu[2];
	uint64_t now;
	uint64_t h;  /* running digest of everything observable */
	uint64_t steps[MAX_STEPS];
	size_t n_steps;
	/* The last frames that left on the uplink, for replies. */
	uint8_t flows[FLOW_SLOTS][FLOW_BYTES];
	size_t flow_len[FLOW_SLOTS];
	unsigned flow_next;
	bool observer;
};

static struct world W;

static void mix(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		W.h ^= b[i];
		W.h *= 0x100000001b3ull;
	}
}

static void mix64(uint64_t v)
{
	mix(&v, sizeof(v));
}

static bool check_uplink(void *ctx, const uint8_t *f, size_t len)
{
	(void)ctx;
	struct packet p;
	if (len < 14 || memcmp(f + 6, up_mac, 6) != 0)
		abort();
	if (packet_parse(f, len, &p) == PKT_OK && (p.family == PACKET_IPV4 || p.family == PACKET_IPV6)) {
		/* Either of the addresses op 7 gives us: connections NATed to
		 * the old address survive a change of ours (router behaviour,
		 * unchanged by the fast path). */
		struct ip_addr a = ip_from_v4(our_ip_choice[0]), a2 = ip_from_v4(our_ip_choice[1]);
		struct ip_addr b = ip_from_v6(our_ip6);
		if (!ip_equal(&p.src, &a) && !ip_equal(&p.src, &a2) && !ip_equal(&p.src, &b))
			abort();
		if (p.family == PACKET_IPV4 && p.has_l4 && !p.is_fragment &&
		    (p.protocol == IP_PROTO_TCP || p.protocol == IP_PROTO_UDP)) {
			unsigned s = W.flow_next++ % FLOW_SLOTS;
			W.flow_len[s] = len < FLOW_BYTES ? len : FLOW_BYTES;
			memcpy(W.flows[s], f, W.flow_len[s]);
		}
	}
	mix64(0xaaaa);
	mix64(len);
	mix(f, len);
	return true;
}

static bool check_client(void *ctx, const uint8_t *f, size_t len)
{
	int c = (int)(intptr_t)ctx;
	struct packet p;
	if (len < 14 || memcmp(f + 6, router_client_side_mac, 6) != 0)
		abort();
	if (packet_parse(f, len, &p) == PKT_OK && (p.family == PACKET_IPV4 || p.family == PACKET_IPV6)) {
		bool to_client = ip_equal(&p.dst, &W.client_addr[c][0]) ||
				 ip_equal(&p.dst, &W.client_addr[c][1]);
		/* Neighbour advertisements may go to the client's link-local address. */
		if (!to_client && !(p.has_l4 && p.icmp_is_nd))
			abort();
	}
	mix64(0xbbbb + (uint64_t)c);
	mix64(len);
	mix(f, len);
	return true;
}

static void observe_dns(void *ctx, int client, const uint8_t *payload, size_t len,
			const struct ip_addr *server, uint64_t now_ns)
{
	(void)ctx;
	mix64(0xdddd + (uint64_t)client);
	mix(payload, len);
	mix(server, sizeof(*server));
	mix64(now_ns);
}

static void set_rules(int c, unsigned variant)
{
	static const char *const rule_text[4] = {"action=accept", "action=accept proto=tcp dstports=80-443",
						 "action=drop dst4=192.0.2.0/24", "action=accept proto=icmp"};
	if (W.ids[c] < 0)
		return;
	for (int fam = 0; fam < 2; fam++) {
		struct rules_entry e[2] = {{"policy", 6, "drop", 4}, {"0000", 4, rule_text[variant & 3],
								       strlen(rule_text[variant & 3])}};
		if (fam == 1 && (variant & 3) == 2)
			e[1] = (struct rules_entry){"0000", 4, "action=accept", 13};
		rules_parse(&W.sets[c][fam], fam ? RULE_FAMILY_V6 : RULE_FAMILY_V4, e, 2, NULL, 0);
		router_set_rules(W.r, W.ids[c], fam == 1, &W.sets[c][fam]);
	}
}

static void add_client(int c)
{
	struct router_client_params cp = {.domid = (uint32_t)(10 + c), .has_ip4 = true,
					  .mtu = W.client_mtu[c], .transmit = check_client,
					  .transmit_ctx = (void *)(intptr_t)c};
	memcpy(cp.mac, (const uint8_t[]){0, 0x16, 0x3e, 0x5e, 0x6c, 0}, 6);
	cp.mac[5] = (uint8_t)c;
	cp.ip4 = ip_from_v4(c_ip[c]);
	W.client_addr[c][0] = cp.ip4;
	W.client_addr[c][1] = cp.ip4;
	if (c == 0) {
		cp.has_ip6 = true;
		cp.ip6 = ip_from_v6(c_ip6);
		W.client_addr[c][1] = cp.ip6;
	}
	W.ids[c] = router_add_client(W.r, &cp);
	if (W.ids[c] < 0)
		abort();
	set_rules(c, 0);
}

static void set_net(void)
{
	struct router_net_config nc = {0};
	nc.our_ip4 = ip_from_v4(W.our_ip);
	nc.gateway4 = ip_from_v4(gw_ip);
	nc.dns[0] = ip_from_v4((const uint8_t[]){10, 139, 1, 1});
	nc.dns[1] = ip_from_v4((const uint8_t[]){10, 139, 1, 2});
	nc.has_ip6 = true;
	nc.our_ip6 = ip_from_v6(our_ip6);
	nc.gateway6 = ip_from_v6(our_ip6);
	nc.gateway6.b[15] = 5;
	router_set_net_config(W.r, &nc);
}

static void set_uplink(uint16_t mtu)
{
	struct router_uplink_params up = {.mtu = mtu, .transmit = check_uplink};
	memcpy(up.mac, up_mac, 6);
	router_set_uplink(W.r, &up);
}

static void init_world(bool fast)
{
	static const uint8_t seed[32] = {9};
	static void *mem;
	static size_t mem_size;
	memset(&W, 0, sizeof(W));
	/* Both runs draw the same hash key and NAT ports. */
	csprng_reset();
	csprng_seed(seed, sizeof(seed));
	struct router_config cfg;
	router_config_default(&cfg);
	cfg.max_clients = 2;
	cfg.conntrack_size = 32;
	cfg.client_reasm_bytes = 16 * 1024;
	cfg.uplink_reasm_bytes = 16 * 1024;
	cfg.fast_path = fast;
	size_t need = router_memory_needed(&cfg);
	if (!mem) {
		mem = malloc(need);
		mem_size = need;
	}
	if (!mem || mem_size < need)
		abort();
	static struct arena a;
	arena_init(&a, mem, need);
	if (!router_init(&W.r, &a, &cfg))
		abort();
	memcpy(W.our_ip, our_ip_choice[0], 4);
	W.now = 1000000000000ull;
	W.client_mtu[0] = W.client_mtu[1] = 1500;
	set_net();
	set_uplink(1500);
	for (int c = 0; c < 2; c++)
		add_client(c);
}

/* Ethernet + IPv4 + TCP/UDP to the router; returns the frame length. */
static size_t build_ip_frame(uint8_t *f, size_t cap, const uint8_t dmac[6], const uint8_t smac[6],
			     const uint8_t src[4], const uint8_t dst[4], bool tcp, uint16_t sport,
			     uint16_t dport, uint8_t tcp_flags, uint8_t ttl, size_t plen, uint8_t mods,
			     int32_t forced_csum)
{
	size_t opt = (mods & 0x10) ? 4 : 0;
	size_t l4h = tcp ? 20 : 8;
	size_t total = 20 + opt + l4h + plen;
	size_t pad = (mods & 0x80) ? 6 : 0;
	if (14 + total + pad > cap)
		return 0;
	memset(f, 0, 14 + total + pad);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	store_be16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = (uint8_t)(0x40 | ((20 + opt) / 4));
	store_be16(ip + 2, (uint16_t)total);
	store_be16(ip + 4, (uint16_t)(sport ^ plen));
	store_be16(ip + 6, (uint16_t)(((mods & 1) ? 0x4000 : 0) | ((mods & 0x40) ? 0x2000 : 0)));
	ip[8] = ttl;
	ip[9] = tcp ? 6 : 17;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	if (opt)
		ip[20] = 1, ip[21] = 1, ip[22] = 1, ip[23] = 0; /* NOP NOP NOP EOL */
	uint8_t *l4 = ip + 20 + opt;
	store_be16(l4, sport);
	store_be16(l4 + 2, dport);
	for (size_t i = 0; i < plen; i++)
		l4[l4h + i] = (uint8_t)(i * 7 + sport);
	if (tcp) {
		store_be32(l4 + 4, 0x01020304u + (uint32_t)plen);
		store_be32(l4 + 8, 0x0a0b0c0du);
		l4[12] = 0x50;
		l4[13] = tcp_flags;
		store_be16(l4 + 14, 65535);
	} else {
		store_be16(l4 + 4, (uint16_t)(8 + plen));
	}
	struct ip_addr s = ip_from_v4(src), d = ip_from_v4(dst);
	uint16_t c = packet_l4_checksum(&s, &d, tcp ? 6 : 17, l4, l4h + plen);
	if (!tcp && (mods & 0x08))
		c = 0;
	if (mods & 0x20)
		c = (uint16_t)(c ^ (uint16_t)(plen * 0x0101 + 1)); /* a wrong L4 checksum */
	if (forced_csum >= 0)
		c = (uint16_t)forced_csum;
	store_be16(l4 + (tcp ? 16 : 6), c);
	store_be16(ip + 10, 0);
	uint32_t sum = 0;
	for (size_t i = 0; i < 20 + opt; i += 2)
		sum += load_be16(ip + i);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	store_be16(ip + 10, (uint16_t)~sum);
	if (mods & 0x04)
		ip[10] ^= 0x40;
	return 14 + total + pad;
}

static void synth_client(const uint8_t *p, uint8_t *frame, size_t cap)
{
	static const uint16_t dports[8] = {80, 443, 53, 22, 123, 5000, 8080, 1};
	static const uint8_t remotes[8][4] = {{192, 0, 2, 1},	 {192, 0, 2, 2},  {198, 51, 100, 7},
					      {203, 0, 113, 9},	 {10, 137, 0, 21}, {224, 0, 0, 5},
					      {10, 137, 0, 6},	 {255, 255, 255, 255}};
	int c = p[0] & 1;
	if (W.ids[c] < 0)
		return;
	bool tcp = (p[1] & 1) != 0;
	uint8_t flags = (uint8_t)(p[1] >> 1);
	const uint8_t *remote = remotes[(p[2] & 0x30) ? p[2] & 3 : p[2] & 7];
	uint16_t sport = (uint16_t)(40000 + (p[3] & 7));
	uint16_t dport = dports[p[4] & 7];
	uint8_t ttl = p[5] < 8 ? p[5] : 64;
	size_t plen = (size_t)p[6] * 8;
	uint8_t mods = p[7];
	int32_t forced = -1;
	if (p[3] & 0x80) {
		/* An explicit source port (e.g. the NAT port a flow would get). */
		sport = (uint16_t)(p[5] << 8 | p[6]);
		ttl = 64;
		plen = 8;
	} else if (p[3] & 0x40) {
		/* An explicit L4 checksum field (its update may reach 0 or 0xffff). */
		forced = p[5] << 8 | p[6];
		ttl = 64;
		plen = 8;
	}
	const uint8_t *src = (p[0] & 0x80) ? c_ip[1 - c] : c_ip[c];
	const uint8_t *cmac = (const uint8_t[]){0, 0x16, 0x3e, 0x5e, 0x6c, (uint8_t)c};
	size_t n = build_ip_frame(frame, cap, router_client_side_mac, cmac, src, remote, tcp, sport,
				  dport, flags, ttl, plen, mods, forced);
	if (n)
		router_input_client(W.r, W.ids[c], frame, n, (mods & 2) ? ROUTER_RX_CSUM_BLANK : 0,
				    W.now);
}

static void synth_reply(const uint8_t *p, uint8_t *frame, size_t cap)
{
	unsigned s = (W.flow_next + FLOW_SLOTS - 1 - (p[0] % FLOW_SLOTS)) % FLOW_SLOTS;
	const uint8_t *o = W.flows[s];
	if (W.flow_len[s] < 14 + 20 + 8)
		return;
	const uint8_t *oip = o + 14;
	const uint8_t *ol4 = oip + (size_t)(oip[0] & 0x0f) * 4;
	if (ol4 + 4 > o + W.flow_len[s])
		return;
	uint8_t mods = p[4];
	size_t n;
	if (p[5] & 1) {
		/* An ICMP error about our packet, from the remote or a router. */
		struct packet_addrs a;
		memcpy(a.eth_dst, up_mac, 6);
		memcpy(a.eth_src, gw_macs[0], 6);
		a.src = ip_from_v4((p[5] & 2) ? gw_ip : oip + 16);
		a.dst = ip_from_v4(oip + 12);
		size_t olen = load_be16(oip + 2);
		if (olen > W.flow_len[s] - 14)
			olen = W.flow_len[s] - 14;
		n = packet_build_icmp_error(frame, cap, &a, (p[5] & 4) ? ICMP_TIME_EXCEEDED : 3,
					    (p[5] >> 3) & 7, 0, oip, olen);
		if (n && p[2] < 8) {
			/* TTL of the error itself, and its header checksum. */
			frame[14 + 8] = p[2];
			store_be16(frame + 14 + 10, 0);
			uint32_t sum = 0;
			for (size_t i = 0; i < 20; i += 2)
				sum += load_be16(frame + 14 + i);
			sum = (sum & 0xffff) + (sum >> 16);
			sum = (sum & 0xffff) + (sum >> 16);
			store_be16(frame + 14 + 10, (uint16_t)~sum);
		}
	} else {
		bool tcp = oip[9] == 6;
		uint16_t dport = (uint16_t)(load_be16(ol4) + ((mods & 0x40) ? 1 : 0));
		n = build_ip_frame(frame, cap, up_mac, gw_macs[0], oip + 16, oip + 12, tcp,
				   load_be16(ol4 + 2), dport, p[1], p[2] < 8 ? p[2] : 60,
				   (size_t)p[3] * 8, (uint8_t)(mods & ~0x40),
				   (p[5] & 0x80) ? p[6] << 8 | p[7] : -1);
	}
	if (n)
		router_input_uplink(W.r, frame, n, (mods & 2) ? ROUTER_RX_CSUM_BLANK : 0, W.now);
}

static void gateway_arp(uint8_t which, uint8_t *frame)
{
	memset(frame, 0, 60);
	memcpy(frame, up_mac, 6);
	memcpy(frame + 6, gw_macs[which & 1], 6);
	store_be16(frame + 12, 0x0806);
	uint8_t *a = frame + 14;
	store_be16(a, 1);
	store_be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	store_be16(a + 6, 2);
	memcpy(a + 8, gw_macs[which & 1], 6);
	memcpy(a + 14, gw_ip, 4);
	memcpy(a + 18, up_mac, 6);
	memcpy(a + 24, W.our_ip, 4);
	router_input_uplink(W.r, frame, 60, 0, W.now);
}

static void config_change(const uint8_t *p, uint8_t *frame)
{
	int c = p[1] & 1;
	switch (p[0] % 7) {
	case 0: /* the client goes away (and its connections), then comes back */
		if (W.ids[c] >= 0)
			router_remove_client(W.r, W.ids[c]);
		W.ids[c] = -1;
		if (!(p[1] & 2)) {
			W.client_mtu[c] = (p[1] & 4) ? (uint16_t)(576 + p[2] * 4) : 1500;
			add_client(c);
		}
		break;
	case 1:
		set_uplink((uint16_t)(576 + p[2] * 4));
		break;
	case 2:
		router_clear_uplink(W.r);
		break;
	case 3:
		set_uplink(1500);
		break;
	case 4:
		memcpy(W.our_ip, our_ip_choice[p[1] & 1], 4);
		set_net();
		break;
	case 5:
		W.observer = !W.observer;
		router_set_dns_observer(W.r, W.observer ? observe_dns : NULL, NULL);
		break;
	default:
		gateway_arp(p[1], frame);
		break;
	}
}

static void record_state(void)
{
	struct ct_stats st;
	conntrack_get_stats(router_conntrack(W.r), &st);
	if (st.in_use > st.capacity)
		abort();
	mix(&st, sizeof(st));
	mix(router_global_counters(W.r), sizeof(struct router_counters));
	mix(router_uplink_counters(W.r), sizeof(struct router_counters));
	for (int c = 0; c < 2; c++) {
		const struct router_counters *rc = W.ids[c] >= 0 ? router_client_counters(W.r, W.ids[c])
								 : NULL;
		if (rc)
			mix(rc, sizeof(*rc));
	}
	if (W.n_steps < MAX_STEPS)
		W.steps[W.n_steps++] = W.h;
}

/* One run of the input on a fresh world; the digest after every record is
 * left in W.steps. */
static void run(const uint8_t *data, size_t size, bool fast)
{
	static uint8_t frame[2048];
	init_world(fast);
	size_t i = 0;
	while (i < size) {
		uint8_t op = data[i] % 8;
		if (op >= 5) {
			if (size - i < 9)
				break;
			const uint8_t *p = data + i + 1;
			i += 9;
			if (op == 5)
				synth_client(p, frame, sizeof(frame));
			else if (op == 6)
				synth_reply(p, frame, sizeof(frame));
			else
				config_change(p, frame);
			record_state();
			continue;
		}
		if (size - i < 4)
			break;
		uint8_t flags = data[i + 1];
		bool no_tick = (data[i + 2] & 1) != 0;
		size_t len = (size_t)data[i + 2] | (size_t)data[i + 3] << 8;
		i += 4;
		if (op >= 3)
			len = 0; /* tick and rules records carry no frame */
		if (len > size - i)
			len = size - i;
		if (len > sizeof(frame))
			len = sizeof(frame);
		memcpy(frame, data + i, len);
		i += len;
		uint32_t rx = flags & ROUTER_RX_CSUM_BLANK;
		switch (op) {
		case 0:
			router_input_uplink(W.r, frame, len, rx, W.now);
			break;
		case 1:
		case 2:
			if (W.ids[op - 1] >= 0)
				router_input_client(W.r, W.ids[op - 1], frame, len, rx, W.now);
			break;
		case 3:
			W.now += (uint64_t)flags * 1000000000ull;
			if (!no_tick) /* else time passes without the expiry sweep */
				router_tick(W.r, W.now);
			break;
		default:
			set_rules(flags & 1, flags >> 1);
			break;
		}
		record_state();
	}
	const char *why = conntrack_check_invariants(router_conntrack(W.r));
	if (why) {
		fprintf(stderr, "conntrack invariant: %s\n", why);
		abort();
	}
}

/* Runs the input without and with the fast path. Returns -1 when they
 * agree, else the index of the first record after which they differ. */
static long router_diff_run(const uint8_t *data, size_t size)
{
	static uint64_t slow[MAX_STEPS];
	run(data, size, false);
	size_t n = W.n_steps;
	memcpy(slow, W.steps, n * sizeof(slow[0]));
	run(data, size, true);
	if (W.n_steps != n)
		return 0;
	for (size_t k = 0; k < n; k++)
		if (slow[k] != W.steps[k])
			return (long)k;
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long k = router_diff_run(data, size);
	if (k >= 0) {
		fprintf(stderr, "fast path differs from the general path after record %ld\n", k);
		abort();
	}
	return 0;
}
