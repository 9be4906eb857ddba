/* test_router_manual.c — manual mode with a netvm attached as a client
 * (qubes-protocols.md §7.2, §7.5-7.6): no uplink device, a "bsd" client
 * whose address is the configured gateway. Traffic towards the netvm must
 * leave on that client's link (NATed, to its MAC), frames it relays with
 * other sources must be handled as uplink traffic, its own traffic as a
 * client's. Frames are built here byte by byte and the output is parsed
 * with every checksum verified. */
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
#include "base/csprng.h"
#include "fw/conntrack.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "net/packet.h"

#include "frames.h"
#include "unit_router_world.h"

#define NS 1000000000ull

/* ---- the world: --ipv4=10.137.0.6 --ipv4-gw=10.137.0.50 ------------------ */

static const uint8_t our_ip[4] = {10, 137, 0, 6};
static const uint8_t bsd_ip[4] = {10, 137, 0, 50}; /* the gateway, a client */
static const uint8_t c1_ip[4] = {10, 137, 0, 20};
static const uint8_t remote_ip[4] = {192, 0, 2, 80};
static const uint8_t dns_ip[4] = {10, 139, 1, 1};
static const uint8_t bsd_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x50};
static const uint8_t c1_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00};
static const uint8_t fw_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t uplink_mac[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x06};
static const uint8_t netvm_mac[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};

struct world {
	struct tf_router w;
	struct router *r;
	struct tf_capture up, c1, bsd;
	int id1, bsd_id;
	struct rule_set rules1, rules_bsd;
	uint64_t now;
	/* what the local UDP receiver got */
	unsigned local_n;
	struct ip_addr local_src;
	uint16_t local_sport, local_dport;
	size_t local_len;
};

static struct world *W;

static void set_rules(struct rule_set *set, int client, const char *const *rules)
{
	struct ip_addr dns[1] = {ip_from_v4(dns_ip)};
	tf_router_rules(&W->w, set, client, false, rules, dns, 1);
}

static void accept_all(int id)
{
	static const char *const all[] = {"action=accept", NULL};
	set_rules(id == W->id1 ? &W->rules1 : &W->rules_bsd, id, all);
}

static int add_bsd(void)
{
	return tf_router_client(&W->w, 9, bsd_mac, bsd_ip, &W->bsd);
}

static int setup(void **state)
{
	W = calloc(1, sizeof(*W));
	struct router_net_config nc = {0};
	nc.our_ip4 = ip_from_v4(our_ip);
	nc.gateway4 = ip_from_v4(bsd_ip);
	nc.dns[0] = ip_from_v4(dns_ip);
	nc.dns[1] = ip_from_v4(dns_ip);
	/* No uplink: there is no netvm device. */
	tf_router_start(&W->w, 4, 64, &nc);
	W->r = W->w.r;
	W->id1 = tf_router_client(&W->w, 7, c1_mac, c1_ip, &W->c1);
	W->bsd_id = add_bsd();
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
	W->up.n = W->c1.n = W->bsd.n = 0;
}

static void add_uplink(void)
{
	tf_router_uplink(&W->w, uplink_mac, &W->up);
}

/* ---- frame construction ---------------------------------------------------- */

/* An ICMP error (type, code) from src to our address quoting the first 28
 * bytes of the IP packet quoted_ip. */
static size_t icmp_err4(uint8_t *g, const uint8_t src[4], uint8_t type, uint8_t code,
			const uint8_t *quoted_ip)
{
	size_t o = tf_eth(g, fw_mac, bsd_mac, 0x0800);
	uint8_t *icmp = g + o + 20;
	memset(icmp, 0, 8);
	icmp[0] = type;
	icmp[1] = code;
	memcpy(icmp + 8, quoted_ip, 28);
	tf_l4_csum4(icmp, 36, 1, src, our_ip, 2);
	tf_ip4_hdr(g + o, 1, src, our_ip, 36, 50, 0);
	return o + 20 + 36;
}

static void push_client(int id, uint8_t *f, size_t len)
{
	router_input_client(W->r, id, f, len, 0, W->now);
}

/* c1 sends a UDP datagram to remote; returns the NAT port it left with
 * on the bsd link (checked). */
static uint16_t c1_udp_out(uint16_t sport)
{
	uint8_t f[2048];
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, sport, 53, 20, 64));
	assert_int_equal(W->bsd.n, 1);
	assert_int_equal(W->c1.n + W->up.n, 0);
	struct packet p = tf_parse_ok(&W->bsd, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), remote_ip, 4);
	assert_int_equal(p.dst_port, 53);
	assert_int_equal(p.ttl, 63);
	assert_memory_equal(W->bsd.frame[0], bsd_mac, 6);
	assert_memory_equal(W->bsd.frame[0] + 6, fw_mac, 6);
	assert_true(p.src_port >= 1024);
	return p.src_port;
}

/* ---- the tests --------------------------------------------------------------- */

static void test_udp_round_trip_through_gateway_client(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	uint16_t nat_port = c1_udp_out(40000);
	const struct router_counters *bc = router_client_counters(W->r, W->bsd_id);
	assert_int_equal(bc->frames_out, 1);
	assert_int_equal(router_uplink_counters(W->r)->frames_out, 0);

	/* The answer, relayed by the bsd VM, reaches c1 with its addresses. */
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 53, nat_port, 40, 60));
	assert_int_equal(W->c1.n, 1);
	assert_int_equal(W->bsd.n + W->up.n, 0);
	struct packet p = tf_parse_ok(&W->c1, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), remote_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	assert_int_equal(p.src_port, 53);
	assert_int_equal(p.dst_port, 40000);
	assert_int_equal(p.ttl, 59);
	assert_memory_equal(W->c1.frame[0], c1_mac, 6);
	/* Counted where the frame really came in. */
	assert_int_equal(bc->frames_in, 1);
	assert_int_equal(router_uplink_counters(W->r)->frames_in, 0);

	/* A datagram to a port nobody opened goes nowhere, counted as from
	 * the uplink side. */
	clear_captures();
	push_client(W->bsd_id, f,
		    tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 53, (uint16_t)(nat_port ^ 1), 40, 60));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(bc->drops[DROP_NO_CONNECTION], 1);
	assert_int_equal(bc->drops[DROP_SPOOFED], 0);
}

static void test_many_packets_both_ways(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	uint16_t nat_port = c1_udp_out(40001);
	for (unsigned i = 0; i < 20; i++) {
		clear_captures();
		push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 40001, 53, 20, 64));
		assert_int_equal(W->bsd.n, 1);
		assert_int_equal(tf_parse_ok(&W->bsd, 0).src_port, nat_port);
		assert_memory_equal(W->bsd.frame[0], bsd_mac, 6);
		clear_captures();
		push_client(W->bsd_id, f,
			    tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 53, nat_port, 10, 60));
		assert_int_equal(W->c1.n, 1);
		assert_int_equal(tf_parse_ok(&W->c1, 0).dst_port, 40001);
	}
}

static void test_ping_through_gateway_client(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	clear_captures();
	push_client(W->id1, f, tf_echo4(f, c1_mac, fw_mac, c1_ip, remote_ip, 8, 321, 64));
	assert_int_equal(W->bsd.n, 1);
	struct packet p = tf_parse_ok(&W->bsd, 0);
	assert_int_equal(p.icmp_type, 8);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	uint16_t id = p.icmp_id;
	clear_captures();
	push_client(W->bsd_id, f, tf_echo4(f, bsd_mac, fw_mac, remote_ip, our_ip, 0, id, 60));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 0);
	assert_int_equal(p.icmp_id, 321);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
}

static void test_icmp_error_from_gateway_link_translated(void **state)
{
	(void)state;
	uint8_t g[2048];
	accept_all(W->id1);
	c1_udp_out(41000);
	uint8_t sent[28];
	memcpy(sent, W->bsd.frame[0] + 14, 28);

	/* Port unreachable from the remote host, relayed by the bsd VM. */
	clear_captures();
	push_client(W->bsd_id, g, icmp_err4(g, remote_ip, 3, 3, sent));
	assert_int_equal(W->c1.n, 1);
	struct packet p = tf_parse_ok(&W->c1, 0), inner;
	assert_int_equal(p.icmp_type, 3);
	assert_memory_equal(ip_v4_bytes(&p.src), remote_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	assert_int_equal(packet_parse_embedded(W->c1.frame[0], W->c1.len[0], &p, &inner), PKT_OK);
	assert_memory_equal(ip_v4_bytes(&inner.src), c1_ip, 4);
	assert_int_equal(inner.src_port, 41000);
	assert_int_equal(csum_buf(W->c1.frame[0] + inner.l3_off, 20), 0);

	/* Time exceeded from the bsd router itself (its own address) about
	 * our packet: a router's error, translated the same way. */
	clear_captures();
	push_client(W->bsd_id, g, icmp_err4(g, bsd_ip, 11, 0, sent));
	assert_int_equal(W->c1.n, 1);
	p = tf_parse_ok(&W->c1, 0);
	assert_int_equal(p.icmp_type, 11);
	assert_memory_equal(ip_v4_bytes(&p.src), bsd_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), c1_ip, 4);
	assert_int_equal(packet_parse_embedded(W->c1.frame[0], W->c1.len[0], &p, &inner), PKT_OK);
	assert_memory_equal(ip_v4_bytes(&inner.src), c1_ip, 4);

	/* An error quoting nothing we sent is dropped. */
	sent[20] ^= 1;
	clear_captures();
	push_client(W->bsd_id, g, icmp_err4(g, remote_ip, 3, 3, sent));
	push_client(W->bsd_id, g, icmp_err4(g, bsd_ip, 3, 3, sent));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
}

static void test_internal_sources_from_gateway_link_dropped(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	uint16_t nat_port = c1_udp_out(42000);
	const struct router_counters *bc = router_client_counters(W->r, W->bsd_id);
	clear_captures();
	/* Another client's address and ours: QSB-56 anti-spoofing. */
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, c1_ip, our_ip, 53, nat_port, 4, 64));
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, our_ip, our_ip, 53, nat_port, 4, 64));
	push_client(W->bsd_id, f, tf_echo4(f, bsd_mac, fw_mac, c1_ip, our_ip, 8, 1, 64));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(bc->drops[DROP_SPOOFED], 3);
	/* From outside but not to us: not ours to route. */
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, remote_ip, c1_ip, 53, 42000, 4, 64));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(bc->drops[DROP_NOT_FOR_US], 1);
	/* A normal client may still not relay anyone's traffic. */
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, remote_ip, our_ip, 53, nat_port, 4, 64));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(router_client_counters(W->r, W->id1)->drops[DROP_SPOOFED], 1);
}

static void test_outside_pings_us_and_gets_answer_on_that_link(void **state)
{
	(void)state;
	uint8_t f[2048];
	clear_captures();
	push_client(W->bsd_id, f, tf_echo4(f, bsd_mac, fw_mac, remote_ip, our_ip, 8, 9, 64));
	assert_int_equal(W->bsd.n, 1);
	assert_int_equal(W->c1.n + W->up.n, 0);
	struct packet p = tf_parse_ok(&W->bsd, 0);
	assert_int_equal(p.icmp_type, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), remote_ip, 4);
	assert_memory_equal(W->bsd.frame[0], bsd_mac, 6);
	/* Other traffic to us from outside is dropped silently (uplink
	 * behaviour), not answered like a client's. */
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 1000, 7, 4, 64));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(router_client_counters(W->r, W->bsd_id)->drops[DROP_NO_CONNECTION], 1);
}

static void test_expiring_reply_gets_time_exceeded_on_gateway_link(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	uint16_t nat_port = c1_udp_out(43000);
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 53, nat_port, 4, 1));
	assert_int_equal(W->c1.n + W->up.n, 0);
	assert_int_equal(W->bsd.n, 1);
	struct packet p = tf_parse_ok(&W->bsd, 0);
	assert_int_equal(p.icmp_type, 11);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), remote_ip, 4);
	assert_memory_equal(W->bsd.frame[0], bsd_mac, 6);
	assert_int_equal(router_client_counters(W->r, W->bsd_id)->drops[DROP_TTL], 1);
}

static void test_gateway_own_traffic_follows_its_rules(void **state)
{
	(void)state;
	uint8_t f[2048];
	/* No rules yet: its own connections are refused like any client's. */
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, bsd_ip, remote_ip, 5000, 80, 4, 64));
	assert_int_equal(W->bsd.n, 1);
	struct packet p = tf_parse_ok(&W->bsd, 0);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 13);
	assert_memory_equal(ip_v4_bytes(&p.dst), bsd_ip, 4);
	const struct router_counters *bc = router_client_counters(W->r, W->bsd_id);
	assert_int_equal(bc->drops[DROP_RULES], 1);
	/* It may ping the firewall; anything else to us gets the client's
	 * admin-prohibited answer. */
	clear_captures();
	push_client(W->bsd_id, f, tf_echo4(f, bsd_mac, fw_mac, bsd_ip, our_ip, 8, 3, 64));
	assert_int_equal(W->bsd.n, 1);
	assert_int_equal(tf_parse_ok(&W->bsd, 0).icmp_type, 0);
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, bsd_ip, our_ip, 5000, 53, 4, 64));
	assert_int_equal(W->bsd.n, 1);
	assert_int_equal(tf_parse_ok(&W->bsd, 0).icmp_type, 3);
	/* Client isolation holds for it too. */
	accept_all(W->bsd_id);
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, bsd_ip, c1_ip, 5000, 53, 4, 64));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(bc->drops[DROP_CLIENT_TO_CLIENT], 1);
	/* With rules allowing it, its connection is NATed and leaves on the
	 * way out, which is its own link. */
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, bsd_ip, remote_ip, 5001, 80, 4, 64));
	assert_int_equal(W->bsd.n, 1);
	p = tf_parse_ok(&W->bsd, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), remote_ip, 4);
	uint16_t nat_port = p.src_port;
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 80, nat_port, 4, 64));
	assert_int_equal(W->bsd.n, 1);
	p = tf_parse_ok(&W->bsd, 0);
	assert_memory_equal(ip_v4_bytes(&p.dst), bsd_ip, 4);
	assert_int_equal(p.dst_port, 5001);
}

static void test_rules_of_normal_client_still_apply(void **state)
{
	(void)state;
	uint8_t f[2048];
	static const char *const only_dns[] = {"action=accept proto=udp dstports=53-53", NULL};
	set_rules(&W->rules1, W->id1, only_dns);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 40000, 54, 4, 64));
	assert_int_equal(W->bsd.n, 0);
	assert_int_equal(W->c1.n, 1);
	assert_int_equal(tf_parse_ok(&W->c1, 0).icmp_type, 3);
	c1_udp_out(40002);
}

static void test_uplink_takes_over_and_back(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	add_uplink();
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 44000, 53, 4, 64));
	assert_int_equal(W->up.n, 1);
	assert_int_equal(W->bsd.n, 0);
	struct packet p = tf_parse_ok(&W->up, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(W->up.frame[0] + 6, uplink_mac, 6);
	uint16_t nat_port = p.src_port;
	/* Replies come from the uplink now; the bsd client is a client again. */
	clear_captures();
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 53, nat_port, 4, 64));
	assert_int_equal(W->c1.n, 0);
	assert_int_equal(router_client_counters(W->r, W->bsd_id)->drops[DROP_SPOOFED], 1);
	router_input_uplink(W->r, f,
			    tf_udp4(f, netvm_mac, uplink_mac, remote_ip, our_ip, 53, nat_port, 4, 64),
			    0, W->now);
	assert_int_equal(W->c1.n, 1);
	/* Without the uplink, the bsd link is the way out again, for the
	 * connection that already exists too. */
	router_clear_uplink(W->r);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 44000, 53, 4, 64));
	assert_int_equal(W->bsd.n, 1);
	assert_int_equal(tf_parse_ok(&W->bsd, 0).src_port, nat_port);
	assert_memory_equal(W->bsd.frame[0], bsd_mac, 6);
}

static void test_no_gateway_client_no_way_out(void **state)
{
	(void)state;
	uint8_t f[2048];
	accept_all(W->id1);
	router_remove_client(W->r, W->bsd_id);
	clear_captures();
	push_client(W->id1, f, tf_udp4(f, c1_mac, fw_mac, c1_ip, remote_ip, 45000, 53, 4, 64));
	assert_int_equal(W->c1.n + W->bsd.n + W->up.n, 0);
	assert_int_equal(router_client_counters(W->r, W->id1)->drops[DROP_NO_UPLINK], 1);
	/* It comes back (a restart of the bsd VM): traffic flows again. */
	W->bsd_id = add_bsd();
	assert_true(W->bsd_id >= 0);
	c1_udp_out(45001);
}

static void local_udp(void *ctx, const struct ip_addr *src, uint16_t sport, uint16_t dport,
		      const uint8_t *payload, size_t len, uint64_t now_ns)
{
	(void)ctx;
	(void)payload;
	(void)now_ns;
	W->local_n++;
	W->local_src = *src;
	W->local_sport = sport;
	W->local_dport = dport;
	W->local_len = len;
}

static void test_resolver_traffic_uses_gateway_link(void **state)
{
	(void)state;
	uint8_t f[2048];
	router_set_local_udp(W->r, 60000, 60999, local_udp, NULL);
	struct ip_addr dns = ip_from_v4(dns_ip);
	clear_captures();
	assert_true(router_send_local_udp(W->r, &dns, 60001, 53, (const uint8_t *)"query", 5));
	assert_int_equal(W->bsd.n, 1);
	struct packet p = tf_parse_ok(&W->bsd, 0);
	assert_memory_equal(ip_v4_bytes(&p.src), our_ip, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), dns_ip, 4);
	assert_memory_equal(W->bsd.frame[0], bsd_mac, 6);
	assert_memory_equal(W->bsd.frame[0] + 6, fw_mac, 6);
	/* The answer relayed by the bsd VM reaches the resolver. */
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, dns_ip, our_ip, 53, 60001, 12, 64));
	assert_int_equal(W->local_n, 1);
	assert_memory_equal(ip_v4_bytes(&W->local_src), dns_ip, 4);
	assert_int_equal(W->local_dport, 60001);
	assert_int_equal(W->local_len, 12);
	/* The bsd VM's own datagrams to those ports are client traffic. */
	push_client(W->bsd_id, f, tf_udp4(f, bsd_mac, fw_mac, bsd_ip, our_ip, 53, 60001, 12, 64));
	assert_int_equal(W->local_n, 1);
	/* Without a way out it cannot send. */
	router_remove_client(W->r, W->bsd_id);
	assert_false(router_send_local_udp(W->r, &dns, 60001, 53, (const uint8_t *)"query", 5));
}

static void test_truncated_frames_from_gateway_link(void **state)
{
	(void)state;
	uint8_t f[2048], g[2048];
	accept_all(W->id1);
	uint16_t nat_port = c1_udp_out(46000);
	size_t n = tf_udp4(f, bsd_mac, fw_mac, remote_ip, our_ip, 53, nat_port, 30, 64);
	for (size_t len = 0; len < n; len++) {
		memcpy(g, f, n);
		clear_captures();
		push_client(W->bsd_id, g, len);
		assert_int_equal(W->c1.n + W->up.n, 0);
	}
	/* A bad IPv4 header checksum. */
	memcpy(g, f, n);
	g[14 + 10] ^= 0x40;
	push_client(W->bsd_id, g, n);
	assert_int_equal(W->c1.n, 0);
	/* And the intact frame still goes through. */
	memcpy(g, f, n);
	push_client(W->bsd_id, g, n);
	assert_int_equal(W->c1.n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_udp_round_trip_through_gateway_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_packets_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping_through_gateway_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_error_from_gateway_link_translated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_internal_sources_from_gateway_link_dropped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_outside_pings_us_and_gets_answer_on_that_link, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expiring_reply_gets_time_exceeded_on_gateway_link,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_own_traffic_follows_its_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_of_normal_client_still_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_takes_over_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_gateway_client_no_way_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolver_traffic_uses_gateway_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_frames_from_gateway_link, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
