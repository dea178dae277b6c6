/* sched/io/poll_epoll.c — the epoll backend: one epoll instance per worker, for kernels or containers
 * without io_uring (missing, kernel.io_uring_disabled, seccomp) or when RINGO_DISABLE=io_uring.
 *
 * Responsibility: readiness waits for goroutines (epoll_be_wait) and the idle sleep of the
 *   worker (epoll_pwait2 on the worker's epoll, whose eventfd is the doorbell). The I/O calls
 *   themselves are made by io.c: a non-blocking attempt, and on EAGAIN a wait here, then again.
 *
 * Invariants:
 *   E1  A waiting goroutine's record (struct epwait, on its stack) is linked (sched/list.h) in
 *       its worker's slot for the fd, under c.lock. Whoever unlinks it does so under c.lock; the goroutine
 *       leaves only after it was readied and, if the deadline won, after unlinking itself under
 *       c.lock: so no one touches a record after its goroutine returned.
 *   E2  Exactly one party readies a waiter: the dispatcher (readiness) or a closer (-EBADF),
 *       each by CAS of rec.claim 0 -> CLAIM_IO under c.lock, or the deadline timer (park.c
 *       claim protocol, 0 -> CLAIM_TIMER). The winner of CLAIM_IO readies after dropping the
 *       lock and then decrements sched.nio (I5); when the timer won, the goroutine decrements
 *       it itself once it runs.
 *   E3  fds are registered EPOLLONESHOT with (at least) the union of their waiters' events;
 *       slot.armed is what is armed now (0 after an event fired, when the dispatcher re-arms
 *       for the waiters left). A waiter whose events are not armed arms them; so does the first
 *       waiter of an empty slot (MOD, or ADD when the fd was closed and reused meanwhile).
 *       Events armed for waiters that left (deadline) may fire once more: harmless.
 *   E4  The owner calls epoll_wait on its instance (poll and sleep) into its own ev buffer;
 *       events collected by the sleep are dispatched by the next poll. The one other caller is
 *       the sysmon, for a worker it found stuck in a goroutine (epoll_be_rescue, issue 11 item
 *       3): it collects into a buffer of its own and dispatches under c.lock like the owner, so
 *       a stuck owner's waiters are readied (into the global queue). The kernel hands each
 *       EPOLLONESHOT event to one of the two; dispatch re-arms for the waiters left either way.
 *   E5  A poll readies at most as many goroutines as the worker's run queue has room for (an
 *       event readies every matching waiter of its fd, so it may go past by one event's
 *       waiters); the events left wait in ev, and the sleep does not start while any do
 *       (poll_uring.c U8 says why: a ring that overflows spills half of itself to the global
 *       queue).
 * Contexts: epoll_be_wait on a goroutine; poll/sleep on the owner; rescue on the sysmon; ring
 *   and cancel_fd from any thread.
 * Depends on: sched/io/io.h, sched.h (park protocol, timers through sched_park's deadline),
 *   sched/list.h (the waiter lists), sched/io/fd.c (fd_closing: the close re-check, F3).
 */
#include "sched/io/io.h"
#include "sched/list.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLAIM_IO 1u
#define CLAIM_TIMER 2u
#define EP_BELL UINT64_MAX   /* epoll data of the doorbell eventfd */
#define EP_NEV 128
#define EP_POLL_GAP_NS 10000 /* a worker spinning for work checks readiness at most this often */

struct epwait {
    struct dnode node;        /* in the slot list (under c.lock; O(1) unlink: 10,000 waiters on
                                 one fd), then in a local ready list */
    struct g *g;
    uint32_t events;          /* EPOLLIN / EPOLLOUT / ... wanted */
    uint32_t revents;         /* set by the dispatcher before the ready */
    int err;                  /* 0, or -EBADF when ringo_close ended the wait */
    _Atomic uint32_t claim;   /* E2 */
};

struct epslot {
    struct dlist waiters;     /* struct epwait, oldest first; under c.lock */
    uint32_t armed;           /* E3; under c.lock */
    bool registered;          /* the fd is (probably) in the epoll set; under c.lock */
};

struct epoll_be {
    struct io_common c;       /* first: w->io points here */
    int epfd;
    int efd;                  /* doorbell */
    struct epslot *slots;     /* indexed by fd; under c.lock (realloc moves it) */
    size_t nslots;
    _Atomic uint32_t nwait;   /* linked waiters; written under c.lock, peeked relaxed by the owner */
    struct epoll_event ev[EP_NEV]; /* own: events the sleep collected, dispatched by poll (E4) */
    int nev, evi;
    int64_t last_poll;        /* own */
};

static inline struct epoll_be *be_of(struct worker *w)
{
    return (struct epoll_be *)w->io;
}

int epoll_be_init(struct worker *w)
{
    struct epoll_be *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int r = 0;
    if (b->epfd < 0 || b->efd < 0) {
        r = -errno;
    } else {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EP_BELL };
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->efd, &ev) < 0)
            r = -errno;
    }
    if (r < 0) {
        if (b->epfd >= 0)
            close(b->epfd);
        if (b->efd >= 0)
            close(b->efd);
        free(b);
        return r;
    }
    b->c.kind = IOK_EPOLL;
    atomic_store_explicit(&b->c.bell, 1, memory_order_relaxed); /* awake; published by the start barrier */
    pthread_mutex_init(&b->c.lock, NULL);
    w->io = &b->c;
    return 0;
}

/* Under c.lock. */
static struct epslot *slot_get(struct epoll_be *b, int fd, bool create)
{
    if ((size_t)fd < b->nslots)
        return &b->slots[fd];
    if (!create)
        return NULL;
    size_t n = b->nslots ? b->nslots : 256;
    while (n <= (size_t)fd)
        n *= 2;
    struct epslot *s = realloc(b->slots, n * sizeof *s);
    if (!s)
        return NULL;
    memset(s + b->nslots, 0, (n - b->nslots) * sizeof *s);
    b->slots = s;
    b->nslots = n;
    return &s[fd];
}

/* Under c.lock: arm fd for want (E3). */
static int arm(struct epoll_be *b, int fd, struct epslot *s, uint32_t want)
{
    struct epoll_event ev = { .events = want | EPOLLONESHOT, .data.u64 = (uint64_t)fd };
    int op = s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int r = epoll_ctl(b->epfd, op, fd, &ev);
    if (r < 0 && op == EPOLL_CTL_MOD && errno == ENOENT) /* the fd was closed and reused */
        r = epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (r < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        r = epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (r < 0)
        return -errno;
    s->registered = true;
    s->armed = want;
    return 0;
}

/* Under c.lock. */
static void unlink_rec(struct epoll_be *b, struct epslot *s, struct epwait *rec)
{
    dlist_unlink(&s->waiters, &rec->node);
    atomic_store_explicit(&b->nwait, atomic_load_explicit(&b->nwait, memory_order_relaxed) - 1,
                          memory_order_relaxed); /* under c.lock; the owner's peek is a hint */
}

/* Test hook (tests/test_io.c): called by a goroutine that found the fd not ready (EAGAIN) and is
 * about to register its wait, so a test can hold it in exactly that window. NULL otherwise. */
void (*sched_test_hook_epoll_before_register)(int fd);

int epoll_be_wait(struct worker *w, struct g *self, int fd, struct fd_slot *fdslot, uint32_t events,
                  int64_t deadline)
{
    struct epoll_be *b = be_of(w);
    struct epwait rec;
    memset(&rec, 0, sizeof rec);
    rec.g = self;
    rec.events = events;
    if (unlikely(sched_test_hook_epoll_before_register))
        sched_test_hook_epoll_before_register(fd);
    if (deadline >= 0 && deadline <= clk_now())
        return -ETIMEDOUT;
    pthread_mutex_lock(&b->c.lock);
    /* F3 (Go's netpollblock re-check): a ringo_close that already cancelled on this worker set
     * CLOSING before taking c.lock, and keeps it until we leave: do not register (the closer
     * waits for us, then closes; registering would wait on a number about to be closed and
     * reused). A close that cancels after our unlock finds our record (E1). */
    if (fd_closing(fdslot)) {
        pthread_mutex_unlock(&b->c.lock);
        return -EBADF;
    }
    struct epslot *s = slot_get(b, fd, true);
    if (!s) {
        pthread_mutex_unlock(&b->c.lock);
        return -ENOMEM;
    }
    /* Arm unless these events are armed already for other waiters. The first waiter always
     * arms: slot.armed may describe a file that was closed (and the number reused) since. */
    if (dlist_empty(&s->waiters) || (s->armed & events) != events) {
        int ra = arm(b, fd, s, s->armed | events);
        if (ra < 0) {
            pthread_mutex_unlock(&b->c.lock);
            return ra; /* EBADF: closed; EPERM: a regular file, always ready */
        }
    }
    sched_park_prepare_until(self, WR_IO, deadline); /* before publishing (park protocol) */
    dlist_push_back(&s->waiters, &rec.node);
    atomic_store_explicit(&b->nwait, atomic_load_explicit(&b->nwait, memory_order_relaxed) + 1,
                          memory_order_relaxed); /* under c.lock */
    sched_dl_add(&sched.nio, 1); /* I5: before anyone can ready us */
    pthread_mutex_unlock(&b->c.lock);

    int r = sched_park(self, deadline, &rec.claim, CLAIM_TIMER);
    if (r < 0) { /* -ETIMEDOUT, or -ECANCELED: the group's canceller won the claim (group.c) */
        /* E1: the dispatcher may still hold us in a list; b is where we registered (not the
         * worker we run on now, I4) */
        pthread_mutex_lock(&b->c.lock);
        if (rec.node.linked) {
            struct epslot *s2 = slot_get(b, fd, false);
            if (s2)
                unlink_rec(b, s2, &rec);
        }
        pthread_mutex_unlock(&b->c.lock);
        sched_dl_add(&sched.nio, -1); /* E2: ours to drop */
        return r;
    }
    return rec.err;
}

/* Ready the records of a local list (claimed, unlinked from their slot), oldest first; then
 * drop their I/O count (E2). */
static int ready_list(struct dlist *list)
{
    int n = 0;
    while (!dlist_empty(list)) {
        struct epwait *rec = dlist_entry(list->first, struct epwait, node);
        dlist_unlink(list, &rec->node); /* before the ready: the record may vanish */
        sched_ready(rec->g);
        n++;
    }
    if (n)
        sched_dl_add(&sched.nio, -(int64_t)n); /* I5: after the readies */
    return n;
}

/* Under c.lock: unlink every waiter of s; those whose claim we win (the timer may have won it)
 * get err and are appended to `ready`, for ready_list after the unlock. */
static void end_all_waits(struct epoll_be *b, struct epslot *s, int err, struct dlist *ready)
{
    while (!dlist_empty(&s->waiters)) {
        struct epwait *rec = dlist_entry(s->waiters.first, struct epwait, node);
        unlink_rec(b, s, rec);
        /* the one claim (sched_claim): pairs with the timer's; the loser leaves the record alone */
        if (sched_claim(&rec->claim, CLAIM_IO)) {
            rec->err = err;
            dlist_push_back(ready, &rec->node);
        }
    }
}

/* Owner or the sysmon's rescue (E4): one readiness event for fd. */
static int dispatch(struct epoll_be *b, int fd, uint32_t rev)
{
    struct dlist ready = DLIST_INIT;
    pthread_mutex_lock(&b->c.lock);
    struct epslot *s = slot_get(b, fd, false);
    if (!s) {
        pthread_mutex_unlock(&b->c.lock);
        return 0;
    }
    s->armed = 0; /* ONESHOT fired */
    uint32_t rest = 0;
    for (struct dnode *n = s->waiters.first, *next; n; n = next) {
        struct epwait *rec = dlist_entry(n, struct epwait, node);
        next = n->next;
        if (!(rec->events & rev) && !(rev & (EPOLLERR | EPOLLHUP))) {
            rest |= rec->events;
            continue;
        }
        unlink_rec(b, s, rec);
        /* the one claim (sched_claim): pairs with the timer's; the loser leaves the record alone */
        if (sched_claim(&rec->claim, CLAIM_IO)) {
            rec->revents = rev;
            dlist_push_back(&ready, &rec->node);
        }
    }
    if (rest && arm(b, fd, s, rest) < 0)
        /* cannot re-arm (the fd went away): end every remaining wait, they will see the error */
        end_all_waits(b, s, 0, &ready);
    pthread_mutex_unlock(&b->c.lock);
    return ready_list(&ready);
}

/* Dispatch collected events until max goroutines are readied; the rest stay in ev for the next
 * poll (E5). */
static int dispatch_events(struct epoll_be *b, int max)
{
    int n = 0;
    while (b->evi < b->nev && n < max) {
        struct epoll_event *e = &b->ev[b->evi++];
        if (e->data.u64 == EP_BELL) {
            uint64_t v;
            (void)!read(b->efd, &v, sizeof v); /* drain; EAGAIN when already drained */
            continue;
        }
        n += dispatch(b, (int)e->data.u64, e->events);
    }
    if (b->evi == b->nev)
        b->nev = b->evi = 0;
    return n;
}


int epoll_be_poll(struct worker *w)
{
    struct epoll_be *b = be_of(w);
    int max = sched_poll_budget(w); /* E5 */
    int n = dispatch_events(b, max);
    if (b->evi < b->nev)
        return n; /* E5: the rest next time */
    /* relaxed peek (E4): the sleep waits on the epoll itself, so a stale 0 loses nothing */
    if (atomic_load_explicit(&b->nwait, memory_order_relaxed) == 0)
        return n;
    int64_t now = clk_now();
    if (now - b->last_poll < EP_POLL_GAP_NS)
        return n;
    b->last_poll = now;
    int k = epoll_wait(b->epfd, b->ev, EP_NEV, 0);
    if (k > 0) {
        b->nev = k;
        b->evi = 0;
        n += dispatch_events(b, max - n);
    }
    return n;
}

int epoll_be_rescue(struct worker *w)
{
    struct epoll_be *b = be_of(w);
    /* relaxed peek: a waiter linked just now is the owner's own business once it returns */
    if (atomic_load_explicit(&b->nwait, memory_order_relaxed) == 0)
        return 0;
    struct epoll_event ev[EP_NEV];
    int n = 0, k = EP_NEV;
    /* until the instance has no more ready (a full buffer may leave some), at most 64 buffers */
    for (int rounds = 0; k == EP_NEV && rounds < 64; rounds++) {
        k = epoll_wait(b->epfd, ev, EP_NEV, 0);
        for (int i = 0; i < k; i++)
            if (ev[i].data.u64 != EP_BELL) /* the doorbell is the owner's: left for its next sleep */
                n += dispatch(b, (int)ev[i].data.u64, ev[i].events);
    }
    return n;
}

void epoll_be_sleep(struct worker *w, int64_t deadline)
{
    struct epoll_be *b = be_of(w);
    if (b->evi < b->nev)
        return; /* undispatched events */
    if (io_bell_reset_and_check(w, &b->c)) {
        io_bell_quiet(&b->c);
        return;
    }
    struct timespec ts, *tsp = NULL;
    if (deadline >= 0) {
        int64_t left = deadline - clk_now();
        if (left < 0)
            left = 0;
        ts = clk_to_ts(left);
        tsp = &ts;
    }
    /* no_pwait2 is a hint shared by all workers (relaxed): a stale read costs one ENOSYS.
     * Valgrind 3.19 does not know epoll_pwait2 and says so on stderr: not tried there. */
    static _Atomic bool no_pwait2;
    int k = -1;
    errno = ENOSYS;
    if (!sched.on_valgrind && !atomic_load_explicit(&no_pwait2, memory_order_relaxed))
        k = epoll_pwait2(b->epfd, b->ev, EP_NEV, tsp, NULL);
    if (k < 0 && errno == ENOSYS) { /* before Linux 5.11 (or valgrind 3.19): ms timeouts, rounded up */
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
        int ms = -1;
        if (tsp)
            ms = (int)((ts.tv_sec * 1000000000LL + ts.tv_nsec + 999999) / 1000000);
        k = epoll_wait(b->epfd, b->ev, EP_NEV, ms);
    }
    b->nev = k > 0 ? k : 0;
    b->evi = 0;
    b->last_poll = clk_now();
    io_bell_quiet(&b->c);
}

uint32_t epoll_be_nwait(struct worker *w)
{
    return atomic_load_explicit(&be_of(w)->nwait, memory_order_relaxed); /* a snapshot for people */
}

void epoll_be_ring(struct worker *w)
{
    struct epoll_be *b = be_of(w);
    uint64_t one = 1;
    (void)!write(b->efd, &one, sizeof one); /* EAGAIN: the counter is full, the wait ends anyway */
}

void epoll_be_cancel_fd(struct worker *w, int fd)
{
    struct epoll_be *b = be_of(w);
    struct dlist ready = DLIST_INIT;
    pthread_mutex_lock(&b->c.lock);
    struct epslot *s = slot_get(b, fd, false);
    if (s) {
        end_all_waits(b, s, -EBADF, &ready);
        if (s->registered) /* the fd is still open: take it out before close(2) */
            epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
        s->registered = false;
        s->armed = 0;
    }
    pthread_mutex_unlock(&b->c.lock);
    ready_list(&ready);
}
