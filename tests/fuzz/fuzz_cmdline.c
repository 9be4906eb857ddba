/* fuzz_cmdline.c — the kernel command line from dom0's kernelopts.
 * Invariants: no crash; a rejected line leaves defaults and a reason. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qubes/cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdline c;
	char err[96];
	/* Copy so ASan catches any read past the given length. */
	char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (cmdline_parse(copy, size, &c, err, sizeof(err))) {
		if (c.nat_table_size < CMDLINE_NAT_TABLE_MIN || c.nat_table_size > CMDLINE_NAT_TABLE_MAX)
			abort();
	} else {
		if (err[0] == 0 || c.has_ipv4 || c.nat_table_size != CMDLINE_NAT_TABLE_DEFAULT)
			abort();
	}
	free(copy);
	return 0;
}
