/* cmdline.h — the kernel command line (Qubes `kernelopts`), as the mirage
 * firewall takes it plus --log-level:
 *
 *   --ipv4=A --ipv4-gw=A --ipv4-dns=A --ipv4-dns2=A --nat-table-size=N
 *   --log-level=error|warn|info|debug
 *
 * Both "--opt=value" and "--opt value" are accepted. Anything unknown or
 * malformed is refused as a whole with a message naming the word, so a typo
 * never silently changes behaviour. Never reads past the given length. */
#ifndef QUBES_CMDLINE_H
#define QUBES_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "net/addr.h"

#define CMDLINE_NAT_TABLE_DEFAULT 5000u
#define CMDLINE_NAT_TABLE_MIN 16u
#define CMDLINE_NAT_TABLE_MAX 1000000u
#define CMDLINE_MAX_LEN 1024u

struct cmdline {
	/* Manual network configuration; unset = taken from QubesDB. */
	bool has_ipv4, has_ipv4_gw, has_ipv4_dns, has_ipv4_dns2;
	struct ip_addr ipv4, ipv4_gw, ipv4_dns, ipv4_dns2;
	uint32_t nat_table_size;
	enum log_level log_level;
};

/* Fills *out with defaults, then applies the words of s[0..len). On error
 * returns false and writes a one-line reason into err (always terminated);
 * *out then holds defaults only. */
bool cmdline_parse(const char *s, size_t len, struct cmdline *out, char *err, size_t err_cap);

/* True when the command line asks for manual network configuration (mirage's
 * rule: --ipv4 and --ipv4-gw both given and not 0.0.0.0). */
bool cmdline_manual_network(const struct cmdline *c);

#endif
