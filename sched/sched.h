/* sched/sched.h — internal interface of the scheduler (never installed).
 *
 * Responsibility: goroutines (struct g), the per-CPU workers that run them, the one park/ready
 * protocol every blocking primitive uses, per-worker timers, and the runtime's global state.
 *
 * Vocabulary (after Go's proc.go):
 *   g        a goroutine, or the stand-in of a plain thread that blocks in ringo (g->is_thread).
 *   worker   an OS thread pinned to one CPU that runs goroutines; its own stack is "g0".
 *   park     a g gives up its worker until someone calls sched_ready(g).
 *
 * Invariants (each is relied on by name elsewhere):
 *   I1  A g is on at most one run queue (a worker's ring, its runnext slot, or the global queue),
 *       and only in status GS_RUNNABLE.
 *   I2  A running g is owned by exactly one worker: w->curg == g and g->status == GS_RUNNING.
 *   I3  A g is put on a run queue only after its context is fully saved: whoever parks, yields
 *       or spawns never enqueues itself; the context that runs *after* the switch does
 *       (sched_post_switch), or a waker that won the PARKED -> RUNNABLE CAS.
 *   I4  Runtime code never holds a pointer to thread-local data across a switch; the current
 *       worker is re-read with sched_cur_worker() after every switch (goroutines migrate).
 *   I5  Every source of work a sleeping worker cannot see by itself (global queue, plain-thread
 *       producers, timers of other workers, I/O) either wakes a worker or is counted in one of
 *       the deadlock counters (sched.nthreads_active, sched.ntimers, sched.nio, sched.nblocking)
 *       until the work is visible on a queue.
 *
 * Depends on: kernel_iface only. The layers (tools/check-layers.sh checks them):
 *   kernel_iface <- sched (this folder: the core) <- sched/io, sched/debug, chan
 * The core reaches sched/io only through sched/poller.h and sched/debug only through
 * sched_debug_hooks (below); never the reverse otherwise.
 */
#ifndef RINGO_SCHED_H
#define RINGO_SCHED_H

#ifdef HAVE_CONFIG_H
#include "config.h" /* RINGO_VALGRIND (configure --enable-valgrind) */
#endif
#include "ringo.h"
#include "kernel_iface/topology.h"
#include "sched/arch/arch.h" /* CACHELINE, CTX_* (the switch frame), cpu_relax */
#include <pthread.h>
#include <sched.h> /* cpu_set_t */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define RINGO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RINGO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGO_TSAN 1
#endif
#endif
/* A goroutine's TSan fiber serves every goroutine its stack slot runs (goroutine.c). The
 * functions a goroutine is in when it ends (g_entry, g_exit, sched_switch_exit, switch_to) never
 * return there, so TSan's shadow call stack of the fiber would keep their entries and grow with
 * each reuse: they are built without TSan's function entry/exit hooks (and its access checks:
 * they touch only the worker's own fields). GCC's attribute drops both; clang needs its own. */
#if defined(RINGO_TSAN) && defined(__clang__)
#define TSAN_NO_FRAMES __attribute__((disable_sanitizer_instrumentation))
#elif defined(RINGO_TSAN)
#define TSAN_NO_FRAMES __attribute__((no_sanitize_thread))
#else
#define TSAN_NO_FRAMES
#endif

/* Debug checks (Go's throw on a broken invariant): on in --enable-debug-checks and sanitizer
 * builds, compiled out otherwise. A failed check prints "fatal error: ..." and aborts. */
#if defined(RINGO_DEBUG_CHECKS) || defined(RINGO_ASAN) || defined(RINGO_TSAN)
#define SCHED_DEBUG 1
#define SCHED_CHECK(cond, ...) ((cond) ? (void)0 : sched_fatal(__VA_ARGS__))
#else
#define SCHED_DEBUG 0
#define SCHED_CHECK(cond, ...) ((void)0)
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
/* CACHELINE: sched/arch/arch.h */

/* ------------------------------------------------------------------ goroutine status
 * The status word is the park protocol (sched/park.c). It acts like a lock on the stack:
 * whoever moves a g out of PARKED/WOKEN owns the right to enqueue it, and exactly one party
 * does so. */
enum gstatus {
    GS_IDLE = 0,  /* no goroutine: the descriptor sits in a stack pool or was never used */
    GS_RUNNABLE,  /* on exactly one run queue (I1); the stack is not owned by anyone running */
    GS_RUNNING,   /* executing on one worker (I2); the stack is owned by that worker */
    GS_PARKING,   /* published to some waiter list, still running on its stack or mid-switch;
                     a waker that sees this CASes it to WOKEN and does nothing else */
    GS_WOKEN,     /* readied while PARKING: the context that completes the switch-out enqueues it */
    GS_PARKED,    /* fully switched out, on no run queue; the waker that CASes PARKED->RUNNABLE
                     enqueues it */
    GS_DEAD,      /* fn returned; the stack goes back to a pool after the switch-out */
};

/* Why a g is parked: printed by the deadlock report and ringo_dump, in Go's words. */
enum waitreason {
    WR_NONE = 0,
    WR_CHAN_SEND,    /* "chan send" */
    WR_CHAN_RECV,    /* "chan receive" */
    WR_SELECT,       /* "select" */
    WR_SELECT_NONE,  /* "select (no cases)" */
    WR_MUTEX,        /* "sync.Mutex.Lock" */
    WR_WAITGROUP,    /* "sync.WaitGroup.Wait" */
    WR_SLEEP,        /* "sleep" */
    WR_IO,           /* "IO wait" */
    WR_CHAN_SEND_NIL,/* "chan send (nil chan)" */
    WR_CHAN_RECV_NIL,/* "chan receive (nil chan)" */
    WR_BLOCKING,     /* "blocking call": ringo_blocking, fn runs on a pool thread (blocking.c) */
    WR_GROUP,        /* "group wait": ringo_group_wait (group.c) */
    WR_RWMUTEX_R,    /* "sync.RWMutex.RLock" */
    WR_RWMUTEX_W,    /* "sync.RWMutex.Lock": a writer waiting for the readers to leave */
    WR_COND,         /* "sync.Cond.Wait" */
    WR_SEM,          /* "semaphore.Acquire" (golang.org/x/sync/semaphore) */
    WR__COUNT
};
const char *sched_waitreason_str(int wr);

struct worker;
struct gls;

#define G_NAME_LEN 32             /* a goroutine's name: at most 31 bytes */

struct g {
    void *sp;                     /* saved stack pointer while switched out; own */
    _Atomic uint32_t status;      /* enum gstatus; the park protocol (park.c) */
    uint8_t is_thread;            /* stand-in for a plain thread: parks on a futex */
    uint8_t wait_reason;          /* enum waitreason, set before parking; racy reads in dumps */
    uint8_t forever;              /* parked with no deadline (counts for deadlock detection) */
    _Atomic uint8_t peer_ready;   /* F7: made runnable by a goroutine it talks to (a channel or
                                     sync wake), not by g0, a plain thread or a yield; written by
                                     whoever enqueues it (relaxed), read by thieves (relaxed,
                                     a heuristic: the g may have moved on) */
    _Atomic(void *) park_obj;     /* F7: the channel or sync object it last parked on (NULL:
                                     a select, a sleep, I/O); own store, relaxed; thieves compare */
    int64_t id;                   /* goroutine id (> 0); for a thread, the thread's tid (< 0 stored negated) */
    struct g *schedlink;          /* global-queue / pool link; owned by whoever holds that list */
    void (*fn)(void *);           /* entry, for dumps */
    void *arg;
    char *stack_lo;               /* lowest usable stack address (just above the guard); for a
                                     thread: its stack as pthread_getattr_np saw it at attach */
    size_t stack_size;            /* usable bytes from stack_lo to the descriptor (thread: to
                                     its stack top); 0 for a thread whose stack is unknown */
    void *park_fp;                /* threads only: frame pointer in the park, for dumps of a
                                     blocked thread (its own stack: no one else can walk it live);
                                     racy reads, bounded by the stack above */
    int64_t wait_since;           /* ringo_now() when it parked; dumps only */
    struct g *allthreads_next;    /* threads only: list of thread stand-ins (sched.tlock) */
    void *asan_fake;              /* ASan fake-stack handle saved across a switch */
    void *tsan_fiber;             /* TSan fiber of this goroutine */
    /* -- issue 14: goroutine options (goroutine.c) and goroutine-local storage (gls.c) */
    struct gls *gls;              /* GLS values; NULL until the first ringo_gls_set, freed at
                                     exit (so a pooled descriptor has none); own */
    uint8_t stack_big;            /* a big slot (ringo_go_opts stack_size): never pooled; set once
                                     when the slot is first carved, constant after (racy readers) */
    char name[G_NAME_LEN];        /* ringo_go_opts name / ringo_set_name, NUL-terminated; ""
                                     none; written by the spawner before it runs, then by itself;
                                     dumps read it racily (bounded copy) */
    /* -- groups and cancellation (group.c) */
    struct ringo_group *grp;      /* its group, NULL none: set before it first runs, then constant */
    struct g *grp_next, *grp_prev;/* G1: the group's member list, under grp->lock */
    _Atomic uint32_t cl_lock;     /* G3: guards the cl_ fields (spinlock.h) */
    uint8_t cl_won;               /* G3: a canceller won the claim of the current park */
    uint8_t cl_posted;            /* G3: a canceller called cl_io->fn for the current park */
    uint32_t cl_val;              /* G3: the value the canceller CASes into *cl_claim */
    _Atomic uint32_t *cl_claim;   /* G3: the claim word of the current park, NULL none */
    struct sched_cancel_io *cl_io;/* G3: the I/O operation of the current park, NULL none */
    /* -- ringo_lock_thread (lockthread.c) */
    struct worker *lockw;         /* L1: the locked worker it is wired to, NULL none; own */
    unsigned lock_depth;          /* nested ringo_lock_thread calls; own */
};

/* An I/O operation a canceller cannot end by a claim (an io_uring SQE): group.c calls fn under
 * the goroutine's cl_lock, once, to ask its backend to cancel it (poll_uring.c). */
struct sched_cancel_io {
    void (*fn)(struct sched_cancel_io *self);
};

/* ------------------------------------------------------------------ run queue
 * Bounded ring with one owner (push, pop) and many thieves (steal half), as in Go's runq.
 * head is advanced by CAS from the owner's pop and from thieves; tail is written only by the
 * owner. Ordering labels: R1 tail store-release publishes the slot write; A1 thieves'
 * tail load-acquire pairs with R1; R2 head CAS-release commits a consume (the slot may then
 * be overwritten); A2 the owner's head load-acquire pairs with R2. */
#define RUNQ_SIZE 256u
struct runq {
    _Atomic uint32_t head;
    char pad0[CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t tail;
    char pad1[CACHELINE - sizeof(uint32_t)];
    _Atomic(struct g *) buf[RUNQ_SIZE];
};

/* ------------------------------------------------------------------ timers */
struct timer {
    int64_t when;                 /* deadline, ringo_now() clock */
    /* NULL: a goroutine's timer (below). Else a callback timer (timer.c T7: a timer channel,
     * chan/timechan.c): called under the heap's tlock when it fires; returns the next deadline
     * to stay in the heap (a ticker), or -1 to leave it */
    int64_t (*fn)(struct timer *t, int64_t now);
    struct g *g;                  /* readied when the timer fires (if it wins the claim) */
    _Atomic uint32_t *claim;      /* NULL: fire readies g unconditionally (sleep) */
    uint32_t claim_val;           /* CAS *claim 0 -> claim_val to win */
    int idx;                      /* heap index, -1 when not in a heap; under w->tlock */
    struct worker *w;             /* whose heap holds it */
};
struct theap_ent {                /* timer.c T5: a heap entry keeps a copy of when */
    int64_t when;
    struct timer *t;
};

/* ------------------------------------------------------------------ worker */
enum post_action { PA_NONE = 0, PA_PARK, PA_YIELD, PA_RUNNEXT, PA_EXIT,
                   PA_LOCK,    /* lockthread.c: hand the goroutine to its locked worker */
                   PA_UNLOCK   /* lockthread.c: back from the locked worker to the global queue */ };

struct worker {
    /* -- owner-only, hot */
    struct g *curg;               /* running goroutine, NULL on g0 */
    void *g0_sp;                  /* the scheduler context, saved while a goroutine runs */
    struct g *prev;               /* g that just switched out, for sched_post_switch */
    int prev_action;              /* enum post_action */
    unsigned id;                  /* index in sched.w */
    int cpu;                      /* pinned CPU, -1 if not pinned */
    int node;                     /* NUMA node position of cpu */
    uint64_t rng;                 /* xorshift state; own */
    unsigned runnext_streak;      /* consecutive picks from runnext, saturating at RUNNEXT_CAP; own */
    struct g *pool;               /* free stacks (descriptors), LIFO via schedlink; own */
    unsigned npool;
    int64_t id_next, id_end;      /* block of goroutine ids; own */
    unsigned *steal_order;        /* victims in order (nprocs-1 entries) */
    char *g0_lo; size_t g0_size;  /* worker thread stack bounds (ASan) */
    void *tsan_g0;                /* TSan fiber of the worker thread */
    pthread_t thread;

    /* -- shared with thieves / wakers */
    _Atomic uint32_t schedtick;   /* incremented per schedule; thieves read it (relaxed) */
    _Atomic(struct g *) runnext;  /* g readied by the running g: runs next; exchange/CAS */
    struct runq rq;

    /* -- timers: the heap is guarded by tlock; tfirst mirrors heap[0]->when for lock-free peeks */
    pthread_mutex_t tlock;
    struct theap_ent *theap;      /* timer.c T5: a 4-ary min-heap on when */
    unsigned tn, tcap;
    _Atomic int64_t tfirst;       /* INT64_MAX when empty; relaxed peek, rechecked under tlock */

    /* -- sleeping */
    _Atomic uint32_t wake;        /* futex word: 0 asleep/announced, 1 woken */
    bool spinning;                /* own: counted in sched.nspinning */
    bool idle;                    /* idle (asleep or about to be); under sched.idle_lock */
    bool extra;                   /* an extra worker (id >= nprocs, sysmon.c); constant */
    bool locked;                  /* a locked worker (lockthread.c): not in sched.w; constant */
    _Atomic uint32_t marked;      /* inside ringo_block_begin/end: stuck at once (sysmon.c S1) */

    /* -- stats: written by the owner (relaxed), read by anyone (relaxed): stats only */
    _Atomic uint64_t st_switches, st_steals, st_parks, st_wakeups, st_spawned, st_exited;
    _Atomic uint64_t st_spilled;  /* goroutines a full ring sent to the global queue (F6) */
    void *io;                     /* the I/O backend's per-worker state (sched/io/io.c) */
    void *altstack;               /* signal stack for the stack-overflow handler */
};

/* ------------------------------------------------------------------ global state */
struct sched {
    unsigned nprocs;              /* regular workers: w[0 .. nprocs-1], made at start */
    /* Workers that exist: the regular ones, then the extra ones the sysmon made (sysmon.c),
     * w[nprocs .. nw-1]. Only grows, up to nw_max; read it with sched_nworkers(). */
    _Atomic uint32_t nw;
    unsigned nw_max;              /* nprocs + the most extra workers; w has nw_max entries */
    /* Extra workers w[nprocs .. nprocs+extra_allowed-1] may take work from anywhere: as many
     * as there are stuck workers (sysmon.c S2). The others only give their local work away. */
    _Atomic uint32_t extra_allowed;
    struct worker **w;
    size_t stack_usable;          /* usable bytes per goroutine stack */
    size_t stack_guard;           /* guard bytes below each stack (RINGO_STACK_GUARD), page multiple */
    int pin;
    unsigned ring_entries;
    unsigned disable;             /* RINGO_DISABLE bits */
    bool on_valgrind;             /* running under valgrind (start.c, before the workers) */
    unsigned debug;               /* RINGO_DEBUG bits */
    unsigned schedtrace_ms;       /* RINGO_DEBUG=schedtrace=MS */
    unsigned hog_ms;              /* RINGO_DEBUG=hog=MS */
    unsigned blocking_max;        /* RINGO_BLOCKING_THREADS: most pool threads alive (blocking.c) */
    unsigned blocking_idle_ms;    /* RINGO_BLOCKING_IDLE_MS: an idle pool thread retires after it */
    cpu_set_t allowed;            /* the starter's affinity mask: pool threads run anywhere in it */

    /* NUMA (kernel_iface/topology): node positions, the policy, one global queue and one
     * stack pool per node position. Without NUMA there is one node. */
    unsigned nnodes;
    int *node_ids;                /* position -> node id */
    bool have_pol;
    struct topo_policy pol;

    /* global run queues, one per node: plain-thread readies (queued on the thread's node),
     * spawns from plain threads, overflow of a worker's ring (its node) */
    struct gqueue {
        pthread_mutex_t lock;
        struct g *head, *tail;    /* under lock */
        _Atomic uint32_t len;     /* written under lock; peeked without it */
        char pad[CACHELINE];
    } *gq;
    _Atomic uint32_t gq_len;      /* total over all nodes; changed under a queue lock; peeks */

    /* idle workers: w->idle flags under idle_lock; nidle counts them */
    pthread_mutex_t idle_lock;
    _Atomic uint32_t nidle;       /* seq_cst: Dekker pair with producers (proc.c) */
    _Atomic uint32_t nspinning;   /* seq_cst: workers spinning for work */

    /* deadlock detection (I5) */
    _Atomic int64_t nthreads_active;  /* attached plain threads not blocked forever in ringo */
    _Atomic int64_t nthreads_blocked; /* attached plain threads blocked forever in ringo */
    _Atomic int64_t ntimers;          /* pending timers, all workers: goroutines' and callback ones (timer.c T7) */
    _Atomic int64_t nio;              /* in-flight I/O operations, all workers */
    _Atomic int64_t nblocking;        /* ringo_blocking jobs of goroutines, queued or running (blocking.c B2) */
    _Atomic int64_t nblocking_idle;   /* pool threads running no job: quiet for the check (blocking.c B4) */
    _Atomic int64_t main_exited;      /* 0, or how main's thread left: enum main_exit; main writes */
    /* Bumped by every event that can make a quiet runtime busy again from a plain thread: a
     * thread attaching or detaching, a forever-parked thread readied. The deadlock check reads
     * it before its first look and after its last: a change means the world moved under it
     * (an ABA of the counters: a thread woke main and main blocked again) and it decides nothing. */
    _Atomic int64_t dl_epoch;
    _Atomic int64_t thread_spawned;   /* goroutines spawned from plain threads */
    _Atomic uint64_t thread_wakeups;  /* sched_ready calls made from plain threads */

    /* plain-thread stand-ins */
    pthread_mutex_t tlock;
    struct g *allthreads;         /* under tlock */
    struct g *free_threads;       /* under tlock: reused so a late futex_wake never hits freed memory */

    /* global stack pools, one per node: surplus from that node's workers */
    struct gpool {
        pthread_mutex_t lock;
        struct g *head;           /* under lock */
        _Atomic size_t n;         /* changed under lock; read as a hint without it */
        size_t low;               /* under lock: the fewest in head since the last decay (S3) */
        char **cold;              /* under lock: slots whose pages all went back (S3) */
        _Atomic size_t ncold;     /* changed under lock; read as a hint without it */
        size_t cold_cap;          /* under lock */
    } *gpool;

    _Atomic int64_t next_id;      /* id blocks; relaxed: uniqueness is all that matters */
};
extern struct sched sched;

/* The workers that exist (regular and extra): acquire pairs with the release publication of
 * an extra worker (sysmon.c S4), so w[0 .. n-1] are fully made. */
static inline unsigned sched_nworkers(void)
{
    return atomic_load_explicit(&sched.nw, memory_order_acquire);
}

/* How the main thread left while the process lives on (sched.main_exited, park.c). Returning
 * from main() is not one of them: that is exit(). */
enum main_exit { MAIN_RUNNING = 0, MAIN_PTHREAD_EXIT = 1, MAIN_RINGO_EXIT = 2 };

/* Deadlock accounting (I5): sched.nthreads_active, nthreads_blocked, main_exited, ntimers, nio,
 * nblocking and nblocking_idle change
 * only through these, and the deadlock check (sched/debug/deadlock.c) reads them only through
 * sched_dl_read. seq_cst on both sides: each party changes its own counter, then reads the
 * others' (Dekker), so in the single total order of seq_cst operations the last one to go quiet
 * sees every other change. Returns the value before the change. */
static inline int64_t sched_dl_add(_Atomic int64_t *ctr, int64_t delta)
{
    return atomic_fetch_add_explicit(ctr, delta, memory_order_seq_cst);
}
static inline int64_t sched_dl_read(_Atomic int64_t *ctr)
{
    return atomic_load_explicit(ctr, memory_order_seq_cst);
}

/* Statistics counters: one writer (the owner worker), readers anywhere sum them racily. A
 * relaxed load and store, not an RMW: no lock prefix on the owner's hot path. */
static inline void sched_stat_add(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void sched_stat_inc(_Atomic uint64_t *ctr) { sched_stat_add(ctr, 1); }

/* A StoreLoad fence (the recipe in proc.c). ThreadSanitizer does not model standalone
 * fences, so its builds use a seq_cst RMW, which it does model and which orders the same. */
#ifdef RINGO_TSAN
extern _Atomic int sched_fence_word;
#define sched_fence_seq_cst() ((void)atomic_fetch_add_explicit(&sched_fence_word, 0, memory_order_seq_cst))
#else
#define sched_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#endif



/* RINGO_DISABLE bits */
enum { DIS_GUARD_MADVISE = 1, DIS_IO_URING = 2, DIS_FUTEX_URING = 4, DIS_DEFER_TASKRUN = 8, DIS_RING_HANDOFF = 16,
       DIS_EXTRA_WORKERS = 32, DIS_PBUF_RING = 64 };
/* RINGO_DEBUG bits */
enum { DBG_STATS = 1, DBG_SCHEDTRACE = 2, DBG_SIGQUIT = 4, DBG_TOPOLOGY = 8, DBG_VERBOSE = 16, DBG_HOG = 32,
       DBG_FDCHECK = 64 };

/* ------------------------------------------------------------------ context switch (arch/, ctx.c) */
void sched_ctx_switch(void **save_sp, void *to_sp);
void sched_ctx_trampoline(void);
#if defined(__aarch64__)
/* pc signed for a `ret` whose sp is sp_at_ret, as the switch authenticates it (PAC-RET
 * builds); pc itself when return addresses are not signed. */
uintptr_t sched_ctx_sign_pc(uintptr_t pc, uintptr_t sp_at_ret);
#endif
/* Switch from the running g to the next runnable g (or to g0), leaving `action` for
 * sched_post_switch to perform on the g that left. Returns when this g runs again. */
void sched_switch_out(struct worker *w, struct g *self, int action);
/* Run a new goroutine child now; self waits in runnext (goroutine.c: child first). */
void sched_switch_to_new(struct worker *w, struct g *self, struct g *child);
/* Leave for good: self is dead, its stack is freed after the switch. */
_Noreturn void sched_switch_exit(struct worker *w, struct g *self);
void sched_post_switch(struct worker *w);
/* From g0 (worker_main): run g until it switches back. */
void sched_run_from_g0(struct worker *w, struct g *g);
void sched_ctx_stack_new(struct g *g);               /* a slot carved for the first time */
void sched_ctx_stack_release(struct g *g);   /* before goroutine.c S3 drops a slot's pages */
void sched_ctx_init(struct g *g, void (*entry)(void *)); /* g starts in entry(g) */
void sched_ctx_entered(void);                        /* first call on a new goroutine's stack */

/* ------------------------------------------------------------------ run queues (runq.c) */
bool runq_push(struct worker *w, struct g *g);      /* owner; false when full */
void runq_put(struct worker *w, struct g *g);       /* owner; overflows half to the global queue */
struct g *runq_pop(struct worker *w);               /* owner */
bool runq_empty(struct worker *v);                  /* ring and runnext; any thread, a snapshot */
/* Owner: how many goroutines an I/O poll may ready without overflowing w's ring (poll_uring.c
 * U8): the ring's room, less one for a runnext occupant that the first ready from a goroutine
 * context kicks into the ring; at least 1, so that completions always make progress. */
int sched_poll_budget(struct worker *w);
/* Thief w takes half of v's ring (what fits in w's); returns one g to run or NULL. */
struct g *runq_steal(struct worker *w, struct worker *v, bool take_runnext);
void runnext_put(struct worker *w, struct g *g);    /* owner; a g already there goes to the ring */
void gq_push_list(struct gqueue *q, struct g **gs, uint32_t n);
void gq_push_front_list(struct gqueue *q, struct g **gs, uint32_t n);
struct g *global_get(struct worker *w, uint32_t max); /* a batch into w's ring, one to run */
bool runq_work_anywhere(void);                      /* any queue non-empty (a snapshot) */
int  sched_thread_node(void);                       /* node position for work born on this thread */

/* ------------------------------------------------------------------ workers (proc.c, start.c) */
int  sched_start(void);                       /* idempotent; 0 or -errno */
bool sched_started(void);
extern pthread_barrier_t sched_start_barrier; /* start.c: the workers and the starter meet (N2) */
void *sched_worker_main(void *arg);           /* proc.c: a worker thread */
struct worker *sched_cur_worker(void);        /* NULL on a plain thread; re-read after a switch (I4) */
static inline struct g *sched_cur_g(struct worker *w) { return w ? w->curg : NULL; }
struct g *sched_racy_curg(struct worker *w);  /* another worker's curg, racy (proc.c F7) */
/* The next goroutine this worker can run without sleeping or stealing (the fairness policy). */
struct g *sched_next_local(struct worker *w);
/* Make g runnable: runnext of the current worker, or the global queue from a plain thread. */
void sched_enqueue_ready(struct g *g);
void sched_wakep(void);
/* From a plain thread, after a fence: wake an idle worker; true when one was woken or one spins. */
bool sched_wakep_any(void);
void sched_global_push(struct g *g);
uint32_t sched_fastrand(void);

/* Test hooks (runq.c): a worker's ring on workers the test builds itself (zeroed structs). */
bool sched_test_runq_push(struct worker *w, struct g *g);
struct g *sched_test_runq_pop(struct worker *w);
struct g *sched_test_runq_steal(struct worker *thief, struct worker *victim);

/* ------------------------------------------------------------------ the sysmon (sysmon.c) */
void sched_sysmon_start(void);                /* start.c, once the workers run */
void sched_sysmon_kick(void);                 /* a worker left its idle sleep (proc.c) */
/* An extra worker may take work from anywhere (a relaxed read: sysmon.c S2). */
static inline bool sched_extra_allowed(const struct worker *w)
{
    return w->id - sched.nprocs < atomic_load_explicit(&sched.extra_allowed, memory_order_relaxed);
}
/* Take v off the idle list and wake it, if it is idle there (proc.c; the sysmon's activation). */
void sched_wake_worker(struct worker *v);
/* start.c: make extra worker number sched.nw and start its thread; 0 or -errno. The thread
 * calls sched_extra_started once its I/O backend is set up (sysmon.c S4). */
int  sched_extra_new(void);
void sched_extra_started(struct worker *w);

/* ------------------------------------------------------------------ goroutines (goroutine.c) */
void sched_g_free(struct worker *w, struct g *g);   /* after the switch-out of a dead g */
void sched_g_pool_trim(struct worker *w);           /* the owner, going idle (goroutine.c S3) */
void sched_g_pools_decay(void);                     /* the sysmon, every DECAY_NS (S3) */
bool sched_g_pools_warm(void);                      /* a hint: a global pool holds more than its floor */
void sched_stacks_init(void);
const char *sched_status_str(uint32_t st);
/* iterate over every goroutine descriptor ever carved (dumps, deadlock report) */
size_t sched_g_count_slots(void);
struct g *sched_g_slot(size_t i);
size_t sched_g_slot_bytes(void);
size_t sched_g_reserve(void);
/* and over every big-stack descriptor ever carved (ringo_go_opts), the same way */
size_t sched_g_count_big(void);
struct g *sched_g_big(size_t i);

/* ------------------------------------------------------------------ goroutine-local storage (gls.c) */
/* Run g's GLS destructors and free its storage (g->gls NULL after): a goroutine at its exit, on
 * its own stack (may block: the caller re-reads its worker after, I4); a thread's stand-in as
 * the thread leaves. */
void sched_gls_exit(struct g *g);

/* ------------------------------------------------------------------ park protocol (park.c)
 * To block: (1) set self->status = GS_PARKING with sched_park_prepare() *before* publishing
 * self where a waker can find it (typically under the primitive's lock); (2) publish and drop
 * the lock; (3) call sched_park(). A waker that found the g calls sched_ready(g) exactly once.
 * With a deadline, pass a claim word: the waker and the timer each CAS it from 0 before
 * readying; the loser does nothing. sched_park returns 0 when readied by a waker, -ETIMEDOUT
 * when the deadline won the claim (claim == NULL: the deadline just readies; returns 0), and
 * -ECANCELED when the park's group was cancelled (group.c; claim parks of members only): on
 * any negative return the waiter withdraws as for a deadline and passes the value on. */
struct g *sched_self(void);                 /* current g, or this thread's stand-in (attaches) */
static inline void sched_park_prepare_until(struct g *self, int reason, int64_t deadline)
{
    /* Everything a waker reads about the wait is set here, before publication: the waker of a
     * plain thread parked forever restores the deadlock counters (park.c). */
    self->wait_reason = (uint8_t)reason;
    self->forever = deadline < 0;
    atomic_store_explicit(&self->park_obj, NULL, memory_order_relaxed); /* proc.c F7: a hint */
    /* relaxed: the primitive's lock release (or release CAS) that publishes self orders it */
    atomic_store_explicit(&self->status, GS_PARKING, memory_order_relaxed);
}
/* For a park with no deadline (sched_park(self, -1, ...)). */
static inline void sched_park_prepare(struct g *self, int reason)
{
    sched_park_prepare_until(self, reason, -1);
}
int  sched_park(struct g *self, int64_t deadline, _Atomic uint32_t *claim, uint32_t claim_val);
/* The one claim of a wait with several possible wakers (a deadline, select cases, I/O): CAS
 * *claim 0 -> val; exactly one caller wins and owns the wake-up. acq_rel on success: the release
 * half publishes what the winner wrote before (a result slot); the acquire half sees what the
 * waiter wrote before publishing the claim word. acquire on failure: the loser may read the
 * winner's result. */
static inline bool sched_claim(_Atomic uint32_t *claim, uint32_t val)
{
    uint32_t zero = 0;
    return atomic_compare_exchange_strong_explicit(claim, &zero, val, memory_order_acq_rel,
                                                   memory_order_acquire);
}
void sched_ready(struct g *g);
void sched_thread_detach(void *tg);
/* This thread's stand-in g, or NULL if it never attached (attaches nothing). */
struct g *sched_thread_g(void);
/* The main thread's exit (Go's Goexit in main): once per thread, on the main thread, arm a
 * thread-specific destructor that records in sched.main_exited that main left by pthread_exit
 * and runs the deadlock check; a no-op elsewhere. Called where main first meets the runtime
 * (sched_start, attaching, ringo_go). */
void sched_main_watch(void);
/* ringo_exit on the main thread: record MAIN_RINGO_EXIT (starting the runtime if need be);
 * the caller then pthread_exit()s and the destructor checks. */
void sched_main_ringo_exit(void);

/* ------------------------------------------------------------------ groups (group.c)
 * Cancellation reaches a parked member through its park: a park with a claim word registers it
 * (sched_cancel_arm, in sched_park) so a canceller can win the claim with the park's own
 * deadline value and ready it, as the deadline would; sched_park then returns -ECANCELED. An
 * io_uring wait registers a sched_cancel_io instead (sched_cancel_arm_io). */
extern _Atomic uint32_t sched_ncanceled; /* groups cancelled and not freed: a hint (relaxed) */
bool sched_group_canceled(const struct ringo_group *grp); /* acquire */
/* The calling goroutine (or thread stand-in: false) belongs to a cancelled group. A relaxed
 * load of one read-mostly word while no group is cancelled. */
static inline bool sched_self_canceled(struct g *self)
{
    if (likely(atomic_load_explicit(&sched_ncanceled, memory_order_relaxed) == 0))
        return false;
    return self && self->grp && sched_group_canceled(self->grp);
}
/* The same for the calling goroutine, found only when some group is cancelled. */
bool sched_cur_canceled_slow(void);
static inline bool sched_cur_canceled(void)
{
    if (likely(atomic_load_explicit(&sched_ncanceled, memory_order_relaxed) == 0))
        return false;
    return sched_cur_canceled_slow();
}
bool sched_cancel_arm(struct g *self, _Atomic uint32_t *claim, uint32_t val); /* true: cancelled */
bool sched_cancel_disarm(struct g *self);                                   /* true: the canceller won */
bool sched_cancel_arm_io(struct g *self, struct sched_cancel_io *io);       /* true: cancelled */
bool sched_cancel_disarm_io(struct g *self);                                /* true: fn was called */
void sched_group_join(struct g *child, struct ringo_group *grp); /* before child runs */
/* ringo_go in grp (NULL: the spawner's group, if any). goroutine.c */
struct ringo_go_opts;
int64_t sched_go_in(void (*fn)(void *), void *arg, const struct ringo_go_opts *opts, struct ringo_group *grp);
void sched_group_leave(struct g *self);                          /* at exit, on its stack */

/* ------------------------------------------------------------------ locked threads (lockthread.c) */
void sched_set_cur_worker(struct worker *w);               /* proc.c: the thread's worker */
void sched_thread_g0_setup(struct worker *w);              /* proc.c: g0 bounds, TSan fiber, altstack */
void sched_lockw_hand(struct worker *lw, struct g *g);     /* a ready of a locked goroutine */
void sched_lockw_parked(struct worker *lw, struct g *p);   /* post-switch: PARKED (L3) */
void sched_lockw_start(struct worker *w, struct g *p);     /* post-switch: PA_LOCK */
void sched_lockw_exit(struct g *self);                     /* a locked goroutine returns */
void sched_g_pool_flush(struct worker *w);                 /* goroutine.c: the whole pool to the global one */
/* Switch self out for the next local goroutine or g0, with a post-switch action (never returns
 * at once, unlike a yield with nothing else to run). ctx.c */
void sched_switch_away(struct worker *w, struct g *self, int action);

/* ------------------------------------------------------------------ timers (timer.c) */
void sched_timer_add(struct worker *w, struct timer *t);
/* Remove t if it has not fired yet. Returns true if it was still pending. */
bool sched_timer_del(struct timer *t);
/* Fire due timers of w; returns the earliest remaining deadline or INT64_MAX. */
int64_t sched_timers_run(struct worker *w, int64_t now);
/* The worker whose heap a new callback timer goes to: the caller's, or for a plain thread one
 * of the regular workers at random (starting the runtime); NULL if it cannot start. */
struct worker *sched_timer_home(void);
void sched_timers_init(struct worker *w);

/* ------------------------------------------------------------------ fatal errors (fatal.c) */
/* Go's throw: print "fatal error: ..." and abort. Any thread, also with locks held. */
_Noreturn void sched_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sched_segv_install(void);               /* the stack-overflow report (start.c) */
void sched_altstack_init(struct worker *w);  /* on the worker thread */

/* ------------------------------------------------------------------ debug hooks
 * The only way the scheduler reaches the debug layer (sched/debug/): one table it defines
 * (sched/debug/hooks.c). The debug layer reads the scheduler's state; the scheduler never
 * includes its headers nor calls it by name (tools/check-layers). */
struct debug_hooks {
    /* once, before the workers start, after RINGO_DEBUG is parsed: the monitor thread */
    void (*init)(void);
    /* the last party to go quiet checks: a worker about to sleep (0), a thread parking forever
     * (0), a thread that detaches on its way out, main leaving by pthread_exit/ringo_exit (1: it
     * still counts itself). May _exit(2), or exit(0) once main has left and nothing remains. */
    void (*check_deadlock)(int exiting);
    /* atexit with RINGO_DEBUG=stats */
    void (*at_exit)(void);
};
extern const struct debug_hooks sched_debug_hooks;

#endif /* RINGO_SCHED_H */
