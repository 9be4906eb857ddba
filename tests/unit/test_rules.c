/* test_rules.c — Qubes firewall rules: parsing (specs/qubes-protocols.md
 * §6.7 vectors A–E) and matching.
 *
 * Where a vector shows mirage and Linux disagreeing, the expectation here
 * is our decision (DESIGN.md §2, D1–D14) and a comment names the
 * divergence. Every value is parsed from an exact-size heap copy so ASan
 * catches reads past an entry's length. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/rules.h"

/* The expectation tables list only the fields that matter per row. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define V4 RULE_FAMILY_V4
#define V6 RULE_FAMILY_V6

static struct rule_set set;
static struct rule_set other;

static struct ip_addr addr(const char *text)
{
	struct ip_addr a;
	if (!ip_parse(text, strlen(text), &a))
		fail_msg("bad test address %s", text);
	return a;
}

/* The virtual DNS servers of a Qubes client (spec §5.2). */
static struct ip_addr dns_servers[2];

static void set_default_dns(void)
{
	dns_servers[0] = addr("10.139.1.1");
	dns_servers[1] = addr("10.139.1.2");
}

static char *heap_copy(const char *s, size_t len)
{
	char *c = malloc(len ? len : 1);
	assert_non_null(c);
	memcpy(c, s, len); /* NOLINT(bugprone-not-null-terminated-result): by design */
	return c;
}

/* Parses (key, value) pairs given as a NULL-terminated list. */
static enum rules_result load_list(struct rule_set *s, enum rule_family fam,
				   const char *const *kv)
{
	struct rules_entry e[64] = {{0}};
	size_t n = 0;

	for (; kv[2 * n] != NULL; n++) {
		assert_true(n < 64);
		e[n].key_len = strlen(kv[2 * n]);
		e[n].key = heap_copy(kv[2 * n], e[n].key_len);
		e[n].value_len = strlen(kv[2 * n + 1]);
		e[n].value = heap_copy(kv[2 * n + 1], e[n].value_len);
	}
	enum rules_result r = rules_parse(s, fam, e, n, dns_servers, 2);
	for (size_t i = 0; i < n; i++) {
		free((void *)e[i].key);
		free((void *)e[i].value);
	}
	if (r != RULES_OK) {
		/* Every error is exactly "drop everything", with a message. */
		assert_true(s->failed);
		assert_int_equal(s->n_rules, 0);
		assert_int_equal(s->policy, RULE_DROP);
		assert_true(strlen(s->error) > 0);
	} else {
		assert_false(s->failed);
		for (size_t i = 1; i < s->n_rules; i++)
			assert_true(s->rules[i - 1].number < s->rules[i].number);
	}
	return r;
}

#define LOAD(fam, ...) load_list(&set, (fam), (const char *const[]){__VA_ARGS__, NULL})

/* One rule under policy drop, key 0000. */
static enum rules_result load_one(enum rule_family fam, const char *rule)
{
	return LOAD(fam, "policy", "drop", "0000", rule);
}

static struct rule_packet packet(const char *proto, const char *dst, unsigned port_or_type)
{
	struct rule_packet p;
	memset(&p, 0, sizeof(p));
	p.dst = addr(dst);
	p.family = strchr(dst, ':') ? V6 : V4;
	if (strcmp(proto, "tcp") == 0)
		p.proto = RULES_IPPROTO_TCP;
	else if (strcmp(proto, "udp") == 0)
		p.proto = RULES_IPPROTO_UDP;
	else if (strcmp(proto, "icmp") == 0)
		p.proto = p.family == V6 ? RULES_IPPROTO_ICMPV6 : RULES_IPPROTO_ICMP;
	else if (strcmp(proto, "gre") == 0)
		p.proto = 47;
	else
		fail_msg("bad test proto %s", proto);
	if (p.proto == RULES_IPPROTO_TCP || p.proto == RULES_IPPROTO_UDP)
		p.dst_port = (uint16_t)port_or_type;
	else
		p.icmp_type = (uint8_t)port_or_type;
	return p;
}

static struct rule_verdict match(const char *proto, const char *dst, unsigned port)
{
	struct rule_packet p = packet(proto, dst, port);
	struct rule_verdict v = rules_match(&set, &p);
	/* D11 helper is the same decision. */
	assert_int_equal(rules_flow_allowed(&set, &p), v.action == RULE_ACCEPT);
	return v;
}

static bool accepts(const char *proto, const char *dst, unsigned port)
{
	return match(proto, dst, port).action == RULE_ACCEPT;
}

/* Expected decision: rule `number` decided with `action`. */
static void expect_rule(const char *proto, const char *dst, unsigned port, enum rule_action action,
			unsigned number)
{
	struct rule_verdict v = match(proto, dst, port);
	if (v.action != action || v.reason != RULE_BY_RULE || v.number != number)
		fail_msg("%s %s:%u: got %s by %s %u, want %s by rule %u", proto, dst, port,
			 rules_action_name(v.action), rules_reason_name(v.reason), v.number,
			 rules_action_name(action), number);
}

static void expect_policy(const char *proto, const char *dst, unsigned port,
			  enum rule_action action)
{
	struct rule_verdict v = match(proto, dst, port);
	assert_int_equal(v.reason, RULE_BY_POLICY);
	assert_int_equal(v.action, action);
}

/* ---- expected parse results ---- */

struct expect {
	const char *rule;
	uint8_t family;
	bool ok;
	uint8_t action;
	uint8_t proto;
	uint8_t dst;
	const char *dst_text; /* prefix "a/len" or host name */
	bool dns;
	bool ports;
	uint16_t lo, hi;
	bool icmp;
	uint8_t type;
};

static void check_expect(const struct expect *x)
{
	enum rules_result r = load_one(x->family, x->rule);
	if ((r == RULES_OK) != x->ok)
		fail_msg("\"%s\": %s (%s)", x->rule, r == RULES_OK ? "accepted" : "refused",
			 set.error);
	if (!x->ok) {
		/* The message names the key. */
		assert_non_null(strstr(set.error, "0000"));
		struct rule_verdict v = match("tcp", x->family == V6 ? "2001::1" : "1.2.3.4", 80);
		assert_int_equal(v.action, RULE_DROP);
		assert_int_equal(v.reason, RULE_BY_ERROR);
		return;
	}
	assert_int_equal(set.n_rules, 1);
	const struct rule *ru = &set.rules[0];
	assert_int_equal(ru->number, 0);
	assert_int_equal(ru->action, x->action);
	assert_int_equal(ru->proto, x->proto);
	assert_int_equal(ru->dst, x->dst);
	assert_int_equal(ru->dns, x->dns);
	assert_int_equal(ru->has_ports, x->ports);
	if (x->ports) {
		assert_int_equal(ru->port_lo, x->lo);
		assert_int_equal(ru->port_hi, x->hi);
	}
	assert_int_equal(ru->has_icmp_type, x->icmp);
	if (x->icmp)
		assert_int_equal(ru->icmp_type, x->type);
	if (x->dst == RULE_DST_PREFIX) {
		const char *slash = strchr(x->dst_text, '/');
		assert_non_null(slash);
		char a[64];
		memcpy(a, x->dst_text, (size_t)(slash - x->dst_text));
		a[slash - x->dst_text] = '\0';
		struct ip_addr want = addr(a);
		assert_true(ip_equal(&ru->prefix.addr, &want));
		assert_int_equal(ru->prefix.len, atoi(slash + 1));
	} else if (x->dst == RULE_DST_HOST) {
		assert_true(ru->host < set.n_hosts);
		assert_string_equal(set.hosts[ru->host].name, x->dst_text);
		assert_int_equal(set.hosts[ru->host].state, RULE_HOST_PENDING);
	}

	/* Text round trip: the formatted rule parses to the same rule. */
	char text[300];
	size_t n = rules_format_rule(&set, ru, text, sizeof(text));
	assert_true(n < sizeof(text));
	assert_int_equal(strlen(text), n);
	struct rule before = *ru;
	char host_before[RULES_HOSTNAME_MAX + 1] = "";
	if (ru->dst == RULE_DST_HOST)
		strcpy(host_before, set.hosts[ru->host].name);
	if (load_one(x->family, text) != RULES_OK)
		fail_msg("formatted \"%s\" does not parse: %s", text, set.error);
	const struct rule *again = &set.rules[0];
	assert_int_equal(again->action, before.action);
	assert_int_equal(again->proto, before.proto);
	assert_int_equal(again->dst, before.dst);
	assert_int_equal(again->dns, before.dns);
	assert_int_equal(again->has_ports, before.has_ports);
	assert_int_equal(again->port_lo, before.port_lo);
	assert_int_equal(again->port_hi, before.port_hi);
	assert_int_equal(again->has_icmp_type, before.has_icmp_type);
	assert_int_equal(again->icmp_type, before.icmp_type);
	if (before.dst == RULE_DST_PREFIX) {
		assert_true(ip_equal(&again->prefix.addr, &before.prefix.addr));
		assert_int_equal(again->prefix.len, before.prefix.len);
	}
	if (before.dst == RULE_DST_HOST)
		assert_string_equal(set.hosts[again->host].name, host_before);
}

static void check_table(const struct expect *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_expect(&t[i]);
}

#define ACC RULE_ACCEPT
#define DRP RULE_DROP
#define TCP RULE_PROTO_TCP
#define UDP RULE_PROTO_UDP
#define ICMP RULE_PROTO_ICMP
#define ANYP RULE_PROTO_ANY
#define DANY RULE_DST_ANY
#define DPFX RULE_DST_PREFIX
#define DHOST RULE_DST_HOST

/* §6.7 A: pf-qubes upstream parser tests and the DOC examples. */
static void test_vectors_a(void **state)
{
	(void)state;
	static const struct expect t[] = {
		{"", V4, false},
		{"action=accept", V4, true, ACC, ANYP, DANY},
		{"action=accept dsthost=cyber.biz", V4, true, ACC, ANYP, DHOST, "cyber.biz"},
		{"action=accept dst4=8.8.8.8 proto=udp dstports=53-53", V4, true, ACC, UDP, DPFX,
		 "8.8.8.8/32", false, true, 53, 53},
		{"action=drop dst6=2a00:1450:4000::/37 proto=tcp", V6, true, DRP, TCP, DPFX,
		 "2a00:1450:4000::/37"},
		{"action=accept specialtarget=dns", V4, true, ACC, ANYP, DANY, NULL, true},
		{"action=drop proto=tcp specialtarget=dns", V4, true, DRP, TCP, DANY, NULL, true},
		{"action=accept dst=8.8.8.8", V4, false},
		{"action=accept dst4=5.5.5.5.5", V4, false},
		{"action=drop", V4, true, DRP, ANYP, DANY},
		{"action=drop", V6, true, DRP, ANYP, DANY},
	};
	check_table(t, sizeof(t) / sizeof(t[0]));
}

/* §6.7 B: derived edge cases. */
static void test_vectors_b(void **state)
{
	(void)state;
	static const struct expect t[] = {
		/* Linux expands ports without proto to tcp+udp; we follow the DOC
		 * and pf-qubes: dstports needs proto (dom0 never emits it). */
		{"action=accept dstports=80-80", V4, false},
		/* D8: single number accepted (pf-qubes refuses, Linux accepts). */
		{"action=accept proto=tcp dstports=80",
		 V4, true, ACC, TCP, DANY, NULL, false, true, 80,
		 80},
		{"action=accept proto=tcp dstports=90-80", V4, false},
		{"action=accept proto=tcp dstports=0-65535", V4, true, ACC, TCP, DANY, NULL, false,
		 true, 0, 65535},
		{"action=accept proto=tcp dstports=1-65536", V4, false},
		{"action=accept proto=icmp icmptype=8",
		 V4, true, ACC, ICMP, DANY, NULL, false, false,
		 0, 0, true, 8},
		{"action=accept proto=tcp icmptype=8", V4, false},
		/* D14: pf-qubes allows up to 1000; dom0 caps at 255, so do we. */
		{"action=accept proto=icmp icmptype=300", V4, false},
		/* D6: order is free (pf-qubes refuses, Linux accepts). */
		{"proto=tcp action=accept", V4, true, ACC, TCP, DANY},
		{"action=accept proto=udp specialtarget=dns dstports=53-53",
		 V4, true, ACC, UDP, DANY,
		 NULL, true, true, 53, 53},
		{"action=accept specialtarget=dns proto=udp", V4, true, ACC, UDP, DANY, NULL, true},
		{"action=accept proto=tcp specialtarget=dns dstports=80-80",
		 V4, true, ACC, TCP, DANY,
		 NULL, true, true, 80, 80},
		{"action=accept dst4=10.0.0.0/8", V4, true, ACC, ANYP, DPFX, "10.0.0.0/8"},
		/* pf-qubes tolerates blanks before '/', Linux crashes: refused. */
		{"action=accept dst4=10.0.0.0 /8", V4, false},
		{"action=accept dst4=10.0.0.0/33", V4, false},
		{"action=accept dst4=10.0.0", V4, false},
		{"action=accept dst4=2001::1", V4, false},
		{"action=accept dst6=1.2.3.4", V6, false},
		/* Two destinations: pf-qubes error, Linux uses dst4: error (fail closed). */
		{"action=accept dst4=1.2.3.4/32 dsthost=a.com", V4, false},
		/* D9: '_' accepted (pf-qubes blocks all, Linux resolves). */
		{"action=accept dsthost=foo_bar.example.com", V4, true, ACC, ANYP, DHOST,
		 "foo_bar.example.com"},
		/* D7: dpi=NO ignored (Linux blocks all). */
		{"action=accept dpi=NO", V4, true, ACC, ANYP, DANY},
		{"action=accept dpi=YES", V4, false},
		{"action=accept dpi=", V4, false},
		{"action=Accept", V4, false},
		/* Trailing/double space: pf-qubes error/ok, Linux crashes: refused. */
		{"action=accept proto=tcp ", V4, false},
		{"action=accept  proto=tcp", V4, false},
		{" action=accept", V4, false},
		{"action=accept\tproto=tcp", V4, false},
		{"action=accept expire=2063292452", V4, false},
		{"action=accept comment=hello", V4, false},
	};
	check_table(t, sizeof(t) / sizeof(t[0]));
}

/* More value and consistency errors (our grammar, fail closed). */
static void test_bad_values(void **state)
{
	(void)state;
	static const char *const bad4[] = {
		"action=",
		"action",
		"=accept",
		"action=accept=1",
		"action=reject",
		"action=accept action=accept",
		"action=accept action=drop",
		"proto=tcp",
		"action=accept proto=tcp proto=tcp",
		"action=accept proto=TCP",
		"action=accept proto=sctp",
		"action=accept proto=",
		"action=accept specialtarget=ntp",
		"action=accept specialtarget=",
		"action=accept proto=udp dstports=",
		"action=accept proto=udp dstports=-",
		"action=accept proto=udp dstports=1-",
		"action=accept proto=udp dstports=-1",
		"action=accept proto=udp dstports=080-80",
		"action=accept proto=udp dstports=80-90-100",
		"action=accept proto=udp dstports=abcdef",
		"action=accept proto=udp dstports=1000000000000",
		"action=accept proto=udp dstports=+80",
		"action=accept proto=icmp dstports=1-2",
		"action=accept proto=icmp icmptype=",
		"action=accept proto=icmp icmptype=-1",
		"action=accept proto=icmp icmptype=abcde",
		"action=accept proto=icmp icmptype=600",
		"action=accept proto=icmp icmptype=256",
		"action=accept proto=icmp icmptype=08",
		"action=accept icmptype=8",
		"action=accept proto=icmp specialtarget=dns",
		"action=accept dst4=127.0.0.0/33",
		"action=accept dst4=127/8",
		"action=accept dst4=137.327.0.0/16",
		"action=accept dst4=1.2.3.4.5/32",
		"action=accept dst4=",
		"action=accept dst6=2001::1",
		"action=accept dsthost=",
		"action=accept dsthost=.",
		"action=accept dsthost=.a.com",
		"action=accept dsthost=a..com",
		"action=accept dsthost=A.com",
		"action=accept dsthost=https://qubes-os.org",
		"action=accept dsthost=a.com dsthost=a.com",
		"action=accept dsthost=a.com dst4=1.2.3.4",
		"action=accept dsthost=a.com..",
		"action=accept dsthost=www\xc3\xa9.com",
		"action=accept dsthost=a b",
		"action=accept\n",
	};
	for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++) {
		if (load_one(V4, bad4[i]) == RULES_OK)
			fail_msg("accepted \"%s\"", bad4[i]);
		assert_non_null(strstr(set.error, "rule 0000"));
	}
	assert_int_equal(load_one(V6, "action=accept dst4=3.3.3.3"), RULES_ERR_RULE);
	assert_non_null(strstr(set.error, "IPv6 subtree"));
	assert_int_equal(load_one(V4, "action=accept dst6=a::b"), RULES_ERR_RULE);
	assert_non_null(strstr(set.error, "IPv4 subtree"));
	assert_int_equal(load_one(V4, "action=accept dst=8.8.8.8"), RULES_ERR_RULE);
	assert_non_null(strstr(set.error, "unknown option \"dst\""));

	/* Host names: length and label bounds, trailing dot dropped. */
	char name[300];
	char rule[400];
	memset(name, 'a', 63);
	name[63] = '\0';
	(void)snprintf(rule, sizeof(rule), "action=accept dsthost=%s.com", name);
	assert_int_equal(load_one(V4, rule), RULES_OK);
	memset(name, 'a', 64);
	name[64] = '\0';
	(void)snprintf(rule, sizeof(rule), "action=accept dsthost=%s.com", name);
	assert_int_equal(load_one(V4, rule), RULES_ERR_RULE);
	/* 253 characters in 4 labels of 63 and one of 1. */
	(void)snprintf(name, sizeof(name), "%.63s.%.63s.%.63s.%.61s", rule + 22, rule + 22,
		       rule + 22, rule + 22);
	assert_int_equal(strlen(name), 253);
	(void)snprintf(rule, sizeof(rule), "action=accept dsthost=%s", name);
	assert_int_equal(load_one(V4, rule), RULES_OK);
	(void)snprintf(rule, sizeof(rule), "action=accept dsthost=%s.", name);
	assert_int_equal(load_one(V4, rule), RULES_OK);
	assert_string_equal(set.hosts[0].name, name);
	(void)snprintf(rule, sizeof(rule), "action=accept dsthost=%sa", name);
	assert_int_equal(load_one(V4, rule), RULES_ERR_RULE);
	assert_int_equal(load_one(V4, "action=accept dsthost=example.com."), RULES_OK);
	assert_string_equal(set.hosts[0].name, "example.com");
	assert_int_equal(load_one(V4, "action=accept dsthost=-x_.y-"), RULES_OK);
}

/* §6.7 C: everything dom0 emits parses to what dom0 meant. */
static void test_vectors_c(void **state)
{
	(void)state;
	static const struct expect t[] = {
		{"action=accept proto=icmp", V4, true, ACC, ICMP, DANY},
		{"action=accept dst4=127.0.0.1/32", V4, true, ACC, ANYP, DPFX, "127.0.0.1/32"},
		{"action=accept dst4=127.0.0.0/8", V4, true, ACC, ANYP, DPFX, "127.0.0.0/8"},
		/* Host bits not required to be zero by dom0; cleared here. */
		{"action=accept dst4=127.0.0.1/8", V4, true, ACC, ANYP, DPFX, "127.0.0.0/8"},
		{"action=accept dst6=2001:abcd:efab::3/128", V6, true, ACC, ANYP, DPFX,
		 "2001:abcd:efab::3/128"},
		{"action=accept dst6=2001:abcd:efab::/64", V6, true, ACC, ANYP, DPFX,
		 "2001:abcd:efab::/64"},
		{"action=accept dsthost=qubes-os.org", V4, true, ACC, ANYP, DHOST, "qubes-os.org"},
		{"action=accept dsthost=qubes-os.org", V6, true, ACC, ANYP, DHOST, "qubes-os.org"},
		{"action=accept proto=udp dstports=80-80",
		 V4, true, ACC, UDP, DANY, NULL, false, true,
		 80, 80},
		{"action=accept proto=tcp dstports=80-90",
		 V4, true, ACC, TCP, DANY, NULL, false, true,
		 80, 90},
		{"action=accept proto=icmp icmptype=8",
		 V6, true, ACC, ICMP, DANY, NULL, false, false,
		 0, 0, true, 8},
	};
	check_table(t, sizeof(t) / sizeof(t[0]));

	/* The four-rule list. */
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=drop proto=icmp", "0001",
			      "action=drop proto=tcp dstports=80-80", "0002",
			      "action=accept proto=udp", "0003", "action=accept specialtarget=dns"),
			 RULES_OK);
	assert_int_equal(set.n_rules, 4);
	expect_rule("icmp", "8.8.8.8", 8, RULE_DROP, 0);
	expect_rule("tcp", "8.8.8.8", 80, RULE_DROP, 1);
	expect_rule("udp", "8.8.8.8", 1234, RULE_ACCEPT, 2);
	expect_rule("tcp", "10.139.1.1", 53, RULE_ACCEPT, 3);
	expect_policy("tcp", "10.139.1.1", 54, RULE_DROP);
	expect_policy("gre", "8.8.8.8", 0, RULE_DROP);

	/* No firewall.xml: policy drop, 0000 accept — in both families. */
	assert_int_equal(LOAD(V4, "0000", "action=accept", "policy", "drop"), RULES_OK);
	expect_rule("tcp", "1.2.3.4", 443, RULE_ACCEPT, 0);
	assert_int_equal(LOAD(V6, "0000", "action=accept", "policy", "drop"), RULES_OK);
	expect_rule("tcp", "2001::1", 443, RULE_ACCEPT, 0);

	/* R3 conversion result. */
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept specialtarget=dns",
			      "0001", "action=accept proto=icmp", "0002",
			      "action=accept dst4=192.168.0.0/24 proto=tcp dstports=80-80", "0003",
			      "action=accept dsthost=qubes-os.org proto=tcp dstports=443-443"),
			 RULES_OK);
	expect_rule("tcp", "192.168.0.77", 80, RULE_ACCEPT, 2);
	expect_policy("tcp", "192.168.1.77", 80, RULE_DROP);

	/* D1: the gap vector — IPv4 subtree gets 0001 only (0000 was dst6).
	 * mirage stops at the missing 0000 and drops all; we apply 0001. */
	assert_int_equal(LOAD(V4, "policy", "drop", "0001", "action=accept"), RULES_OK);
	expect_rule("tcp", "1.2.3.4", 80, RULE_ACCEPT, 1);
	assert_int_equal(LOAD(V6, "policy", "drop", "0000", "action=accept dst6=2000::/3", "0001",
			      "action=accept"),
			 RULES_OK);
	expect_rule("tcp", "2001::1", 80, RULE_ACCEPT, 0);
	expect_rule("tcp", "fc00::1", 80, RULE_ACCEPT, 1);
}

/* §6.7 D: the Linux agent's tests. */
static void test_vectors_d(void **state)
{
	(void)state;
	/* Option order irrelevant; policy accept as the final rule. */
	assert_int_equal(
	    LOAD(V4, "policy", "accept", "0000", "proto=tcp dstports=80-80 action=drop", "0001",
		 "proto=udp specialtarget=dns action=accept", "0002", "proto=udp action=drop"),
	    RULES_OK);
	assert_int_equal(set.n_rules, 3);
	assert_int_equal(set.policy, RULE_ACCEPT);
	expect_rule("tcp", "1.1.1.1", 80, RULE_DROP, 0);
	expect_rule("udp", "10.139.1.2", 53, RULE_ACCEPT, 1);
	expect_rule("udp", "1.1.1.1", 53, RULE_DROP, 2);
	expect_policy("tcp", "1.1.1.1", 81, RULE_ACCEPT);

	assert_int_equal(LOAD(V4, "policy", "accept"), RULES_OK);
	assert_int_equal(set.n_rules, 0);
	expect_policy("tcp", "1.1.1.1", 81, RULE_ACCEPT);

	/* Missing policy, rule without action: whole source dropped. */
	assert_int_equal(LOAD(V4, "0000", "action=accept"), RULES_ERR_POLICY);
	assert_string_equal(set.error, "policy missing");
	assert_int_equal(match("tcp", "1.1.1.1", 80).reason, RULE_BY_ERROR);
	assert_int_equal(LOAD(V4, "policy", "accept", "0000", "proto=tcp"), RULES_ERR_RULE);
	assert_non_null(strstr(set.error, "no action"));
	assert_false(accepts("tcp", "1.1.1.1", 80));
	assert_int_equal(LOAD(V4, "policy", "accept", "0000", "unknown=xxx"), RULES_ERR_RULE);
	assert_false(accepts("tcp", "1.1.1.1", 80));

	/* is_blocked, with DNS servers 1.1.1.1 and 2.2.2.2. Linux evaluates one
	 * mixed list; dom0 splits it by family (dst4 only in the IPv4 subtree,
	 * dst6 only in the IPv6 one), so we load the two subtrees. */
	struct ip_addr dns[2] = {addr("1.1.1.1"), addr("2.2.2.2")};
	const char *kv4[] = {
		"policy", "drop",
		"0000", "action=drop proto=tcp dstports=80-80",
		"0001", "action=drop proto=tcp dstports=90-92",
		"0002", "action=drop proto=tcp dsthost=example.com",
		"0004", "action=drop dst4=3.3.3.3/32",
		"0005", "action=drop dst4=4.4.4.4/24",
		"0008", "action=drop proto=udp specialtarget=dns",
		"0009", "action=accept",
		NULL,
	};
	assert_int_equal(load_list(&set, V4, kv4), RULES_OK);
	rules_set_dns(&set, dns, 2);
	struct ip_addr ex4[2] = {addr("1.2.3.4"), addr("4.3.2.1")};
	assert_true(rules_hostset_update(&set, "example.com", 11, ex4, 2, 1000));
	assert_true(accepts("tcp", "10.0.0.1", 443));
	assert_true(accepts("udp", "10.0.0.1", 80));
	assert_false(accepts("tcp", "10.0.0.1", 80));
	assert_false(accepts("tcp", "10.0.0.1", 91));
	assert_false(accepts("tcp", "1.2.3.4", 123));
	assert_false(accepts("tcp", "4.3.2.1", 123));
	assert_false(accepts("tcp", "3.3.3.3", 123));
	assert_false(accepts("tcp", "4.4.4.8", 123)); /* host bits ignored */
	assert_false(accepts("udp", "1.1.1.1", 53));
	assert_false(accepts("udp", "2.2.2.2", 53));
	assert_true(accepts("udp", "3.3.3.4", 53));

	const char *kv6[] = {
		"policy", "drop",
		"0000", "action=drop proto=tcp dstports=80-80",
		"0001", "action=drop proto=tcp dstports=90-92",
		"0003", "action=drop proto=tcp dsthost=example2.com",
		"0006", "action=drop dst6=2002::3/128",
		"0007", "action=drop dst6=2003::3/112",
		"0009", "action=accept",
		NULL,
	};
	assert_int_equal(load_list(&set, V6, kv6), RULES_OK);
	struct ip_addr ex6[2] = {addr("2001::1"), addr("2001::2")};
	assert_true(rules_hostset_update(&set, "example2.com", 12, ex6, 2, 1000));
	assert_true(accepts("tcp", "2004::1", 443));
	assert_false(accepts("tcp", "2001::1", 123));
	assert_false(accepts("tcp", "2003::2", 123));
	assert_false(accepts("tcp", "2002::3", 123));
	assert_false(accepts("tcp", "2003::5", 123));
	assert_true(accepts("tcp", "2002::4", 123));

	/* Empty rule list with policy drop: blocked. */
	assert_int_equal(LOAD(V4, "policy", "drop"), RULES_OK);
	assert_false(accepts("tcp", "10.0.0.1", 443));
}

/* §6.7 E: mirage's test rule set, with our D4 decision for names. */
static void test_vectors_e(void **state)
{
	(void)state;
	const char *kv[] = {
		"policy", "drop",
		"0000", "action=accept specialtarget=dns",
		"0001", "action=accept dst4=10.137.0.5/32 proto=udp dstports=1235-1235",
		"0002", "action=accept dst4=10.137.0.5/32 proto=udp dstports=1338-1338",
		"0003", "action=accept dst4=10.137.0.5/32 proto=tcp dstports=6668-6670",
		"0004", "action=accept dst4=10.137.0.5/32 proto=icmp icmptype=8",
		"0005", "action=accept dsthost=bogus.linse.me",
		"0006", "action=drop dsthost=google.com",
		"0007", "action=accept proto=tcp dstports=443-443",
		"0008", "action=drop",
		NULL,
	};
	assert_int_equal(load_list(&set, V4, kv), RULES_OK);
	assert_int_equal(set.n_hosts, 2);
	struct ip_addr g = addr("142.250.1.1");
	assert_true(rules_hostset_update(&set, "google.com", 10, &g, 1, 1000));
	assert_true(rules_hostset_fail(&set, "bogus.linse.me", 14, 1000));

	expect_rule("udp", "10.137.0.5", 1235, RULE_ACCEPT, 1);
	expect_rule("tcp", "10.137.0.5", 53, RULE_DROP, 8);
	expect_rule("tcp", "10.137.0.5", 6667, RULE_DROP, 8);
	expect_rule("tcp", "10.137.0.5", 6671, RULE_DROP, 8);
	expect_rule("tcp", "10.137.0.5", 8082, RULE_DROP, 8);
	expect_rule("tcp", "10.137.0.5", 6668, RULE_ACCEPT, 3);
	expect_rule("tcp", "10.137.0.5", 6670, RULE_ACCEPT, 3);
	expect_rule("icmp", "10.137.0.5", 8, RULE_ACCEPT, 4);
	expect_rule("icmp", "8.8.8.8", 8, RULE_DROP, 8);
	expect_rule("udp", "8.8.8.8", 53, RULE_DROP, 8); /* not a configured DNS server */
	expect_rule("udp", "10.139.1.1", 53, RULE_ACCEPT, 0);
	expect_rule("tcp", "142.250.1.1", 443, RULE_DROP, 6);
	expect_rule("tcp", "1.1.1.1", 443, RULE_ACCEPT, 7);

	/* D4: with google.com unresolved the drop rule catches everything that
	 * reaches it (mirage would skip it and accept TCP 443 by 0007). */
	assert_true(rules_hostset_fail(&set, "google.com", 10, 2000));
	struct rule_verdict v = match("tcp", "1.1.1.1", 443);
	assert_int_equal(v.action, RULE_DROP);
	assert_int_equal(v.reason, RULE_BY_UNRESOLVED);
	assert_int_equal(v.number, 6);
	/* Earlier rules still decide first. */
	expect_rule("tcp", "10.137.0.5", 6668, RULE_ACCEPT, 3);
}

/* §6.7 E, single-rule vectors. */
static void test_vectors_e_single(void **state)
{
	(void)state;
	assert_int_equal(load_one(V4, "action=accept specialtarget=dns"), RULES_OK);
	assert_true(accepts("udp", "10.139.1.2", 53));
	assert_true(accepts("tcp", "10.139.1.1", 53));
	assert_false(accepts("udp", "10.139.1.1", 5353));
	assert_false(accepts("icmp", "10.139.1.1", 8));

	/* D2: mirage drops all UDP here; we (and Linux) drop only DNS. */
	assert_int_equal(LOAD(V4, "policy", "drop", "0000",
			      "action=drop proto=udp specialtarget=dns", "0001", "action=accept"),
			 RULES_OK);
	expect_rule("udp", "1.2.3.4", 9999, RULE_ACCEPT, 1);
	expect_rule("udp", "10.139.1.1", 53, RULE_DROP, 0);
	expect_rule("tcp", "10.139.1.1", 53, RULE_ACCEPT, 1);

	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept dst4=192.168.0.0/16",
			      "0001", "action=drop"),
			 RULES_OK);
	expect_rule("tcp", "192.168.5.5", 22, RULE_ACCEPT, 0);
	expect_rule("tcp", "10.0.0.1", 22, RULE_DROP, 1);

	assert_int_equal(load_one(V4, "action=accept proto=icmp icmptype=8"), RULES_OK);
	expect_rule("icmp", "1.2.3.4", 8, RULE_ACCEPT, 0);
	expect_policy("icmp", "1.2.3.4", 13, RULE_DROP);

	/* Unresolvable name in accept: mirage skips the rule, Linux blocks
	 * all; we skip it (D4: an accept with no address matches nothing). */
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept dsthost=nx.invalid",
			      "0001", "action=accept"),
			 RULES_OK);
	expect_rule("tcp", "1.2.3.4", 80, RULE_ACCEPT, 1);
	assert_true(rules_hostset_fail(&set, "nx.invalid", 10, 5));
	expect_rule("tcp", "1.2.3.4", 80, RULE_ACCEPT, 1);
}

static void test_ports_and_types(void **state)
{
	(void)state;
	assert_int_equal(LOAD(V4, "policy", "drop", "0000",
			      "action=accept proto=tcp dstports=1000-2000", "0001",
			      "action=accept proto=udp dstports=0-0", "0002",
			      "action=accept proto=udp dstports=65535", "0003",
			      "action=accept proto=icmp icmptype=0", "0004",
			      "action=accept proto=icmp icmptype=255"),
			 RULES_OK);
	expect_policy("tcp", "1.2.3.4", 999, RULE_DROP);
	expect_rule("tcp", "1.2.3.4", 1000, RULE_ACCEPT, 0);
	expect_rule("tcp", "1.2.3.4", 1500, RULE_ACCEPT, 0);
	expect_rule("tcp", "1.2.3.4", 2000, RULE_ACCEPT, 0);
	expect_policy("tcp", "1.2.3.4", 2001, RULE_DROP);
	expect_policy("udp", "1.2.3.4", 1500, RULE_DROP); /* tcp rule only */
	expect_rule("udp", "1.2.3.4", 0, RULE_ACCEPT, 1);
	expect_policy("udp", "1.2.3.4", 1, RULE_DROP);
	expect_rule("udp", "1.2.3.4", 65535, RULE_ACCEPT, 2);
	expect_policy("udp", "1.2.3.4", 65534, RULE_DROP);
	expect_rule("icmp", "1.2.3.4", 0, RULE_ACCEPT, 3);
	expect_rule("icmp", "1.2.3.4", 255, RULE_ACCEPT, 4);
	expect_policy("icmp", "1.2.3.4", 254, RULE_DROP);
	expect_policy("tcp", "1.2.3.4", 0, RULE_DROP);
}

static void test_prefixes(void **state)
{
	(void)state;
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept dst4=10.0.0.0/31",
			      "0001", "action=drop dst4=0.0.0.0/0 proto=udp", "0002",
			      "action=accept dst4=255.255.255.255"),
			 RULES_OK);
	expect_rule("tcp", "10.0.0.0", 1, RULE_ACCEPT, 0);
	expect_rule("tcp", "10.0.0.1", 1, RULE_ACCEPT, 0);
	expect_policy("tcp", "10.0.0.2", 1, RULE_DROP);
	expect_rule("udp", "10.0.0.2", 1, RULE_DROP, 1);
	expect_rule("tcp", "255.255.255.255", 1, RULE_ACCEPT, 2);

	assert_int_equal(
	    LOAD(V6, "policy", "accept", "0000", "action=drop dst6=2a00:1450:4000::/37", "0001",
		 "action=drop dst6=::/0 proto=udp", "0002", "action=drop dst6=fe80::1"),
	    RULES_OK);
	expect_rule("tcp", "2a00:1450:47ff::1", 1, RULE_DROP, 0);
	expect_policy("tcp", "2a00:1450:4800::1", 1, RULE_ACCEPT);
	expect_rule("udp", "2001::1", 1, RULE_DROP, 1);
	expect_rule("tcp", "fe80::1", 1, RULE_DROP, 2);
	expect_policy("tcp", "fe80::2", 1, RULE_ACCEPT);
}

/* D13/D12: families never mix; ICMP means ICMPv6 in IPv6; other protocols
 * match only rules without proto. */
static void test_families_and_protocols(void **state)
{
	(void)state;
	assert_int_equal(load_one(V4, "action=accept"), RULES_OK);
	struct rule_verdict v = match("tcp", "2001::1", 80);
	assert_int_equal(v.action, RULE_DROP);
	assert_int_equal(v.reason, RULE_BY_FAMILY);

	assert_int_equal(load_one(V6, "action=accept proto=icmp"), RULES_OK);
	expect_rule("icmp", "2001::1", 128, RULE_ACCEPT, 0);
	struct rule_packet p = packet("icmp", "2001::1", 128);
	p.proto = RULES_IPPROTO_ICMP; /* ICMPv4 inside IPv6: not "icmp" */
	assert_int_equal(rules_match(&set, &p).reason, RULE_BY_POLICY);
	assert_int_equal(load_one(V4, "action=accept proto=icmp"), RULES_OK);
	p = packet("icmp", "1.2.3.4", 8);
	p.proto = RULES_IPPROTO_ICMPV6;
	assert_int_equal(rules_match(&set, &p).reason, RULE_BY_POLICY);

	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept proto=tcp", "0001",
			      "action=accept proto=udp", "0002", "action=accept proto=icmp", "0003",
			      "action=accept dst4=9.9.9.9"),
			 RULES_OK);
	expect_rule("gre", "9.9.9.9", 0, RULE_ACCEPT, 3);
	expect_policy("gre", "9.9.9.8", 0, RULE_DROP);
	p = packet("gre", "9.9.9.9", 0);
	p.proto = 132; /* SCTP */
	assert_int_equal(rules_match(&set, &p).number, 3);

	/* specialtarget=dns in an IPv6 set matches only IPv6 servers. */
	assert_int_equal(load_one(V6, "action=accept specialtarget=dns"), RULES_OK);
	expect_policy("udp", "2001::53", 53, RULE_DROP);
	struct ip_addr d6 = addr("2001::53");
	assert_true(rules_set_dns(&set, &d6, 1));
	expect_rule("udp", "2001::53", 53, RULE_ACCEPT, 0);
}

static void test_specialtarget_dns(void **state)
{
	(void)state;
	/* With proto: tcp only. */
	assert_int_equal(load_one(V4, "action=accept proto=tcp specialtarget=dns"), RULES_OK);
	expect_rule("tcp", "10.139.1.1", 53, RULE_ACCEPT, 0);
	expect_policy("udp", "10.139.1.1", 53, RULE_DROP);
	/* D2: mirage would accept all TCP here. */
	expect_policy("tcp", "8.8.8.8", 53, RULE_DROP);
	expect_policy("tcp", "10.139.1.1", 80, RULE_DROP);

	/* dstports narrows: 80-80 with dns matches nothing (Linux skips it). */
	assert_int_equal(load_one(V4, "action=accept proto=tcp specialtarget=dns dstports=80-80"),
			 RULES_OK);
	expect_policy("tcp", "10.139.1.1", 80, RULE_DROP);
	expect_policy("tcp", "10.139.1.1", 53, RULE_DROP);
	expect_policy("tcp", "1.2.3.4", 80, RULE_DROP);
	assert_int_equal(load_one(V4, "action=accept proto=udp specialtarget=dns dstports=1-100"),
			 RULES_OK);
	expect_rule("udp", "10.139.1.2", 53, RULE_ACCEPT, 0);
	expect_policy("udp", "10.139.1.2", 54, RULE_DROP);

	/* With a destination: both must hold. */
	assert_int_equal(load_one(V4, "action=accept specialtarget=dns dst4=10.139.1.1"), RULES_OK);
	expect_rule("udp", "10.139.1.1", 53, RULE_ACCEPT, 0);
	expect_policy("udp", "10.139.1.2", 53, RULE_DROP);

	/* The DNS list can change without reloading; too many are cut. */
	assert_int_equal(load_one(V4, "action=accept specialtarget=dns"), RULES_OK);
	struct ip_addr d[RULES_DNS_MAX + 1];
	for (size_t i = 0; i <= RULES_DNS_MAX; i++) {
		char t[32];
		(void)snprintf(t, sizeof(t), "9.9.9.%zu", i);
		d[i] = addr(t);
	}
	assert_false(rules_set_dns(&set, d, RULES_DNS_MAX + 1));
	expect_policy("udp", "10.139.1.1", 53, RULE_DROP);
	expect_rule("udp", "9.9.9.0", 53, RULE_ACCEPT, 0);
	expect_policy("udp", "9.9.9.4", 53, RULE_DROP);
	assert_true(rules_set_dns(&set, NULL, 0));
	expect_policy("udp", "9.9.9.0", 53, RULE_DROP);
}

static void test_hostnames(void **state)
{
	(void)state;
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept proto=icmp", "0001",
			      "action=drop proto=tcp dsthost=ads.example", "0002",
			      "action=accept dsthost=good.example", "0003",
			      "action=accept dsthost=ads.example proto=udp", "0004",
			      "action=accept proto=tcp"),
			 RULES_OK);
	assert_int_equal(set.n_hosts, 2); /* ads.example shared by two rules */
	assert_true(rules_hostset_due(&set.hosts[0], 0));

	/* Unresolved: the drop rule catches TCP that reaches it, nothing else;
	 * the accept rules match nothing. */
	struct rule_verdict v = match("tcp", "5.5.5.5", 443);
	assert_int_equal(v.action, RULE_DROP);
	assert_int_equal(v.reason, RULE_BY_UNRESOLVED);
	assert_int_equal(v.number, 1);
	expect_rule("icmp", "5.5.5.5", 8, RULE_ACCEPT, 0);
	expect_policy("udp", "5.5.5.5", 53, RULE_DROP);

	/* Resolved: only the listed addresses; the other family is ignored. */
	struct ip_addr ads[3] = {addr("6.6.6.6"), addr("2001::6"), addr("6.6.6.7")};
	assert_true(rules_hostset_update(&set, "ads.example", 11, ads, 3, 5000));
	struct rule_hostset *h = rules_hostset_find(&set, "ads.example", 11);
	assert_non_null(h);
	assert_int_equal(h->state, RULE_HOST_RESOLVED);
	assert_int_equal(h->n_addrs, 2);
	assert_false(rules_hostset_due(h, 4999));
	assert_true(rules_hostset_due(h, 5000));
	expect_rule("tcp", "6.6.6.7", 443, RULE_DROP, 1);
	expect_rule("tcp", "5.5.5.5", 443, RULE_ACCEPT, 4);
	expect_rule("udp", "6.6.6.6", 53, RULE_ACCEPT, 3);
	expect_policy("udp", "5.5.5.5", 53, RULE_DROP);

	struct ip_addr good = addr("7.7.7.7");
	assert_true(rules_hostset_update(&set, "good.example", 12, &good, 1, 5000));
	expect_rule("udp", "7.7.7.7", 9, RULE_ACCEPT, 2);

	/* An answer with no address of our family counts as a failure. */
	struct ip_addr only6 = addr("2001::7");
	assert_true(rules_hostset_update(&set, "good.example", 12, &only6, 1, 6000));
	assert_int_equal(rules_hostset_find(&set, "good.example", 12)->state, RULE_HOST_FAILED);
	expect_policy("udp", "7.7.7.7", 9, RULE_DROP);

	/* Failure after success: blocks again (never fail open). */
	assert_true(rules_hostset_fail(&set, "ads.example", 11, 7000));
	assert_int_equal(match("tcp", "5.5.5.5", 443).reason, RULE_BY_UNRESOLVED);
	assert_false(rules_hostset_due(h, 6999));
	assert_true(rules_hostset_due(h, 7000));

	/* Unknown names and bad lengths are refused. */
	assert_false(rules_hostset_update(&set, "nope.example", 12, &good, 1, 1));
	assert_false(rules_hostset_fail(&set, "ads.exampl", 10, 1));
	assert_null(rules_hostset_find(&set, "ads.example", 400));
	assert_null(rules_hostset_find(&set, NULL, 0));

	/* More answers than fit: the first RULES_HOST_ADDRS_MAX are kept. */
	struct ip_addr many[RULES_HOST_ADDRS_MAX + 4];
	for (size_t i = 0; i < RULES_HOST_ADDRS_MAX + 4; i++) {
		char t[32];
		(void)snprintf(t, sizeof(t), "8.8.%zu.1", i);
		many[i] = addr(t);
	}
	assert_true(
	    rules_hostset_update(&set, "ads.example", 11, many, RULES_HOST_ADDRS_MAX + 4, 1));
	assert_int_equal(h->n_addrs, RULES_HOST_ADDRS_MAX);
	expect_rule("tcp", "8.8.0.1", 443, RULE_DROP, 1);

	/* A reload keeps earlier answers for names still present. */
	memcpy(&other, &set, sizeof(set));
	assert_int_equal(
	    LOAD(V4, "policy", "drop", "0007", "action=drop proto=tcp dsthost=ads.example", "0008",
		 "action=accept dsthost=new.example", "0009", "action=accept proto=tcp"),
	    RULES_OK);
	assert_int_equal(match("tcp", "5.5.5.5", 443).reason, RULE_BY_UNRESOLVED);
	rules_hostsets_inherit(&set, &other);
	expect_rule("tcp", "5.5.5.5", 443, RULE_ACCEPT, 9);
	expect_rule("tcp", "8.8.0.1", 443, RULE_DROP, 7);
	assert_int_equal(rules_hostset_find(&set, "new.example", 11)->state, RULE_HOST_PENDING);
	/* Not across families. */
	assert_int_equal(
	    LOAD(V6, "policy", "drop", "0007", "action=drop proto=tcp dsthost=ads.example"),
	    RULES_OK);
	rules_hostsets_inherit(&set, &other);
	assert_int_equal(set.hosts[0].state, RULE_HOST_PENDING);
}

static void test_keys(void **state)
{
	(void)state;
	/* D1: any order, gaps allowed, sorted numerically. */
	assert_int_equal(LOAD(V4, "0010", "action=drop", "0002", "action=accept proto=tcp",
			      "policy", "accept", "0005", "action=accept proto=udp", "9999",
			      "action=accept"),
			 RULES_OK);
	assert_int_equal(set.n_rules, 4);
	assert_int_equal(set.rules[0].number, 2);
	assert_int_equal(set.rules[1].number, 5);
	assert_int_equal(set.rules[2].number, 10);
	assert_int_equal(set.rules[3].number, 9999);
	expect_rule("tcp", "1.2.3.4", 1, RULE_ACCEPT, 2);
	expect_rule("udp", "1.2.3.4", 1, RULE_ACCEPT, 5);
	expect_rule("icmp", "1.2.3.4", 1, RULE_DROP, 10);

	static const char *const bad_keys[] = {
		"1",    "001",  "00001", "abcd",  "0x01",  "",      "policy ", "Policy",
		"-001", "+001", "00 1",  "0001/", "/0001", "polic", "policyy",
	};
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		const char *kv[] = {"policy", "drop", bad_keys[i], "action=accept", NULL};
		if (load_list(&set, V4, kv) != RULES_ERR_KEY)
			fail_msg("key \"%s\" accepted", bad_keys[i]);
	}
	assert_int_equal(LOAD(V4, "policy", "drop", "0001", "action=accept", "0001", "action=drop"),
			 RULES_ERR_KEY);
	assert_non_null(strstr(set.error, "0001"));
	assert_int_equal(LOAD(V4, "policy", "drop", "policy", "drop"), RULES_ERR_KEY);
	assert_int_equal(LOAD(V4, "policy", "Drop"), RULES_ERR_POLICY);
	assert_int_equal(LOAD(V4, "policy", "reject"), RULES_ERR_POLICY);
	assert_int_equal(LOAD(V4, "policy", ""), RULES_ERR_POLICY);
	assert_int_equal(LOAD(V4, "policy", "drop "), RULES_ERR_POLICY);

	/* No entries at all, and NULL pointers with zero lengths. */
	assert_int_equal(rules_parse(&set, V4, NULL, 0, NULL, 0), RULES_ERR_POLICY);
	struct rules_entry e[2] = {
		{"policy", 6, "drop", 4},
		{"0000", 4, NULL, 0},
	};
	assert_int_equal(rules_parse(&set, V4, e, 2, NULL, 0), RULES_ERR_RULE);
	assert_non_null(strstr(set.error, "empty rule"));
	e[1].value_len = 3;
	assert_int_equal(rules_parse(&set, V4, e, 2, NULL, 0), RULES_ERR_KEY);
	struct rules_entry nk = {NULL, 0, "x", 1};
	assert_int_equal(rules_parse(&set, V4, &nk, 1, NULL, 0), RULES_ERR_KEY);

	/* A failed set recovers on the next good parse. */
	assert_int_equal(load_one(V4, "action=accept"), RULES_OK);
	assert_string_equal(set.error, "");
	rules_set_failed(&set, V4, "qubesdb read failed");
	assert_true(set.failed);
	assert_string_equal(set.error, "qubesdb read failed");
	assert_int_equal(match("tcp", "1.2.3.4", 1).reason, RULE_BY_ERROR);
}

/* Capacity: RULES_MAX rules fit, one more fails closed; same for names. */
static void test_limits(void **state)
{
	(void)state;
	static struct rules_entry e[RULES_MAX + 2];
	static char keys[RULES_MAX + 2][8];
	static char values[RULES_MAX + 2][64];

	e[0] = (struct rules_entry){"policy", 6, "accept", 6};
	for (size_t i = 0; i <= RULES_MAX; i++) {
		/* Reverse order: the sort must do real work. */
		(void)snprintf(keys[i], sizeof(keys[i]), "%04zu", (size_t)RULES_MAX + 5 - i);
		(void)snprintf(values[i], sizeof(values[i]), "action=drop proto=tcp dstports=%zu",
			       i);
		e[i + 1] = (struct rules_entry){keys[i], 4, values[i], strlen(values[i])};
	}
	assert_int_equal(rules_parse(&set, V4, e, RULES_MAX + 1, NULL, 0), RULES_OK);
	assert_int_equal(set.n_rules, RULES_MAX);
	for (size_t i = 1; i < set.n_rules; i++)
		assert_true(set.rules[i - 1].number < set.rules[i].number);
	/* Key 1029-i has port i: port 0 is decided by rule 1029. */
	expect_rule("tcp", "1.2.3.4", 0, RULE_DROP, RULES_MAX + 5);
	expect_rule("tcp", "1.2.3.4", RULES_MAX - 1, RULE_DROP, 6);
	expect_policy("tcp", "1.2.3.4", RULES_MAX, RULE_ACCEPT);

	assert_int_equal(rules_parse(&set, V4, e, RULES_MAX + 2, NULL, 0), RULES_ERR_TOO_MANY);
	assert_true(set.failed);
	assert_false(accepts("tcp", "1.2.3.4", 5000));

	/* Host names: RULES_HOSTS_MAX distinct ones fit; repeats are shared. */
	for (size_t i = 0; i <= RULES_HOSTS_MAX; i++) {
		(void)snprintf(keys[i], sizeof(keys[i]), "%04zu", i);
		(void)snprintf(values[i], sizeof(values[i]), "action=drop dsthost=h%zu.example",
			       i % 1000);
		e[i + 1] = (struct rules_entry){keys[i], 4, values[i], strlen(values[i])};
	}
	assert_int_equal(rules_parse(&set, V4, e, RULES_HOSTS_MAX + 1, NULL, 0), RULES_OK);
	assert_int_equal(set.n_hosts, RULES_HOSTS_MAX);
	enum rules_result rr = rules_parse(&set, V4, e, RULES_HOSTS_MAX + 2, NULL, 0);
	if (rr != RULES_ERR_TOO_MANY)
		fail_msg("%d %s", rr, set.error);
	assert_non_null(strstr(set.error, "too many"));
	for (size_t i = 0; i <= RULES_HOSTS_MAX; i++) {
		(void)snprintf(values[i], sizeof(values[i]), "action=drop dsthost=h%zu.example",
			       i % 3);
		e[i + 1].value_len = strlen(values[i]);
	}
	assert_int_equal(rules_parse(&set, V4, e, RULES_HOSTS_MAX + 2, NULL, 0), RULES_OK);
	assert_int_equal(set.n_hosts, 3);
}

/* Every truncation of a valid rule: either a valid rule or a failed set,
 * never a read past the length. */
static void test_truncations(void **state)
{
	(void)state;
	static const char *const rules[] = {
		"action=accept dst4=192.168.100.0/24 proto=tcp dstports=1000-2000",
		"action=drop dst6=2a00:1450:4000::/37 proto=icmp icmptype=128",
		"action=accept dsthost=foo_bar.example.com proto=udp specialtarget=dns dpi=NO",
	};
	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
		size_t full = strlen(rules[r]);
		enum rule_family fam = strstr(rules[r], "dst6") ? V6 : V4;
		for (size_t k = 0; k <= full; k++) {
			char *v = heap_copy(rules[r], k);
			struct rules_entry e[2] = {{"policy", 6, "accept", 6}, {"0042", 4, v, k}};
			enum rules_result res = rules_parse(&set, fam, e, 2, dns_servers, 2);
			free(v);
			if (k == full)
				assert_int_equal(res, RULES_OK);
			if (res != RULES_OK) {
				assert_true(set.failed);
				assert_int_equal(set.n_rules, 0);
				assert_non_null(strstr(set.error, "0042"));
				assert_false(accepts("udp", fam == V6 ? "::1" : "1.1.1.1", 1));
			}
		}
	}
}

/* D11: after a rule change, a flow survives iff the new rules accept it. */
static void test_flow_after_change(void **state)
{
	(void)state;
	struct rule_packet web = packet("tcp", "1.2.3.4", 443);
	struct rule_packet ssh = packet("tcp", "1.2.3.4", 22);
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept proto=tcp"), RULES_OK);
	assert_true(rules_flow_allowed(&set, &web));
	assert_true(rules_flow_allowed(&set, &ssh));
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "action=accept proto=tcp dstports=443"),
			 RULES_OK);
	assert_true(rules_flow_allowed(&set, &web));
	assert_false(rules_flow_allowed(&set, &ssh));
	assert_int_equal(LOAD(V4, "policy", "drop", "0000", "bogus"), RULES_ERR_RULE);
	assert_false(rules_flow_allowed(&set, &web));
}

static void test_format(void **state)
{
	(void)state;
	char buf[128];
	assert_int_equal(load_one(V4, "proto=tcp dstports=80 dst4=10.1.2.3/8 action=accept"),
			 RULES_OK);
	size_t n = rules_format_rule(&set, &set.rules[0], buf, sizeof(buf));
	assert_string_equal(buf, "action=accept dst4=10.0.0.0/8 proto=tcp dstports=80-80");
	assert_int_equal(n, strlen(buf));
	/* Truncation: terminated, length still reported. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rules_format_rule(&set, &set.rules[0], buf, 10), n);
	assert_int_equal(strlen(buf), 9);
	assert_int_equal(buf[10], 'x');
	assert_int_equal(rules_format_rule(&set, &set.rules[0], NULL, 0), n);

	assert_int_equal(load_one(V6, "action=drop dst6=::ffff:1.2.3.0/120"), RULES_OK);
	rules_format_rule(&set, &set.rules[0], buf, sizeof(buf));
	assert_string_equal(buf, "action=drop dst6=::ffff:1.2.3.0/120");

	assert_string_equal(rules_reason_name(RULE_BY_POLICY), "policy");
	assert_string_equal(rules_action_name(RULE_ACCEPT), "accept");
	assert_string_equal(rules_action_name(RULE_DROP), "drop");
}

static int setup(void **state)
{
	(void)state;
	set_default_dns();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_a),
		cmocka_unit_test(test_vectors_b),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_vectors_c),
		cmocka_unit_test(test_vectors_d),
		cmocka_unit_test(test_vectors_e),
		cmocka_unit_test(test_vectors_e_single),
		cmocka_unit_test(test_ports_and_types),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_families_and_protocols),
		cmocka_unit_test(test_specialtarget_dns),
		cmocka_unit_test(test_hostnames),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_flow_after_change),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
