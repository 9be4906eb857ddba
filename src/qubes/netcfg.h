/* netcfg.h — the firewall's network configuration from QubesDB values and
 * the kernel command line, and the `ip` value of a client vif in XenStore.
 *
 * Pure functions over a key lookup, so the same code reads the live QubesDB
 * copy and test fixtures. Values come from dom0 (trusted, but validated
 * strictly: a bad value is reported, never half-applied). */
#ifndef QUBES_NETCFG_H
#define QUBES_NETCFG_H

#include <stdbool.h>
#include <stddef.h>

#include "fw/router.h"
#include "qubes/cmdline.h"

/* Returns the value of key (not NUL-terminated, *len set) or NULL. */
typedef const char *(*netcfg_lookup_fn)(void *ctx, const char *key, size_t *len);

enum netcfg_status {
	NETCFG_READY,   /* *out holds a complete configuration */
	NETCFG_WAITING, /* a required key is missing: wait for QubesDB changes */
	NETCFG_INVALID, /* a key holds a value that is not an address */
};

/* Reads /qubes-ip, /qubes-gateway, /qubes-primary-dns, /qubes-secondary-dns
 * (all required) and /qubes-ip6, /qubes-gateway6 (optional, both or none),
 * unless the command line asks for manual configuration, in which case it
 * comes from there (mirage's rule). On WAITING/INVALID, why names the key. */
enum netcfg_status netcfg_read(netcfg_lookup_fn lookup, void *ctx, const struct cmdline *cl,
			       struct router_net_config *out, char *why, size_t why_cap);

/* The XenStore `ip` value of a vif: one IPv4, one IPv6, or both separated by
 * blanks in either order (Qubes' libvirt template). False when it holds
 * neither, a word that is not an address, or two of one family. */
bool netcfg_parse_vif_ip(const char *s, size_t len, bool *has4, struct ip_addr *ip4, bool *has6,
			 struct ip_addr *ip6);

#endif
