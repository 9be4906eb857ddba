/* dns.c — DNS queries and replies (RFC 1035), strictly validated.
 *
 * Must never read past the message, follow a pointer forwards or in a
 * loop, or spend more than a bounded amount of work on one message: the
 * first pass validates every record once (each name walk is bounded by
 * DNS_POINTER_JUMPS_MAX jumps and 255 bytes), the second follows the CNAME
 * chain over at most DNS_ANSWER_RRS_MAX remembered records. */
#include "net/dns.h"

#include "base/byteorder.h"
#include "base/libc.h"

#define FLAG_QR 0x8000u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define OPCODE(f) (((f) >> 11) & 0xfu)
#define RCODE(f) ((f) & 0xfu)

/* Smallest record: root owner (1) + type, class, ttl, rdlength (10). */
#define RR_MIN_LEN 11
#define RR_FIXED_LEN 10

const char *dns_result_str(enum dns_result r)
{
	switch (r) {
	case DNS_OK: return "ok";
	case DNS_ERR_SHORT: return "message too short";
	case DNS_ERR_NOT_REPLY: return "not a reply";
	case DNS_ERR_OPCODE: return "opcode not QUERY";
	case DNS_ERR_COUNTS: return "bad section counts";
	case DNS_ERR_NAME: return "bad name";
	case DNS_ERR_POINTER: return "bad compression pointer";
	case DNS_ERR_RECORD: return "bad record data";
	case DNS_ERR_TRAILING: return "bytes after the last record";
	case DNS_ERR_TRUNCATED: return "truncated (TC)";
	case DNS_ERR_CNAME: return "CNAME chain too long";
	case DNS_ERR_LENGTH: return "message too long";
	}
	return "?";
}

static uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* ---- names ---- */

bool dns_name_from_text(const char *s, size_t len, struct dns_name *out)
{
	if (s == NULL || len == 0)
		return false;
	if (s[len - 1] == '.')
		len--; /* one trailing dot: the root */
	if (len == 0 || len > DNS_NAME_TEXT_MAX)
		return false;
	size_t o = 0;
	size_t label_start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			size_t l = i - label_start;
			if (l == 0 || l > DNS_LABEL_MAX || o + 1 + l + 1 > DNS_NAME_WIRE_MAX)
				return false;
			out->b[o++] = (uint8_t)l;
			for (size_t k = label_start; k < i; k++)
				out->b[o++] = lower((uint8_t)s[k]);
			label_start = i + 1;
			continue;
		}
		uint8_t c = (uint8_t)s[i];
		if (c < 0x21 || c > 0x7e)
			return false;
	}
	out->b[o++] = 0;
	out->len = (uint8_t)o;
	return true;
}

size_t dns_name_to_text(const struct dns_name *n, char *buf, size_t cap)
{
	size_t o = 0;
	size_t i = 0;

	if (cap == 0)
		return 0;
	while (i < n->len && i < DNS_NAME_WIRE_MAX) {
		size_t l = n->b[i];
		if (l == 0)
			break;
		if (l > DNS_LABEL_MAX || i + 1 + l > n->len)
			return 0;
		if (o != 0) {
			if (o + 1 >= cap)
				return 0;
			buf[o++] = '.';
		}
		for (size_t k = 0; k < l; k++) {
			uint8_t c = n->b[i + 1 + k];
			if (c < 0x21 || c > 0x7e || c == '.' || o + 1 >= cap)
				return 0;
			buf[o++] = (char)c;
		}
		i += 1 + l;
	}
	buf[o] = '\0';
	return o;
}

bool dns_name_equal(const struct dns_name *a, const struct dns_name *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static bool name_valid(const struct dns_name *n)
{
	size_t i = 0;

	while (i < n->len && i < DNS_NAME_WIRE_MAX) {
		size_t l = n->b[i];
		if (l == 0)
			return i + 1 == n->len && i != 0;
		if (l > DNS_LABEL_MAX)
			return false;
		i += 1 + l;
	}
	return false;
}

/* Reads the (possibly compressed) name at off. *next: the offset after the
 * name where it sits (after its first pointer, or its root byte). out may
 * be NULL (validation only). Every jump must land after the header and
 * strictly before the lowest offset read so far, so jumps strictly go back
 * and the walk ends. */
static enum dns_result read_name(const uint8_t *p, size_t len, size_t off, struct dns_name *out,
				 size_t *next)
{
	size_t pos = off;
	size_t lowest = off;
	size_t wire = 0;
	size_t after = 0;
	unsigned jumps = 0;

	for (;;) {
		if (pos >= len)
			return DNS_ERR_SHORT;
		uint8_t c = p[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return DNS_ERR_SHORT;
			size_t target = (size_t)(c & 0x3f) << 8 | p[pos + 1];
			if (after == 0)
				after = pos + 2;
			if (++jumps > DNS_POINTER_JUMPS_MAX || target < DNS_HDR_LEN ||
			    target >= lowest)
				return DNS_ERR_POINTER;
			pos = target;
			lowest = target;
			continue;
		}
		if ((c & 0xc0) != 0)
			return DNS_ERR_NAME; /* 01 and 10 label types (RFC 6891 §5) */
		if (c == 0) {
			if (out != NULL) {
				out->b[wire] = 0;
				out->len = (uint8_t)(wire + 1);
			}
			*next = after != 0 ? after : pos + 1;
			return DNS_OK;
		}
		if (wire + 1 + c + 1 > DNS_NAME_WIRE_MAX)
			return DNS_ERR_NAME;
		if (pos + 1 + c > len)
			return DNS_ERR_SHORT;
		if (out != NULL) {
			out->b[wire] = c;
			for (size_t k = 0; k < c; k++)
				out->b[wire + 1 + k] = lower(p[pos + 1 + k]);
		}
		wire += 1 + c;
		pos += 1 + c;
	}
}

static uint32_t name_hash(const struct dns_name *n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n->len; i++) {
		h ^= n->b[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- queries ---- */

size_t dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const struct dns_name *name,
		       uint16_t qtype)
{
	if (!name_valid(name))
		return 0;
	size_t need = DNS_HDR_LEN + name->len + 4;
	if (cap < need)
		return 0;
	store_be16(buf, id);
	store_be16(buf + 2, FLAG_RD);
	store_be16(buf + 4, 1); /* QDCOUNT */
	store_be16(buf + 6, 0);
	store_be16(buf + 8, 0);
	store_be16(buf + 10, 0);
	memcpy(buf + DNS_HDR_LEN, name->b, name->len);
	store_be16(buf + DNS_HDR_LEN + name->len, qtype);
	store_be16(buf + DNS_HDR_LEN + name->len + 2, DNS_CLASS_IN);
	return need;
}

/* ---- replies ---- */

struct answer_rr {
	uint32_t owner_hash;
	uint32_t ttl;
	uint16_t owner_off;
	uint16_t type;
	uint16_t rdata_off;
};

static uint32_t clamp_ttl(uint32_t ttl)
{
	return (ttl & 0x80000000u) ? 0 : ttl; /* RFC 2181 §8 */
}

static bool owner_is(const uint8_t *p, size_t len, const struct answer_rr *rr,
		     const struct dns_name *n, uint32_t hash)
{
	struct dns_name tmp;
	size_t next;

	if (rr->owner_hash != hash)
		return false;
	/* Validated in the first pass; re-read to rule out a hash collision. */
	return read_name(p, len, rr->owner_off, &tmp, &next) == DNS_OK && dns_name_equal(&tmp, n);
}

static void add_addr(struct dns_reply *out, const struct ip_addr *a, uint32_t ttl)
{
	for (size_t i = 0; i < out->n_addrs; i++) {
		if (ip_equal(&out->addrs[i].addr, a)) {
			out->addrs[i].ttl = MIN(out->addrs[i].ttl, ttl);
			return;
		}
	}
	if (out->n_addrs >= DNS_ADDRS_MAX) {
		out->addrs_dropped++;
		return;
	}
	out->addrs[out->n_addrs].addr = *a;
	out->addrs[out->n_addrs].ttl = ttl;
	out->n_addrs++;
}

/* Follows the chain from the question name over the remembered records. */
static enum dns_result follow_chain(const uint8_t *p, size_t len, const struct answer_rr *rrs,
				    size_t n_rrs, struct dns_reply *out)
{
	struct dns_name cur = out->qname;
	uint32_t chain_ttl = UINT32_MAX;

	if (out->qtype != DNS_TYPE_A && out->qtype != DNS_TYPE_AAAA)
		return DNS_OK; /* nothing we collect */
	for (;;) {
		uint32_t h = name_hash(&cur);
		bool found = false;
		const struct answer_rr *cname = NULL;
		for (size_t i = 0; i < n_rrs; i++) {
			const struct answer_rr *rr = &rrs[i];
			if (rr->type != out->qtype && rr->type != DNS_TYPE_CNAME)
				continue;
			if (!owner_is(p, len, rr, &cur, h))
				continue;
			if (rr->type == DNS_TYPE_CNAME) {
				if (cname == NULL)
					cname = rr;
				continue;
			}
			struct ip_addr a;
			if (rr->type == DNS_TYPE_A)
				a = ip_from_v4(p + rr->rdata_off);
			else
				a = ip_from_v6(p + rr->rdata_off);
			add_addr(out, &a, MIN(rr->ttl, chain_ttl));
			found = true;
		}
		if (found || cname == NULL)
			break;
		if (out->cname_depth >= DNS_CNAME_DEPTH_MAX)
			return DNS_ERR_CNAME;
		size_t next;
		if (read_name(p, len, cname->rdata_off, &cur, &next) != DNS_OK)
			return DNS_ERR_RECORD; /* validated before: cannot happen */
		chain_ttl = MIN(chain_ttl, cname->ttl);
		out->cname_depth++;
	}
	out->min_ttl = 0;
	for (size_t i = 0; i < out->n_addrs; i++)
		out->min_ttl = i == 0 ? out->addrs[i].ttl : MIN(out->min_ttl, out->addrs[i].ttl);
	return DNS_OK;
}

enum dns_result dns_parse_reply(const uint8_t *p, size_t len, struct dns_reply *out)
{
	struct answer_rr rrs[DNS_ANSWER_RRS_MAX];
	size_t n_rrs = 0;
	enum dns_result r;
	size_t pos;

	out->have_question = false;
	out->n_addrs = 0;
	out->addrs_dropped = 0;
	out->rrs_ignored = 0;
	out->min_ttl = 0;
	out->cname_depth = 0;
	if (len < DNS_HDR_LEN)
		return DNS_ERR_SHORT;
	if (len > DNS_MSG_MAX)
		return DNS_ERR_LENGTH; /* offsets below fit 16 bits */
	out->id = load_be16(p);
	out->flags = load_be16(p + 2);
	out->rcode = (uint8_t)RCODE(out->flags);
	out->truncated = (out->flags & FLAG_TC) != 0;
	if (!(out->flags & FLAG_QR))
		return DNS_ERR_NOT_REPLY;
	if (OPCODE(out->flags) != 0)
		return DNS_ERR_OPCODE;
	uint32_t qd = load_be16(p + 4);
	uint32_t an = load_be16(p + 6);
	uint32_t ns = load_be16(p + 8);
	uint32_t ar = load_be16(p + 10);
	if (qd != 1)
		return DNS_ERR_COUNTS;

	/* The question: a name (never compressed: nothing precedes it). */
	r = read_name(p, len, DNS_HDR_LEN, &out->qname, &pos);
	if (r != DNS_OK)
		return r;
	if (len - pos < 4)
		return DNS_ERR_SHORT;
	out->qtype = load_be16(p + pos);
	out->qclass = load_be16(p + pos + 2);
	pos += 4;
	out->have_question = true;
	if (out->truncated)
		return DNS_ERR_TRUNCATED;

	uint32_t total = an + ns + ar;
	if ((uint64_t)total * RR_MIN_LEN > len - pos)
		return DNS_ERR_COUNTS;
	for (uint32_t i = 0; i < total; i++) {
		struct dns_name owner;
		size_t owner_off = pos;
		r = read_name(p, len, pos, &owner, &pos);
		if (r != DNS_OK)
			return r;
		if (len - pos < RR_FIXED_LEN)
			return DNS_ERR_SHORT;
		uint16_t type = load_be16(p + pos);
		uint16_t cls = load_be16(p + pos + 2);
		uint32_t ttl = clamp_ttl(load_be32(p + pos + 4));
		size_t rdlen = load_be16(p + pos + 8);
		pos += RR_FIXED_LEN;
		if (len - pos < rdlen)
			return DNS_ERR_SHORT;
		size_t rdata_off = pos;
		pos += rdlen;
		if (cls != DNS_CLASS_IN)
			continue;
		if (type == DNS_TYPE_A && rdlen != 4)
			return DNS_ERR_RECORD;
		if (type == DNS_TYPE_AAAA && rdlen != 16)
			return DNS_ERR_RECORD;
		if (type == DNS_TYPE_CNAME) {
			size_t end;
			/* The target lies inside the rdata: read it over the
			 * message cut at the rdata's end. */
			r = read_name(p, pos, rdata_off, NULL, &end);
			if (r == DNS_ERR_SHORT || (r == DNS_OK && end != pos))
				return DNS_ERR_RECORD;
			if (r != DNS_OK)
				return r;
		}
		if (i >= an || (type != DNS_TYPE_A && type != DNS_TYPE_AAAA &&
				type != DNS_TYPE_CNAME))
			continue;
		if (n_rrs == DNS_ANSWER_RRS_MAX) {
			out->rrs_ignored++;
			continue;
		}
		rrs[n_rrs].owner_hash = name_hash(&owner);
		rrs[n_rrs].ttl = ttl;
		rrs[n_rrs].owner_off = (uint16_t)owner_off;
		rrs[n_rrs].type = type;
		rrs[n_rrs].rdata_off = (uint16_t)rdata_off;
		n_rrs++;
	}
	if (pos != len)
		return DNS_ERR_TRAILING;
	return follow_chain(p, len, rrs, n_rrs, out);
}

bool dns_reply_question_is(const struct dns_reply *r, const struct dns_name *name,
			   uint16_t qtype)
{
	return r->have_question && r->qtype == qtype && r->qclass == DNS_CLASS_IN &&
	       dns_name_equal(&r->qname, name);
}
