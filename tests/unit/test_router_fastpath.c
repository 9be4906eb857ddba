/* test_router_fastpath.c — proof that the router's established-flow fast
 * path changes nothing but the cost: the same frame sequences go through a
 * router with router_config.fast_path off and one with it on, and every
 * frame out (interface and bytes), every counter and the connection-table
 * statistics must be identical after every step. The engine is the fuzz
 * target's (tests/fuzz/fuzz_router.c, included below): scripted sequences
 * here cover each case the fast path must hand back or get exactly right
 * (TTL 1 and 2, MTU and DF, csum_blank, UDP without checksum, broken
 * headers, options, fragments, expiry, eviction, rule changes, client
 * removal, address and uplink changes, the DNS observer, ICMP errors, the
 * reply direction), and pseudo-random sequences mix them. Each scripted
 * test also checks that the fast path really took frames. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../fuzz/fuzz_router.c"

struct seq {
	uint8_t b[16384];
	size_t n;
};

static void put9(struct seq *s, uint8_t op, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e,
		 uint8_t f, uint8_t g, uint8_t h)
{
	const uint8_t rec[9] = {op, a, b, c, d, e, f, g, h};
	assert_true(s->n + 9 <= sizeof(s->b));
	memcpy(s->b + s->n, rec, 9);
	s->n += 9;
}

/* A client packet: client, TCP?, TCP flags, remote (0-3), source port
 * (0-7), destination port index, TTL (< 8, else 64), payload / 8, mods. */
static void client_pkt(struct seq *s, int c, bool tcp, uint8_t flags, uint8_t remote,
		       uint8_t sport, uint8_t dport, uint8_t ttl, uint8_t plen8, uint8_t mods)
{
	put9(s, 5, (uint8_t)c, (uint8_t)((tcp ? 1 : 0) | flags << 1), remote, sport, dport, ttl,
	     plen8, mods);
}

/* A reply to the k-th last flow seen on the uplink. */
static void reply_pkt(struct seq *s, uint8_t k, uint8_t flags, uint8_t ttl, uint8_t plen8,
		      uint8_t mods)
{
	put9(s, 6, k, flags, ttl, plen8, mods, 0, 0, 0);
}

static void icmp_error(struct seq *s, uint8_t k, bool from_router, bool time_exceeded, uint8_t ttl)
{
	put9(s, 6, k, 0, ttl, 0, 0,
	     (uint8_t)(1 | (from_router ? 2 : 0) | (time_exceeded ? 4 : 0) | 3 << 3), 0, 0);
}

static void config(struct seq *s, uint8_t what, uint8_t a, uint8_t b)
{
	put9(s, 7, what, a, b, 0, 0, 0, 0, 0);
}

static void tick(struct seq *s, uint8_t seconds)
{
	const uint8_t rec[4] = {3, seconds, 0, 0};
	memcpy(s->b + s->n, rec, 4);
	s->n += 4;
}

/* Time passes without router_tick: expired entries stay in the table. */
static void advance(struct seq *s, uint8_t seconds)
{
	const uint8_t rec[4] = {3, seconds, 1, 0};
	memcpy(s->b + s->n, rec, 4);
	s->n += 4;
}

static void rules(struct seq *s, int c, uint8_t variant)
{
	const uint8_t rec[4] = {4, (uint8_t)(c | variant << 1), 0, 0};
	memcpy(s->b + s->n, rec, 4);
	s->n += 4;
}

#define TCP_F 0x01
#define TCP_S 0x02
#define TCP_R 0x04
#define TCP_P 0x08
#define TCP_A 0x10

/* Opens a TCP connection from client c (remote, ports) and answers it. */
static void handshake(struct seq *s, int c, uint8_t remote, uint8_t sport, uint8_t dport)
{
	client_pkt(s, c, true, TCP_S, remote, sport, dport, 64, 0, 1);
	reply_pkt(s, 0, TCP_S | TCP_A, 60, 0, 1);
	client_pkt(s, c, true, TCP_A, remote, sport, dport, 64, 0, 1);
}

/* Runs s both ways; fails on the first difference. Returns the frames the
 * fast path took. */
static uint64_t check_same(const struct seq *s)
{
	long k = router_diff_run(s->b, s->n);
	if (k >= 0)
		fail_msg("fast path differs from the general path after record %ld", k);
	return router_fast_path_frames(W.r);
}

static void test_established_tcp_both_ways(void **state)
{
	(void)state;
	static struct seq s;
	s.n = 0;
	handshake(&s, 0, 0, 1, 0);
	for (uint8_t i = 0; i < 20; i++) {
		client_pkt(&s, 0, true, TCP_A | TCP_P, 0, 1, 0, 64, (uint8_t)(i * 7), 1);
		reply_pkt(&s, 0, TCP_A | (i & 1 ? TCP_P : 0), 60, (uint8_t)(i * 11), i & 1);
	}
	/* FIN from both sides and the last ACK. */
	client_pkt(&s, 0, true, TCP_F | TCP_A, 0, 1, 0, 64, 0, 1);
	reply_pkt(&s, 0, TCP_F | TCP_A, 60, 0, 1);
	client_pkt(&s, 0, true, TCP_A, 0, 1, 0, 64, 0, 1);
	client_pkt(&s, 0, true, TCP_R, 0, 1, 0, 64, 0, 1);
	client_pkt(&s, 0, true, TCP_A, 0, 1, 0, 64, 0, 1);
	assert_true(check_same(&s) >= 40);
}

static void test_ttl_mtu_and_flags(void **state)
{
	(void)state;
	static struct seq s;
	s.n = 0;
	handshake(&s, 0, 1, 2, 1);
	for (uint8_t ttl = 0; ttl < 4; ttl++) {
		client_pkt(&s, 0, true, TCP_A, 1, 2, 1, ttl, 3, 1);
		reply_pkt(&s, 0, TCP_A, ttl, 3, 0);
	}
	/* Around the MTU, with and without DF, then a smaller uplink MTU. */
	for (uint8_t p = 180; p < 190; p++) {
		client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, p, 1);
		client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, p, 0);
		reply_pkt(&s, 0, TCP_A, 60, p, 1);
		reply_pkt(&s, 0, TCP_A, 60, p, 0);
	}
	config(&s, 1, 0, 100); /* uplink MTU 976 */
	for (uint8_t p = 110; p < 125; p += 2) {
		client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, p, 1);
		client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, p, 0);
	}
	config(&s, 3, 0, 0);
	client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, 1, 1);
	/* Headers the fast path must leave to the general path: a bad IP
	 * checksum, options, a fragment, padding, a bad L4 checksum. */
	client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, 1, 1 | 0x04);
	client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, 1, 1 | 0x10);
	client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, 2, 0x40);
	client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, 1, 1 | 0x80);
	client_pkt(&s, 0, true, TCP_A, 1, 2, 1, 64, 1, 1 | 0x20);
	reply_pkt(&s, 0, TCP_A, 60, 1, 0x04);
	reply_pkt(&s, 0, TCP_A, 60, 1, 0x10);
	reply_pkt(&s, 0, TCP_A, 60, 1, 0x20 | 0x80);
	/* A packet of the flow from the other client (spoofed source). */
	client_pkt(&s, 1, true, TCP_A, 1, 2, 1, 64, 1, 0);
	put9(&s, 5, 0x80, (uint8_t)(1 | TCP_A << 1), 1, 2, 1, 64, 1, 0);
	/* A reply to a port that is not ours. */
	reply_pkt(&s, 0, TCP_A, 60, 1, 0x40);
	assert_true(check_same(&s) >= 20);
}

static void test_udp_checksums_and_csum_blank(void **state)
{
	(void)state;
	static struct seq s;
	s.n = 0;
	for (uint8_t sp = 0; sp < 4; sp++) {
		client_pkt(&s, 0, false, 0, 2, sp, 5, 64, sp, 0);
		for (uint8_t i = 0; i < 6; i++) {
			/* bit 1 csum_blank, bit 3 no UDP checksum, bit 5 wrong one */
			uint8_t mods = (uint8_t)((i & 1 ? 0x02 : 0) | (i & 2 ? 0x08 : 0) |
						 (i & 4 ? 0x20 : 0));
			client_pkt(&s, 0, false, 0, 2, sp, 5, 64, (uint8_t)(i * 5 + 1), mods);
			reply_pkt(&s, 0, 0, 60, (uint8_t)(i * 3), mods);
		}
	}
	/* Checksums whose update crosses 0x0000 / 0xffff: many payload sizes. */
	for (uint16_t i = 0; i < 120; i++) {
		client_pkt(&s, 1, i & 1, TCP_A, 3, 4, 6, 64, (uint8_t)i, (uint8_t)(i & 2 ? 0x20 : 0));
		reply_pkt(&s, 0, TCP_A, 60, (uint8_t)(i + 1), (uint8_t)(i & 4 ? 0x28 : 0));
	}
	assert_true(check_same(&s) >= 100);
}

static void test_expiry_eviction_and_rules(void **state)
{
	(void)state;
	static struct seq s;
	s.n = 0;
	client_pkt(&s, 0, false, 0, 0, 0, 1, 64, 1, 0);
	client_pkt(&s, 0, false, 0, 0, 0, 1, 64, 1, 0);
	tick(&s, 29);
	client_pkt(&s, 0, false, 0, 0, 0, 1, 64, 1, 0);
	tick(&s, 31);
	client_pkt(&s, 0, false, 0, 0, 0, 1, 64, 1, 0); /* expired: a new connection */
	reply_pkt(&s, 0, 0, 60, 1, 0);
	tick(&s, 200);
	reply_pkt(&s, 0, 0, 60, 1, 0); /* the entry expired under the cache */
	/* Expiry found by the packet itself, not by the sweep. */
	handshake(&s, 1, 2, 3, 4);
	client_pkt(&s, 1, true, TCP_A, 2, 3, 4, 64, 1, 1);
	reply_pkt(&s, 0, TCP_A, 60, 1, 1);
	client_pkt(&s, 0, false, 0, 1, 3, 4, 64, 1, 0);
	reply_pkt(&s, 0, 0, 60, 1, 0);
	advance(&s, 29);
	client_pkt(&s, 0, false, 0, 1, 3, 4, 64, 1, 0);
	reply_pkt(&s, 0, 0, 60, 1, 0);
	advance(&s, 181);
	client_pkt(&s, 0, false, 0, 1, 3, 4, 64, 1, 0); /* expired: a new connection */
	advance(&s, 255);
	reply_pkt(&s, 0, 0, 60, 1, 0);
	client_pkt(&s, 0, false, 0, 1, 3, 4, 64, 1, 0);
	reply_pkt(&s, 0, 0, 60, 1, 0);
	reply_pkt(&s, 0, 0, 60, 1, 0);
	advance(&s, 181);
	reply_pkt(&s, 0, 0, 60, 1, 0); /* expired under the uplink's cache */
	for (int k = 0; k < 8; k++) {
		advance(&s, 200);
		reply_pkt(&s, 1, 0, 60, 1, 0);
		client_pkt(&s, 0, false, 0, 1, 3, 4, 64, 1, 0);
	}
	/* More flows than the table holds (32): the oldest are evicted. */
	for (uint8_t i = 0; i < 48; i++) {
		client_pkt(&s, i & 1, true, TCP_S, i & 3, (uint8_t)(i >> 2), (uint8_t)(i >> 5), 64, 0,
			   1);
		client_pkt(&s, 0, false, 0, 0, 0, 1, 64, 1, 0);
		reply_pkt(&s, 1, TCP_S | TCP_A, 60, 0, 1);
	}
	/* D11: the new rules cut the connections they block. */
	handshake(&s, 0, 0, 7, 0);
	client_pkt(&s, 0, true, TCP_A, 0, 7, 0, 64, 2, 1);
	rules(&s, 0, 2);
	client_pkt(&s, 0, true, TCP_A, 0, 7, 0, 64, 2, 1);
	reply_pkt(&s, 0, TCP_A, 60, 2, 1);
	rules(&s, 0, 0);
	handshake(&s, 0, 0, 6, 0);
	rules(&s, 0, 1);
	client_pkt(&s, 0, true, TCP_A, 0, 6, 0, 64, 2, 1);
	assert_true(check_same(&s) >= 5);
}

static void test_configuration_changes(void **state)
{
	(void)state;
	static struct seq s;
	s.n = 0;
	for (uint8_t what = 0; what < 7; what++) {
		for (uint8_t a = 0; a < 2; a++) {
			handshake(&s, a, 2, (uint8_t)(what & 7), 1);
			client_pkt(&s, a, true, TCP_A, 2, (uint8_t)(what & 7), 1, 64, 4, 1);
			reply_pkt(&s, 0, TCP_A, 60, 4, 1);
			config(&s, what, (uint8_t)(a | (what == 0 ? 4 : 0)), 50);
			client_pkt(&s, a, true, TCP_A, 2, (uint8_t)(what & 7), 1, 64, 4, 1);
			reply_pkt(&s, 0, TCP_A, 60, 4, 1);
			client_pkt(&s, a, true, TCP_A, 2, (uint8_t)(what & 7), 1, 64, 140, 1);
			reply_pkt(&s, 0, TCP_A, 60, 140, 1);
			config(&s, 3, 0, 0);
			config(&s, 0, (uint8_t)(a | 2), 0);
			config(&s, 0, a, 0);
			config(&s, 4, 0, 0);
		}
	}
	/* The DNS observer sees answers from port 53 whichever path runs. */
	config(&s, 5, 0, 0);
	client_pkt(&s, 0, false, 0, 1, 3, 2, 64, 4, 0);
	reply_pkt(&s, 0, 0, 60, 6, 0);
	reply_pkt(&s, 0, 0, 60, 6, 0);
	client_pkt(&s, 0, false, 0, 1, 3, 2, 64, 4, 0);
	assert_true(check_same(&s) >= 10);
}

static void test_icmp_errors(void **state)
{
	(void)state;
	static struct seq s;
	s.n = 0;
	handshake(&s, 0, 3, 5, 3);
	client_pkt(&s, 0, true, TCP_A, 3, 5, 3, 64, 3, 1);
	icmp_error(&s, 0, false, false, 64);
	icmp_error(&s, 0, true, true, 64);
	icmp_error(&s, 0, true, true, 1);
	client_pkt(&s, 0, false, 0, 3, 5, 3, 64, 3, 0);
	icmp_error(&s, 0, false, false, 2);
	reply_pkt(&s, 0, 0, 60, 3, 0);
	client_pkt(&s, 0, true, TCP_A, 3, 5, 3, 64, 3, 1);
	assert_true(check_same(&s) >= 3);
}

/* Every value of the L4 checksum field, in both directions, for TCP and
 * UDP: some updates end at 0 or 0xffff (UDP's 0 becomes 0xffff, an
 * unchanged field must not be "updated"), all must match. */
static void test_every_checksum_value(void **state)
{
	(void)state;
	static struct seq s;
	for (int tcp = 0; tcp < 2; tcp++) {
		for (unsigned hi = 0; hi < 256; hi += 32) {
			s.n = 0;
			client_pkt(&s, 0, tcp, TCP_A, 1, 4, 6, 64, 1, 0);
			reply_pkt(&s, 0, TCP_A, 60, 1, 0);
			for (unsigned v = hi << 8; v < (hi + 32) << 8; v++) {
				put9(&s, 5, 0, (uint8_t)(tcp | TCP_A << 1), 1, 0x40 | 4, 6,
				     (uint8_t)(v >> 8), (uint8_t)v, 0);
				put9(&s, 6, 1, TCP_A, 60, 1, 0, 0x80, (uint8_t)(v >> 8), (uint8_t)v);
				if (s.n + 18 > sizeof(s.b)) {
					assert_true(check_same(&s) > 0);
					s.n = 0;
					client_pkt(&s, 0, tcp, TCP_A, 1, 4, 6, 64, 1, 0);
					reply_pkt(&s, 0, TCP_A, 60, 1, 0);
				}
			}
			assert_true(check_same(&s) > 0);
		}
	}
}

/* A flow whose NAT port is its own source port: the port does not change,
 * so it must not enter the checksum update. The CSPRNG is seeded the same
 * for every run, so the first flow's NAT port is known after one run. */
static void test_nat_port_unchanged(void **state)
{
	(void)state;
	static struct seq s;
	for (int tcp = 0; tcp < 2; tcp++) {
		s.n = 0;
		client_pkt(&s, 0, tcp, TCP_A, 1, 0, 6, 64, 1, 0);
		check_same(&s);
		assert_true(W.flow_len[0] > 0);
		const uint8_t *ip = W.flows[0] + 14;
		uint16_t nat = load_be16(ip + (size_t)(ip[0] & 0x0f) * 4);
		s.n = 0;
		for (unsigned v = 0; v < 300; v++) {
			put9(&s, 5, 0, (uint8_t)(tcp | TCP_A << 1), 1, 0x80, 6, (uint8_t)(nat >> 8),
			     (uint8_t)nat, 0);
			reply_pkt(&s, 0, TCP_A, 60, (uint8_t)v, (uint8_t)(v & 0x28));
		}
		assert_true(check_same(&s) >= 300);
		ip = W.flows[0] + 14;
		assert_int_equal(load_be16(ip + (size_t)(ip[0] & 0x0f) * 4), nat);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint8_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

/* Pseudo-random sequences weighted towards established traffic. */
static void test_random_sequences(void **state)
{
	(void)state;
	static struct seq s;
	uint64_t fast = 0;
	for (int round = 0; round < 300; round++) {
		s.n = 0;
		for (int k = 0; k < 120; k++) {
			uint8_t r = rnd();
			if (r < 110) {
				uint8_t f = rnd() & 0x1f;
				if (rnd() < 200)
					f = TCP_A | (f & TCP_P);
				client_pkt(&s, rnd() & 1, rnd() & 1, f, rnd() & 3, rnd() & 3, rnd() & 7,
					   rnd() < 30 ? rnd() & 7 : 64, rnd() < 40 ? rnd() : rnd() & 15,
					   rnd() < 60 ? rnd() : 1);
			} else if (r < 215) {
				uint8_t f = rnd() & 0x1f;
				if (rnd() < 200)
					f = TCP_A;
				if (rnd() < 20)
					icmp_error(&s, rnd() & 7, rnd() & 1, rnd() & 1,
						   rnd() < 40 ? rnd() & 3 : 64);
				else
					reply_pkt(&s, rnd() & 7, f, rnd() < 30 ? rnd() & 7 : 60,
						  rnd() < 40 ? rnd() : rnd() & 15,
						  rnd() < 60 ? rnd() : 0);
			} else if (r < 230) {
				tick(&s, rnd() < 128 ? rnd() & 15 : rnd());
			} else if (r < 240) {
				rules(&s, rnd() & 1, rnd() & 3);
			} else {
				config(&s, rnd(), rnd(), rnd());
			}
		}
		fast += check_same(&s);
	}
	assert_true(fast > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_established_tcp_both_ways),
		cmocka_unit_test(test_ttl_mtu_and_flags),
		cmocka_unit_test(test_udp_checksums_and_csum_blank),
		cmocka_unit_test(test_expiry_eviction_and_rules),
		cmocka_unit_test(test_configuration_changes),
		cmocka_unit_test(test_icmp_errors),
		cmocka_unit_test(test_every_checksum_value),
		cmocka_unit_test(test_nat_port_unchanged),
		cmocka_unit_test(test_random_sequences),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
