/* rules.c — parse one client's Qubes firewall subtree and match packets.
 *
 * The strings come from dom0 (specs/qubes-protocols.md §6.2); every
 * decision about what is accepted is listed in rules.h. Parsing is one pass
 * over bounded text into the caller's struct rule_set; any error leaves the
 * set failed (drop everything). Must never allocate, never log, never fail
 * open, and never read past an entry's length.
 */
#include "fw/rules.h"

#include <stdarg.h>

#include "base/fmt.h"
#include "base/libc.h"

#define NUMBER_NONE 0xffffu

/* Bits of the options seen in one rule string. */
enum {
	OPT_ACTION = 1u << 0,
	OPT_DST4 = 1u << 1,
	OPT_DST6 = 1u << 2,
	OPT_DSTHOST = 1u << 3,
	OPT_PROTO = 1u << 4,
	OPT_SPECIALTARGET = 1u << 5,
	OPT_DSTPORTS = 1u << 6,
	OPT_ICMPTYPE = 1u << 7,
	OPT_DPI = 1u << 8,
};

static const struct {
	const char *name;
	unsigned bit;
} option_names[] = {
	{"action", OPT_ACTION},     {"dst4", OPT_DST4},
	{"dst6", OPT_DST6},         {"dsthost", OPT_DSTHOST},
	{"proto", OPT_PROTO},       {"specialtarget", OPT_SPECIALTARGET},
	{"dstports", OPT_DSTPORTS}, {"icmptype", OPT_ICMPTYPE},
	{"dpi", OPT_DPI},
};

static bool text_is(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	return len == n && memcmp(s, word, n) == 0;
}

/* A printable, bounded copy of untrusted text for an error message. */
static void quote_text(char *dst, size_t cap, const char *s, size_t len)
{
	size_t max = cap - 4; /* room for "..." and the terminator */
	size_t n = 0;

	for (size_t i = 0; i < len && n < max; i++) {
		char c = s[i];
		if (c < 0x20 || c >= 0x7f || c == '"')
			c = '?';
		dst[n++] = c;
	}
	if (len > max) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

static void reset_set(struct rule_set *set, enum rule_family family)
{
	set->family = (uint8_t)family;
	set->failed = false;
	set->policy = RULE_DROP;
	set->n_rules = 0;
	set->n_hosts = 0;
	set->error[0] = '\0';
}

/* Fails the set closed (no rules, policy drop) with a formatted message. */
static void fail_closed(struct rule_set *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail_closed(struct rule_set *set, const char *fmt, ...)
{
	va_list ap;

	set->failed = true;
	set->policy = RULE_DROP;
	set->n_rules = 0;
	set->n_hosts = 0;
	va_start(ap, fmt);
	fmt_vsnprintf(set->error, sizeof(set->error), fmt, ap);
	va_end(ap);
}

void rules_set_failed(struct rule_set *set, enum rule_family family, const char *reason)
{
	reset_set(set, family);
	fail_closed(set, "%s", reason != NULL ? reason : "failed");
}

bool rules_set_dns(struct rule_set *set, const struct ip_addr *dns, size_t n)
{
	size_t keep = MIN(n, (size_t)RULES_DNS_MAX);

	for (size_t i = 0; i < keep; i++)
		set->dns[i] = dns[i];
	set->n_dns = (uint8_t)keep;
	return n <= RULES_DNS_MAX;
}

/* ---- value parsers ---- */

/* Decimal 0..max, 1..5 digits, no leading zero except "0" itself. */
static bool parse_number(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10u + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* "lo-hi" or "n" (D8), 0..65535, lo <= hi. */
static bool parse_ports(const char *s, size_t len, uint16_t *lo, uint16_t *hi)
{
	unsigned a, b;
	const char *dash = memchr(s, '-', len);

	if (dash == NULL) {
		if (!parse_number(s, len, 65535, &a))
			return false;
		b = a;
	} else {
		size_t alen = (size_t)(dash - s);
		if (!parse_number(s, alen, 65535, &a) ||
		    !parse_number(dash + 1, len - alen - 1, 65535, &b) || a > b)
			return false;
	}
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return true;
}

/* D9: [a-z0-9-._], labels 1..63, 1..253 in all; a trailing '.' is
 * accepted and not counted. Returns the length without it, 0 if invalid. */
static size_t hostname_len(const char *s, size_t len)
{
	size_t label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > RULES_HOSTNAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label == 0 ? 0 : len;
}

struct rule_hostset *rules_hostset_find(struct rule_set *set, const char *name, size_t len)
{
	if (name == NULL || len > RULES_HOSTNAME_MAX)
		return NULL;
	for (size_t i = 0; i < set->n_hosts; i++) {
		struct rule_hostset *h = &set->hosts[i];
		if (strnlen(h->name, sizeof(h->name)) == len && memcmp(h->name, name, len) == 0)
			return h;
	}
	return NULL;
}

/* The hostset for a valid name, added if new; false when the table is full. */
static bool hostset_add(struct rule_set *set, const char *name, size_t len, uint16_t *index)
{
	struct rule_hostset *h = rules_hostset_find(set, name, len);

	if (h == NULL) {
		if (set->n_hosts >= RULES_HOSTS_MAX)
			return false;
		h = &set->hosts[set->n_hosts++];
		memset(h, 0, sizeof(*h));
		memcpy(h->name, name, len);
		h->name[len] = '\0';
		h->state = RULE_HOST_PENDING;
	}
	*index = (uint16_t)(h - set->hosts);
	return true;
}

/* ---- one rule string ---- */

/* Records why rule `number` is bad; always returns false. */
static bool rule_error(struct rule_set *set, unsigned number, const char *why, const char *s,
		       size_t len)
{
	char q[48];

	if (s == NULL) {
		fail_closed(set, "rule %04u: %s", number, why);
	} else {
		quote_text(q, sizeof(q), s, len);
		fail_closed(set, "rule %04u: %s \"%s\"", number, why, q);
	}
	return false;
}

static bool parse_option(struct rule_set *set, struct rule *r, unsigned bit, const char *v,
			 size_t vlen, const char *tok, size_t toklen, enum rules_result *err)
{
	unsigned n = r->number;
	unsigned val;

	switch (bit) {
	case OPT_ACTION:
		if (text_is(v, vlen, "accept"))
			r->action = RULE_ACCEPT;
		else if (text_is(v, vlen, "drop"))
			r->action = RULE_DROP;
		else
			return rule_error(set, n, "bad action", tok, toklen);
		return true;
	case OPT_DST4:
	case OPT_DST6: {
		bool v6 = bit == OPT_DST6;
		if (v6 != (set->family == RULE_FAMILY_V6))
			return rule_error(
			    set, n, v6 ? "dst6 in an IPv4 subtree" : "dst4 in an IPv6 subtree", tok,
			    toklen);
		if (!ip_prefix_parse(v, vlen, v6, &r->prefix))
			return rule_error(set, n, "bad address or prefix", tok, toklen);
		r->dst = RULE_DST_PREFIX;
		return true;
	}
	case OPT_DSTHOST: {
		size_t hl = hostname_len(v, vlen);
		if (hl == 0)
			return rule_error(set, n, "bad host name", tok, toklen);
		if (!hostset_add(set, v, hl, &r->host)) {
			*err = RULES_ERR_TOO_MANY;
			return rule_error(set, n, "too many distinct host names", tok, toklen);
		}
		r->dst = RULE_DST_HOST;
		return true;
	}
	case OPT_PROTO:
		if (text_is(v, vlen, "tcp"))
			r->proto = RULE_PROTO_TCP;
		else if (text_is(v, vlen, "udp"))
			r->proto = RULE_PROTO_UDP;
		else if (text_is(v, vlen, "icmp"))
			r->proto = RULE_PROTO_ICMP;
		else
			return rule_error(set, n, "bad proto", tok, toklen);
		return true;
	case OPT_SPECIALTARGET:
		if (!text_is(v, vlen, "dns"))
			return rule_error(set, n, "bad specialtarget", tok, toklen);
		r->dns = true;
		return true;
	case OPT_DSTPORTS:
		if (!parse_ports(v, vlen, &r->port_lo, &r->port_hi))
			return rule_error(set, n, "bad dstports", tok, toklen);
		r->has_ports = true;
		return true;
	case OPT_ICMPTYPE:
		if (!parse_number(v, vlen, 255, &val))
			return rule_error(set, n, "bad icmptype", tok, toklen);
		r->icmp_type = (uint8_t)val;
		r->has_icmp_type = true;
		return true;
	case OPT_DPI:
		if (!text_is(v, vlen, "NO"))
			return rule_error(set, n, "unsupported dpi", tok, toklen);
		return true; /* D7 */
	default:
		return rule_error(set, n, "internal: unhandled option", NULL, 0);
	}
}

/* On false, *err says which kind of error (set->error says which one). */
static bool parse_rule(struct rule_set *set, unsigned number, const char *s, size_t len,
		       struct rule *r, enum rules_result *err)
{
	unsigned seen = 0;
	size_t i = 0;

	*err = RULES_ERR_RULE;
	memset(r, 0, sizeof(*r));
	r->number = (uint16_t)number;
	if (len == 0)
		return rule_error(set, number, "empty rule", NULL, 0);
	for (;;) {
		size_t start = i;
		while (i < len && s[i] != ' ')
			i++;
		const char *tok = s + start;
		size_t toklen = i - start;
		if (toklen == 0)
			return rule_error(set, number, "empty option (extra space)", NULL, 0);
		const char *eq = memchr(tok, '=', toklen);
		if (eq == NULL)
			return rule_error(set, number, "option without '='", tok, toklen);
		size_t klen = (size_t)(eq - tok);
		unsigned bit = 0;
		for (size_t k = 0; k < ARRAY_LEN(option_names); k++)
			if (text_is(tok, klen, option_names[k].name))
				bit = option_names[k].bit;
		if (bit == 0)
			return rule_error(set, number, "unknown option", tok, klen);
		if (seen & bit)
			return rule_error(set, number, "duplicate option", tok, klen);
		seen |= bit;
		if (!parse_option(set, r, bit, eq + 1, toklen - klen - 1, tok, toklen, err))
			return false;
		if (i == len)
			break;
		i++; /* the single separating space; an empty next token is refused */
	}

	if (!(seen & OPT_ACTION))
		return rule_error(set, number, "no action", NULL, 0);
	unsigned dsts = !!(seen & OPT_DST4) + !!(seen & OPT_DST6) + !!(seen & OPT_DSTHOST);
	if (dsts > 1)
		return rule_error(set, number, "more than one of dst4, dst6, dsthost", NULL, 0);
	bool tcp_udp = r->proto == RULE_PROTO_TCP || r->proto == RULE_PROTO_UDP;
	if (r->has_ports && !tcp_udp)
		return rule_error(set, number, "dstports needs proto=tcp or proto=udp", NULL, 0);
	if (r->has_icmp_type && r->proto != RULE_PROTO_ICMP)
		return rule_error(set, number, "icmptype needs proto=icmp", NULL, 0);
	if (r->dns && r->proto == RULE_PROTO_ICMP)
		return rule_error(set, number, "specialtarget=dns with proto=icmp", NULL, 0);
	return true;
}

/* ---- the subtree ---- */

/* Heap sort by number: O(n log n) whatever order the keys come in. */
static void sift_down(struct rule *a, size_t root, size_t n)
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1].number > a[child].number)
			child++;
		if (a[root].number >= a[child].number)
			return;
		struct rule t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static void sort_rules(struct rule *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (size_t end = n; end-- > 1;) {
		struct rule t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

/* Exactly four ASCII digits. */
static bool rule_key(const char *k, size_t len, unsigned *number)
{
	if (k == NULL || len != 4)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < 4; i++) {
		if (k[i] < '0' || k[i] > '9')
			return false;
		v = v * 10u + (unsigned)(k[i] - '0');
	}
	*number = v;
	return true;
}

enum rules_result rules_parse(struct rule_set *set, enum rule_family family,
			      const struct rules_entry *entries, size_t n_entries,
			      const struct ip_addr *dns, size_t n_dns)
{
	const struct rules_entry *policy = NULL;
	size_t n_rules = 0;
	char q[48];

	reset_set(set, family);
	rules_set_dns(set, dns, dns != NULL ? n_dns : 0);

	/* Keys first: a bad or duplicate key, the policy, the count. */
	for (size_t i = 0; i < n_entries; i++) {
		const struct rules_entry *e = &entries[i];
		unsigned number;
		if (e->key != NULL && text_is(e->key, e->key_len, "policy")) {
			if (policy != NULL) {
				fail_closed(set, "key policy: duplicate");
				return RULES_ERR_KEY;
			}
			policy = e;
		} else if (rule_key(e->key, e->key_len, &number)) {
			n_rules++;
		} else {
			quote_text(q, sizeof(q), e->key != NULL ? e->key : "", e->key_len);
			fail_closed(set, "key \"%s\": not policy or four digits", q);
			return RULES_ERR_KEY;
		}
		if (e->value == NULL && e->value_len != 0) {
			fail_closed(set, "entry %zu: no value", i);
			return RULES_ERR_KEY;
		}
	}
	if (policy == NULL) {
		fail_closed(set, "policy missing");
		return RULES_ERR_POLICY;
	}
	if (text_is(policy->value, policy->value_len, "accept")) {
		set->policy = RULE_ACCEPT;
	} else if (text_is(policy->value, policy->value_len, "drop")) {
		set->policy = RULE_DROP;
	} else {
		quote_text(q, sizeof(q), policy->value != NULL ? policy->value : "",
			   policy->value_len);
		fail_closed(set, "policy: \"%s\" is neither accept nor drop", q);
		return RULES_ERR_POLICY;
	}
	if (n_rules > RULES_MAX) {
		fail_closed(set, "%zu rules, more than %u", n_rules, (unsigned)RULES_MAX);
		return RULES_ERR_TOO_MANY;
	}

	/* Then each rule, into the array in the order given; sorted after. */
	for (size_t i = 0; i < n_entries; i++) {
		const struct rules_entry *e = &entries[i];
		unsigned number;
		if (!rule_key(e->key, e->key_len, &number))
			continue;
		struct rule *r = &set->rules[set->n_rules];
		enum rules_result err;
		if (!parse_rule(set, number, e->value != NULL ? e->value : "", e->value_len, r,
				&err))
			return err;
		set->n_rules++;
	}
	sort_rules(set->rules, set->n_rules);
	for (size_t i = 1; i < set->n_rules; i++) {
		if (set->rules[i].number == set->rules[i - 1].number) {
			fail_closed(set, "key %04u: duplicate", set->rules[i].number);
			return RULES_ERR_KEY;
		}
	}
	return RULES_OK;
}

/* ---- host names ---- */

bool rules_hostset_update(struct rule_set *set, const char *name, size_t len,
			  const struct ip_addr *addrs, size_t n, uint64_t expires_ns)
{
	struct rule_hostset *h = rules_hostset_find(set, name, len);

	if (h == NULL)
		return false;
	size_t kept = 0;
	for (size_t i = 0; i < n && kept < RULES_HOST_ADDRS_MAX; i++) {
		bool v4 = ip_is_v4(&addrs[i]);
		if (v4 == (set->family == RULE_FAMILY_V4))
			h->addrs[kept++] = addrs[i];
	}
	h->n_addrs = (uint8_t)kept;
	h->state = kept > 0 ? RULE_HOST_RESOLVED : RULE_HOST_FAILED;
	h->expires_ns = expires_ns;
	return true;
}

bool rules_hostset_fail(struct rule_set *set, const char *name, size_t len, uint64_t retry_ns)
{
	struct rule_hostset *h = rules_hostset_find(set, name, len);

	if (h == NULL)
		return false;
	h->state = RULE_HOST_FAILED;
	h->n_addrs = 0;
	h->expires_ns = retry_ns;
	return true;
}

bool rules_hostset_due(const struct rule_hostset *h, uint64_t now_ns)
{
	return h->state == RULE_HOST_PENDING || now_ns >= h->expires_ns;
}

void rules_hostsets_inherit(struct rule_set *set, const struct rule_set *old_set)
{
	if (old_set == NULL || old_set == set || old_set->family != set->family)
		return;
	for (size_t i = 0; i < set->n_hosts; i++) {
		struct rule_hostset *h = &set->hosts[i];
		size_t len = strnlen(h->name, sizeof(h->name));
		for (size_t j = 0; j < old_set->n_hosts; j++) {
			const struct rule_hostset *o = &old_set->hosts[j];
			if (o->state == RULE_HOST_PENDING ||
			    strnlen(o->name, sizeof(o->name)) != len ||
			    memcmp(o->name, h->name, len) != 0)
				continue;
			h->state = o->state;
			h->n_addrs = MIN(o->n_addrs, (uint8_t)RULES_HOST_ADDRS_MAX);
			h->expires_ns = o->expires_ns;
			memcpy(h->addrs, o->addrs, sizeof(h->addrs[0]) * h->n_addrs);
			break;
		}
	}
}

/* ---- matching ---- */

enum test_result { TEST_NO, TEST_YES, TEST_UNRESOLVED };

static bool proto_matches(const struct rule_set *set, const struct rule *r, uint8_t proto)
{
	switch (r->proto) {
	case RULE_PROTO_ANY:
		return true;
	case RULE_PROTO_TCP:
		return proto == RULES_IPPROTO_TCP;
	case RULE_PROTO_UDP:
		return proto == RULES_IPPROTO_UDP;
	case RULE_PROTO_ICMP:
		return proto == (set->family == RULE_FAMILY_V6 ? RULES_IPPROTO_ICMPV6
							      : RULES_IPPROTO_ICMP);
	default:
		return false;
	}
}

static bool is_dns_server(const struct rule_set *set, const struct ip_addr *a)
{
	for (size_t i = 0; i < set->n_dns && i < RULES_DNS_MAX; i++)
		if (ip_equal(&set->dns[i], a))
			return true;
	return false;
}

static enum test_result rule_test(const struct rule_set *set, const struct rule *r,
				  const struct rule_packet *p)
{
	if (!proto_matches(set, r, p->proto))
		return TEST_NO;
	bool tcp_udp = p->proto == RULES_IPPROTO_TCP || p->proto == RULES_IPPROTO_UDP;
	if (r->dns && (!tcp_udp || p->dst_port != 53 || !is_dns_server(set, &p->dst)))
		return TEST_NO;
	/* dstports implies proto tcp|udp (checked at parse), so dst_port is valid. */
	if (r->has_ports && (p->dst_port < r->port_lo || p->dst_port > r->port_hi))
		return TEST_NO;
	if (r->has_icmp_type && p->icmp_type != r->icmp_type)
		return TEST_NO;
	switch (r->dst) {
	case RULE_DST_ANY:
		return TEST_YES;
	case RULE_DST_PREFIX:
		return ip_prefix_contains(&r->prefix, &p->dst) ? TEST_YES : TEST_NO;
	case RULE_DST_HOST: {
		if (r->host >= set->n_hosts)
			return r->action == RULE_DROP ? TEST_UNRESOLVED : TEST_NO;
		const struct rule_hostset *h = &set->hosts[r->host];
		if (h->state != RULE_HOST_RESOLVED)
			return r->action == RULE_DROP ? TEST_UNRESOLVED : TEST_NO; /* D4 */
		for (size_t i = 0; i < h->n_addrs && i < RULES_HOST_ADDRS_MAX; i++)
			if (ip_equal(&h->addrs[i], &p->dst))
				return TEST_YES;
		return TEST_NO;
	}
	default:
		return TEST_NO;
	}
}

struct rule_verdict rules_match(const struct rule_set *set, const struct rule_packet *pkt)
{
	struct rule_verdict v = {RULE_DROP, RULE_BY_ERROR, NUMBER_NONE, NUMBER_NONE};

	if (set->failed)
		return v;
	if (pkt->family != set->family) {
		v.reason = RULE_BY_FAMILY;
		return v;
	}
	for (size_t i = 0; i < set->n_rules && i < RULES_MAX; i++) {
		const struct rule *r = &set->rules[i];
		enum test_result t = rule_test(set, r, pkt);
		if (t == TEST_NO)
			continue;
		v.action = r->action;
		v.reason = t == TEST_YES ? RULE_BY_RULE : RULE_BY_UNRESOLVED;
		v.number = r->number;
		v.index = (uint16_t)i;
		return v;
	}
	v.action = set->policy;
	v.reason = RULE_BY_POLICY;
	return v;
}

bool rules_flow_allowed(const struct rule_set *set, const struct rule_packet *flow)
{
	return rules_match(set, flow).action == RULE_ACCEPT;
}

/* ---- text ---- */

size_t rules_format_rule(const struct rule_set *set, const struct rule *r, char *buf, size_t cap)
{
	static const char *const protos[] = {"", "tcp", "udp", "icmp"};
	struct fmt_buf t = {buf, cap, 0};
	char a[FMT_IPV6_LEN];

	if (buf != NULL && cap > 0)
		buf[0] = '\0';
	fmt_append(&t, "action=%s", rules_action_name((enum rule_action)r->action));
	if (r->dst == RULE_DST_PREFIX) {
		if (set->family == RULE_FAMILY_V6)
			fmt_append(&t, " dst6=%s/%u", fmt_ipv6(a, r->prefix.addr.b),
				 ip_is_v4(&r->prefix.addr) ? r->prefix.len + 96u : r->prefix.len);
		else
			fmt_append(&t, " dst4=%s/%u", ip_format(a, sizeof(a), &r->prefix.addr),
				 (unsigned)r->prefix.len);
	} else if (r->dst == RULE_DST_HOST && r->host < set->n_hosts) {
		fmt_append(&t, " dsthost=%s", set->hosts[r->host].name);
	}
	if (r->proto != RULE_PROTO_ANY && r->proto < ARRAY_LEN(protos))
		fmt_append(&t, " proto=%s", protos[r->proto]);
	if (r->dns)
		fmt_append(&t, " specialtarget=dns");
	if (r->has_ports)
		fmt_append(&t, " dstports=%u-%u", (unsigned)r->port_lo, (unsigned)r->port_hi);
	if (r->has_icmp_type)
		fmt_append(&t, " icmptype=%u", (unsigned)r->icmp_type);
	return t.len;
}

const char *rules_action_name(enum rule_action a)
{
	return a == RULE_ACCEPT ? "accept" : "drop";
}

const char *rules_reason_name(enum rule_reason r)
{
	switch (r) {
	case RULE_BY_RULE:
		return "rule";
	case RULE_BY_UNRESOLVED:
		return "unresolved host";
	case RULE_BY_POLICY:
		return "policy";
	case RULE_BY_ERROR:
		return "rule error";
	case RULE_BY_FAMILY:
		return "wrong family";
	default:
		return "?";
	}
}
