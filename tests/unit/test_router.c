/* test_router.c — the data path end to end on real frames: frames are built
 * here byte by byte (independently of the net builders), pushed into the
 * router, and the frames that come out are checked with full parsing
 * (checksums included) and field by field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/clock.h"
#include "base/csprng.h"
#include "base/log.h"
#include "fw/conntrack.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "net/packet.h"

#include "frames.h"
#include "unit_router_world.h"

#define NS 1000000000ull

/* ---- captured output ------------------------------------------------------ */

/* ---- the world ------------------------------------------------------------ */

static const uint8_t our_ip[4] = {10, 137, 0, 6};
static const uint8_t netvm_ip[4] = {10, 137, 0, 5};
static const uint8_t c1_ip[4] = {10, 137, 0, 20};
static const uint8_t c2_ip[4] = {10, 137, 0, 21};
static const uint8_t remote_ip[4] = {192, 0, 2, 80};
static const uint8_t dns_ip[4] = {10, 139, 1, 1};
static const uint8_t uplink_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x06};
static const uint8_t netvm_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t c1_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00};
static const uint8_t fw_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t c1_ip6[16] = {0xfd, 0x09, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 0x14};
static const uint8_t our_ip6[16] = {0xfd, 0x09, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 0x06};
static const uint8_t gw_ip6[16] = {0xfd, 0x09, 0x24, 0xef, 0x41, 0x79, 0, 0, 0, 0, 0, 0, 0x0a, 0x89, 0, 0x05};
static const uint8_t remote_ip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80};

struct world {
	struct tf_router w;
	struct router *r;
	struct tf_capture up, c1, c2;
	int id1, id2;
	struct rule_set rules1, rules2, rules1_v6;
	uint64_t now;
};

static struct world *W;

static void set_rules(struct rule_set *set, int client, bool v6, const char *const *rules)
{
	struct ip_addr dns[2] = {ip_from_v4(dns_ip), ip_from_v4((const uint8_t[]){10, 139, 1, 2})};
	tf_router_rules(&W->w, set, client, v6, rules, dns, 2);
}

static int setup(void **state)
{
	W = calloc(1, sizeof(*W));
	struct router_net_config nc = {0};
	nc.our_ip4 = ip_from_v4(our_ip);
	nc.gateway4 = ip_from_v4(netvm_ip);
	nc.dns[0] = ip_from_v4(dns_ip);
	nc.dns[1] = ip_from_v4((const uint8_t[]){10, 139, 1, 2});
	nc.has_ip6 = true;
	nc.our_ip6 = ip_from_v6(our_ip6);
	nc.gateway6 = ip_from_v6(gw_ip6);
	tf_router_start(&W->w, 4, 64, &nc);
	W->r = W->w.r;
	tf_router_uplink(&W->w, uplink_mac, &W->up);

	struct router_client_params cp = {.domid = 7, .devid = 0, .has_ip4 = true, .mtu = 1500,
					  .transmit = tf_capture_tx, .transmit_ctx = &W->c1};
	memcpy(cp.mac, c1_mac, 6);
	cp.ip4 = ip_from_v4(c1_ip);
	cp.has_ip6 = true;
	cp.ip6 = ip_from_v6(c1_ip6);
	W->id1 = router_add_client(W->r, &cp);
	assert_true(W->id1 >= 0);
	W->id2 = tf_router_client(&W->w, 8, c1_mac, c2_ip, &W->c2);
	W->now = 1000 * NS;
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tf_router_stop(&W->w);
	free(W);
	return 0;
}

static void clear_captures(void)
{
	W->up.n = W->c1.n = W->c2.n = 0;
}

/* ---- frame construction ---------------------------------------------------- */

static void push_client(int id, uint8_t *f, size_t len)
{
	router_input_client(W->r, id, f, len, 0, W->now);
}

static void push_uplink(uint8_t *f, size_t len)
{
	router_input_uplink(W->r, f, len, 0, W->now);
}

static void accept_all(int id)
{
	static const char *const all[] = {"action=accept", NULL};
	set_rules(id == W->id1 ? &W->rules1 : &W->rules2, id, false, all);
}

/* ---- ARP ------------------------------------------------------------------- */

static void test_arp_answers_everything_but_own_address(void **state)
{
	(void)state;
	uint8_t f[128];
	clear_captures();
	push_client(W->id1, f, tf_arp_req(f, c1_mac, c1_ip, our_ip));
	push_client(W->id1, f, tf_arp_req(f, c1_mac, c1_ip, remote_ip));
	push_client(W->id1, f, tf_arp_req(f, c1_mac, c1_ip, c1_ip)); /* its own: no answer */
	assert_int_equal(W->c1.n, 2);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.family, PACKET_ARP);
	assert_int_equal(p.arp.op, 2);
	assert_memory_equal(p.arp.sha, fw_mac, 6);
	assert_memory_equal(p.arp.spa, our_ip, 4);
	assert_memory_equal(p.arp.tpa, c1_ip, 4);
	assert_memory_equal(W->c1.frame[0], c1_mac, 6);
	p = tf_parse_ok(&W->c1, 1);
	assert_memory_equal(p.arp.spa, remote_ip, 4);
	assert_int_equal(W->up.n, 0);
}

static void test_arp_from_spoofed_sender_ignored(void **state)
{
	(void)state;
	uint8_t f[128];
	clear_captures();
	push_client(W->id1, f, tf_arp_req(f, c1_mac, c2_ip, our_ip));
	assert_int_equal(W->c1.n, 0);
	assert_true(router_client_counters(W->r, W->id1)->drops[DROP_SPOOFED] > 0);
}

static void test_uplink_arp(void **state)
{
	(void)state;
	uint8_t f[128];
	/* The router asks for the gateway's MAC on its own, a bounded number
	 * of times. */
	clear_captures();
	for (unsigned i = 0; i < 10; i++)
		router_tick(W->r, W->now + i * NS);
	assert_int_equal(W->up.n, 3);
	struct packet p = tf_parse_ok(&W->up, 0);
	assert_int_equal(p.arp.op, 1);
	assert_memory_equal(p.arp.tpa, netvm_ip, 4);
	assert_memory_equal(p.arp.spa, our_ip, 4);
	/* It answers the netvm's question for our address. */
	clear_captures();
	push_uplink(f, tf_arp_req(f, netvm_mac, netvm_ip, our_ip));
	assert_int_equal(W->up.n, 1);
	p = tf_parse_ok(&W->up, 0);
	assert_int_equal(p.arp.op, 2);
	assert_memory_equal(p.arp.sha, uplink_mac, 6);
	assert_memory_equal(p.arp.spa, our_ip, 4);
	/* ...and not for other addresses. */
	clear_captures();
	push_uplink(f, tf_arp_req(f, netvm_mac, netvm_ip, c1_ip));
	assert_int_equal(W->up.n, 0);
}

/* ---- forwarding with NAT ------------------------------------------------------- */

static void test_udp_nat_round_trip(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 40000, 53, 20, 64));
	assert_int_equal(W->up.n, 1);
	struct packet p = tf_parse_ok(&W->up, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), remote_ip, 4);
	assert_int_equal(p.dst_port, 53);
	assert_int_equal(p.ttl, 63);
	assert_memory_equal(W->up.frame[0], netvm_mac, 6);
	assert_memory_equal(W->up.frame[0] + 6, uplink_mac, 6);
	uint16_t nat_port = p.src_port;
	assert_true(nat_port >= 1024);

	/* The answer comes back to the client with its own addresses. */
	clear_captures();
	push_uplink(f, tf_udp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 53, nat_port, 40, 60));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), remote_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	assert_int_equal(p.src_port, 53);
	assert_int_equal(p.dst_port, 40000);
	assert_int_equal(p.ttl, 59);
	assert_memory_equal(W->c1.frame[0], c1_mac, 6);
	assert_memory_equal(W->c1.frame[0] + 6, fw_mac, 6);

	/* A datagram to a port nobody opened goes nowhere. */
	clear_captures();
	push_uplink(f, tf_udp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 53, nat_port ^ 1, 40, 60));
	assert_int_equal(W->c1.n + W->c2.n + W->up.n, 0);
}

static void test_tcp_and_ping_nat(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_tcp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 33000, 80, 0x02));
	assert_int_equal(W->up.n, 1);
	struct packet p = tf_parse_ok(&W->up, 0);
	uint16_t nat_port = p.src_port;
	clear_captures();
	push_uplink(f, tf_tcp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 80, nat_port, 0x12));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.dst_port, 33000);
	assert_int_equal(p.tcp_flags, 0x12);

	clear_captures();
	push_client(W->id1, f, tf_echo4(f, c1_mac, fw_mac, c1_ip, remote_ip, 8, 0x4242, 64));
	assert_int_equal(W->up.n, 1);
	p = tf_parse_ok(&W->up, 0);
	uint16_t nat_id = p.icmp_id;
	clear_captures();
	push_uplink(f, tf_echo4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 0, nat_id, 64));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_id, 0x4242);
	assert_int_equal(p.icmp_type, 0);
}

static void test_rules_drop_answers_admin_prohibited(void **state)
{
	(void)state;
	uint8_t f[2048];
	static const char *const only_dns[] = {"action=accept specialtarget=dns", NULL};
	set_rules(&W->rules1, W->id1, false, only_dns);
	clear_captures();
	push_client(W->id1, f, tf_tcp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 33001, 443, 0x02));
	assert_int_equal(W->up.n, 0);
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.protocol, 1);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 13);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	/* DNS to the virtual server is allowed and NATed like anything else. */
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, dns_ip, 5353, 53, 30, 64));
	assert_int_equal(W->up.n, 1);
	p = tf_parse_ok(&W->up, 0);
	assert_memory_equal(ip_v4_bytes(&p.dst), dns_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
}

static void test_no_rules_means_drop(void **state)
{
	(void)state;
	uint8_t f[2048];
	router_set_rules(W->r, W->id2, false, NULL);
	clear_captures();
	push_client(W->id2, f, tf_udp4(f, c1_mac, fw_mac, c2_ip, remote_ip, 1000, 2000, 4, 64));
	assert_int_equal(W->up.n, 0);
	assert_true(router_client_counters(W->r, W->id2)->drops[DROP_RULES] > 0);
}

static void test_spoofed_client_source_dropped(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c2_ip, remote_ip, 1000, 2000, 4, 64));
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, remote_ip, remote_ip, 1000, 2000, 4, 64));
	assert_int_equal(W->up.n + W->c1.n + W->c2.n, 0);
	assert_int_equal(router_client_counters(W->r, W->id1)->drops[DROP_SPOOFED], 2);
}

static void test_uplink_spoofing_internal_sources_dropped(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_uplink(f, tf_udp4(f, netvm_mac, uplink_mac, c2_ip, our_ip, 1, 2, 4, 64));
	push_uplink(f, tf_udp4(f, netvm_mac, uplink_mac, our_ip, our_ip, 1, 2, 4, 64));
	push_uplink(f, tf_udp4(f, netvm_mac, uplink_mac, remote_ip, c1_ip, 1, 2, 4, 64));
	assert_int_equal(W->up.n + W->c1.n + W->c2.n, 0);
	assert_int_equal(router_uplink_counters(W->r)->drops[DROP_SPOOFED], 2);
}

static void test_client_to_client_isolated(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	accept_all(W->id2);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, c2_ip, 1000, 2000, 4, 64));
	push_client(W->id1, f, tf_echo4(f, c1_mac, fw_mac, c1_ip, c2_ip, 8, 1, 64));
	assert_int_equal(W->c2.n + W->up.n, 0);
	assert_int_equal(router_client_counters(W->r, W->id1)->drops[DROP_CLIENT_TO_CLIENT], 2);
}

static void test_ping_firewall_and_reject_other(void **state)
{
	(void)state;
	uint8_t f[2048];
	clear_captures();
	push_client(W->id1, f, tf_echo4(f, c1_mac, fw_mac, c1_ip, our_ip, 8, 77, 64));
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 0);
	assert_int_equal(p.icmp_id, 77);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	/* Anything else to the firewall is refused with an ICMP error. */
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, our_ip, 1000, 53, 4, 64));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 3);
	/* The netvm side may ping us too. */
	clear_captures();
	push_uplink(f, tf_echo4(f, netvm_mac, uplink_mac, netvm_ip, our_ip, 8, 5, 64));
	assert_int_equal(W->up.n, 1);
	p = tf_parse_ok(&W->up, 0);
	assert_int_equal(p.icmp_type, 0);
}

static void test_ttl_expiry_sends_time_exceeded(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 33434, 33434, 8, 1));
	assert_int_equal(W->up.n, 0);
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 11);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	/* A TTL of 2 goes through with 1 left (traceroute's next hop). */
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 33435, 33435, 8, 2));
	assert_int_equal(W->up.n, 1);
	assert_int_equal(tf_parse_ok(&W->up, 0).ttl, 1);
}

static void test_icmp_error_from_outside_translated(void **state)
{
	(void)state;
	uint8_t f[2048], g[2048];
	accept_all(W->id1);
	clear_captures();
	size_t n = tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 41000, 9999, 12, 64);
	push_client(W->id1, f, n);
	assert_int_equal(W->up.n, 1);
	/* The remote host answers with port unreachable quoting what it got. */
	const uint8_t *sent = W->up.frame[0] + 14;
	size_t o = tf_eth(g, uplink_mac, netvm_mac, 0x0800);
	uint8_t *icmp = g + o + 20;
	memset(icmp, 0, 8);
	icmp[0] = 3;
	icmp[1] = 3;
	memcpy(icmp + 8, sent, 28);
	tf_l4_csum4(icmp, 36, 1, remote_ip, our_ip, 2);
	tf_ip4_hdr(g + o, 1, remote_ip, our_ip, 36, 50, 0);
	memcpy(g, uplink_mac, 6);
	memcpy(g + 6, netvm_mac, 6);
	clear_captures();
	push_uplink(g, o + 20 + 36);
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0), inner;
	assert_int_equal(p.icmp_type, 3);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	assert_int_equal(packet_parse_embedded(W->c1.frame[0], W->c1.len[0], &p, &inner), PKT_OK);
	assert_memory_equal(ip_v4_bytes(&inner.src), c1_ip, 4);
	assert_int_equal(inner.src_port, 41000);
	/* The quoted IPv4 header checksum is right again. */
	assert_int_equal(csum_buf(W->c1.frame[0] + inner.l3_off, 20), 0);
	/* An error quoting nothing we sent is dropped. */
	store_be16(icmp + 8 + 20, 1);
	tf_l4_csum4(icmp, 36, 1, remote_ip, our_ip, 2);
	clear_captures();
	push_uplink(g, o + 20 + 36);
	assert_int_equal(W->c1.n, 0);
}

static void test_multicast_from_client_dropped_quietly(void **state)
{
	(void)state;
	uint8_t f[2048];
	static const uint8_t mdns[4] = {239, 255, 255, 250};
	accept_all(W->id1);
	log_reset();
	clear_captures();
	/* CVE-2022-46770's packet: must cost nothing and log nothing. */
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, mdns, 5353, 5353, 607, 64));
	assert_int_equal(W->up.n + W->c1.n, 0);
	char line[LOG_LINE_MAX + 16];
	assert_int_equal(log_drain_line(line, sizeof(line)), 0);
}

static void test_rule_change_ends_only_blocked_connections(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_tcp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 34000, 80, 0x02));
	push_client(W->id1, f, tf_tcp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 34001, 22, 0x02));
	assert_int_equal(W->up.n, 2);
	uint16_t port80 = tf_parse_ok(&W->up, 0).src_port, port22 = tf_parse_ok(&W->up, 1).src_port;
	static const char *const web_only[] = {"action=accept proto=tcp dstports=80-80", NULL};
	set_rules(&W->rules1, W->id1, false, web_only);
	clear_captures();
	push_uplink(f, tf_tcp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 80, port80, 0x10));
	push_uplink(f, tf_tcp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 22, port22, 0x10));
	assert_int_equal(W->c1.n, 1);
	assert_int_equal(tf_parse_ok(&W->c1, 0).src_port, 80);
}

static void test_nat_table_full_evicts_and_keeps_working(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	/* Four times the table's capacity of new flows: never stalls, the
	 * newest always get through. */
	for (unsigned i = 0; i < 256; i++) {
		W->up.n = 0;
		push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, (uint16_t)(2000 + i),
					 7000, 4, 64));
		assert_int_equal(W->up.n, 1);
	}
	struct ct_stats st;
	conntrack_get_stats(router_conntrack(W->r), &st);
	assert_true(st.in_use <= st.capacity);
	assert_true(st.evictions > 0);
}

static void test_nat_port_exhaustion_drops(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	conntrack_set_nat_port_range(router_conntrack(W->r), 5000, 5001);
	clear_captures();
	for (unsigned i = 0; i < 5; i++)
		push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, (uint16_t)(3000 + i),
					 7001, 4, 64));
	assert_int_equal(W->up.n, 2);
	assert_int_equal(router_client_counters(W->r, W->id1)->drops[DROP_NAT_EXHAUSTED], 3);
}

static void test_csum_blank_completed(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	size_t n = tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 45000, 80, 100, 64);
	/* A partial checksum as Linux netfront leaves it: pseudo-header only. */
	store_be16(f + 14 + 20 + 6, (uint16_t)~csum_fold(csum_pseudo_ipv4(c1_ip, remote_ip, 17, 108)));
	clear_captures();
	router_input_client(W->r, W->id1, f, n, ROUTER_RX_CSUM_BLANK, W->now);
	assert_int_equal(W->up.n, 1);
	tf_parse_ok(&W->up, 0); /* full verification passes */
}

/* A TCP SYN with options as Linux netfront sends it: csum_blank, the
 * checksum field holding only the pseudo-header sum. Both directions of
 * the handshake must leave with complete, correct checksums. */
static void test_csum_blank_tcp_handshake(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	size_t o = tf_eth(f, fw_mac, c1_mac, 0x0800);
	uint8_t *t = f + o + 20;
	memset(t, 0, 40);
	store_be16(t, 51000);
	store_be16(t + 2, 7777);
	store_be32(t + 4, 12345);
	t[12] = 10 << 4;
	t[13] = 0x02;
	store_be16(t + 14, 64240);
	static const uint8_t opts[20] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
	memcpy(t + 20, opts, 20);
	tf_ip4_hdr(f + o, 6, c1_ip, remote_ip, 40, 64, 0x4000);
	store_be16(t + 16, (uint16_t)~csum_fold(csum_pseudo_ipv4(c1_ip, remote_ip, 6, 40)));
	clear_captures();
	router_input_client(W->r, W->id1, f, o + 60, ROUTER_RX_CSUM_BLANK, W->now);
	assert_int_equal(W->up.n, 1);
	struct packet p = tf_parse_ok(&W->up, 0);
	uint16_t nat_port = p.src_port;
	/* SYN-ACK from the server, also csum_blank (a Linux netvm may send it so). */
	o = tf_eth(f, uplink_mac, netvm_mac, 0x0800);
	t = f + o + 20;
	memset(t, 0, 40);
	store_be16(t, 7777);
	store_be16(t + 2, nat_port);
	t[12] = 10 << 4;
	t[13] = 0x12;
	memcpy(t + 20, opts, 20);
	tf_ip4_hdr(f + o, 6, remote_ip, our_ip, 40, 64, 0x4000);
	store_be16(t + 16, (uint16_t)~csum_fold(csum_pseudo_ipv4(remote_ip, our_ip, 6, 40)));
	clear_captures();
	router_input_uplink(W->r, f, o + 60, ROUTER_RX_CSUM_BLANK, W->now);
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.dst_port, 51000);
	/* The client's ACK, csum_blank again (the fast path's turn). */
	o = tf_eth(f, fw_mac, c1_mac, 0x0800);
	t = f + o + 20;
	memset(t, 0, 20);
	store_be16(t, 51000);
	store_be16(t + 2, 7777);
	t[12] = 5 << 4;
	t[13] = 0x10;
	tf_ip4_hdr(f + o, 6, c1_ip, remote_ip, 20, 64, 0x4000);
	store_be16(t + 16, (uint16_t)~csum_fold(csum_pseudo_ipv4(c1_ip, remote_ip, 6, 20)));
	for (int i = 0; i < 3; i++) {
		uint8_t g[2048];
		memcpy(g, f, o + 40);
		clear_captures();
		router_input_client(W->r, W->id1, g, o + 40, ROUTER_RX_CSUM_BLANK, W->now);
		assert_int_equal(W->up.n, 1);
		tf_parse_ok(&W->up, 0);
	}
}

static void test_fragments_reassembled_and_forwarded(void **state)
{
	(void)state;
	uint8_t f[2048], whole[4096];
	accept_all(W->id1);
	/* A 2000-byte UDP datagram in two fragments. */
	size_t payload = 2000;
	uint8_t *u = whole;
	store_be16(u, 46000);
	store_be16(u + 2, 9000);
	store_be16(u + 4, (uint16_t)(8 + payload));
	for (size_t i = 0; i < payload; i++)
		u[8 + i] = (uint8_t)i;
	tf_l4_csum4(u, 8 + payload, 17, c1_ip, remote_ip, 6);
	size_t first = 1480, rest = 8 + payload - first;
	clear_captures();
	size_t o = tf_eth(f, fw_mac, c1_mac, 0x0800);
	memcpy(f + o + 20, u, first);
	tf_ip4_hdr(f + o, 17, c1_ip, remote_ip, first, 64, 0x2000);
	push_client(W->id1, f, o + 20 + first);
	assert_int_equal(W->up.n, 0);
	memcpy(f + o + 20, u + first, rest);
	tf_ip4_hdr(f + o, 17, c1_ip, remote_ip, rest, 64, (uint16_t)(first / 8));
	push_client(W->id1, f, o + 20 + rest);
	/* Re-fragmented to the uplink's MTU: two fragments again. */
	assert_int_equal(W->up.n, 2);
	struct packet p0, p1;
	assert_int_equal(packet_parse(W->up.frame[0], W->up.len[0], &p0), PKT_OK);
	assert_int_equal(packet_parse(W->up.frame[1], W->up.len[1], &p1), PKT_OK);
	assert_true(p0.is_fragment && p1.is_fragment);
	assert_memory_equal(ip_v4_bytes(&p0.src), our_ip, 4);
	assert_int_equal(p0.frag_offset + p0.l3_len - p0.l3_hdr_len, p1.frag_offset);
}

static void test_df_too_big_gets_frag_needed(void **state)
{
	(void)state;
	static uint8_t f[4096];
	accept_all(W->id1);
	/* A client with a larger MTU than the uplink sends 1600 bytes with DF. */
	size_t n = tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 47000, 9000, 1600 - 28, 64);
	store_be16(f + 14 + 6, 0x4000);
	store_be16(f + 14 + 10, 0);
	store_be16(f + 14 + 10, csum_buf(f + 14, 20));
	clear_captures();
	push_client(W->id1, f, n);
	assert_int_equal(W->up.n, 0);
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 4);
	assert_int_equal(p.icmp_rest & 0xffff, 1500);
}

/* ---- IPv6 -------------------------------------------------------------------- */

static void test_ipv6_nat_and_rules(void **state)
{
	(void)state;
	uint8_t f[2048];
	static const char *const v6rules[] = {"action=accept dst6=2001:db8::/32 proto=udp", NULL};
	set_rules(&W->rules1_v6, W->id1, true, v6rules);
	clear_captures();
	push_client(W->id1, f, tf_udp6(f, c1_mac, fw_mac, c1_ip6, remote_ip6, 50000, 443, 10));
	assert_int_equal(W->up.n, 1);
	struct packet p = tf_parse_ok(&W->up, 0);
	assert_memory_equal(p.src.b, our_ip6, 16);
	assert_int_equal(p.ttl, 63);
	uint16_t nat_port = p.src_port;
	clear_captures();
	push_uplink(f, tf_udp6(f, netvm_mac, uplink_mac, remote_ip6, our_ip6, 443, nat_port, 10));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_memory_equal(p.dst.b, c1_ip6, 16);
	assert_int_equal(p.dst_port, 50000);
	/* Outside the allowed prefix: ICMPv6 admin prohibited. */
	uint8_t other[16];
	memcpy(other, remote_ip6, 16);
	other[1] = 0x02;
	clear_captures();
	push_client(W->id1, f, tf_udp6(f, c1_mac, fw_mac, c1_ip6, other, 50001, 443, 10));
	assert_int_equal(W->up.n, 0);
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.protocol, 58);
	assert_int_equal(p.icmp_type, 1);
	assert_int_equal(p.icmp_code, 1);
}

/* A neighbour solicitation for target from src (with its MAC as the
 * source link-layer option), to the solicited-node group. */
static size_t ns6(uint8_t *f, const uint8_t smac[6], const uint8_t src[16], const uint8_t target[16])
{
	uint8_t mc[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13], target[14], target[15]};
	uint8_t dmac[6] = {0x33, 0x33, 0xff, target[13], target[14], target[15]};
	size_t o = tf_eth(f, dmac, smac, 0x86dd);
	uint8_t *h = f + o, *m = h + 40;
	memset(h, 0, 40);
	h[0] = 0x60;
	store_be16(h + 4, 32);
	h[6] = 58;
	h[7] = 255;
	memcpy(h + 8, src, 16);
	memcpy(h + 24, mc, 16);
	memset(m, 0, 32);
	m[0] = 135;
	memcpy(m + 8, target, 16);
	m[24] = 1;
	m[25] = 1;
	memcpy(m + 26, smac, 6);
	uint16_t c = csum_fold(csum_partial(m, 32, csum_pseudo_ipv6(src, mc, 58, 32)));
	store_be16(m + 2, c);
	return o + 40 + 32;
}

static void test_ipv6_neighbour_solicitation_answered(void **state)
{
	(void)state;
	uint8_t f[2048];
	clear_captures();
	push_client(W->id1, f, ns6(f, c1_mac, c1_ip6, gw_ip6));
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 136);
	assert_true(p.nd_lladdr_off != 0);
	assert_memory_equal(W->c1.frame[0] + p.nd_lladdr_off, fw_mac, 6);
	assert_memory_equal(W->c1.frame[0] + p.nd_target_off, gw_ip6, 16);
	/* Not for the client's own address (duplicate address detection). */
	clear_captures();
	push_client(W->id1, f, ns6(f, c1_mac, c1_ip6, c1_ip6));
	assert_int_equal(W->c1.n, 0);
}

static void test_ipv6_uplink_neighbour_solicitation(void **state)
{
	(void)state;
	uint8_t f[2048];
	static const uint8_t netvm_ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff};
	clear_captures();
	push_uplink(f, ns6(f, netvm_mac, netvm_ll, our_ip6));
	assert_int_equal(W->up.n, 1);
	struct packet p = tf_parse_ok(&W->up, 0);
	assert_int_equal(p.icmp_type, 136);
	assert_memory_equal(p.src.b, our_ip6, 16);
	assert_memory_equal(p.dst.b, netvm_ll, 16);
	assert_memory_equal(W->up.frame[0] + p.nd_lladdr_off, uplink_mac, 6);
	/* Other targets are not ours to answer on the uplink. */
	clear_captures();
	push_uplink(f, ns6(f, netvm_mac, netvm_ll, c1_ip6));
	assert_int_equal(W->up.n, 0);
}

static void test_removed_client_connections_gone(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id2);
	clear_captures();
	push_client(W->id2, f, tf_udp4(f, c1_mac, fw_mac, c2_ip, remote_ip, 6000, 6001, 4, 64));
	assert_int_equal(W->up.n, 1);
	uint16_t nat_port = tf_parse_ok(&W->up, 0).src_port;
	router_remove_client(W->r, W->id2);
	clear_captures();
	push_uplink(f, tf_udp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 6001, nat_port, 4, 64));
	assert_int_equal(W->c2.n, 0);
	assert_null(router_client_counters(W->r, W->id2));
}

static void test_address_change_ends_nat_connections(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 41500, 53, 8, 64));
	assert_int_equal(W->up.n, 1);
	struct ct_stats st;
	conntrack_get_stats(router_conntrack(W->r), &st);
	assert_int_equal(st.in_use, 1);
	/* dom0 gives the firewall another address (a new netvm network). */
	static const uint8_t new_ip[4] = {10, 137, 0, 66};
	struct router_net_config nc = {0};
	nc.our_ip4 = ip_from_v4(new_ip);
	nc.gateway4 = ip_from_v4(netvm_ip);
	nc.dns[0] = ip_from_v4(dns_ip);
	nc.dns[1] = ip_from_v4(dns_ip);
	router_set_net_config(W->r, &nc);
	conntrack_get_stats(router_conntrack(W->r), &st);
	assert_int_equal(st.in_use, 0);
	/* The same flow goes out again from the new address, never the old. */
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 41500, 53, 8, 64));
	assert_int_equal(W->up.n, 1);
	struct packet p = tf_parse_ok(&W->up, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), new_ip, 4);
}

static void test_garbage_frames_counted_not_forwarded(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	size_t n = tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 1, 2, 40, 64);
	clear_captures();
	for (size_t len = 0; len < n; len++)
		push_client(W->id1, f, len); /* every truncation */
	f[14 + 10] ^= 0xff;              /* bad IPv4 header checksum */
	push_client(W->id1, f, n);
	assert_int_equal(W->up.n + W->c1.n, 0);
	assert_true(router_client_counters(W->r, W->id1)->drops[DROP_MALFORMED] > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_arp_answers_everything_but_own_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_from_spoofed_sender_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_arp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_nat_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_and_ping_nat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_drop_answers_admin_prohibited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_rules_means_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spoofed_client_source_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_spoofing_internal_sources_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_to_client_isolated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping_firewall_and_reject_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_expiry_sends_time_exceeded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_error_from_outside_translated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multicast_from_client_dropped_quietly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rule_change_ends_only_blocked_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nat_table_full_evicts_and_keeps_working, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nat_port_exhaustion_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csum_blank_completed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csum_blank_tcp_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragments_reassembled_and_forwarded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_df_too_big_gets_frag_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_nat_and_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_neighbour_solicitation_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_uplink_neighbour_solicitation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_client_connections_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_change_ends_nat_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_frames_counted_not_forwarded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
