/* conntrack.h — the connection table: one entry per connection, findable
 * from a packet of either direction, with per-state idle timeouts, LRU
 * eviction and NAT port allocation.
 *
 * One table holds every flow: NATed client→uplink connections and
 * non-NATed ones (client→client, D10). It is pure bookkeeping: it never
 * parses or rewrites packets (that is the NAT module's job) and takes the
 * time as now_ns. Memory is fixed at init from the caller; nothing here
 * allocates, recurses, or loops without a bound (historical bugs, anchors
 * §3: a port allocator that retried forever, a recursive removal that
 * overflowed the stack, a NAT table that refused new connections when full).
 *
 * Keys. Every entry has two tuples, each as a packet of that direction
 * carries it (src = the packet's source):
 *   CT_DIR_ORIG   the initiator's packets: (client, remote, cport, rport)
 *   CT_DIR_REPLY  the answers as seen on the uplink after NAT:
 *                 (remote, nat_addr, rport, nat_port); without NAT simply
 *                 the reverse of the original tuple.
 * Both go into one hash index keyed by SipHash (SipHash-1-3 over a packed
 * form of the tuple) with a per-boot random key from the CSPRNG, so a peer
 * cannot aim tuples at one bucket.
 * Ports by protocol: TCP and UDP use their ports. ICMP/ICMPv6 queries use
 * the identifier as the initiator's port: sport in the original direction,
 * dport in the reply direction, the other port 0 (so a reply tuple derives
 * from the original like any other). Other protocols (GRE, ESP, ...; D12)
 * have both ports 0 and are NATed by address only: one client per
 * (remote, proto) at a time.
 *
 * Memory: CT_ENTRY_BYTES (120) bytes per entry plus 4 bytes per bucket, with
 * buckets = the power of two ≥ 2 × capacity; so 128–136 bytes per entry
 * (5,000 entries: 650 KiB; 1,000,000 entries: 122 MiB). Lookups are O(1)
 * expected at any capacity: at most 2 keys per bucket on average.
 *
 * Entry pointers stay valid until the next call that may remove entries:
 * conntrack_insert (may evict), conntrack_lookup (may expire what it
 * finds), conntrack_alloc_nat_port (looks up), conntrack_expire and the
 * conntrack_remove* family. */
#ifndef FW_CONNTRACK_H
#define FW_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "net/addr.h"

#define CT_PROTO_ICMP 1
#define CT_PROTO_TCP 6
#define CT_PROTO_UDP 17
#define CT_PROTO_ICMPV6 58

#define CT_DEFAULT_CAPACITY 5000u
/* Largest capacity accepted (the index then takes 32 MiB, entries 480 MiB). */
#define CT_MAX_CAPACITY (1u << 22)

/* Idle timeouts, in seconds. An entry expires this long after the last
 * packet that conntrack_seen() was told about. TCP values follow Linux
 * nf_conntrack defaults; an established connection that never saw a reply
 * (picked up mid-stream) gets the short unreplied value. */
#define CT_TIMEOUT_TCP_SYN_SENT 120u
#define CT_TIMEOUT_TCP_SYN_RECV 60u
#define CT_TIMEOUT_TCP_ESTABLISHED 432000u /* 5 days */
#define CT_TIMEOUT_TCP_UNREPLIED 120u
#define CT_TIMEOUT_TCP_FIN_WAIT 120u
#define CT_TIMEOUT_TCP_LAST_ACK 30u
#define CT_TIMEOUT_TCP_TIME_WAIT 120u
#define CT_TIMEOUT_TCP_CLOSE 10u
#define CT_TIMEOUT_UDP_UNREPLIED 30u
#define CT_TIMEOUT_UDP_REPLIED 180u
#define CT_TIMEOUT_ICMP 30u
#define CT_TIMEOUT_OTHER 600u

/* NAT ports for TCP and UDP are drawn from this range by default (ICMP
 * identifiers from all 16 bits). conntrack_alloc_nat_port draws
 * CT_NAT_RANDOM_TRIES random candidates, then checks CT_NAT_SCAN_TRIES
 * consecutive ones from a random start (so a small range that has a free
 * port always finds it), then fails. */
#define CT_NAT_PORT_MIN 1024u
#define CT_NAT_PORT_MAX 65535u
#define CT_NAT_RANDOM_TRIES 32u
#define CT_NAT_SCAN_TRIES 32u

/* TCP flag bits as in the header's 13th byte. */
#define CT_TCP_FIN 0x01u
#define CT_TCP_SYN 0x02u
#define CT_TCP_RST 0x04u
#define CT_TCP_ACK 0x10u

enum ct_dir {
	CT_DIR_ORIG = 0,
	CT_DIR_REPLY = 1,
};

enum ct_result {
	CT_OK = 0,
	CT_EXISTS,   /* one of the tuples already belongs to a live entry */
	CT_INVALID,  /* tuples inconsistent (family/proto mismatch, orig == reply) */
	CT_NO_SPACE, /* capacity 0 */
	CT_NO_PORT,  /* no free NAT port/id found within the bounded tries */
};

enum ct_tcp_state {
	CT_TCP_NONE = 0,    /* not TCP */
	CT_TCP_SYN_SENT,    /* initiator's SYN seen */
	CT_TCP_SYN_RECV,    /* responder's SYN(+ACK) seen */
	CT_TCP_ESTABLISHED, /* handshake completed (or picked up mid-stream) */
	CT_TCP_FIN_WAIT,    /* one side sent FIN */
	CT_TCP_LAST_ACK,    /* both sides sent FIN, waiting for the last ACK */
	CT_TCP_TIME_WAIT,   /* closed cleanly; lingers for stray segments */
	CT_TCP_CLOSE,       /* reset */
};

/* Protocol classes for counters and timeouts. */
enum ct_class {
	CT_CLASS_TCP = 0,
	CT_CLASS_UDP,
	CT_CLASS_ICMP, /* ICMP and ICMPv6 */
	CT_CLASS_OTHER,
	CT_CLASS_COUNT,
};

/* One direction of a connection. Build with ct_tuple_make so the padding
 * is zero (the first CT_TUPLE_KEY_LEN bytes are hashed and compared). */
struct ct_tuple {
	struct ip_addr src;
	struct ip_addr dst;
	uint16_t sport; /* host order */
	uint16_t dport;
	uint8_t proto;  /* IP protocol / IPv6 next header */
	uint8_t family; /* 4 or 6 */
	uint8_t pad[2];
};
#define CT_TUPLE_KEY_LEN 38

/* Entry flags. */
#define CT_F_NAT 0x01u        /* reply tuple is not the plain reverse */
#define CT_F_SEEN_REPLY 0x02u /* a reply-direction packet was seen */
#define CT_F_FIN_ORIG 0x04u   /* TCP: FIN seen from the initiator */
#define CT_F_FIN_REPLY 0x08u  /* TCP: FIN seen from the responder */

/* Read-only for callers except `mark`. */
struct ct_entry {
	struct ct_tuple tuple[2]; /* indexed by enum ct_dir */
	uint64_t expires_ns;
	uint32_t hash[2];  /* index hash of each tuple (low 32 bits of SipHash-1-3) */
	uint32_t hnext[2]; /* hash chain links (key references) */
	uint32_t lru_prev; /* towards the most recently used */
	uint32_t lru_next; /* towards the least recently used; free-list link */
	uint32_t mark;     /* the caller's (e.g. rule generation); 0 at insert */
	uint8_t tcp_state; /* enum ct_tcp_state */
	uint8_t flags;     /* CT_F_* */
	uint8_t cls;       /* enum ct_class */
	uint8_t in_use;
};
#define CT_ENTRY_BYTES 120

struct ct_stats {
	uint32_t in_use;
	uint32_t capacity;
	uint32_t per_class[CT_CLASS_COUNT];
	uint64_t inserts;
	uint64_t evictions;       /* live entries pushed out because the table was full */
	uint64_t expired;         /* entries removed for idleness (lazily or by sweep) */
	uint64_t insert_failures; /* inserts refused (exists, invalid, no space) */
	uint64_t nat_port_failures;
};

struct conntrack; /* opaque */

/* Bytes conntrack_init needs for capacity entries (0 when capacity is
 * larger than CT_MAX_CAPACITY). */
size_t conntrack_memory_needed(uint32_t capacity);

/* Lays the table out in mem (any alignment; size from
 * conntrack_memory_needed). Draws the hash key from the CSPRNG, which must
 * be seeded. NULL when mem is too small or capacity too large. */
struct conntrack *conntrack_init(void *mem, size_t size, uint32_t capacity);

/* conntrack_init on memory from the start-up arena. */
struct conntrack *conntrack_create(struct arena *a, uint32_t capacity);

/* Sets the TCP/UDP NAT port range [lo, hi] (lo ≤ hi), e.g. to keep the
 * firewall's own DNS ports out of it. */
void conntrack_set_nat_port_range(struct conntrack *ct, uint16_t lo, uint16_t hi);

/* A tuple with zeroed padding; family from src (IPv4-mapped → 4). */
struct ct_tuple ct_tuple_make(uint8_t proto, const struct ip_addr *src, uint16_t sport,
			      const struct ip_addr *dst, uint16_t dport);
/* The same flow seen from the other end. */
struct ct_tuple ct_tuple_reverse(const struct ct_tuple *t);
/* The reply tuple of orig NATed to (nat_addr, nat_port). */
struct ct_tuple ct_tuple_nat_reply(const struct ct_tuple *orig, const struct ip_addr *nat_addr,
				   uint16_t nat_port);
bool ct_tuple_equal(const struct ct_tuple *a, const struct ct_tuple *b);
enum ct_class ct_proto_class(uint8_t proto);

/* The live entry with tuple t in either direction, or NULL. *dir (may be
 * NULL) tells which of its tuples matched. An entry found expired is
 * removed and NULL returned. Does not refresh the entry: call
 * conntrack_seen for the packets you forward. */
struct ct_entry *conntrack_lookup(struct conntrack *ct, const struct ct_tuple *t, uint64_t now_ns,
				  enum ct_dir *dir);

/* Adds a connection. reply NULL means no NAT (the reverse of orig); a
 * reply from ct_tuple_nat_reply / conntrack_alloc_nat_port makes a NAT
 * entry. tcp_flags are those of the first packet (ignored unless TCP),
 * which counts as seen. When the table is full the least recently used
 * entry is evicted first, so this only fails for CT_EXISTS (either tuple
 * already live), CT_INVALID, or CT_NO_SPACE (capacity 0). */
enum ct_result conntrack_insert(struct conntrack *ct, const struct ct_tuple *orig,
				const struct ct_tuple *reply, uint8_t tcp_flags, uint64_t now_ns,
				struct ct_entry **out);

/* A packet of direction dir was forwarded on e: advances the TCP state
 * machine with its flags, marks replies, restarts the idle timer and
 * makes e the most recently used. */
void conntrack_seen(struct conntrack *ct, struct ct_entry *e, enum ct_dir dir, uint8_t tcp_flags,
		    uint64_t now_ns);

/* Finds a NAT port (TCP/UDP: within the configured range; ICMP: any id;
 * other protocols: address only) such that the reply tuple of orig NATed
 * to nat_addr is not live, and stores that reply tuple in *reply. Bounded
 * (CT_NAT_RANDOM_TRIES + CT_NAT_SCAN_TRIES lookups); CT_NO_PORT when all
 * candidates are taken, and the caller drops the packet with a
 * rate-limited log line. */
enum ct_result conntrack_alloc_nat_port(struct conntrack *ct, const struct ct_tuple *orig,
					const struct ip_addr *nat_addr, uint64_t now_ns,
					struct ct_tuple *reply);

void conntrack_remove(struct conntrack *ct, struct ct_entry *e);

/* Removes every connection a client takes part in (its address is the
 * original source or, for client-to-client flows, the original
 * destination). Iterative, O(entries in use). Returns the number removed. */
uint32_t conntrack_remove_client(struct conntrack *ct, const struct ip_addr *client);

/* For each live connection whose original source is client (every entry
 * when client is NULL), asks keep(); removes those for which it returns
 * false (D11: after a rule change drop only what the new rules block).
 * keep must not call into the table. Iterative, O(entries in use). */
typedef bool (*ct_keep_fn)(const struct ct_entry *e, void *ctx);
uint32_t conntrack_remove_if(struct conntrack *ct, const struct ip_addr *client, ct_keep_fn keep,
			     void *ctx);

/* Incremental sweep: examines at most budget entry slots (continuing where
 * the previous call stopped) and removes those expired at now_ns. Returns
 * the number removed. */
uint32_t conntrack_expire(struct conntrack *ct, uint64_t now_ns, uint32_t budget);

void conntrack_get_stats(const struct conntrack *ct, struct ct_stats *out);

/* A counter bumped by every removal of an entry (explicit, client removal,
 * rule change, expiry, eviction). While it is unchanged, every entry
 * pointer obtained earlier still designates the same live-or-expired
 * connection with the same tuples: caches of entry pointers (the router's
 * per-interface flow cache) validate themselves with it. */
uint64_t conntrack_generation(const struct conntrack *ct);
/* Where that counter lives (for a per-packet check without a call). */
const uint64_t *conntrack_generation_ref(const struct conntrack *ct);

/* Idle timeout (ns) of e in its present state. */
uint64_t conntrack_timeout_ns(const struct ct_entry *e);

/* Debug: NULL when every invariant holds (count ≤ capacity, LRU list and
 * free list consistent, every entry findable from both tuples, stored
 * hashes right, counters add up), else a description of the first
 * violation. O(capacity + buckets). */
const char *conntrack_check_invariants(const struct conntrack *ct);

/* Debug: the longest hash chain (keys in one bucket). O(buckets). */
uint32_t conntrack_longest_chain(const struct conntrack *ct);

#endif
