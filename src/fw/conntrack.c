/* conntrack.c — the connection table: entries in one array, a chained hash
 * index over both tuples of every entry, an LRU list and a free list, all
 * linked by 32-bit indices inside caller memory.
 *
 * Must never: allocate, recurse, loop without a bound, or fail an insert
 * for lack of room while capacity > 0 (the least recently used entry is
 * evicted instead). Every loop below is bounded by the capacity, the chain
 * length, or an explicit budget. */
#include "fw/conntrack.h"

#include "base/byteorder.h"
#include "base/csprng.h"
#include "base/libc.h"
#include "base/panic.h"
#include "base/siphash.h"

#define NIL UINT32_MAX
#define NS_PER_S 1000000000ull

_Static_assert(sizeof(struct ct_tuple) == 40, "ct_tuple layout");
_Static_assert(offsetof(struct ct_tuple, pad) == CT_TUPLE_KEY_LEN, "hashed prefix of ct_tuple");
_Static_assert(sizeof(struct ct_entry) == CT_ENTRY_BYTES, "CT_ENTRY_BYTES is documented");
/* Key references are entry index * 2 + direction and must stay below NIL. */
_Static_assert(CT_MAX_CAPACITY <= (1u << 30), "key references fit in 32 bits");

struct conntrack {
	struct siphash_key key;
	struct ct_entry *entries;
	uint32_t *buckets; /* head key reference per bucket, NIL when empty */
	uint32_t capacity;
	uint32_t mask; /* buckets - 1 */
	uint32_t count;
	uint32_t lru_head; /* most recently used */
	uint32_t lru_tail; /* least recently used: the next to evict */
	uint32_t free_head;
	uint32_t sweep_pos;
	uint16_t port_lo, port_hi;
	uint64_t generation; /* bumped by every removal: see conntrack_generation */
	uint32_t per_class[CT_CLASS_COUNT];
	uint64_t inserts;
	uint64_t evictions;
	uint64_t expired;
	uint64_t insert_failures;
	uint64_t nat_port_failures;
};

static uint32_t bucket_count(uint32_t capacity)
{
	uint32_t n = 16;
	while (n < 2 * capacity)
		n <<= 1;
	return n;
}

size_t conntrack_memory_needed(uint32_t capacity)
{
	if (capacity > CT_MAX_CAPACITY)
		return 0;
	/* Slack for aligning the start of caller memory. */
	return 64 + sizeof(struct conntrack) + (size_t)capacity * sizeof(struct ct_entry) +
	       (size_t)bucket_count(capacity) * sizeof(uint32_t);
}

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

struct conntrack *conntrack_init(void *mem, size_t size, uint32_t capacity)
{
	size_t need = conntrack_memory_needed(capacity);
	if (mem == NULL || need == 0 || size < need)
		return NULL;
	uint8_t *p = (uint8_t *)mem + ((0u - (uintptr_t)mem) & 63u);
	struct conntrack *ct = (struct conntrack *)(void *)p;
	p += align_up(sizeof(*ct), 8);
	struct ct_entry *entries = (struct ct_entry *)(void *)p;
	p += (size_t)capacity * sizeof(struct ct_entry);
	uint32_t *buckets = (uint32_t *)(void *)p;
	uint32_t nb = bucket_count(capacity);
	ASSERT(p + (size_t)nb * sizeof(uint32_t) <= (uint8_t *)mem + size);

	memset(ct, 0, sizeof(*ct));
	ct->entries = entries;
	ct->buckets = buckets;
	ct->capacity = capacity;
	ct->mask = nb - 1;
	ct->lru_head = NIL;
	ct->lru_tail = NIL;
	ct->port_lo = CT_NAT_PORT_MIN;
	ct->port_hi = CT_NAT_PORT_MAX;
	memset(buckets, 0xff, (size_t)nb * sizeof(uint32_t));
	memset(entries, 0, (size_t)capacity * sizeof(struct ct_entry));
	/* Free list in index order, linked through lru_next. */
	for (uint32_t i = 0; i < capacity; i++)
		entries[i].lru_next = i + 1 < capacity ? i + 1 : NIL;
	ct->free_head = capacity ? 0 : NIL;

	uint8_t k[SIPHASH_KEY_LEN];
	csprng_bytes(k, sizeof(k));
	siphash_key_from_bytes(&ct->key, k);
	memset(k, 0, sizeof(k));
	return ct;
}

struct conntrack *conntrack_create(struct arena *a, uint32_t capacity)
{
	size_t need = conntrack_memory_needed(capacity);
	if (need == 0)
		return NULL;
	void *mem = arena_alloc(a, need, 64);
	if (mem == NULL)
		return NULL;
	return conntrack_init(mem, need, capacity);
}

void conntrack_set_nat_port_range(struct conntrack *ct, uint16_t lo, uint16_t hi)
{
	ASSERT(lo <= hi);
	ct->port_lo = lo;
	ct->port_hi = hi;
}

/* ---- tuples -------------------------------------------------------------- */

struct ct_tuple ct_tuple_make(uint8_t proto, const struct ip_addr *src, uint16_t sport,
			      const struct ip_addr *dst, uint16_t dport)
{
	struct ct_tuple t;
	memset(&t, 0, sizeof(t));
	t.src = *src;
	t.dst = *dst;
	t.sport = sport;
	t.dport = dport;
	t.proto = proto;
	t.family = ip_is_v4(src) ? 4 : 6;
	return t;
}

struct ct_tuple ct_tuple_reverse(const struct ct_tuple *t)
{
	struct ct_tuple r = *t;
	r.src = t->dst;
	r.dst = t->src;
	r.sport = t->dport;
	r.dport = t->sport;
	return r;
}

struct ct_tuple ct_tuple_nat_reply(const struct ct_tuple *orig, const struct ip_addr *nat_addr,
				   uint16_t nat_port)
{
	struct ct_tuple r = *orig;
	r.src = orig->dst;
	r.dst = *nat_addr;
	r.sport = orig->dport;
	r.dport = nat_port;
	return r;
}

static bool key_equal(const struct ct_tuple *a, const struct ct_tuple *b);

bool ct_tuple_equal(const struct ct_tuple *a, const struct ct_tuple *b)
{
	return key_equal(a, b);
}

enum ct_class ct_proto_class(uint8_t proto)
{
	switch (proto) {
	case CT_PROTO_TCP:
		return CT_CLASS_TCP;
	case CT_PROTO_UDP:
		return CT_CLASS_UDP;
	case CT_PROTO_ICMP:
	case CT_PROTO_ICMPV6:
		return CT_CLASS_ICMP;
	default:
		return CT_CLASS_OTHER;
	}
}

static bool tuple_valid(const struct ct_tuple *t)
{
	if (t->family == 4)
		return ip_is_v4(&t->src) && ip_is_v4(&t->dst);
	if (t->family == 6)
		return !ip_is_v4(&t->src) && !ip_is_v4(&t->dst);
	return false;
}

/* ---- hash index ---------------------------------------------------------- */

/* The index hash: SipHash-1-3 (the SipHash paper's c = 1, d = 3 variant,
 * the one Linux's hsiphash and Rust's HashMap use for hash tables) keyed by
 * the per-boot random key, over a packed form of the tuple: 16 bytes for
 * IPv4 (both addresses in one word, ports, protocol and family in the
 * other), 40 for IPv6. A peer still cannot aim tuples at one bucket without
 * the key, and one IPv4 hash costs about 6 SipRounds instead of the 14 of
 * SipHash-2-4 over the 38-byte tuple (bench/README.md). */
#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
	do {                                                                                       \
		(v0) += (v1);                                                                      \
		(v1) = SIP_ROTL(v1, 13);                                                           \
		(v1) ^= (v0);                                                                      \
		(v0) = SIP_ROTL(v0, 32);                                                           \
		(v2) += (v3);                                                                      \
		(v3) = SIP_ROTL(v3, 16);                                                           \
		(v3) ^= (v2);                                                                      \
		(v0) += (v3);                                                                      \
		(v3) = SIP_ROTL(v3, 21);                                                           \
		(v3) ^= (v0);                                                                      \
		(v2) += (v1);                                                                      \
		(v1) = SIP_ROTL(v1, 17);                                                           \
		(v1) ^= (v2);                                                                      \
		(v2) = SIP_ROTL(v2, 32);                                                           \
	} while (0)

static uint64_t siphash13_words(const struct siphash_key *k, const uint64_t *m, unsigned int n)
{
	uint64_t v0 = k->k0 ^ 0x736f6d6570736575ull;
	uint64_t v1 = k->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k->k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = k->k1 ^ 0x7465646279746573ull;
	for (unsigned int i = 0; i < n; i++) {
		v3 ^= m[i];
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m[i];
	}
	uint64_t b = (uint64_t)(n * 8u) << 56;
	v3 ^= b;
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t tuple_hash(const struct conntrack *ct, const struct ct_tuple *t)
{
	uint64_t m[5];
	uint64_t tail = (uint64_t)t->sport | (uint64_t)t->dport << 16 | (uint64_t)t->proto << 32 |
			(uint64_t)t->family << 40;
	if (t->family == 4) {
		m[0] = (uint64_t)load_le32(t->src.b + 12) | (uint64_t)load_le32(t->dst.b + 12) << 32;
		m[1] = tail;
		return (uint32_t)siphash13_words(&ct->key, m, 2);
	}
	m[0] = load_le64(t->src.b);
	m[1] = load_le64(t->src.b + 8);
	m[2] = load_le64(t->dst.b);
	m[3] = load_le64(t->dst.b + 8);
	m[4] = tail;
	return (uint32_t)siphash13_words(&ct->key, m, 5);
}

/* The hashed prefix of two tuples compared word by word (the unikernel's
 * memcmp is a byte loop). */
static bool key_equal(const struct ct_tuple *a, const struct ct_tuple *b)
{
	const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
	uint64_t d = 0;
	for (unsigned int i = 0; i < 32; i += 8)
		d |= load_le64(x + i) ^ load_le64(y + i);
	d |= (uint64_t)(load_le32(x + 32) ^ load_le32(y + 32));
	d |= (uint64_t)(load_le16(x + 36) ^ load_le16(y + 36));
	return d == 0;
}

static inline uint32_t *key_next(const struct conntrack *ct, uint32_t ref)
{
	return &ct->entries[ref >> 1].hnext[ref & 1];
}

/* The key reference holding tuple t (hash h), or NIL. */
static uint32_t index_find(const struct conntrack *ct, const struct ct_tuple *t, uint32_t h)
{
	uint32_t ref = ct->buckets[h & ct->mask];
	while (ref != NIL) {
		const struct ct_entry *e = &ct->entries[ref >> 1];
		unsigned int d = ref & 1;
		if (e->hash[d] == h && key_equal(&e->tuple[d], t))
			return ref;
		ref = e->hnext[d];
	}
	return NIL;
}

static void index_link(struct conntrack *ct, uint32_t idx, unsigned int d)
{
	struct ct_entry *e = &ct->entries[idx];
	uint32_t *head = &ct->buckets[e->hash[d] & ct->mask];
	e->hnext[d] = *head;
	*head = idx * 2 + d;
}

static void index_unlink(struct conntrack *ct, uint32_t idx, unsigned int d)
{
	struct ct_entry *e = &ct->entries[idx];
	uint32_t ref = idx * 2 + d;
	uint32_t *slot = &ct->buckets[e->hash[d] & ct->mask];
	while (*slot != ref) {
		ASSERT(*slot != NIL);
		slot = key_next(ct, *slot);
	}
	*slot = e->hnext[d];
	e->hnext[d] = NIL;
}

/* ---- LRU list ------------------------------------------------------------ */

static void lru_unlink(struct conntrack *ct, uint32_t idx)
{
	struct ct_entry *e = &ct->entries[idx];
	if (e->lru_prev != NIL)
		ct->entries[e->lru_prev].lru_next = e->lru_next;
	else
		ct->lru_head = e->lru_next;
	if (e->lru_next != NIL)
		ct->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		ct->lru_tail = e->lru_prev;
	e->lru_prev = NIL;
	e->lru_next = NIL;
}

static void lru_push_front(struct conntrack *ct, uint32_t idx)
{
	struct ct_entry *e = &ct->entries[idx];
	e->lru_prev = NIL;
	e->lru_next = ct->lru_head;
	if (ct->lru_head != NIL)
		ct->entries[ct->lru_head].lru_prev = idx;
	else
		ct->lru_tail = idx;
	ct->lru_head = idx;
}

/* ---- entries ------------------------------------------------------------- */

static uint32_t entry_index(const struct conntrack *ct, const struct ct_entry *e)
{
	/* One unsigned comparison covers both ends of the array. */
	size_t idx = (size_t)(e - ct->entries);
	ASSERT(idx < ct->capacity && ct->entries[idx].in_use);
	return (uint32_t)idx;
}

static void remove_index(struct conntrack *ct, uint32_t idx)
{
	struct ct_entry *e = &ct->entries[idx];
	ASSERT(e->in_use);
	index_unlink(ct, idx, CT_DIR_ORIG);
	index_unlink(ct, idx, CT_DIR_REPLY);
	lru_unlink(ct, idx);
	ct->per_class[e->cls]--;
	ct->count--;
	ct->generation++;
	memset(e, 0, sizeof(*e));
	e->hnext[0] = NIL;
	e->hnext[1] = NIL;
	e->lru_prev = NIL;
	e->lru_next = ct->free_head;
	ct->free_head = idx;
}

void conntrack_remove(struct conntrack *ct, struct ct_entry *e)
{
	remove_index(ct, entry_index(ct, e));
}

static uint64_t tcp_timeout_s(const struct ct_entry *e)
{
	switch (e->tcp_state) {
	case CT_TCP_SYN_SENT:
		return CT_TIMEOUT_TCP_SYN_SENT;
	case CT_TCP_SYN_RECV:
		return CT_TIMEOUT_TCP_SYN_RECV;
	case CT_TCP_ESTABLISHED:
		return (e->flags & CT_F_SEEN_REPLY) ? CT_TIMEOUT_TCP_ESTABLISHED
						    : CT_TIMEOUT_TCP_UNREPLIED;
	case CT_TCP_FIN_WAIT:
		return CT_TIMEOUT_TCP_FIN_WAIT;
	case CT_TCP_LAST_ACK:
		return CT_TIMEOUT_TCP_LAST_ACK;
	case CT_TCP_TIME_WAIT:
		return CT_TIMEOUT_TCP_TIME_WAIT;
	default:
		return CT_TIMEOUT_TCP_CLOSE;
	}
}

uint64_t conntrack_timeout_ns(const struct ct_entry *e)
{
	uint64_t s;
	switch (e->cls) {
	case CT_CLASS_TCP:
		s = tcp_timeout_s(e);
		break;
	case CT_CLASS_UDP:
		s = (e->flags & CT_F_SEEN_REPLY) ? CT_TIMEOUT_UDP_REPLIED : CT_TIMEOUT_UDP_UNREPLIED;
		break;
	case CT_CLASS_ICMP:
		s = CT_TIMEOUT_ICMP;
		break;
	default:
		s = CT_TIMEOUT_OTHER;
		break;
	}
	return s * NS_PER_S;
}

static bool expired(const struct ct_entry *e, uint64_t now_ns)
{
	return now_ns >= e->expires_ns;
}

/* The TCP state after a segment with flags in direction dir. Tracks the
 * handshake and the close loosely (no sequence numbers): it decides
 * timeouts, not which packets pass. */
static uint8_t tcp_next(struct ct_entry *e, enum ct_dir dir, uint8_t flags)
{
	bool syn = flags & CT_TCP_SYN, ack = flags & CT_TCP_ACK, fin = flags & CT_TCP_FIN;
	uint8_t s = e->tcp_state;

	if (flags & CT_TCP_RST)
		return CT_TCP_CLOSE;
	switch (s) {
	case CT_TCP_NONE:
		/* The first packet: a SYN opens; anything else is a pickup
		 * mid-stream (short timeout until a reply is seen). */
		s = (syn && !ack) ? CT_TCP_SYN_SENT : CT_TCP_ESTABLISHED;
		break;
	case CT_TCP_SYN_SENT:
		if (dir == CT_DIR_REPLY && syn)
			s = CT_TCP_SYN_RECV;
		break;
	case CT_TCP_SYN_RECV:
		if (dir == CT_DIR_ORIG && ack && !syn)
			s = CT_TCP_ESTABLISHED;
		break;
	case CT_TCP_LAST_ACK:
		if (ack && !fin && !syn)
			return CT_TCP_TIME_WAIT;
		break;
	case CT_TCP_TIME_WAIT:
	case CT_TCP_CLOSE:
		/* Port reuse: a new SYN from the initiator starts over. */
		if (dir == CT_DIR_ORIG && syn && !ack) {
			e->flags &= (uint8_t)~(CT_F_FIN_ORIG | CT_F_FIN_REPLY);
			return CT_TCP_SYN_SENT;
		}
		return s;
	default:
		break;
	}
	if (fin && s != CT_TCP_SYN_SENT) {
		e->flags |= dir == CT_DIR_ORIG ? CT_F_FIN_ORIG : CT_F_FIN_REPLY;
		bool both = (e->flags & (CT_F_FIN_ORIG | CT_F_FIN_REPLY)) ==
			    (CT_F_FIN_ORIG | CT_F_FIN_REPLY);
		s = both ? CT_TCP_LAST_ACK : CT_TCP_FIN_WAIT;
	}
	return s;
}

/* seen's general case, kept out of line so the common case stays short. */
static __attribute__((noinline)) void seen_state(struct ct_entry *e, enum ct_dir dir,
						 uint8_t tcp_flags, uint64_t now_ns)
{
	if (e->cls == CT_CLASS_TCP)
		e->tcp_state = tcp_next(e, dir, tcp_flags);
	e->expires_ns = now_ns + conntrack_timeout_ns(e);
}

static __attribute__((noinline)) void lru_to_front(struct conntrack *ct, uint32_t idx)
{
	lru_unlink(ct, idx);
	lru_push_front(ct, idx);
}

static inline void seen(struct conntrack *ct, uint32_t idx, enum ct_dir dir, uint8_t tcp_flags,
		 uint64_t now_ns)
{
	struct ct_entry *e = &ct->entries[idx];
	if (dir == CT_DIR_REPLY)
		e->flags |= CT_F_SEEN_REPLY;
	if (e->cls == CT_CLASS_TCP && e->tcp_state == CT_TCP_ESTABLISHED &&
	    !(tcp_flags & (CT_TCP_SYN | CT_TCP_FIN | CT_TCP_RST))) {
		/* The bulk of all packets: tcp_next would keep the state, and
		 * the timeout is tcp_timeout_s's ESTABLISHED case. */
		e->expires_ns = now_ns + ((e->flags & CT_F_SEEN_REPLY) ? CT_TIMEOUT_TCP_ESTABLISHED
								       : CT_TIMEOUT_TCP_UNREPLIED) *
						 NS_PER_S;
	} else if (e->cls == CT_CLASS_UDP) {
		e->expires_ns = now_ns + ((e->flags & CT_F_SEEN_REPLY) ? CT_TIMEOUT_UDP_REPLIED
								       : CT_TIMEOUT_UDP_UNREPLIED) *
						 NS_PER_S;
	} else {
		seen_state(e, dir, tcp_flags, now_ns);
	}
	if (ct->lru_head != idx)
		lru_to_front(ct, idx);
}

void conntrack_seen(struct conntrack *ct, struct ct_entry *e, enum ct_dir dir, uint8_t tcp_flags,
		    uint64_t now_ns)
{
	seen(ct, entry_index(ct, e), dir, tcp_flags, now_ns);
}

/* ---- lookup and insert --------------------------------------------------- */

/* Key reference of the live entry with tuple t, removing it (NIL) when it
 * has expired. */
static uint32_t find_live(struct conntrack *ct, const struct ct_tuple *t, uint64_t now_ns)
{
	uint32_t ref = index_find(ct, t, tuple_hash(ct, t));
	if (ref == NIL)
		return NIL;
	if (expired(&ct->entries[ref >> 1], now_ns)) {
		remove_index(ct, ref >> 1);
		ct->expired++;
		return NIL;
	}
	return ref;
}

struct ct_entry *conntrack_lookup(struct conntrack *ct, const struct ct_tuple *t, uint64_t now_ns,
				  enum ct_dir *dir)
{
	uint32_t ref = find_live(ct, t, now_ns);
	if (ref == NIL)
		return NULL;
	if (dir)
		*dir = (enum ct_dir)(ref & 1);
	return &ct->entries[ref >> 1];
}

static uint32_t take_free_entry(struct conntrack *ct)
{
	if (ct->free_head == NIL) {
		ASSERT(ct->lru_tail != NIL);
		remove_index(ct, ct->lru_tail);
		ct->evictions++;
	}
	uint32_t idx = ct->free_head;
	ct->free_head = ct->entries[idx].lru_next;
	return idx;
}

static enum ct_result insert_fail(struct conntrack *ct, enum ct_result r)
{
	ct->insert_failures++;
	return r;
}

enum ct_result conntrack_insert(struct conntrack *ct, const struct ct_tuple *orig,
				const struct ct_tuple *reply, uint8_t tcp_flags, uint64_t now_ns,
				struct ct_entry **out)
{
	struct ct_tuple rev = ct_tuple_reverse(orig);
	if (reply == NULL)
		reply = &rev;
	if (out)
		*out = NULL;
	if (ct->capacity == 0)
		return insert_fail(ct, CT_NO_SPACE);
	if (!tuple_valid(orig) || !tuple_valid(reply) || orig->family != reply->family ||
	    orig->proto != reply->proto || ct_tuple_equal(orig, reply))
		return insert_fail(ct, CT_INVALID);
	if (find_live(ct, orig, now_ns) != NIL || find_live(ct, reply, now_ns) != NIL)
		return insert_fail(ct, CT_EXISTS);

	uint32_t idx = take_free_entry(ct);
	struct ct_entry *e = &ct->entries[idx];
	memset(e, 0, sizeof(*e));
	e->tuple[CT_DIR_ORIG] = *orig;
	e->tuple[CT_DIR_REPLY] = *reply;
	memset(e->tuple[CT_DIR_ORIG].pad, 0, sizeof(e->tuple[0].pad));
	memset(e->tuple[CT_DIR_REPLY].pad, 0, sizeof(e->tuple[0].pad));
	e->hash[CT_DIR_ORIG] = tuple_hash(ct, orig);
	e->hash[CT_DIR_REPLY] = tuple_hash(ct, reply);
	e->cls = (uint8_t)ct_proto_class(orig->proto);
	e->in_use = 1;
	if (!ct_tuple_equal(reply, &rev))
		e->flags |= CT_F_NAT;
	index_link(ct, idx, CT_DIR_ORIG);
	index_link(ct, idx, CT_DIR_REPLY);
	e->lru_prev = NIL;
	e->lru_next = NIL;
	lru_push_front(ct, idx);
	ct->count++;
	ct->per_class[e->cls]++;
	ct->inserts++;
	seen(ct, idx, CT_DIR_ORIG, tcp_flags, now_ns);
	if (out)
		*out = e;
	return CT_OK;
}

/* ---- NAT ports ----------------------------------------------------------- */

enum ct_result conntrack_alloc_nat_port(struct conntrack *ct, const struct ct_tuple *orig,
					const struct ip_addr *nat_addr, uint64_t now_ns,
					struct ct_tuple *reply)
{
	uint32_t lo, n;
	if ((orig->family == 4) != ip_is_v4(nat_addr)) {
		ct->nat_port_failures++;
		return CT_INVALID;
	}
	switch (ct_proto_class(orig->proto)) {
	case CT_CLASS_TCP:
	case CT_CLASS_UDP:
		lo = ct->port_lo;
		n = (uint32_t)ct->port_hi - ct->port_lo + 1;
		break;
	case CT_CLASS_ICMP:
		lo = 0;
		n = 65536;
		break;
	default:
		/* NAT by address: the one candidate has no ports. */
		lo = 0;
		n = 1;
		break;
	}

	for (uint32_t i = 0; i < CT_NAT_RANDOM_TRIES && i < n; i++) {
		struct ct_tuple r =
			ct_tuple_nat_reply(orig, nat_addr, (uint16_t)(lo + csprng_uniform(n)));
		if (find_live(ct, &r, now_ns) == NIL) {
			*reply = r;
			return CT_OK;
		}
	}
	/* A nearly full range: walk a stretch from a random start. */
	uint32_t start = csprng_uniform(n);
	for (uint32_t i = 0; i < CT_NAT_SCAN_TRIES && i < n; i++) {
		struct ct_tuple r =
			ct_tuple_nat_reply(orig, nat_addr, (uint16_t)(lo + (start + i) % n));
		if (find_live(ct, &r, now_ns) == NIL) {
			*reply = r;
			return CT_OK;
		}
	}
	ct->nat_port_failures++;
	return CT_NO_PORT;
}

/* ---- removal and expiry -------------------------------------------------- */

uint32_t conntrack_remove_client(struct conntrack *ct, const struct ip_addr *client)
{
	uint32_t removed = 0;
	uint32_t idx = ct->lru_head;
	while (idx != NIL) {
		const struct ct_entry *e = &ct->entries[idx];
		uint32_t next = e->lru_next;
		if (ip_equal(&e->tuple[CT_DIR_ORIG].src, client) ||
		    ip_equal(&e->tuple[CT_DIR_ORIG].dst, client)) {
			remove_index(ct, idx);
			removed++;
		}
		idx = next;
	}
	return removed;
}

uint32_t conntrack_remove_if(struct conntrack *ct, const struct ip_addr *client, ct_keep_fn keep,
			     void *ctx)
{
	uint32_t removed = 0;
	uint32_t idx = ct->lru_head;
	while (idx != NIL) {
		const struct ct_entry *e = &ct->entries[idx];
		uint32_t next = e->lru_next;
		if ((client == NULL || ip_equal(&e->tuple[CT_DIR_ORIG].src, client)) &&
		    !keep(e, ctx)) {
			remove_index(ct, idx);
			removed++;
		}
		idx = next;
	}
	return removed;
}

uint32_t conntrack_expire(struct conntrack *ct, uint64_t now_ns, uint32_t budget)
{
	uint32_t removed = 0;
	if (ct->capacity == 0)
		return 0;
	for (uint32_t i = 0; i < budget && i < ct->capacity; i++) {
		uint32_t idx = ct->sweep_pos;
		ct->sweep_pos = idx + 1 < ct->capacity ? idx + 1 : 0;
		if (ct->entries[idx].in_use && expired(&ct->entries[idx], now_ns)) {
			remove_index(ct, idx);
			ct->expired++;
			removed++;
		}
	}
	return removed;
}

/* ---- statistics and debugging -------------------------------------------- */

uint64_t conntrack_generation(const struct conntrack *ct)
{
	return ct->generation;
}

const uint64_t *conntrack_generation_ref(const struct conntrack *ct)
{
	return &ct->generation;
}

void conntrack_get_stats(const struct conntrack *ct, struct ct_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->in_use = ct->count;
	out->capacity = ct->capacity;
	for (int i = 0; i < CT_CLASS_COUNT; i++)
		out->per_class[i] = ct->per_class[i];
	out->inserts = ct->inserts;
	out->evictions = ct->evictions;
	out->expired = ct->expired;
	out->insert_failures = ct->insert_failures;
	out->nat_port_failures = ct->nat_port_failures;
}

uint32_t conntrack_longest_chain(const struct conntrack *ct)
{
	uint32_t longest = 0;
	for (uint32_t b = 0; b <= ct->mask; b++) {
		uint32_t len = 0;
		for (uint32_t ref = ct->buckets[b]; ref != NIL && len <= 2 * ct->capacity;
		     ref = *key_next(ct, ref))
			len++;
		longest = MAX(longest, len);
	}
	return longest;
}

static const char *check_entry(const struct conntrack *ct, uint32_t idx, uint32_t *per_class)
{
	const struct ct_entry *e = &ct->entries[idx];
	if (e->cls >= CT_CLASS_COUNT || e->cls != ct_proto_class(e->tuple[0].proto))
		return "entry class does not match its protocol";
	per_class[e->cls]++;
	if (!tuple_valid(&e->tuple[0]) || !tuple_valid(&e->tuple[1]) ||
	    e->tuple[0].family != e->tuple[1].family || e->tuple[0].proto != e->tuple[1].proto)
		return "entry tuples inconsistent";
	struct ct_tuple rev = ct_tuple_reverse(&e->tuple[0]);
	if (!!(e->flags & CT_F_NAT) == ct_tuple_equal(&rev, &e->tuple[1]))
		return "NAT flag does not match the tuples";
	if (e->cls != CT_CLASS_TCP && e->tcp_state != CT_TCP_NONE)
		return "TCP state on a non-TCP entry";
	if (e->cls == CT_CLASS_TCP && (e->tcp_state == CT_TCP_NONE || e->tcp_state > CT_TCP_CLOSE))
		return "bad TCP state";
	for (unsigned int d = 0; d < 2; d++) {
		if (e->hash[d] != tuple_hash(ct, &e->tuple[d]))
			return "stored hash is stale";
		if (index_find(ct, &e->tuple[d], e->hash[d]) != idx * 2 + d)
			return "entry not findable from one of its tuples";
	}
	return NULL;
}

const char *conntrack_check_invariants(const struct conntrack *ct)
{
	if (ct->count > ct->capacity)
		return "count exceeds capacity";

	/* LRU list: exactly the live entries, doubly linked. */
	uint32_t n = 0, prev = NIL;
	uint32_t per_class[CT_CLASS_COUNT] = {0};
	for (uint32_t idx = ct->lru_head; idx != NIL; idx = ct->entries[idx].lru_next) {
		if (idx >= ct->capacity || ++n > ct->capacity)
			return "LRU list out of bounds or cyclic";
		const struct ct_entry *e = &ct->entries[idx];
		if (!e->in_use)
			return "free entry on the LRU list";
		if (e->lru_prev != prev)
			return "LRU back link broken";
		const char *why = check_entry(ct, idx, per_class);
		if (why)
			return why;
		prev = idx;
	}
	if (prev != ct->lru_tail)
		return "LRU tail wrong";
	if (n != ct->count)
		return "LRU list length differs from count";
	for (int i = 0; i < CT_CLASS_COUNT; i++)
		if (per_class[i] != ct->per_class[i])
			return "per-class counter wrong";

	/* Free list: the rest. */
	uint32_t nfree = 0;
	for (uint32_t idx = ct->free_head; idx != NIL; idx = ct->entries[idx].lru_next) {
		if (idx >= ct->capacity || ++nfree > ct->capacity)
			return "free list out of bounds or cyclic";
		if (ct->entries[idx].in_use)
			return "live entry on the free list";
	}
	if (nfree + ct->count != ct->capacity)
		return "free list length wrong";

	/* Index: exactly two keys per live entry, each in its own bucket. */
	uint32_t keys = 0;
	for (uint32_t b = 0; b <= ct->mask; b++) {
		for (uint32_t ref = ct->buckets[b]; ref != NIL; ref = *key_next(ct, ref)) {
			if ((ref >> 1) >= ct->capacity || ++keys > 2 * ct->count)
				return "hash chain out of bounds, cyclic or too long";
			const struct ct_entry *e = &ct->entries[ref >> 1];
			if (!e->in_use)
				return "free entry in the hash index";
			if ((e->hash[ref & 1] & ct->mask) != b)
				return "key in the wrong bucket";
		}
	}
	if (keys != 2 * ct->count)
		return "index key count differs from 2 * count";
	return NULL;
}
