/* fuzz_mac.c — a vif's MAC text from XenStore (peer-written): no crash, no
 * read past the terminator, and what parses prints back the same (lower
 * case). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xen/netdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint8_t mac[6];
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (netdev_parse_mac(s, mac)) {
		char back[18];
		snprintf(back, sizeof(back), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
			 mac[3], mac[4], mac[5]);
		if (strcasecmp(back, s) != 0)
			abort();
	}
	free(s);
	return 0;
}
