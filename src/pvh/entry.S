/* entry.S — interrupt entry stubs: CPU exceptions 0..31 build a
 * struct trap_frame (cpu.h) and call cpu_exception(), which never returns;
 * the event-channel upcall vector only acknowledges the LAPIC (all event
 * work happens in the main loop, spec §3.3); the spurious vector returns.
 * Must never touch SSE state or call C code that could return. */

	.text
	.code64

.macro EXC_NOERR vec
	.balign 16
exc_\vec:
	pushq $0
	pushq $\vec
	jmp exc_common
.endm

.macro EXC_ERR vec
	.balign 16
exc_\vec:
	pushq $\vec
	jmp exc_common
.endm

EXC_NOERR 0
EXC_NOERR 1
EXC_NOERR 2
EXC_NOERR 3
EXC_NOERR 4
EXC_NOERR 5
EXC_NOERR 6
EXC_NOERR 7
EXC_ERR 8
EXC_NOERR 9
EXC_ERR 10
EXC_ERR 11
EXC_ERR 12
EXC_ERR 13
EXC_ERR 14
EXC_NOERR 15
EXC_NOERR 16
EXC_ERR 17
EXC_NOERR 18
EXC_NOERR 19
EXC_NOERR 20
EXC_ERR 21
EXC_NOERR 22
EXC_NOERR 23
EXC_NOERR 24
EXC_NOERR 25
EXC_NOERR 26
EXC_NOERR 27
EXC_NOERR 28
EXC_ERR 29
EXC_ERR 30
EXC_NOERR 31

exc_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	andq $-16, %rsp
	call cpu_exception
1:	cli
	hlt
	jmp 1b

	.globl cpu_upcall_entry
	.balign 16
cpu_upcall_entry:
	pushq %rax
	movabsq $0xfee000b0, %rax
	movl $0, (%rax)
	popq %rax
	iretq

	.globl cpu_spurious_entry
	.balign 16
cpu_spurious_entry:
	iretq

	/* Stub addresses for cpu.c's IDT set-up, in vector order. */
	.section .rodata.exc, "a", @progbits
	.balign 8
	.globl cpu_exception_stubs
cpu_exception_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_\v
.endr

	.section .note.GNU-stack, "", @progbits
