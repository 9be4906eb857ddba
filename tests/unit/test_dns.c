/* test_dns.c — DNS message codec (RFC 1035 §4.1 layouts, built by hand).
 *
 * Every message is assembled byte by byte from the RFC's field layout (the
 * builder below knows nothing of src/net/dns.c) and parsed from an
 * exact-size heap copy so ASan catches any read past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

/* ---- a hand builder of wire bytes ---- */

struct msg {
	uint8_t b[4096];
	size_t n;
};

static void put8(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

static void putbytes(struct msg *m, const void *p, size_t n)
{
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

/* Labels of a dotted name, then the root byte (no compression). */
static void putname(struct msg *m, const char *s)
{
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		put8(m, (unsigned)l);
		putbytes(m, s, l);
		s += l + (dot ? 1 : 0);
	}
	put8(m, 0);
}

/* Labels then a pointer to off. */
static void putname_ptr(struct msg *m, const char *labels, unsigned off)
{
	while (labels && *labels) {
		const char *dot = strchr(labels, '.');
		size_t l = dot ? (size_t)(dot - labels) : strlen(labels);
		put8(m, (unsigned)l);
		putbytes(m, labels, l);
		labels += l + (dot ? 1 : 0);
	}
	put16(m, 0xc000 | off);
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
		   unsigned ns, unsigned ar)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, ns);
	put16(m, ar);
}

static void question(struct msg *m, const char *name, unsigned type)
{
	putname(m, name);
	put16(m, type);
	put16(m, DNS_CLASS_IN);
}

/* Record fixed part after the owner name. */
static void rr_fixed(struct msg *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
	put16(m, type);
	put16(m, DNS_CLASS_IN);
	put32(m, ttl);
	put16(m, rdlen);
}

static void rr_a(struct msg *m, uint32_t ttl, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	rr_fixed(m, DNS_TYPE_A, ttl, 4);
	put8(m, a);
	put8(m, b);
	put8(m, c);
	put8(m, d);
}

static enum dns_result parse(const struct msg *m, size_t len, struct dns_reply *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, m->b, len);
	enum dns_result r = dns_parse_reply(copy, len, out);
	free(copy);
	return r;
}

static struct ip_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	uint8_t x[4] = {a, b, c, d};
	return ip_from_v4(x);
}

static struct dns_name name(const char *s)
{
	struct dns_name n;
	if (!dns_name_from_text(s, strlen(s), &n))
		fail_msg("bad test name %s", s);
	return n;
}

static struct dns_reply rep;

/* RFC 1035 §4.1: the reply to "example.com A" with the answer's owner
 * compressed to the question name (offset 12). */
static void build_example_a(struct msg *m)
{
	header(m, 0x1234, 0x8180, 1, 1, 0, 0);
	question(m, "example.com", DNS_TYPE_A);
	put16(m, 0xc00c);
	rr_a(m, 3600, 93, 184, 216, 34);
}

static void test_a_with_compression(void **state)
{
	(void)state;
	struct msg m;
	build_example_a(&m);
	assert_int_equal(m.n, 12 + 13 + 4 + 16);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.id, 0x1234);
	assert_int_equal(rep.rcode, DNS_RCODE_NOERROR);
	assert_false(rep.truncated);
	assert_true(rep.have_question);
	struct dns_name q = name("example.com");
	assert_true(dns_reply_question_is(&rep, &q, DNS_TYPE_A));
	assert_false(dns_reply_question_is(&rep, &q, DNS_TYPE_AAAA));
	assert_int_equal(rep.n_addrs, 1);
	struct ip_addr want = v4(93, 184, 216, 34);
	assert_true(ip_equal(&rep.addrs[0].addr, &want));
	assert_int_equal(rep.addrs[0].ttl, 3600);
	assert_int_equal(rep.min_ttl, 3600);
	assert_int_equal(rep.cname_depth, 0);
}

/* www.example.com CNAME cdn.example.net (compressed suffix),
 * cdn.example.net CNAME edge.cdn.example.net (pointer into the previous
 * rdata), edge.cdn.example.net A ×2, plus an A for an unrelated name. */
static size_t build_chain(struct msg *m)
{
	header(m, 7, 0x8180, 1, 5, 0, 0);
	question(m, "www.example.com", DNS_TYPE_A); /* name at 12..28 */
	/* rr 1: owner www.example.com (ptr 12), CNAME cdn.example.net */
	put16(m, 0xc00c);
	size_t rd1 = m->n + 10; /* rdata offset */
	rr_fixed(m, DNS_TYPE_CNAME, 300, 1 + 3 + 1 + 7 + 1 + 3 + 1);
	putname(m, "cdn.example.net");
	/* rr 2: owner = rdata of rr 1, CNAME edge + ptr to it */
	put16(m, 0xc000 | (unsigned)rd1);
	rr_fixed(m, DNS_TYPE_CNAME, 60, 5 + 2);
	size_t rd2 = m->n;
	putname_ptr(m, "edge", (unsigned)rd1);
	/* rr 3 and 4: owner edge.cdn.example.net (ptr rd2), A records */
	put16(m, 0xc000 | (unsigned)rd2);
	rr_a(m, 120, 192, 0, 2, 1);
	put16(m, 0xc000 | (unsigned)rd2);
	rr_a(m, 90, 192, 0, 2, 2);
	/* rr 5: an A for another name: must not be collected */
	putname(m, "evil.example");
	rr_a(m, 9999, 6, 6, 6, 6);
	return m->n;
}

static void test_cname_chain(void **state)
{
	(void)state;
	struct msg m;
	build_chain(&m);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.cname_depth, 2);
	assert_int_equal(rep.n_addrs, 2);
	struct ip_addr a1 = v4(192, 0, 2, 1), a2 = v4(192, 0, 2, 2);
	assert_true(ip_equal(&rep.addrs[0].addr, &a1));
	assert_true(ip_equal(&rep.addrs[1].addr, &a2));
	/* TTL: the smaller of the record's and the chain's (60) */
	assert_int_equal(rep.addrs[0].ttl, 60);
	assert_int_equal(rep.addrs[1].ttl, 60);
	assert_int_equal(rep.min_ttl, 60);
}

static void test_aaaa(void **state)
{
	(void)state;
	struct msg m;
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	header(&m, 0xbeef, 0x8180, 1, 1, 0, 0);
	question(&m, "v6.example", DNS_TYPE_AAAA);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_AAAA, 77, 16);
	putbytes(&m, v6, 16);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.qtype, DNS_TYPE_AAAA);
	assert_int_equal(rep.n_addrs, 1);
	struct ip_addr want = ip_from_v6(v6);
	assert_true(ip_equal(&rep.addrs[0].addr, &want));
	assert_false(ip_is_v4(&rep.addrs[0].addr));
	assert_int_equal(rep.min_ttl, 77);
	/* an A record in an AAAA answer is not collected */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "v6.example", DNS_TYPE_AAAA);
	put16(&m, 0xc00c);
	rr_a(&m, 5, 1, 2, 3, 4);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 0);
}

static void test_every_truncation(void **state)
{
	(void)state;
	struct msg m;
	build_example_a(&m);
	for (size_t len = 0; len < m.n; len++)
		assert_int_not_equal(parse(&m, len, &rep), DNS_OK);
	build_chain(&m);
	for (size_t len = 0; len < m.n; len++)
		assert_int_not_equal(parse(&m, len, &rep), DNS_OK);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
}

static void test_pointer_rules(void **state)
{
	(void)state;
	struct msg m;
	/* owner pointing at itself */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc000 | (unsigned)m.n);
	rr_a(&m, 1, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_POINTER);
	/* forward pointer (to the record's rdata) */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc000 | (unsigned)(m.n + 12));
	rr_a(&m, 1, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_POINTER);
	/* pointer into the header */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc002);
	rr_a(&m, 1, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_POINTER);
	/* two names pointing at each other: X = "x" -> Y, Y = "y" -> X.
	 * Y lies after X, so X's pointer goes forwards. */
	header(&m, 1, 0x8180, 1, 2, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	size_t x = m.n;
	putname_ptr(&m, "x", (unsigned)(x + 3 + 10 + 4));
	rr_a(&m, 1, 1, 1, 1, 1);
	putname_ptr(&m, "y", (unsigned)x);
	rr_a(&m, 1, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_POINTER);
	/* a pointer back into the middle of its own name: "a" "b" -> "b" */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	size_t own = m.n;
	putname_ptr(&m, "a.b", (unsigned)(own + 2));
	rr_a(&m, 1, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_POINTER);
	/* a question name cannot be compressed */
	header(&m, 1, 0x8180, 1, 0, 0, 0);
	put16(&m, 0xc00c);
	put16(&m, 1);
	put16(&m, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_POINTER);
	assert_false(rep.have_question);
	/* reserved label types 01 and 10 */
	header(&m, 1, 0x8180, 1, 0, 0, 0);
	put8(&m, 0x41);
	put8(&m, 0);
	put16(&m, 1);
	put16(&m, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_NAME);
	m.b[12] = 0x81;
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_NAME);
}

static void test_oversize_names(void **state)
{
	(void)state;
	struct msg m;
	char label[65];
	memset(label, 'a', 64);
	label[64] = '\0';
	header(&m, 1, 0x8180, 1, 0, 0, 0);
	question(&m, label, DNS_TYPE_A); /* a 64-byte label reads as type 01 */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_NAME);
	/* 4 × 63-byte labels = 256 bytes of wire form with the root */
	char big[4 * 64];
	for (int i = 0; i < 4; i++) {
		memset(big + (size_t)i * 64, 'b', 63);
		big[(size_t)i * 64 + 63] = i == 3 ? '\0' : '.';
	}
	header(&m, 1, 0x8180, 1, 0, 0, 0);
	question(&m, big, DNS_TYPE_A);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_NAME);
	/* 3 × 63 + one of 61 = 255 exactly: fine */
	big[3 * 64 + 61] = '\0';
	header(&m, 1, 0x8180, 1, 0, 0, 0);
	question(&m, big, DNS_TYPE_A);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.qname.len, 255);
	/* over 255 only through compression: 2 × 63 in the question, an owner
	 * of 2 × 63 more plus a pointer to it */
	char half[128];
	memset(half, 'c', 127);
	half[63] = '.';
	half[127] = '\0';
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, half, DNS_TYPE_A);
	putname_ptr(&m, half, 12);
	rr_a(&m, 1, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_NAME);
}

static void test_bad_header_and_counts(void **state)
{
	(void)state;
	struct msg m;
	build_example_a(&m);
	m.b[2] &= 0x7f; /* QR = 0 */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_NOT_REPLY);
	build_example_a(&m);
	m.b[2] |= 0x10; /* opcode 2 */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_OPCODE);
	build_example_a(&m);
	m.b[5] = 0; /* QDCOUNT 0 */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_COUNTS);
	m.b[5] = 2;
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_COUNTS);
	build_example_a(&m);
	m.b[6] = 0x03; /* ANCOUNT 769: cannot fit */
	m.b[7] = 0x01;
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_COUNTS);
	build_example_a(&m);
	m.b[7] = 2; /* one more answer than present */
	assert_int_not_equal(parse(&m, m.n, &rep), DNS_OK);
	build_example_a(&m);
	m.b[7] = 0; /* fewer: the record is trailing garbage */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_TRAILING);
	build_example_a(&m);
	m.b[11] = 0xff; /* ARCOUNT 255 */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_COUNTS);
	build_example_a(&m);
	put8(&m, 0); /* one byte after the last record */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_TRAILING);
}

static void test_bad_rdata(void **state)
{
	(void)state;
	struct msg m;
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_A, 1, 5);
	putbytes(&m, "\1\2\3\4\5", 5);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_RECORD);
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_AAAA);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_AAAA, 1, 4);
	putbytes(&m, "\1\2\3\4", 4);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_RECORD);
	/* CNAME rdata longer than its name */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_CNAME, 1, 4);
	putname(&m, "c");
	put8(&m, 0);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_RECORD);
	/* CNAME rdata shorter than its name */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_CNAME, 1, 2);
	putname(&m, "c");
	assert_int_not_equal(parse(&m, m.n, &rep), DNS_OK);
	/* rdlength past the end */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_fixed(&m, 99, 1, 200);
	putbytes(&m, "xx", 2);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_SHORT);
	/* an A of another class is only skipped, whatever its length */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.b", DNS_TYPE_A);
	put16(&m, 0xc00c);
	put16(&m, DNS_TYPE_A);
	put16(&m, 3); /* CH */
	put32(&m, 1);
	put16(&m, 1);
	put8(&m, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 0);
}

/* A chain of n CNAMEs c0 -> c1 -> ... -> cn, then an A for cn. */
static void build_cname_run(struct msg *m, unsigned n)
{
	char owner[16], target[16];
	header(m, 1, 0x8180, 1, n + 1, 0, 0);
	question(m, "c0.x", DNS_TYPE_A);
	for (unsigned i = 0; i < n; i++) {
		(void)snprintf(owner, sizeof(owner), "c%u.x", i);
		(void)snprintf(target, sizeof(target), "c%u.x", i + 1);
		putname(m, owner);
		rr_fixed(m, DNS_TYPE_CNAME, 100, (unsigned)strlen(target) + 2);
		putname(m, target);
	}
	(void)snprintf(owner, sizeof(owner), "c%u.x", n);
	putname(m, owner);
	rr_a(m, 100, 10, 0, 0, 1);
}

static void test_cname_loops_and_depth(void **state)
{
	(void)state;
	struct msg m;
	build_cname_run(&m, DNS_CNAME_DEPTH_MAX);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 1);
	assert_int_equal(rep.cname_depth, DNS_CNAME_DEPTH_MAX);
	build_cname_run(&m, DNS_CNAME_DEPTH_MAX + 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_CNAME);
	assert_true(rep.have_question);
	/* a -> b -> a */
	header(&m, 1, 0x8180, 1, 2, 0, 0);
	question(&m, "a.x", DNS_TYPE_A);
	putname(&m, "a.x");
	rr_fixed(&m, DNS_TYPE_CNAME, 1, 5);
	putname(&m, "b.x");
	putname(&m, "b.x");
	rr_fixed(&m, DNS_TYPE_CNAME, 1, 5);
	putname(&m, "a.x");
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_CNAME);
	/* self loop a -> a */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.x", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_CNAME, 1, 2);
	put16(&m, 0xc00c);
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_CNAME);
	/* a dangling CNAME: no address, no error (NODATA at the end) */
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "a.x", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_fixed(&m, DNS_TYPE_CNAME, 1, 5);
	putname(&m, "z.x");
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 0);
	assert_int_equal(rep.cname_depth, 1);
}

static void test_flags_rcode_tc_ttl(void **state)
{
	(void)state;
	struct msg m;
	build_example_a(&m);
	m.b[2] |= 0x02; /* TC */
	assert_int_equal(parse(&m, m.n, &rep), DNS_ERR_TRUNCATED);
	assert_true(rep.truncated);
	assert_true(rep.have_question);
	assert_int_equal(rep.id, 0x1234);
	/* NXDOMAIN with an SOA in authority (skipped) */
	header(&m, 9, 0x8183, 1, 0, 1, 0);
	question(&m, "nope.example", DNS_TYPE_A);
	put16(&m, 0xc000 | 17); /* "example" in the question */
	rr_fixed(&m, 6, 900, 22);
	putbytes(&m, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(rep.n_addrs, 0);
	/* an EDNS OPT record in the additional section is skipped */
	header(&m, 1, 0x8180, 1, 1, 0, 1);
	question(&m, "example.com", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_a(&m, 0x80000001u, 1, 2, 3, 4); /* TTL with the top bit: 0 */
	put8(&m, 0);
	put16(&m, 41);
	put16(&m, 1232);
	put32(&m, 0);
	put16(&m, 0);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 1);
	assert_int_equal(rep.addrs[0].ttl, 0);
	/* duplicates are merged, keeping the smaller TTL */
	header(&m, 1, 0x8180, 1, 2, 0, 0);
	question(&m, "example.com", DNS_TYPE_A);
	put16(&m, 0xc00c);
	rr_a(&m, 50, 1, 2, 3, 4);
	put16(&m, 0xc00c);
	rr_a(&m, 40, 1, 2, 3, 4);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 1);
	assert_int_equal(rep.addrs[0].ttl, 40);
}

static void test_many_addresses_bounded(void **state)
{
	(void)state;
	struct msg m;
	unsigned n = DNS_ADDRS_MAX + 10;
	header(&m, 1, 0x8180, 1, n, 0, 0);
	question(&m, "many.x", DNS_TYPE_A);
	for (unsigned i = 0; i < n; i++) {
		put16(&m, 0xc00c);
		rr_a(&m, 100, 10, 0, (uint8_t)(i >> 8), (uint8_t)i);
	}
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, DNS_ADDRS_MAX);
	assert_int_equal(rep.addrs_dropped, 10);
	/* more answer records than remembered: the rest are ignored */
	n = DNS_ANSWER_RRS_MAX + 5;
	header(&m, 1, 0x8180, 1, n, 0, 0);
	question(&m, "many.x", DNS_TYPE_A);
	for (unsigned i = 0; i < n; i++) {
		put16(&m, 0xc00c);
		rr_a(&m, 100, 10, 0, 0, 1);
	}
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_int_equal(rep.n_addrs, 1);
	assert_int_equal(rep.rrs_ignored, 5);
}

static void test_question_case_insensitive(void **state)
{
	(void)state;
	struct msg m;
	header(&m, 1, 0x8180, 1, 1, 0, 0);
	question(&m, "ExAmple.COM", DNS_TYPE_A);
	putname(&m, "EXAMPLE.com");
	rr_a(&m, 10, 1, 1, 1, 1);
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	struct dns_name q = name("example.com");
	assert_true(dns_reply_question_is(&rep, &q, DNS_TYPE_A));
	assert_int_equal(rep.n_addrs, 1);
	struct dns_name other = name("example.org");
	assert_false(dns_reply_question_is(&rep, &other, DNS_TYPE_A));
	struct dns_name longer = name("www.example.com");
	assert_false(dns_reply_question_is(&rep, &longer, DNS_TYPE_A));
	/* class CH question */
	m.b[12 + 13 + 3] = 3;
	assert_int_equal(parse(&m, m.n, &rep), DNS_OK);
	assert_false(dns_reply_question_is(&rep, &q, DNS_TYPE_A));
}

static void test_names_text(void **state)
{
	(void)state;
	struct dns_name n;
	char buf[300];
	assert_true(dns_name_from_text("WWW.Example.com.", 16, &n));
	assert_int_equal(n.len, 17);
	assert_memory_equal(n.b, "\3www\7example\3com\0", 17);
	assert_int_equal(dns_name_to_text(&n, buf, sizeof(buf)), 15);
	assert_string_equal(buf, "www.example.com");
	assert_int_equal(dns_name_to_text(&n, buf, 15), 0); /* no room for the NUL */
	assert_false(dns_name_from_text("", 0, &n));
	assert_false(dns_name_from_text(".", 1, &n));
	assert_false(dns_name_from_text("a..b", 4, &n));
	assert_false(dns_name_from_text(".a", 2, &n));
	assert_false(dns_name_from_text("a b", 3, &n));
	assert_false(dns_name_from_text("a\x80", 2, &n));
	char l[70];
	memset(l, 'x', 64);
	assert_false(dns_name_from_text(l, 64, &n));
	assert_true(dns_name_from_text(l, 63, &n));
	char big[260];
	memset(big, 'a', sizeof(big));
	for (int i = 63; i < 260; i += 64)
		big[i] = '.';
	assert_true(dns_name_from_text(big, 253, &n));
	assert_int_equal(n.len, 255);
	assert_false(dns_name_from_text(big, 254, &n));
	/* a label holding a dot does not convert to text */
	n.len = 5;
	memcpy(n.b, "\3a.b\0", 5);
	assert_int_equal(dns_name_to_text(&n, buf, sizeof(buf)), 0);
}

static void test_build_query(void **state)
{
	(void)state;
	uint8_t buf[DNS_QUERY_MAX];
	struct dns_name n = name("example.com");
	size_t len = dns_build_query(buf, sizeof(buf), 0xabcd, &n, DNS_TYPE_AAAA);
	static const uint8_t want[] = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				       7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
				       0, 28, 0, 1};
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(dns_build_query(buf, sizeof(want) - 1, 1, &n, DNS_TYPE_A), 0);
	/* a query is not a reply; with QR set it parses back to its question */
	assert_int_equal(dns_parse_reply(buf, len, &rep), DNS_ERR_NOT_REPLY);
	buf[2] |= 0x80;
	assert_int_equal(dns_parse_reply(buf, len, &rep), DNS_OK);
	assert_true(dns_reply_question_is(&rep, &n, DNS_TYPE_AAAA));
	assert_int_equal(rep.id, 0xabcd);
	/* an invalid flat name is refused */
	struct dns_name bad = {.len = 3, .b = {5, 'a', 0}};
	assert_int_equal(dns_build_query(buf, sizeof(buf), 1, &bad, DNS_TYPE_A), 0);
}

static void test_result_strings(void **state)
{
	(void)state;
	for (int i = DNS_OK; i <= DNS_ERR_LENGTH; i++)
		assert_string_not_equal(dns_result_str((enum dns_result)i), "?");
	uint8_t *big = calloc(1, DNS_MSG_MAX + 1);
	assert_int_equal(dns_parse_reply(big, DNS_MSG_MAX + 1, &rep), DNS_ERR_LENGTH);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_with_compression),
		cmocka_unit_test(test_cname_chain),
		cmocka_unit_test(test_aaaa),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_pointer_rules),
		cmocka_unit_test(test_oversize_names),
		cmocka_unit_test(test_bad_header_and_counts),
		cmocka_unit_test(test_bad_rdata),
		cmocka_unit_test(test_cname_loops_and_depth),
		cmocka_unit_test(test_flags_rcode_tc_ttl),
		cmocka_unit_test(test_many_addresses_bounded),
		cmocka_unit_test(test_question_case_insensitive),
		cmocka_unit_test(test_names_text),
		cmocka_unit_test(test_build_query),
		cmocka_unit_test(test_result_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
