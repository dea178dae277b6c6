/* sched/park.c — the one park/ready protocol every blocking primitive uses.
 *
 * Responsibility: sched_park / sched_ready for goroutines and for plain threads, and the
 * stand-in g of a plain thread.
 *
 * The race "g is still switching out" vs "someone already readied g" is solved here, once, with
 * the status word (enum gstatus in sched.h):
 *
 *   parker (on its own stack)           waker (any thread)                post-switch (next context)
 *   status = PARKING  (before publish)
 *   publish self; unlock primitive      find g under the primitive's lock
 *   switch out ----------------------->  CAS PARKING -> WOKEN: done ........ CAS PARKING -> PARKED fails:
 *                                                                            status = RUNNABLE, enqueue
 *                                        or CAS PARKED -> RUNNABLE:  <...... CAS PARKING -> PARKED ok
 *                                          enqueue (the waker)
 *
 *   Exactly one CAS succeeds per transition, so exactly one party enqueues g (I1), and only after
 *   its context is saved (I3): post-switch runs after the stack swap, and PARKED is only set there.
 *
 * Ordering: the waker's CAS is acq_rel. Its release half publishes what the waker wrote for g
 * (a channel value in g's slot) to g, through either the enqueue (run-queue release/acquire) or
 * the post-switch CAS failure (acquire). Its acquire half, from PARKED, pairs with the
 * post-switch release so the waker's enqueue sees g's saved stack pointer.
 *
 * Plain threads: the stand-in g parks by futex-waiting on its own status word while it reads
 * PARKING; a waker CASes PARKING -> WOKEN and futex-wakes. It records its frame pointer and, at
 * attach, its stack bounds, so a dump can list where a blocked thread waits. Thread stand-ins are never freed
 * (recycled through sched.free_threads), so a futex_wake that races with the thread's exit
 * touches valid memory and at worst causes a spurious wake-up, which every wait loop tolerates.
 *
 * Deadlines: with a claim word, the waker and the timer race by CAS on it; the loser does
 * nothing. A group member's claim can also be won by its group's canceller, with the
 * deadline's value (group.c): the park then returns -ECANCELED instead of -ETIMEDOUT. A
 * goroutine's timer lives in its own parked frame, removed after it wakes (timer.c takes care
 * of the race with a firing timer).
 *
 * Deadlock accounting (I5): a thread that parks forever leaves sched.nthreads_active; the waker
 * puts it back *before* the CAS that lets it run, so the count never shows zero while the thread
 * is in fact runnable.
 *
 * The main thread leaving (pthread_exit, or ringo_exit: Go's Goexit in main) is recorded in
 * sched.main_exited, by main itself, before its last deadlock check (Dekker with the workers
 * going idle, as for the counters): the process then ends when nothing is left to run
 * (sched/debug/deadlock.c). A thread-specific destructor sees the pthread_exit; returning from
 * main() is exit() and runs none.
 *
 * Depends on: sched.h, ctx.c (switch out), timer.c (deadlines), proc.c (enqueue),
 * sched_debug_hooks (deadlock check), kernel_iface/futex, clock.
 */
#include "sched/sched.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static __thread struct g *tls_thread_g;
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_key_init(void)
{
    pthread_key_create(&thread_key, sched_thread_detach);
}

static pthread_key_t main_key;
static pthread_once_t main_key_once = PTHREAD_ONCE_INIT;
static __thread bool main_watched; /* this thread went through sched_main_watch */

static bool on_main_thread(void)
{
    return (pid_t)syscall(SYS_gettid) == getpid();
}

/* main's thread-specific destructor: main is leaving by pthread_exit (or ringo_exit). */
static void main_gone(void *p)
{
    (void)p;
    /* main is the only writer, so read-then-add is no race; seq_cst: the Dekker pair with the
     * workers going idle (they read it in their check after announcing) */
    if (sched_dl_read(&sched.main_exited) == MAIN_RUNNING)
        sched_dl_add(&sched.main_exited, MAIN_PTHREAD_EXIT);
    sched_debug_hooks.check_deadlock(1); /* main still counts itself among the threads */
}

static void main_key_init(void)
{
    pthread_key_create(&main_key, main_gone);
}

void sched_main_watch(void)
{
    if (likely(main_watched))
        return;
    main_watched = true;
    if (!on_main_thread())
        return;
    pthread_once(&main_key_once, main_key_init);
    pthread_setspecific(main_key, &main_key); /* any non-NULL value: the destructor runs */
}

void sched_main_ringo_exit(void)
{
    if (!on_main_thread() || sched_start() != 0)
        return; /* another thread, or no runtime: a plain pthread_exit */
    sched_main_watch();
    if (sched_dl_read(&sched.main_exited) == MAIN_RUNNING) /* main is the only writer */
        sched_dl_add(&sched.main_exited, MAIN_RINGO_EXIT);
}

/* Attach the calling plain thread: from now on it counts for deadlock detection. */
static struct g *thread_attach(void)
{
    pthread_once(&thread_key_once, thread_key_init);
    pthread_mutex_lock(&sched.tlock);
    struct g *tg = sched.free_threads;
    if (tg)
        sched.free_threads = tg->schedlink;
    else
        tg = calloc(1, sizeof *tg);
    if (!tg) {
        pthread_mutex_unlock(&sched.tlock);
        sched_fatal("out of memory attaching a thread");
    }
    tg->is_thread = 1;
    tg->gls = NULL;   /* issue 14: a recycled stand-in starts with no GLS and no name */
    tg->name[0] = 0;
    tg->id = (int64_t)syscall(SYS_gettid);
    tg->park_fp = NULL;
    tg->stack_lo = NULL;
    tg->stack_size = 0;
    pthread_attr_t a; /* the stack a dump may walk from park_fp (sched/debug/dump.c) */
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *lo;
        size_t sz;
        if (pthread_attr_getstack(&a, &lo, &sz) == 0) {
            tg->stack_lo = lo;
            tg->stack_size = sz;
        }
        pthread_attr_destroy(&a);
    }
    atomic_store_explicit(&tg->status, GS_RUNNING, memory_order_relaxed);
    tg->allthreads_next = sched.allthreads;
    sched.allthreads = tg;
    pthread_mutex_unlock(&sched.tlock);
    sched_dl_add(&sched.nthreads_active, 1); /* seq_cst: deadlock check pairs with it */
    sched_dl_add(&sched.dl_epoch, 1);        /* a new party: a check in progress decides nothing */
    tls_thread_g = tg;
    pthread_setspecific(thread_key, tg);
    sched_main_watch();
    return tg;
}

void sched_thread_detach(void *p)
{
    struct g *tg = p;
    /* issue 14: the thread's GLS destructors first, while it is still attached: they may use
     * ringo (sched_self still finds this stand-in) */
    if (tg->gls)
        sched_gls_exit(tg);
    sched_dl_add(&sched.nthreads_active, -1);
    sched_dl_add(&sched.dl_epoch, 1); /* see sched.dl_epoch */
    pthread_mutex_lock(&sched.tlock);
    for (struct g **pp = &sched.allthreads; *pp; pp = &(*pp)->allthreads_next)
        if (*pp == tg) {
            *pp = tg->allthreads_next;
            break;
        }
    atomic_store_explicit(&tg->status, GS_IDLE, memory_order_relaxed);
    tg->schedlink = sched.free_threads;
    sched.free_threads = tg;
    pthread_mutex_unlock(&sched.tlock);
    tls_thread_g = NULL;
    /* an exiting thread may have been the last one running: everyone else may be asleep */
    sched_debug_hooks.check_deadlock(1);
}

struct g *sched_thread_g(void)
{
    return tls_thread_g;
}

struct g *sched_self(void)
{
    struct worker *w = sched_cur_worker();
    if (w && w->curg)
        return w->curg;
    struct g *tg = tls_thread_g;
    if (unlikely(!tg)) {
        if (sched_start() != 0)
            sched_fatal("the runtime could not start");
        tg = thread_attach();
    }
    return tg;
}

static int thread_park(struct g *self, int64_t deadline, _Atomic uint32_t *claim, uint32_t claim_val)
{
    bool forever = self->forever; /* set by sched_park_prepare*, before publication */
    self->wait_since = clk_now_coarse();
    /* where a dump starts the walk of our stack: the frames above this one stay put while we
     * wait (the deadlock check reads it after our seq_cst counter change below) */
    self->park_fp = __builtin_frame_address(0);
    if (forever) {
        sched_dl_add(&sched.nthreads_blocked, 1);
        /* seq_cst: Dekker pair with a worker going idle (proc.c step b / deadlock check) */
        if (sched_dl_add(&sched.nthreads_active, -1) == 1)
            sched_debug_hooks.check_deadlock(0);
    }
    int r = 0;
    for (;;) {
        /* acquire: pairs with the waker's CAS to WOKEN (its writes for us) */
        if (atomic_load_explicit(&self->status, memory_order_acquire) != GS_PARKING)
            break;
        int e = futex_wait((uint32_t *)&self->status, GS_PARKING, deadline);
        if (e == -ETIMEDOUT) {
            if (claim) {
                if (sched_claim(claim, claim_val)) {
                    r = -ETIMEDOUT; /* we own ourselves: no waker will touch us */
                    break;
                }
                deadline = -1; /* a waker won: it will ready us shortly */
            } else {
                uint32_t exp = GS_PARKING;
                /* acquire: a waker's CAS to WOKEN that raced us published its writes; on success
                 * nobody else touches us (no claim: the timer is ours alone) */
                if (atomic_compare_exchange_strong_explicit(&self->status, &exp, GS_RUNNING,
                                                            memory_order_acquire, memory_order_acquire))
                    break;
            }
        }
    }
    atomic_store_explicit(&self->status, GS_RUNNING, memory_order_relaxed); /* own */
    self->wait_reason = WR_NONE;
    return r;
}

int sched_park(struct g *self, int64_t deadline, _Atomic uint32_t *claim, uint32_t claim_val)
{
    if (self->is_thread)
        return thread_park(self, deadline, claim, claim_val);
    struct worker *w = sched_cur_worker();
    struct timer t;
    bool armed = false;
    if (claim && unlikely(self->grp != NULL)) {
        /* group.c G3/G4: a member's wait ends early when its group is cancelled */
        if (!sched_cancel_arm(self, claim, claim_val)) {
            armed = true;
        } else if (sched_claim(claim, claim_val)) {
            /* cancelled already, and the claim is ours: no waker will touch us (they must win
             * the claim first); withdraw as for a deadline, without switching out */
            atomic_store_explicit(&self->status, GS_RUNNING, memory_order_relaxed); /* own */
            self->wait_reason = WR_NONE;
            return -ECANCELED;
        } /* else a waker won the claim: it readies us; the next call sees the cancel */
    }
    self->wait_since = clk_now_coarse(); /* dumps only: the coarse clock is a memory read */
    if (deadline >= 0) {
        t.when = deadline;
        t.fn = NULL;
        t.g = self;
        t.claim = claim;
        t.claim_val = claim_val;
        sched_timer_add(w, &t);
    }
    sched_stat_inc(&w->st_parks); /* stats only */
    sched_switch_out(w, self, PA_PARK);
    self->wait_reason = WR_NONE;
    bool canceled = armed && sched_cancel_disarm(self); /* G3: before the claim word goes */
    if (deadline >= 0) {
        sched_timer_del(&t);
        /* the claim is ours to read: whoever won it has finished with it before readying us */
        if (claim && atomic_load_explicit(claim, memory_order_relaxed) == claim_val)
            return canceled ? -ECANCELED : -ETIMEDOUT;
    }
    return canceled ? -ECANCELED : 0;
}

/* Stats: one wake-up (a sched_ready) by the calling thread. */
static void count_wakeup(void)
{
    struct worker *w = sched_cur_worker();
    if (w) /* own counter: a plain load and store; readers sum racily (relaxed) */
        sched_stat_inc(&w->st_wakeups);
    else
        atomic_fetch_add_explicit(&sched.thread_wakeups, 1, memory_order_relaxed); /* counter only */
}

void sched_ready(struct g *g)
{
    count_wakeup();
    if (g->is_thread) {
        if (g->forever) {
            sched_dl_add(&sched.nthreads_blocked, -1);
            sched_dl_add(&sched.nthreads_active, 1); /* I5: before it can run */
            sched_dl_add(&sched.dl_epoch, 1);        /* it may block again before a check ends */
        }
        uint32_t exp = GS_PARKING;
        /* release: our writes for the thread; it acquires the status */
        if (!atomic_compare_exchange_strong_explicit(&g->status, &exp, GS_WOKEN, memory_order_acq_rel,
                                                     memory_order_relaxed))
            sched_fatal("ready: thread not parked (status %s)", sched_status_str(exp));
        futex_wake((uint32_t *)&g->status, 1);
        return;
    }
    uint32_t s = atomic_load_explicit(&g->status, memory_order_relaxed);
    bool counted = false;
    for (;;) {
        if (s == GS_PARKED) {
            if (unlikely(g->lockw != NULL) && g->forever && !counted) {
                /* lockthread.c L3: its locked worker dropped the count at PARKED; back first */
                counted = true;
                sched_dl_add(&sched.nthreads_blocked, -1);
                sched_dl_add(&sched.nthreads_active, 1);
                sched_dl_add(&sched.dl_epoch, 1);
            }
            /* acq_rel: acquire pairs with post-switch's release (g's saved context) */
            if (atomic_compare_exchange_weak_explicit(&g->status, &s, GS_RUNNABLE, memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                sched_enqueue_ready(g);
                return;
            }
        } else if (s == GS_PARKING) {
            struct worker *w = sched_cur_worker(); /* proc.c F7, as sched_enqueue_ready says */
            atomic_store_explicit(&g->peer_ready, w && w->curg, memory_order_relaxed);
            /* release: the post-switch context acquires it and enqueues g */
            if (atomic_compare_exchange_weak_explicit(&g->status, &s, GS_WOKEN, memory_order_acq_rel,
                                                      memory_order_relaxed))
                return;
        } else {
            sched_fatal("ready: goroutine %lld is not parked (status %s)", (long long)g->id,
                        sched_status_str(s));
        }
    }
}
