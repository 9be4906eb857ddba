/* resolver.c — stub resolver for dsthost rules: queries, replies, cache,
 * rule-set registry and learning from client answers (behaviour in
 * resolver.h).
 *
 * Must never: send from resolver_input (the router may be mid-frame),
 * change anything on a reply that is not exactly the answer to a waiting
 * attempt, grow a table, or loop without a bound. Every table is a fixed
 * array from the arena, scanned linearly (sizes are small: names, slots in
 * flight, registered sets). */
#include "fw/resolver.h"

#include "base/csprng.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"
#include "net/dns.h"

#define NONE 0xffffu
#define NS_PER_S 1000000000ull
#define PORT_TRIES 32
#define FAIL_COUNT_MAX 30

struct slot {
	struct ip_addr a;
	uint64_t deadline; /* valid while now < deadline */
};

/* One name, one family (0: A for IPv4 sets, 1: AAAA for IPv6 sets). */
struct fam {
	bool inflight;
	bool answered;   /* had a positive or negative answer */
	bool failed;     /* the last query failed or was negative */
	uint8_t n;       /* slots used, s[0..n) */
	uint8_t fail_count;
	uint64_t next_query_ns;
	struct slot s[RESOLVER_ADDRS_PER_FAMILY];
};

struct entry {
	bool used;
	bool dirty; /* the reportable state changed */
	uint8_t text_len;
	uint32_t hash;
	uint16_t refs[2]; /* registered sets naming it, per family */
	struct dns_name wire;
	char text[DNS_NAME_TEXT_MAX + 1];
	struct fam fam[2];
};

struct query {
	bool active;
	bool sent;       /* false: the current attempt goes out at deadline */
	uint8_t fam;
	uint8_t server;
	uint8_t attempt;
	uint16_t entry;
	uint16_t id;
	uint16_t port;      /* 0 while not sent */
	uint16_t done_port; /* port of the last finished attempt (duplicates) */
	uint64_t deadline;
};

struct learned {
	struct ip_addr a;
	uint64_t deadline; /* 0: free */
	uint16_t entry;
};

struct reg {
	struct rule_set *set; /* NULL: free */
	uint8_t fam;
	uint16_t host_entry[RULES_HOSTS_MAX];
	struct learned l[RESOLVER_LEARNED_PER_SET];
};

struct resolver {
	struct resolver_config cfg;
	resolver_send_fn send;
	void *send_ctx;
	resolver_report_fn report;
	void *report_ctx;
	struct ip_addr servers[RESOLVER_SERVERS_MAX];
	uint8_t n_servers;
	uint8_t preferred;
	bool dns_down;
	struct entry *names;
	struct query *q;
	struct reg *regs;
	uint32_t cursor;
	uint32_t n_inflight;
	uint64_t next_wakeup;
	struct resolver_counters ctr;
};

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t shl_sat(uint64_t v, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		if (v > UINT64_MAX / 2)
			return UINT64_MAX;
		v *= 2;
	}
	return v;
}

static uint16_t qtype_of(unsigned f)
{
	return f ? DNS_TYPE_AAAA : DNS_TYPE_A;
}

static bool addr_of_fam(const struct ip_addr *a, unsigned f)
{
	return ip_is_v4(a) == (f == 0);
}

static uint64_t ttl_ns(const struct resolver *r, uint32_t ttl_s)
{
	uint64_t t = (uint64_t)ttl_s * NS_PER_S;
	return MAX(r->cfg.ttl_min_ns, MIN(t, r->cfg.ttl_max_ns));
}

void resolver_config_default(struct resolver_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_names = 256;
	cfg->max_inflight = 64;
	cfg->max_sets = 64;
	cfg->port_lo = 64512;
	cfg->port_hi = 65535;
	cfg->attempts = 4;
	cfg->attempt_timeout_ns = 1 * NS_PER_S;
	cfg->ttl_min_ns = 30 * NS_PER_S;
	cfg->ttl_max_ns = 86400 * NS_PER_S;
	cfg->grace_ns = 300 * NS_PER_S;
	cfg->retry_min_ns = 2 * NS_PER_S;
	cfg->retry_max_ns = 60 * NS_PER_S;
	cfg->negative_ns = 60 * NS_PER_S;
}

static bool config_ok(const struct resolver_config *c)
{
	return c->max_names >= 1 && c->max_names < NONE && c->max_inflight >= 1 &&
	       c->max_inflight <= 4096 && c->max_sets >= 1 && c->max_sets < NONE &&
	       c->port_lo >= 1 && c->port_lo <= c->port_hi &&
	       (uint32_t)(c->port_hi - c->port_lo) + 1 >= 2 * c->max_inflight &&
	       c->attempts >= 1 && c->attempts <= 16 && c->attempt_timeout_ns > 0 &&
	       c->ttl_min_ns <= c->ttl_max_ns && c->retry_min_ns > 0 &&
	       c->retry_min_ns <= c->retry_max_ns && c->negative_ns > 0;
}

size_t resolver_memory_needed(const struct resolver_config *cfg)
{
	if (!config_ok(cfg))
		return 0;
	return sizeof(struct resolver) + 64 + (size_t)cfg->max_names * sizeof(struct entry) +
	       (size_t)cfg->max_inflight * sizeof(struct query) +
	       (size_t)cfg->max_sets * sizeof(struct reg) + 48;
}

bool resolver_init(struct resolver **out, struct arena *a, const struct resolver_config *cfg,
		   resolver_send_fn send, void *send_ctx)
{
	if (!config_ok(cfg) || send == NULL)
		return false;
	struct resolver *r = arena_alloc(a, sizeof(*r), 64);
	if (r == NULL)
		return false;
	r->names = arena_alloc(a, (size_t)cfg->max_names * sizeof(struct entry), 16);
	r->q = arena_alloc(a, (size_t)cfg->max_inflight * sizeof(struct query), 16);
	r->regs = arena_alloc(a, (size_t)cfg->max_sets * sizeof(struct reg), 16);
	if (r->names == NULL || r->q == NULL || r->regs == NULL)
		return false;
	r->cfg = *cfg;
	r->send = send;
	r->send_ctx = send_ctx;
	r->next_wakeup = UINT64_MAX;
	*out = r;
	return true;
}

void resolver_set_report(struct resolver *r, resolver_report_fn fn, void *ctx)
{
	r->report = fn;
	r->report_ctx = ctx;
}

/* ---- names ---- */

static uint32_t wire_hash(const struct dns_name *n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n->len; i++) {
		h ^= n->b[i];
		h *= 16777619u;
	}
	return h;
}

static uint16_t entry_find(const struct resolver *r, const struct dns_name *w)
{
	uint32_t h = wire_hash(w);
	for (uint32_t i = 0; i < r->cfg.max_names; i++) {
		const struct entry *e = &r->names[i];
		if (e->used && e->hash == h && dns_name_equal(&e->wire, w))
			return (uint16_t)i;
	}
	return NONE;
}

/* The entry for a rule's host name, made if new (reusing one no set names
 * and no query uses); NONE when the name is not a DNS name or no room. */
static uint16_t entry_get(struct resolver *r, const char *text, size_t len)
{
	struct dns_name w;
	if (len > DNS_NAME_TEXT_MAX || !dns_name_from_text(text, len, &w))
		return NONE;
	uint16_t i = entry_find(r, &w);
	if (i != NONE)
		return i;
	uint16_t victim = NONE;
	for (uint32_t k = 0; k < r->cfg.max_names; k++) {
		const struct entry *e = &r->names[k];
		if (!e->used) {
			victim = (uint16_t)k;
			break;
		}
		if (victim == NONE && e->refs[0] == 0 && e->refs[1] == 0 && !e->fam[0].inflight &&
		    !e->fam[1].inflight)
			victim = (uint16_t)k;
	}
	if (victim == NONE)
		return NONE;
	struct entry *e = &r->names[victim];
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->wire = w;
	e->hash = wire_hash(&w);
	char t[DNS_NAME_TEXT_MAX + 1];
	size_t tl = dns_name_to_text(&w, t, sizeof(t));
	memcpy(e->text, t, tl + 1); /* lowercased, no trailing dot */
	e->text_len = (uint8_t)tl;
	return victim;
}

/* ---- address slots ---- */

/* Drops slots whose deadline has passed; true when any went. */
static bool fam_expire(struct fam *fs, uint64_t now)
{
	uint8_t k = 0;
	bool changed = false;
	for (uint8_t i = 0; i < fs->n && i < RESOLVER_ADDRS_PER_FAMILY; i++) {
		if (fs->s[i].deadline > now)
			fs->s[k++] = fs->s[i];
		else
			changed = true;
	}
	fs->n = k;
	return changed;
}

static void fam_cap(struct fam *fs, uint64_t until)
{
	for (uint8_t i = 0; i < fs->n && i < RESOLVER_ADDRS_PER_FAMILY; i++)
		fs->s[i].deadline = MIN(fs->s[i].deadline, until);
}

/* A positive answer: previous addresses are capped at now + grace, the
 * new ones valid for their TTL + grace. True when membership changed. */
static bool fam_answer(const struct resolver *r, struct fam *fs, unsigned f,
		       const struct dns_reply *rep, uint64_t now)
{
	bool changed = false;
	fam_cap(fs, add_sat(now, r->cfg.grace_ns));
	for (size_t i = 0; i < rep->n_addrs && i < DNS_ADDRS_MAX; i++) {
		const struct dns_addr *d = &rep->addrs[i];
		if (!addr_of_fam(&d->addr, f))
			continue;
		uint64_t dl = add_sat(add_sat(now, ttl_ns(r, d->ttl)), r->cfg.grace_ns);
		size_t k;
		for (k = 0; k < fs->n; k++)
			if (ip_equal(&fs->s[k].a, &d->addr))
				break;
		if (k < fs->n) {
			fs->s[k].deadline = dl;
			continue;
		}
		if (fs->n < RESOLVER_ADDRS_PER_FAMILY) {
			k = fs->n++;
		} else {
			k = 0; /* replace the one expiring first */
			for (size_t j = 1; j < fs->n; j++)
				if (fs->s[j].deadline < fs->s[k].deadline)
					k = j;
			if (fs->s[k].deadline >= dl)
				continue;
		}
		fs->s[k].a = d->addr;
		fs->s[k].deadline = dl;
		changed = true;
	}
	return fam_expire(fs, now) || changed;
}

/* ---- rule sets ---- */

static struct reg *reg_find(struct resolver *r, const struct rule_set *set)
{
	for (uint32_t i = 0; i < r->cfg.max_sets; i++)
		if (set != NULL && r->regs[i].set == set)
			return &r->regs[i];
	return NULL;
}

static uint16_t reg_nhosts(const struct reg *g)
{
	return MIN(g->set->n_hosts, (uint16_t)RULES_HOSTS_MAX);
}

/* Writes host `host` of g's set from the cache and g's learned addresses. */
static void compose(struct resolver *r, struct reg *g, size_t host, uint64_t now)
{
	struct slot cand[RESOLVER_ADDRS_PER_FAMILY + RESOLVER_LEARNED_PER_SET];
	size_t n = 0;
	uint16_t ei = g->host_entry[host];
	const struct entry *e = &r->names[ei];
	const struct fam *fs = &e->fam[g->fam];

	for (size_t i = 0; i < fs->n && i < RESOLVER_ADDRS_PER_FAMILY; i++)
		if (fs->s[i].deadline > now)
			cand[n++] = fs->s[i];
	for (size_t i = 0; i < RESOLVER_LEARNED_PER_SET; i++) {
		const struct learned *l = &g->l[i];
		if (l->deadline <= now || l->entry != ei)
			continue;
		size_t k;
		for (k = 0; k < n; k++)
			if (ip_equal(&cand[k].a, &l->a))
				break;
		if (k < n) {
			cand[k].deadline = MAX(cand[k].deadline, l->deadline);
		} else if (n < ARRAY_LEN(cand)) {
			cand[n].a = l->a;
			cand[n].deadline = l->deadline;
			n++;
		}
	}
	if (n == 0) {
		if (fs->answered || fs->failed)
			rules_hostset_fail(g->set, e->text, e->text_len, fs->next_query_ns);
		return; /* else: first query still pending, keep what the set has */
	}
	/* Keep the RULES_HOST_ADDRS_MAX expiring last (selection, n is small). */
	size_t keep = MIN(n, (size_t)RULES_HOST_ADDRS_MAX);
	for (size_t i = 0; i < keep && n > keep; i++) {
		size_t best = i;
		for (size_t j = i + 1; j < n; j++)
			if (cand[j].deadline > cand[best].deadline)
				best = j;
		struct slot t = cand[i];
		cand[i] = cand[best];
		cand[best] = t;
	}
	struct ip_addr out[RULES_HOST_ADDRS_MAX];
	for (size_t i = 0; i < keep; i++)
		out[i] = cand[i].a;
	rules_hostset_update(g->set, e->text, e->text_len, out, keep, fs->next_query_ns);
}

/* Rewrites every registered hostset of entry ei for family f. */
static void compose_entry(struct resolver *r, uint16_t ei, unsigned f, uint64_t now)
{
	if (r->names[ei].refs[f] == 0)
		return;
	for (uint32_t i = 0; i < r->cfg.max_sets; i++) {
		struct reg *g = &r->regs[i];
		if (g->set == NULL || g->fam != f)
			continue;
		for (uint16_t h = 0; h < reg_nhosts(g); h++)
			if (g->host_entry[h] == ei)
				compose(r, g, h, now);
	}
}

static void flush_reports(struct resolver *r, uint64_t now)
{
	for (uint32_t i = 0; i < r->cfg.max_names; i++) {
		struct entry *e = &r->names[i];
		if (!e->used || !e->dirty)
			continue;
		e->dirty = false;
		if (r->report == NULL)
			continue;
		struct ip_addr out[2 * RESOLVER_ADDRS_PER_FAMILY];
		size_t n = 0;
		for (unsigned f = 0; f < 2; f++)
			for (size_t k = 0; k < e->fam[f].n && k < RESOLVER_ADDRS_PER_FAMILY; k++)
				if (e->fam[f].s[k].deadline > now)
					out[n++] = e->fam[f].s[k].a;
		r->report(r->report_ctx, e->text, e->text_len, out, n);
	}
}

/* ---- queries ---- */

static bool port_in_use(const struct resolver *r, uint16_t port)
{
	for (uint32_t i = 0; i < r->cfg.max_inflight; i++)
		if (r->q[i].active && r->q[i].port == port)
			return true;
	return false;
}

/* A random free port of the range. The range holds at least twice as many
 * ports as slots, so each try fails with probability < 1/2. */
static uint16_t pick_port(const struct resolver *r)
{
	uint32_t range = (uint32_t)(r->cfg.port_hi - r->cfg.port_lo) + 1;
	for (int i = 0; i < PORT_TRIES; i++) {
		uint16_t p = (uint16_t)(r->cfg.port_lo + csprng_uniform(range));
		if (!port_in_use(r, p))
			return p;
	}
	return 0;
}

static void finish_attempt(struct query *q)
{
	if (q->port != 0)
		q->done_port = q->port;
	q->port = 0;
	q->sent = false;
}

/* Sends q's current attempt; a datagram that cannot go out is treated as
 * lost (the attempt times out). */
static void send_attempt(struct resolver *r, struct query *q, uint64_t now)
{
	const struct entry *e = &r->names[q->entry];
	uint8_t buf[DNS_QUERY_MAX];

	q->sent = true;
	q->deadline = add_sat(now, shl_sat(r->cfg.attempt_timeout_ns, q->attempt));
	if (r->n_servers == 0)
		return; /* nowhere to send: times out (set_servers fails these first) */
	q->server = (uint8_t)(q->server % r->n_servers);
	q->id = (uint16_t)csprng_u32();
	q->port = pick_port(r);
	size_t len = dns_build_query(buf, sizeof(buf), q->id, &e->wire, qtype_of(q->fam));
	ASSERT(len > 0);
	if (q->port == 0) {
		r->ctr.deferred++;
		return;
	}
	r->ctr.queries_sent++;
	if (!r->send(r->send_ctx, &r->servers[q->server], q->port, DNS_PORT, buf, len))
		r->ctr.send_failures++;
}

static void release(struct resolver *r, struct query *q)
{
	finish_attempt(q);
	q->active = false;
	r->names[q->entry].fam[q->fam].inflight = false;
	ASSERT(r->n_inflight > 0);
	r->n_inflight--;
}

/* A name+family got no answer (all attempts used, or no server). */
static void fam_failed(struct resolver *r, uint16_t ei, unsigned f, uint64_t now)
{
	struct entry *e = &r->names[ei];
	struct fam *fs = &e->fam[f];

	r->ctr.failures++;
	if (fs->fail_count < FAIL_COUNT_MAX)
		fs->fail_count++;
	uint64_t backoff = MIN(shl_sat(r->cfg.retry_min_ns, fs->fail_count - 1u),
			       r->cfg.retry_max_ns);
	fs->next_query_ns = add_sat(now, backoff);
	if (!fs->failed)
		e->dirty = true;
	fs->failed = true;
	r->dns_down = true;
	if (fam_expire(fs, now))
		e->dirty = true;
	log_info("dns: no answer for %s (%s), next try in %llu s", e->text,
		 f ? "AAAA" : "A", (unsigned long long)(backoff / NS_PER_S));
	compose_entry(r, ei, f, now);
}

/* The current attempt of q ended without an answer. */
static void attempt_over(struct resolver *r, struct query *q, uint64_t now)
{
	finish_attempt(q);
	if (q->attempt + 1u < r->cfg.attempts && r->n_servers > 0) {
		q->attempt++;
		q->server = (uint8_t)((q->server + 1u) % r->n_servers);
		q->deadline = now; /* sent by the next tick */
		return;
	}
	uint16_t ei = q->entry;
	unsigned f = q->fam;
	release(r, q);
	fam_failed(r, ei, f, now);
}

/* Every name in failure backoff is asked again now. */
static void retry_failed(struct resolver *r, uint64_t now)
{
	for (uint32_t i = 0; i < r->cfg.max_names; i++) {
		struct entry *e = &r->names[i];
		for (unsigned f = 0; e->used && f < 2; f++)
			if (e->fam[f].fail_count > 0 && !e->fam[f].inflight)
				e->fam[f].next_query_ns = now;
	}
}

static void servers_answer(struct resolver *r, uint64_t now)
{
	if (!r->dns_down)
		return;
	r->dns_down = false;
	log_info("dns: servers answer again, retrying failed names");
	retry_failed(r, now);
}

static void got_positive(struct resolver *r, struct query *q, const struct dns_reply *rep,
			 uint64_t now)
{
	uint16_t ei = q->entry;
	unsigned f = q->fam;
	struct entry *e = &r->names[ei];
	struct fam *fs = &e->fam[f];

	r->ctr.answers++;
	r->preferred = q->server;
	release(r, q);
	if (fs->failed || !fs->answered)
		e->dirty = true;
	fs->answered = true;
	fs->failed = false;
	fs->fail_count = 0;
	uint64_t t = ttl_ns(r, rep->min_ttl);
	fs->next_query_ns = add_sat(now, t - t / 4); /* refresh at 3/4 of the TTL */
	if (fam_answer(r, fs, f, rep, now))
		e->dirty = true;
	compose_entry(r, ei, f, now);
	servers_answer(r, now);
}

static void got_negative(struct resolver *r, struct query *q, uint64_t now)
{
	uint16_t ei = q->entry;
	unsigned f = q->fam;
	struct entry *e = &r->names[ei];
	struct fam *fs = &e->fam[f];

	r->ctr.negative++;
	r->preferred = q->server;
	release(r, q);
	if (!fs->failed)
		e->dirty = true;
	fs->answered = true;
	fs->failed = true;
	fs->fail_count = 0;
	fs->next_query_ns = add_sat(now, r->cfg.negative_ns);
	fam_cap(fs, add_sat(now, r->cfg.grace_ns));
	compose_entry(r, ei, f, now);
	servers_answer(r, now);
}

static struct query *free_query(struct resolver *r)
{
	for (uint32_t i = 0; i < r->cfg.max_inflight; i++)
		if (!r->q[i].active)
			return &r->q[i];
	return NULL;
}

/* Starts due queries, round-robin from the cursor so none starves. */
static void pump(struct resolver *r, uint64_t now)
{
	uint32_t n = r->cfg.max_names;
	if (n == 0)
		return;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (r->cursor + k) % n;
		struct entry *e = &r->names[i];
		for (unsigned f = 0; e->used && f < 2; f++) {
			struct fam *fs = &e->fam[f];
			if (e->refs[f] == 0 || fs->inflight || fs->next_query_ns > now)
				continue;
			if (r->n_servers == 0) {
				fam_failed(r, (uint16_t)i, f, now);
				continue;
			}
			struct query *q = free_query(r);
			if (q == NULL) {
				r->ctr.deferred++;
				r->cursor = i;
				return;
			}
			uint16_t done = q->done_port;
			memset(q, 0, sizeof(*q));
			q->done_port = done;
			q->active = true;
			q->entry = (uint16_t)i;
			q->fam = (uint8_t)f;
			q->server = r->preferred;
			fs->inflight = true;
			r->n_inflight++;
			send_attempt(r, q, now);
		}
	}
	r->cursor = (r->cursor + 1) % n;
}

static void recompute_wakeup(struct resolver *r)
{
	uint64_t w = UINT64_MAX;
	bool slot_free = r->n_inflight < r->cfg.max_inflight;

	for (uint32_t i = 0; i < r->cfg.max_inflight; i++)
		if (r->q[i].active)
			w = MIN(w, r->q[i].deadline);
	for (uint32_t i = 0; i < r->cfg.max_names; i++) {
		const struct entry *e = &r->names[i];
		for (unsigned f = 0; e->used && f < 2; f++) {
			const struct fam *fs = &e->fam[f];
			if (e->refs[f] > 0 && !fs->inflight && slot_free)
				w = MIN(w, fs->next_query_ns);
			for (size_t k = 0; k < fs->n && k < RESOLVER_ADDRS_PER_FAMILY; k++)
				w = MIN(w, fs->s[k].deadline);
		}
	}
	for (uint32_t i = 0; i < r->cfg.max_sets; i++) {
		const struct reg *g = &r->regs[i];
		for (size_t k = 0; g->set != NULL && k < RESOLVER_LEARNED_PER_SET; k++)
			if (g->l[k].deadline != 0)
				w = MIN(w, g->l[k].deadline);
	}
	r->next_wakeup = w;
}

/* The body of resolver_tick. */
static void process(struct resolver *r, uint64_t now)
{
	for (uint32_t i = 0; i < r->cfg.max_inflight; i++) {
		struct query *q = &r->q[i];
		if (!q->active || q->deadline > now)
			continue;
		if (q->sent) {
			r->ctr.timeouts++;
			attempt_over(r, q, now);
		}
		if (q->active && !q->sent)
			send_attempt(r, q, now);
	}
	for (uint32_t i = 0; i < r->cfg.max_names; i++) {
		struct entry *e = &r->names[i];
		for (unsigned f = 0; e->used && f < 2; f++) {
			if (fam_expire(&e->fam[f], now)) {
				e->dirty = true;
				compose_entry(r, (uint16_t)i, f, now);
			}
		}
	}
	for (uint32_t i = 0; i < r->cfg.max_sets; i++) {
		struct reg *g = &r->regs[i];
		for (size_t k = 0; g->set != NULL && k < RESOLVER_LEARNED_PER_SET; k++) {
			struct learned *l = &g->l[k];
			if (l->deadline == 0 || l->deadline > now)
				continue;
			l->deadline = 0;
			for (uint16_t h = 0; h < reg_nhosts(g); h++)
				if (g->host_entry[h] == l->entry)
					compose(r, g, h, now);
		}
	}
	pump(r, now);
	flush_reports(r, now);
	recompute_wakeup(r);
}

void resolver_tick(struct resolver *r, uint64_t now_ns)
{
	if (now_ns < r->next_wakeup)
		return;
	process(r, now_ns);
}

uint64_t resolver_next_wakeup(const struct resolver *r)
{
	return r->next_wakeup;
}

void resolver_set_servers(struct resolver *r, const struct ip_addr *servers, size_t n,
			  uint64_t now_ns)
{
	r->n_servers = 0;
	for (size_t i = 0; i < n && r->n_servers < RESOLVER_SERVERS_MAX; i++)
		if (!ip_is_unspecified(&servers[i]))
			r->servers[r->n_servers++] = servers[i];
	r->preferred = 0;
	for (uint32_t i = 0; i < r->cfg.max_inflight; i++) {
		struct query *q = &r->q[i];
		if (!q->active)
			continue;
		finish_attempt(q); /* late replies to old servers are dropped */
		if (r->n_servers == 0) {
			uint16_t ei = q->entry;
			unsigned f = q->fam;
			release(r, q);
			fam_failed(r, ei, f, now_ns);
			continue;
		}
		q->attempt = 0;
		q->server = 0;
		q->deadline = now_ns;
	}
	r->dns_down = false;
	retry_failed(r, now_ns);
	process(r, now_ns);
}

void resolver_retry_now(struct resolver *r, uint64_t now_ns)
{
	retry_failed(r, now_ns);
	process(r, now_ns);
}

/* ---- registration ---- */

static void reg_clear(struct resolver *r, struct reg *g)
{
	for (uint16_t h = 0; h < reg_nhosts(g); h++) {
		uint16_t ei = g->host_entry[h];
		if (ei != NONE && r->names[ei].refs[g->fam] > 0)
			r->names[ei].refs[g->fam]--;
	}
	memset(g, 0, sizeof(*g));
}

bool resolver_register_set(struct resolver *r, struct rule_set *set, uint64_t now_ns)
{
	unsigned f = set->family == RULE_FAMILY_V6 ? 1 : 0;
	struct reg *g = reg_find(r, set);
	uint16_t nh = MIN(set->n_hosts, (uint16_t)RULES_HOSTS_MAX);

	if (g != NULL)
		reg_clear(r, g);
	for (uint32_t i = 0; g == NULL && i < r->cfg.max_sets; i++)
		if (r->regs[i].set == NULL)
			g = &r->regs[i];
	if (g == NULL) {
		r->ctr.table_full++;
		log_error("dns: no room to register a rule set; its %u host name%s stay unresolved",
			  nh, nh == 1 ? "" : "s");
		for (uint16_t h = 0; h < nh; h++)
			rules_hostset_fail(set, set->hosts[h].name,
					   strnlen(set->hosts[h].name, sizeof(set->hosts[h].name)),
					   add_sat(now_ns, r->cfg.retry_max_ns));
		return false;
	}
	g->set = set;
	g->fam = (uint8_t)f;
	for (uint16_t h = 0; h < nh; h++) {
		const char *name = set->hosts[h].name;
		size_t len = strnlen(name, sizeof(set->hosts[h].name));
		uint16_t ei = entry_get(r, name, len);
		g->host_entry[h] = ei;
		if (ei == NONE) {
			r->ctr.table_full++;
			log_error("dns: no room for host name %s; it stays unresolved", name);
			rules_hostset_fail(set, name, len, add_sat(now_ns, r->cfg.retry_max_ns));
			continue;
		}
		r->names[ei].refs[f]++;
		compose(r, g, h, now_ns);
	}
	process(r, now_ns);
	return true;
}

void resolver_unregister_set(struct resolver *r, const struct rule_set *set)
{
	struct reg *g = reg_find(r, set);
	if (g != NULL)
		reg_clear(r, g);
}

/* ---- replies ---- */

static struct query *query_on_port(struct resolver *r, uint16_t port)
{
	for (uint32_t i = 0; i < r->cfg.max_inflight; i++)
		if (r->q[i].active && r->q[i].sent && r->q[i].port == port)
			return &r->q[i];
	return NULL;
}

static bool port_recently_done(const struct resolver *r, uint16_t port)
{
	for (uint32_t i = 0; i < r->cfg.max_inflight; i++)
		if (r->q[i].done_port == port)
			return true;
	return false;
}

void resolver_input(struct resolver *r, const struct ip_addr *src, uint16_t sport,
		    uint16_t dport, const uint8_t *payload, size_t len, uint64_t now_ns)
{
	struct query *q = dport == 0 ? NULL : query_on_port(r, dport);
	struct dns_reply rep;

	if (q == NULL) {
		if (dport != 0 && port_recently_done(r, dport)) {
			r->ctr.duplicates++;
			log_warn("dns: duplicate or late reply from %s to port %u dropped",
				 IP_STR(src), dport);
		} else {
			r->ctr.unsolicited++;
			log_warn("dns: unsolicited reply from %s to port %u dropped", IP_STR(src),
				 dport);
		}
		return;
	}
	if (sport != DNS_PORT || !ip_equal(src, &r->servers[q->server])) {
		r->ctr.wrong_source++;
		log_warn("dns: reply from %s port %u, not from the server asked, dropped",
			 IP_STR(src), sport);
		return;
	}
	enum dns_result rc = dns_parse_reply(payload, len, &rep);
	if (!rep.have_question) {
		r->ctr.malformed++;
		log_warn("dns: malformed reply from %s dropped: %s", IP_STR(src),
			 dns_result_str(rc));
		return;
	}
	const struct entry *e = &r->names[q->entry];
	if (rep.id != q->id || !dns_reply_question_is(&rep, &e->wire, qtype_of(q->fam))) {
		r->ctr.mismatched++;
		log_warn("dns: reply from %s with a wrong id or question dropped", IP_STR(src));
		return;
	}
	/* It answers this attempt. */
	if (rc == DNS_ERR_TRUNCATED) {
		r->ctr.truncated++;
		log_info("dns: truncated answer for %s from %s, asking the next server", e->text,
			 IP_STR(src));
		attempt_over(r, q, now_ns);
	} else if (rc != DNS_OK) {
		r->ctr.bad_answers++;
		log_warn("dns: bad answer for %s from %s: %s", e->text, IP_STR(src),
			 dns_result_str(rc));
		attempt_over(r, q, now_ns);
	} else if (rep.rcode == DNS_RCODE_NXDOMAIN ||
		   (rep.rcode == DNS_RCODE_NOERROR && rep.n_addrs == 0)) {
		got_negative(r, q, now_ns);
	} else if (rep.rcode != DNS_RCODE_NOERROR) {
		r->ctr.server_errors++;
		log_info("dns: %s answered rcode %u for %s", IP_STR(src), rep.rcode, e->text);
		attempt_over(r, q, now_ns);
	} else {
		got_positive(r, q, &rep, now_ns);
	}
	flush_reports(r, now_ns);
	recompute_wakeup(r);
}

/* ---- learning from client answers ---- */

static bool is_server(const struct resolver *r, const struct ip_addr *a)
{
	for (size_t i = 0; i < r->n_servers; i++)
		if (ip_equal(&r->servers[i], a))
			return true;
	return false;
}

/* Adds (or extends) a learned address of entry ei in g. Per name at most
 * RULES_HOST_ADDRS_MAX; a full table replaces what expires first. */
static void learned_add(struct reg *g, uint16_t ei, const struct ip_addr *a, uint64_t deadline,
			uint64_t now)
{
	struct learned *name_oldest = NULL, *oldest = NULL, *free_slot = NULL;
	size_t per_name = 0;

	for (size_t i = 0; i < RESOLVER_LEARNED_PER_SET; i++) {
		struct learned *l = &g->l[i];
		if (l->deadline <= now) {
			if (free_slot == NULL)
				free_slot = l;
			continue;
		}
		if (l->entry == ei) {
			if (ip_equal(&l->a, a)) {
				l->deadline = MAX(l->deadline, deadline);
				return;
			}
			per_name++;
			if (name_oldest == NULL || l->deadline < name_oldest->deadline)
				name_oldest = l;
		}
		if (oldest == NULL || l->deadline < oldest->deadline)
			oldest = l;
	}
	struct learned *t = oldest;
	if (per_name >= RULES_HOST_ADDRS_MAX)
		t = name_oldest;
	else if (free_slot != NULL)
		t = free_slot;
	if (t == NULL)
		return;
	t->a = *a;
	t->entry = ei;
	t->deadline = deadline;
}

void resolver_observe_client_answer(struct resolver *r, struct rule_set *const *sets,
				    size_t n_sets, const uint8_t *payload, size_t len,
				    const struct ip_addr *server, uint64_t now_ns)
{
	struct dns_reply rep;
	bool used = false;

	if (server == NULL || !is_server(r, server)) {
		r->ctr.learn_ignored++;
		log_debug("dns: client answer from %s (not a configured server) not learned",
			  server ? IP_STR(server) : "?");
		return;
	}
	enum dns_result rc = dns_parse_reply(payload, len, &rep);
	if (rc != DNS_OK || rep.rcode != DNS_RCODE_NOERROR || rep.n_addrs == 0 ||
	    rep.qclass != DNS_CLASS_IN ||
	    (rep.qtype != DNS_TYPE_A && rep.qtype != DNS_TYPE_AAAA)) {
		r->ctr.learn_ignored++;
		return;
	}
	uint16_t ei = entry_find(r, &rep.qname);
	unsigned f = rep.qtype == DNS_TYPE_AAAA ? 1 : 0;
	for (size_t s = 0; ei != NONE && s < n_sets; s++) {
		struct reg *g = sets[s] == NULL ? NULL : reg_find(r, sets[s]);
		if (g == NULL || g->fam != f)
			continue;
		for (uint16_t h = 0; h < reg_nhosts(g); h++) {
			if (g->host_entry[h] != ei)
				continue;
			for (size_t i = 0; i < rep.n_addrs && i < DNS_ADDRS_MAX; i++) {
				const struct dns_addr *d = &rep.addrs[i];
				if (!addr_of_fam(&d->addr, f))
					continue;
				uint64_t dl = add_sat(add_sat(now_ns, ttl_ns(r, d->ttl)),
						      r->cfg.grace_ns);
				learned_add(g, ei, &d->addr, dl, now_ns);
				r->ctr.learned++;
			}
			compose(r, g, h, now_ns);
			used = true;
		}
	}
	if (!used) {
		r->ctr.learn_ignored++;
		return;
	}
	recompute_wakeup(r);
}

/* ---- status ---- */

size_t resolver_lookup(const struct resolver *r, const char *name, size_t len, int family,
		       struct ip_addr *out, size_t cap, uint64_t now_ns)
{
	struct dns_name w;
	if (!dns_name_from_text(name, len, &w))
		return 0;
	uint16_t ei = entry_find(r, &w);
	if (ei == NONE)
		return 0;
	const struct fam *fs = &r->names[ei].fam[family == 6 ? 1 : 0];
	size_t n = 0;
	for (size_t i = 0; i < fs->n && i < RESOLVER_ADDRS_PER_FAMILY && n < cap; i++)
		if (fs->s[i].deadline > now_ns)
			out[n++] = fs->s[i].a;
	return n;
}

uint32_t resolver_inflight(const struct resolver *r)
{
	return r->n_inflight;
}

const struct resolver_counters *resolver_get_counters(const struct resolver *r)
{
	return &r->ctr;
}
