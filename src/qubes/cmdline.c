/* cmdline.c — strict parsing of the kernel command line.
 * All-or-nothing: a single bad word rejects the whole line. */
#include "qubes/cmdline.h"

#include "base/fmt.h"
#include "base/libc.h"

enum opt_kind { OPT_IP4, OPT_U32, OPT_LEVEL };

struct opt {
	const char *name;
	enum opt_kind kind;
};

static const struct opt options[] = {
	{"--ipv4", OPT_IP4},
	{"--ipv4-gw", OPT_IP4},
	{"--ipv4-dns", OPT_IP4},
	{"--ipv4-dns2", OPT_IP4},
	{"--nat-table-size", OPT_U32},
	{"--log-level", OPT_LEVEL},
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void set_defaults(struct cmdline *c)
{
	static const uint8_t dns1[4] = {10, 139, 1, 1};
	static const uint8_t dns2[4] = {10, 139, 1, 2};

	memset(c, 0, sizeof(*c));
	c->ipv4_dns = ip_from_v4(dns1);
	c->ipv4_dns2 = ip_from_v4(dns2);
	c->nat_table_size = CMDLINE_NAT_TABLE_DEFAULT;
	c->log_level = LOG_LEVEL_INFO;
}

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool apply(struct cmdline *c, size_t index, const char *v, size_t vlen, char *err,
		  size_t err_cap)
{
	const char *name = options[index].name;
	char value[64];
	size_t shown = vlen < sizeof(value) - 1 ? vlen : sizeof(value) - 1;

	memcpy(value, v, shown);
	value[shown] = 0;
	switch (options[index].kind) {
	case OPT_IP4: {
		struct ip_addr a;
		if (!ip_parse_v4(v, vlen, &a)) {
			fmt_snprintf(err, err_cap, "%s: not an IPv4 address: \"%s\"", name, value);
			return false;
		}
		struct ip_addr *dst[] = {&c->ipv4, &c->ipv4_gw, &c->ipv4_dns, &c->ipv4_dns2};
		bool *has[] = {&c->has_ipv4, &c->has_ipv4_gw, &c->has_ipv4_dns, &c->has_ipv4_dns2};
		*dst[index] = a;
		*has[index] = true;
		return true;
	}
	case OPT_U32: {
		uint32_t n;
		if (!parse_u32(v, vlen, &n) || n < CMDLINE_NAT_TABLE_MIN || n > CMDLINE_NAT_TABLE_MAX) {
			fmt_snprintf(err, err_cap, "%s: expected a number from %u to %u, got \"%s\"",
				     name, CMDLINE_NAT_TABLE_MIN, CMDLINE_NAT_TABLE_MAX, value);
			return false;
		}
		c->nat_table_size = n;
		return true;
	}
	case OPT_LEVEL: {
		enum log_level level;
		if (vlen >= sizeof(value) || !log_level_parse(value, &level)) {
			fmt_snprintf(err, err_cap, "%s: expected error, warn, info or debug, got \"%s\"",
				     name, value);
			return false;
		}
		c->log_level = level;
		return true;
	}
	}
	return false;
}

bool cmdline_parse(const char *s, size_t len, struct cmdline *out, char *err, size_t err_cap)
{
	size_t i = 0;

	set_defaults(out);
	if (err_cap)
		err[0] = 0;
	if (len > CMDLINE_MAX_LEN) {
		fmt_snprintf(err, err_cap, "command line longer than %u bytes", CMDLINE_MAX_LEN);
		return false;
	}
	while (i < len) {
		if (is_blank(s[i]) || s[i] == 0) {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && !is_blank(s[i]) && s[i] != 0)
			i++;
		const char *word = s + start;
		size_t wlen = i - start;
		const char *eq = memchr(word, '=', wlen);
		size_t nlen = eq ? (size_t)(eq - word) : wlen;
		size_t found = ARRAY_LEN(options);

		for (size_t k = 0; k < ARRAY_LEN(options); k++) {
			if (strlen(options[k].name) == nlen && memcmp(options[k].name, word, nlen) == 0)
				found = k;
		}
		if (found == ARRAY_LEN(options)) {
			char shown[48];
			size_t n = wlen < sizeof(shown) - 1 ? wlen : sizeof(shown) - 1;
			memcpy(shown, word, n);
			shown[n] = 0;
			fmt_snprintf(err, err_cap, "unknown option \"%s\"", shown);
			set_defaults(out);
			return false;
		}
		const char *v;
		size_t vlen;
		if (eq) {
			v = eq + 1;
			vlen = wlen - nlen - 1;
		} else {
			/* "--opt value": the value is the next word. */
			while (i < len && (is_blank(s[i]) || s[i] == 0))
				i++;
			size_t vstart = i;
			while (i < len && !is_blank(s[i]) && s[i] != 0)
				i++;
			v = s + vstart;
			vlen = i - vstart;
			if (vlen == 0) {
				fmt_snprintf(err, err_cap, "%s: missing value", options[found].name);
				set_defaults(out);
				return false;
			}
		}
		if (!apply(out, found, v, vlen, err, err_cap)) {
			set_defaults(out);
			return false;
		}
	}
	return true;
}

static bool v4_is_zero(const struct ip_addr *a)
{
	static const uint8_t zero[4];
	return memcmp(ip_v4_bytes(a), zero, 4) == 0;
}

bool cmdline_manual_network(const struct cmdline *c)
{
	return c->has_ipv4 && c->has_ipv4_gw && !v4_is_zero(&c->ipv4) && !v4_is_zero(&c->ipv4_gw);
}
