/* platform.c — kmain: the PVH start-up sequence (spec §1.4 "Then in C"),
 * platform_panic for base/panic.h, then the hand-over to pvh_app_run (the
 * application and its event loop, pvh_app.c).
 *
 * Order matters: the IDT first (so faults are reported), then the start
 * info is copied out (it lies in RAM the arena will hand out), then Xen
 * detection and the console, and only then anything that logs. A bad
 * command line stops the domain: a typo must never silently change the
 * firewall's behaviour. */
#include "pvh/platform.h"

#include "base/arena.h"
#include "base/clock.h"
#include "base/csprng.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "base/panic.h"
#include "net/addr.h"
#include "pvh/bootinfo.h"
#include "pvh/console.h"
#include "pvh/cpu.h"
#include "pvh/entropy.h"
#include "pvh/evtchn.h"
#include "pvh/hypercall.h"
#include "pvh/mem.h"
#include "pvh/pvh_app.h"
#include "pvh/time.h"
#include "qubes/cmdline.h"

#ifndef FW_VERSION
#define FW_VERSION "unknown"
#endif

static struct xen_info xen;
static struct cmdline options;

bool platform_xen_present(void)
{
	return xen.present;
}

void platform_drain_log(void)
{
	char line[LOG_LINE_MAX + 16];
	size_t n;

	while ((n = log_drain_line(line, sizeof(line) - 1)) > 0) {
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
		line[n] = '\n';
		console_write(line, n + 1);
	}
	console_flush();
}

static _Noreturn void stop(uint32_t xen_reason, uint8_t qemu_code)
{
	if (xen.present) {
		/* SCHEDOP_shutdown does not return; if it did (refused), try
		 * again as a crash, then halt. */
		(void)hypercall_sched_shutdown(xen_reason);
		(void)hypercall_sched_shutdown(SHUTDOWN_crash);
	} else {
		cpu_outb(PLATFORM_DEBUG_EXIT_PORT, qemu_code);
	}
	cpu_halt_forever();
}

_Noreturn void platform_poweroff(void)
{
	platform_drain_log();
	console_flush_sync();
	stop(SHUTDOWN_poweroff, PLATFORM_EXIT_HALT);
}

_Noreturn void platform_stop_crash(void)
{
	console_flush_sync();
	stop(SHUTDOWN_crash, PLATFORM_EXIT_ERROR);
}

_Noreturn void platform_panic(const char *message)
{
	static int panicking;

	if (!panicking++) {
		platform_drain_log(); /* the context that led here */
		console_printf_sync("qubes-firewall: PANIC: %s\n", message);
	}
	platform_stop_crash();
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_LEVEL_ERROR:
		return "error";
	case LOG_LEVEL_WARN:
		return "warn";
	case LOG_LEVEL_INFO:
		return "info";
	case LOG_LEVEL_DEBUG:
		return "debug";
	}
	return "?";
}

static void print_options(const struct cmdline *c)
{
	console_printf("qubes-firewall: options: ipv4=%s ipv4-gw=%s ipv4-dns=%s ipv4-dns2=%s "
		       "nat-table-size=%u log-level=%s\n",
		       c->has_ipv4 ? IP_STR(&c->ipv4) : "(qubesdb)",
		       c->has_ipv4_gw ? IP_STR(&c->ipv4_gw) : "(qubesdb)",
		       c->has_ipv4_dns ? IP_STR(&c->ipv4_dns) : "(qubesdb)",
		       c->has_ipv4_dns2 ? IP_STR(&c->ipv4_dns2) : "(qubesdb)",
		       (unsigned)c->nat_table_size, level_name(c->log_level));
}

static void parse_cmdline(void)
{
	const struct bootinfo *bi = bootinfo_get();
	char err[160];

	console_printf("qubes-firewall: command line: \"%.*s\"%s\n", (int)bi->cmdline_len,
		       bi->cmdline, bi->cmdline_truncated ? " (truncated)" : "");
	if (!cmdline_parse(bi->cmdline, bi->cmdline_len, &options, err, sizeof(err))) {
		console_printf("qubes-firewall: bad command line: %s; halting\n", err);
		platform_stop_crash();
	}
	log_set_level(options.log_level);
	print_options(&options);
}

static void setup_xen(void)
{
	if (!hypercall_init(&xen))
		panic("Xen: the hypercall page was not filled in (MSR 0x%x)",
		      (unsigned)xen.hypercall_msr);
	if (!console_use_xen_ring())
		console_use_debug_ports(); /* Xen forwards 0xe9 to its own log */
	if (!evtchn_init())
		panic("Xen: cannot map shared_info");
	time_init(evtchn_shared_info());
}

static void setup_memory_and_entropy(void)
{
	struct entropy_report er;
	const struct mem_info *mi;

	if (!mem_init(xen.present))
		panic("mem: no RAM region holds the image (end 0x%llx)",
		      (unsigned long long)mem_info()->image_end);
	mi = mem_info();
	log_info("mem: %llu KiB RAM in %u map entries (%s); arena 0x%llx..0x%llx (%llu KiB)",
		 (unsigned long long)(mi->ram_total / 1024), (unsigned)mi->map_entries,
		 mi->from_xen ? "XENMEM_memory_map" : "hvm_start_info",
		 (unsigned long long)mi->arena_start, (unsigned long long)mi->arena_end,
		 (unsigned long long)((mi->arena_end - mi->arena_start) / 1024));

	entropy_seed_csprng(&er);
	if (er.strong)
		log_info("entropy: seeded from %u hardware words (%s)", (unsigned)er.hw_words,
			 er.rdseed ? "RDSEED" : "RDRAND");
	else
		log_warn("entropy: only %u hardware words (RDSEED %s, RDRAND %s); "
			 "seeded mostly from TSC jitter, which is weak",
			 (unsigned)er.hw_words, er.rdseed ? "yes" : "no", er.rdrand ? "yes" : "no");
}

#ifdef PVH_TEST_FAULT
/* Test builds only (tests/xen/test_smoke.py): a read beyond the 4 GiB
 * identity map page-faults, which must produce the exception report. */
__attribute__((noinline)) static uint64_t test_fault_read(uint64_t addr)
{
	return *(volatile uint64_t *)cpu_phys(addr);
}

__attribute__((noinline)) static void test_fault(void)
{
	console_printf("qubes-firewall: PVH_TEST_FAULT build: faulting on purpose\n");
	log_info("fault test read: %llu", (unsigned long long)test_fault_read(0x5000000000ull));
}
#endif

_Noreturn void kmain(uint32_t start_info_paddr)
{
	uint32_t reason;

	cpu_init();
	bootinfo_capture(start_info_paddr);
	hypercall_detect(&xen);
	if (xen.present) {
		setup_xen();
	} else {
		time_init(NULL);
		console_use_debug_ports();
	}
	clock_set_now(time_now_ns());
	clock_set_wall(time_wall_ns());

	console_printf("qubes-firewall %s (Xen PVH unikernel), CPU %s\n", FW_VERSION,
		       cpu_features()->vendor);
	parse_cmdline();
#ifdef PVH_TEST_FAULT
	test_fault();
#endif
	setup_memory_and_entropy();
	platform_drain_log();

	if (!xen.present) {
		console_printf("qubes-firewall: no Xen hypervisor detected; halting\n");
		platform_poweroff();
	}
	log_info("Xen %u.%u, hypercall MSR 0x%x, %s, console %s, clock %s",
		 (unsigned)xen.major, (unsigned)xen.minor, (unsigned)xen.hypercall_msr,
		 xen.has_domid ? "domid known" : "domid unknown",
		 console_on_xen_ring() ? "PV ring" : "debug port 0xe9",
		 time_is_pvclock() ? "pvclock" : "TSC");
	console_printf("qubes-firewall: Xen detected\n");
	reason = pvh_app_run(&options, &xen);
	log_info("qubes-firewall: stopping (%s)", reason == SHUTDOWN_reboot ? "reboot" : "poweroff");
	platform_drain_log();
	console_flush_sync();
	stop(reason, PLATFORM_EXIT_HALT);
}
