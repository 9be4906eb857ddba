/* test_resolver.c — the dsthost stub resolver as a state machine: a fake
 * clock, a send callback that captures every datagram, replies built by
 * hand from the captured queries (RFC 1035 §4.1 layout), and real rule
 * sets from rules_parse so the effect is checked through rules_match. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/csprng.h"
#include "base/log.h"
#include "fw/resolver.h"
#include "fw/rules.h"
#include "net/dns.h"

#define S 1000000000ull

/* ---- captured datagrams ---- */

struct sent {
	struct ip_addr server;
	uint16_t sport, dport;
	uint8_t payload[DNS_QUERY_MAX];
	size_t len;
	uint64_t at; /* the fake clock when it was sent */
};

static uint64_t now; /* the fake clock */

#define SENT_MAX 4096
static struct sent sent[SENT_MAX];
static size_t n_sent;
static bool send_ok = true;

static bool fake_send(void *ctx, const struct ip_addr *server, uint16_t sport, uint16_t dport,
		      const uint8_t *payload, size_t len)
{
	assert_ptr_equal(ctx, &n_sent);
	assert_true(n_sent < SENT_MAX);
	assert_true(len <= DNS_QUERY_MAX);
	struct sent *s = &sent[n_sent++];
	s->server = *server;
	s->sport = sport;
	s->dport = dport;
	memcpy(s->payload, payload, len);
	s->len = len;
	s->at = now;
	return send_ok;
}

static char report_name[256];
static struct ip_addr report_addrs[64];
static size_t report_n, n_reports;

static void fake_report(void *ctx, const char *name, size_t len, const struct ip_addr *addrs,
			size_t n)
{
	(void)ctx;
	assert_true(len < sizeof(report_name));
	assert_int_equal(strlen(name), len);
	memcpy(report_name, name, len + 1);
	assert_true(n <= 64);
	memcpy(report_addrs, addrs, n * sizeof(*addrs));
	report_n = n;
	n_reports++;
}

/* ---- fixture ---- */

static struct resolver *res;
static struct resolver_config cfg;
static uint8_t *mem;
static struct ip_addr dns1, dns2, other_server;
static struct rule_set set4, set6, set4b;

static struct ip_addr addr(const char *text)
{
	struct ip_addr a;
	if (!ip_parse(text, strlen(text), &a))
		fail_msg("bad test address %s", text);
	return a;
}

static void make_resolver(void)
{
	struct arena a;
	size_t need = resolver_memory_needed(&cfg);
	assert_true(need > 0);
	free(mem);
	mem = malloc(need ? need : 1);
	arena_init(&a, mem, need);
	assert_true(resolver_init(&res, &a, &cfg, fake_send, &n_sent));
	resolver_set_report(res, fake_report, NULL);
	struct ip_addr servers[2] = {dns1, dns2};
	resolver_set_servers(res, servers, 2, now);
}

static int setup(void **state)
{
	(void)state;
	static const uint8_t seed[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	csprng_reset();
	csprng_seed(seed, sizeof(seed));
	log_reset();
	n_sent = 0;
	n_reports = 0;
	send_ok = true;
	now = 1000 * S;
	dns1 = addr("10.139.1.1");
	dns2 = addr("10.139.1.2");
	other_server = addr("8.8.8.8");
	resolver_config_default(&cfg);
	make_resolver();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(mem);
	mem = NULL;
	return 0;
}

/* A rule set of family fam: one rule per "accept NAME" / "drop NAME". */
static void load_set(struct rule_set *set, enum rule_family fam, const char *const *rules,
		     size_t n)
{
	struct rules_entry e[8];
	char keys[8][24];
	assert_true(n < 8);
	e[0] = (struct rules_entry){"policy", 6, "accept", 6};
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(keys[i], sizeof(keys[i]), "%04zu", i);
		e[i + 1] = (struct rules_entry){keys[i], 4, rules[i], strlen(rules[i])};
	}
	struct ip_addr d[2] = {dns1, dns2};
	assert_int_equal(rules_parse(set, fam, e, n + 1, d, 2), RULES_OK);
}

static const struct rule_hostset *host(struct rule_set *set, const char *name)
{
	const struct rule_hostset *h = rules_hostset_find(set, name, strlen(name));
	assert_non_null(h);
	return h;
}

static bool host_has(struct rule_set *set, const char *name, const char *a)
{
	const struct rule_hostset *h = host(set, name);
	struct ip_addr x = addr(a);
	if (h->state != RULE_HOST_RESOLVED)
		return false;
	for (size_t i = 0; i < h->n_addrs; i++)
		if (ip_equal(&h->addrs[i], &x))
			return true;
	return false;
}

/* What the rules say about a TCP packet to dst. */
static struct rule_verdict verdict(const struct rule_set *set, const char *dst)
{
	struct rule_packet p = {.family = (uint8_t)set->family, .proto = RULES_IPPROTO_TCP,
				.dst_port = 443, .dst = addr(dst)};
	return rules_match(set, &p);
}

/* ---- replies built from a captured query ---- */

struct answer {
	uint16_t rcode;
	bool tc;
	const char *addrs[20];
	uint32_t ttl;
	bool cname_loop;
	int16_t id_delta;
	bool wrong_name;
	bool wrong_type;
};

static size_t make_reply(const struct sent *q, const struct answer *a, uint8_t *out)
{
	size_t n = 0, na = 0;
	while (na < 20 && a->addrs[na])
		na++;
	uint16_t id = (uint16_t)((q->payload[0] << 8 | q->payload[1]) + a->id_delta);
	out[n++] = (uint8_t)(id >> 8);
	out[n++] = (uint8_t)id;
	out[n++] = (uint8_t)(0x81 | (a->tc ? 0x02 : 0));
	out[n++] = (uint8_t)(0x80 | a->rcode);
	uint16_t an = a->cname_loop ? 2 : (uint16_t)na;
	uint8_t counts[8] = {0, 1, (uint8_t)(an >> 8), (uint8_t)an, 0, 0, 0, 0};
	memcpy(out + n, counts, 8);
	n += 8;
	memcpy(out + n, q->payload + 12, q->len - 12); /* the question */
	if (a->wrong_name)
		out[n + 1] ^= 0x01; /* flip a bit of the first letter */
	if (a->wrong_type)
		out[n + q->len - 12 - 3] ^= 0x01;
	n += q->len - 12;
	if (a->cname_loop) {
		/* qname CNAME x.loop; x.loop CNAME qname */
		static const uint8_t x[] = {1, 'x', 4, 'l', 'o', 'o', 'p', 0};
		uint8_t rr1[] = {0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, sizeof(x)};
		memcpy(out + n, rr1, sizeof(rr1));
		n += sizeof(rr1);
		size_t xoff = n;
		memcpy(out + n, x, sizeof(x));
		n += sizeof(x);
		uint8_t rr2[] = {0xc0, (uint8_t)xoff, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x0c};
		memcpy(out + n, rr2, sizeof(rr2));
		n += sizeof(rr2);
		return n;
	}
	for (size_t i = 0; i < na; i++) {
		struct ip_addr ad = addr(a->addrs[i]);
		bool v4 = ip_is_v4(&ad);
		uint8_t rr[12] = {0xc0, 0x0c, 0, v4 ? 1 : 28, 0, 1,
				  (uint8_t)(a->ttl >> 24), (uint8_t)(a->ttl >> 16),
				  (uint8_t)(a->ttl >> 8), (uint8_t)a->ttl, 0, v4 ? 4 : 16};
		memcpy(out + n, rr, sizeof(rr));
		n += sizeof(rr);
		memcpy(out + n, v4 ? ad.b + 12 : ad.b, v4 ? 4 : 16);
		n += v4 ? 4 : 16;
	}
	return n;
}

/* Delivers a reply to captured query q from its server. */
static void answer(const struct sent *q, const struct answer *a)
{
	uint8_t buf[1024];
	size_t n = make_reply(q, a, buf);
	uint8_t *copy = malloc(n);
	memcpy(copy, buf, n);
	resolver_input(res, &q->server, 53, q->sport, copy, n, now);
	free(copy);
	resolver_tick(res, now);
}

static uint16_t sent_qtype(const struct sent *q)
{
	return (uint16_t)(q->payload[q->len - 4] << 8 | q->payload[q->len - 3]);
}

static bool sent_asks(const struct sent *q, const char *name)
{
	struct dns_name n;
	assert_true(dns_name_from_text(name, strlen(name), &n));
	return q->len == DNS_HDR_LEN + n.len + 4u && memcmp(q->payload + 12, n.b, n.len) == 0;
}

/* The last datagram asking name (type qtype), or NULL. */
static const struct sent *last_query(const char *name, uint16_t qtype)
{
	for (size_t i = n_sent; i-- > 0;)
		if (sent_asks(&sent[i], name) && sent_qtype(&sent[i]) == qtype)
			return &sent[i];
	return NULL;
}

/* Moves the clock forward by ns, ticking at every wakeup on the way as the
 * application's event loop does. */
static void advance(uint64_t ns)
{
	uint64_t end = now + ns;
	for (int guard = 0;; guard++) {
		assert_true(guard < 100000);
		uint64_t w = resolver_next_wakeup(res);
		if (w > end)
			break;
		if (w > now)
			now = w;
		resolver_tick(res, now);
	}
	now = end;
	resolver_tick(res, now);
}

static const char *const one_accept[] = {"action=accept dsthost=example.com"};

/* ---- tests ---- */

static void test_resolve_at_load(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	assert_true(resolver_register_set(res, &set4, now));
	assert_int_equal(n_sent, 1); /* A only: no IPv6 set names it */
	const struct sent *q = &sent[0];
	assert_true(ip_equal(&q->server, &dns1));
	assert_int_equal(q->dport, 53);
	assert_true(q->sport >= cfg.port_lo && q->sport <= cfg.port_hi);
	assert_true(sent_asks(q, "example.com"));
	assert_int_equal(sent_qtype(q), DNS_TYPE_A);
	assert_int_equal(q->payload[2] & 0x01, 0x01); /* RD */
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_PENDING);
	assert_int_equal(verdict(&set4, "192.0.2.1").reason, RULE_BY_POLICY);

	answer(q, &(struct answer){.addrs = {"192.0.2.1", "192.0.2.2"}, .ttl = 300});
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	assert_true(host_has(&set4, "example.com", "192.0.2.2"));
	struct rule_verdict v = verdict(&set4, "192.0.2.2");
	assert_int_equal(v.reason, RULE_BY_RULE);
	assert_int_equal(v.action, RULE_ACCEPT);
	assert_int_equal(resolver_inflight(res), 0);
	assert_int_equal(resolver_get_counters(res)->answers, 1);
	/* reported for /dns/<ip>/<host> */
	assert_string_equal(report_name, "example.com");
	assert_int_equal(report_n, 2);
	/* a second set naming it gets the cached answer at once, no query */
	load_set(&set4b, RULE_FAMILY_V4, one_accept, 1);
	size_t before = n_sent;
	assert_true(resolver_register_set(res, &set4b, now));
	assert_int_equal(n_sent, before);
	assert_true(host_has(&set4b, "example.com", "192.0.2.1"));
	struct ip_addr out[4];
	assert_int_equal(resolver_lookup(res, "EXAMPLE.com", 11, 4, out, 4, now), 2);
}

static void test_both_families(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	load_set(&set6, RULE_FAMILY_V6, one_accept, 1);
	resolver_register_set(res, &set4, now);
	resolver_register_set(res, &set6, now);
	const struct sent *qa = last_query("example.com", DNS_TYPE_A);
	const struct sent *q6 = last_query("example.com", DNS_TYPE_AAAA);
	assert_non_null(qa);
	assert_non_null(q6);
	assert_int_not_equal(qa->sport, q6->sport);
	answer(q6, &(struct answer){.addrs = {"2001:db8::5"}, .ttl = 600});
	assert_true(host_has(&set6, "example.com", "2001:db8::5"));
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_PENDING);
	answer(qa, &(struct answer){.addrs = {"192.0.2.7"}, .ttl = 600});
	assert_true(host_has(&set4, "example.com", "192.0.2.7"));
	assert_false(host_has(&set6, "example.com", "192.0.2.7"));
	assert_int_equal(report_n, 2); /* both families */
}

static void test_timeouts_failover_backoff(void **state)
{
	(void)state;
	static const char *const rules[] = {"action=drop dsthost=down.example"};
	load_set(&set4, RULE_FAMILY_V4, rules, 1);
	resolver_register_set(res, &set4, now);
	uint64_t t0 = now;
	assert_int_equal(n_sent, 1);
	assert_int_equal(resolver_next_wakeup(res), t0 + 1 * S);
	advance(1 * S - 1);
	assert_int_equal(n_sent, 1);
	advance(1);
	/* attempt 2: the secondary, fresh port and id */
	assert_int_equal(n_sent, 2);
	assert_true(ip_equal(&sent[1].server, &dns2));
	assert_true(sent[0].sport != sent[1].sport ||
		    memcmp(sent[0].payload, sent[1].payload, 2) != 0);
	advance(2 * S); /* attempt 3 after 2 s: primary */
	assert_int_equal(n_sent, 3);
	assert_true(ip_equal(&sent[2].server, &dns1));
	advance(4 * S); /* attempt 4 after 4 s: secondary */
	assert_int_equal(n_sent, 4);
	assert_true(ip_equal(&sent[3].server, &dns2));
	assert_int_equal(host(&set4, "down.example")->state, RULE_HOST_PENDING);
	advance(8 * S); /* 15 s in: the query has failed */
	assert_int_equal(n_sent, 4);
	assert_int_equal(host(&set4, "down.example")->state, RULE_HOST_FAILED);
	assert_int_equal(resolver_get_counters(res)->timeouts, 4);
	assert_int_equal(resolver_get_counters(res)->failures, 1);
	/* D4: an unresolved drop rule drops what reaches it */
	struct rule_verdict v = verdict(&set4, "198.51.100.1");
	assert_int_equal(v.action, RULE_DROP);
	assert_int_equal(v.reason, RULE_BY_UNRESOLVED);
	/* retried after 2 s, then (after another 15 s failure) after 4 s */
	advance(2 * S - 1);
	assert_int_equal(n_sent, 4);
	advance(1);
	assert_int_equal(n_sent, 5);
	advance(15 * S);
	assert_int_equal(resolver_get_counters(res)->failures, 2);
	size_t before = n_sent;
	advance(4 * S - 1);
	assert_int_equal(n_sent, before);
	advance(1);
	assert_int_equal(n_sent, before + 1);
	/* the backoff is capped at retry_max (60 s) */
	for (int i = 0; i < 10; i++)
		advance(100 * S);
	uint64_t gap_start = now;
	before = n_sent;
	while (n_sent == before)
		advance(1 * S);
	assert_true(now - gap_start <= 60 * S + 15 * S);
}

static void test_floods_of_bad_replies(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	const struct sent q = sent[0];
	uint8_t buf[1024];
	size_t n;
	struct resolver_counters c0 = *resolver_get_counters(res);
	uint64_t wake = resolver_next_wakeup(res);

	for (int i = 0; i < 2000; i++) {
		struct answer good = {.addrs = {"6.6.6.6"}, .ttl = 9999};
		switch (i % 8) {
		case 0: /* to a port nobody waits on */
			n = make_reply(&q, &good, buf);
			resolver_input(res, &q.server, 53, (uint16_t)(q.sport ^ 1), buf, n, now);
			break;
		case 1: /* from another address */
			n = make_reply(&q, &good, buf);
			resolver_input(res, &other_server, 53, q.sport, buf, n, now);
			break;
		case 2: /* from the other configured server */
			n = make_reply(&q, &good, buf);
			resolver_input(res, &dns2, 53, q.sport, buf, n, now);
			break;
		case 3: /* from another source port */
			n = make_reply(&q, &good, buf);
			resolver_input(res, &q.server, 5353, q.sport, buf, n, now);
			break;
		case 4: /* wrong id */
			good.id_delta = (int16_t)(1 + i);
			n = make_reply(&q, &good, buf);
			resolver_input(res, &q.server, 53, q.sport, buf, n, now);
			break;
		case 5: /* wrong name */
			good.wrong_name = true;
			n = make_reply(&q, &good, buf);
			resolver_input(res, &q.server, 53, q.sport, buf, n, now);
			break;
		case 6: /* wrong type */
			good.wrong_type = true;
			n = make_reply(&q, &good, buf);
			resolver_input(res, &q.server, 53, q.sport, buf, n, now);
			break;
		default: /* garbage of every length */
			for (size_t k = 0; k < sizeof(buf); k++)
				buf[k] = (uint8_t)(k * 7 + (size_t)i);
			resolver_input(res, &q.server, 53, q.sport, buf, (size_t)i % 40, now);
			break;
		}
	}
	const struct resolver_counters *c = resolver_get_counters(res);
	assert_int_equal(c->unsolicited - c0.unsolicited, 250);
	assert_int_equal(c->wrong_source - c0.wrong_source, 750);
	assert_int_equal(c->mismatched - c0.mismatched, 750);
	assert_int_equal(c->malformed - c0.malformed, 250);
	/* no side effect: still waiting, same deadline, nothing learned */
	assert_int_equal(resolver_inflight(res), 1);
	assert_int_equal(resolver_next_wakeup(res), wake);
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_PENDING);
	assert_int_equal(n_sent, 1);
	assert_int_equal(c->answers, 0);
	/* the real answer still works; a duplicate of it changes nothing */
	answer(&q, &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	answer(&q, &(struct answer){.addrs = {"6.6.6.6"}, .ttl = 300});
	assert_int_equal(resolver_get_counters(res)->duplicates, 1);
	assert_false(host_has(&set4, "example.com", "6.6.6.6"));
	assert_int_equal(host(&set4, "example.com")->n_addrs, 1);
	/* the log is rate-limited: bounded lines for thousands of drops */
	char line[LOG_LINE_MAX + 8];
	size_t lines = 0;
	while (log_drain_line(line, sizeof(line)) > 0)
		lines++;
	assert_true(lines < 200);
}

static void test_cname_loop_truncated_servfail(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	answer(&sent[0], &(struct answer){.cname_loop = true});
	assert_int_equal(resolver_get_counters(res)->bad_answers, 1);
	/* the next attempt goes at once to the secondary */
	assert_int_equal(n_sent, 2);
	assert_true(ip_equal(&sent[1].server, &dns2));
	answer(&sent[1], &(struct answer){.tc = true, .addrs = {"192.0.2.1"}, .ttl = 60});
	assert_int_equal(resolver_get_counters(res)->truncated, 1);
	assert_int_equal(n_sent, 3);
	assert_true(ip_equal(&sent[2].server, &dns1));
	answer(&sent[2], &(struct answer){.rcode = DNS_RCODE_SERVFAIL});
	assert_int_equal(resolver_get_counters(res)->server_errors, 1);
	assert_int_equal(n_sent, 4);
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_PENDING);
	answer(&sent[3], &(struct answer){.rcode = DNS_RCODE_REFUSED});
	/* four attempts used: failed, nothing accepted from the bad answers */
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_FAILED);
	assert_int_equal(verdict(&set4, "192.0.2.1").reason, RULE_BY_POLICY);
	assert_int_equal(resolver_get_counters(res)->failures, 1);
}

static void test_nxdomain_and_nodata(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	answer(&sent[0], &(struct answer){.rcode = DNS_RCODE_NXDOMAIN});
	assert_int_equal(resolver_get_counters(res)->negative, 1);
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_FAILED);
	assert_int_equal(n_sent, 1); /* no retry to the other server */
	advance(cfg.negative_ns - 1);
	assert_int_equal(n_sent, 1);
	advance(1);
	assert_int_equal(n_sent, 2);
	answer(&sent[1], &(struct answer){.ttl = 5}); /* NOERROR, no address */
	assert_int_equal(resolver_get_counters(res)->negative, 2);
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_FAILED);
}

static void test_refresh_and_grace(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	uint64_t t0 = now;
	answer(&sent[0], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 100});
	/* refreshed at 3/4 of the TTL, not before */
	advance(75 * S - 1);
	assert_int_equal(n_sent, 1);
	advance(1);
	assert_int_equal(n_sent, 2);
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	/* the CDN rotated: the old address stays for the grace period */
	answer(&sent[1], &(struct answer){.addrs = {"192.0.2.9"}, .ttl = 100});
	uint64_t t1 = now;
	assert_true(host_has(&set4, "example.com", "192.0.2.9"));
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	assert_int_equal(report_n, 2);
	/* keep answering the new address at each refresh */
	while (now < t1 + cfg.grace_ns + S) {
		size_t before = n_sent;
		advance(S);
		if (n_sent > before)
			answer(&sent[n_sent - 1],
			       &(struct answer){.addrs = {"192.0.2.9"}, .ttl = 100});
		if (now < t1 + cfg.grace_ns)
			assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	}
	assert_false(host_has(&set4, "example.com", "192.0.2.1"));
	assert_true(host_has(&set4, "example.com", "192.0.2.9"));
	assert_int_equal(report_n, 1);
	(void)t0;
}

static void test_ttl_clamped(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	answer(&sent[0], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 0});
	/* TTL 0 is raised to 30 s: refreshed at 22.5 s, not in a loop */
	advance(22 * S);
	assert_int_equal(n_sent, 1);
	advance(S);
	assert_int_equal(n_sent, 2);
	answer(&sent[1], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 0x7fffffff});
	/* a huge TTL is cut to one day */
	uint64_t t = now;
	while (n_sent == 2 && now < t + 2ull * 86400 * S)
		advance(3600 * S);
	assert_true(now - t <= 86400 * S);
}

static void test_refresh_fails_grace_then_unresolved(void **state)
{
	(void)state;
	static const char *const rules[] = {"action=drop dsthost=example.com"};
	load_set(&set4, RULE_FAMILY_V4, rules, 1);
	resolver_register_set(res, &set4, now);
	uint64_t t0 = now;
	answer(&sent[0], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 40});
	/* DNS goes silent: the address stays valid for TTL + grace */
	while (now < t0 + 40 * S + cfg.grace_ns - S) {
		advance(S);
		assert_true(host_has(&set4, "example.com", "192.0.2.1"));
		assert_int_equal(verdict(&set4, "192.0.2.1").reason, RULE_BY_RULE);
		assert_int_equal(verdict(&set4, "192.0.2.2").reason, RULE_BY_POLICY);
	}
	assert_true(resolver_get_counters(res)->failures >= 1);
	advance(2 * S);
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_FAILED);
	assert_int_equal(verdict(&set4, "192.0.2.2").reason, RULE_BY_UNRESOLVED);
	assert_int_equal(report_n, 0);
}

static void test_dns_down_at_start_then_back(void **state)
{
	(void)state;
	static const char *const ra[] = {"action=accept dsthost=a.example"};
	static const char *const rb[] = {"action=drop dsthost=b.example"};
	load_set(&set4, RULE_FAMILY_V4, ra, 1);
	load_set(&set4b, RULE_FAMILY_V4, rb, 1);
	resolver_register_set(res, &set4b, now);
	advance(30 * S); /* the two names run out of step */
	resolver_register_set(res, &set4, now);
	/* nobody answers for two minutes */
	advance(120 * S);
	assert_int_equal(host(&set4, "a.example")->state, RULE_HOST_FAILED);
	assert_int_equal(host(&set4b, "b.example")->state, RULE_HOST_FAILED);
	/* fail closed: accept names match nothing, drop names drop */
	assert_int_equal(verdict(&set4, "192.0.2.1").reason, RULE_BY_POLICY);
	struct rule_verdict v = verdict(&set4b, "192.0.2.1");
	assert_int_equal(v.action, RULE_DROP);
	assert_int_equal(v.reason, RULE_BY_UNRESOLVED);
	/* bounded traffic meanwhile: 4 attempts per try, tries backing off */
	assert_true(n_sent <= (size_t)2 * 4 * 7);
	/* wait for a try of a while b sits in its backoff */
	const struct sent *qa, *qb;
	for (int guard = 0;; guard++) {
		assert_true(guard < 1000);
		advance(S);
		qa = last_query("a.example", DNS_TYPE_A);
		qb = last_query("b.example", DNS_TYPE_A);
		if (qa->at > now - S && now - qb->at > 8 * S)
			break;
	}
	/* DNS comes back: the answer for a brings b's retry forward to now */
	size_t before = n_sent;
	answer(qa, &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
	assert_int_equal(n_sent, before + 1);
	qb = last_query("b.example", DNS_TYPE_A);
	assert_int_equal(qb->at, now);
	answer(qb, &(struct answer){.addrs = {"192.0.2.66"}, .ttl = 300});
	assert_true(host_has(&set4, "a.example", "192.0.2.1"));
	assert_true(host_has(&set4b, "b.example", "192.0.2.66"));
	assert_int_equal(verdict(&set4, "192.0.2.1").action, RULE_ACCEPT);
	assert_int_equal(verdict(&set4b, "192.0.2.5").reason, RULE_BY_POLICY);
	assert_int_equal(verdict(&set4b, "192.0.2.66").reason, RULE_BY_RULE);
}

static void test_servers_change_and_none(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	const struct sent old = sent[0];
	struct ip_addr ns[2] = {addr("10.0.0.53"), addr("10.0.0.54")};
	resolver_set_servers(res, ns, 2, now);
	assert_int_equal(n_sent, 2);
	assert_true(ip_equal(&sent[1].server, &ns[0]));
	/* a late reply from the old server to the old port is dropped */
	answer(&old, &(struct answer){.addrs = {"6.6.6.6"}, .ttl = 60});
	assert_false(host_has(&set4, "example.com", "6.6.6.6"));
	answer(&sent[1], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 60});
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	/* no server at all: due queries fail at once, nothing is sent */
	resolver_set_servers(res, NULL, 0, now);
	size_t before = n_sent;
	advance(60 * S);
	assert_int_equal(n_sent, before);
	for (int i = 0; i < 400; i++)
		advance(S);
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_FAILED);
	assert_int_equal(n_sent, before);
}

static void test_inflight_bound(void **state)
{
	(void)state;
	cfg.max_inflight = 4;
	cfg.port_lo = 40000;
	cfg.port_hi = 40007;
	make_resolver();
	static const char *const rules[] = {
		"action=accept dsthost=n1.example", "action=accept dsthost=n2.example",
		"action=accept dsthost=n3.example", "action=accept dsthost=n4.example",
		"action=accept dsthost=n5.example", "action=accept dsthost=n6.example",
		"action=accept dsthost=n7.example"};
	load_set(&set4, RULE_FAMILY_V4, rules, 7);
	resolver_register_set(res, &set4, now);
	assert_int_equal(n_sent, 4);
	assert_int_equal(resolver_inflight(res), 4);
	assert_true(resolver_get_counters(res)->deferred >= 1);
	/* ports are distinct and in range */
	for (size_t i = 0; i < 4; i++) {
		assert_true(sent[i].sport >= 40000 && sent[i].sport <= 40007);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(sent[i].sport, sent[j].sport);
	}
	/* nothing more goes out while the slots are busy */
	advance(S / 2);
	assert_int_equal(n_sent, 4);
	answer(&sent[0], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
	assert_int_equal(n_sent, 5);
	assert_int_equal(resolver_inflight(res), 4);
	/* answer everything as it comes: all seven resolve */
	for (int round = 0; round < 20 && resolver_inflight(res) > 0; round++)
		for (size_t i = 1; i < n_sent; i++)
			answer(&sent[i], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
	for (int k = 1; k <= 7; k++) {
		char nm[32];
		(void)snprintf(nm, sizeof(nm), "n%d.example", k);
		assert_true(host_has(&set4, nm, "192.0.2.1"));
	}
	assert_true(resolver_inflight(res) <= 4);
}

static void test_unregister(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	resolver_unregister_set(res, &set4);
	answer(&sent[0], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_PENDING);
	/* unreferenced names are not refreshed */
	size_t before = n_sent;
	for (int i = 0; i < 10; i++)
		advance(60 * S);
	assert_int_equal(n_sent, before);
	resolver_unregister_set(res, &set4); /* twice: ignored */
}

static void test_registration_table_full(void **state)
{
	(void)state;
	cfg.max_sets = 1;
	cfg.max_names = 1;
	make_resolver();
	static const char *const two[] = {"action=drop dsthost=a.example",
					  "action=accept dsthost=b.example"};
	load_set(&set4, RULE_FAMILY_V4, two, 2);
	assert_true(resolver_register_set(res, &set4, now));
	/* the second name found no room: failed (fail closed), alone */
	assert_int_equal(host(&set4, "b.example")->state, RULE_HOST_FAILED);
	assert_int_equal(host(&set4, "a.example")->state, RULE_HOST_PENDING);
	load_set(&set4b, RULE_FAMILY_V4, two, 2);
	assert_false(resolver_register_set(res, &set4b, now));
	assert_int_equal(host(&set4b, "a.example")->state, RULE_HOST_FAILED);
	assert_int_equal(verdict(&set4b, "1.1.1.1").reason, RULE_BY_UNRESOLVED);
	assert_true(resolver_get_counters(res)->table_full >= 2);
}

/* A client's own DNS reply for name, as the router's observer sees it. */
static size_t client_reply(uint8_t *buf, const char *name, uint16_t qtype,
			   const char *const *addrs, size_t n, uint32_t ttl)
{
	struct sent q = {0};
	struct dns_name w;
	assert_true(dns_name_from_text(name, strlen(name), &w));
	q.len = dns_build_query(q.payload, sizeof(q.payload), 0x4242, &w, qtype);
	struct answer a = {.ttl = ttl};
	for (size_t i = 0; i < n; i++)
		a.addrs[i] = addrs[i];
	return make_reply(&q, &a, buf);
}

static void test_learn_from_client_answers(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	load_set(&set6, RULE_FAMILY_V6, one_accept, 1);
	resolver_register_set(res, &set4, now);
	resolver_register_set(res, &set6, now);
	answer(last_query("example.com", DNS_TYPE_A),
	       &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
	struct rule_set *sets[2] = {&set4, &set6};
	uint8_t buf[1024];
	static const char *const cdn[] = {"203.0.113.9", "203.0.113.10"};
	size_t n = client_reply(buf, "Example.COM", DNS_TYPE_A, cdn, 2, 60);

	/* from a server that is not configured: rejected */
	resolver_observe_client_answer(res, sets, 2, buf, n, &other_server, now);
	assert_false(host_has(&set4, "example.com", "203.0.113.9"));
	assert_int_equal(resolver_get_counters(res)->learn_ignored, 1);
	/* from the configured server: added, the resolver's own kept */
	resolver_observe_client_answer(res, sets, 2, buf, n, &dns2, now);
	assert_true(host_has(&set4, "example.com", "203.0.113.9"));
	assert_true(host_has(&set4, "example.com", "203.0.113.10"));
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
	assert_int_equal(verdict(&set4, "203.0.113.9").action, RULE_ACCEPT);
	assert_int_equal(host(&set6, "example.com")->state, RULE_HOST_PENDING);
	/* the resolver's own cache and report are unchanged */
	struct ip_addr out[8];
	assert_int_equal(resolver_lookup(res, "example.com", 11, 4, out, 8, now), 1);
	/* other sets (other clients) do not learn it */
	load_set(&set4b, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4b, now);
	assert_false(host_has(&set4b, "example.com", "203.0.113.9"));
	/* a name the client's rules do not name: ignored */
	uint64_t ign = resolver_get_counters(res)->learn_ignored;
	n = client_reply(buf, "other.example", DNS_TYPE_A, cdn, 1, 60);
	resolver_observe_client_answer(res, sets, 2, buf, n, &dns1, now);
	assert_int_equal(resolver_get_counters(res)->learn_ignored, ign + 1);
	/* AAAA answers go to the IPv6 set */
	static const char *const v6[] = {"2001:db8::77"};
	n = client_reply(buf, "example.com", DNS_TYPE_AAAA, v6, 1, 60);
	resolver_observe_client_answer(res, sets, 2, buf, n, &dns1, now);
	assert_true(host_has(&set6, "example.com", "2001:db8::77"));
	/* malformed, truncated or NXDOMAIN replies teach nothing */
	n = client_reply(buf, "example.com", DNS_TYPE_A, cdn, 1, 60);
	buf[2] |= 0x02;
	resolver_observe_client_answer(res, sets, 2, buf, n, &dns1, now);
	for (size_t len = 0; len < n; len++)
		resolver_observe_client_answer(res, sets, 2, buf, len, &dns1, now);
	/* learned addresses expire after TTL (clamped to 30 s) + grace */
	static const char *const shortlived[] = {"203.0.113.50"};
	n = client_reply(buf, "example.com", DNS_TYPE_A, shortlived, 1, 1);
	uint64_t t = now;
	resolver_observe_client_answer(res, sets, 2, buf, n, &dns1, now);
	assert_true(host_has(&set4, "example.com", "203.0.113.50"));
	while (now < t + 30 * S + cfg.grace_ns - S) {
		advance(10 * S);
		if (n_sent > 0 && resolver_inflight(res) > 0)
			answer(&sent[n_sent - 1],
			       &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 300});
		if (now < t + 30 * S + cfg.grace_ns)
			assert_true(host_has(&set4, "example.com", "203.0.113.50"));
	}
	advance(2 * S);
	assert_false(host_has(&set4, "example.com", "203.0.113.50"));
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
}

static void test_learn_bounded(void **state)
{
	(void)state;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	answer(&sent[0], &(struct answer){.addrs = {"192.0.2.1"}, .ttl = 3600});
	struct rule_set *sets[1] = {&set4};
	uint8_t buf[1024];
	char texts[40][32];
	const char *one[1];
	/* 40 learned addresses, each with a longer TTL than the last */
	for (int i = 0; i < 40; i++) {
		(void)snprintf(texts[i], sizeof(texts[i]), "198.51.100.%d", i + 1);
		one[0] = texts[i];
		size_t n = client_reply(buf, "example.com", DNS_TYPE_A, one, 1,
					(uint32_t)(100 + i));
		resolver_observe_client_answer(res, sets, 1, buf, n, &dns1, now);
		assert_true(host(&set4, "example.com")->n_addrs <= RULES_HOST_ADDRS_MAX);
	}
	/* full: the addresses expiring first were left out, the newest kept */
	assert_int_equal(host(&set4, "example.com")->n_addrs, RULES_HOST_ADDRS_MAX);
	assert_true(host_has(&set4, "example.com", texts[39]));
	assert_false(host_has(&set4, "example.com", texts[0]));
	/* the resolver's own answer (TTL 3600) expires last: kept */
	assert_true(host_has(&set4, "example.com", "192.0.2.1"));
}

static void test_config_and_arena(void **state)
{
	(void)state;
	struct resolver_config c;
	resolver_config_default(&c);
	c.port_hi = (uint16_t)(c.port_lo + 10); /* fewer than 2 × max_inflight ports */
	assert_int_equal(resolver_memory_needed(&c), 0);
	resolver_config_default(&c);
	c.attempts = 0;
	assert_int_equal(resolver_memory_needed(&c), 0);
	resolver_config_default(&c);
	uint8_t small[256];
	struct arena a;
	struct resolver *r2;
	arena_init(&a, small, sizeof(small));
	assert_false(resolver_init(&r2, &a, &c, fake_send, &n_sent));
	/* nothing due: tick is a no-op and there is no wakeup */
	assert_int_equal(resolver_next_wakeup(res), UINT64_MAX);
	advance(1000 * S);
	assert_int_equal(n_sent, 0);
	/* send failures (no uplink) count and time out like lost datagrams */
	send_ok = false;
	load_set(&set4, RULE_FAMILY_V4, one_accept, 1);
	resolver_register_set(res, &set4, now);
	assert_int_equal(resolver_get_counters(res)->send_failures, 1);
	advance(16 * S); /* failed at 15 s, next try at 17 s */
	assert_int_equal(host(&set4, "example.com")->state, RULE_HOST_FAILED);
	/* the uplink came back: retry_now asks at once */
	send_ok = true;
	size_t before = n_sent;
	resolver_retry_now(res, now);
	assert_int_equal(n_sent, before + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve_at_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_families, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts_failover_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_floods_of_bad_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cname_loop_truncated_servfail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nxdomain_and_nodata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_and_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_fails_grace_then_unresolved, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dns_down_at_start_then_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_servers_change_and_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unregister, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registration_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn_from_client_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_and_arena, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
