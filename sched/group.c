/* sched/group.c — groups of goroutines: wait for them together, cancel them together.
 *
 * Responsibility: ringo_group_make/go/wait/cancel/free and ringo_canceled (include/ringo.h has
 * the contract), membership (a goroutine's group is fixed before it first runs: the one
 * ringo_group_go names, else its spawner's), and how a cancel reaches a parked member.
 *
 * How a cancel ends a wait. Every park that can end early already has a claim word (park.c): the
 * waker and the deadline race by CAS on it and the loser does nothing, and each primitive knows
 * how to withdraw when the deadline wins (select's withdraw, the epoll record's unlink). A
 * member's park with a claim registers it here (sched_cancel_arm, called by sched_park); the
 * canceller CASes the claim with the park's own deadline value, so the primitive withdraws as
 * for a deadline, and readies the member; sched_park tells the two apart (cl_won) and returns
 * -ECANCELED. Waits that have no claim are made cancellable for members: a blocking channel
 * operation that must wait takes the one-case select path (chan.c), a sleep parks with a claim
 * (timer.c). An io_uring operation is not ended by a claim but by the kernel: its wait registers
 * a sched_cancel_io (sched_cancel_arm_io), and the canceller asks the ring's owner to issue
 * IORING_OP_ASYNC_CANCEL for it (poll_uring.c). Calls check at entry too (sched_self_canceled),
 * so "every later call returns -ECANCELED" holds for calls that would not have waited.
 *
 * Why not a done channel (Go's context) or a per-call flag: the claim is the one place where a
 * waiter's fate is decided, so cancelling through it can neither lose a value (a value is taken
 * or the wait is cancelled, never both) nor leave a waiter queued; and it costs goroutines
 * outside groups nothing (one predictable branch in sched_park, one relaxed load of a word
 * nobody writes while no group is cancelled at the entry of a call).
 *
 * Invariants:
 *   G1  grp->members lists exactly the members that have not returned; grp->live counts them;
 *       both change only under grp->lock (join before the member first runs, leave at its exit).
 *   G2  grp->canceled goes 0 -> 1 once, under grp->lock, and never back; a group nested in a
 *       cancelled group is cancelled (cancel recurses into grp->kids under the locks, parent
 *       before child; a group made inside a cancelled one starts cancelled).
 *   G3  A member's cl_ fields describe its current park and change only under its cl_lock:
 *       cl_claim/cl_io are set by the member after it is published to its wakers and before it
 *       switches out, and cleared by it after it resumes, before its frame (which holds the claim
 *       word and the sched_cancel_io) goes away. A canceller touches them only under cl_lock, so
 *       never after the frame is gone. cl_won/cl_posted tell the member what the canceller did.
 *   G4  No lost cancel: the canceller sets G2's flag before it takes each member's cl_lock; a
 *       member checks the flag under its cl_lock when it registers. So either the member's
 *       registration comes first (the canceller finds it) or the member sees the flag (and
 *       cancels its own wait). A member that joins after the canceller walked the list joins a
 *       cancelled group (the walk holds grp->lock) and sees the flag at its first check.
 *   G5  The last leave (live -> 0) readies every waiter under grp->lock; a waiter returns only
 *       after taking grp->lock again, so the leaver's accesses end before ringo_group_free can
 *       run; ringo_group_free refuses a group with members, nested groups or waiters.
 *   Lock order: parent grp->lock, then a nested group's lock, then a member's cl_lock; the run
 *   queue locks inside (sched_ready is called with no cl_lock held).
 *   Ordering: the cancel flag is a release store read with acquire (the flags and anything the
 *   canceller wrote before ringo_group_cancel are visible to a member that sees it), and every
 *   other field is under a lock. sched_ncanceled is a relaxed hint: a call that happens after
 *   ringo_group_cancel reads it non-zero by coherence (the increment happened before, and the
 *   count cannot drop below it while the group, which has a live member, is not freed).
 * Depends on: sched.h (park protocol, sched_claim, sched_ready, sched_fatal), spinlock.h.
 */
#include "sched/sched.h"
#include "sched/spinlock.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define GROUP_MAGIC 0x67727570u /* "grup" */
#define CLAIM_WAKE    1u        /* the last leave readied the waiter */
#define CLAIM_TIMEOUT 2u        /* its deadline (or its own group's cancel) did */

struct gwaiter {
    struct g *g;
    _Atomic uint32_t claim;
    struct gwaiter *next;
    bool linked;                /* under grp->lock */
};

struct ringo_group {
    uint32_t magic;
    _Atomic uint32_t canceled;  /* G2 */
    pthread_mutex_t lock;
    struct ringo_group *parent; /* constant */
    struct ringo_group *kids;   /* nested groups, under lock */
    struct ringo_group *sib_next, *sib_prev; /* in parent->kids, under parent->lock */
    struct g *members;          /* G1, under lock */
    int64_t live;               /* G1, under lock */
    unsigned nwait;             /* waiters inside ringo_group_wait, under lock (G5) */
    struct gwaiter *waiters;    /* parked waiters, under lock */
};

_Atomic uint32_t sched_ncanceled;

static struct ringo_group *check(ringo_group *g, const char *call)
{
    if (g && g->magic != GROUP_MAGIC)
        sched_fatal("%s: not a group (freed, or never made by ringo_group_make)", call);
    return g;
}

bool sched_group_canceled(const struct ringo_group *grp)
{
    /* acquire: pairs with cancel_locked's release store (G2) */
    return atomic_load_explicit(&grp->canceled, memory_order_acquire) != 0;
}

/* ---------------------------------------------------------------- parks (G3, G4) */

bool sched_cancel_arm(struct g *self, _Atomic uint32_t *claim, uint32_t val)
{
    spin_lock(&self->cl_lock);
    bool c = sched_group_canceled(self->grp);
    if (!c) {
        self->cl_claim = claim;
        self->cl_val = val;
        self->cl_won = 0;
    }
    spin_unlock(&self->cl_lock);
    return c;
}

bool sched_cancel_disarm(struct g *self)
{
    spin_lock(&self->cl_lock);
    self->cl_claim = NULL;
    bool won = self->cl_won;
    self->cl_won = 0;
    spin_unlock(&self->cl_lock);
    return won;
}

bool sched_cancel_arm_io(struct g *self, struct sched_cancel_io *io)
{
    spin_lock(&self->cl_lock);
    bool c = sched_group_canceled(self->grp);
    if (!c) {
        self->cl_io = io;
        self->cl_posted = 0;
    }
    spin_unlock(&self->cl_lock);
    return c;
}

bool sched_cancel_disarm_io(struct g *self)
{
    spin_lock(&self->cl_lock);
    self->cl_io = NULL;
    bool posted = self->cl_posted;
    self->cl_posted = 0;
    spin_unlock(&self->cl_lock);
    return posted;
}

/* End m's current wait, if it has a cancellable one. Under m's group's lock (m cannot leave). */
static void cancel_member(struct g *m)
{
    bool ready = false;
    spin_lock(&m->cl_lock);
    if (m->cl_claim) {
        /* the park's own deadline value: its primitive withdraws as for a deadline */
        if (sched_claim(m->cl_claim, m->cl_val)) {
            m->cl_won = 1;
            ready = true;
        }
        m->cl_claim = NULL; /* won or lost, nothing more for us to do with it */
    } else if (m->cl_io && !m->cl_posted) {
        m->cl_posted = 1;
        m->cl_io->fn(m->cl_io);
    }
    spin_unlock(&m->cl_lock);
    /* outside cl_lock: we own m's wake-up (we won its claim), so m cannot run, park again or
     * leave before this ready; and it cannot leave the group while we hold grp->lock */
    if (ready)
        sched_ready(m);
}

static void cancel_locked(struct ringo_group *grp)
{
    if (atomic_load_explicit(&grp->canceled, memory_order_relaxed) == 0) { /* under lock */
        atomic_store_explicit(&grp->canceled, 1, memory_order_release); /* G2, G4 */
        atomic_fetch_add_explicit(&sched_ncanceled, 1, memory_order_relaxed); /* hint (top) */
    }
    for (struct g *m = grp->members; m; m = m->grp_next)
        cancel_member(m);
    for (struct ringo_group *k = grp->kids; k; k = k->sib_next) {
        pthread_mutex_lock(&k->lock); /* lock order: parent, then nested */
        cancel_locked(k);
        pthread_mutex_unlock(&k->lock);
    }
}

/* ---------------------------------------------------------------- membership (G1, G5) */

void sched_group_join(struct g *child, struct ringo_group *grp)
{
    child->grp = grp;
    child->cl_claim = NULL;
    child->cl_io = NULL;
    child->cl_won = child->cl_posted = 0;
    pthread_mutex_lock(&grp->lock);
    child->grp_prev = NULL;
    child->grp_next = grp->members;
    if (grp->members)
        grp->members->grp_prev = child;
    grp->members = child;
    grp->live++;
    pthread_mutex_unlock(&grp->lock);
}

void sched_group_leave(struct g *self)
{
    struct ringo_group *grp = self->grp;
    pthread_mutex_lock(&grp->lock);
    if (self->grp_prev)
        self->grp_prev->grp_next = self->grp_next;
    else
        grp->members = self->grp_next;
    if (self->grp_next)
        self->grp_next->grp_prev = self->grp_prev;
    struct gwaiter *ws = NULL;
    if (--grp->live == 0) {
        ws = grp->waiters;
        grp->waiters = NULL;
    }
    /* G5: ready under the lock; each waiter takes it again before it returns */
    for (struct gwaiter *w = ws; w;) {
        struct gwaiter *next = w->next; /* before the ready: w lives on the waiter's stack */
        w->linked = false;
        if (sched_claim(&w->claim, CLAIM_WAKE))
            sched_ready(w->g);
        w = next;
    }
    pthread_mutex_unlock(&grp->lock);
    self->grp = NULL; /* the descriptor is recycled: no stale group */
}

/* ---------------------------------------------------------------- the API */

ringo_group *ringo_group_make(void)
{
    struct ringo_group *grp = calloc(1, sizeof *grp);
    if (!grp) {
        errno = ENOMEM;
        return NULL;
    }
    grp->magic = GROUP_MAGIC;
    pthread_mutex_init(&grp->lock, NULL);
    struct worker *w = sched_cur_worker();
    struct g *self = sched_cur_g(w);
    struct ringo_group *parent = self ? self->grp : NULL;
    grp->parent = parent;
    if (parent) {
        pthread_mutex_lock(&parent->lock);
        grp->sib_next = parent->kids;
        if (parent->kids)
            parent->kids->sib_prev = grp;
        parent->kids = grp;
        if (atomic_load_explicit(&parent->canceled, memory_order_relaxed)) { /* under its lock */
            /* G2: nested in a cancelled group; no member yet, and the store is published by
             * whatever hands grp to another goroutine (plus parent->lock for cancel walks) */
            atomic_store_explicit(&grp->canceled, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&sched_ncanceled, 1, memory_order_relaxed); /* hint */
        }
        pthread_mutex_unlock(&parent->lock);
    }
    return grp;
}

int64_t ringo_group_go(ringo_group *g, void (*fn)(void *arg), void *arg)
{
    if (!check(g, "ringo_group_go") || !fn)
        return -EINVAL;
    return sched_go_in(fn, arg, NULL, g);
}

int ringo_group_cancel(ringo_group *g)
{
    if (!check(g, "ringo_group_cancel"))
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    cancel_locked(g);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

int ringo_group_wait(ringo_group *g, int64_t deadline)
{
    if (!check(g, "ringo_group_wait"))
        return -EINVAL;
    struct g *self = sched_self();
    if (self->grp == g)
        return -EDEADLK; /* it would wait for itself */
    if (sched_self_canceled(self))
        return -ECANCELED;
    pthread_mutex_lock(&g->lock);
    if (g->live == 0) {
        pthread_mutex_unlock(&g->lock);
        return 0;
    }
    if (deadline >= 0 && (deadline == 0 || ringo_now() >= deadline)) {
        pthread_mutex_unlock(&g->lock);
        return -ETIMEDOUT;
    }
    struct gwaiter me = { .g = self, .next = g->waiters, .linked = true };
    g->waiters = &me;
    g->nwait++;
    sched_park_prepare_until(self, WR_GROUP, deadline);
    pthread_mutex_unlock(&g->lock);
    int r = sched_park(self, deadline, &me.claim, CLAIM_TIMEOUT);
    pthread_mutex_lock(&g->lock); /* G5: also when readied, so the leaver is done with g */
    if (me.linked)
        for (struct gwaiter **pp = &g->waiters; *pp; pp = &(*pp)->next)
            if (*pp == &me) {
                *pp = me.next;
                break;
            }
    g->nwait--;
    pthread_mutex_unlock(&g->lock);
    return r; /* 0, -ETIMEDOUT, or -ECANCELED (the caller's own group) */
}

int ringo_group_free(ringo_group *g)
{
    if (!check(g, "ringo_group_free"))
        return -EINVAL;
    struct ringo_group *parent = g->parent;
    if (parent)
        pthread_mutex_lock(&parent->lock); /* lock order: parent first */
    pthread_mutex_lock(&g->lock);
    bool busy = g->live || g->kids || g->nwait;
    if (!busy && parent) {
        if (g->sib_prev)
            g->sib_prev->sib_next = g->sib_next;
        else
            parent->kids = g->sib_next;
        if (g->sib_next)
            g->sib_next->sib_prev = g->sib_prev;
    }
    bool was_canceled = atomic_load_explicit(&g->canceled, memory_order_relaxed); /* under lock */
    pthread_mutex_unlock(&g->lock);
    if (parent)
        pthread_mutex_unlock(&parent->lock);
    if (busy)
        return -EBUSY;
    if (was_canceled)
        atomic_fetch_sub_explicit(&sched_ncanceled, 1, memory_order_relaxed); /* hint (top) */
    g->magic = 0;
    pthread_mutex_destroy(&g->lock);
    free(g);
    return 0;
}

bool sched_cur_canceled_slow(void)
{
    struct g *self = sched_cur_g(sched_cur_worker());
    return self && self->grp && sched_group_canceled(self->grp);
}

int ringo_canceled(void)
{
    return sched_cur_canceled_slow();
}
