/* sched/arch/arch.h — what differs between the machines ringo runs on, in one place.
 *
 * Responsibility: per-architecture constants and one-instruction helpers that C code needs:
 * the spin-wait hint, the cache-line size used for padding, the layout of the frame that
 * sched_ctx_switch saves (sched/arch/switch_*.S; ctx.c builds it, debug/dump.c and
 * tools/ringo-gdb.py read it), the FP control state of a new goroutine, the registers a
 * signal's ucontext holds for a sample, and how to turn a saved return address into a code
 * address. The assembly files include this header too (under __ASSEMBLER__ only the CTX_*
 * numbers are visible), so the offsets exist once.
 *
 * Supported: x86-64 (System V, ELF) and AArch64 (AAPCS64, LP64, ELF). configure refuses
 * anything else, and so does the #error below.
 *
 * Invariants:
 *   A1  CTX_FRAME_BYTES is a multiple of 16, and g->sp + CTX_FRAME_BYTES is the stack pointer
 *       the switched-out code had when it called sched_ctx_switch (so a new goroutine's frame,
 *       built at a 16-aligned top minus CTX_FRAME_BYTES, starts its trampoline with the ABI's
 *       stack alignment: on x86-64 rsp % 16 == 8 after the `ret`, as after a call; on AArch64
 *       sp % 16 == 0, which the architecture enforces).
 *   A2  At g->sp + CTX_OFF_FP and g->sp + CTX_OFF_PC sit the frame pointer and the address the
 *       switched-out code resumes at: the start of a frame-pointer walk (dump.c, ringo-gdb.py).
 * Depends on: nothing (compiler predefines only).
 */
#ifndef RINGO_SCHED_ARCH_H
#define RINGO_SCHED_ARCH_H

#if defined(__x86_64__)
/* switch_x86_64_sysv_elf.S: [MXCSR|x87 CW][r15][r14][r13][r12][rbx][rbp][rip], 8 bytes each */
#define CTX_FRAME_BYTES 0x40 /* popped by the switch, the return address included */
#define CTX_OFF_FP      0x30 /* rbp */
#define CTX_OFF_PC      0x38 /* the return address */
#elif defined(__aarch64__)
/* switch_aarch64_aapcs_elf.S: the frame record first, so that g->sp is a valid frame pointer */
#define CTX_FRAME_BYTES 0xB0
#define CTX_OFF_FP      0x00 /* x29 */
#define CTX_OFF_PC      0x08 /* x30 (lr), PAC-signed when return addresses are signed */
#define CTX_OFF_X19     0x10 /* x19..x28 at 0x10 + 8 * (n - 19) */
#define CTX_OFF_D8      0x60 /* d8..d15 at 0x60 + 8 * (n - 8) */
#define CTX_OFF_FPCR    0xA0 /* FPCR (64 bits: the register is 64 bits wide since Armv8.7) */
#else
#error "ringo supports x86-64 and AArch64 only (sched/arch/arch.h)"
#endif

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Padding between data written by different threads. x86-64: 64-byte lines. AArch64: the Arm
 * server cores ringo targets (Neoverse N1/N2/V1/V2: Graviton, Ampere Altra, Grace) have 64-byte
 * lines too, and Linux's arm64 L1_CACHE_BYTES is 64; a 128-byte-line part (Apple M, ThunderX1,
 * A64FX's 256) then shares a line between two padded fields, which costs speed, never
 * correctness (padding is only against false sharing). */
#define CACHELINE 64

/* One spin-wait hint, for loops that wait for another CPU (spinlock.h, proc.c, ring.c).
 * x86: `pause` (~20-140 cycles; it also tells the core the loop is a spin-wait, so leaving it
 * does not flush the pipeline on a memory-order mis-speculation).
 * AArch64: `isb`, not `yield`: `yield` is a hint for SMT cores and executes as a NOP on the
 * Neoverse cores, so a spin of SPIN_PAUSES `yield`s would last a few ns instead of the ~2 us
 * the spin counts assume; `isb` flushes the pipeline and takes some tens of ns, the order of a
 * `pause` (the choice Rust's spin_loop and several JVMs made on Arm). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("isb" ::: "memory");
#endif
}

/* A return address read from a frame record or a saved context, as a plain code address.
 * AArch64 with -mbranch-protection=pac-ret stores return addresses signed: the PAC sits in the
 * bits above the virtual address. `xpaclri` (a hint: a NOP on cores without pointer
 * authentication) strips it from x30; an unsigned address goes through unchanged. */
static inline uintptr_t arch_strip_pc(uintptr_t pc)
{
#if defined(__aarch64__)
    register uintptr_t lr __asm__("x30") = pc;
    __asm__("hint #7" /* xpaclri */ : "+r"(lr));
    return lr;
#else
    return pc;
#endif
}

/* The interrupted pc and frame pointer in a signal's ucontext (debug/monitor.c's sampler). */
#if defined(__x86_64__)
#define ARCH_UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RIP])
#define ARCH_UC_FP(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RBP])
#elif defined(__aarch64__)
#define ARCH_UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.pc)
#define ARCH_UC_FP(uc) ((uintptr_t)(uc)->uc_mcontext.regs[29])
#endif

#endif /* !__ASSEMBLER__ */
#endif
