/* fuzz_dns.c — DNS reply parser (src/net/dns.c), fed by the DNS servers
 * (and whatever sits on the uplink) and by replies to clients.
 *
 * Input: one DNS message. Invariants: never crashes or reads past the
 * input; on success the answer is within its bounds, every address is of
 * the asked family, the question name is a valid flat name whose text form
 * (when it has one) reads back to the same name, and a query built from it
 * parses back (with QR set) to the same question. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static struct dns_reply rep, again;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum dns_result r = dns_parse_reply(data, size, &rep);
	CHECK(dns_result_str(r) != NULL);
	if (r == DNS_ERR_TRUNCATED)
		CHECK(rep.truncated && rep.have_question);
	if (!rep.have_question)
		return 0;
	CHECK(rep.qname.len >= 1 && rep.qname.len <= DNS_NAME_WIRE_MAX);
	char text[DNS_NAME_TEXT_MAX + 2];
	size_t tl = dns_name_to_text(&rep.qname, text, sizeof(text));
	if (tl > 0) {
		struct dns_name back;
		CHECK(dns_name_from_text(text, tl, &back));
		CHECK(dns_name_equal(&back, &rep.qname));
	}
	if (rep.qname.len > 1) {
		uint8_t q[DNS_QUERY_MAX];
		size_t ql = dns_build_query(q, sizeof(q), rep.id, &rep.qname, rep.qtype);
		CHECK(ql == (size_t)DNS_HDR_LEN + rep.qname.len + 4);
		q[2] |= 0x80;
		CHECK(dns_parse_reply(q, ql, &again) == DNS_OK);
		CHECK(dns_reply_question_is(&again, &rep.qname, rep.qtype));
	}
	if (r != DNS_OK)
		return 0;
	CHECK(rep.n_addrs <= DNS_ADDRS_MAX);
	CHECK(rep.cname_depth <= DNS_CNAME_DEPTH_MAX);
	CHECK(rep.n_addrs == 0 || rep.qtype == DNS_TYPE_A || rep.qtype == DNS_TYPE_AAAA);
	for (size_t i = 0; i < rep.n_addrs; i++) {
		if (rep.qtype == DNS_TYPE_A)
			CHECK(ip_is_v4(&rep.addrs[i].addr));
		CHECK(rep.addrs[i].ttl >= rep.min_ttl);
		CHECK(rep.addrs[i].ttl < 0x80000000u);
		for (size_t j = 0; j < i; j++)
			CHECK(!ip_equal(&rep.addrs[i].addr, &rep.addrs[j].addr));
	}
	return 0;
}
