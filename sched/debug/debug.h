/* sched/debug/debug.h — internal interface of the debug layer (never installed).
 *
 * Responsibility: what dump.c, deadlock.c, stats.c, monitor.c and symbolize.c share: naming code addresses,
 * walking the frame-pointer chain of a goroutine that is not running, sampling the stack of
 * one that is, and the dump that ringo_dump, the SIGQUIT handler and the hog report print.
 *
 * Racy reads: a dump or the monitor reads goroutine descriptors and stacks that other threads
 * are changing. That is safe because a stack slot, descriptor included, is never unmapped
 * (kernel_iface/stackmem.h), and every walk is bounded by the slot, so the worst a race can do
 * is print a stale frame. The functions that do such reads are marked RACY_READER: no
 * sanitizer instrumentation (an ASan redzone or a TSan race report on purpose-racy reads would
 * be noise), never inlined into instrumented code.
 *
 * Depends on: sched.h, kernel_iface/stackmem.
 */
#ifndef RINGO_SCHED_DEBUG_H
#define RINGO_SCHED_DEBUG_H

#include "sched/sched.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RACY_READER __attribute__((noinline, no_sanitize_address, no_sanitize_thread))

/* Most frames a dump prints for one goroutine. */
#define DBG_MAX_FRAMES 48

/* ------------------------------------------------------------------ symbolize.c */

/* Format pc as "name+0xoff (object+0xrel)" into buf (always NUL-terminated). `ret` says pc is a
 * return address, so the call before it is looked up (pc - 1): this matters when a call is the
 * last instruction of a function. Any thread; not async-signal-safe. Returns the length. */
size_t sched_sym_format(uintptr_t pc, bool ret, char *buf, size_t n);
/* Just the function name ("?" when unknown), for short labels. */
const char *sched_sym_name(uintptr_t pc, char *buf, size_t n);

/* ------------------------------------------------------------------ stacks (dump.c) */

/* Bounds of g's stack: [lo, hi) where hi is the descriptor (computed from the slot, not read
 * from g, so a descriptor being reinitialised cannot mislead a walk; a big-stack descriptor,
 * issue 14, is never reinitialised: its bounds are read from it). */
void sched_g_stack_bounds(const struct g *g, uintptr_t *lo, uintptr_t *hi);
/* Follow a frame-pointer chain from fp while it stays in [lo, hi) and goes up; store return
 * addresses. Async-signal-safe. */
size_t sched_walk_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, size_t max);
/* Return addresses of a goroutine that is switched out (RUNNABLE or PARKED): the saved frame
 * at g->sp, then the frame-pointer chain. 0 when g is not switched out. */
size_t sched_g_frames(struct g *g, uintptr_t *pcs, size_t max);

/* The dump: one line per goroutine ("goroutine N [state, W ms]: fn=NAME arg=P") followed, when
 * `frames`, by one line per frame of each switched-out goroutine, and one line per attached
 * plain thread (with `frames`: "\tmain thread" for the main one, and the frames of a blocked
 * one). `sample_running`: also interrupt each worker that runs a goroutine to print
 * where it is (monitor.c; used by the SIGQUIT dump only). `brief`: the deadlock format, Go's
 * "goroutine N [state]:" lines (frames under them as above). */
void sched_dump(int fd, bool brief, bool frames, bool sample_running);
void sched_dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Call fn(tid, comm) for each thread of the process, from /proc/self/task (comm keeps its
 * newline; "" if unreadable). A listing can miss threads that exit meanwhile. Not signal-safe. */
void sched_for_each_thread(void (*fn)(pid_t tid, const char *comm, void *ctx), void *ctx);

/* ------------------------------------------------------------------ deadlock.c, stats.c */
/* exiting: called by a thread on its way out (it still counts itself). May _exit(2). */
void sched_check_deadlock(int exiting);
void sched_stats_at_exit(void);
extern void (*sched_test_hook_deadlock)(int phase); /* tests only */

/* ------------------------------------------------------------------ monitor.c */

/* Start the monitor thread if RINGO_DEBUG asks for schedtrace, hog or sigquit. Called once from
 * sched_debug_hooks.init, before the workers exist: the thread waits for sched_started(). */
void sched_monitor_init(void);
/* Stack of the goroutine that worker `wid` is running right now, innermost first, by a signal
 * to that worker; 0 frames if the worker is not running a goroutine, is in a system call (then
 * *in_syscall is its number), or does not answer within a short time. Monitor thread only. */
/* "read", "futex"... for the system calls a goroutine may block a worker in; "?" otherwise. */
const char *sched_syscall_name(long nr);
size_t sched_monitor_sample(unsigned wid, struct g *expect, uintptr_t *pcs, size_t max, long *in_syscall);

#endif /* RINGO_SCHED_DEBUG_H */
