/* cpu.c — GDT/TSS/IDT set-up and the fatal exception reporter.
 *
 * Exceptions are never recovered from: the reporter prints vector, error
 * code, RIP, RSP, CR2, the general registers and an rbp-chain backtrace
 * straight to the console (bypassing the log ring, which may be the thing
 * that broke), then stops the domain. The backtrace only follows frames
 * inside the boot stack, so a corrupt rbp cannot fault the reporter. */
#include "pvh/cpu.h"

#include <stddef.h>

#include "base/libc.h"
#include "pvh/console.h"
#include "pvh/platform.h"

#define GDT_CODE64 0x08u
#define GDT_DATA 0x10u
#define GDT_TSS 0x18u
#define IST_STACK_SIZE 8192u
#define BACKTRACE_MAX 16

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64) == 0x68, "64-bit TSS size");

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate size");

struct descriptor_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern const uint64_t cpu_exception_stubs[32];
extern char cpu_upcall_entry[];
extern char cpu_spurious_entry[];
extern char boot_stack_bottom[];
extern char boot_stack_top[];

static uint64_t gdt[5] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static uint8_t ist_stack[IST_STACK_SIZE] __attribute__((aligned(16)));
static struct cpu_features features;

static void idt_set(unsigned vector, uint64_t handler, uint8_t ist)
{
	struct idt_gate *g = &idt[vector];

	g->offset_lo = (uint16_t)handler;
	g->selector = GDT_CODE64;
	g->ist = ist;
	g->type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	g->offset_mid = (uint16_t)(handler >> 16);
	g->offset_hi = (uint32_t)(handler >> 32);
	g->reserved = 0;
}

static void gdt_load(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	uint64_t limit = sizeof(tss) - 1;
	struct descriptor_ptr p;

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull;
	gdt[2] = 0x00cf93000000ffffull;
	/* Available 64-bit TSS (type 9), present; 16 bytes. */
	gdt[3] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
		 ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[4] = base >> 32;

	tss.ist[0] = (uint64_t)(uintptr_t)(ist_stack + sizeof(ist_stack));
	tss.iomap_base = sizeof(tss);

	p.limit = sizeof(gdt) - 1;
	p.base = (uint64_t)(uintptr_t)gdt;
	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movl %2, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%ss\n\t"
			 "ltr %w3"
			 :
			 : "m"(p), "i"((uint64_t)GDT_CODE64), "i"(GDT_DATA), "r"(GDT_TSS)
			 : "rax", "memory");
}

static void features_read(void)
{
	struct cpuid_regs r = cpu_cpuid(0, 0);
	uint32_t max_leaf = r.eax;
	uint32_t max_ext;

	memcpy(features.vendor, &r.ebx, 4);
	memcpy(features.vendor + 4, &r.edx, 4);
	memcpy(features.vendor + 8, &r.ecx, 4);
	features.vendor[12] = 0;

	r = cpu_cpuid(1, 0);
	features.rdrand = (r.ecx >> 30) & 1;
	if (max_leaf >= 7) {
		r = cpu_cpuid(7, 0);
		features.rdseed = (r.ebx >> 18) & 1;
	}
	if (max_leaf >= 0x15) {
		r = cpu_cpuid(0x15, 0);
		if (r.eax && r.ebx && r.ecx)
			features.tsc_khz = (uint32_t)((uint64_t)r.ecx * r.ebx / r.eax / 1000);
	}
	if (!features.tsc_khz && max_leaf >= 0x16) {
		r = cpu_cpuid(0x16, 0);
		features.tsc_khz = (r.eax & 0xffff) * 1000u;
	}
	max_ext = cpu_cpuid(0x80000000u, 0).eax;
	if (max_ext >= 0x80000007u)
		features.invariant_tsc = (cpu_cpuid(0x80000007u, 0).edx >> 8) & 1;
}

void cpu_init(void)
{
	struct descriptor_ptr p;

	features_read();
	gdt_load();
	for (unsigned v = 0; v < 32; v++) {
		/* Double fault, NMI and machine check get the IST stack: they
		 * can arrive on a broken stack. */
		uint8_t ist = (v == 2 || v == 8 || v == 18) ? 1 : 0;
		idt_set(v, cpu_exception_stubs[v], ist);
	}
	idt_set(CPU_UPCALL_VECTOR, (uint64_t)(uintptr_t)cpu_upcall_entry, 0);
	idt_set(CPU_SPURIOUS_VECTOR, (uint64_t)(uintptr_t)cpu_spurious_entry, 0);
	p.limit = sizeof(idt) - 1;
	p.base = (uint64_t)(uintptr_t)idt;
	__asm__ volatile("lidt %0" : : "m"(p) : "memory");
}

const struct cpu_features *cpu_features(void)
{
	return &features;
}

bool cpu_lapic_enable(void)
{
	uint64_t base = cpu_rdmsr(MSR_IA32_APIC_BASE);

	if (!(base & (1u << 11)) || (base & ~0xfffull & 0xffffffffffull) != LAPIC_BASE)
		return false;
	cpu_lapic_write(LAPIC_REG_SVR, 0x100u | CPU_SPURIOUS_VECTOR);
	return true;
}

_Noreturn void cpu_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}

static const char *const exception_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
	"#SS stack fault", "#GP general protection", "#PF page fault", "reserved",
	"#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error",
	"#VE virtualization", "#CP control protection", "reserved", "reserved",
	"reserved", "reserved", "reserved", "reserved",
	"#HV hypervisor injection", "#VC VMM communication", "#SX security", "reserved",
};

static bool on_boot_stack(uint64_t addr, size_t len)
{
	uint64_t lo = (uint64_t)(uintptr_t)boot_stack_bottom;
	uint64_t hi = (uint64_t)(uintptr_t)boot_stack_top;
	return addr >= lo && addr <= hi - len && (addr & 7) == 0;
}

_Noreturn void cpu_exception(const struct trap_frame *f)
{
	static int nested;
	uint64_t cr2 = cpu_read_cr2();
	uint64_t rbp = f->rbp;

	if (nested++) /* a fault inside the reporter: stop quietly */
		platform_stop_crash();
	console_printf_sync("qubes-firewall: CPU exception %lu (%s) error=0x%lx\n",
			    (unsigned long)f->vector,
			    f->vector < 32 ? exception_names[f->vector] : "?",
			    (unsigned long)f->error);
	console_printf_sync("  rip=%016lx rsp=%016lx rflags=%016lx cr2=%016lx\n",
			    (unsigned long)f->rip, (unsigned long)f->rsp,
			    (unsigned long)f->rflags, (unsigned long)cr2);
	console_printf_sync("  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n",
			    (unsigned long)f->rax, (unsigned long)f->rbx, (unsigned long)f->rcx,
			    (unsigned long)f->rdx);
	console_printf_sync("  rsi=%016lx rdi=%016lx rbp=%016lx r8 =%016lx\n",
			    (unsigned long)f->rsi, (unsigned long)f->rdi, (unsigned long)f->rbp,
			    (unsigned long)f->r8);
	console_printf_sync("  r9 =%016lx r10=%016lx r11=%016lx r12=%016lx\n",
			    (unsigned long)f->r9, (unsigned long)f->r10, (unsigned long)f->r11,
			    (unsigned long)f->r12);
	console_printf_sync("  r13=%016lx r14=%016lx r15=%016lx cs=%lx ss=%lx\n",
			    (unsigned long)f->r13, (unsigned long)f->r14, (unsigned long)f->r15,
			    (unsigned long)f->cs, (unsigned long)f->ss);
	console_printf_sync("  backtrace: %016lx\n", (unsigned long)f->rip);
	for (int i = 0; i < BACKTRACE_MAX && on_boot_stack(rbp, 16); i++) {
		const uint64_t *frame = (const uint64_t *)cpu_phys(rbp);
		uint64_t next = frame[0];
		console_printf_sync("             %016lx\n", (unsigned long)frame[1]);
		if (next <= rbp) /* stacks grow down: callers' frames are higher */
			break;
		rbp = next;
	}
	platform_stop_crash();
}
