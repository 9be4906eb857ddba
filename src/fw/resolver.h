/* resolver.h — the firewall's own stub resolver for dsthost rules (issue 7,
 * DESIGN.md §2 D4/D5).
 *
 * A pure state machine driven by (now_ns, events): it sends through a
 * callback (the app wires it to router_send_local_udp), is fed the replies
 * arriving on its port range (router_set_local_udp) and the DNS replies
 * clients receive (router_set_dns_observer), and writes results into the
 * registered rule sets with rules_hostset_update/_fail. It never calls the
 * platform, never allocates after resolver_init, never blocks; every table
 * is fixed (names, queries in flight, registered sets, learned addresses)
 * with an eviction rule, so nothing a peer sends can make it grow.
 *
 * Queries. For each name named by a registered set, A is asked when a set
 * of family 4 names it and AAAA when one of family 6 does. One query per
 * (name, type) at a time, at most max_inflight at once (more wait for a
 * free slot: deferred, never queued in memory). Each attempt goes from a
 * fresh random source port in [port_lo, port_hi] with a fresh random id
 * (base/csprng.h) to one server; attempt k times out after
 * attempt_timeout_ns << k; the next attempt goes to the next server
 * (failover), starting with the last server that answered. After
 * `attempts` attempts the query has failed.
 *
 * Replies. Accepted only when an attempt is waiting on the destination
 * port, the source is that attempt's server and port 53, the message
 * parses as far as its question, and id, name (case-insensitive), type and
 * class IN match. Everything else is counted (unsolicited / duplicate /
 * wrong source / malformed / mismatched), logged rate-limited and dropped
 * with no other effect: the attempt keeps waiting. An accepted reply with
 * TC set (we do not do TCP), SERVFAIL/REFUSED/FORMERR/NOTIMP, malformed
 * records or a CNAME chain over DNS_CNAME_DEPTH_MAX (loops included) ends
 * that attempt at once: the next attempt goes to the next server at the
 * next resolver_tick. NXDOMAIN or no address of the asked type is a
 * negative answer.
 *
 * Cache. Per name and family, each address carries a deadline: an answer
 * with TTL t (min over the CNAME chain and records, clamped to
 * [ttl_min_ns, ttl_max_ns]) makes its addresses valid until now + t +
 * grace_ns; addresses of the previous answer that the new one lacks stay
 * valid until now + grace_ns at most (so established flows and the client's
 * own cached answers keep working). The name is asked again at 3/4 of t,
 * i.e. before it runs out. A failed query keeps the addresses until their
 * deadlines and is retried after retry_min_ns, doubling per consecutive
 * failure up to retry_max_ns; a negative answer is asked again after
 * negative_ns.
 *
 * Rule sets. A registered set's hostset for a name holds the valid cached
 * addresses of its family plus the addresses learned for that set (below),
 * up to RULES_HOST_ADDRS_MAX: when more, those expiring first are left out.
 * When none is valid and the name has been answered or has failed, the
 * hostset is failed (D4: an accept rule matches nothing, a drop rule drops
 * everything that reaches it). Until the first answer a hostset keeps what
 * it had (PENDING, or what rules_hostsets_inherit copied from the previous
 * set).
 *
 * DNS down at start-up: every name stays unresolved (PENDING, then FAILED
 * once its first query has used all its attempts, ~15 s with the
 * defaults), so accept rules naming hosts match nothing and drop rules
 * naming hosts drop what reaches them — never fail open. The names are
 * retried after 2 s, 4 s, 8 s … at most every retry_max_ns (60 s).
 * DNS coming back: the first query that gets an answer (positive or
 * negative) after a failure brings every failed name's retry forward to
 * now, so all names resolve within one retry interval plus one round trip;
 * resolver_set_servers and resolver_retry_now do the same at once (call
 * them when the DNS servers or the uplink change).
 *
 * Learning from client answers (issue 7, Qubes #8809): see
 * resolver_observe_client_answer. */
#ifndef FW_RESOLVER_H
#define FW_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "fw/rules.h"
#include "net/addr.h"

#define RESOLVER_SERVERS_MAX 2
/* Addresses cached per name and family. */
#define RESOLVER_ADDRS_PER_FAMILY RULES_HOST_ADDRS_MAX
/* Learned addresses kept per registered rule set (over all its names);
 * when full the one expiring first is replaced. */
#define RESOLVER_LEARNED_PER_SET 32

struct resolver;

struct resolver_config {
	uint32_t max_names;          /* distinct names cached */
	uint32_t max_inflight;       /* queries in flight at once */
	uint32_t max_sets;           /* registered rule sets at once */
	uint16_t port_lo, port_hi;   /* our source ports; hi - lo + 1 >= 2 * max_inflight */
	uint32_t attempts;           /* per query, 1..16 */
	uint64_t attempt_timeout_ns; /* first attempt; doubled per attempt */
	uint64_t ttl_min_ns, ttl_max_ns;
	uint64_t grace_ns;
	uint64_t retry_min_ns, retry_max_ns;
	uint64_t negative_ns;
};

/* Defaults: 256 names, 64 in flight, 64 sets (32 clients × 2 families),
 * ports 64512–65535, 4 attempts from 1 s (15 s per query), TTL clamped to
 * [30 s, 1 day], grace 5 min, retries 2 s doubling to 60 s, negative
 * answers asked again after 60 s. */
void resolver_config_default(struct resolver_config *cfg);

/* Sends one query datagram from our address and sport to server:dport (53).
 * Returns false when it could not be sent (the attempt then times out like
 * a lost datagram). Same shape as router_send_local_udp. */
typedef bool (*resolver_send_fn)(void *ctx, const struct ip_addr *server, uint16_t sport,
				 uint16_t dport, const uint8_t *payload, size_t len);

/* The resolver's own valid addresses of a name changed (both families,
 * learned ones not included); n == 0: the name is unresolved. name is
 * NUL-terminated text without the trailing dot. For /dns/<ip>/<host>. */
typedef void (*resolver_report_fn)(void *ctx, const char *name, size_t name_len,
				   const struct ip_addr *addrs, size_t n);

struct resolver_counters {
	uint64_t queries_sent;   /* attempts sent */
	uint64_t send_failures;  /* the send callback said false */
	uint64_t deferred;       /* a due query found no free slot or port */
	uint64_t timeouts;       /* attempts that timed out */
	uint64_t answers;        /* accepted positive answers */
	uint64_t negative;       /* NXDOMAIN or no address */
	uint64_t server_errors;  /* accepted replies with another error rcode */
	uint64_t truncated;      /* accepted replies with TC */
	uint64_t bad_answers;    /* accepted replies with bad records or CNAME loops */
	uint64_t failures;       /* queries that used all their attempts */
	/* dropped replies, no other effect */
	uint64_t unsolicited;    /* no attempt waiting on that port */
	uint64_t duplicates;     /* on the port of an attempt already answered */
	uint64_t wrong_source;   /* not from the attempt's server, port 53 */
	uint64_t malformed;      /* no parsable header and question */
	uint64_t mismatched;     /* id or question differ */
	/* learning from client answers */
	uint64_t learned;        /* addresses added or extended */
	uint64_t learn_ignored;  /* observed replies not used */
	uint64_t table_full;     /* a name or set found no room */
};

/* Bytes of arena needed; 0 when cfg is invalid. */
size_t resolver_memory_needed(const struct resolver_config *cfg);

/* Builds the resolver from the arena; false when cfg is invalid or does
 * not fit. The CSPRNG must be seeded before the first query goes out. */
bool resolver_init(struct resolver **out, struct arena *a, const struct resolver_config *cfg,
		   resolver_send_fn send, void *send_ctx);

void resolver_set_report(struct resolver *r, resolver_report_fn fn, void *ctx);

/* /qubes-primary-dns, /qubes-secondary-dns (n <= RESOLVER_SERVERS_MAX;
 * extra ones ignored; unspecified addresses skipped). Attempts in flight
 * are abandoned and re-sent to the new servers at once, failed names are
 * retried now. With no server every due query fails at once. */
void resolver_set_servers(struct resolver *r, const struct ip_addr *servers, size_t n,
			  uint64_t now_ns);

/* Every failed name is asked again now (the uplink came back). */
void resolver_retry_now(struct resolver *r, uint64_t now_ns);

/* Starts resolving every name of set (family from set->family) and fills
 * its hostsets from the cache at once. Call after each rules load, after
 * rules_hostsets_inherit. The set must stay alive and its names unchanged
 * until resolver_unregister_set (only the resolver writes its hostsets
 * meanwhile). Registering a registered set again refreshes it and forgets
 * what was learned for it. Queries may be sent from inside this call.
 * False when no registration slot is left (the set's names are then
 * failed: D4, fail closed); a name that finds no room in the name table is
 * failed the same way, alone. */
bool resolver_register_set(struct resolver *r, struct rule_set *set, uint64_t now_ns);

/* Forgets set and what was learned for it. Call before its storage is
 * freed or reused. Unknown sets are ignored. */
void resolver_unregister_set(struct resolver *r, const struct rule_set *set);

/* A datagram from the uplink to one of our ports (router_local_udp_fn).
 * Never sends: a reply that ends an attempt schedules the next one for the
 * next resolver_tick (call it after input). */
void resolver_input(struct resolver *r, const struct ip_addr *src, uint16_t sport,
		    uint16_t dport, const uint8_t *payload, size_t len, uint64_t now_ns);

/* Timeouts, retries, refreshes, expiries; sends due queries. Cheap when
 * nothing is due (one comparison). */
void resolver_tick(struct resolver *r, uint64_t now_ns);

/* When resolver_tick next has work; UINT64_MAX when never. */
uint64_t resolver_next_wakeup(const struct resolver *r);

/* Learning from the answers clients really get (issue 7, Qubes #8809).
 * Call from the router's DNS observer with the client's rule sets (its
 * IPv4 and IPv6 sets; NULL entries skipped). The reply is used only when
 * server is one of the configured DNS servers, it parses completely (TC
 * replies are ignored), rcode is NOERROR, its question is A or AAAA of
 * class IN, and the question name is a dsthost of a registered set among
 * sets. Then the answer's addresses of each set's family are added to that
 * set's hostset for the name, valid for their TTL (clamped as above) plus
 * grace_ns; existing addresses stay (when a hostset would exceed
 * RULES_HOST_ADDRS_MAX the addresses expiring first are left out).
 * The router reports only replies from port 53 on a connection the client
 * itself opened to that server (conntrack, after NAT is undone), so only
 * answers to queries the client sent through us, from the real servers,
 * count. Never sends; never changes the resolver's own cache. */
void resolver_observe_client_answer(struct resolver *r, struct rule_set *const *sets,
				    size_t n_sets, const uint8_t *payload, size_t len,
				    const struct ip_addr *server, uint64_t now_ns);

/* The resolver's own valid addresses of name for one family (4 or 6) into
 * out (at most cap); returns how many. For status pages and tests. */
size_t resolver_lookup(const struct resolver *r, const char *name, size_t len, int family,
		       struct ip_addr *out, size_t cap, uint64_t now_ns);

/* Queries in flight now (attempts sent or waiting to be re-sent). */
uint32_t resolver_inflight(const struct resolver *r);

const struct resolver_counters *resolver_get_counters(const struct resolver *r);

#endif
