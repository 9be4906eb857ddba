/* fuzz_resolver.c — the stub resolver's state machine against whatever
 * arrives on its ports (from the servers, the netvm or a spoofer) and in
 * the clients' DNS replies.
 *
 * A small resolver has two rule sets (IPv4, IPv6) naming several hosts, so
 * queries are outstanding from the start. Input is a list of operations:
 *   0: a datagram: source (server 1, server 2, other), source port (53 or
 *      not), destination (the port of a recent query, or raw), then either
 *      raw bytes or a reply built from that query (its id and question,
 *      QR set) followed by fuzz records;
 *   1: time passes (byte × 37 ms, or minutes); 2: a client's reply to the
 *      observer; 3: servers change; 4: retry now; 5: a set re-registered.
 * Invariants: never crashes; in flight ≤ max_inflight; every datagram sent
 * is a query from our port range to a configured server port 53, at most a
 * bounded number per operation; hostsets stay within their bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/csprng.h"
#include "base/log.h"
#include "fw/resolver.h"
#include "fw/rules.h"
#include "net/dns.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

#define RING 64

struct sent {
	uint16_t sport;
	uint8_t payload[DNS_QUERY_MAX];
	size_t len;
};

static struct sent ring[RING];
static size_t n_sent;
static struct ip_addr servers[2];
static size_t n_servers;
static struct resolver_config cfg;
static struct rule_set set4, set6;
static uint8_t mem[1 << 20];

static bool fake_send(void *ctx, const struct ip_addr *server, uint16_t sport, uint16_t dport,
		      const uint8_t *payload, size_t len)
{
	(void)ctx;
	bool known = false;
	for (size_t i = 0; i < n_servers; i++)
		known |= ip_equal(server, &servers[i]);
	CHECK(known);
	CHECK(dport == 53 && sport >= cfg.port_lo && sport <= cfg.port_hi);
	CHECK(len > DNS_HDR_LEN + 4 && len <= DNS_QUERY_MAX);
	struct sent *s = &ring[n_sent++ % RING];
	s->sport = sport;
	memcpy(s->payload, payload, len);
	s->len = len;
	return true;
}

static void fake_report(void *ctx, const char *name, size_t len, const struct ip_addr *addrs,
			size_t n)
{
	(void)ctx;
	(void)addrs;
	CHECK(len > 0 && len <= DNS_NAME_TEXT_MAX && strlen(name) == len);
	CHECK(n <= (size_t)2 * RESOLVER_ADDRS_PER_FAMILY);
}

static void load(struct rule_set *set, enum rule_family fam)
{
	static const struct rules_entry e[] = {
		{"policy", 6, "drop", 4},
		{"0000", 4, "action=accept dsthost=a.example", 31},
		{"0001", 4, "action=drop dsthost=b.example", 29},
		{"0002", 4, "action=accept dsthost=cdn.example.net", 37},
		{"0003", 4, "action=accept dsthost=x", 23},
	};
	CHECK(rules_parse(set, fam, e, sizeof(e) / sizeof(e[0]), servers, 2) == RULES_OK);
}

static void check_set(const struct rule_set *set)
{
	for (size_t i = 0; i < set->n_hosts; i++) {
		const struct rule_hostset *h = &set->hosts[i];
		CHECK(h->n_addrs <= RULES_HOST_ADDRS_MAX);
		CHECK(h->state != RULE_HOST_RESOLVED || h->n_addrs > 0);
		for (size_t k = 0; k < h->n_addrs; k++)
			CHECK(ip_is_v4(&h->addrs[k]) == (set->family == RULE_FAMILY_V4));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t seed[32] = {42};
	static const uint8_t s1[4] = {10, 139, 1, 1}, s2[4] = {10, 139, 1, 2},
			     other[4] = {6, 6, 6, 6};
	struct resolver *r;
	struct arena a;
	uint64_t now = 1000000000ull;

	csprng_reset();
	csprng_seed(seed, sizeof(seed));
	log_set_level(LOG_LEVEL_ERROR);
	n_sent = 0;
	servers[0] = ip_from_v4(s1);
	servers[1] = ip_from_v4(s2);
	n_servers = 2;
	resolver_config_default(&cfg);
	cfg.max_names = 8;
	cfg.max_inflight = 6;
	cfg.max_sets = 3;
	cfg.port_lo = 50000;
	cfg.port_hi = 50015;
	size_t need = resolver_memory_needed(&cfg);
	CHECK(need > 0 && need <= sizeof(mem));
	memset(mem, 0, need);
	arena_init(&a, mem, need);
	CHECK(resolver_init(&r, &a, &cfg, fake_send, NULL));
	resolver_set_report(r, fake_report, NULL);
	resolver_set_servers(r, servers, 2, now);
	load(&set4, RULE_FAMILY_V4);
	load(&set6, RULE_FAMILY_V6);
	resolver_register_set(r, &set4, now);
	resolver_register_set(r, &set6, now);
	struct rule_set *sets[2] = {&set4, &set6};

	size_t pos = 0;
	for (int ops = 0; pos < size && ops < 256; ops++) {
		uint8_t op = data[pos++] % 6;
		size_t sent_before = n_sent;
		uint8_t buf[1024];
		size_t n = 0;
		if (op == 0 || op == 2) {
			if (size - pos < 4)
				break;
			uint8_t src = data[pos], sp = data[pos + 1], dp = data[pos + 2];
			size_t len = data[pos + 3];
			pos += 4;
			len = len < size - pos ? len : size - pos;
			const struct sent *q = n_sent ? &ring[(n_sent - 1 - dp % MIN(n_sent, RING)) % RING]
						      : NULL;
			if ((src & 0x80) && q != NULL) {
				/* a reply to q: id, flags, counts from the input, then
				 * q's question, then the input's records */
				memcpy(buf, q->payload, q->len);
				buf[2] = (uint8_t)(0x80 | (src & 0x03));
				buf[3] = (uint8_t)(sp & 0x0f);
				buf[6] = 0;
				buf[7] = (uint8_t)(dp >> 4);
				n = q->len;
				size_t add = MIN(len, sizeof(buf) - n);
				memcpy(buf + n, data + pos, add);
				n += add;
			} else {
				n = MIN(len, sizeof(buf));
				memcpy(buf, data + pos, n);
			}
			pos += len;
			const struct ip_addr from = (src & 3) == 0	 ? servers[0]
						    : (src & 3) == 1 ? servers[1]
								     : ip_from_v4(other);
			uint16_t sport = (sp & 0x40) ? (uint16_t)(sp * 131) : 53;
			uint16_t dport = q != NULL && !(dp & 0x08) ? q->sport
								   : (uint16_t)(50000 + dp % 20);
			uint8_t *copy = malloc(n ? n : 1);
			memcpy(copy, buf, n);
			if (op == 0)
				resolver_input(r, &from, sport, dport, copy, n, now);
			else
				resolver_observe_client_answer(r, sets, 2, copy, n, &from, now);
			free(copy);
		} else if (op == 1) {
			if (pos >= size)
				break;
			uint8_t t = data[pos++];
			now += (t & 0x80) ? (uint64_t)(t & 0x7f) * 60000000000ull
					  : (uint64_t)t * 37000000ull;
		} else if (op == 3) {
			if (pos >= size)
				break;
			uint8_t k = data[pos++];
			n_servers = k % 3;
			servers[0] = ip_from_v4((k & 4) ? s2 : s1);
			servers[1] = ip_from_v4(s2);
			resolver_set_servers(r, servers, n_servers, now);
		} else if (op == 4) {
			resolver_retry_now(r, now);
		} else {
			struct rule_set *s = (pos < size && (data[pos++] & 1)) ? &set6 : &set4;
			resolver_unregister_set(r, s);
			load(s, s == &set6 ? RULE_FAMILY_V6 : RULE_FAMILY_V4);
			resolver_register_set(r, s, now);
		}
		/* the event loop: tick at every wakeup up to now (bounded) */
		for (int k = 0; k < 64 && resolver_next_wakeup(r) <= now; k++)
			resolver_tick(r, now);
		CHECK(resolver_inflight(r) <= cfg.max_inflight);
		CHECK(n_sent - sent_before <= 2u * 8 * 64 + 16);
		check_set(&set4);
		check_set(&set6);
	}
	char line[LOG_LINE_MAX + 8];
	while (log_drain_line(line, sizeof(line)) > 0)
		;
	return 0;
}
