/* fuzz_router.c — random frame sequences on random interfaces through the
 * whole data path. Input: records of [iface:1][flags:1][len:2 LE][bytes].
 * iface 0 = uplink, 1..2 = clients, 3 = clock tick, 4 = rules change.
 * Invariants: no crash or sanitizer report; every frame on the uplink comes
 * from our MAC and, when IP, from our address; every IP frame to a client
 * is addressed to that client (or is our ICMP/ND from the gateway); the
 * connection table stays within capacity. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/csprng.h"
#include "fw/conntrack.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t our_ip[4] = {10, 137, 0, 6};
static const uint8_t gw_ip[4] = {10, 137, 0, 5};
static const uint8_t c_ip[2][4] = {{10, 137, 0, 20}, {10, 137, 0, 21}};
static const uint8_t our_ip6[16] = {0xfd, 9, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 6};
static const uint8_t c_ip6[16] = {0xfd, 9, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 0x14};
static const uint8_t up_mac[6] = {0, 0x16, 0x3e, 0x5e, 0x6c, 6};

static struct router *R;
static int ids[2];
static struct rule_set sets[2][2];
static struct ip_addr client_addr[2][2];

static bool check_uplink(void *ctx, const uint8_t *f, size_t len)
{
	(void)ctx;
	struct packet p;
	if (len < 14 || memcmp(f + 6, up_mac, 6) != 0)
		abort();
	if (packet_parse(f, len, &p) == PKT_OK && (p.family == PACKET_IPV4 || p.family == PACKET_IPV6)) {
		struct ip_addr a = ip_from_v4(our_ip), b = ip_from_v6(our_ip6);
		if (!ip_equal(&p.src, &a) && !ip_equal(&p.src, &b))
			abort();
	}
	return true;
}

static bool check_client(void *ctx, const uint8_t *f, size_t len)
{
	int c = (int)(intptr_t)ctx;
	struct packet p;
	if (len < 14 || memcmp(f + 6, router_client_side_mac, 6) != 0)
		abort();
	if (packet_parse(f, len, &p) == PKT_OK && (p.family == PACKET_IPV4 || p.family == PACKET_IPV6)) {
		bool to_client = ip_equal(&p.dst, &client_addr[c][0]) || ip_equal(&p.dst, &client_addr[c][1]);
		/* Neighbour advertisements may go to the client's link-local address. */
		if (!to_client && !(p.has_l4 && p.icmp_is_nd))
			abort();
	}
	return true;
}

static void set_rules(int c, unsigned variant)
{
	static const char *const rule_text[4] = {"action=accept", "action=accept proto=tcp dstports=80-443",
						 "action=drop dst4=192.0.2.0/24", "action=accept proto=icmp"};
	for (int fam = 0; fam < 2; fam++) {
		struct rules_entry e[2] = {{"policy", 6, "drop", 4}, {"0000", 4, rule_text[variant & 3],
								       strlen(rule_text[variant & 3])}};
		if (fam == 1 && (variant & 3) == 2)
			e[1] = (struct rules_entry){"0000", 4, "action=accept", 13};
		rules_parse(&sets[c][fam], fam ? RULE_FAMILY_V6 : RULE_FAMILY_V4, e, 2, NULL, 0);
		router_set_rules(R, ids[c], fam == 1, &sets[c][fam]);
	}
}

static void init_world(void)
{
	static const uint8_t seed[32] = {9};
	csprng_seed(seed, sizeof(seed));
	struct router_config cfg;
	router_config_default(&cfg);
	cfg.max_clients = 2;
	cfg.conntrack_size = 32;
	cfg.client_reasm_bytes = 16 * 1024;
	cfg.uplink_reasm_bytes = 16 * 1024;
	size_t need = router_memory_needed(&cfg);
	static struct arena a;
	arena_init(&a, malloc(need), need);
	if (!router_init(&R, &a, &cfg))
		abort();
	struct router_net_config nc = {0};
	nc.our_ip4 = ip_from_v4(our_ip);
	nc.gateway4 = ip_from_v4(gw_ip);
	nc.dns[0] = ip_from_v4((const uint8_t[]){10, 139, 1, 1});
	nc.dns[1] = ip_from_v4((const uint8_t[]){10, 139, 1, 2});
	nc.has_ip6 = true;
	nc.our_ip6 = ip_from_v6(our_ip6);
	nc.gateway6 = ip_from_v6(our_ip6);
	nc.gateway6.b[15] = 5;
	router_set_net_config(R, &nc);
	struct router_uplink_params up = {.mtu = 1500, .transmit = check_uplink};
	memcpy(up.mac, up_mac, 6);
	router_set_uplink(R, &up);
	for (int c = 0; c < 2; c++) {
		struct router_client_params cp = {.domid = (uint32_t)(10 + c), .has_ip4 = true, .mtu = 1500,
						  .transmit = check_client,
						  .transmit_ctx = (void *)(intptr_t)c};
		memcpy(cp.mac, (const uint8_t[]){0, 0x16, 0x3e, 0x5e, 0x6c, 0}, 6);
		cp.ip4 = ip_from_v4(c_ip[c]);
		client_addr[c][0] = cp.ip4;
		client_addr[c][1] = cp.ip4;
		if (c == 0) {
			cp.has_ip6 = true;
			cp.ip6 = ip_from_v6(c_ip6);
			client_addr[c][1] = cp.ip6;
		}
		ids[c] = router_add_client(R, &cp);
		if (ids[c] < 0)
			abort();
		set_rules(c, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t now = 1000000000000ull;
	static uint8_t frame[2048];
	if (!R)
		init_world();
	size_t i = 0;
	while (i + 4 <= size) {
		uint8_t iface = data[i] % 5, flags = data[i + 1];
		size_t len = (size_t)data[i + 2] | (size_t)data[i + 3] << 8;
		i += 4;
		if (len > size - i)
			len = size - i;
		if (len > sizeof(frame))
			len = sizeof(frame);
		memcpy(frame, data + i, len);
		i += len;
		uint32_t rx = flags & ROUTER_RX_CSUM_BLANK;
		switch (iface) {
		case 0:
			router_input_uplink(R, frame, len, rx, now);
			break;
		case 1:
		case 2:
			router_input_client(R, ids[iface - 1], frame, len, rx, now);
			break;
		case 3:
			now += (uint64_t)flags * 1000000000ull;
			router_tick(R, now);
			break;
		case 4:
			set_rules(flags & 1, flags >> 1);
			break;
		}
	}
	struct ct_stats st;
	conntrack_get_stats(router_conntrack(R), &st);
	if (st.in_use > st.capacity)
		abort();
	return 0;
}
