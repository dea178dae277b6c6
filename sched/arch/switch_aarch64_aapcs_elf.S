/* sched/arch/switch_aarch64_aapcs_elf.S — goroutine context switch, AArch64 (AAPCS64, LP64),
 * ELF, GNU as.
 *
 *   void sched_ctx_switch(void **save_sp, void *to_sp);
 *     Save the callee-saved state of the caller on its own stack, store the stack pointer in
 *     *save_sp, load to_sp and return into whatever context saved it. No syscall, no signal mask.
 *
 *   sched_ctx_trampoline: the first "return address" of a new goroutine. Entered by the `ret`
 *     of sched_ctx_switch with x19 = argument, x20 = entry function; calls entry(arg), which
 *     never returns.
 *
 *   uintptr_t sched_ctx_sign_pc(uintptr_t pc, uintptr_t sp_at_ret);
 *     pc signed the way sched_ctx_switch's epilogue authenticates it when its `ret` runs with
 *     sp == sp_at_ret (ctx.c uses it for a new goroutine's frame); pc unchanged in builds that
 *     do not sign return addresses. It lives here so that signing and authenticating are chosen
 *     by the same preprocessor test.
 *
 * Saved frame, at the saved stack pointer (lowest address first; sched/arch/arch.h CTX_*):
 *   offset  content
 *   0x00    x29 (fp)                 a frame record {fp, lr}: g->sp is a frame pointer
 *   0x08    x30 (lr)                 the address the switched-out code resumes at
 *   0x10    x19, x20
 *   0x20    x21, x22
 *   0x30    x23, x24
 *   0x40    x25, x26
 *   0x50    x27, x28
 *   0x60    d8, d9                   the low 64 bits of v8-v15: all AAPCS64 asks a callee to keep
 *   0x70    d10, d11
 *   0x80    d12, d13
 *   0x90    d14, d15
 *   0xA0    FPCR                     rounding mode, FZ, DN, AHP, trap enables
 *   0xA8    (padding: the frame is 16-byte aligned, as sp must be)
 * 0xB0 bytes; sp after the `ret` is g->sp + 0xB0. ctx_make (sched/ctx.c) builds the same frame
 * for a new goroutine, so every switch pops the same shape.
 *
 * What is not switched: FPSR (its cumulative exception flags are thread state in C, as with
 * MXCSR's on x86: a goroutine sees whatever flags the thread gathered); x16-x18 (x18 is a
 * temporary on Linux: code built with a shadow call stack, -ffixed-x18, is not supported); SVE
 * and SME state (AAPCS64: z/p registers beyond d8-d15 are caller-saved, and no call of
 * sched_ctx_switch happens in streaming mode or with ZA live).
 *
 * Branch protection (-mbranch-protection, whichever the toolchain enables): with BTI, the entry
 * points called through a pointer or a veneer begin with `bti c` (sched_ctx_trampoline is
 * entered by `ret`, which BTI does not check, and gets one anyway so that a future call
 * through x16/x17 keeps working), and the object carries the GNU property note that lets the
 * linker keep BTI on for the whole program. With PAC-RET, the switch signs x30 against the
 * caller's sp on entry, before it is stored, and authenticates it against the target's sp
 * after the target's frame is popped: every saved context was signed with exactly that sp
 * (its own entry sp; for a new goroutine, sched_ctx_sign_pc with the trampoline's sp). A
 * corrupted saved lr then faults instead of returning there. All the PAC and BTI instructions
 * used are in the hint space: the same binary runs on cores without them.
 *
 * CFI: as on x86-64, full CFI, so gdb and perf unwind through a parked goroutine's frames; the
 * frame shape is identical before and after the stack swap, so the same CFI describes both
 * halves (CFA = sp + 0xB0 while the frame is on the stack). With PAC-RET, the
 * .cfi_negate_ra_state directives tell the unwinder when x30 holds a signed address. The
 * trampoline marks x30 undefined: unwinding ends cleanly at the goroutine's base, and x29 = 0
 * there ends frame-pointer walks too.
 */
#include "sched/arch/arch.h"

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
#define BTI_C hint #34 /* bti c */
#define PROP_BTI 1
#else
#define BTI_C
#define PROP_BTI 0
#endif

#if defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 3)
#if __ARM_FEATURE_PAC_DEFAULT & 1 /* the A key */
#define SIGN_LR   hint #25 /* paciasp: x30 signed with sp */
#define AUTH_LR   hint #29 /* autiasp */
#define SIGN_1716 hint #8  /* pacia1716: x17 signed with x16 */
#define CFI_KEY
#else /* the B key */
#define SIGN_LR   hint #27 /* pacibsp */
#define AUTH_LR   hint #31 /* autibsp */
#define SIGN_1716 hint #10 /* pacib1716 */
#define CFI_KEY   .cfi_b_key_frame
#endif
#define CFI_RA_SIGNED .cfi_negate_ra_state
#define PROP_PAC 2
#else
#define SIGN_LR
#define AUTH_LR
#define CFI_KEY
#define CFI_RA_SIGNED
#define PROP_PAC 0
#endif

#if CTX_FRAME_BYTES != 0xB0 || CTX_OFF_FP != 0 || CTX_OFF_PC != 8 || CTX_OFF_X19 != 0x10 || \
    CTX_OFF_D8 != 0x60 || CTX_OFF_FPCR != 0xA0
#error "the frame below does not match sched/arch/arch.h"
#endif

	.file	"switch_aarch64_aapcs_elf.S"
	.text

	.globl	sched_ctx_switch
	.hidden	sched_ctx_switch
	.type	sched_ctx_switch,%function
	.p2align 4
sched_ctx_switch:
	.cfi_startproc
	CFI_KEY
	BTI_C
	SIGN_LR				/* x30 signed with the caller's sp (PAC-RET builds) */
	CFI_RA_SIGNED
	sub	sp, sp, #0xB0
	.cfi_def_cfa_offset 0xB0
	stp	x29, x30, [sp, #0x00]	/* the frame record */
	.cfi_rel_offset x29, 0x00
	.cfi_rel_offset x30, 0x08
	mov	x29, sp			/* a valid chain for a sample taken mid-switch */
	stp	x19, x20, [sp, #0x10]
	.cfi_rel_offset x19, 0x10
	.cfi_rel_offset x20, 0x18
	stp	x21, x22, [sp, #0x20]
	.cfi_rel_offset x21, 0x20
	.cfi_rel_offset x22, 0x28
	stp	x23, x24, [sp, #0x30]
	.cfi_rel_offset x23, 0x30
	.cfi_rel_offset x24, 0x38
	stp	x25, x26, [sp, #0x40]
	.cfi_rel_offset x25, 0x40
	.cfi_rel_offset x26, 0x48
	stp	x27, x28, [sp, #0x50]
	.cfi_rel_offset x27, 0x50
	.cfi_rel_offset x28, 0x58
	stp	d8, d9, [sp, #0x60]
	.cfi_rel_offset d8, 0x60
	.cfi_rel_offset d9, 0x68
	stp	d10, d11, [sp, #0x70]
	.cfi_rel_offset d10, 0x70
	.cfi_rel_offset d11, 0x78
	stp	d12, d13, [sp, #0x80]
	.cfi_rel_offset d12, 0x80
	.cfi_rel_offset d13, 0x88
	stp	d14, d15, [sp, #0x90]
	.cfi_rel_offset d14, 0x90
	.cfi_rel_offset d15, 0x98
	mrs	x9, fpcr		/* x9, x10: temporaries (caller-saved) */
	str	x9, [sp, #0xA0]		/* save FPCR */

	mov	x10, sp
	str	x10, [x0]		/* *save_sp = sp */
	mov	sp, x1			/* sp = to_sp: same frame shape, the CFI above still holds */

	ldr	x10, [sp, #0xA0]	/* writing FPCR may stall the pipeline on some cores: skip */
	cmp	x9, x10			/* it when the target's is the one in force, the usual case */
	b.eq	1f
	msr	fpcr, x10		/* restore FPCR */
1:	ldp	d8, d9, [sp, #0x60]
	ldp	d10, d11, [sp, #0x70]
	ldp	d12, d13, [sp, #0x80]
	ldp	d14, d15, [sp, #0x90]
	ldp	x19, x20, [sp, #0x10]
	ldp	x21, x22, [sp, #0x20]
	ldp	x23, x24, [sp, #0x30]
	ldp	x25, x26, [sp, #0x40]
	ldp	x27, x28, [sp, #0x50]
	ldp	x29, x30, [sp, #0x00]
	add	sp, sp, #0xB0
	.cfi_def_cfa_offset 0
	.cfi_restore x19
	.cfi_restore x20
	.cfi_restore x21
	.cfi_restore x22
	.cfi_restore x23
	.cfi_restore x24
	.cfi_restore x25
	.cfi_restore x26
	.cfi_restore x27
	.cfi_restore x28
	.cfi_restore d8
	.cfi_restore d9
	.cfi_restore d10
	.cfi_restore d11
	.cfi_restore d12
	.cfi_restore d13
	.cfi_restore d14
	.cfi_restore d15
	.cfi_restore x29
	.cfi_restore x30
	AUTH_LR				/* x30 checked against the target's sp (PAC-RET builds) */
	CFI_RA_SIGNED
	ret				/* jump to the saved lr of the target context */
	.cfi_endproc
	.size	sched_ctx_switch,.-sched_ctx_switch

	.globl	sched_ctx_trampoline
	.hidden	sched_ctx_trampoline
	.type	sched_ctx_trampoline,%function
	.p2align 4
sched_ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30		/* the goroutine's base: nothing above it to unwind to */
	BTI_C
	mov	x29, xzr		/* end of the frame-pointer chain */
	mov	x30, xzr
	mov	x0, x19			/* entry(arg) */
	blr	x20
	brk	#0x3e8			/* entry never returns */
	.cfi_endproc
	.size	sched_ctx_trampoline,.-sched_ctx_trampoline

	.globl	sched_ctx_sign_pc
	.hidden	sched_ctx_sign_pc
	.type	sched_ctx_sign_pc,%function
	.p2align 4
sched_ctx_sign_pc:
	.cfi_startproc
	BTI_C
#if PROP_PAC
	mov	x17, x0			/* pacia1716/pacib1716: x17 signed with modifier x16 */
	mov	x16, x1
	SIGN_1716
	mov	x0, x17
#endif
	ret
	.cfi_endproc
	.size	sched_ctx_sign_pc,.-sched_ctx_sign_pc

#if PROP_BTI || PROP_PAC
	/* GNU_PROPERTY_AARCH64_FEATURE_1_AND: this object is BTI- and/or PAC-clean */
	.pushsection .note.gnu.property, "a"
	.balign	8
	.long	4			/* n_namesz */
	.long	16			/* n_descsz */
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000		/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4			/* pr_datasz */
	.long	PROP_BTI | PROP_PAC
	.long	0			/* padding to 8 */
	.popsection
#endif

	.section .note.GNU-stack,"",%progbits
