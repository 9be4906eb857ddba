/* test_netcfg.c — network configuration from QubesDB keys and the command
 * line; the vif `ip` value in all the forms dom0 writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "qubes/netcfg.h"

struct kv {
	const char *key, *value;
};

static const char *lookup(void *ctx, const char *key, size_t *len)
{
	for (const struct kv *kv = ctx; kv->key; kv++) {
		if (strcmp(kv->key, key) == 0) {
			*len = strlen(kv->value);
			return kv->value;
		}
	}
	return NULL;
}

static struct ip_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t x[4] = {a, b, c, d};
	return ip_from_v4(x);
}

static const struct kv full[] = {
	{"/qubes-ip", "10.137.0.6"},       {"/qubes-gateway", "10.137.0.5"},
	{"/qubes-primary-dns", "10.139.1.1"}, {"/qubes-secondary-dns", "10.139.1.2"},
	{"/qubes-netmask", "255.255.255.255"}, {NULL, NULL},
};

static void test_complete_config(void **state)
{
	(void)state;
	struct router_net_config nc;
	char why[96];
	assert_int_equal(netcfg_read(lookup, (void *)full, NULL, &nc, why, sizeof(why)), NETCFG_READY);
	struct ip_addr want = v4(10, 137, 0, 6);
	assert_true(ip_equal(&nc.our_ip4, &want));
	want = v4(10, 137, 0, 5);
	assert_true(ip_equal(&nc.gateway4, &want));
	want = v4(10, 139, 1, 2);
	assert_true(ip_equal(&nc.dns[1], &want));
	assert_false(nc.has_ip6);
}

static void test_each_missing_key_waits(void **state)
{
	(void)state;
	const char *keys[] = {"/qubes-ip", "/qubes-gateway", "/qubes-primary-dns",
			      "/qubes-secondary-dns"};
	for (size_t k = 0; k < 4; k++) {
		struct kv partial[8];
		size_t n = 0;
		for (const struct kv *kv = full; kv->key; kv++)
			if (strcmp(kv->key, keys[k]) != 0)
				partial[n++] = *kv;
		partial[n] = (struct kv){NULL, NULL};
		struct router_net_config nc;
		char why[96];
		assert_int_equal(netcfg_read(lookup, partial, NULL, &nc, why, sizeof(why)),
				 NETCFG_WAITING);
		assert_non_null(strstr(why, keys[k]));
	}
}

static void test_bad_values_are_invalid(void **state)
{
	(void)state;
	const char *bad[] = {"", "10.137.0", "0.0.0.0", "fd09::1", "10.137.0.6 ", "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kv cfg[6];
		memcpy(cfg, full, sizeof(cfg));
		cfg[1].value = bad[i];
		struct router_net_config nc;
		char why[96];
		assert_int_equal(netcfg_read(lookup, cfg, NULL, &nc, why, sizeof(why)), NETCFG_INVALID);
		assert_non_null(strstr(why, "/qubes-gateway"));
	}
}

static void test_ipv6_optional_and_paired(void **state)
{
	(void)state;
	struct kv cfg[9];
	memcpy(cfg, full, 5 * sizeof(cfg[0]));
	cfg[5] = (struct kv){"/qubes-ip6", "fd09:24ef:4179::a89:6"};
	cfg[6] = (struct kv){NULL, NULL};
	struct router_net_config nc;
	char why[96];
	assert_int_equal(netcfg_read(lookup, cfg, NULL, &nc, why, sizeof(why)), NETCFG_WAITING);
	assert_non_null(strstr(why, "/qubes-gateway6"));
	cfg[6] = (struct kv){"/qubes-gateway6", "fd09:24ef:4179::a89:5"};
	cfg[7] = (struct kv){NULL, NULL};
	assert_int_equal(netcfg_read(lookup, cfg, NULL, &nc, why, sizeof(why)), NETCFG_READY);
	assert_true(nc.has_ip6);
	assert_false(ip_is_v4(&nc.our_ip6));
	cfg[5].value = "";
	assert_int_equal(netcfg_read(lookup, cfg, NULL, &nc, why, sizeof(why)), NETCFG_READY);
	assert_false(nc.has_ip6);
	cfg[5].value = "10.0.0.1";
	assert_int_equal(netcfg_read(lookup, cfg, NULL, &nc, why, sizeof(why)), NETCFG_INVALID);
}

static void test_manual_mode_ignores_qubesdb(void **state)
{
	(void)state;
	struct cmdline cl;
	char err[96];
	const char *line = "--ipv4=192.168.1.2 --ipv4-gw=192.168.1.1";
	assert_true(cmdline_parse(line, strlen(line), &cl, err, sizeof(err)));
	struct kv empty[] = {{NULL, NULL}};
	struct router_net_config nc;
	char why[96];
	assert_int_equal(netcfg_read(lookup, empty, &cl, &nc, why, sizeof(why)), NETCFG_READY);
	struct ip_addr want = v4(192, 168, 1, 1);
	assert_true(ip_equal(&nc.gateway4, &want));
	want = v4(10, 139, 1, 1);
	assert_true(ip_equal(&nc.dns[0], &want));
	/* Without the gateway the command line is not manual mode. */
	line = "--ipv4=192.168.1.2";
	assert_true(cmdline_parse(line, strlen(line), &cl, err, sizeof(err)));
	assert_int_equal(netcfg_read(lookup, empty, &cl, &nc, why, sizeof(why)), NETCFG_WAITING);
}

static void test_vif_ip_forms(void **state)
{
	(void)state;
	bool h4, h6;
	struct ip_addr a4, a6;
	const char *s = "10.137.0.12";
	assert_true(netcfg_parse_vif_ip(s, strlen(s), &h4, &a4, &h6, &a6));
	assert_true(h4 && !h6);
	s = "10.137.0.12 fd09:24ef:4179::a89:c";
	assert_true(netcfg_parse_vif_ip(s, strlen(s), &h4, &a4, &h6, &a6));
	assert_true(h4 && h6);
	struct ip_addr want = v4(10, 137, 0, 12);
	assert_true(ip_equal(&a4, &want));
	s = "fd09:24ef:4179::a89:c 10.137.0.12";
	assert_true(netcfg_parse_vif_ip(s, strlen(s), &h4, &a4, &h6, &a6));
	assert_true(h4 && h6 && ip_equal(&a4, &want));
	s = "fd09:24ef:4179::a89:c";
	assert_true(netcfg_parse_vif_ip(s, strlen(s), &h4, &a4, &h6, &a6));
	assert_true(!h4 && h6);
	const char *bad[] = {"", " ", "10.137.0.12 10.137.0.13", "::1 ::2", "10.137.0.12 junk",
			     "10.137.0.1x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(netcfg_parse_vif_ip(bad[i], strlen(bad[i]), &h4, &a4, &h6, &a6));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete_config),
		cmocka_unit_test(test_each_missing_key_waits),
		cmocka_unit_test(test_bad_values_are_invalid),
		cmocka_unit_test(test_ipv6_optional_and_paired),
		cmocka_unit_test(test_manual_mode_ignores_qubesdb),
		cmocka_unit_test(test_vif_ip_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
