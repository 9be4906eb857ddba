/* mem.c — see mem.h. Map entries are untrusted in the sense that they
 * are clamped: overflowing ranges are cut, nothing above 4 GiB is used. */
#include "pvh/mem.h"

#include "base/libc.h"
#include "base/log.h"
#include "pvh/bootinfo.h"
#include "pvh/cpu.h"
#include "pvh/hypercall.h"
#include "pvh/xen_abi.h"

#define PAGE_SIZE 4096ull
#define FOUR_GIB (1ull << 32)
#define MEM_MAP_MAX 64u

extern char _end[];

struct ram_range {
	uint64_t start, end;
};

static struct ram_range ram[MEM_MAP_MAX];
static uint32_t ram_count;
static struct mem_info info;
static struct arena arena;

static void ram_add(uint64_t addr, uint64_t size)
{
	uint64_t end = size > UINT64_MAX - addr ? UINT64_MAX : addr + size;

	if (ram_count >= MEM_MAP_MAX || end <= addr)
		return;
	ram[ram_count].start = addr;
	ram[ram_count].end = end;
	ram_count++;
	info.ram_total += end - addr;
}

static void map_from_xen(void)
{
	static struct e820_entry e820[MEM_MAP_MAX];
	uint32_t n = MEM_MAP_MAX;
	long rc = hypercall_memory_map(e820, &n);

	if (rc != 0) {
		log_warn("mem: XENMEM_memory_map failed (%ld); using the start-info map", rc);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		if (e820[i].type == E820_RAM)
			ram_add(e820[i].addr, e820[i].size);
	info.from_xen = ram_count > 0;
	info.map_entries = n;
}

static void map_from_bootinfo(void)
{
	const struct bootinfo *bi = bootinfo_get();

	for (uint32_t i = 0; i < bi->memmap_entries; i++)
		if (bi->memmap[i].type == E820_RAM)
			ram_add(bi->memmap[i].addr, bi->memmap[i].size);
	info.map_entries = bi->memmap_entries;
}

bool mem_init(bool xen)
{
	uint64_t image_end = (uint64_t)(uintptr_t)_end;
	uint64_t start = (image_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	uint64_t end = 0;

	memset(&info, 0, sizeof(info));
	ram_count = 0;
	info.image_end = image_end;
	if (xen)
		map_from_xen();
	if (!ram_count)
		map_from_bootinfo();
	for (uint32_t i = 0; i < ram_count; i++) {
		log_debug("mem: RAM 0x%llx..0x%llx",
			  (unsigned long long)ram[i].start, (unsigned long long)ram[i].end);
		if (ram[i].start <= image_end && ram[i].end > start)
			end = ram[i].end;
	}
	if (end > FOUR_GIB)
		end = FOUR_GIB;
	if (xen) {
		long pages = hypercall_current_reservation();
		if (pages > 0 && (uint64_t)pages * PAGE_SIZE < info.ram_total) {
			/* memory < maxmem: populate-on-demand (spec §9.1). Only
			 * what we own is safe to touch. */
			info.pod_suspected = true;
			if (end > (uint64_t)pages * PAGE_SIZE)
				end = (uint64_t)pages * PAGE_SIZE;
			log_error("mem: the memory map shows %llu KiB but the domain owns %llu KiB; "
				  "set memory == maxmem for this qube",
				  (unsigned long long)(info.ram_total / 1024),
				  (unsigned long long)pages * PAGE_SIZE / 1024);
		}
	}
	end &= ~(PAGE_SIZE - 1);
	if (end <= start)
		return false;
	info.arena_start = start;
	info.arena_end = end;
	arena_init(&arena, cpu_phys(start), (size_t)(end - start));
	return true;
}

bool mem_overlaps_ram(uint64_t start, uint64_t end)
{
	for (uint32_t i = 0; i < ram_count; i++)
		if (ram[i].start < end && ram[i].end > start)
			return true;
	return false;
}

const struct mem_info *mem_info(void)
{
	return &info;
}

struct arena *mem_arena(void)
{
	return &arena;
}
