/* unit_router_world.h — the set-up the router unit tests share: a router
 * on a heap arena with a small table, clients whose frames land in a
 * tf_capture, rule sets from rule strings, and parsing captured output
 * with every checksum verified. Unit tests only: it asserts with cmocka
 * (the unit_ prefix keeps it out of the fuzz targets). */
#ifndef TEST_UNIT_ROUTER_WORLD_H
#define TEST_UNIT_ROUTER_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "net/addr.h"
#include "net/packet.h"

#include "frames.h"

struct tf_router {
	void *mem;
	struct arena arena;
	struct router *r;
};

/* A router for max_clients clients and conntrack_size connections, with
 * nc applied and the CSPRNG seeded if nothing seeded it yet. */
void tf_router_start(struct tf_router *w, uint32_t max_clients, uint32_t conntrack_size,
		     const struct router_net_config *nc);
void tf_router_stop(struct tf_router *w);
/* An uplink whose frames land in cap. */
void tf_router_uplink(struct tf_router *w, const uint8_t mac[6], struct tf_capture *cap);
/* An IPv4 client (domid, devid 0, MTU 1500) whose frames land in cap; its id. */
int tf_router_client(struct tf_router *w, uint32_t domid, const uint8_t mac[6],
		     const uint8_t ip4[4], struct tf_capture *cap);
/* Parses "policy=drop" plus rules (NULL-terminated) into set and installs it. */
void tf_router_rules(struct tf_router *w, struct rule_set *set, int client, bool v6,
		     const char *const *rules, const struct ip_addr *dns, size_t ndns);
/* Frame i of c, parsed with every checksum verified. */
struct packet tf_parse_ok(const struct tf_capture *c, size_t i);

#endif
