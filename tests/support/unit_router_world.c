/* unit_router_world.c — see unit_router_world.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_router_world.h"

#include "base/csprng.h"

void tf_router_start(struct tf_router *w, uint32_t max_clients, uint32_t conntrack_size,
		     const struct router_net_config *nc)
{
	static const uint8_t seed[32] = {1, 2, 3};
	struct router_config cfg;

	if (!csprng_is_seeded())
		csprng_seed(seed, sizeof(seed));
	router_config_default(&cfg);
	cfg.max_clients = max_clients;
	cfg.conntrack_size = conntrack_size;
	size_t need = router_memory_needed(&cfg);
	w->mem = malloc(need);
	assert_non_null(w->mem);
	arena_init(&w->arena, w->mem, need);
	assert_true(router_init(&w->r, &w->arena, &cfg));
	router_set_net_config(w->r, nc);
}

void tf_router_stop(struct tf_router *w)
{
	free(w->mem);
	w->mem = NULL;
	w->r = NULL;
}

void tf_router_uplink(struct tf_router *w, const uint8_t mac[6], struct tf_capture *cap)
{
	struct router_uplink_params up = {.mtu = 1500, .transmit = tf_capture_tx, .transmit_ctx = cap};
	memcpy(up.mac, mac, 6);
	router_set_uplink(w->r, &up);
}

int tf_router_client(struct tf_router *w, uint32_t domid, const uint8_t mac[6],
		     const uint8_t ip4[4], struct tf_capture *cap)
{
	struct router_client_params cp = {.domid = domid, .devid = 0, .has_ip4 = true, .mtu = 1500,
					  .transmit = tf_capture_tx, .transmit_ctx = cap};
	memcpy(cp.mac, mac, 6);
	cp.ip4 = ip_from_v4(ip4);
	int id = router_add_client(w->r, &cp);
	assert_true(id >= 0);
	return id;
}

void tf_router_rules(struct tf_router *w, struct rule_set *set, int client, bool v6,
		     const char *const *rules, const struct ip_addr *dns, size_t ndns)
{
	struct rules_entry e[16];
	char keys[16][8];
	size_t n = 0;
	e[n++] = (struct rules_entry){"policy", 6, "drop", 4};
	for (size_t i = 0; rules[i]; i++) {
		assert_true(n < sizeof(e) / sizeof(e[0]));
		snprintf(keys[i], sizeof(keys[i]), "%04zu", i);
		e[n++] = (struct rules_entry){keys[i], 4, rules[i], strlen(rules[i])};
	}
	assert_int_equal(rules_parse(set, v6 ? RULE_FAMILY_V6 : RULE_FAMILY_V4, e, n, dns, ndns),
			 RULES_OK);
	router_set_rules(w->r, client, v6, set);
}

struct packet tf_parse_ok(const struct tf_capture *c, size_t i)
{
	struct packet p;
	assert_true(i < c->n);
	assert_int_equal(packet_parse(c->frame[i], c->len[i], &p), PKT_OK);
	return p;
}
