/* fuzz_vif_ip.c — the XenStore `ip` value of a client vif (written by the
 * toolstack, but a compromised backend path must not hurt us either). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qubes/netcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	bool h4, h6;
	struct ip_addr a4, a6;
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (netcfg_parse_vif_ip(copy, size, &h4, &a4, &h6, &a6)) {
		if (!h4 && !h6)
			abort();
		if (h4 && !ip_is_v4(&a4))
			abort();
	}
	free(copy);
	return 0;
}
