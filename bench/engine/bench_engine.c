/* bench_engine.c — packets per second and nanoseconds per packet through the
 * router (issue 3, "Tests and measurements"): an established TCP flow in
 * both directions, new UDP connections that walk 100 rules, and established
 * flows with the connection table filled to 5,000 and to 1,000,000 entries.
 *
 * A plain host program linked with the -O2 core (build/host/libcore.a);
 * frames are built here by hand and pushed into router_input_client /
 * router_input_uplink with transmit callbacks that only count. Fixed
 * iteration counts, process CPU time, best of --repeat runs; it never
 * asserts on timing, only that every measured packet was forwarded (a
 * benchmark of drops would measure nothing). The CSPRNG has a fixed seed
 * so that the table layout, and hence callgrind's counts, are the same
 * from run to run.
 *
 *   bench_engine [--repeat R] [CASE...]   timing table (all cases by default)
 *   bench_engine --list                   the cases
 *   bench_engine --callgrind CASE N       sets CASE up, then runs N packets
 *
 * With --callgrind the set-up runs with callgrind's instrumentation off
 * (when built with <valgrind/callgrind.h>), so run it as
 *   valgrind --tool=callgrind --instr-atstart=no \
 *            --toggle-collect=router_input_client bench_engine --callgrind CASE N
 * (router_input_uplink for the reply case) and take (Ir(2N) - Ir(N)) / N:
 * the instructions of one packet through the router, transmit callback
 * included, without the harness that rewrites the frame. scripts/bench-engine
 * does exactly that. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* mk/bench.mk defines HAVE_CALLGRIND_H when valgrind's headers exist. */
#ifdef HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION \
	do {                            \
	} while (0)
#define CALLGRIND_STOP_INSTRUMENTATION \
	do {                           \
	} while (0)
#endif

#include "base/arena.h"
#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/csprng.h"
#include "fw/conntrack.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "net/packet.h"

_Noreturn void platform_panic(const char *message);
_Noreturn void platform_panic(const char *message)
{
	(void)fprintf(stderr, "PANIC: %s\n", message);
	abort();
}

#define NS 1000000000ull
#define FRAME_BYTES 2048
#define ETH_LEN 14
#define IP4_LEN 20
#define TCP_LEN 20
#define UDP_LEN 8
/* Payload of the data segments and datagrams: the router never reads it. */
#define PAYLOAD 64
/* Bytes the router may rewrite in a frame (Ethernet, IPv4, TCP headers):
 * the harness restores them before every push. */
#define TCP_HDRS (ETH_LEN + IP4_LEN + TCP_LEN)
#define UDP_HDRS (ETH_LEN + IP4_LEN + UDP_LEN)

static void die(const char *what)
{
	(void)fprintf(stderr, "bench_engine: %s\n", what);
	exit(1);
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- addresses of the world (as in tests/unit/test_router.c) -------------- */

static const uint8_t our_ip[4] = {10, 137, 0, 6};
static const uint8_t netvm_ip[4] = {10, 137, 0, 5};
static const uint8_t client_ip[4] = {10, 137, 0, 20};
static const uint8_t remote_ip[4] = {192, 0, 2, 80};
static const uint8_t dns1_ip[4] = {10, 139, 1, 1};
static const uint8_t dns2_ip[4] = {10, 139, 1, 2};
static const uint8_t uplink_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x06};
static const uint8_t netvm_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t client_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00};
static const uint8_t fw_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ---- frames ---------------------------------------------------------------- */

static size_t put_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6])
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	store_be16(f + 12, 0x0800);
	return ETH_LEN;
}

static void put_ip4(uint8_t *h, uint8_t proto, const uint8_t src[4], const uint8_t dst[4],
		    size_t payload)
{
	memset(h, 0, IP4_LEN);
	h[0] = 0x45;
	store_be16(h + 2, (uint16_t)(IP4_LEN + payload));
	store_be16(h + 4, 0x1234);
	store_be16(h + 6, 0x4000); /* DF, as TCP stacks send */
	h[8] = 64;
	h[9] = proto;
	memcpy(h + 12, src, 4);
	memcpy(h + 16, dst, 4);
	store_be16(h + 10, csum_buf(h, IP4_LEN));
}

/* TCP/IPv4 segment with n bytes of payload. */
static size_t tcp4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
		   const uint8_t dst[4], uint16_t sport, uint16_t dport, uint8_t flags, size_t n)
{
	size_t o = put_eth(f, dmac, smac);
	uint8_t *t = f + o + IP4_LEN;
	memset(t, 0, TCP_LEN);
	store_be16(t, sport);
	store_be16(t + 2, dport);
	store_be32(t + 4, 1000);
	store_be32(t + 8, (flags & TCP_ACK) ? 2000 : 0);
	t[12] = 5 << 4;
	t[13] = flags;
	store_be16(t + 14, 65535);
	memset(t + TCP_LEN, 'x', n);
	uint32_t s = csum_pseudo_ipv4(src, dst, 6, (uint16_t)(TCP_LEN + n));
	store_be16(t + 16, csum_fold(csum_partial(t, TCP_LEN + n, s)));
	put_ip4(f + o, 6, src, dst, TCP_LEN + n);
	return o + IP4_LEN + TCP_LEN + n;
}

/* The client's UDP datagram to remote_ip as a template with both ports 0;
 * udp_flow() fills the ports in. *base is the checksum's running sum
 * without the ports (one's complement sums are linear in 16-bit words). */
static size_t udp_template(uint8_t *f, uint32_t *base)
{
	size_t o = put_eth(f, fw_mac, client_mac);
	uint8_t *u = f + o + IP4_LEN;
	memset(u, 0, UDP_LEN);
	store_be16(u + 4, UDP_LEN + PAYLOAD);
	memset(u + UDP_LEN, 'x', PAYLOAD);
	put_ip4(f + o, 17, client_ip, remote_ip, UDP_LEN + PAYLOAD);
	*base = csum_partial(u, UDP_LEN + PAYLOAD,
			     csum_pseudo_ipv4(client_ip, remote_ip, 17, UDP_LEN + PAYLOAD));
	return o + IP4_LEN + UDP_LEN + PAYLOAD;
}

/* Restores the template's headers into f and sets the flow's ports. */
static inline void udp_flow(uint8_t *f, const uint8_t *tmpl, uint32_t base, uint16_t sport,
			    uint16_t dport)
{
	memcpy(f, tmpl, UDP_HDRS);
	uint8_t *u = f + ETH_LEN + IP4_LEN;
	store_be16(u, sport);
	store_be16(u + 2, dport);
	uint16_t c = csum_fold(base + sport + dport);
	store_be16(u + 6, c ? c : 0xffff);
}

/* ---- the world ------------------------------------------------------------- */

/* Transmit callback: counts; copies the frame only while `capture` is set
 * (during set-up, never in a measured loop). */
struct port {
	uint64_t frames;
	bool capture;
	size_t len;
	uint8_t frame[FRAME_BYTES];
};

static bool port_tx(void *ctx, const uint8_t *frame, size_t len)
{
	struct port *p = ctx;
	p->frames++;
	if (p->capture && len <= sizeof(p->frame)) {
		memcpy(p->frame, frame, len);
		p->len = len;
	}
	return true;
}

enum world_kind { W_EST_ONLY, W_NEW_RULES, W_FULL };

struct world {
	enum world_kind kind;
	void *mem;
	struct arena arena;
	struct router *r;
	struct port up, cl;
	int id;
	struct rule_set rules;
	uint64_t now;
	uint32_t table;
	/* The established TCP flow: a data segment each way. */
	uint16_t nat_port;
	size_t est_orig_len, est_reply_len;
	uint8_t est_orig[FRAME_BYTES], est_reply[FRAME_BYTES];
	/* UDP flows from the client. */
	size_t udp_len;
	uint32_t udp_base;
	uint8_t udp_tmpl[FRAME_BYTES];
	/* Filler flows i < n_fill: fill_sport(i), fill_dport(i). */
	uint32_t n_fill;
};

static void set_rules(struct world *w, const char *const *rules, size_t n)
{
	struct rules_entry *e = calloc(n + 1, sizeof(*e));
	char(*keys)[8] = calloc(n + 1, sizeof(*keys));
	if (!e || !keys)
		die("out of memory");
	e[0] = (struct rules_entry){"policy", 6, "drop", 4};
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(keys[i], sizeof(keys[i]), "%04zu", i);
		e[i + 1] = (struct rules_entry){keys[i], 4, rules[i], strlen(rules[i])};
	}
	const struct ip_addr dns[2] = {ip_from_v4(dns1_ip), ip_from_v4(dns2_ip)};
	if (rules_parse(&w->rules, RULE_FAMILY_V4, e, n + 1, dns, 2) != RULES_OK) {
		(void)fprintf(stderr, "rules: %s\n", w->rules.error);
		die("rules did not parse");
	}
	if (w->rules.n_rules != n)
		die("rule count differs");
	router_set_rules(w->r, w->id, false, &w->rules);
	free(keys);
	free(e);
}

static struct world *world_create(uint32_t table)
{
	struct world *w = calloc(1, sizeof(*w));
	if (!w)
		die("out of memory");
	struct router_config cfg;
	router_config_default(&cfg);
	cfg.max_clients = 4;
	cfg.conntrack_size = table;
	size_t need = router_memory_needed(&cfg);
	w->mem = malloc(need);
	if (!w->mem)
		die("out of memory for the router");
	arena_init(&w->arena, w->mem, need);
	if (!router_init(&w->r, &w->arena, &cfg))
		die("router_init failed");
	w->table = table;

	struct router_net_config nc = {0};
	nc.our_ip4 = ip_from_v4(our_ip);
	nc.gateway4 = ip_from_v4(netvm_ip);
	nc.dns[0] = ip_from_v4(dns1_ip);
	nc.dns[1] = ip_from_v4(dns2_ip);
	router_set_net_config(w->r, &nc);

	struct router_uplink_params up = {.mtu = 1500, .transmit = port_tx, .transmit_ctx = &w->up};
	memcpy(up.mac, uplink_mac, 6);
	router_set_uplink(w->r, &up);

	struct router_client_params cp = {.domid = 7, .devid = 0, .has_ip4 = true, .mtu = 1500,
					  .transmit = port_tx, .transmit_ctx = &w->cl};
	memcpy(cp.mac, client_mac, 6);
	cp.ip4 = ip_from_v4(client_ip);
	w->id = router_add_client(w->r, &cp);
	if (w->id < 0)
		die("router_add_client failed");
	w->now = 1000 * NS;
	w->udp_len = udp_template(w->udp_tmpl, &w->udp_base);
	return w;
}

static void world_free(struct world *w)
{
	if (!w)
		return;
	free(w->mem);
	free(w);
}

static uint32_t table_in_use(struct world *w)
{
	struct ct_stats st;
	conntrack_get_stats(router_conntrack(w->r), &st);
	return st.in_use;
}

static void accept_all(struct world *w)
{
	static const char *const all[] = {"action=accept"};
	set_rules(w, all, 1);
}

/* A full handshake from the client to remote_ip:80, then the data segments
 * each way of the established connection. */
static void establish_tcp(struct world *w)
{
	uint8_t f[FRAME_BYTES];
	struct packet p;
	w->up.capture = w->cl.capture = true;
	uint64_t up0 = w->up.frames, cl0 = w->cl.frames;

	router_input_client(w->r, w->id, f,
			    tcp4(f, client_mac, fw_mac, client_ip, remote_ip, 40000, 80, TCP_SYN, 0),
			    0, w->now);
	if (w->up.frames != up0 + 1 || packet_parse(w->up.frame, w->up.len, &p) != PKT_OK)
		die("the SYN was not forwarded");
	w->nat_port = p.src_port;
	router_input_uplink(w->r, f,
			    tcp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 80, w->nat_port,
				 TCP_SYN | TCP_ACK, 0),
			    0, w->now);
	if (w->cl.frames != cl0 + 1 || packet_parse(w->cl.frame, w->cl.len, &p) != PKT_OK ||
	    p.dst_port != 40000)
		die("the SYN+ACK was not forwarded");
	router_input_client(w->r, w->id, f,
			    tcp4(f, client_mac, fw_mac, client_ip, remote_ip, 40000, 80, TCP_ACK, 0),
			    0, w->now);
	if (w->up.frames != up0 + 2)
		die("the ACK was not forwarded");

	w->est_orig_len = tcp4(w->est_orig, client_mac, fw_mac, client_ip, remote_ip, 40000, 80,
			       TCP_ACK | TCP_PSH, PAYLOAD);
	w->est_reply_len = tcp4(w->est_reply, netvm_mac, uplink_mac, remote_ip, our_ip, 80,
				w->nat_port, TCP_ACK | TCP_PSH, PAYLOAD);
	/* One of each, checked with every checksum. */
	memcpy(f, w->est_orig, w->est_orig_len);
	router_input_client(w->r, w->id, f, w->est_orig_len, 0, w->now);
	if (w->up.frames != up0 + 3 || packet_parse(w->up.frame, w->up.len, &p) != PKT_OK ||
	    p.src_port != w->nat_port)
		die("the data segment was not forwarded");
	memcpy(f, w->est_reply, w->est_reply_len);
	router_input_uplink(w->r, f, w->est_reply_len, 0, w->now);
	if (w->cl.frames != cl0 + 2 || packet_parse(w->cl.frame, w->cl.len, &p) != PKT_OK ||
	    p.dst_port != 40000)
		die("the reply segment was not forwarded");
	w->up.capture = w->cl.capture = false;
}

/* Filler flow i: 1,000 destination ports, so that each (remote, port) pair
 * holds at most 1,000 of the 64,512 NAT ports. */
static uint16_t fill_sport(uint32_t i)
{
	return (uint16_t)(1024 + i / 1000);
}

static uint16_t fill_dport(uint32_t i)
{
	return (uint16_t)(10000 + i % 1000);
}

/* Fills the table to capacity with UDP flows pushed through the router
 * (new connections: rules, NAT port allocation, insert). No eviction: the
 * last filler makes the table exactly full. */
static void fill_table(struct world *w)
{
	uint8_t f[FRAME_BYTES];
	uint32_t have = table_in_use(w);
	if (have >= w->table)
		die("table already full");
	w->n_fill = w->table - have;
	uint64_t up0 = w->up.frames;
	for (uint32_t i = 0; i < w->n_fill; i++) {
		udp_flow(f, w->udp_tmpl, w->udp_base, fill_sport(i), fill_dport(i));
		memcpy(f + UDP_HDRS, w->udp_tmpl + UDP_HDRS, w->udp_len - UDP_HDRS);
		router_input_client(w->r, w->id, f, w->udp_len, 0, w->now);
	}
	if (w->up.frames != up0 + w->n_fill || table_in_use(w) != w->table)
		die("filling the table lost packets");
}

/* ---- measured loops -------------------------------------------------------- */

/* Each returns the frames that came out (must be n). */

static uint64_t loop_est_client(struct world *w, uint64_t n)
{
	uint8_t f[FRAME_BYTES];
	uint64_t before = w->up.frames;
	memcpy(f, w->est_orig, w->est_orig_len);
	for (uint64_t i = 0; i < n; i++) {
		memcpy(f, w->est_orig, TCP_HDRS);
		router_input_client(w->r, w->id, f, w->est_orig_len, 0, w->now);
	}
	return w->up.frames - before;
}

static uint64_t loop_est_reply(struct world *w, uint64_t n)
{
	uint8_t f[FRAME_BYTES];
	uint64_t before = w->cl.frames;
	memcpy(f, w->est_reply, w->est_reply_len);
	for (uint64_t i = 0; i < n; i++) {
		memcpy(f, w->est_reply, TCP_HDRS);
		router_input_uplink(w->r, f, w->est_reply_len, 0, w->now);
	}
	return w->cl.frames - before;
}

static uint32_t gcd32(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Established UDP packets over every filler flow, in an order that jumps
 * through the table (a fixed stride coprime with the flow count visits each
 * flow once per round, and the hash spreads them over the index anyway). */
static uint64_t loop_spread(struct world *w, uint64_t n)
{
	uint8_t f[FRAME_BYTES];
	uint64_t before = w->up.frames;
	uint32_t m = w->n_fill;
	uint32_t step = m / 2 + m / 8 + 1;
	while (gcd32(step, m) != 1)
		step++;
	memcpy(f, w->udp_tmpl, w->udp_len);
	uint32_t k = 0;
	for (uint64_t i = 0; i < n; i++) {
		k += step;
		if (k >= m)
			k -= m;
		udp_flow(f, w->udp_tmpl, w->udp_base, fill_sport(k), fill_dport(k));
		router_input_client(w->r, w->id, f, w->udp_len, 0, w->now);
	}
	return w->up.frames - before;
}

/* New flows: flow j has source port 1024 + j / 64 and destination port
 * 10000 + j % 64 (all accepted by the last rule); w->n_fill counts the
 * flows used so far so that a second call opens new ones again. */
static uint64_t loop_new(struct world *w, uint64_t n)
{
	uint8_t f[FRAME_BYTES];
	uint64_t before = w->up.frames;
	memcpy(f, w->udp_tmpl, w->udp_len);
	uint32_t j = w->n_fill;
	for (uint64_t i = 0; i < n; i++, j++) {
		udp_flow(f, w->udp_tmpl, w->udp_base, (uint16_t)(1024 + j / 64),
			 (uint16_t)(10000 + j % 64));
		router_input_client(w->r, w->id, f, w->udp_len, 0, w->now);
	}
	w->n_fill = j;
	return w->up.frames - before;
}

/* 99 rules that each fail on one test (protocol, address, port, ICMP),
 * then the accepting rule: every new flow walks all 100 (first match wins). */
static void hundred_rules(struct world *w)
{
	static char text[100][96];
	const char *rules[100];
	for (unsigned k = 0; k < 99; k++) {
		switch (k % 4) {
		case 0:
			(void)snprintf(text[k], sizeof(text[k]),
				 "action=drop proto=tcp dst4=192.0.2.0/24 dstports=10000-10063");
			break;
		case 1:
			(void)snprintf(text[k], sizeof(text[k]), "action=drop dst4=198.51.100.%u/32", k);
			break;
		case 2:
			(void)snprintf(text[k], sizeof(text[k]),
				 "action=drop proto=udp dst4=192.0.2.0/24 dstports=%u-%u", 20000 + k,
				 20000 + k);
			break;
		default:
			(void)snprintf(text[k], sizeof(text[k]), "action=drop proto=icmp icmptype=8");
			break;
		}
		rules[k] = text[k];
	}
	(void)snprintf(text[99], sizeof(text[99]),
		 "action=accept proto=udp dst4=192.0.2.0/24 dstports=10000-10063");
	rules[99] = text[99];
	set_rules(w, rules, 100);
}

/* ---- cases ----------------------------------------------------------------- */

struct bench_case {
	const char *name;
	const char *what;
	enum world_kind kind;
	uint32_t table;
	uint64_t packets; /* per timed run */
	uint64_t (*loop)(struct world *w, uint64_t n);
};

/* Capacity for the new-connection case: larger than every packet it sends
 * (timed or under callgrind), so nothing is evicted. */
#define NEW_TABLE 262144u
#define NEW_PACKETS 200000u

static const struct bench_case cases[] = {
	{"a-est-tcp-client", "(a) established TCP data, client -> uplink, table 5,000 (1 flow)",
	 W_EST_ONLY, 5000, 5000000, loop_est_client},
	{"a-est-tcp-reply", "established TCP data, uplink -> client (reply direction)",
	 W_EST_ONLY, 5000, 5000000, loop_est_reply},
	{"b-new-udp-100rules", "(b) new UDP flow per packet, accepted by the 100th rule",
	 W_NEW_RULES, NEW_TABLE, NEW_PACKETS, loop_new},
	{"c-est-tcp-5k", "(c) case (a) with the table full: 5,000 entries", W_FULL, 5000, 5000000,
	 loop_est_client},
	{"c-est-tcp-1m", "(c) case (a) with the table full: 1,000,000 entries", W_FULL, 1000000,
	 5000000, loop_est_client},
	{"c-spread-udp-5k", "(c) established UDP over all 4,999 flows of a full 5,000 table",
	 W_FULL, 5000, 2000000, loop_spread},
	{"c-spread-udp-1m", "(c) established UDP over all 999,999 flows of a full 1,000,000 table",
	 W_FULL, 1000000, 2000000, loop_spread},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static struct world *world_for(const struct bench_case *c)
{
	struct world *w = world_create(c->table);
	w->kind = c->kind;
	switch (c->kind) {
	case W_EST_ONLY:
		accept_all(w);
		establish_tcp(w);
		break;
	case W_NEW_RULES:
		hundred_rules(w);
		break;
	case W_FULL:
		accept_all(w);
		establish_tcp(w);
		fill_table(w);
		break;
	}
	return w;
}

static const struct bench_case *find_case(const char *name)
{
	for (size_t i = 0; i < N_CASES; i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	return NULL;
}

static void check_forwarded(const struct bench_case *c, struct world *w, uint64_t out, uint64_t n)
{
	if (out == n)
		return;
	(void)fprintf(stderr, "bench_engine: %s: %llu of %llu packets forwarded\n", c->name,
		(unsigned long long)out, (unsigned long long)n);
	const struct router_counters *g = router_global_counters(w->r);
	for (unsigned d = 0; d < DROP_REASON_COUNT; d++)
		if (g->drops[d])
			(void)fprintf(stderr, "  drop %s: %llu\n", router_drop_str((enum router_drop)d),
				(unsigned long long)g->drops[d]);
	exit(1);
}

static int run_callgrind(const char *name, const char *count)
{
	const struct bench_case *c = find_case(name);
	char *end;
	unsigned long long n = strtoull(count, &end, 10);
	if (!c || *end || n == 0 || (c->kind == W_NEW_RULES && n > NEW_TABLE))
		die("usage: bench_engine --callgrind CASE N (N > 0; see --list)");
	struct world *w = world_for(c);
	CALLGRIND_START_INSTRUMENTATION;
	uint64_t out = c->loop(w, n);
	CALLGRIND_STOP_INSTRUMENTATION;
	check_forwarded(c, w, out, n);
	(void)printf("%s: %llu packets forwarded\n", c->name, n);
	world_free(w);
	return 0;
}

static void run_timed(const struct bench_case *c, struct world **cache, int repeat)
{
	double best = 0;
	for (int r = 0; r < repeat; r++) {
		struct world *w = *cache;
		/* New connections need an empty table each time; the others reuse
		 * the world of the previous case when it is the same. */
		if (c->kind == W_NEW_RULES || !w || w->kind != c->kind || w->table != c->table) {
			world_free(w);
			w = *cache = world_for(c);
		}
		double t = cpu_seconds();
		uint64_t out = c->loop(w, c->packets);
		t = cpu_seconds() - t;
		check_forwarded(c, w, out, c->packets);
		if (r == 0 || t < best)
			best = t;
	}
	(void)printf("%-20s %10llu %9.3f %12.0f %10.1f\n", c->name, (unsigned long long)c->packets, best,
	       (double)c->packets / best, best * 1e9 / (double)c->packets);
	(void)fflush(stdout);
}

static void usage(void)
{
	(void)fprintf(stderr, "usage: bench_engine [--repeat R] [CASE...]\n"
			"       bench_engine --list\n"
			"       bench_engine --callgrind CASE N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const uint8_t seed[32] = {0x62, 0x65, 0x6e, 0x63, 0x68}; /* fixed: "bench" */
	csprng_seed(seed, sizeof(seed));
	int repeat = 3;
	int first = 1;
	if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < N_CASES; i++)
			(void)printf("%-20s %s\n", cases[i].name, cases[i].what);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--callgrind") == 0) {
		if (argc != 4)
			usage();
		return run_callgrind(argv[2], argv[3]);
	}
	if (argc >= 3 && strcmp(argv[1], "--repeat") == 0) {
		repeat = atoi(argv[2]);
		if (repeat < 1)
			usage();
		first = 3;
	}
	for (int i = first; i < argc; i++)
		if (!find_case(argv[i]))
			usage();

	(void)printf("# router, -O2, process CPU time, best of %d; payload %u bytes (TCP frames %u, "
	       "UDP frames %u)\n",
	       repeat, (unsigned)PAYLOAD, (unsigned)(TCP_HDRS + PAYLOAD),
	       (unsigned)(UDP_HDRS + PAYLOAD));
	(void)printf("%-20s %10s %9s %12s %10s\n", "case", "packets", "seconds", "packets/s", "ns/packet");
	struct world *cache = NULL;
	for (size_t i = 0; i < N_CASES; i++) {
		bool wanted = first >= argc;
		for (int j = first; j < argc; j++)
			wanted = wanted || strcmp(argv[j], cases[i].name) == 0;
		if (wanted)
			run_timed(&cases[i], &cache, repeat);
	}
	world_free(cache);
	return 0;
}
