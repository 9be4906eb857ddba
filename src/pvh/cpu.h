/* cpu.h — x86-64 primitives for the PVH platform: CPUID, MSRs, port I/O,
 * the TSC, interrupt flag and barriers; the IDT/TSS set-up and the fatal
 * exception reporter.
 *
 * Everything here is a thin wrapper around one instruction, or start-up
 * code that runs once. Nothing here may allocate or depend on Xen. */
#ifndef PVH_CPU_H
#define PVH_CPU_H

#include <stdbool.h>
#include <stdint.h>

/* IDT vectors we own: the event-channel upcall (spec §3.3) and the LAPIC
 * spurious vector. Exceptions are 0..31. */
#define CPU_UPCALL_VECTOR 0x20u
#define CPU_SPURIOUS_VECTOR 0xffu

#define LAPIC_BASE 0xfee00000u
#define LAPIC_REG_VERSION 0x30u
#define LAPIC_REG_EOI 0xb0u
#define LAPIC_REG_SVR 0xf0u
#define MSR_IA32_APIC_BASE 0x1bu

struct cpuid_regs {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpu_cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r;
	__asm__ volatile("cpuid"
			 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(subleaf));
	return r;
}

static inline uint64_t cpu_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpu_wrmsr(uint32_t msr, uint64_t value)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
			 : "memory");
}

static inline void cpu_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t cpu_inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* lfence keeps the TSC read from being hoisted above earlier loads (spec
 * §4.1). rdtscp is deliberately not used (TCG mis-reports it under nested
 * Xen: specs/xen-in-qemu.md). */
static inline uint64_t cpu_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void cpu_barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline uint64_t cpu_read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

/* A physical address as a pointer: the first 4 GiB are identity-mapped
 * (boot.S), so this is the one place where integers become pointers. */
static inline void *cpu_phys(uint64_t paddr)
{
	return (void *)(uintptr_t)paddr; // NOLINT(performance-no-int-to-ptr)
}

static inline uint32_t cpu_lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)cpu_phys(LAPIC_BASE + reg);
}

static inline void cpu_lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)cpu_phys(LAPIC_BASE + reg) = v;
}

/* Feature bits we look at, read once by cpu_init(). */
struct cpu_features {
	bool rdrand;
	bool rdseed;
	bool invariant_tsc;
	uint32_t tsc_khz; /* 0 when CPUID does not say */
	char vendor[13];
};

/* Loads our GDT (with a 64-bit TSS whose IST1 is a private stack for #DF,
 * NMI and #MC) and an IDT whose exception vectors report and stop, plus
 * the upcall and spurious vectors. Interrupts stay disabled. */
void cpu_init(void);

const struct cpu_features *cpu_features(void);

/* Software-enables the local APIC with CPU_SPURIOUS_VECTOR; false when the
 * APIC is absent, disabled in IA32_APIC_BASE or not at LAPIC_BASE. */
bool cpu_lapic_enable(void);

/* Stops this vCPU for good: interrupts off, hlt forever. */
_Noreturn void cpu_halt_forever(void);

/* The register state the exception stubs (entry.S) push; field order is
 * the reverse of the push order there. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

/* Called from entry.S for vectors 0..31: prints the state and a frame
 * pointer backtrace, then stops the domain (reason crash) or halts. */
_Noreturn void cpu_exception(const struct trap_frame *f);

#endif
