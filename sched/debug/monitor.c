/* sched/monitor.c — the monitor thread: RINGO_DEBUG=schedtrace=MS, hog=MS and sigquit.
 *
 * Responsibility: watch the runtime from outside, Go's sysmon in miniature, for people, never
 * for scheduling: nothing here changes what the workers do.
 *   schedtrace=MS  every MS ms, one "SCHED" summary line and one line per worker on stderr, in
 *                  the spirit of GODEBUG=schedtrace=MS,scheddetail=1 (default 1000 ms).
 *   hog=MS         names any goroutine that has kept a worker for MS ms without switching out
 *                  (default 10 ms, Go's time slice), with the stack it is running on, and says
 *                  when it lets go.
 *   sigquit        SIGQUIT prints every goroutine with its stack, as Go does, and exits with
 *                  status 2.
 *
 * One thread, started by sched_debug_hooks.init (before the workers exist) when any of the three is
 * on. It waits for sched_started(), then sleeps on a semaphore until the next trace line, the
 * next hog check, or a SIGQUIT (the handler only posts the semaphore: sem_post is
 * async-signal-safe; the dump itself runs here, on an ordinary thread; an exit() that races
 * with it waits for it, quit_exit_hook).
 *
 * Its name is "ringo-wmon": the deadlock check (deadlock.c count_quiet_threads) takes every thread
 * whose name does not start with "ringo-w" (or "iou-") for one that could still wake someone; the
 * monitor never does, so it must not keep a deadlocked program alive
 * (test_debug_monitor_does_not_hide_deadlock). It runs with every signal blocked, so
 * process-directed signals (SIGQUIT, SIGINT) go to the program's own threads.
 *
 * Hog detection: a worker's schedtick advances every time it picks a goroutine (proc.c
 * next_local). A worker seen twice with the same tick and the same w->curg has been running that
 * one goroutine in between. Both are read racily (RACY_READER): a descriptor is never unmapped,
 * so a stale read costs at most one wrong line, never a fault.
 *
 * Where a running goroutine is: a worker blocked in a system call is read from
 * /proc/self/task/TID/syscall (number and pc), with no signal, so that the call is not
 * interrupted. A worker running user code is sent SIGURG (Go's choice for preemption: ignored by
 * default, rarely used by programs); its handler records the interrupted pc and the
 * frame-pointer chain into samples[worker] and the monitor names them. The handler is installed
 * only when SIGURG is not already handled by the program, with SA_RESTART.
 *
 * Ordering: samples[i].state is the handshake. Monitor: write 1 (release), pthread_kill, wait
 * for 2 (acquire, pairs with the handler's release that publishes pcs/n/g). Handler: acts only
 * on 1 (acquire, pairs with the monitor's release).
 *
 * Contexts: monitor_main on its own thread; sample_handler on a worker, in a signal;
 * quit_handler on any thread, in a signal.
 * Depends on: sched.h (racy reads of workers), sched/poller.h (I/O waiting), dump.c (the dump),
 *   symbolize.c.
 */
#include "sched/sched.h"
#include "sched/debug/debug.h"
#include "sched/poller.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#define SAMPLE_SIG SIGURG
#define SAMPLE_WAIT_US 100000 /* a worker that does not answer within this is reported without a stack */

struct sample {
    _Atomic uint32_t state;       /* 0 idle, 1 requested (monitor), 2 filled (handler) */
    uint32_t n;                   /* frames in pcs; written by the handler before state = 2 */
    struct g *g;                  /* the goroutine the handler found running */
    uintptr_t pcs[DBG_MAX_FRAMES];
};

static sem_t wake_sem;                         /* posted by quit_handler */
static _Atomic int quit_pending;               /* set by quit_handler before the post */
static bool sampler_on;                        /* SAMPLE_SIG handler installed; set before the monitor starts */
static _Atomic(struct sample *) samples;       /* nprocs entries; published by the monitor (release) */
static pid_t *worker_tid;                      /* monitor only */

/* ------------------------------------------------------------------ signal handlers */

static void quit_handler(int sig)
{
    int saved = errno;
    atomic_store_explicit(&quit_pending, 1, memory_order_relaxed); /* ordered by sem_post */
    sem_post(&wake_sem);
    errno = saved;
    (void)sig;
}

RACY_READER static void sample_handler(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    struct worker *w = sched_cur_worker();
    struct sample *all = atomic_load_explicit(&samples, memory_order_acquire); /* pairs with the publication */
    struct sample *s = w && all ? &all[w->id] : NULL;
    if (s && atomic_load_explicit(&s->state, memory_order_acquire) == 1) { /* pairs with the request */
        const ucontext_t *uc = ucv;
        uintptr_t pc = ARCH_UC_PC(uc); /* sched/arch/arch.h */
        uintptr_t fp = ARCH_UC_FP(uc);
        struct g *g = w->curg; /* own field: we are the worker */
        s->g = g;
        s->n = 0;
        if (g) {
            uintptr_t lo, hi;
            sched_g_stack_bounds(g, &lo, &hi);
            s->pcs[0] = pc;
            s->n = 1 + (uint32_t)sched_walk_fp(fp, lo, hi, s->pcs + 1, DBG_MAX_FRAMES - 1);
        }
        atomic_store_explicit(&s->state, 2, memory_order_release); /* publishes g, n, pcs */
    }
    /* not a request of ours (a SIGURG from elsewhere): ignored, as by default */
    errno = saved;
    (void)sig;
    (void)si;
}

/* ------------------------------------------------------------------ where a worker is */

/* Kernel thread ids of the workers, by their names "ringo-wN" (proc.c names them before the
 * start barrier, so they are all named once sched_started()). */
static void note_worker_tid(pid_t tid, const char *comm, void *unused)
{
    (void)unused;
    unsigned id;
    char nl;
    if (sscanf(comm, "ringo-w%u%c", &id, &nl) == 2 && nl == '\n' && id < sched.nprocs)
        worker_tid[id] = tid;
}

static void find_worker_tids(void)
{
    worker_tid = calloc(sched.nprocs, sizeof *worker_tid);
    if (worker_tid)
        sched_for_each_thread(note_worker_tid, NULL);
}

/* The system call worker wid is blocked in (-1: running user code, or unknown), and the pc
 * it was called from. */
static long worker_syscall(unsigned wid, uintptr_t *pc)
{
    if (!worker_tid || !worker_tid[wid])
        return -1;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)worker_tid[wid]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[k > 0 ? k : 0] = 0;
    if (buf[0] < '0' || buf[0] > '9')
        return -1; /* "running", or "-1 sp pc" (stopped outside a system call) */
    /* "nr a1 a2 a3 a4 a5 a6 sp pc" */
    unsigned long v[9] = { 0 };
    if (sscanf(buf, "%lu %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7], &v[8]) == 9)
        *pc = (uintptr_t)v[8];
    return (long)v[0];
}

/* The calls a goroutine may keep its worker in; "?" for the others. */
const char *sched_syscall_name(long nr)
{
    switch (nr) {
    case SYS_read: return "read";
    case SYS_write: return "write";
#ifdef SYS_poll /* not on AArch64: only the p-/pwait forms exist there */
    case SYS_poll: return "poll";
#endif
    case SYS_pread64: return "pread64";
    case SYS_pwrite64: return "pwrite64";
    case SYS_readv: return "readv";
    case SYS_writev: return "writev";
#ifdef SYS_select /* not on AArch64: only the p-/pwait forms exist there */
    case SYS_select: return "select";
#endif
#ifdef SYS_pause /* not on AArch64: only the p-/pwait forms exist there */
    case SYS_pause: return "pause";
#endif
    case SYS_nanosleep: return "nanosleep";
    case SYS_connect: return "connect";
    case SYS_accept: return "accept";
    case SYS_sendto: return "sendto";
    case SYS_recvfrom: return "recvfrom";
    case SYS_sendmsg: return "sendmsg";
    case SYS_recvmsg: return "recvmsg";
    case SYS_wait4: return "wait4";
    case SYS_fsync: return "fsync";
    case SYS_futex: return "futex";
    case SYS_clock_nanosleep: return "clock_nanosleep";
#ifdef SYS_epoll_wait /* not on AArch64: only the p-/pwait forms exist there */
    case SYS_epoll_wait: return "epoll_wait";
#endif
    case SYS_pselect6: return "pselect6";
    case SYS_ppoll: return "ppoll";
    case SYS_epoll_pwait: return "epoll_pwait";
    case SYS_accept4: return "accept4";
    case SYS_io_uring_enter: return "io_uring_enter";
    }
    return "?";
}

size_t sched_monitor_sample(unsigned wid, struct g *expect, uintptr_t *pcs, size_t max, long *in_syscall)
{
    *in_syscall = -1;
    struct sample *all = atomic_load_explicit(&samples, memory_order_relaxed); /* own */
    if (!all || wid >= sched.nprocs || max == 0)
        return 0;
    uintptr_t pc = 0;
    long nr = worker_syscall(wid, &pc);
    if (nr >= 0) {
        /* blocked in the kernel: a signal would interrupt the call (EINTR) */
        *in_syscall = nr;
        if (!pc)
            return 0;
        pcs[0] = pc;
        return 1;
    }
    if (!sampler_on)
        return 0;
    struct sample *s = &all[wid];
    atomic_store_explicit(&s->state, 1, memory_order_release); /* pairs with the handler's acquire */
    if (pthread_kill(sched.w[wid]->thread, SAMPLE_SIG) != 0) {
        atomic_store_explicit(&s->state, 0, memory_order_relaxed);
        return 0;
    }
    int64_t deadline = clk_now() + SAMPLE_WAIT_US * 1000LL;
    while (atomic_load_explicit(&s->state, memory_order_acquire) != 2) { /* pairs with the handler's release */
        if (clk_now() > deadline) {
            atomic_store_explicit(&s->state, 0, memory_order_relaxed); /* a late answer is ignored */
            return 0;
        }
        usleep(200);
    }
    size_t n = 0;
    if (!expect || s->g == expect)
        for (; n < s->n && n < max; n++)
            pcs[n] = s->pcs[n];
    atomic_store_explicit(&s->state, 0, memory_order_relaxed); /* own until the next request */
    return n;
}

/* ------------------------------------------------------------------ schedtrace */

struct wprev {
    uint64_t switches, steals, parks, wakeups, spawned;
};
static struct wprev *prev; /* monitor only */

static uint64_t ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed); /* stats only */
}

RACY_READER static long long racy_g_id(struct g *g)
{
    return (long long)((volatile struct g *)g)->id;
}

/* What worker w is doing, from fields it owns (racy: a snapshot for people). */
RACY_READER static int worker_state(struct worker *w, char *buf, size_t n)
{
    volatile struct worker *v = w;
    struct g *g = v->curg;
    if (g)
        return snprintf(buf, n, "running g=%lld", racy_g_id(g));
    if (v->spinning)
        return snprintf(buf, n, "spinning");
    if (v->idle)
        return snprintf(buf, n, "idle");
    return snprintf(buf, n, "scheduling");
}

static void schedtrace(int64_t now, int64_t start)
{
    size_t cap = 256 + (size_t)sched.nprocs * 256, len = 0;
    char *out = malloc(cap);
    if (!out)
        return;
    long long ms = (long long)((now - start) / 1000000);
    len += (size_t)snprintf(out + len, cap - len,
                            "SCHED %lldms: procs=%u idle=%u spinning=%u goroutines=%zu gqueue=%u timers=%lld "
                            "io=%lld threads=%lld blocked_threads=%lld\n",
                            ms, sched.nprocs, atomic_load_explicit(&sched.nidle, memory_order_relaxed),
                            atomic_load_explicit(&sched.nspinning, memory_order_relaxed), ringo_num_goroutines(),
                            atomic_load_explicit(&sched.gq_len, memory_order_relaxed),
                            (long long)atomic_load_explicit(&sched.ntimers, memory_order_relaxed),
                            (long long)atomic_load_explicit(&sched.nio, memory_order_relaxed),
                            (long long)atomic_load_explicit(&sched.nthreads_active, memory_order_relaxed),
                            (long long)atomic_load_explicit(&sched.nthreads_blocked, memory_order_relaxed));
    for (unsigned i = 0; i < sched.nprocs && len < cap; i++) {
        struct worker *w = sched.w[i];
        struct wprev c = { ld(&w->st_switches), ld(&w->st_steals), ld(&w->st_parks), ld(&w->st_wakeups),
                           ld(&w->st_spawned) };
        uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_relaxed); /* snapshot */
        uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);
        bool next = atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL;
        char st[64];
        worker_state(w, st, sizeof st);
        len += (size_t)snprintf(out + len, cap - len,
                                "SCHED %lldms w%u: cpu=%d %s runq=%u runnext=%d switches=+%llu steals=+%llu "
                                "parks=+%llu wakeups=+%llu spawned=+%llu io=%llu\n",
                                ms, i, w->cpu, st, t - h <= RUNQ_SIZE ? t - h : 0, next,
                                (unsigned long long)(c.switches - prev[i].switches),
                                (unsigned long long)(c.steals - prev[i].steals),
                                (unsigned long long)(c.parks - prev[i].parks),
                                (unsigned long long)(c.wakeups - prev[i].wakeups),
                                (unsigned long long)(c.spawned - prev[i].spawned),
                                (unsigned long long)sched_poller.waiting(w));
        prev[i] = c;
    }
    if (len > cap)
        len = cap;
    (void)!write(2, out, len); /* one write: lines of one interval stay together */
    free(out);
}

/* ------------------------------------------------------------------ hogs */

struct hog {
    uint32_t tick;                /* w->schedtick when first seen with g */
    struct g *g;
    int64_t since;                /* when (tick, g) was first seen */
    int64_t id;                   /* g->id when reported */
    bool reported;
};
static struct hog *hogs; /* monitor only */

RACY_READER static struct g *cur_g(struct worker *w)
{
    return ((volatile struct worker *)w)->curg;
}

RACY_READER static void hog_report(unsigned wid, struct g *g, int64_t held)
{
    char fn[200], buf[4096];
    uintptr_t pcs[DBG_MAX_FRAMES];
    long long id = racy_g_id(g);
    uintptr_t f = (uintptr_t)((volatile struct g *)g)->fn;
    sched_sym_name(f, fn, sizeof fn);
    long nr = -1;
    size_t n = sched_monitor_sample(wid, g, pcs, DBG_MAX_FRAMES, &nr);
    size_t len = (size_t)snprintf(buf, sizeof buf,
                                  "ringo: goroutine %lld has held worker %u for %lld ms without switching out "
                                  "(RINGO_DEBUG=hog=%u): fn=%s",
                                  id, wid, (long long)(held / 1000000), sched.hog_ms, fn);
    if (nr >= 0 && len < sizeof buf)
        len += (size_t)snprintf(buf + len, sizeof buf - len, ", blocked in system call %s (%ld)",
                                sched_syscall_name(nr), nr);
    if (len < sizeof buf)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "\n");
    for (size_t i = 0; i < n && len < sizeof buf; i++) {
        char fr[384];
        sched_sym_format(pcs[i], i > 0, fr, sizeof fr);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "\t#%zu %s\n", i, fr);
    }
    if (len > sizeof buf)
        len = sizeof buf;
    (void)!write(2, buf, len);
}

static void hog_check(int64_t now)
{
    int64_t limit = (int64_t)sched.hog_ms * 1000000;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *w = sched.w[i];
        struct hog *h = &hogs[i];
        uint32_t tick = atomic_load_explicit(&w->schedtick, memory_order_relaxed); /* heuristic only */
        struct g *g = cur_g(w);
        if (!g || tick != h->tick || g != h->g) {
            if (h->reported)
                sched_dprintf(2, "ringo: goroutine %lld let worker %u go after %lld ms\n", (long long)h->id, i,
                              (long long)((now - h->since) / 1000000));
            h->tick = tick;
            h->g = g;
            h->since = now;
            h->reported = false;
            continue;
        }
        if (!h->reported && now - h->since >= limit) {
            h->reported = true;
            h->id = racy_g_id(g);
            hog_report(i, g, now - h->since);
        }
    }
}

/* ------------------------------------------------------------------ the thread */

/* Once the runtime has started: the tables the monitor uses. Monitor thread only. */
static bool setup_done;
static void monitor_setup(void)
{
    if (setup_done)
        return;
    setup_done = true;
    struct sample *all = calloc(sched.nprocs, sizeof *all);
    prev = calloc(sched.nprocs, sizeof *prev);
    hogs = calloc(sched.nprocs, sizeof *hogs);
    find_worker_tids();
    atomic_store_explicit(&samples, all, memory_order_release); /* the handler may now use it */
}

static _Noreturn void quit(void)
{
    static const char hdr[] = "SIGQUIT: quit\n\n";
    (void)!write(2, hdr, sizeof hdr - 1);
    if (sched_started())
        monitor_setup(); /* the signal may have come before the monitor noticed the start */
    if (sched_started())
        sched_dump(2, false, true, true);
    _exit(2); /* as Go does on SIGQUIT */
}

/* A SIGQUIT interrupts some thread's sleep or read; if that lets the program reach exit()
 * while the monitor is still dumping, the exit must not win: wait for the monitor's _exit(2). */
static void quit_exit_hook(void)
{
    if (!atomic_load_explicit(&quit_pending, memory_order_relaxed))
        return;
    for (int i = 0; i < 10000; i++) /* 10 s: a dump that takes longer is stuck */
        usleep(1000);
    _exit(2);
}

/* Sleep until `until` (clk_now() clock, -1: forever) or a SIGQUIT. */
static void wait_until(int64_t until)
{
    int r;
    do {
        if (until < 0) {
            r = sem_wait(&wake_sem);
        } else {
            struct timespec ts = clk_to_ts(until);
            r = sem_clockwait(&wake_sem, CLOCK_MONOTONIC, &ts);
        }
    } while (r != 0 && errno == EINTR);
}

static void *monitor_main(void *arg)
{
    (void)arg;
    while (!sched_started()) {
        wait_until(clk_now() + 1000000);
        if (atomic_load_explicit(&quit_pending, memory_order_relaxed))
            quit();
    }
    bool trace = sched.debug & DBG_SCHEDTRACE, hog = sched.debug & DBG_HOG;
    monitor_setup();
    if (!prev || !hogs) {
        fprintf(stderr, "ringo: monitor: out of memory; RINGO_DEBUG schedtrace/hog off\n");
        trace = hog = false;
    }
    int64_t start = clk_now();
    int64_t trace_ns = (int64_t)sched.schedtrace_ms * 1000000;
    int64_t hog_period = (int64_t)sched.hog_ms * 1000000 / 4;
    if (hog_period < 1000000)
        hog_period = 1000000;
    if (hog_period > 250000000)
        hog_period = 250000000;
    int64_t next_trace = start + trace_ns, next_hog = start + hog_period;
    for (;;) {
        int64_t until = -1;
        if (trace)
            until = next_trace;
        if (hog && (until < 0 || next_hog < until))
            until = next_hog;
        wait_until(until);
        if (atomic_load_explicit(&quit_pending, memory_order_relaxed))
            quit();
        int64_t now = clk_now();
        if (trace && now >= next_trace) {
            schedtrace(now, start);
            next_trace += trace_ns;
            if (next_trace <= now)
                next_trace = now + trace_ns; /* we fell behind (a stopped process): no burst */
        }
        if (hog && now >= next_hog) {
            hog_check(now);
            next_hog = now + hog_period;
        }
    }
    return NULL;
}

void sched_monitor_init(void)
{
    unsigned want = sched.debug & (DBG_SCHEDTRACE | DBG_HOG | DBG_SIGQUIT);
    if (!want)
        return;
    if ((want & DBG_SCHEDTRACE) && sched.schedtrace_ms == 0)
        sched.schedtrace_ms = 1000;
    if ((want & DBG_HOG) && sched.hog_ms == 0)
        sched.hog_ms = 10;
    if (sem_init(&wake_sem, 0, 0) != 0)
        return;
    struct sigaction sa;
    if (want & (DBG_HOG | DBG_SIGQUIT)) {
        /* only if the program does not use SIGURG itself */
        struct sigaction old;
        if (sigaction(SAMPLE_SIG, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
            (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = sample_handler;
            sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
            sigemptyset(&sa.sa_mask);
            sampler_on = sigaction(SAMPLE_SIG, &sa, NULL) == 0;
        }
    }
    if (want & DBG_SIGQUIT) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = quit_handler;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGQUIT, &sa, NULL);
        atexit(quit_exit_hook);
    }
    /* every signal blocked in the monitor: it must never run a handler meant for the program */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int r = pthread_create(&t, &a, monitor_main, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        fprintf(stderr, "ringo: cannot start the monitor thread (%s): RINGO_DEBUG schedtrace/hog/sigquit off\n",
                strerror(r));
        if (want & DBG_SIGQUIT)
            signal(SIGQUIT, SIG_DFL);
        return;
    }
    /* named before anyone can ask: the runtime is not started yet, so no deadlock check runs */
    pthread_setname_np(t, "ringo-wmon");
}
