/* sched/arch/switch_x86_64_sysv_elf.S — goroutine context switch, x86-64 System V, ELF, GNU as.
 *
 *   void sched_ctx_switch(void **save_sp, void *to_sp);
 *     Save the callee-saved state of the caller on its own stack, store the stack pointer in
 *     *save_sp, load to_sp and return into whatever context saved it. No syscall, no signal mask.
 *
 *   sched_ctx_trampoline: the first "return address" of a new goroutine. Entered by the `ret`
 *     of sched_ctx_switch with r12 = argument, r13 = entry function; calls entry(arg), which
 *     never returns.
 *
 * Saved frame, at the saved stack pointer (lowest address first):
 *   offset  content
 *   0x00    MXCSR (4 bytes)          control bits: rounding, exception masks, FTZ/DAZ
 *   0x04    x87 control word (2 bytes) + 2 bytes padding
 *   0x08    r15
 *   0x10    r14
 *   0x18    r13
 *   0x20    r12
 *   0x28    rbx
 *   0x30    rbp
 *   0x38    return address (rip)
 * 0x40 bytes plus the return address. ctx_make (sched/ctx.c) builds the same frame for a new
 * goroutine, so every switch pops the same shape.
 *
 * CFI: unlike Boost's jump_fcontext, the switch carries full CFI so gdb and perf unwind through
 * a parked goroutine's frames; the frame shape is identical before and after the stack swap, so
 * the same CFI describes both halves. The trampoline marks rip undefined: unwinding ends cleanly
 * at the goroutine's base, and rbp = 0 there ends frame-pointer walks too.
 */
#if defined(__CET__)
#include <cet.h>
#define RINGO_ENDBR _CET_ENDBR
#else
#define RINGO_ENDBR
#endif

	.file	"switch_x86_64_sysv_elf.S"
	.text

	.globl	sched_ctx_switch
	.hidden	sched_ctx_switch
	.type	sched_ctx_switch,@function
	.p2align 4
sched_ctx_switch:
	.cfi_startproc
	RINGO_ENDBR
	pushq	%rbp			/* save rbp */
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx			/* save rbx */
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12			/* save r12 */
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13			/* save r13 */
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14			/* save r14 */
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15			/* save r15 */
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	subq	$8, %rsp		/* room for the FP control words */
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)			/* save MXCSR */
	fnstcw	4(%rsp)			/* save x87 control word */

	movq	%rsp, (%rdi)		/* *save_sp = rsp */
	movl	(%rsp), %eax		/* our MXCSR (rax, rcx: caller-saved scratch) */
	movzwl	4(%rsp), %ecx		/* our x87 control word */
	movq	%rsi, %rsp		/* rsp = to_sp: same frame shape, the CFI above still holds */

	cmpl	(%rsp), %eax		/* loading MXCSR and the x87 CW is slow: skip it when the */
	jne	1f			/* target's are the ones in force, the usual case */
	cmpw	4(%rsp), %cx
	je	2f
1:	ldmxcsr	(%rsp)			/* restore MXCSR */
	fldcw	4(%rsp)			/* restore x87 control word */
2:	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15			/* restore r15 */
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14			/* restore r14 */
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13			/* restore r13 */
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12			/* restore r12 */
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%rbx			/* restore rbx */
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rbp			/* restore rbp */
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp
	ret				/* jump to the saved rip of the target context */
	.cfi_endproc
	.size	sched_ctx_switch,.-sched_ctx_switch

	.globl	sched_ctx_trampoline
	.hidden	sched_ctx_trampoline
	.type	sched_ctx_trampoline,@function
	.p2align 4
sched_ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip		/* the goroutine's base: nothing above it to unwind to */
	RINGO_ENDBR
	xorl	%ebp, %ebp		/* end of the frame-pointer chain */
	movq	%r12, %rdi		/* entry(arg) */
	callq	*%r13
	ud2				/* entry never returns */
	.cfi_endproc
	.size	sched_ctx_trampoline,.-sched_ctx_trampoline

	.section .note.GNU-stack,"",%progbits
