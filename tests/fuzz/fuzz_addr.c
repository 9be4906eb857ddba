/* fuzz_addr.c — address text parsers against glibc's inet_pton.
 *
 * The input is the text itself (libFuzzer hands an exact-size buffer, so
 * ASan sees any read past len). Invariants: ip_parse_v4/v6 accept exactly
 * what inet_pton accepts and produce the same bytes; ip_parse agrees with
 * the family parsers; formatted text parses back to the same address;
 * ip_prefix_parse results have host bits clear, contain their own address
 * and stay in range. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/addr.h"

#define CHECK(c)          \
	do {              \
		if (!(c)) \
			abort(); \
	} while (0)

static void check_prefix(const char *s, size_t len, bool v6)
{
	struct ip_prefix p;

	if (!ip_prefix_parse(s, len, v6, &p))
		return;
	bool pv4 = ip_is_v4(&p.addr);
	CHECK(p.len <= (pv4 ? 32 : 128));
	if (!v6)
		CHECK(pv4);
	CHECK(ip_prefix_contains(&p, &p.addr));
	/* Host bits are clear: the last address bit past the prefix is 0. */
	unsigned bits = pv4 ? 96u + p.len : p.len;
	for (unsigned b = bits; b < 128; b++)
		CHECK((p.addr.b[b / 8] & (0x80u >> (b % 8))) == 0);
	/* Flipping any bit inside the prefix leaves it; outside stays in. */
	for (unsigned b = pv4 ? 96 : 0; b < 128; b++) {
		struct ip_addr x = p.addr;
		x.b[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
		CHECK(ip_prefix_contains(&p, &x) == (b >= bits));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char z[128];
	uint8_t ref[16];
	struct ip_addr a, b;

	bool has_nul = memchr(data, 0, size) != NULL;
	bool short_enough = size < sizeof(z);
	if (short_enough) {
		memcpy(z, data, size);
		z[size] = '\0';
	}

	bool ok4 = ip_parse_v4(s, size, &a);
	if (has_nul || !short_enough) {
		CHECK(!ok4);
	} else {
		CHECK(ok4 == (inet_pton(AF_INET, z, ref) == 1));
		if (ok4)
			CHECK(ip_is_v4(&a) && memcmp(ip_v4_bytes(&a), ref, 4) == 0);
	}
	if (ok4) {
		char buf[46];
		ip_format(buf, sizeof(buf), &a);
		CHECK(ip_parse_v4(buf, strlen(buf), &b) && ip_equal(&a, &b));
	}

	bool ok6 = ip_parse_v6(s, size, &a);
	if (has_nul || !short_enough) {
		CHECK(!ok6);
	} else {
		CHECK(ok6 == (inet_pton(AF_INET6, z, ref) == 1));
		if (ok6)
			CHECK(memcmp(a.b, ref, 16) == 0);
	}
	if (ok6) {
		char buf[46];
		ip_format(buf, sizeof(buf), &a);
		CHECK(ip_parse(buf, strlen(buf), &b) && ip_equal(&a, &b));
	}

	bool ok = ip_parse(s, size, &b);
	CHECK(ok == (memchr(s, ':', size) ? ok6 : ok4));

	check_prefix(s, size, false);
	check_prefix(s, size, true);

	char small[8];
	if (ok)
		ip_format(small, (size_t)(size % sizeof(small)), &b);
	return 0;
}
