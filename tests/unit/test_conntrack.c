/* test_conntrack.c — the connection table: both directions findable, v4
 * and v6, per-protocol timeouts on a fake clock, the TCP state machine,
 * LRU eviction order, NAT port allocation (unique, bounded, fails cleanly
 * when exhausted: anchors §3 "port allocator retried forever"), removal by
 * client and by predicate over a full table (anchors §3 "recursive removal
 * overflowed the stack"), the incremental sweep and hash spread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/csprng.h"
#include "fw/conntrack.h"

#define S(x) ((uint64_t)(x) * 1000000000ull)
#define T0 S(1000)

static void *table_mem;

static struct conntrack *make_table(uint32_t capacity)
{
	size_t need = conntrack_memory_needed(capacity);
	assert_true(need > 0);
	free(table_mem);
	table_mem = malloc(need + 1);
	assert_non_null(table_mem);
	struct conntrack *ct = conntrack_init(table_mem, need, capacity);
	assert_non_null(ct);
	return ct;
}

static int setup(void **state)
{
	(void)state;
	uint8_t seed[32];
	memset(seed, 0x17, sizeof(seed));
	csprng_reset();
	assert_true(csprng_seed(seed, sizeof(seed)));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(table_mem);
	table_mem = NULL;
	return 0;
}

static struct ip_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t bytes[4] = {a, b, c, d};
	return ip_from_v4(bytes);
}

static struct ip_addr v6(uint16_t first, uint16_t last)
{
	uint8_t bytes[16] = {0};
	bytes[0] = (uint8_t)(first >> 8);
	bytes[1] = (uint8_t)first;
	bytes[14] = (uint8_t)(last >> 8);
	bytes[15] = (uint8_t)last;
	return ip_from_v6(bytes);
}

static void check(const struct conntrack *ct)
{
	const char *why = conntrack_check_invariants(ct);
	if (why)
		fail_msg("invariant: %s", why);
}

static uint32_t in_use(const struct conntrack *ct)
{
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	return st.in_use;
}

/* A NATed connection client:cport → remote:rport, inserted; returns it. */
static struct ct_entry *nat_conn(struct conntrack *ct, uint8_t proto, const struct ip_addr *client,
				 uint16_t cport, const struct ip_addr *remote, uint16_t rport,
				 const struct ip_addr *nat, uint8_t tcp_flags, uint64_t now)
{
	struct ct_tuple o = ct_tuple_make(proto, client, cport, remote, rport);
	struct ct_tuple r;
	assert_int_equal(conntrack_alloc_nat_port(ct, &o, nat, now, &r), CT_OK);
	struct ct_entry *e = NULL;
	assert_int_equal(conntrack_insert(ct, &o, &r, tcp_flags, now, &e), CT_OK);
	assert_non_null(e);
	return e;
}

static void test_memory_sizing(void **state)
{
	(void)state;
	assert_true(conntrack_memory_needed(CT_MAX_CAPACITY + 1) == 0);
	size_t m5k = conntrack_memory_needed(5000);
	size_t m1m = conntrack_memory_needed(1000000);
	assert_true(m5k > 5000 * (size_t)CT_ENTRY_BYTES);
	/* Documented: 128–136 bytes per entry plus a constant. */
	assert_true(m5k <= 5000 * 136 + 4096);
	assert_true(m1m <= 1000000 * (size_t)136 + 4096);
	assert_true(m1m >= 1000000 * (size_t)128);

	/* Too little memory is refused; an odd start address is fine. */
	uint8_t *mem = malloc(m5k + 1);
	assert_non_null(mem);
	assert_null(conntrack_init(mem, m5k - 1, 5000));
	assert_null(conntrack_init(NULL, m5k, 5000));
	struct conntrack *ct = conntrack_init(mem + 1, m5k, 5000);
	assert_non_null(ct);
	check(ct);
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.capacity, 5000);
	assert_int_equal(st.in_use, 0);
	free(mem);

	/* From an arena. */
	struct arena a;
	mem = malloc(m5k);
	assert_non_null(mem);
	arena_init(&a, mem, m5k);
	assert_non_null(conntrack_create(&a, 5000));
	assert_null(conntrack_create(&a, 5000));
	free(mem);
}

static void test_v4_nat_both_directions(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr client = v4(10, 137, 0, 5), remote = v4(93, 184, 216, 34);
	struct ip_addr nat = v4(10, 0, 2, 15);
	struct ct_tuple o = ct_tuple_make(CT_PROTO_TCP, &client, 40000, &remote, 443);
	struct ct_tuple r;
	assert_int_equal(conntrack_alloc_nat_port(ct, &o, &nat, T0, &r), CT_OK);
	assert_true(ip_equal(&r.src, &remote) && ip_equal(&r.dst, &nat));
	assert_int_equal(r.sport, 443);
	assert_in_range(r.dport, CT_NAT_PORT_MIN, CT_NAT_PORT_MAX);
	assert_int_equal(r.family, 4);

	struct ct_entry *e;
	assert_int_equal(conntrack_insert(ct, &o, &r, CT_TCP_SYN, T0, &e), CT_OK);
	assert_true(e->flags & CT_F_NAT);

	enum ct_dir dir = CT_DIR_REPLY;
	assert_ptr_equal(conntrack_lookup(ct, &o, T0, &dir), e);
	assert_int_equal(dir, CT_DIR_ORIG);
	assert_ptr_equal(conntrack_lookup(ct, &r, T0, &dir), e);
	assert_int_equal(dir, CT_DIR_REPLY);
	assert_ptr_equal(conntrack_lookup(ct, &r, T0, NULL), e);

	/* Neither the un-NATed reverse nor other ports match. */
	struct ct_tuple rev = ct_tuple_reverse(&o);
	assert_null(conntrack_lookup(ct, &rev, T0, NULL));
	struct ct_tuple other = o;
	other.sport++;
	assert_null(conntrack_lookup(ct, &other, T0, NULL));
	other = o;
	other.proto = CT_PROTO_UDP;
	assert_null(conntrack_lookup(ct, &other, T0, NULL));

	/* A second identical connection is refused (and counted). */
	assert_int_equal(conntrack_insert(ct, &o, &r, CT_TCP_SYN, T0, NULL), CT_EXISTS);
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.in_use, 1);
	assert_int_equal(st.per_class[CT_CLASS_TCP], 1);
	assert_int_equal(st.insert_failures, 1);
	check(ct);
}

static void test_v6_client_to_client(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr a = v6(0xfd09, 0x11), b = v6(0xfd09, 0x22);
	struct ct_tuple o = ct_tuple_make(CT_PROTO_UDP, &a, 5000, &b, 6000);
	assert_int_equal(o.family, 6);
	struct ct_entry *e;
	assert_int_equal(conntrack_insert(ct, &o, NULL, 0, T0, &e), CT_OK);
	assert_false(e->flags & CT_F_NAT);
	struct ct_tuple back = ct_tuple_make(CT_PROTO_UDP, &b, 6000, &a, 5000);
	enum ct_dir dir;
	assert_ptr_equal(conntrack_lookup(ct, &back, T0, &dir), e);
	assert_int_equal(dir, CT_DIR_REPLY);
	/* b answering "opening" the same flow is the same connection. */
	assert_int_equal(conntrack_insert(ct, &back, NULL, 0, T0, NULL), CT_EXISTS);

	/* Same bytes in the two families are different keys. */
	struct ip_addr a4 = v4(10, 0, 0, 1), b4 = v4(10, 0, 0, 2);
	struct ct_tuple o4 = ct_tuple_make(CT_PROTO_UDP, &a4, 5000, &b4, 6000);
	assert_int_equal(o4.family, 4);
	assert_int_equal(conntrack_insert(ct, &o4, NULL, 0, T0, NULL), CT_OK);
	assert_int_equal(in_use(ct), 2);
	check(ct);
}

static void test_invalid_tuples(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(10);
	struct ip_addr a4 = v4(10, 0, 0, 1), b4 = v4(1, 1, 1, 1), a6 = v6(0xfd00, 1);
	struct ct_tuple o = ct_tuple_make(CT_PROTO_TCP, &a4, 1, &b4, 2);
	struct ct_tuple bad;

	bad = ct_tuple_make(CT_PROTO_TCP, &a4, 1, &a6, 2); /* mixed families */
	assert_int_equal(conntrack_insert(ct, &bad, NULL, 0, T0, NULL), CT_INVALID);
	bad = ct_tuple_make(CT_PROTO_TCP, &a6, 1, &b4, 2);
	assert_int_equal(conntrack_insert(ct, &bad, NULL, 0, T0, NULL), CT_INVALID);
	bad = o;
	bad.family = 5;
	assert_int_equal(conntrack_insert(ct, &bad, NULL, 0, T0, NULL), CT_INVALID);
	struct ct_tuple r = ct_tuple_reverse(&o);
	r.proto = CT_PROTO_UDP;
	assert_int_equal(conntrack_insert(ct, &o, &r, 0, T0, NULL), CT_INVALID);
	/* A flow to itself would have identical keys. */
	bad = ct_tuple_make(CT_PROTO_UDP, &a4, 7, &a4, 7);
	assert_int_equal(conntrack_insert(ct, &bad, NULL, 0, T0, NULL), CT_INVALID);
	/* NAT address of the other family. */
	assert_int_equal(conntrack_alloc_nat_port(ct, &o, &a6, T0, &r), CT_INVALID);

	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.insert_failures, 5);
	check(ct);
}

static void test_capacity_zero(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(0);
	struct ip_addr a = v4(10, 0, 0, 1), b = v4(1, 1, 1, 1);
	struct ct_tuple o = ct_tuple_make(CT_PROTO_UDP, &a, 1, &b, 2);
	assert_int_equal(conntrack_insert(ct, &o, NULL, 0, T0, NULL), CT_NO_SPACE);
	assert_null(conntrack_lookup(ct, &o, T0, NULL));
	assert_int_equal(conntrack_expire(ct, T0, 100), 0);
	struct ct_tuple r;
	assert_int_equal(conntrack_alloc_nat_port(ct, &o, &a, T0, &r), CT_OK);
	check(ct);
}

static void test_icmp_and_portless(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr c1 = v4(10, 137, 0, 5), c2 = v4(10, 137, 0, 6), remote = v4(8, 8, 8, 8);
	struct ip_addr remote2 = v4(8, 8, 4, 4), nat = v4(10, 0, 2, 15);

	/* ICMP echo: the identifier is the initiator's port. */
	struct ct_entry *e = nat_conn(ct, CT_PROTO_ICMP, &c1, 0x1234, &remote, 0, &nat, 0, T0);
	const struct ct_tuple *r = &e->tuple[CT_DIR_REPLY];
	assert_int_equal(r->sport, 0);
	struct ct_tuple echo_reply = ct_tuple_make(CT_PROTO_ICMP, &remote, 0, &nat, r->dport);
	enum ct_dir dir;
	assert_ptr_equal(conntrack_lookup(ct, &echo_reply, T0, &dir), e);
	assert_int_equal(dir, CT_DIR_REPLY);

	/* GRE (47): NAT by address, one client per remote. */
	struct ct_entry *g = nat_conn(ct, 47, &c1, 0, &remote, 0, &nat, 0, T0);
	assert_int_equal(g->tuple[CT_DIR_REPLY].sport, 0);
	assert_int_equal(g->tuple[CT_DIR_REPLY].dport, 0);
	struct ct_tuple o2 = ct_tuple_make(47, &c2, 0, &remote, 0), r2;
	assert_int_equal(conntrack_alloc_nat_port(ct, &o2, &nat, T0, &r2), CT_NO_PORT);
	o2 = ct_tuple_make(47, &c2, 0, &remote2, 0);
	assert_int_equal(conntrack_alloc_nat_port(ct, &o2, &nat, T0, &r2), CT_OK);
	assert_int_equal(conntrack_insert(ct, &o2, &r2, 0, T0, NULL), CT_OK);

	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.per_class[CT_CLASS_ICMP], 1);
	assert_int_equal(st.per_class[CT_CLASS_OTHER], 2);
	assert_int_equal(st.nat_port_failures, 1);
	check(ct);
}

/* An entry inserted at T0 is found just before T0 + timeout and gone at it. */
static void expect_timeout(struct conntrack *ct, const struct ct_tuple *o, uint64_t since,
			   uint64_t timeout_s)
{
	assert_non_null(conntrack_lookup(ct, o, since + S(timeout_s) - 1, NULL));
	assert_null(conntrack_lookup(ct, o, since + S(timeout_s), NULL));
}

static void test_timeouts_per_protocol(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr c = v4(10, 137, 0, 5), rem = v4(1, 2, 3, 4), nat = v4(10, 0, 2, 15);
	struct ct_entry *e;

	e = nat_conn(ct, CT_PROTO_UDP, &c, 1000, &rem, 53, &nat, 0, T0);
	struct ct_tuple o = e->tuple[CT_DIR_ORIG];
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_UDP_UNREPLIED));
	expect_timeout(ct, &o, T0, CT_TIMEOUT_UDP_UNREPLIED);

	/* A reply makes it a 180 s flow, counted from the reply. */
	e = nat_conn(ct, CT_PROTO_UDP, &c, 1001, &rem, 53, &nat, 0, T0);
	o = e->tuple[CT_DIR_ORIG];
	conntrack_seen(ct, e, CT_DIR_REPLY, 0, T0 + S(10));
	expect_timeout(ct, &o, T0 + S(10), CT_TIMEOUT_UDP_REPLIED);

	/* Traffic keeps a flow alive indefinitely. */
	e = nat_conn(ct, CT_PROTO_UDP, &c, 1002, &rem, 53, &nat, 0, T0);
	o = e->tuple[CT_DIR_ORIG];
	for (int i = 1; i <= 100; i++) {
		e = conntrack_lookup(ct, &o, T0 + S(20 * i), NULL);
		assert_non_null(e);
		conntrack_seen(ct, e, CT_DIR_ORIG, 0, T0 + S(20 * i));
	}

	e = nat_conn(ct, CT_PROTO_ICMP, &c, 7, &rem, 0, &nat, 0, T0);
	o = e->tuple[CT_DIR_ORIG];
	expect_timeout(ct, &o, T0, CT_TIMEOUT_ICMP);

	e = nat_conn(ct, CT_PROTO_ICMPV6, &(struct ip_addr){0}, 7, &(struct ip_addr){{1}}, 0,
		     &(struct ip_addr){{2}}, 0, T0);
	o = e->tuple[CT_DIR_ORIG];
	expect_timeout(ct, &o, T0, CT_TIMEOUT_ICMP);

	e = nat_conn(ct, 50 /* ESP */, &c, 0, &rem, 0, &nat, 0, T0);
	o = e->tuple[CT_DIR_ORIG];
	expect_timeout(ct, &o, T0, CT_TIMEOUT_OTHER);

	e = nat_conn(ct, CT_PROTO_TCP, &c, 2000, &rem, 80, &nat, CT_TCP_SYN, T0);
	o = e->tuple[CT_DIR_ORIG];
	expect_timeout(ct, &o, T0, CT_TIMEOUT_TCP_SYN_SENT);

	/* An established TCP connection lives for days. */
	e = nat_conn(ct, CT_PROTO_TCP, &c, 2001, &rem, 80, &nat, CT_TCP_SYN, T0);
	o = e->tuple[CT_DIR_ORIG];
	conntrack_seen(ct, e, CT_DIR_REPLY, CT_TCP_SYN | CT_TCP_ACK, T0);
	conntrack_seen(ct, e, CT_DIR_ORIG, CT_TCP_ACK, T0);
	assert_int_equal(e->tcp_state, CT_TCP_ESTABLISHED);
	expect_timeout(ct, &o, T0, CT_TIMEOUT_TCP_ESTABLISHED);

	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.expired, 7);
	assert_int_equal(st.in_use, 1); /* the kept-alive UDP flow */
	check(ct);
}

struct tcp_step {
	enum ct_dir dir;
	uint8_t flags;
	enum ct_tcp_state after;
};

static void run_tcp(struct conntrack *ct, struct ct_entry *e, const struct tcp_step *steps,
		    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		conntrack_seen(ct, e, steps[i].dir, steps[i].flags, T0);
		if (e->tcp_state != steps[i].after)
			fail_msg("step %zu: state %u, expected %u", i, e->tcp_state,
				 steps[i].after);
	}
}

static void test_tcp_states(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr c = v4(10, 137, 0, 5), rem = v4(1, 2, 3, 4), nat = v4(10, 0, 2, 15);
	const uint8_t SYN = CT_TCP_SYN, ACK = CT_TCP_ACK, FIN = CT_TCP_FIN, RST = CT_TCP_RST;

	struct ct_entry *e = nat_conn(ct, CT_PROTO_TCP, &c, 3000, &rem, 80, &nat, SYN, T0);
	assert_int_equal(e->tcp_state, CT_TCP_SYN_SENT);
	static const struct tcp_step life[] = {
		{CT_DIR_ORIG, CT_TCP_SYN, CT_TCP_SYN_SENT}, /* retransmitted SYN */
		{CT_DIR_ORIG, CT_TCP_ACK, CT_TCP_SYN_SENT}, /* no answer yet */
		{CT_DIR_REPLY, CT_TCP_SYN | CT_TCP_ACK, CT_TCP_SYN_RECV},
		{CT_DIR_ORIG, CT_TCP_ACK, CT_TCP_ESTABLISHED},
		{CT_DIR_REPLY, CT_TCP_ACK, CT_TCP_ESTABLISHED},
		{CT_DIR_ORIG, CT_TCP_FIN | CT_TCP_ACK, CT_TCP_FIN_WAIT},
		{CT_DIR_REPLY, CT_TCP_ACK, CT_TCP_FIN_WAIT},
		{CT_DIR_ORIG, CT_TCP_FIN | CT_TCP_ACK, CT_TCP_FIN_WAIT}, /* retransmit */
		{CT_DIR_REPLY, CT_TCP_FIN | CT_TCP_ACK, CT_TCP_LAST_ACK},
		{CT_DIR_ORIG, CT_TCP_ACK, CT_TCP_TIME_WAIT},
		{CT_DIR_REPLY, CT_TCP_FIN | CT_TCP_ACK, CT_TCP_TIME_WAIT},
		{CT_DIR_ORIG, CT_TCP_SYN, CT_TCP_SYN_SENT}, /* port reused */
		{CT_DIR_REPLY, CT_TCP_SYN | CT_TCP_ACK, CT_TCP_SYN_RECV},
		{CT_DIR_ORIG, CT_TCP_ACK, CT_TCP_ESTABLISHED},
		{CT_DIR_REPLY, CT_TCP_FIN, CT_TCP_FIN_WAIT}, /* fin bits were cleared */
		{CT_DIR_REPLY, CT_TCP_RST, CT_TCP_CLOSE},
		{CT_DIR_REPLY, CT_TCP_SYN, CT_TCP_CLOSE}, /* only the initiator reopens */
	};
	run_tcp(ct, e, life, ARRAY_LEN(life));
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_CLOSE));
	(void)SYN;
	(void)ACK;
	(void)FIN;
	(void)RST;

	/* Timeouts follow the state. */
	e = nat_conn(ct, CT_PROTO_TCP, &c, 3001, &rem, 80, &nat, CT_TCP_SYN, T0);
	conntrack_seen(ct, e, CT_DIR_REPLY, CT_TCP_SYN | CT_TCP_ACK, T0);
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_SYN_RECV));
	conntrack_seen(ct, e, CT_DIR_ORIG, CT_TCP_FIN | CT_TCP_ACK, T0);
	assert_int_equal(e->tcp_state, CT_TCP_FIN_WAIT);
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_FIN_WAIT));
	conntrack_seen(ct, e, CT_DIR_REPLY, CT_TCP_FIN | CT_TCP_ACK, T0);
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_LAST_ACK));
	conntrack_seen(ct, e, CT_DIR_ORIG, CT_TCP_ACK, T0);
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_TIME_WAIT));

	/* Picked up mid-stream: short timeout until the other side answers. */
	e = nat_conn(ct, CT_PROTO_TCP, &c, 3002, &rem, 80, &nat, CT_TCP_ACK, T0);
	assert_int_equal(e->tcp_state, CT_TCP_ESTABLISHED);
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_UNREPLIED));
	conntrack_seen(ct, e, CT_DIR_REPLY, CT_TCP_ACK, T0);
	assert_true(conntrack_timeout_ns(e) == S(CT_TIMEOUT_TCP_ESTABLISHED));

	/* A reset as first packet, a FIN as first packet. */
	e = nat_conn(ct, CT_PROTO_TCP, &c, 3003, &rem, 80, &nat, CT_TCP_RST, T0);
	assert_int_equal(e->tcp_state, CT_TCP_CLOSE);
	e = nat_conn(ct, CT_PROTO_TCP, &c, 3004, &rem, 80, &nat, CT_TCP_FIN | CT_TCP_ACK, T0);
	assert_int_equal(e->tcp_state, CT_TCP_FIN_WAIT);

	/* Simultaneous open: the responder's bare SYN. */
	e = nat_conn(ct, CT_PROTO_TCP, &c, 3005, &rem, 80, &nat, CT_TCP_SYN, T0);
	conntrack_seen(ct, e, CT_DIR_REPLY, CT_TCP_SYN, T0);
	assert_int_equal(e->tcp_state, CT_TCP_SYN_RECV);

	/* Non-TCP entries ignore flags. */
	e = nat_conn(ct, CT_PROTO_UDP, &c, 3000, &rem, 80, &nat, CT_TCP_RST, T0);
	conntrack_seen(ct, e, CT_DIR_REPLY, CT_TCP_SYN, T0);
	assert_int_equal(e->tcp_state, CT_TCP_NONE);
	check(ct);
}

static void test_lru_eviction_order(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(4);
	struct ip_addr a = v4(10, 137, 0, 5), b = v4(10, 137, 0, 6);
	struct ct_tuple t[8];
	for (int i = 0; i < 8; i++)
		t[i] = ct_tuple_make(CT_PROTO_UDP, &a, (uint16_t)(100 + i), &b, 53);

	for (int i = 0; i < 4; i++)
		assert_int_equal(conntrack_insert(ct, &t[i], NULL, 0, T0 + S(i), NULL), CT_OK);
	/* Use 0 and 2 again: 1 is now the least recently used, then 3. */
	conntrack_seen(ct, conntrack_lookup(ct, &t[0], T0 + S(5), NULL), CT_DIR_ORIG, 0, T0 + S(5));
	enum ct_dir d;
	struct ct_tuple back = ct_tuple_reverse(&t[2]);
	struct ct_entry *e2 = conntrack_lookup(ct, &back, T0 + S(6), &d);
	assert_non_null(e2);
	conntrack_seen(ct, e2, d, 0, T0 + S(6));

	assert_int_equal(conntrack_insert(ct, &t[4], NULL, 0, T0 + S(7), NULL), CT_OK);
	assert_null(conntrack_lookup(ct, &t[1], T0 + S(7), NULL));
	assert_non_null(conntrack_lookup(ct, &t[3], T0 + S(7), NULL));
	assert_int_equal(conntrack_insert(ct, &t[5], NULL, 0, T0 + S(8), NULL), CT_OK);
	assert_null(conntrack_lookup(ct, &t[3], T0 + S(8), NULL));
	assert_int_equal(conntrack_insert(ct, &t[6], NULL, 0, T0 + S(9), NULL), CT_OK);
	assert_null(conntrack_lookup(ct, &t[0], T0 + S(9), NULL));
	for (int i = 4; i <= 6; i++)
		assert_non_null(conntrack_lookup(ct, &t[i], T0 + S(9), NULL));
	assert_non_null(conntrack_lookup(ct, &t[2], T0 + S(9), NULL));

	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.in_use, 4);
	assert_int_equal(st.evictions, 3);
	assert_int_equal(st.insert_failures, 0);
	check(ct);

	/* Capacity 1: every insert replaces the previous one. */
	ct = make_table(1);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(conntrack_insert(ct, &t[i], NULL, 0, T0, NULL), CT_OK);
		assert_non_null(conntrack_lookup(ct, &t[i], T0, NULL));
		if (i)
			assert_null(conntrack_lookup(ct, &t[i - 1], T0, NULL));
	}
	check(ct);
}

/* Many NATed flows to one remote service: every NAT port distinct and in
 * range, every one findable from the uplink side. */
static void test_nat_ports_never_collide(void **state)
{
	(void)state;
	enum { N = 30000 };
	struct conntrack *ct = make_table(N);
	struct ip_addr rem = v4(1, 1, 1, 1), nat = v4(10, 0, 2, 15);
	static uint8_t used[65536];
	memset(used, 0, sizeof(used));
	for (uint32_t i = 0; i < N; i++) {
		struct ip_addr c = v4(10, 137, (uint8_t)(i % 7), (uint8_t)(2 + i % 200));
		struct ct_entry *e =
			nat_conn(ct, CT_PROTO_UDP, &c, (uint16_t)(1024 + i / 7 % 50000), &rem, 53,
				 &nat, 0, T0);
		uint16_t port = e->tuple[CT_DIR_REPLY].dport;
		assert_in_range(port, CT_NAT_PORT_MIN, CT_NAT_PORT_MAX);
		if (used[port])
			fail_msg("NAT port %u handed out twice", port);
		used[port] = 1;
	}
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.in_use, N);
	assert_int_equal(st.nat_port_failures, 0);
	check(ct);

	/* The same NAT port towards different remotes is fine: the reply
	 * tuple, not the port alone, must be unique. */
	ct = make_table(1000);
	conntrack_set_nat_port_range(ct, 5000, 5000);
	struct ip_addr c = v4(10, 137, 0, 5);
	for (int i = 0; i < 100; i++) {
		struct ip_addr r = v4(1, 1, 1, (uint8_t)i);
		struct ct_entry *e = nat_conn(ct, CT_PROTO_TCP, &c, 4000, &r, 443, &nat, 0, T0);
		assert_int_equal(e->tuple[CT_DIR_REPLY].dport, 5000);
	}
	check(ct);
}

/* Anchors §3: an allocator with every port busy must fail, quickly. */
static void test_nat_exhaustion_terminates(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(10);
	conntrack_set_nat_port_range(ct, 2000, 2009);
	struct ip_addr c = v4(10, 137, 0, 5), rem = v4(1, 1, 1, 1), nat = v4(10, 0, 2, 15);
	bool seen_port[10] = {false};
	for (int i = 0; i < 10; i++) {
		struct ct_entry *e =
			nat_conn(ct, CT_PROTO_TCP, &c, (uint16_t)(40000 + i), &rem, 80, &nat, CT_TCP_SYN, T0);
		uint16_t p = e->tuple[CT_DIR_REPLY].dport;
		assert_in_range(p, 2000, 2009);
		assert_false(seen_port[p - 2000]);
		seen_port[p - 2000] = true;
	}
	struct ct_tuple o = ct_tuple_make(CT_PROTO_TCP, &c, 41000, &rem, 80), r;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(conntrack_alloc_nat_port(ct, &o, &nat, T0 + S(1), &r), CT_NO_PORT);
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.nat_port_failures, 1000);
	assert_int_equal(st.in_use, 10);

	/* Once the half-open connections time out, their ports come back. */
	assert_int_equal(conntrack_alloc_nat_port(ct, &o, &nat, T0 + S(CT_TIMEOUT_TCP_SYN_SENT), &r),
			 CT_OK);
	assert_in_range(r.dport, 2000, 2009);
	check(ct);

	/* The whole 16-bit ICMP id space taken for one remote: bounded failure. */
	ct = make_table(65536);
	for (uint32_t id = 0; id < 65536; id++) {
		struct ct_tuple oi = ct_tuple_make(CT_PROTO_ICMP, &c, (uint16_t)id, &rem, 0);
		struct ct_tuple ri = ct_tuple_nat_reply(&oi, &nat, (uint16_t)id);
		assert_int_equal(conntrack_insert(ct, &oi, &ri, 0, T0, NULL), CT_OK);
	}
	struct ip_addr c2 = v4(10, 137, 0, 6);
	struct ct_tuple oi = ct_tuple_make(CT_PROTO_ICMP, &c2, 1, &rem, 0);
	assert_int_equal(conntrack_alloc_nat_port(ct, &oi, &nat, T0, &r), CT_NO_PORT);
}

static void add_flows(struct conntrack *ct, const struct ip_addr *client, int n, uint16_t dport)
{
	struct ip_addr rem = v4(1, 1, 1, 1), nat = v4(10, 0, 2, 15);
	for (int i = 0; i < n; i++)
		nat_conn(ct, CT_PROTO_TCP, client, (uint16_t)(10000 + dport * 10 + i), &rem, dport,
			 &nat, CT_TCP_SYN, T0);
}

static void test_remove_client(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr a = v4(10, 137, 0, 5), b = v4(10, 137, 0, 6), c = v4(10, 137, 0, 7);
	add_flows(ct, &a, 5, 80);
	add_flows(ct, &b, 3, 80);
	/* Client-to-client flows in both directions involving a. */
	struct ct_tuple ab = ct_tuple_make(CT_PROTO_UDP, &b, 1, &a, 2);
	struct ct_tuple ca = ct_tuple_make(CT_PROTO_UDP, &c, 1, &a, 2);
	assert_int_equal(conntrack_insert(ct, &ab, NULL, 0, T0, NULL), CT_OK);
	assert_int_equal(conntrack_insert(ct, &ca, NULL, 0, T0, NULL), CT_OK);
	assert_int_equal(in_use(ct), 10);

	assert_int_equal(conntrack_remove_client(ct, &a), 7);
	assert_int_equal(in_use(ct), 3);
	assert_null(conntrack_lookup(ct, &ab, T0, NULL));
	assert_int_equal(conntrack_remove_client(ct, &a), 0);
	check(ct);

	/* conntrack_remove of a single entry. */
	struct ip_addr rem = v4(1, 1, 1, 1);
	struct ct_tuple bt = ct_tuple_make(CT_PROTO_TCP, &b, 10000 + 800, &rem, 80);
	struct ct_entry *e = conntrack_lookup(ct, &bt, T0, NULL);
	assert_non_null(e);
	struct ct_tuple reply = e->tuple[CT_DIR_REPLY];
	conntrack_remove(ct, e);
	assert_null(conntrack_lookup(ct, &bt, T0, NULL));
	assert_null(conntrack_lookup(ct, &reply, T0, NULL));
	assert_int_equal(in_use(ct), 2);
	check(ct);
}

struct keep_ctx {
	uint16_t allowed_port;
	int calls;
	struct ip_addr client;
};

static bool keep_allowed(const struct ct_entry *e, void *arg)
{
	struct keep_ctx *k = arg;
	k->calls++;
	if (!ip_equal(&e->tuple[CT_DIR_ORIG].src, &k->client))
		fail_msg("predicate asked about another client's connection");
	return e->tuple[CT_DIR_ORIG].dport == k->allowed_port;
}

static bool keep_none(const struct ct_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return false;
}

/* D11: after a rule change only the connections the new rules block go. */
static void test_remove_if(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(100);
	struct ip_addr a = v4(10, 137, 0, 5), b = v4(10, 137, 0, 6);
	add_flows(ct, &a, 4, 80);
	add_flows(ct, &a, 3, 443);
	add_flows(ct, &a, 2, 22);
	add_flows(ct, &b, 5, 80);
	struct keep_ctx k = {.allowed_port = 443, .client = a};
	assert_int_equal(conntrack_remove_if(ct, &a, keep_allowed, &k), 6);
	assert_int_equal(k.calls, 9);
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.in_use, 8);
	check(ct);

	int calls = 0;
	assert_int_equal(conntrack_remove_if(ct, NULL, keep_none, &calls), 8);
	assert_int_equal(calls, 8);
	assert_int_equal(in_use(ct), 0);
	check(ct);
}

/* Anchors §3 (mirage #105): fill the table, then remove everything of one
 * client — iteratively, no matter how many entries. */
static void test_full_table_then_remove(void **state)
{
	(void)state;
	enum { N = 300000 };
	struct conntrack *ct = make_table(N);
	struct ip_addr a = v4(10, 137, 0, 5), nat = v4(10, 0, 2, 15);
	for (uint32_t i = 0; i < N + 1000; i++) {
		struct ip_addr rem = v4(1, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		struct ct_tuple o = ct_tuple_make(CT_PROTO_UDP, &a, 5353, &rem, 53);
		struct ct_tuple r = ct_tuple_nat_reply(&o, &nat, 5353);
		assert_int_equal(conntrack_insert(ct, &o, &r, 0, T0, NULL), CT_OK);
	}
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.in_use, N);
	assert_int_equal(st.evictions, 1000);
	check(ct);
	int calls = 0;
	assert_int_equal(conntrack_remove_if(ct, &a, keep_none, &calls), N);
	assert_int_equal(in_use(ct), 0);
	check(ct);

	/* Refill, then by client. */
	for (uint32_t i = 0; i < N; i++) {
		struct ip_addr rem = v4(2, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		struct ct_tuple o = ct_tuple_make(CT_PROTO_UDP, &a, 5353, &rem, 53);
		assert_int_equal(conntrack_insert(ct, &o, NULL, 0, T0, NULL), CT_OK);
	}
	assert_int_equal(conntrack_remove_client(ct, &a), N);
	assert_int_equal(in_use(ct), 0);
	check(ct);
}

static void test_expire_sweep_bounded(void **state)
{
	(void)state;
	enum { N = 1000 };
	struct conntrack *ct = make_table(N);
	struct ip_addr a = v4(10, 137, 0, 5), rem = v4(1, 1, 1, 1);
	for (int i = 0; i < N; i++) {
		struct ct_tuple o = ct_tuple_make(CT_PROTO_UDP, &a, (uint16_t)(1000 + i), &rem, 53);
		/* Half of them are answered (180 s), half are not (30 s). */
		struct ct_entry *e;
		assert_int_equal(conntrack_insert(ct, &o, NULL, 0, T0, &e), CT_OK);
		if (i % 2)
			conntrack_seen(ct, e, CT_DIR_REPLY, 0, T0);
	}
	assert_int_equal(conntrack_expire(ct, T0 + S(29), N), 0);
	uint32_t total = 0;
	for (int call = 0; call < 10; call++) {
		uint32_t n = conntrack_expire(ct, T0 + S(30), 100);
		assert_true(n <= 100);
		total += n;
		check(ct);
	}
	assert_int_equal(total, N / 2);
	assert_int_equal(in_use(ct), N / 2);
	/* A budget larger than the table visits each slot once. */
	assert_int_equal(conntrack_expire(ct, T0 + S(180), 1000000), N / 2);
	assert_int_equal(in_use(ct), 0);
	assert_int_equal(conntrack_expire(ct, T0 + S(180), 0), 0);
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	assert_int_equal(st.expired, N);
	check(ct);
}

/* Sequential tuples (what a port scan or a busy client produces) spread
 * over the buckets: with ≤ 2 keys per bucket on average no chain grows
 * long. Two tables (two keys) place the same tuples differently. */
static void test_hash_spread(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct ip_addr a = v4(10, 137, 0, 5), rem = v4(1, 1, 1, 1);
	uint32_t longest[2];
	for (int t = 0; t < 2; t++) {
		struct conntrack *ct = make_table(N);
		for (int i = 0; i < N; i++) {
			struct ct_tuple o =
				ct_tuple_make(CT_PROTO_TCP, &a, (uint16_t)(1024 + i), &rem, 80);
			assert_int_equal(conntrack_insert(ct, &o, NULL, CT_TCP_SYN, T0, NULL), CT_OK);
		}
		longest[t] = conntrack_longest_chain(ct);
		/* 10000 keys in 16384 buckets: Poisson(0.61), max ~7. */
		assert_true(longest[t] >= 2);
		assert_true(longest[t] <= 12);
		check(ct);
	}
}

static void test_mark_kept(void **state)
{
	(void)state;
	struct conntrack *ct = make_table(10);
	struct ip_addr a = v4(10, 137, 0, 5), rem = v4(1, 1, 1, 1);
	struct ct_tuple o = ct_tuple_make(CT_PROTO_UDP, &a, 1, &rem, 53);
	struct ct_entry *e;
	assert_int_equal(conntrack_insert(ct, &o, NULL, 0, T0, &e), CT_OK);
	assert_int_equal(e->mark, 0);
	e->mark = 42;
	conntrack_seen(ct, e, CT_DIR_REPLY, 0, T0 + S(1));
	assert_int_equal(conntrack_lookup(ct, &o, T0 + S(2), NULL)->mark, 42);
	check(ct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v4_nat_both_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v6_client_to_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_tuples, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_and_portless, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts_per_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru_eviction_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nat_ports_never_collide, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nat_exhaustion_terminates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_if, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_table_then_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_sweep_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hash_spread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_kept, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
