/* fuzz_conntrack.c — random sequences of table operations (insert with and
 * without NAT, lookup + seen, remove, remove by client / predicate, sweep,
 * clock jumps, tiny port ranges) over a small tuple space so that
 * collisions, evictions and port exhaustion are common. After every
 * operation conntrack_check_invariants must hold (count ≤ capacity, LRU and
 * free lists consistent, every entry findable from both tuples), and every
 * reported result must be consistent with a lookup. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/csprng.h"
#include "fw/conntrack.h"

#define MAX_CAPACITY 48

static uint8_t mem[1 << 16];

struct input {
	const uint8_t *p;
	size_t len;
};

static uint8_t take(struct input *in)
{
	if (in->len == 0)
		return 0;
	in->len--;
	return *in->p++;
}

static void die(const char *what)
{
	(void)fprintf(stderr, "conntrack fuzz: %s\n", what);
	abort();
}

static struct ip_addr addr(bool v6, uint8_t host)
{
	uint8_t b[16] = {0};
	if (!v6) {
		const uint8_t v4[4] = {10, 137, (uint8_t)(host >> 2 & 1), (uint8_t)(host & 3)};
		return ip_from_v4(v4);
	}
	b[0] = 0xfd;
	b[14] = (uint8_t)(host >> 2 & 1);
	b[15] = (uint8_t)(host & 3);
	return ip_from_v6(b);
}

static struct ct_tuple random_tuple(struct input *in)
{
	static const uint8_t protos[] = {CT_PROTO_TCP, CT_PROTO_UDP, CT_PROTO_ICMP, 47};
	uint8_t a = take(in), b = take(in);
	bool v6 = a & 0x80;
	uint8_t proto = protos[a & 3];
	if (v6 && proto == CT_PROTO_ICMP)
		proto = CT_PROTO_ICMPV6;
	struct ip_addr src = addr(v6, (uint8_t)(a >> 2 & 7));
	struct ip_addr dst = addr(v6, (uint8_t)(b >> 5 & 7));
	uint16_t sport = b & 3, dport = b >> 2 & 3;
	if (proto == 47)
		sport = dport = 0;
	/* Occasionally a malformed tuple (family byte wrong). */
	struct ct_tuple t = ct_tuple_make(proto, &src, sport, &dst, dport);
	if ((a & 0x60) == 0x60 && (b & 0x10))
		t.family = (uint8_t)(b & 7);
	return t;
}

static bool keep_by_byte(const struct ct_entry *e, void *ctx)
{
	uint8_t k = *(const uint8_t *)ctx;
	return ((e->tuple[CT_DIR_ORIG].sport ^ e->tuple[CT_DIR_ORIG].proto) & 1) == (k & 1);
}

static void check(const struct conntrack *ct)
{
	const char *why = conntrack_check_invariants(ct);
	if (why)
		die(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	uint8_t seed[32] = {0};
	csprng_reset();
	csprng_seed(seed, sizeof(seed));

	uint32_t capacity = take(&in) % (MAX_CAPACITY + 1);
	struct conntrack *ct = conntrack_init(mem, sizeof(mem), capacity);
	if (ct == NULL)
		die("init failed");
	uint64_t now = 1000000000ull;
	for (int ops = 0; ops < 400 && in.len > 0; ops++) {
		uint8_t op = take(&in);
		switch (op % 9) {
		case 0: { /* insert without NAT */
			struct ct_tuple o = random_tuple(&in);
			struct ct_entry *e;
			enum ct_result r = conntrack_insert(ct, &o, NULL, take(&in), now, &e);
			if (r == CT_OK && conntrack_lookup(ct, &o, now, NULL) != e)
				die("inserted entry not found");
			if (r != CT_OK && e != NULL)
				die("failed insert returned an entry");
			break;
		}
		case 1: { /* NAT insert */
			struct ct_tuple o = random_tuple(&in), rep;
			struct ip_addr nat = addr(o.family == 6, 7);
			enum ct_result r = conntrack_alloc_nat_port(ct, &o, &nat, now, &rep);
			if (r == CT_OK) {
				if (conntrack_lookup(ct, &rep, now, NULL) != NULL)
					die("allocated reply tuple is taken");
				struct ct_entry *e;
				if (conntrack_insert(ct, &o, &rep, take(&in), now, &e) == CT_OK &&
				    conntrack_lookup(ct, &rep, now, NULL) != e)
					die("NAT reply not found");
			}
			break;
		}
		case 2: { /* lookup and forward */
			struct ct_tuple t = random_tuple(&in);
			enum ct_dir d;
			struct ct_entry *e = conntrack_lookup(ct, &t, now, &d);
			uint8_t flags = take(&in);
			if (e) {
				if (!ct_tuple_equal(&e->tuple[d], &t))
					die("lookup returned the wrong direction");
				conntrack_seen(ct, e, d, flags, now);
			}
			break;
		}
		case 3: { /* remove one */
			struct ct_tuple t = random_tuple(&in);
			struct ct_entry *e = conntrack_lookup(ct, &t, now, NULL);
			if (e) {
				struct ct_tuple other = e->tuple[CT_DIR_REPLY];
				conntrack_remove(ct, e);
				if (conntrack_lookup(ct, &t, now, NULL) ||
				    conntrack_lookup(ct, &other, now, NULL))
					die("removed entry still found");
			}
			break;
		}
		case 4: {
			uint8_t a = take(&in);
			struct ip_addr c = addr(a & 0x80, a & 7);
			conntrack_remove_client(ct, &c);
			break;
		}
		case 5: {
			uint8_t a = take(&in);
			struct ip_addr c = addr(a & 0x80, a & 7);
			conntrack_remove_if(ct, (a & 0x40) ? NULL : &c, keep_by_byte, &a);
			break;
		}
		case 6:
			conntrack_expire(ct, now, take(&in));
			break;
		case 7: { /* the clock moves on: up to ~5 days in uneven steps */
			uint8_t a = take(&in);
			now += (uint64_t)a * a * a * 1000000ull * ((a & 1) ? 300 : 1);
			break;
		}
		default: {
			uint32_t lo = (uint32_t)take(&in) * 257;
			uint32_t hi = lo + (take(&in) & 7u);
			conntrack_set_nat_port_range(ct, (uint16_t)lo, (uint16_t)MIN(hi, 65535u));
			break;
		}
		}
		check(ct);
	}
	struct ct_stats st;
	conntrack_get_stats(ct, &st);
	if (st.in_use > st.capacity || st.capacity != capacity)
		die("stats inconsistent");
	return 0;
}
