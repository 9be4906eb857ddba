/* dns.h — DNS messages (RFC 1035): the A/AAAA queries the resolver sends
 * and the replies it reads, its own and those the clients get.
 *
 * Only what a stub resolver needs: one question, IN class, A (1), AAAA (28)
 * and CNAME (5) records; every other record is checked for shape and
 * skipped. Names are compared in a flat, lowercased wire form (length-
 * prefixed labels, no compression), so "ExAmple.COM" equals "example.com".
 *
 * Validation is strict (RFC 1035 §3.1, §4.1, §4.1.4; RFC 2181 §8, §10.1):
 * labels 1..63 bytes, names ≤ 255 bytes of wire form, label types 01/10
 * refused, a compression pointer must point into the message after the
 * header and strictly before every position the name was read from so far
 * (so each jump goes further back and a loop is impossible), at most
 * DNS_POINTER_JUMPS_MAX jumps, counts that cannot fit the length refused at
 * once, rdata lengths checked against the type, and nothing may follow the
 * last record. A TTL with the top bit set counts as 0 (RFC 2181 §8).
 *
 * The parser never reads past len, never allocates, never loops without a
 * bound and keeps no state: it is a pure function of its input. */
#ifndef NET_DNS_H
#define NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

#define DNS_PORT 53
#define DNS_HDR_LEN 12
#define DNS_MSG_MAX 65535 /* longest message (TCP length field) */
#define DNS_LABEL_MAX 63
#define DNS_NAME_WIRE_MAX 255 /* RFC 1035 §3.1, root byte included */
#define DNS_NAME_TEXT_MAX 253 /* text form without the trailing dot */
#define DNS_POINTER_JUMPS_MAX 64
/* CNAME links followed from the question name (a chain longer than this,
 * or a loop, gives DNS_ERR_CNAME). */
#define DNS_CNAME_DEPTH_MAX 8
/* Addresses kept from one answer; more are counted in addrs_dropped. */
#define DNS_ADDRS_MAX 32
/* A, AAAA and CNAME records of class IN remembered for chain following;
 * later ones are ignored (and counted in rrs_ignored). */
#define DNS_ANSWER_RRS_MAX 64
/* Longest query dns_build_query writes: header + name + type + class. */
#define DNS_QUERY_MAX (DNS_HDR_LEN + DNS_NAME_WIRE_MAX + 4)

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
#define DNS_RCODE_REFUSED 5

/* A name in flat wire form: labels with their length bytes, lowercased
 * (ASCII A-Z only), ending with the root byte 0; len counts that byte. */
struct dns_name {
	uint8_t len;
	uint8_t b[DNS_NAME_WIRE_MAX];
};

struct dns_addr {
	struct ip_addr addr; /* IPv4 as IPv4-mapped, like everywhere */
	uint32_t ttl;        /* seconds, the smaller of the record's and the chain's */
};

/* What a reply says. Fields are filled in parse order: id/flags/rcode/
 * truncated once the header is read, have_question once the question is
 * read, the answer fields only when the result is DNS_OK. */
struct dns_reply {
	uint16_t id;
	uint16_t flags; /* the raw header flags */
	uint8_t rcode;
	bool truncated; /* TC */
	bool have_question;
	uint16_t qtype, qclass;
	struct dns_name qname;
	/* Addresses of type qtype owned by the end of the CNAME chain that
	 * starts at qname, deduplicated, in message order. */
	uint16_t n_addrs;
	struct dns_addr addrs[DNS_ADDRS_MAX];
	uint32_t min_ttl;    /* over the chain's CNAMEs and the kept addresses; 0 if none */
	uint8_t cname_depth; /* CNAME links followed */
	uint16_t addrs_dropped;
	uint16_t rrs_ignored;
};

enum dns_result {
	DNS_OK = 0,
	DNS_ERR_SHORT,     /* the message ends inside a field or a record */
	DNS_ERR_NOT_REPLY, /* QR is 0 */
	DNS_ERR_OPCODE,    /* opcode other than QUERY */
	DNS_ERR_COUNTS,    /* QDCOUNT != 1, or counts that cannot fit the length */
	DNS_ERR_NAME,      /* a label or name too long, a reserved label type */
	DNS_ERR_POINTER,   /* a compression pointer not strictly backwards, or too many */
	DNS_ERR_RECORD,    /* rdata length wrong for its type, a CNAME rdata not one name */
	DNS_ERR_TRAILING,  /* bytes after the last record */
	DNS_ERR_TRUNCATED, /* TC set: header and question parsed, records not read */
	DNS_ERR_CNAME,     /* CNAME chain longer than DNS_CNAME_DEPTH_MAX (or a loop) */
	DNS_ERR_LENGTH,    /* longer than DNS_MSG_MAX */
};

const char *dns_result_str(enum dns_result r);

/* Text ("www.Example.com", one optional trailing dot) to flat form. False
 * for an empty name or label, a label over 63 bytes, a name over 255 bytes
 * of wire form, or a byte outside printable ASCII (0x21..0x7e). */
bool dns_name_from_text(const char *s, size_t len, struct dns_name *out);

/* Flat form to text without the trailing dot, NUL-terminated; returns the
 * length, or 0 when cap is short, the name is the root, or a label holds a
 * '.' or a byte outside printable ASCII (it would not read back the same). */
size_t dns_name_to_text(const struct dns_name *n, char *buf, size_t cap);

bool dns_name_equal(const struct dns_name *a, const struct dns_name *b);

/* A query: id, RD set, one question (name, qtype, IN). Returns its length,
 * or 0 when cap is short or the name is not a valid flat name. */
size_t dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const struct dns_name *name,
		       uint16_t qtype);

/* Parses a reply. DNS_OK: the whole message is valid and out holds the
 * answer to its question (possibly no address: look at rcode and n_addrs).
 * Any error: the fields filled so far stay valid (see the struct), the
 * rest is unspecified. */
enum dns_result dns_parse_reply(const uint8_t *p, size_t len, struct dns_reply *out);

/* True when out's question is (name, qtype, IN), names compared
 * case-insensitively. */
bool dns_reply_question_is(const struct dns_reply *r, const struct dns_name *name,
			   uint16_t qtype);

#endif
