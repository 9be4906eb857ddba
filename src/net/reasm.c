/* reasm.c — IPv4/IPv6 fragment reassembly over a fixed block pool.
 *
 * Each datagram slot maps its payload, by offset, onto REASM_BLOCK_SIZE
 * blocks taken from a free list shared by the instance; the fragment list
 * (start/end of each fragment) detects overlaps and completion. Since no
 * overlap is ever stored, the datagram is complete exactly when the bytes
 * received equal the length announced by the last fragment and the first
 * fragment is there. Must never allocate, grow, read the caller's packet
 * after returning, or do more than O(max_datagrams + REASM_MAX_FRAGS) work
 * plus the copy per call. See reasm.h for the policy. */
#include "net/reasm.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"

#define MAP_LEN (65536u / REASM_BLOCK_SIZE)
#define NO_BLOCK 0xffffu
#define IP_MAX 65535u
#define IPV6_FRAGMENT_NH 44u
#define PROTO_TCP 6u

struct reasm_key {
	struct ip_addr src;
	struct ip_addr dst;
	uint32_t id;
	uint8_t family;
	uint8_t proto; /* IPv4 only; 0 for IPv6 (RFC 8200 keys on src, dst, id) */
};

struct reasm_dgram {
	struct reasm_key key;
	bool used;
	bool have_first;
	bool have_last;
	uint8_t first_proto; /* protocol from the offset-0 fragment */
	uint32_t nfrags;
	uint32_t hdr_len;
	uint32_t nh_off;
	uint32_t total;    /* payload length, once the last fragment is in */
	uint32_t max_end;  /* largest fragment end seen */
	uint32_t received; /* payload bytes held (fragments never overlap) */
	uint32_t first_end;
	uint64_t start_ns;
	uint64_t seq;
	uint16_t frag_start[REASM_MAX_FRAGS];
	uint16_t frag_end[REASM_MAX_FRAGS]; /* exclusive; <= 65535 */
	uint16_t block[MAP_LEN];
	uint8_t hdr[REASM_HDR_MAX];
};

struct reasm_dead {
	struct reasm_key key;
	uint64_t until_ns;
	bool used;
};

static const char *const drop_names[REASM_DROP_COUNT] = {
	[REASM_DROP_NONE] = "none",
	[REASM_DROP_BAD_FRAGMENT] = "bad fragment",
	[REASM_DROP_BAD_HEADER] = "bad header",
	[REASM_DROP_TOO_LARGE] = "too large",
	[REASM_DROP_TINY] = "tiny fragment",
	[REASM_DROP_OVERLAP] = "overlap",
	[REASM_DROP_INCONSISTENT] = "inconsistent length",
	[REASM_DROP_TOO_MANY_FRAGS] = "too many fragments",
	[REASM_DROP_DUPLICATE] = "duplicate",
	[REASM_DROP_DEAD] = "datagram already dropped",
	[REASM_DROP_NO_MEMORY] = "no memory",
};

const char *reasm_drop_str(enum reasm_drop reason)
{
	if ((unsigned)reason >= REASM_DROP_COUNT)
		return "?";
	return drop_names[reason];
}

void reasm_config_default(struct reasm_config *cfg)
{
	cfg->budget_bytes = REASM_DEFAULT_BUDGET;
	cfg->max_datagrams = REASM_DEFAULT_MAX_DATAGRAMS;
	cfg->timeout_ns = REASM_DEFAULT_TIMEOUT_NS;
	cfg->dead_ns = REASM_DEFAULT_DEAD_NS;
}

/* ---- storage layout ------------------------------------------------------ */

static size_t align8(size_t n)
{
	return (n + 7u) & ~(size_t)7u;
}

static bool config_ok(size_t budget_bytes, uint32_t max_datagrams)
{
	return budget_bytes >= REASM_BLOCK_SIZE && budget_bytes <= REASM_MAX_BUDGET &&
	       max_datagrams >= 1 && max_datagrams <= REASM_MAX_DATAGRAMS_LIMIT;
}

size_t reasm_memory_needed(size_t budget_bytes, uint32_t max_datagrams)
{
	if (!config_ok(budget_bytes, max_datagrams))
		return 0;
	size_t nblocks = budget_bytes / REASM_BLOCK_SIZE;
	return 8u + align8((size_t)max_datagrams * sizeof(struct reasm_dgram)) +
	       align8((size_t)max_datagrams * sizeof(struct reasm_dead)) +
	       align8(nblocks * sizeof(uint16_t)) + align8(REASM_OUT_MAX) +
	       nblocks * REASM_BLOCK_SIZE;
}

bool reasm_init(struct reasm *r, const struct reasm_config *cfg, void *mem, size_t mem_len)
{
	size_t need = reasm_memory_needed(cfg->budget_bytes, cfg->max_datagrams);
	if (need == 0 || mem == NULL || mem_len < need || cfg->timeout_ns == 0)
		return false;
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	r->nblocks = (uint32_t)(cfg->budget_bytes / REASM_BLOCK_SIZE);

	uint8_t *p = mem;
	p += (8u - ((uintptr_t)p & 7u)) & 7u;
	r->dgrams = (struct reasm_dgram *)(void *)p;
	p += align8((size_t)cfg->max_datagrams * sizeof(struct reasm_dgram));
	r->dead = (struct reasm_dead *)(void *)p;
	p += align8((size_t)cfg->max_datagrams * sizeof(struct reasm_dead));
	r->block_next = (uint16_t *)(void *)p;
	p += align8(r->nblocks * sizeof(uint16_t));
	r->out = p;
	p += align8(REASM_OUT_MAX);
	r->blocks = p;

	memset(r->dgrams, 0, (size_t)cfg->max_datagrams * sizeof(struct reasm_dgram));
	memset(r->dead, 0, (size_t)cfg->max_datagrams * sizeof(struct reasm_dead));
	for (uint32_t i = 0; i < r->nblocks; i++)
		r->block_next[i] = (uint16_t)(i + 1 < r->nblocks ? i + 1 : NO_BLOCK);
	r->free_head = 0;
	r->free_blocks = r->nblocks;
	return true;
}

uint32_t reasm_in_progress(const struct reasm *r)
{
	return r->in_progress;
}

size_t reasm_bytes_in_use(const struct reasm *r)
{
	return (size_t)(r->nblocks - r->free_blocks) * REASM_BLOCK_SIZE;
}

/* ---- blocks and slots ---------------------------------------------------- */

static uint16_t block_alloc(struct reasm *r)
{
	ASSERT(r->free_blocks > 0 && r->free_head != NO_BLOCK);
	uint16_t b = r->free_head;
	r->free_head = r->block_next[b];
	r->free_blocks--;
	return b;
}

static uint8_t *block_ptr(const struct reasm *r, uint16_t b)
{
	return r->blocks + (size_t)b * REASM_BLOCK_SIZE;
}

static void dgram_free(struct reasm *r, struct reasm_dgram *d)
{
	ASSERT(d->used);
	for (uint32_t i = 0; i < MAP_LEN; i++) {
		if (d->block[i] == NO_BLOCK)
			continue;
		r->block_next[d->block[i]] = r->free_head;
		r->free_head = d->block[i];
		r->free_blocks++;
		d->block[i] = NO_BLOCK;
	}
	d->used = false;
	ASSERT(r->in_progress > 0);
	r->in_progress--;
}

static bool key_equal(const struct reasm_key *a, const struct reasm_key *b)
{
	return a->id == b->id && a->family == b->family && a->proto == b->proto &&
	       ip_equal(&a->src, &b->src) && ip_equal(&a->dst, &b->dst);
}

static bool expired(const struct reasm *r, const struct reasm_dgram *d, uint64_t now_ns)
{
	return now_ns >= d->start_ns && now_ns - d->start_ns >= r->cfg.timeout_ns;
}

/* The slot of the oldest datagram other than slot keep, or NO_SLOT. */
#define NO_SLOT UINT32_MAX
static uint32_t oldest(const struct reasm *r, uint32_t keep)
{
	uint32_t best = NO_SLOT;
	for (uint32_t i = 0; i < r->cfg.max_datagrams; i++) {
		const struct reasm_dgram *d = &r->dgrams[i];
		if (d->used && i != keep && (best == NO_SLOT || d->seq < r->dgrams[best].seq))
			best = i;
	}
	return best;
}

static void evict(struct reasm *r, struct reasm_dgram *d)
{
	log_warn("reasm: evicting incomplete datagram from %s id %u (memory full)",
		 IP_STR(&d->key.src), (unsigned)d->key.id);
	r->stats.evicted++;
	dgram_free(r, d);
}

static void remember_dead(struct reasm *r, const struct reasm_key *k, uint64_t now_ns)
{
	if (r->cfg.dead_ns == 0 || r->cfg.max_datagrams == 0)
		return;
	struct reasm_dead *slot = NULL;
	for (uint32_t i = 0; i < r->cfg.max_datagrams; i++) {
		if (r->dead[i].used && key_equal(&r->dead[i].key, k)) {
			slot = &r->dead[i];
			break;
		}
	}
	if (slot == NULL) {
		slot = &r->dead[r->dead_next];
		r->dead_next = (r->dead_next + 1) % r->cfg.max_datagrams;
	}
	slot->key = *k;
	slot->until_ns = now_ns + r->cfg.dead_ns;
	slot->used = true;
}

static bool is_dead(struct reasm *r, const struct reasm_key *k, uint64_t now_ns)
{
	for (uint32_t i = 0; i < r->cfg.max_datagrams; i++) {
		struct reasm_dead *e = &r->dead[i];
		if (!e->used)
			continue;
		if (now_ns >= e->until_ns) {
			e->used = false;
			continue;
		}
		if (key_equal(&e->key, k))
			return true;
	}
	return false;
}

/* ---- results ------------------------------------------------------------- */

static enum reasm_status drop(struct reasm *r, struct reasm_result *out, enum reasm_drop why)
{
	r->stats.dropped[why]++;
	out->status = REASM_DROPPED;
	out->reason = why;
	return REASM_DROPPED;
}

/* Drops the whole datagram (d may be NULL when none is held yet) and
 * remembers its key (RFC 5722). */
static enum reasm_status poison(struct reasm *r, struct reasm_dgram *d, const struct reasm_key *k,
				uint64_t now_ns, struct reasm_result *out, enum reasm_drop why)
{
	log_warn("reasm: dropping datagram from %s id %u: %s", IP_STR(&k->src), (unsigned)k->id,
		 reasm_drop_str(why));
	if (d != NULL)
		dgram_free(r, d);
	r->stats.poisoned++;
	remember_dead(r, k, now_ns);
	return drop(r, out, why);
}

/* Smallest first-fragment payload: the whole transport header. */
static uint32_t transport_min(uint8_t proto)
{
	return proto == PROTO_TCP ? 20u : 8u;
}

/* Checks the unfragmentable part of an offset-0 fragment. */
static bool header_ok(const struct reasm_frag *f)
{
	if (f->hdr == NULL)
		return false;
	if (f->family == 4) {
		return f->hdr_len >= 20 && f->hdr_len <= 60 && (f->hdr[0] >> 4) == 4 &&
		       (size_t)(f->hdr[0] & 0x0fu) * 4u == f->hdr_len;
	}
	return f->hdr_len >= 40 && f->hdr_len <= REASM_HDR_MAX && (f->hdr[0] >> 4) == 6 &&
	       f->hdr_nh_off < f->hdr_len && f->hdr[f->hdr_nh_off] == IPV6_FRAGMENT_NH &&
	       (f->hdr_nh_off == 6 || f->hdr_nh_off >= 40);
}

/* Whether header + payload fit the 16-bit length field. */
static bool size_ok(uint8_t family, size_t hdr_len, size_t payload_len)
{
	if (family == 4)
		return hdr_len + payload_len <= IP_MAX;
	return hdr_len - 40u + payload_len <= IP_MAX;
}

/* Fixes the length/fragment fields of the header at r->out. */
static void finish_header(struct reasm *r, uint8_t family, size_t hdr_len, size_t nh_off,
			  uint8_t proto, size_t payload_len, struct reasm_result *out)
{
	uint8_t *h = r->out;
	if (family == 4) {
		store_be16(h + 2, (uint16_t)(hdr_len + payload_len));
		store_be16(h + 6, (uint16_t)(load_be16(h + 6) & 0x4000u)); /* keep DF only */
		store_be16(h + 10, 0);
		store_be16(h + 10, csum_buf(h, hdr_len));
	} else {
		store_be16(h + 4, (uint16_t)(hdr_len - 40u + payload_len));
		h[nh_off] = proto;
	}
	r->stats.completed++;
	out->status = REASM_COMPLETE;
	out->reason = REASM_DROP_NONE;
	out->datagram = r->out;
	out->len = hdr_len + payload_len;
	out->hdr_len = hdr_len;
	out->proto = proto;
}

/* RFC 6946: a fragment that is the whole datagram is reassembled alone. */
static enum reasm_status complete_atomic(struct reasm *r, const struct reasm_frag *f,
					 struct reasm_result *out)
{
	if (!header_ok(f)) {
		log_warn("reasm: unusable header in unfragmented datagram from %s",
			 IP_STR(&f->src));
		return drop(r, out, REASM_DROP_BAD_HEADER);
	}
	if (!size_ok(f->family, f->hdr_len, f->data_len)) {
		log_warn("reasm: oversized datagram from %s", IP_STR(&f->src));
		return drop(r, out, REASM_DROP_TOO_LARGE);
	}
	memcpy(r->out, f->hdr, f->hdr_len);
	if (f->data_len > 0)
		memcpy(r->out + f->hdr_len, f->data, f->data_len);
	finish_header(r, f->family, f->hdr_len, f->hdr_nh_off, f->proto, f->data_len, out);
	return REASM_COMPLETE;
}

static void complete(struct reasm *r, struct reasm_dgram *d, struct reasm_result *out)
{
	memcpy(r->out, d->hdr, d->hdr_len);
	uint8_t *dst = r->out + d->hdr_len;
	for (uint32_t off = 0; off < d->total; off += REASM_BLOCK_SIZE) {
		uint16_t b = d->block[off / REASM_BLOCK_SIZE];
		ASSERT(b != NO_BLOCK);
		memcpy(dst + off, block_ptr(r, b), MIN(REASM_BLOCK_SIZE, d->total - off));
	}
	uint8_t proto = d->key.family == 4 ? d->key.proto : d->first_proto;
	finish_header(r, d->key.family, d->hdr_len, d->nh_off, proto, d->total, out);
	dgram_free(r, d);
}

/* Blocks needed to hold [start, end) that d does not have yet. */
static uint32_t blocks_missing(const struct reasm_dgram *d, uint32_t start, uint32_t end)
{
	uint32_t n = 0;
	for (uint32_t i = start / REASM_BLOCK_SIZE; i <= (end - 1) / REASM_BLOCK_SIZE; i++)
		n += d->block[i] == NO_BLOCK;
	return n;
}

static void blocks_write(struct reasm *r, struct reasm_dgram *d, uint32_t start,
			 const uint8_t *data, uint32_t len)
{
	while (len > 0) {
		uint32_t i = start / REASM_BLOCK_SIZE;
		uint32_t in = start % REASM_BLOCK_SIZE;
		uint32_t n = MIN(len, REASM_BLOCK_SIZE - in);
		if (d->block[i] == NO_BLOCK)
			d->block[i] = block_alloc(r);
		memcpy(block_ptr(r, d->block[i]) + in, data, n);
		start += n;
		data += n;
		len -= n;
	}
}

static bool blocks_equal(const struct reasm *r, const struct reasm_dgram *d, uint32_t start,
			 const uint8_t *data, uint32_t len)
{
	while (len > 0) {
		uint32_t i = start / REASM_BLOCK_SIZE;
		uint32_t in = start % REASM_BLOCK_SIZE;
		uint32_t n = MIN(len, REASM_BLOCK_SIZE - in);
		ASSERT(d->block[i] != NO_BLOCK);
		if (memcmp(block_ptr(r, d->block[i]) + in, data, n) != 0)
			return false;
		start += n;
		data += n;
		len -= n;
	}
	return true;
}

static struct reasm_dgram *find(struct reasm *r, const struct reasm_key *k, uint64_t now_ns)
{
	for (uint32_t i = 0; i < r->cfg.max_datagrams; i++) {
		struct reasm_dgram *d = &r->dgrams[i];
		if (!d->used || !key_equal(&d->key, k))
			continue;
		if (expired(r, d, now_ns)) {
			log_debug("reasm: datagram from %s id %u timed out", IP_STR(&k->src),
				  (unsigned)k->id);
			r->stats.timed_out++;
			dgram_free(r, d);
			return NULL;
		}
		return d;
	}
	return NULL;
}

static struct reasm_dgram *create(struct reasm *r, const struct reasm_key *k, uint64_t now_ns)
{
	uint32_t slot = NO_SLOT;
	for (uint32_t i = 0; i < r->cfg.max_datagrams && slot == NO_SLOT; i++) {
		if (!r->dgrams[i].used)
			slot = i;
	}
	if (slot == NO_SLOT) {
		slot = oldest(r, NO_SLOT);
		ASSERT(slot < r->cfg.max_datagrams);
		evict(r, &r->dgrams[slot]);
	}
	struct reasm_dgram *d = &r->dgrams[slot];
	memset(d, 0, offsetof(struct reasm_dgram, frag_start));
	d->key = *k;
	d->used = true;
	d->start_ns = now_ns;
	d->seq = r->seq++;
	for (uint32_t i = 0; i < MAP_LEN; i++)
		d->block[i] = NO_BLOCK;
	r->in_progress++;
	return d;
}

/* Checks f against what d already holds; REASM_DROP_NONE when it may be added. */
static enum reasm_drop check_against(const struct reasm *r, const struct reasm_dgram *d,
				     const struct reasm_frag *f, uint32_t end)
{
	uint32_t start = f->offset;
	if (f->more) {
		if (d->have_last && end > d->total)
			return REASM_DROP_INCONSISTENT;
	} else {
		if (d->have_last && end != d->total)
			return REASM_DROP_INCONSISTENT;
		if (end < d->max_end)
			return REASM_DROP_INCONSISTENT;
	}
	for (uint32_t i = 0; i < d->nfrags; i++) {
		if (start >= d->frag_end[i] || end <= d->frag_start[i])
			continue;
		if (start == d->frag_start[i] && end == d->frag_end[i] &&
		    blocks_equal(r, d, start, f->data, (uint32_t)f->data_len))
			return REASM_DROP_DUPLICATE;
		return REASM_DROP_OVERLAP;
	}
	if (d->nfrags >= REASM_MAX_FRAGS)
		return REASM_DROP_TOO_MANY_FRAGS;
	size_t hdr_len = start == 0 ? f->hdr_len : d->hdr_len;
	bool hdr_known = start == 0 || d->have_first;
	uint32_t payload = MAX(end, d->have_last ? d->total : d->max_end);
	if (!size_ok(d->key.family, hdr_known ? hdr_len : (d->key.family == 4 ? 20u : 40u),
		     payload))
		return REASM_DROP_TOO_LARGE;
	return REASM_DROP_NONE;
}

enum reasm_status reasm_add(struct reasm *r, const struct reasm_frag *f, uint64_t now_ns,
			    struct reasm_result *out)
{
	memset(out, 0, sizeof(*out));
	if ((f->family != 4 && f->family != 6) || (f->family == 4 && f->id > 0xffffu) ||
	    (f->data == NULL && f->data_len > 0) || f->offset % 8u != 0 ||
	    f->offset > IP_MAX) {
		log_warn("reasm: malformed fragment from %s", IP_STR(&f->src));
		return drop(r, out, REASM_DROP_BAD_FRAGMENT);
	}
	if (f->offset == 0 && !f->more)
		return complete_atomic(r, f, out);
	if (f->data_len == 0 || (f->more && f->data_len % 8u != 0)) {
		log_warn("reasm: fragment from %s id %u has a bad length %zu", IP_STR(&f->src),
			 (unsigned)f->id, f->data_len);
		return drop(r, out, REASM_DROP_BAD_FRAGMENT);
	}
	if (f->offset == 0 && !header_ok(f)) {
		log_warn("reasm: unusable header in first fragment from %s", IP_STR(&f->src));
		return drop(r, out, REASM_DROP_BAD_HEADER);
	}

	struct reasm_key k;
	memset(&k, 0, sizeof(k));
	k.src = f->src;
	k.dst = f->dst;
	k.id = f->id;
	k.family = f->family;
	k.proto = f->family == 4 ? f->proto : 0;

	if (is_dead(r, &k, now_ns)) {
		log_debug("reasm: fragment of dropped datagram from %s id %u", IP_STR(&k.src),
			  (unsigned)k.id);
		return drop(r, out, REASM_DROP_DEAD);
	}
	struct reasm_dgram *d = find(r, &k, now_ns);

	/* Checks that need no state. */
	if (f->data_len > IP_MAX || f->offset + f->data_len > IP_MAX)
		return poison(r, d, &k, now_ns, out, REASM_DROP_TOO_LARGE);
	uint32_t end = f->offset + (uint32_t)f->data_len;
	uint32_t tmin = transport_min(f->proto);
	if (f->offset == 0 ? f->data_len < tmin : f->offset < tmin)
		return poison(r, d, &k, now_ns, out, REASM_DROP_TINY);
	/* IPv6 fragments may name different next headers (RFC 8200 §4.5): the
	 * first fragment's counts. A later fragment inside its transport
	 * header would overlap it anyway; this only names the reason. */
	if (d != NULL && d->have_first && f->offset > 0 &&
	    f->offset < transport_min(d->first_proto))
		return poison(r, d, &k, now_ns, out, REASM_DROP_TINY);

	if (d == NULL)
		d = create(r, &k, now_ns);
	enum reasm_drop why = check_against(r, d, f, end);
	if (why == REASM_DROP_DUPLICATE) {
		log_debug("reasm: duplicate fragment from %s id %u", IP_STR(&k.src),
			  (unsigned)k.id);
		return drop(r, out, why);
	}
	if (why != REASM_DROP_NONE)
		return poison(r, d, &k, now_ns, out, why);

	uint32_t need = blocks_missing(d, f->offset, end);
	while (r->free_blocks < need) {
		uint32_t victim = oldest(r, (uint32_t)(d - r->dgrams));
		if (victim == NO_SLOT) {
			log_warn("reasm: datagram from %s id %u does not fit the budget",
				 IP_STR(&k.src), (unsigned)k.id);
			dgram_free(r, d);
			return drop(r, out, REASM_DROP_NO_MEMORY);
		}
		evict(r, &r->dgrams[victim]);
	}
	blocks_write(r, d, f->offset, f->data, (uint32_t)f->data_len);
	d->frag_start[d->nfrags] = (uint16_t)f->offset;
	d->frag_end[d->nfrags] = (uint16_t)end;
	d->nfrags++;
	d->received += (uint32_t)f->data_len;
	d->max_end = MAX(d->max_end, end);
	if (!f->more) {
		d->have_last = true;
		d->total = end;
	}
	if (f->offset == 0) {
		d->have_first = true;
		d->first_proto = f->proto;
		d->first_end = end;
		d->hdr_len = (uint32_t)f->hdr_len;
		d->nh_off = (uint32_t)f->hdr_nh_off;
		memcpy(d->hdr, f->hdr, f->hdr_len);
	}
	if (d->have_first && d->have_last && d->received == d->total) {
		complete(r, d, out);
		return REASM_COMPLETE;
	}
	out->status = REASM_NEED_MORE;
	return REASM_NEED_MORE;
}

size_t reasm_expire(struct reasm *r, uint64_t now_ns, reasm_expired_fn cb, void *ctx)
{
	size_t n = 0;
	for (uint32_t i = 0; i < r->cfg.max_datagrams; i++) {
		struct reasm_dead *e = &r->dead[i];
		if (e->used && now_ns >= e->until_ns)
			e->used = false;
		struct reasm_dgram *d = &r->dgrams[i];
		if (!d->used || !expired(r, d, now_ns))
			continue;
		log_debug("reasm: datagram from %s id %u timed out", IP_STR(&d->key.src),
			  (unsigned)d->key.id);
		if (cb != NULL) {
			struct reasm_expired x;
			memset(&x, 0, sizeof(x));
			x.family = d->key.family;
			x.src = d->key.src;
			x.dst = d->key.dst;
			if (d->have_first) {
				x.hdr = d->hdr;
				x.hdr_len = d->hdr_len;
				x.data = block_ptr(r, d->block[0]);
				x.data_len = MIN(d->first_end, REASM_BLOCK_SIZE);
			}
			cb(ctx, &x);
		}
		r->stats.timed_out++;
		dgram_free(r, d);
		n++;
	}
	return n;
}
