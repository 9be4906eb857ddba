/* rules.h — the Qubes firewall rules of one client address, compiled.
 *
 * Input is one QubesDB subtree /qubes-firewall/<addr>/ as (suffix, value)
 * pairs: `policy` plus `NNNN` rules (specs/qubes-protocols.md §6.1, §6.2).
 * Output is a struct rule_set in caller-provided storage: fixed arrays, no
 * allocation. Any error turns the whole set into "drop everything from this
 * source" and leaves a message naming the key and the reason in set->error
 * (DESIGN.md §2, D6); the caller logs it. This module never logs, never
 * resolves names and never reads a clock: host names are filled in by the
 * resolver through rules_hostset_update/_fail.
 *
 * Decisions (DESIGN.md §2; spec §6.6 divergences):
 * - D1: keys sorted numerically, gaps allowed. A suffix other than `policy`
 *   or exactly four digits, a duplicate, or a missing policy: error.
 * - D6: options in any order, separated by exactly one space; an empty rule,
 *   a leading/trailing/double space, a tab, an unknown option, a duplicate
 *   option or a bad value: error (dom0 never emits any of these).
 * - D7: `dpi=NO` is ignored; any other dpi value is an error.
 * - D8: `dstports=N` means N-N. Numbers are decimal without leading zeros.
 * - D9: dsthost is [a-z0-9-._], 1..253 characters, labels 1..63, no empty
 *   label; one trailing '.' is accepted and dropped.
 * - D14: icmptype 0..255.
 * - At most one of dst4/dst6/dsthost; dstports needs proto tcp|udp;
 *   icmptype needs proto icmp; dst4 in an IPv6 subtree or dst6 in an IPv4
 *   subtree is an error. A dst6 inside ::ffff:0:0/96 is held as the IPv4
 *   prefix it denotes (net/addr.c).
 * - D2: specialtarget=dns means TCP or UDP to a DNS server (the set's list)
 *   port 53, whatever proto says; proto narrows it to tcp or udp
 *   (proto=icmp with it is an error); dstports narrows it further (a range
 *   without 53 matches nothing).
 * - proto=icmp means ICMP (1) in an IPv4 set and ICMPv6 (58) in an IPv6 set
 *   (as Linux's ip6 table does).
 * - D12: a packet of another protocol matches rules without proto only.
 * - D4: a dsthost not (or no longer) resolved: in an accept rule the rule
 *   matches nothing; in a drop rule its destination test matches every
 *   address, so every packet that reaches that rule and passes its other
 *   tests is dropped. Rules before it still decide first: this never lets
 *   through anything the resolved rule would drop.
 * - D11: a flow survives a rule change iff rules_flow_allowed() on the new
 *   set says so — the same first-match evaluation as for a new packet. */
#ifndef FW_RULES_H
#define FW_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

/* Rules per subtree (policy not counted); more is an error (fail closed). */
#define RULES_MAX 1024
/* Distinct dsthost names per subtree; more is an error. */
#define RULES_HOSTS_MAX 64
/* Addresses kept per name; extra answers are ignored. */
#define RULES_HOST_ADDRS_MAX 16
/* Longest host name (RFC 1035 text form without the trailing dot). */
#define RULES_HOSTNAME_MAX 253
/* DNS server addresses for specialtarget=dns. */
#define RULES_DNS_MAX 4
/* Size of the error message buffer, terminator included. */
#define RULES_ERROR_MAX 160

enum rule_family {
	RULE_FAMILY_V4 = 4,
	RULE_FAMILY_V6 = 6,
};

enum rule_action {
	RULE_DROP = 0,
	RULE_ACCEPT = 1,
};

enum rule_proto {
	RULE_PROTO_ANY = 0,
	RULE_PROTO_TCP,
	RULE_PROTO_UDP,
	RULE_PROTO_ICMP, /* ICMPv6 in an IPv6 set */
};

enum rule_dst {
	RULE_DST_ANY = 0,
	RULE_DST_PREFIX, /* dst4= or dst6= */
	RULE_DST_HOST,   /* dsthost=: set->hosts[rule.host] */
};

/* IP protocol numbers the rules know. */
#define RULES_IPPROTO_ICMP 1
#define RULES_IPPROTO_TCP 6
#define RULES_IPPROTO_UDP 17
#define RULES_IPPROTO_ICMPV6 58

struct rule {
	uint16_t number;   /* the NNNN of its key, 0..9999 */
	uint8_t action;    /* enum rule_action */
	uint8_t proto;     /* enum rule_proto */
	uint8_t dst;       /* enum rule_dst */
	bool dns;          /* specialtarget=dns */
	bool has_ports;
	bool has_icmp_type;
	uint8_t icmp_type;
	uint16_t port_lo;  /* inclusive */
	uint16_t port_hi;
	uint16_t host;     /* index into set->hosts when dst == RULE_DST_HOST */
	struct ip_prefix prefix; /* when dst == RULE_DST_PREFIX */
};

enum rule_host_state {
	RULE_HOST_PENDING = 0, /* never resolved since the rules loaded */
	RULE_HOST_RESOLVED,    /* addrs[0..n_addrs) valid (possibly past expiry) */
	RULE_HOST_FAILED,      /* the last attempt failed or gave no address */
};

/* The addresses of one dsthost name, shared by every rule naming it. */
struct rule_hostset {
	char name[RULES_HOSTNAME_MAX + 1]; /* NUL-terminated, no trailing dot */
	uint8_t state;                     /* enum rule_host_state */
	uint8_t n_addrs;
	uint64_t expires_ns; /* when to ask again (resolved) or retry (failed) */
	struct ip_addr addrs[RULES_HOST_ADDRS_MAX];
};

struct rule_set {
	uint8_t family;  /* enum rule_family */
	bool failed;     /* parse error: drop everything */
	uint8_t policy;  /* enum rule_action, applies after the last rule */
	uint8_t n_dns;
	uint16_t n_rules;
	uint16_t n_hosts;
	struct ip_addr dns[RULES_DNS_MAX];
	struct rule rules[RULES_MAX]; /* sorted by number, strictly increasing */
	struct rule_hostset hosts[RULES_HOSTS_MAX];
	char error[RULES_ERROR_MAX];  /* empty unless failed */
};

/* One QubesDB entry: the key suffix after "/qubes-firewall/<addr>/" and its
 * value, neither NUL-terminated. */
struct rules_entry {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
};

enum rules_result {
	RULES_OK = 0,
	RULES_ERR_KEY,       /* a suffix that is neither policy nor NNNN, or a duplicate */
	RULES_ERR_POLICY,    /* policy missing or not accept|drop */
	RULES_ERR_RULE,      /* a rule string that does not parse */
	RULES_ERR_TOO_MANY,  /* more than RULES_MAX rules or RULES_HOSTS_MAX names */
};

/* Parses a subtree into set. family is the subtree's (the client address
 * it is keyed by); dns (n_dns <= RULES_DNS_MAX, more are ignored) are the
 * DNS servers for specialtarget=dns. On error the set is failed: no rules,
 * policy drop, a message in set->error. Never fails open. */
enum rules_result rules_parse(struct rule_set *set, enum rule_family family,
			      const struct rules_entry *entries, size_t n_entries,
			      const struct ip_addr *dns, size_t n_dns);

/* Makes set fail closed with a message (e.g. a QubesDB read error). */
void rules_set_failed(struct rule_set *set, enum rule_family family, const char *reason);

/* Replaces the DNS server list (e.g. /qubes-primary-dns changed). Returns
 * false when n > RULES_DNS_MAX (the first RULES_DNS_MAX are kept). */
bool rules_set_dns(struct rule_set *set, const struct ip_addr *dns, size_t n);

/* ---- host names (D4, D5) ---- */

/* The hostset called name (no trailing dot), or NULL. */
struct rule_hostset *rules_hostset_find(struct rule_set *set, const char *name, size_t len);

/* The resolver's answer for name: the addresses of the set's family are
 * kept (up to RULES_HOST_ADDRS_MAX); none → the name counts as failed.
 * expires_ns: when to resolve again. Returns false if no rule names it. */
bool rules_hostset_update(struct rule_set *set, const char *name, size_t len,
			  const struct ip_addr *addrs, size_t n, uint64_t expires_ns);

/* Resolution failed: the name becomes unresolved (D4) until an update;
 * retry_ns: when to try again. Returns false if no rule names it. */
bool rules_hostset_fail(struct rule_set *set, const char *name, size_t len, uint64_t retry_ns);

/* True when the resolver should (re)resolve h now. */
bool rules_hostset_due(const struct rule_hostset *h, uint64_t now_ns);

/* After a reload: copies the answers of names present in both sets from
 * old_set into set, so a reload does not block names already resolved. */
void rules_hostsets_inherit(struct rule_set *set, const struct rule_set *old_set);

/* ---- matching ---- */

/* What the rules see of a packet from the client. */
struct rule_packet {
	uint8_t family;      /* enum rule_family of the IP header */
	uint8_t proto;       /* IPv4 protocol / IPv6 final next header */
	uint16_t dst_port;   /* TCP/UDP only */
	uint8_t icmp_type;   /* ICMP/ICMPv6 only */
	struct ip_addr dst;
};

enum rule_reason {
	RULE_BY_RULE = 0,   /* rule `number` matched */
	RULE_BY_UNRESOLVED, /* drop rule `number` whose dsthost is unresolved (D4) */
	RULE_BY_POLICY,     /* no rule matched */
	RULE_BY_ERROR,      /* the set failed to parse: drop all */
	RULE_BY_FAMILY,     /* the packet is not of the set's family: drop */
};

struct rule_verdict {
	uint8_t action; /* enum rule_action */
	uint8_t reason; /* enum rule_reason */
	uint16_t number; /* rule number when reason is RULE_BY_RULE/UNRESOLVED */
	uint16_t index;  /* index into set->rules, same condition */
};

/* First matching rule decides; the policy when none does. */
struct rule_verdict rules_match(const struct rule_set *set, const struct rule_packet *pkt);

/* D11: true when a flow (described by its first packet) is still accepted
 * by set — exactly rules_match() == accept; conntrack calls it for each of
 * the client's entries after a reload and removes those that fail. */
bool rules_flow_allowed(const struct rule_set *set, const struct rule_packet *flow);

/* Text of rule r in dom0's option order (for logs and the status page).
 * Returns the length the text would have (like snprintf). */
size_t rules_format_rule(const struct rule_set *set, const struct rule *r, char *buf, size_t cap);

/* "accept"/"drop", and a short name for a reason. */
const char *rules_action_name(enum rule_action a);
const char *rules_reason_name(enum rule_reason r);

#endif
