/* sched/debug.c — deadlock detection, dumps, stats, fatal errors, the stack-overflow handler,
 * and the runtime's side of valgrind.
 *
 * Responsibility: everything that reports on the runtime rather than runs it. The monitor thread
 * (RINGO_DEBUG=schedtrace,hog,sigquit) is in monitor.c, naming code addresses in symbolize.c;
 * what the three share is sched/debug.h.
 *
 * Dumps (ringo_dump, the SIGQUIT dump, the deadlock report): one line per goroutine, read
 * racily (sched/debug.h: descriptors and stacks are never unmapped, every walk is bounded by the
 * stack slot). A goroutine that is switched out has its registers in the frame at g->sp
 * (arch/switch_x86_64_sysv_elf.S); its saved rip and rbp start a frame-pointer walk that ends
 * at sched_ctx_trampoline, whose rbp is 0. The deadlock report keeps Go's exact format.
 *
 * Deadlock (API.md "Deadlock"): nothing can ever run again when, all at once,
 *   - every worker is on the idle list (it re-checked every queue after announcing, worker.c),
 *   - no attached plain thread is running outside a forever-park (sched.nthreads_active == 0),
 *   - no timer and no I/O is pending (sched.ntimers, sched.nio: I5),
 *   - the global queue and every run queue are empty,
 * and something is blocked (a live goroutine, or a thread parked forever), and no other thread of
 * the process could still act: a plain thread that has not used ringo *yet* (it computes, then
 * sends on a channel) is as able to wake someone as an attached one. So the final word comes
 * from /proc: every thread of the process (its "Threads:" count) must be a ringo worker
 * ("ringo-w*"), an io_uring kernel worker ("iou-*"), or a thread parked forever in ringo. Only
 * then is it a deadlock. A process
 * with some thread ringo does not know about (a library's idle helper thread) is never declared
 * deadlocked: a missed report is a hang, a false one kills a healthy program.
 * Whoever makes the
 * last of these true checks: a worker about to sleep, a thread about to park forever, a thread
 * that detaches. The counters are seq_cst and each side changes its own counter before reading
 * the others', so the last to change sees all the others (Dekker). The check is conservative:
 * any doubt (a counter in motion) means "not a deadlock"; it is repeated under idle_lock so
 * that no worker is being woken while we decide.
 *
 * Stack overflow: a SIGSEGV handler on an alternate stack (per worker) looks the fault address
 * up in the stack arena; a hit in a guard page is reported as Go does and aborts. Any other
 * fault is passed on unchanged: the previous disposition is restored and the faulting
 * instruction runs again.
 * Valgrind: see sched_debug_init.
 * Depends on: kernel_iface/stackmem.
 */
#include "sched/sched.h"
#include "sched/debug/debug.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/stackmem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const wr_names[WR__COUNT] = {
    [WR_NONE] = "",
    [WR_CHAN_SEND] = "chan send",
    [WR_CHAN_RECV] = "chan receive",
    [WR_SELECT] = "select",
    [WR_SELECT_NONE] = "select (no cases)",
    [WR_MUTEX] = "sync.Mutex.Lock",
    [WR_WAITGROUP] = "sync.WaitGroup.Wait",
    [WR_SLEEP] = "sleep",
    [WR_IO] = "IO wait",
    [WR_CHAN_SEND_NIL] = "chan send (nil chan)",
    [WR_CHAN_RECV_NIL] = "chan receive (nil chan)",
};

const char *sched_waitreason_str(int wr)
{
    return wr >= 0 && wr < WR__COUNT && wr_names[wr] ? wr_names[wr] : "?";
}

_Noreturn void sched_fatal(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    static const char pre[] = "fatal error: ";
    (void)!write(2, pre, sizeof pre - 1);
    buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
    abort();
}

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

void sched_g_stack_bounds(const struct g *g, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t slot = (uintptr_t)g + sched_g_reserve() - stk_slot_bytes();
    *lo = slot + STK_GUARD;
    *hi = (uintptr_t)g;
}

/* Reads another context's stack while it may be running: bounded by [lo, hi), which is
 * always mapped (RACY_READER, sched/debug.h). */
RACY_READER size_t sched_walk_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, size_t max)
{
    size_t n = 0;
    while (n < max && fp >= lo && fp <= hi - 16 && (fp & 7) == 0) {
        uintptr_t next = ((volatile const uintptr_t *)fp)[0];
        uintptr_t ret = ((volatile const uintptr_t *)fp)[1];
        if (ret == 0)
            break;
        pcs[n++] = ret;
        if (next <= fp) /* the chain only goes up; 0 ends it (sched_ctx_trampoline) */
            break;
        fp = next;
    }
    return n;
}

/* The saved frame at g->sp (arch/switch_x86_64_sysv_elf.S):
 * [mxcsr/x87][r15][r14][r13][r12][rbx][rbp][rip]; rip returns into the code that switched out,
 * rbp is that code's frame pointer. */
RACY_READER size_t sched_g_frames(struct g *g, uintptr_t *pcs, size_t max)
{
    uint32_t st = atomic_load_explicit(&g->status, memory_order_relaxed); /* racy by design */
    if ((st != GS_PARKED && st != GS_RUNNABLE) || max == 0)
        return 0;
    uintptr_t lo, hi;
    sched_g_stack_bounds(g, &lo, &hi);
    uintptr_t sp = (uintptr_t)((volatile struct g *)g)->sp;
    if (sp < lo || sp > hi - 8 * 8 || (sp & 7))
        return 0;
    const volatile uintptr_t *f = (const volatile uintptr_t *)sp;
    uintptr_t rbp = f[6], rip = f[7];
    if (!rip)
        return 0;
    pcs[0] = rip;
    return 1 + sched_walk_fp(rbp, lo, hi, pcs + 1, max - 1);
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
    for (unsigned i = 0; i < sched.nprocs; i++)
        if (((volatile struct worker *)sched.w[i])->curg == g)
            return (int)i;
    return -1;
}

RACY_READER static void dump_g(int fd, struct g *g, int64_t now, bool brief, bool frames, bool sample)
{
    uint32_t st = atomic_load_explicit(&g->status, memory_order_relaxed); /* racy by design */
    if (st == GS_IDLE || st == GS_DEAD)
        return;
    bool waiting = st == GS_PARKING || st == GS_PARKED;
    long long id = (long long)g->id;
    if (brief) {
        dprint(fd, "goroutine %lld [%s]:\n", id, g_state(g, st));
        return;
    }
    char fn[200];
    uintptr_t fnp = (uintptr_t)g->fn;
    void *arg = g->arg;
    if (fnp)
        sched_sym_name(fnp, fn, sizeof fn);
    else
        snprintf(fn, sizeof fn, "?");
    dprint(fd, "goroutine %lld [%s", id, g_state(g, st));
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
    uintptr_t pcs[DBG_MAX_FRAMES];
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

/* One entry per goroutine and per attached plain thread; `brief` is the deadlock format. */
void sched_dump(int fd, bool brief, bool frames, bool sample_running)
{
    int64_t now = clk_now();
    size_t n = sched_g_count_slots();
    for (size_t i = 0; i < n; i++)
        dump_g(fd, sched_g_slot(i), now, brief, frames, sample_running);
    pthread_mutex_lock(&sched.tlock);
    for (struct g *t = sched.allthreads; t; t = t->allthreads_next) {
        uint32_t st = atomic_load_explicit(&t->status, memory_order_relaxed);
        bool blocked = st == GS_PARKING;
        if (brief && !blocked)
            continue;
        dprint(fd, "thread %lld [%s]:\n", (long long)t->id, blocked ? g_state(t, st) : "running");
    }
    pthread_mutex_unlock(&sched.tlock);
}

static void dump_all(int fd, bool brief)
{
    sched_dump(fd, brief, false, false);
}

void ringo_dump(int fd)
{
    if (!sched_started()) {
        dprint(fd, "ringo: runtime not started\n");
        return;
    }
    sched_dump(fd, false, true, false);
}

void ringo_stats_get(struct ringo_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!sched_started())
        return;
    out->goroutines = ringo_num_goroutines();
    out->spawned = (uint64_t)atomic_load_explicit(&sched.thread_spawned, memory_order_relaxed);
    out->wakeups = atomic_load_explicit(&sched.thread_wakeups, memory_order_relaxed);
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *w = sched.w[i];
        out->spawned += atomic_load_explicit(&w->st_spawned, memory_order_relaxed);   /* stats only */
        out->switches += atomic_load_explicit(&w->st_switches, memory_order_relaxed);
        out->steals += atomic_load_explicit(&w->st_steals, memory_order_relaxed);
        out->parks += atomic_load_explicit(&w->st_parks, memory_order_relaxed);
        out->wakeups += atomic_load_explicit(&w->st_wakeups, memory_order_relaxed);
    }
    sched_io_stats(&out->io_submitted, &out->io_completed);
}

void sched_stats_at_exit(void)
{
    struct ringo_stats s;
    ringo_stats_get(&s);
    fprintf(stderr,
            "ringo stats: goroutines=%llu spawned=%llu switches=%llu steals=%llu parks=%llu wakeups=%llu "
            "io_submitted=%llu io_completed=%llu\n",
            (unsigned long long)s.goroutines, (unsigned long long)s.spawned, (unsigned long long)s.switches,
            (unsigned long long)s.steals, (unsigned long long)s.parks, (unsigned long long)s.wakeups,
            (unsigned long long)s.io_submitted, (unsigned long long)s.io_completed);
}

/* ------------------------------------------------------------------ deadlock */

static bool looks_dead(void)
{
    if (atomic_load(&sched.nthreads_active) != 0 || atomic_load(&sched.nidle) != sched.nprocs)
        return false;
    if (atomic_load(&sched.ntimers) != 0 || atomic_load(&sched.nio) != 0 ||
        atomic_load(&sched.gq_len) != 0 || atomic_load(&sched.nspinning) != 0)
        return false;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *w = sched.w[i];
        if (atomic_load(&w->rq.head) != atomic_load(&w->rq.tail) || atomic_load(&w->runnext))
            return false;
    }
    return ringo_num_goroutines() > 0 || atomic_load(&sched.nthreads_blocked) > 0;
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

static void count_quiet(pid_t tid, const char *comm, void *n)
{
    (void)tid;
    if (strncmp(comm, "ringo-w", 7) == 0 || strncmp(comm, "iou-", 4) == 0)
        ++*(long *)n;
}

/* Threads of ours that never act for the program: workers ("ringo-w*", and the monitor,
 * named alike) and io_uring's kernel workers ("iou-*"). Counted from a listing of
 * /proc/self/task, which can skip live entries while other threads exit (seen on 6.18): a
 * listing that misses some only makes this count smaller, which is the safe direction. */
static long count_quiet_threads(void)
{
    long n = 0;
    sched_for_each_thread(count_quiet, &n);
    return n;
}

/* The process's thread count, read in one step by the kernel ("Threads:" in status). */
static long total_threads(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return -1;
    buf[k] = 0;
    char *p = strstr(buf, "\nThreads:");
    return p ? strtol(p + 9, NULL, 10) : -1;
}

/* Threads that could still act: all threads, less the quiet ones, less the plain threads
 * parked forever in ringo. `exiting` is 1 when the caller is a thread on its way out (it is
 * still counted). Any doubt returns a positive number: no deadlock. The quiet threads are
 * counted before and after the total, and must agree, so one that appears or leaves meanwhile
 * cannot make the difference too small. */
static long other_threads(int exiting)
{
    for (int tries = 0; tries < 3; tries++) {
        long q1 = count_quiet_threads();
        long total = total_threads();
        long q2 = count_quiet_threads();
        if (total < 0)
            return 1;
        if (q1 != q2)
            continue;
        long n = total - q1 - atomic_load(&sched.nthreads_blocked) - exiting;
#ifdef RINGO_TSAN
        n -= 1; /* ThreadSanitizer's background thread */
#endif
        return n;
    }
    return 1;
}

void sched_check_deadlock(void)
{
    sched_check_deadlock_ex(0);
}

void sched_check_deadlock_ex(int exiting)
{
    if (!sched_started() || !looks_dead())
        return;
    if (other_threads(exiting) > 0)
        return;
    pthread_mutex_lock(&sched.idle_lock);
    bool dead = looks_dead();
    if (!dead) {
        pthread_mutex_unlock(&sched.idle_lock);
        return;
    }
    static const char msg[] = "fatal error: all goroutines are asleep - deadlock!\n\n";
    (void)!write(2, msg, sizeof msg - 1);
    dump_all(2, true);
    _exit(2);
}

/* ------------------------------------------------------------------ stack overflow */

static struct sigaction old_segv, old_bus;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    bool guard = false;
    char *slot = stk_lookup(si->si_addr, &guard);
    if (slot && guard) {
        struct g *g = (struct g *)(slot + stk_slot_bytes() - sched_g_reserve());
        char buf[256];
        int n = snprintf(buf, sizeof buf,
                         "fatal error: stack overflow in goroutine %lld (stack size %zu bytes; raise it "
                         "with RINGO_STACK_SIZE or struct ringo_config.stack_size)\n",
                         (long long)g->id, sched.stack_usable);
        (void)!write(2, buf, (size_t)n);
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* not ours: pass it on unchanged */
    sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
    (void)uc;
}

void sched_segv_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void sched_altstack_init(struct worker *w)
{
    stack_t ss;
    ss.ss_size = 64 * 1024;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    w->altstack = ss.ss_sp; /* lives as long as the worker; kept reachable (LeakSanitizer) */
    if (ss.ss_sp)
        sigaltstack(&ss, NULL);
}

/* ------------------------------------------------------------------ valgrind */

#if defined(RINGO_VALGRIND) || __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif

/* Under valgrind, whether or not this build registers its stacks (--enable-valgrind). */
static bool on_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return true;
#endif
    const char *p = getenv("LD_PRELOAD"); /* valgrind preloads its vgpreload_*.so into the program */
    return p && strstr(p, "/vgpreload_");
}

/* Called once by start_locked (worker.c) after RINGO_DEBUG/RINGO_DISABLE are parsed and before
 * the workers and the I/O backend start. */
void sched_debug_init(void)
{
    /* Valgrind (3.19 at least) treats io_uring_enter as a system call that never blocks, so a
     * worker asleep in it keeps valgrind's global lock and every other thread stops for good
     * (liburing issue #657, KDE bug 463859). Memcheck also cannot see the kernel fill a read
     * buffer through the ring. So under valgrind ringo runs on its epoll backend, whose
     * epoll_wait valgrind knows blocks. */
    sched.on_valgrind = on_valgrind();
    if (sched.on_valgrind && !(sched.disable & DIS_IO_URING)) {
        sched.disable |= DIS_IO_URING;
        if (sched.debug)
            fprintf(stderr, "ringo: running under valgrind: io_uring off, I/O on epoll\n");
    }
    sched_monitor_init();
}
