/* sched/runq.c — where runnable goroutines wait: each worker's ring and runnext slot, and the
 * global queues (one per NUMA node).
 *
 * Responsibility: the data structures only; who takes from which queue when (the fairness
 * policy) is proc.c's. Testable alone: tests/test_runq.c drives the rings of hand-built workers.
 *
 * The ring: bounded, one owner (push, pop) and many thieves (steal half), as in Go's runq.
 * head is advanced by CAS from the owner's pop and from thieves; tail is written only by the
 * owner. Ordering labels: R1 tail store-release publishes the slot write; A1 thieves'
 * tail load-acquire pairs with R1; R2 head CAS-release commits a consume (the slot may then
 * be overwritten); A2 the owner's head load-acquire pairs with R2.
 *
 * Invariants (with I1 of sched.h):
 *   Q1  0 <= tail - head <= RUNQ_SIZE for every ring, as the owner sees it.
 *   Q2  A steal moves goroutines only into room the thief's ring has: it never overwrites a
 *       queued g, whatever the thief left in its ring (timers fired while it spun).
 *   Q3  runnext holds at most one g; only the owner puts one there; the owner and thieves take
 *       it with a CAS/exchange, so exactly one of them gets it.
 *   Q4  sched.gq_len is the sum of the global queues' len; both change under the queue lock.
 *   Q5  Nothing is pushed on a ring while a global queue's lock is held: a full ring spills
 *       into a global queue (runq_push_slow), which may be the one locked. A batch taken from a
 *       global queue is sized to the ring's room and pushed after the unlock.
 *   Q6  A batch taken from a global queue into a ring wakes an idle worker once it is in the
 *       ring (the batch was invisible to thieves in between).
 *
 * Contexts: push/pop/runnext_put on the owner worker; steal and the global queues anywhere.
 * Depends on: sched.h; proc.c for sched_global_push (a wake-up) when a ring overflows.
 */
#include "sched/sched.h"
#include <sched.h>

/* ================================================================== run queue (I1) */

/* Owner only. Returns false when full. */
bool runq_push(struct worker *w, struct g *g)
{
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);   /* own field */
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire);   /* A2: slots consumed */
    if (t - h >= RUNQ_SIZE)
        return false;
    atomic_store_explicit(&w->rq.buf[t % RUNQ_SIZE], g, memory_order_relaxed); /* published by R1 */
    atomic_store_explicit(&w->rq.tail, t + 1, memory_order_release);        /* R1 */
    return true;
}

/* ================================================================== global queues (per node) */

/* Append n goroutines to q. The total sched.gq_len is bumped with an RMW (several queues). */
void gq_push_list(struct gqueue *q, struct g **gs, uint32_t n)
{
    pthread_mutex_lock(&q->lock);
    for (uint32_t i = 0; i < n; i++) {
        gs[i]->schedlink = NULL;
        if (q->tail)
            q->tail->schedlink = gs[i];
        else
            q->head = gs[i];
        q->tail = gs[i];
    }
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_relaxed); /* under q->lock; peeks tolerate staleness */
    atomic_fetch_add_explicit(&sched.gq_len, n, memory_order_seq_cst); /* step 1 of the recipe (proc.c) */
    pthread_mutex_unlock(&q->lock);
}

/* Prepend n goroutines to q, in their order: work given back (proc.c extra_retire) goes where
 * it would have been taken from, so nothing it held a place for waits behind newcomers. */
void gq_push_front_list(struct gqueue *q, struct g **gs, uint32_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&q->lock);
    for (uint32_t i = 0; i + 1 < n; i++)
        gs[i]->schedlink = gs[i + 1];
    gs[n - 1]->schedlink = q->head;
    if (!q->head)
        q->tail = gs[n - 1];
    q->head = gs[0];
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_relaxed); /* under q->lock; peeks tolerate staleness */
    atomic_fetch_add_explicit(&sched.gq_len, n, memory_order_seq_cst); /* step 1 of the recipe (proc.c) */
    pthread_mutex_unlock(&q->lock);
}

/* Owner only: move half of the ring plus g to the global queue (Go's runqputslow). */
static void runq_push_slow(struct worker *w, struct g *g)
{
    struct g *batch[RUNQ_SIZE / 2 + 1];
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire);   /* A2 */
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);   /* own */
    uint32_t n = (t - h) / 2;
    if (n != RUNQ_SIZE / 2) {
        if (!runq_push(w, g))
            goto global_one;
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->rq.buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
    /* R2: commits the consume of n slots; fails if a thief got there first */
    if (!atomic_compare_exchange_strong_explicit(&w->rq.head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed)) {
        if (!runq_push(w, g))
            goto global_one;
        return;
    }
    batch[n++] = g;
    gq_push_list(&sched.gq[w->node], batch, n);
    sched_stat_add(&w->st_spilled, n); /* stats only */
    return;
global_one:
    sched_stat_inc(&w->st_spilled);
    sched_global_push(g);
}

void runq_put(struct worker *w, struct g *g)
{
    if (!runq_push(w, g))
        runq_push_slow(w, g);
}

/* Owner only. */
struct g *runq_pop(struct worker *w)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire);   /* A2: sync with thieves */
        uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);   /* own */
        if (t == h)
            return NULL;
        struct g *g = atomic_load_explicit(&w->rq.buf[h % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&w->rq.head, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed)) /* R2: commits consume */
            return g;
    }
}

bool runq_empty(struct worker *v)
{
    uint32_t h = atomic_load_explicit(&v->rq.head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&v->rq.tail, memory_order_acquire);
    return h == t && atomic_load_explicit(&v->runnext, memory_order_acquire) == NULL;
}

/* Thief w takes half of v's ring, as much as fits in w's own ring (a spinning worker's ring is
 * normally empty, but timers and I/O it ran while spinning may have filled it: never overwrite
 * a queued g). Returns one g to run, or NULL. May take v's runnext when v looks stuck (see
 * RUNNEXT_STEAL_NS). */
struct g *runq_steal(struct worker *w, struct worker *v, bool take_runnext)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->rq.head, memory_order_acquire); /* A2: sync with other consumers */
        uint32_t t = atomic_load_explicit(&v->rq.tail, memory_order_acquire); /* A1: sync with the producer */
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (!take_runnext)
                return NULL;
            struct g *next = atomic_load_explicit(&v->runnext, memory_order_acquire);
            if (!next)
                return NULL;
            /* acq_rel: pairs with the owner's exchange that published next */
            if (!atomic_compare_exchange_strong_explicit(&v->runnext, &next, NULL, memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            return next;
        }
        if (n > RUNQ_SIZE / 2)
            continue; /* read an inconsistent h/t pair: retry */
        uint32_t wt = atomic_load_explicit(&w->rq.tail, memory_order_relaxed); /* own */
        /* A2: other thieves only advance w's head, so this room can only grow meanwhile */
        uint32_t wh = atomic_load_explicit(&w->rq.head, memory_order_acquire);
        uint32_t room = RUNQ_SIZE - (wt - wh);
        if (n - 1 > room)
            n = room + 1; /* n - 1 go to w's ring, the last one is returned to run */
        for (uint32_t i = 0; i + 1 < n; i++) {
            struct g *g = atomic_load_explicit(&v->rq.buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
            atomic_store_explicit(&w->rq.buf[(wt + i) % RUNQ_SIZE], g, memory_order_relaxed);
        }
        struct g *g = atomic_load_explicit(&v->rq.buf[(h + n - 1) % RUNQ_SIZE], memory_order_relaxed);
        /* R2: cas-release commits the consume; on failure another consumer won, retry */
        if (!atomic_compare_exchange_strong_explicit(&v->rq.head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        if (n > 1)
            atomic_store_explicit(&w->rq.tail, wt + n - 1, memory_order_release); /* R1 */
        return g;
    }
}

/* Test hooks (tests/test_runq.c): the run queue of workers a test builds by hand. */
bool sched_test_runq_push(struct worker *w, struct g *g) { return runq_push(w, g); }
struct g *sched_test_runq_pop(struct worker *w) { return runq_pop(w); }
struct g *sched_test_runq_steal(struct worker *w, struct worker *v) { return runq_steal(w, v, false); }

/* Node position where work born on the calling plain thread is queued: its CPU's node, or
 * the nearest node that has workers (policy.node_home). */
int sched_thread_node(void)
{
    if (!sched.have_pol)
        return 0;
    return topo_policy_node_of_cpu(&sched.pol, sched_getcpu());
}

/* Owner only: free slots in w's ring. Thieves only advance head, so the room can only grow
 * until the owner pushes again. */
static uint32_t runq_room(struct worker *w)
{
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed); /* own */
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire); /* A2 */
    return RUNQ_SIZE - (t - h);
}

int sched_poll_budget(struct worker *w)
{
    uint32_t room = runq_room(w);
    return room > 1 ? (int)room - 1 : 1;
}

/* Take a batch from q (Go's globrunqget): len/nprocs + 1, at most max (0: no limit), at most
 * half a ring, and at most one more than w's ring has room for; a bounded batch (max != 0, F1's
 * tick) fills the ring no further than half (proc.c F1). Returns the first to run; the
 * rest go to w's ring. Q5: the batch is unlinked under q->lock and pushed after the unlock, and
 * only into room the ring has: runq_put under the lock could overflow back into q
 * (runq_push_slow -> gq_push_list), which would lock q again (issue 11 item 2b). */
static struct g *gq_get(struct worker *w, struct gqueue *q, uint32_t max)
{
    if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0) /* peek; authoritative under the lock */
        return NULL;
    uint32_t room = runq_room(w);
    struct g *batch[RUNQ_SIZE / 2];
    pthread_mutex_lock(&q->lock);
    uint32_t len = atomic_load_explicit(&q->len, memory_order_relaxed);
    if (len == 0) {
        pthread_mutex_unlock(&q->lock);
        return NULL;
    }
    uint32_t n = len / sched.nprocs + 1;
    if (n > len)
        n = len;
    if (max && n > max)
        n = max;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    if (max && n - 1 + RUNQ_SIZE / 2 > room) /* F1's tick batch: never past half a ring */
        n = room > RUNQ_SIZE / 2 ? room - RUNQ_SIZE / 2 + 1 : 1;
    if (n - 1 > room)
        n = room + 1; /* one to run, the rest into the ring's room */
    struct g *first = q->head;
    q->head = first->schedlink;
    for (uint32_t i = 1; i < n; i++) {
        batch[i - 1] = q->head;
        q->head = q->head->schedlink;
    }
    if (!q->head)
        q->tail = NULL;
    atomic_store_explicit(&q->len, len - n, memory_order_relaxed); /* under q->lock */
    atomic_fetch_sub_explicit(&sched.gq_len, n, memory_order_seq_cst); /* Q4; the deadlock check reads it seq_cst */
    pthread_mutex_unlock(&q->lock);
    first->schedlink = NULL;
    for (uint32_t i = 0; i + 1 < n; i++) {
        batch[i]->schedlink = NULL;
        bool ok = runq_push(w, batch[i]);
        SCHED_CHECK(ok, "worker %u: global batch of %u overflowed a ring with room %u", w->id, n - 1, room);
        (void)ok;
    }
    if (n > 1) {
        /* Q6: between our unlock and these pushes the batch was on no queue: a worker that
         * looked then (gq_len 0, our ring empty) may have gone to sleep, and we are about to
         * run `first` for as long as it likes. Work a sleeper could run appeared: the recipe's
         * producer side (proc.c), pushes -> StoreLoad -> wake one. */
        sched_fence_seq_cst();
        sched_wakep();
    }
    return first;
}

/* The global queues, own node first, then the others by distance (policy.node_order). */
struct g *global_get(struct worker *w, uint32_t max)
{
    if (atomic_load_explicit(&sched.gq_len, memory_order_relaxed) == 0) /* peek */
        return NULL;
    if (!sched.have_pol || sched.nnodes == 1)
        return gq_get(w, &sched.gq[0], max);
    const unsigned *order = &sched.pol.node_order[w->node * sched.pol.nnodes_used];
    for (unsigned k = 0; k < sched.pol.nnodes_used; k++) {
        struct g *g = gq_get(w, &sched.gq[order[k]], max);
        if (g)
            return g;
    }
    return NULL;
}

void runnext_put(struct worker *w, struct g *g)
{
    /* release: a thief that takes g from runnext sees its saved context */
    struct g *old = atomic_exchange_explicit(&w->runnext, g, memory_order_acq_rel);
    if (old)
        runq_put(w, old);
}

bool runq_work_anywhere(void)
{
    if (atomic_load_explicit(&sched.gq_len, memory_order_relaxed) != 0)
        return true;
    for (unsigned i = 0, n = sched_nworkers(); i < n; i++)
        if (!runq_empty(sched.w[i]))
            return true;
    return false;
}
