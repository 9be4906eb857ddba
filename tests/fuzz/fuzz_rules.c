/* fuzz_rules.c — Qubes firewall rule subtrees from dom0.
 *
 * Input: byte 0 = flags (bit 0: IPv6 subtree; bit 1: the rest is one rule
 * string under "policy=drop"; bit 2: resolve the host names), then either
 * the rule string or lines "KEY\tVALUE" separated by '\n'.
 * Invariants: never crashes or reads past a value; an error leaves exactly
 * "drop everything" with a message; a good set is sorted and consistent,
 * every rule prints back to text that parses to the same rule, and every
 * verdict names a rule that really has that action. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw/rules.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

#define MAX_ENTRIES (RULES_MAX + 64)

static struct rule_set set;
static struct rule_set again;
static struct rules_entry entries[MAX_ENTRIES];

static void check_verdict(const struct rule_set *s, const struct rule_packet *p)
{
	struct rule_verdict v = rules_match(s, p);

	CHECK(v.action == RULE_ACCEPT || v.action == RULE_DROP);
	CHECK(rules_flow_allowed(s, p) == (v.action == RULE_ACCEPT));
	switch (v.reason) {
	case RULE_BY_RULE:
		CHECK(v.index < s->n_rules && s->rules[v.index].number == v.number);
		CHECK(s->rules[v.index].action == v.action);
		break;
	case RULE_BY_UNRESOLVED:
		CHECK(v.index < s->n_rules && s->rules[v.index].number == v.number);
		CHECK(v.action == RULE_DROP && s->rules[v.index].action == RULE_DROP);
		CHECK(s->rules[v.index].dst == RULE_DST_HOST);
		CHECK(s->hosts[s->rules[v.index].host].state != RULE_HOST_RESOLVED);
		break;
	case RULE_BY_POLICY:
		CHECK(!s->failed && v.action == s->policy);
		break;
	case RULE_BY_ERROR:
		CHECK(s->failed && v.action == RULE_DROP);
		break;
	case RULE_BY_FAMILY:
		CHECK(p->family != s->family && v.action == RULE_DROP);
		break;
	default:
		CHECK(0);
	}
}

static void check_rule(const struct rule_set *s, const struct rule *r)
{
	CHECK(r->action == RULE_ACCEPT || r->action == RULE_DROP);
	CHECK(r->proto <= RULE_PROTO_ICMP);
	CHECK(r->number <= 9999);
	bool tcp_udp = r->proto == RULE_PROTO_TCP || r->proto == RULE_PROTO_UDP;
	CHECK(!r->has_ports || (tcp_udp && r->port_lo <= r->port_hi));
	CHECK(!r->has_icmp_type || r->proto == RULE_PROTO_ICMP);
	CHECK(!r->dns || r->proto != RULE_PROTO_ICMP);
	switch (r->dst) {
	case RULE_DST_ANY:
		break;
	case RULE_DST_PREFIX:
		if (s->family == RULE_FAMILY_V4)
			CHECK(ip_is_v4(&r->prefix.addr) && r->prefix.len <= 32);
		else
			CHECK(r->prefix.len <= (ip_is_v4(&r->prefix.addr) ? 32 : 128));
		CHECK(ip_prefix_contains(&r->prefix, &r->prefix.addr));
		break;
	case RULE_DST_HOST: {
		CHECK(r->host < s->n_hosts);
		const char *name = s->hosts[r->host].name;
		size_t n = strnlen(name, sizeof(s->hosts[0].name));
		CHECK(n >= 1 && n <= RULES_HOSTNAME_MAX && name[0] != '.' && name[n - 1] != '.');
		break;
	}
	default:
		CHECK(0);
	}

	/* Round trip through text. */
	char text[400];
	size_t len = rules_format_rule(s, r, text, sizeof(text));
	CHECK(len < sizeof(text) && strlen(text) == len);
	struct rules_entry e[2] = {{"policy", 6, "drop", 4}, {"0000", 4, text, len}};
	CHECK(rules_parse(&again, (enum rule_family)s->family, e, 2, s->dns, s->n_dns) == RULES_OK);
	const struct rule *b = &again.rules[0];
	CHECK(b->action == r->action && b->proto == r->proto && b->dst == r->dst);
	CHECK(b->dns == r->dns && b->has_ports == r->has_ports && b->port_lo == r->port_lo &&
	      b->port_hi == r->port_hi && b->has_icmp_type == r->has_icmp_type &&
	      b->icmp_type == r->icmp_type);
	if (r->dst == RULE_DST_PREFIX)
		CHECK(ip_equal(&b->prefix.addr, &r->prefix.addr) && b->prefix.len == r->prefix.len);
	if (r->dst == RULE_DST_HOST)
		CHECK(strcmp(again.hosts[b->host].name, s->hosts[r->host].name) == 0);
}

static struct ip_addr addr_from(const uint8_t *data, size_t size, size_t at, bool v6)
{
	uint8_t b[16] = {0};
	for (size_t i = 0; i < 16 && size > 0; i++)
		b[i] = data[(at + i) % size];
	if (!v6)
		return ip_from_v4(b);
	struct ip_addr a = ip_from_v6(b);
	return a;
}

static void match_some(const struct rule_set *s, const uint8_t *data, size_t size)
{
	static const uint8_t protos[] = {RULES_IPPROTO_TCP, RULES_IPPROTO_UDP, RULES_IPPROTO_ICMP,
					 RULES_IPPROTO_ICMPV6, 47};
	bool v6 = s->family == RULE_FAMILY_V6;
	size_t n = 0;

	for (size_t i = 0; i < s->n_rules && n < 64; i++, n++) {
		const struct rule *r = &s->rules[i];
		struct rule_packet p = {0};
		p.family = s->family;
		p.proto = protos[(i + size) % sizeof(protos)];
		p.dst_port = r->has_ports ? r->port_hi : 53;
		p.icmp_type = r->icmp_type;
		if (r->dst == RULE_DST_PREFIX)
			p.dst = r->prefix.addr;
		else if (r->dst == RULE_DST_HOST && s->hosts[r->host].n_addrs > 0)
			p.dst = s->hosts[r->host].addrs[0];
		else if (r->dns && s->n_dns > 0)
			p.dst = s->dns[0];
		else
			p.dst = addr_from(data, size, i, v6);
		check_verdict(s, &p);
		p.family = v6 ? RULE_FAMILY_V4 : RULE_FAMILY_V6;
		check_verdict(s, &p);
	}
	for (size_t i = 0; i < 8; i++) {
		struct rule_packet p = {0};
		p.family = s->family;
		p.proto = protos[i % sizeof(protos)];
		p.dst_port = (uint16_t)(size > 1 ? data[i % size] << 8 | data[(i + 1) % size] : 0);
		p.icmp_type = size > 0 ? data[(i * 7) % size] : 0;
		p.dst = addr_from(data, size, i * 3, v6);
		check_verdict(s, &p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	enum rule_family fam = (flags & 1) ? RULE_FAMILY_V6 : RULE_FAMILY_V4;
	struct ip_addr dns[3];
	size_t n = 0;

	dns[0] = addr_from((const uint8_t *)"\x0a\x8b\x01\x01", 4, 0, false);
	dns[1] = addr_from((const uint8_t *)"\x0a\x8b\x01\x02", 4, 0, false);
	dns[2] = addr_from(data, size, 0, true);

	if (flags & 2) {
		entries[n++] = (struct rules_entry){"policy", 6, "drop", 4};
		entries[n++] = (struct rules_entry){"0000", 4, s, len};
	} else {
		size_t i = 0;
		while (i <= len && n < MAX_ENTRIES) {
			const char *nl = memchr(s + i, '\n', len - i);
			size_t end = nl ? (size_t)(nl - s) : len;
			const char *tab = memchr(s + i, '\t', end - i);
			struct rules_entry *e = &entries[n++];
			e->key = s + i;
			e->key_len = tab ? (size_t)(tab - (s + i)) : end - i;
			e->value = tab ? tab + 1 : s + end;
			e->value_len = tab ? end - (size_t)(tab + 1 - s) : 0;
			if (nl == NULL)
				break;
			i = end + 1;
		}
	}

	enum rules_result r = rules_parse(&set, fam, entries, n, dns, 3);
	if (r != RULES_OK) {
		CHECK(set.failed && set.n_rules == 0 && set.policy == RULE_DROP);
		CHECK(set.error[0] != '\0' &&
		      strnlen(set.error, RULES_ERROR_MAX) < RULES_ERROR_MAX);
		match_some(&set, data, size);
		return 0;
	}
	CHECK(!set.failed && set.n_rules <= RULES_MAX && set.n_hosts <= RULES_HOSTS_MAX);
	for (size_t i = 0; i < set.n_rules; i++) {
		if (i > 0)
			CHECK(set.rules[i - 1].number < set.rules[i].number);
		check_rule(&set, &set.rules[i]);
	}
	match_some(&set, data, size);

	if (flags & 4) {
		for (size_t h = 0; h < set.n_hosts; h++) {
			struct ip_addr a[3];
			for (size_t k = 0; k < 3; k++)
				a[k] = addr_from(data, size, h + k, (k + flags) & 1);
			const char *name = set.hosts[h].name;
			size_t nl = strlen(name);
			if ((h + flags) % 3 == 0)
				CHECK(rules_hostset_fail(&set, name, nl, h));
			else
				CHECK(rules_hostset_update(&set, name, nl, a, (h + flags) % 4, h));
			CHECK(set.hosts[h].n_addrs <= RULES_HOST_ADDRS_MAX);
		}
		match_some(&set, data, size);
		rules_hostsets_inherit(&again, &set);
	}
	return 0;
}
