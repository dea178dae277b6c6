/* chan/timechan.c — timers as channels: ringo_after, ringo_timer_* and ringo_ticker_*, Go's
 * time.After, time.Timer and time.Ticker.
 *
 * Responsibility: a timer channel (struct tchan): a cap-1 channel of int64_t and a callback
 * timer (sched/timer.c T7) in a worker's heap whose fire is a non-blocking send of the time;
 * a ticker's fire also names its next point on the grid. Stop, reset and free, from any thread,
 * racing with a fire on any worker.
 *
 * Shape. struct tchan embeds its struct timer (t.fn = tc_fire). A fire runs under the heap's
 * tlock (timer.c T7): ringo_chan_try_send (a full channel drops the value: a ticker's unread
 * tick) and, for a ticker, the next deadline. The user side serialises on tc->mu; it takes
 * tlock inside (sched_timer_del, sched_timer_add), never the reverse: the fire never takes
 * tc->mu. So the lock order is tc->mu > tlock > c->lock (timer.c's top comment).
 *
 * Invariants.
 *   TC1 Halt (stop, reset, free): under tc->mu, sched_timer_del takes t out of its heap under
 *       t.w->tlock. A fire holds that tlock from the moment it takes t off heap[0] to its last
 *       touch of t and of the channel, so when sched_timer_del returns either t was pending
 *       (now out, and no fire can start: only a re-add under tc->mu puts it back), or every
 *       fire of t is complete (T1, T7). Free may then free t and the channel.
 *   TC2 No stale value (Go 1.23): after TC1 the channel holds at most the value of a complete
 *       fire; halt removes it (try_recv until empty) before tc->mu is dropped, and no fire can
 *       happen until the re-add that follows. So a receive that starts after stop or reset
 *       returned gets a value of a later fire, or none. A one-shot timer's halt reports 1 when
 *       t was pending or a value was removed: the value was never delivered (Go's pending).
 *   TC3 t.when, t.w and tc->period change only under tc->mu while t is in no heap; the fire
 *       reads them under tlock while t is in one: the re-add's lock release publishes them.
 *   TC4 A pending one-shot timer or a ticker in a heap is counted in sched.ntimers (timer.c T2):
 *       a goroutine blocked on its channel is not a deadlock; a halted one is not counted.
 * Relies on: T1, T2, T7 (sched/timer.c), C6 (chan.h: a receiver woken by the fire's send is
 * uncounted under c->lock before it can run, so chan_busy is right once the fire is done).
 * Depends on: sched/sched.h (callback timers), chan/chan.h (chan_busy, chan_dealloc), ringo.h.
 */
#include "chan/chan.h"
#include "sched/sched.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct tchan {
    struct timer t;               /* first: tc_fire's container; t.fn = tc_fire; TC3 */
    pthread_mutex_t mu;           /* serialises stop / reset / free; taken before tlock */
    struct ringo_chan *c;         /* cap 1 of int64_t; c->timer == this; constant */
    int64_t period;               /* a ticker's period, 0 for a one-shot timer; TC3 */
    bool after;                   /* ringo_after's: the channel is the caller's; constant */
};
struct ringo_timer { struct tchan tc; };
struct ringo_ticker { struct tchan tc; };

/* T7: under the heap's tlock. Send the time (or drop it on a full channel); a ticker names its
 * next point on the grid strictly after now, skipping the missed ones (Go's runOneTimer). */
static int64_t tc_fire(struct timer *t, int64_t now)
{
    struct tchan *tc = (struct tchan *)t;
    int64_t v = now;
    (void)ringo_chan_try_send(tc->c, &v); /* -EAGAIN: full, the value is dropped */
    if (tc->period == 0)
        return -1;
    int64_t k = 1 + (now - t->when) / tc->period; /* now >= when: due */
    if (k > (INT64_MAX - 1 - t->when) / tc->period)
        return INT64_MAX - 1; /* never, in practice; stays counted as Go's would */
    return t->when + k * tc->period;
}

/* Under tc->mu (TC1, TC2): take t out of its heap and remove an unread value. Bit 0: t was
 * pending; bit 1: a value was removed. */
static int tc_halt(struct tchan *tc)
{
    int r = tc->t.w && sched_timer_del(&tc->t) ? 1 : 0;
    while (ringo_chan_try_recv(tc->c, NULL) == 1)
        r |= 2;
    return r;
}

/* Under tc->mu, t in no heap: fire ns from now; ns <= 0 sends at once (the channel is empty:
 * a new timer, or just halted). */
static void tc_arm(struct tchan *tc, struct worker *w, int64_t ns)
{
    int64_t now = ringo_now();
    if (ns <= 0) {
        (void)ringo_chan_try_send(tc->c, &now);
        return;
    }
    tc->t.when = ns > INT64_MAX - 1 - now ? INT64_MAX - 1 : now + ns;
    sched_timer_add(w, &tc->t); /* T2: counted; T4: wakes a sleeper if earliest */
}

static struct tchan *tc_make(int64_t ns, int64_t period, bool after)
{
    struct worker *w = sched_timer_home(); /* starts the runtime from a plain thread */
    if (!w) {
        errno = EAGAIN;
        return NULL;
    }
    struct tchan *tc = calloc(1, sizeof *tc);
    if (!tc) {
        errno = ENOMEM;
        return NULL;
    }
    tc->c = ringo_chan_make(sizeof(int64_t), 1);
    if (!tc->c) {
        free(tc);
        errno = ENOMEM;
        return NULL;
    }
    tc->c->timer = tc; /* published with c by whatever hands it to another thread */
    tc->t.fn = tc_fire;
    tc->t.idx = -1;
    tc->period = period;
    tc->after = after;
    pthread_mutex_init(&tc->mu, NULL);
    pthread_mutex_lock(&tc->mu); /* TC3: the add's tlock publishes t; mu for form's sake */
    tc_arm(tc, w, ns);
    pthread_mutex_unlock(&tc->mu);
    return tc;
}

/* Stop and free (TC1): refused while anyone waits on the channel (C6). */
static int tc_free(struct tchan *tc)
{
    pthread_mutex_lock(&tc->mu);
    if (chan_busy(tc->c)) {
        pthread_mutex_unlock(&tc->mu);
        return -EBUSY;
    }
    if (tc->t.w)
        sched_timer_del(&tc->t); /* TC1: no fire under way nor to come after this */
    pthread_mutex_unlock(&tc->mu);
    pthread_mutex_destroy(&tc->mu);
    chan_dealloc(tc->c);
    free(tc);
    return 0;
}

int tchan_free_chan(struct tchan *tc)
{
    return tc->after ? tc_free(tc) : -EINVAL;
}

/* ------------------------------------------------------------------ ringo_after */
ringo_chan *ringo_after(int64_t ns)
{
    struct tchan *tc = tc_make(ns, 0, true);
    return tc ? tc->c : NULL;
}

/* ------------------------------------------------------------------ timers */
struct ringo_timer *ringo_timer_make(int64_t ns)
{
    return (struct ringo_timer *)tc_make(ns, 0, false);
}

ringo_chan *ringo_timer_chan(struct ringo_timer *t)
{
    return t ? t->tc.c : NULL;
}

int ringo_timer_stop(struct ringo_timer *t)
{
    if (!t)
        return -EINVAL;
    pthread_mutex_lock(&t->tc.mu);
    int r = tc_halt(&t->tc);
    pthread_mutex_unlock(&t->tc.mu);
    return r != 0; /* TC2: pending, or fired and never received */
}

int ringo_timer_reset(struct ringo_timer *t, int64_t ns)
{
    if (!t)
        return -EINVAL;
    pthread_mutex_lock(&t->tc.mu);
    int r = tc_halt(&t->tc);
    tc_arm(&t->tc, sched_timer_home(), ns); /* the runtime runs: the make started it */
    pthread_mutex_unlock(&t->tc.mu);
    return r != 0;
}

int ringo_timer_free(struct ringo_timer *t)
{
    return t ? tc_free(&t->tc) : -EINVAL;
}

/* ------------------------------------------------------------------ tickers */
struct ringo_ticker *ringo_ticker_make(int64_t period)
{
    if (period <= 0) {
        errno = EINVAL;
        return NULL;
    }
    return (struct ringo_ticker *)tc_make(period, period, false);
}

ringo_chan *ringo_ticker_chan(struct ringo_ticker *t)
{
    return t ? t->tc.c : NULL;
}

int ringo_ticker_stop(struct ringo_ticker *t)
{
    if (!t)
        return -EINVAL;
    pthread_mutex_lock(&t->tc.mu);
    int r = tc_halt(&t->tc);
    pthread_mutex_unlock(&t->tc.mu);
    return r & 1; /* a ticker is pending until stopped */
}

int ringo_ticker_reset(struct ringo_ticker *t, int64_t period)
{
    if (!t || period <= 0)
        return -EINVAL;
    pthread_mutex_lock(&t->tc.mu);
    tc_halt(&t->tc);
    t->tc.period = period; /* TC3: out of every heap now */
    tc_arm(&t->tc, sched_timer_home(), period);
    pthread_mutex_unlock(&t->tc.mu);
    return 0;
}

int ringo_ticker_free(struct ringo_ticker *t)
{
    return t ? tc_free(&t->tc) : -EINVAL;
}
