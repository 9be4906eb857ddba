/* bootinfo.c — see bootinfo.h. Addresses from the start info are used
 * only when they lie in the identity-mapped first 4 GiB. */
#include "pvh/bootinfo.h"

#include "base/libc.h"
#include "pvh/cpu.h"

#define FOUR_GIB (1ull << 32)

static struct bootinfo info;

static bool below_4g(uint64_t addr, uint64_t len)
{
	return addr != 0 && addr < FOUR_GIB && len <= FOUR_GIB - addr;
}

void bootinfo_capture(uint32_t paddr)
{
	const volatile struct hvm_start_info *si =
		(const volatile struct hvm_start_info *)cpu_phys(paddr);
	uint64_t cmdline = si->cmdline_paddr;

	memset(&info, 0, sizeof(info));
	info.start_info_paddr = paddr;
	info.version = si->version;
	if (below_4g(cmdline, 1)) {
		const volatile char *s = (const volatile char *)cpu_phys(cmdline);
		size_t n = 0;
		while (n < BOOTINFO_CMDLINE_MAX - 1 && below_4g(cmdline + n, 1) && s[n])
			n++;
		for (size_t i = 0; i < n; i++)
			info.cmdline[i] = s[i];
		info.cmdline_len = n;
		info.cmdline_truncated = n == BOOTINFO_CMDLINE_MAX - 1 && s[n] != 0;
	}
	if (info.version >= 1) {
		uint64_t map = si->memmap_paddr;
		uint32_t entries = si->memmap_entries;
		if (entries > BOOTINFO_MEMMAP_MAX) {
			entries = BOOTINFO_MEMMAP_MAX;
			info.memmap_truncated = true;
		}
		if (entries &&
		    below_4g(map, (uint64_t)entries * sizeof(struct hvm_memmap_table_entry))) {
			memcpy(info.memmap, cpu_phys(map),
			       entries * sizeof(struct hvm_memmap_table_entry));
			info.memmap_entries = entries;
		}
	}
}

const struct bootinfo *bootinfo_get(void)
{
	return &info;
}
