/* netcfg.c — network configuration from QubesDB / command line, vif `ip`. */
#include "qubes/netcfg.h"

#include "base/fmt.h"
#include "base/libc.h"

static enum netcfg_status read_addr(netcfg_lookup_fn lookup, void *ctx, const char *key, bool v6,
				    struct ip_addr *out, char *why, size_t why_cap)
{
	size_t len = 0;
	const char *v = lookup(ctx, key, &len);
	if (!v) {
		fmt_snprintf(why, why_cap, "%s is missing", key);
		return NETCFG_WAITING;
	}
	bool ok = v6 ? ip_parse_v6(v, len, out) : ip_parse_v4(v, len, out);
	if (!ok || ip_is_unspecified(out) || (!v6 && memcmp(ip_v4_bytes(out), "\0\0\0\0", 4) == 0)) {
		fmt_snprintf(why, why_cap, "%s holds \"%.*s\", not a usable IPv%c address", key,
			     (int)(len > 64 ? 64 : len), v, v6 ? '6' : '4');
		return NETCFG_INVALID;
	}
	return NETCFG_READY;
}

enum netcfg_status netcfg_read(netcfg_lookup_fn lookup, void *ctx, const struct cmdline *cl,
			       struct router_net_config *out, char *why, size_t why_cap)
{
	enum netcfg_status st;

	memset(out, 0, sizeof(*out));
	if (why_cap)
		why[0] = 0;
	if (cl && cmdline_manual_network(cl)) {
		out->our_ip4 = cl->ipv4;
		out->gateway4 = cl->ipv4_gw;
		out->dns[0] = cl->ipv4_dns;
		out->dns[1] = cl->ipv4_dns2;
		return NETCFG_READY;
	}
	static const char *const v4_keys[] = {"/qubes-ip", "/qubes-gateway", "/qubes-primary-dns",
					      "/qubes-secondary-dns"};
	struct ip_addr *v4_dst[] = {&out->our_ip4, &out->gateway4, &out->dns[0], &out->dns[1]};
	for (size_t i = 0; i < ARRAY_LEN(v4_keys); i++) {
		st = read_addr(lookup, ctx, v4_keys[i], false, v4_dst[i], why, why_cap);
		if (st != NETCFG_READY)
			return st;
	}
	size_t l6 = 0, g6 = 0;
	const char *ip6 = lookup(ctx, "/qubes-ip6", &l6);
	const char *gw6 = lookup(ctx, "/qubes-gateway6", &g6);
	/* IPv6 is optional (Qubes feature `ipv6`); an empty value means off. */
	if (ip6 && l6 > 0) {
		st = read_addr(lookup, ctx, "/qubes-ip6", true, &out->our_ip6, why, why_cap);
		if (st != NETCFG_READY)
			return st;
		if (!gw6 || g6 == 0) {
			fmt_snprintf(why, why_cap, "/qubes-gateway6 is missing");
			return NETCFG_WAITING;
		}
		st = read_addr(lookup, ctx, "/qubes-gateway6", true, &out->gateway6, why, why_cap);
		if (st != NETCFG_READY)
			return st;
		out->has_ip6 = true;
	}
	return NETCFG_READY;
}

bool netcfg_parse_vif_ip(const char *s, size_t len, bool *has4, struct ip_addr *ip4, bool *has6,
			 struct ip_addr *ip6)
{
	size_t i = 0;

	*has4 = *has6 = false;
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && s[i] != ' ' && s[i] != '\t')
			i++;
		struct ip_addr a;
		if (ip_parse_v4(s + start, i - start, &a)) {
			if (*has4)
				return false;
			*has4 = true;
			*ip4 = a;
		} else if (ip_parse_v6(s + start, i - start, &a)) {
			if (*has6)
				return false;
			*has6 = true;
			*ip6 = a;
		} else {
			return false;
		}
	}
	return *has4 || *has6;
}
