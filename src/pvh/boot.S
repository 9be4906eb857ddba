/* boot.S — the PVH entry point: from 32-bit protected mode without paging
 * (spec §1.2) to 64-bit long mode, then kmain(start_info).
 *
 * Steps follow spec §1.4: keep %ebx (the hvm_start_info address), clear
 * BSS, identity-map 0..4 GiB with 2 MiB pages (the 2 MiB holding the LAPIC
 * and Xen's special pages in 4 KiB pages, the LAPIC page uncached), load a
 * flat GDT, enable PAE, LME and paging, far-jump to 64-bit code, enable SSE,
 * switch to a 16-byte-aligned BSS stack and call C. Must not touch memory
 * outside the image before BSS is cleared, and must not use a stack before
 * it sets one up (PVH gives none). */

#define CR0_PE (1 << 0)
#define CR0_MP (1 << 1)
#define CR0_EM (1 << 2)
#define CR0_NE (1 << 5)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80
#define LAPIC_2M_INDEX 0x7f7 /* 0xfee00000 >> 21 */
#define START_MAGIC 0x336ec578
#define BOOT_STACK_SIZE 65536
/* The GFN window for grant-table frames and foreign mappings (spec §5.3):
 * 4 GiB .. 4 GiB + 64 MiB, identity-mapped with 32 x 2 MiB pages through
 * PDPT[4]. Must match GNT_WINDOW_BASE/GNT_WINDOW_SIZE in pvh/gnttab.h. The
 * GFNs are holes until Xen puts a frame there; only mapped slots are used. */
#define GNT_WINDOW_PDPT_INDEX 4
#define GNT_WINDOW_2M_PAGES 32

/* The one ELF note PVH needs (spec §1.1): name "Xen", type
 * XEN_ELFNOTE_PHYS32_ENTRY, a 32-bit physical entry address. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.balign 4
	.long pvh_start32
	.balign 4

	.section .text.pvh_entry, "ax", @progbits
	.code32
	.globl pvh_start32
	.type pvh_start32, @function
pvh_start32:
	cli
	cld
	movl %ebx, %esi

	/* BSS first: the page tables and the stack live there. */
	movl $__bss_start, %edi
	movl $_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl %esi, boot_start_info

	cmpl $START_MAGIC, (%esi)
	jne bad_magic

	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories. */
	movl $boot_pdpt, %eax
	orl $(PTE_P | PTE_RW), %eax
	movl %eax, boot_pml4
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $12, %eax
	addl $boot_pd, %eax
	orl $(PTE_P | PTE_RW), %eax
	movl %eax, boot_pdpt(, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jb 1b

	/* 2048 x 2 MiB = 4 GiB, identity. */
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_RW | PTE_PS), %eax
	movl %eax, boot_pd(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jb 2b

	/* PDPT[4] -> the grant window's page directory: 2 MiB pages at
	 * 4 GiB + i * 2 MiB (high dword 1 = bit 32 of the address). */
	movl $boot_pd_gnt, %eax
	orl $(PTE_P | PTE_RW), %eax
	movl %eax, boot_pdpt + GNT_WINDOW_PDPT_INDEX * 8
	xorl %ecx, %ecx
4:	movl %ecx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_RW | PTE_PS), %eax
	movl %eax, boot_pd_gnt(, %ecx, 8)
	movl $1, boot_pd_gnt + 4(, %ecx, 8)
	incl %ecx
	cmpl $GNT_WINDOW_2M_PAGES, %ecx
	jb 4b

	/* 0xfee00000..0xffffffff in 4 KiB pages: the LAPIC page uncached,
	 * Xen's special pages (0xfeff8000..) ordinary write-back memory. */
	xorl %ecx, %ecx
3:	movl %ecx, %eax
	shll $12, %eax
	addl $0xfee00000, %eax
	orl $(PTE_P | PTE_RW), %eax
	movl %eax, boot_pt_top(, %ecx, 8)
	incl %ecx
	cmpl $512, %ecx
	jb 3b
	orl $(PTE_PWT | PTE_PCD), boot_pt_top
	movl $boot_pt_top, %eax
	orl $(PTE_P | PTE_RW), %eax
	movl %eax, boot_pd + LAPIC_2M_INDEX * 8

	lgdt boot_gdt_ptr

	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_WP | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $0x08, $pvh_start64

	/* Not a PVH start: say so on the debug port and stop. */
bad_magic:
	movl $bad_magic_msg, %esi
4:	movb (%esi), %al
	testb %al, %al
	jz 5f
	outb %al, $0xe9
	incl %esi
	jmp 4b
5:	hlt
	jmp 5b
	.size pvh_start32, . - pvh_start32

	.code64
	.type pvh_start64, @function
pvh_start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs

	/* SSE on (spec §1.4 step 10), although the code is built with
	 * -mgeneral-regs-only: a stray SSE instruction must not #UD. */
	movq %cr0, %rax
	andq $~CR0_EM, %rax
	orq $(CR0_MP | CR0_NE), %rax
	movq %rax, %cr0
	movq %cr4, %rax
	orq $(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
	movq %rax, %cr4
	ldmxcsr boot_mxcsr(%rip)

	leaq boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	movl boot_start_info(%rip), %edi
	call kmain
6:	cli
	hlt
	jmp 6b
	.size pvh_start64, . - pvh_start64

	.section .rodata.boot, "a", @progbits
	.balign 16
	/* null; 64-bit code (0x08); flat data (0x10). Accessed bits preset
	 * so the CPU never writes to this read-only table. */
boot_gdt:
	.quad 0
	.quad 0x00af9b000000ffff
	.quad 0x00cf93000000ffff
boot_gdt_end:
	.balign 8
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt
boot_mxcsr:
	.long 0x1f80
bad_magic_msg:
	.asciz "qubes-firewall: not started through PVH (bad hvm_start_info magic); halting\n"

	.section .data.boot, "aw", @progbits
	.balign 4
	.globl boot_start_info
boot_start_info:
	.long 0

	.section .bss.boot, "aw", @nobits
	.balign 4096
	.globl boot_pml4
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4 * 4096
boot_pt_top:
	.skip 4096
boot_pd_gnt:
	.skip 4096
	.balign 16
	.globl boot_stack_bottom
boot_stack_bottom:
	.skip BOOT_STACK_SIZE
	.globl boot_stack_top
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
