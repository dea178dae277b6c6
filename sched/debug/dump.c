/* sched/debug/dump.c — goroutine dumps: ringo_dump, the SIGQUIT dump, the deadlock report.
 *
 * Responsibility: one line per goroutine ("goroutine N [state, W ms]: fn=NAME arg=P"; a named
 * one, issue 14: 'goroutine N "name" [state...', the name where Go's own GOTRACEBACK=system
 * lines put gp= and m=, so a parser of "goroutine N" and "[state]" reads both) and, when
 * asked, its frames; one line per attached plain thread; the listing of the process's threads.
 * The monitor thread (RINGO_DEBUG=schedtrace,hog,sigquit) is monitor.c, naming code addresses
 * symbolize.c, the deadlock decision deadlock.c; what they share is sched/debug/debug.h.
 *
 * Dumps read racily (sched/debug/debug.h: descriptors and stacks are never unmapped, every walk
 * is bounded by the stack slot). A goroutine that is switched out has its registers in the
 * frame at g->sp (sched/arch/arch.h: CTX_OFF_PC, CTX_OFF_FP); its saved pc and frame pointer
 * start a frame-pointer walk that ends at sched_ctx_trampoline, whose frame pointer is 0
 * (AArch64: return addresses are stripped of their PAC first). A plain thread blocked in ringo
 * waits on its own stack: its walk starts at the frame pointer it recorded when it parked (park.c),
 * bounded by the stack it had at attach; the frames above that one do not move while it waits,
 * and its stack stays mapped while it is on sched.allthreads (we hold sched.tlock). The deadlock
 * report keeps Go's lines exactly ("goroutine N [state]:", "thread TID [state]:"; a name, when there
 * is one, between the id and the state); what is under
 * each is tab-indented: "main thread" for the process's first thread (tid == pid; Go's
 * goroutine 1 needs no mark, a thread id does), then the frames, as in ringo_dump.
 * Invariants: none of its own; it only reads (RACY_READER functions).
 * Depends on: sched.h, sched/debug/debug.h, kernel_iface/clock, stackmem (slot bounds).
 */
#include "sched/sched.h"
#include "sched/debug/debug.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/stackmem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ dumps */

void sched_dprintf(int fd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)!write(fd, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}
#define dprint sched_dprintf

/* wait_reason is written by the goroutine (or thread) itself before it parks: racy here */
RACY_READER static const char *g_state(struct g *g, uint32_t st)
{
    if (st == GS_PARKING || st == GS_PARKED)
        return sched_waitreason_str(g->wait_reason);
    return sched_status_str(st);
}

RACY_READER void sched_g_stack_bounds(const struct g *g, uintptr_t *lo, uintptr_t *hi)
{
    if (((const volatile struct g *)g)->stack_big) {
        /* a big slot (goroutine.c B2, B3): flag and bounds set once, before it ever ran, on a
         * descriptor page that is never given back */
        *lo = (uintptr_t)((const volatile struct g *)g)->stack_lo;
        *hi = (uintptr_t)g;
        return;
    }
    uintptr_t slot = (uintptr_t)g + sched_g_reserve() - stk_slot_bytes();
    *lo = slot + stk_guard_bytes();
    *hi = (uintptr_t)g;
}

/* Reads another context's stack while it may be running: bounded by [lo, hi), which is
 * always mapped (RACY_READER, sched/debug.h). */
RACY_READER size_t sched_walk_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, size_t max)
{
    size_t n = 0;
    while (n < max && fp >= lo && fp <= hi - 16 && (fp & 7) == 0) {
        uintptr_t next = ((volatile const uintptr_t *)fp)[0];
        uintptr_t ret = arch_strip_pc(((volatile const uintptr_t *)fp)[1]); /* AArch64: PAC */
        if (ret == 0)
            break;
        pcs[n++] = ret;
        if (next <= fp) /* the chain only goes up; 0 ends it (sched_ctx_trampoline) */
            break;
        fp = next;
    }
    return n;
}

/* The saved frame at g->sp (sched/arch/arch.h A2): the saved pc returns into the code that
 * switched out, the saved frame pointer is that code's. */
RACY_READER size_t sched_g_frames(struct g *g, uintptr_t *pcs, size_t max)
{
    uint32_t st = atomic_load_explicit(&g->status, memory_order_relaxed); /* racy by design */
    if ((st != GS_PARKED && st != GS_RUNNABLE) || max == 0)
        return 0;
    uintptr_t lo, hi;
    sched_g_stack_bounds(g, &lo, &hi);
    uintptr_t sp = (uintptr_t)((volatile struct g *)g)->sp;
    if (sp < lo || sp > hi - CTX_FRAME_BYTES || (sp & 7))
        return 0;
    const volatile uintptr_t *f = (const volatile uintptr_t *)sp;
    uintptr_t fp = f[CTX_OFF_FP / 8], pc = arch_strip_pc(f[CTX_OFF_PC / 8]);
    if (!pc)
        return 0;
    pcs[0] = pc;
    return 1 + sched_walk_fp(fp, lo, hi, pcs + 1, max - 1);
}

/* Return addresses of a plain thread blocked in ringo, innermost first: the chain from the frame
 * pointer of its park, within the stack it had at attach. 0 when it is not parked or its stack
 * is unknown. */
RACY_READER static size_t thread_frames(struct g *t, uintptr_t *pcs, size_t max)
{
    volatile struct g *vt = t;
    uintptr_t lo = (uintptr_t)vt->stack_lo, hi = lo + vt->stack_size, fp = (uintptr_t)vt->park_fp;
    if (!lo || fp < lo || fp >= hi)
        return 0;
    return sched_walk_fp(fp, lo, hi, pcs, max);
}

static void print_frames(int fd, const uintptr_t *pcs, size_t n, bool first_is_pc)
{
    char buf[384];
    for (size_t i = 0; i < n; i++) {
        sched_sym_format(pcs[i], !(first_is_pc && i == 0), buf, sizeof buf);
        dprint(fd, "\t#%zu %s\n", i, buf);
    }
}

/* Which worker runs g right now, or -1 (racy: w->curg is the owner's plain field). */
RACY_READER static int running_on(struct g *g)
{
    for (unsigned i = 0, n = sched_nworkers(); i < n; i++)
        if (((volatile struct worker *)sched.w[i])->curg == g)
            return (int)i;
    return -1;
}

/* g's name as ' "name"' (a leading space), or "" when it has none: a bounded copy, since g
 * may be renaming itself (ringo_set_name) as we read. */
RACY_READER static const char *g_name(const struct g *g, char buf[G_NAME_LEN + 3])
{
    const volatile char *src = ((const volatile struct g *)g)->name;
    size_t n = 0;
    buf[n++] = ' ';
    buf[n++] = '"';
    for (size_t i = 0; i < G_NAME_LEN - 1 && src[i]; i++)
        buf[n++] = src[i];
    if (n == 2)
        return "";
    buf[n++] = '"';
    buf[n] = 0;
    return buf;
}

RACY_READER static void dump_g(int fd, struct g *g, int64_t now, bool brief, bool frames, bool sample)
{
    uint32_t st = atomic_load_explicit(&g->status, memory_order_relaxed); /* racy by design */
    if (st == GS_IDLE || st == GS_DEAD)
        return;
    bool waiting = st == GS_PARKING || st == GS_PARKED;
    long long id = (long long)g->id;
    char nb[G_NAME_LEN + 3];
    const char *name = g_name(g, nb); /* issue 14: between the id and the state, as Go puts gp= */
    uintptr_t pcs[DBG_MAX_FRAMES];
    if (brief) {
        dprint(fd, "goroutine %lld%s [%s]:\n", id, name, g_state(g, st));
        if (frames)
            print_frames(fd, pcs, sched_g_frames(g, pcs, DBG_MAX_FRAMES), false);
        return;
    }
    char fn[200];
    uintptr_t fnp = (uintptr_t)g->fn;
    void *arg = g->arg;
    if (fnp)
        sched_sym_name(fnp, fn, sizeof fn);
    else
        snprintf(fn, sizeof fn, "?");
    dprint(fd, "goroutine %lld%s [%s", id, name, g_state(g, st));
    if (waiting) {
        int64_t ms = (now - g->wait_since) / 1000000; /* wait_since is the coarse clock: may lead */
        dprint(fd, ", %lld ms", (long long)(ms > 0 ? ms : 0));
    }
    dprint(fd, "]: fn=%s arg=%p", fn, arg);
    int wid = st == GS_RUNNING ? running_on(g) : -1;
    if (wid >= 0)
        dprint(fd, " worker=%d", wid);
    dprint(fd, "\n");
    if (!frames)
        return;
    if (st == GS_RUNNING) {
        long sc = -1;
        size_t n = sample && wid >= 0 ? sched_monitor_sample((unsigned)wid, g, pcs, DBG_MAX_FRAMES, &sc) : 0;
        if (sc >= 0)
            dprint(fd, "\tin system call %s (%ld)\n", sched_syscall_name(sc), sc);
        print_frames(fd, pcs, n, true);
        return;
    }
    print_frames(fd, pcs, sched_g_frames(g, pcs, DBG_MAX_FRAMES), false);
}

/* One entry per goroutine and per attached plain thread; `brief` is the deadlock format (Go's
 * lines; with `frames`, each entry's frames under it). */
void sched_dump(int fd, bool brief, bool frames, bool sample_running)
{
    int64_t now = clk_now();
    size_t n = sched_g_count_slots();
    for (size_t i = 0; i < n; i++)
        dump_g(fd, sched_g_slot(i), now, brief, frames, sample_running);
    n = sched_g_count_big(); /* big-stack goroutines (ringo_go_opts) */
    for (size_t i = 0; i < n; i++)
        dump_g(fd, sched_g_big(i), now, brief, frames, sample_running);
    pthread_mutex_lock(&sched.tlock);
    for (struct g *t = sched.allthreads; t; t = t->allthreads_next) {
        uint32_t st = atomic_load_explicit(&t->status, memory_order_relaxed);
        bool blocked = st == GS_PARKING;
        if (brief && !blocked)
            continue;
        char nb[G_NAME_LEN + 3];
        dprint(fd, "thread %lld%s [%s]:\n", (long long)t->id, g_name(t, nb), blocked ? g_state(t, st) : "running");
        if (!frames)
            continue;
        if (t->id == (int64_t)getpid())
            dprint(fd, "\tmain thread\n");
        if (blocked) {
            uintptr_t pcs[DBG_MAX_FRAMES];
            print_frames(fd, pcs, thread_frames(t, pcs, DBG_MAX_FRAMES), false);
        }
    }
    pthread_mutex_unlock(&sched.tlock);
}

void ringo_dump(int fd)
{
    if (!sched_started()) {
        dprint(fd, "ringo: runtime not started\n");
        return;
    }
    sched_dump(fd, false, true, false);
}

void sched_for_each_thread(void (*fn)(pid_t tid, const char *comm, void *ctx), void *ctx)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t k = read(fd, comm, sizeof comm - 1);
            comm[k > 0 ? k : 0] = 0;
            close(fd);
        }
        fn((pid_t)atoi(e->d_name), comm, ctx);
    }
    closedir(d);
}

