/* bootinfo.h — what the PVH loader handed us in struct hvm_start_info
 * (spec §1.3), copied into static storage at the very start.
 *
 * The start-info area lies in RAM we later give to the arena (Xen puts it
 * right after the image), so the command line and memory map are copied
 * out before anything else runs and never read from there again. The
 * command line is truncated at BOOTINFO_CMDLINE_MAX bytes (reported). */
#ifndef PVH_BOOTINFO_H
#define PVH_BOOTINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvh/xen_abi.h"

#define BOOTINFO_CMDLINE_MAX 2048u
#define BOOTINFO_MEMMAP_MAX 64u

struct bootinfo {
	uint32_t start_info_paddr;
	uint32_t version;
	char cmdline[BOOTINFO_CMDLINE_MAX];
	size_t cmdline_len;
	bool cmdline_truncated;
	struct hvm_memmap_table_entry memmap[BOOTINFO_MEMMAP_MAX];
	uint32_t memmap_entries;
	bool memmap_truncated;
};

/* Copies from the hvm_start_info at paddr (magic already checked by
 * boot.S). */
void bootinfo_capture(uint32_t paddr);

const struct bootinfo *bootinfo_get(void);

#endif
