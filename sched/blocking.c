/* sched/blocking.c — ringo_blocking: a call known to block, run on a pool thread.
 *
 * Responsibility: int ringo_blocking(void (*fn)(void *), void *arg). A call that blocks its
 * thread in the kernel or in a library (getaddrinfo, a library without an async API, a stat on
 * NFS) would hold a worker and every goroutine queued on it. From a goroutine, ringo_blocking
 * hands fn(arg) to a pool thread and parks (wait reason "blocking call"); the pool thread runs
 * fn, then readies the goroutine. Returns 0 once fn has returned; -EINVAL when fn is NULL;
 * -EAGAIN only when no pool thread exists and none can be created (fn did not run). On a plain
 * thread (main, or a pool thread itself when fn nests) there is nothing to free: fn runs inline.
 *
 * The pool (after Tokio's spawn_blocking): at most sched.blocking_max threads
 * (RINGO_BLOCKING_THREADS, default 512), made on demand: a job goes to an idle thread if one
 * waits, else to a new thread while fewer than the maximum live, else it waits in the FIFO
 * queue for the next thread that finishes its job. An idle thread waits on the condition
 * variable for sched.blocking_idle_ms (RINGO_BLOCKING_IDLE_MS, default 10 s) and then retires.
 * Pool threads are plain threads (a mutex and a condition variable, nothing lock-free here),
 * named "ringo-b<N>", with the affinity mask the runtime started with (not the CPU of the
 * worker that created them).
 *
 * Invariants:
 *   B1  A job lives in the parked goroutine's frame. It is on the queue or run by exactly one
 *       pool thread, and its goroutine stays parked (WR_BLOCKING) until that thread calls
 *       sched_ready; the thread touches the job no more after that call.
 *   B2  sched.nblocking counts goroutine jobs from before the job is published (so before the
 *       goroutine parks) until after sched_ready has put the goroutine on a run queue (I5): a
 *       goroutine waiting for a blocking call is never taken for deadlocked.
 *   B3  Under pool.lock: alive <= blocking_max; nidle counts threads waiting on the condition
 *       variable that no submitter has picked yet; each pick moves one from nidle to nnotify and
 *       signals, and the thread that wakes takes one from nnotify.
 *   B4  A pool thread counts itself in sched.nblocking_idle exactly while it runs no job. The
 *       deadlock check (sched/debug/deadlock.c) counts those as quiet threads: such a thread
 *       only acts on a job, and a job means nblocking > 0. As every party that goes quiet, a
 *       thread checks for a deadlock after it counts itself idle, and an exiting one after it
 *       stopped counting itself (as a thread on its way out).
 *   B5  A thread retires only with the queue empty, under pool.lock: while the queue holds a
 *       job, some live thread will take it (a new job either picks an idle thread, starts one,
 *       or finds all alive threads busy, each of which looks at the queue before it idles).
 *
 * fn runs on a plain thread: it may call ringo (a blocking ringo call then blocks the pool
 * thread, which attaches as any plain thread does), but it should not wait on goroutines for
 * long, as it holds one of the pool's threads.
 *
 * Depends on: sched.h (park protocol: sched_park_prepare, sched_park, sched_ready, sched_self;
 * deadlock counters, sched_debug_hooks), proc.c (sched_cur_worker), kernel_iface/clock.
 */
#include "sched/sched.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <stdio.h>
#include <time.h>

struct blocking_job {
    void (*fn)(void *);
    void *arg;
    struct g *g;                  /* parked until fn returned (B1) */
    struct blocking_job *next;    /* queue link; under pool.lock */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* CLOCK_MONOTONIC; a job for an idle thread */
    struct blocking_job *head, *tail; /* FIFO of jobs no thread took yet */
    unsigned alive;               /* pool threads alive (B3) */
    unsigned nidle;               /* waiting, not picked (B3) */
    unsigned nnotify;             /* picked, not woken yet (B3) */
    unsigned seq;                 /* thread names */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&pool.cond, &ca) != 0)
        sched_fatal("ringo_blocking: cannot make the pool's condition variable");
    pthread_condattr_destroy(&ca);
}

static struct blocking_job *pop_locked(void)
{
    struct blocking_job *j = pool.head;
    if (j) {
        pool.head = j->next;
        if (!pool.head)
            pool.tail = NULL;
    }
    return j;
}

/* Run a job: fn, then ready its goroutine (B1), then let the deadlock counters go (B2). */
static void run_job(struct blocking_job *j)
{
    struct g *g = j->g;
    j->fn(j->arg);
    sched_ready(g); /* the last touch of j's frame: g may run and return at once (B1) */
    sched_dl_add(&sched.dl_epoch, 1); /* a plain thread readied a goroutine: a check meanwhile decides nothing */
    int64_t was = sched_dl_add(&sched.nblocking, -1); /* B2: after the ready */
    SCHED_CHECK(was > 0, "ringo_blocking: job count %lld went negative", (long long)was - 1);
    (void)was; /* SCHED_CHECK compiles out without debug checks */
}

static void timespec_after_ms(struct timespec *ts, unsigned ms)
{
    int64_t t = clk_now() + (int64_t)ms * 1000000;
    ts->tv_sec = (time_t)(t / 1000000000);
    ts->tv_nsec = (long)(t % 1000000000);
}

static void *pool_main(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "ringo-b%u", (unsigned)(uintptr_t)arg);
    pthread_setname_np(pthread_self(), name); /* dumps and ps; the deadlock check goes by B4 */
    bool counted_idle = false; /* B4: born for a job, so not idle */
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        struct blocking_job *j = pop_locked();
        if (j) {
            pthread_mutex_unlock(&pool.lock);
            if (counted_idle) /* nblocking > 0 already (B2): the check sees us busy anyway */
                sched_dl_add(&sched.nblocking_idle, -1);
            counted_idle = false;
            run_job(j);
            sched_dl_add(&sched.nblocking_idle, 1); /* B4: seq_cst, then check (Dekker) */
            counted_idle = true;
            sched_debug_hooks.check_deadlock(0);
            pthread_mutex_lock(&pool.lock);
            continue;
        }
        /* idle: wait to be picked, or retire after the idle timeout */
        struct timespec until;
        timespec_after_ms(&until, sched.blocking_idle_ms);
        pool.nidle++;
        bool picked = false, timed_out = false;
        for (;;) {
            if (pool.nnotify > 0) { /* a submitter picked one of us (B3): us */
                pool.nnotify--;
                picked = true;
                break;
            }
            if (timed_out) {
                pool.nidle--;
                break;
            }
            if (pthread_cond_timedwait(&pool.cond, &pool.lock, &until) == ETIMEDOUT)
                timed_out = true;
        }
        if (picked || pool.head)
            continue;
        pool.alive--; /* B5: the queue is empty */
        pthread_mutex_unlock(&pool.lock);
        break;
    }
    if (counted_idle)
        sched_dl_add(&sched.nblocking_idle, -1); /* B4: before we leave /proc */
    sched_dl_add(&sched.dl_epoch, 1); /* a thread leaves, as a detach: a check meanwhile decides nothing */
    /* on our way out (still in /proc): as a detaching thread, maybe the last one to go quiet */
    sched_debug_hooks.check_deadlock(1);
    return NULL;
}

/* Under pool.lock, j already queued: make sure some thread will take it. false when no pool
 * thread exists and none could be started (j is then unqueued). */
static bool dispatch_locked(struct blocking_job *j)
{
    SCHED_CHECK(pool.alive <= sched.blocking_max, "ringo_blocking: %u pool threads, max %u", pool.alive,
                sched.blocking_max);
    if (pool.nidle > 0) { /* B3 */
        pool.nidle--;
        pool.nnotify++;
        pthread_cond_signal(&pool.cond);
        return true;
    }
    if (pool.alive >= sched.blocking_max)
        return true; /* every thread is busy: the first one done takes the queue's head (B5) */
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setaffinity_np(&a, sizeof sched.allowed, &sched.allowed);
    pthread_t t;
    int r = pthread_create(&t, &a, pool_main, (void *)(uintptr_t)pool.seq);
    pthread_attr_destroy(&a);
    if (r == 0) {
        pool.seq++;
        pool.alive++;
        return true;
    }
    if (pool.alive > 0)
        return true; /* a live thread will come back to the queue (B5) */
    SCHED_CHECK(pool.head == j && pool.tail == j, "ringo_blocking: jobs queued with no pool thread");
    pool.head = pool.tail = NULL;
    return false;
}

int ringo_blocking(void (*fn)(void *arg), void *arg)
{
    if (!fn)
        return -EINVAL;
    struct worker *w = sched_cur_worker();
    if (!w || !w->curg || w->locked) {
        fn(arg); /* a plain thread or a locked goroutine's (lockthread.c): nobody else runs on it */
        return 0;
    }
    if (unlikely(sched_self_canceled(w->curg)))
        return -ECANCELED; /* group.c: fn does not run */
    pthread_once(&pool_once, pool_init);
    struct g *self = sched_self();
    struct blocking_job job = { .fn = fn, .arg = arg, .g = self, .next = NULL };
    sched_dl_add(&sched.nblocking, 1); /* B2: before anyone can see the job */
    sched_park_prepare(self, WR_BLOCKING);
    pthread_mutex_lock(&pool.lock);
    if (pool.tail)
        pool.tail->next = &job;
    else
        pool.head = &job;
    pool.tail = &job;
    bool ok = dispatch_locked(&job);
    pthread_mutex_unlock(&pool.lock);
    if (!ok) {
        /* nobody saw the job: we own ourselves again */
        atomic_store_explicit(&self->status, GS_RUNNING, memory_order_relaxed); /* own: never published */
        self->wait_reason = WR_NONE;
        sched_dl_add(&sched.nblocking, -1);
        return -EAGAIN;
    }
    sched_park(self, -1, NULL, 0); /* the pool thread's sched_ready publishes fn's writes (park.c) */
    return 0;
}
