/* chan/select.c — ringo_select: wait on several channel operations, take exactly one.
 *
 * Responsibility: ringo_select's cases, timeout and fairness (the first ready case in a random
 * order); its waiters share one claim word, which the deadline competes for too.
 *
 * Shape. Lock every distinct channel (address order) and try each case in random order; if none
 * is ready, count ourselves on every channel and look once more (C3); then queue one sudog per
 * case, park until a claimer (or the deadline) wins the claim word, and withdraw from every
 * channel where a case is still counted (C6). A case woken with RETRY starts over (C4).
 *
 * Invariants relied on: C3 (ring.c), C4 and C6 (chan.h), the lock order (chan.h): locks taken
 * in ascending address order, released in reverse.
 * Depends on: sched/sched.h (park protocol with a deadline, sched_fastrand, ringo_now),
 * chan/chan.h (the locked attempts and waiter bookkeeping of chan.c).
 */
#include "chan/chan.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_TIMEOUT 0xFFFFFFFFu

static void lock_all(struct ringo_chan **cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        spin_lock(&cs[i]->lock);
}

static void unlock_all(struct ringo_chan **cs, size_t n)
{
    for (size_t i = n; i-- > 0;)
        spin_unlock(&cs[i]->lock);
}

int ringo_select(struct ringo_case *cases, size_t n, int64_t timeout)
{
    if ((n && !cases) || n > 65536)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].op != RINGO_RECV && cases[i].op != RINGO_SEND)
            return -EINVAL;
        if (cases[i].chan && cases[i].op == RINGO_SEND && !cases[i].elem && cases[i].chan->elem_size)
            return -EINVAL;
    }
    int64_t deadline = timeout < 0 ? -1 : timeout == 0 ? 0 : ringo_now() + timeout;

    /* random poll order: the first ready case in a uniformly random permutation is uniform
     * among the ready ones */
    uint16_t order_small[64];
    uint16_t *order = n <= 64 ? order_small : malloc(n * sizeof *order);
    struct ringo_chan *chans_small[64];
    struct ringo_chan **chans = n <= 64 ? chans_small : malloc(n * sizeof *chans);
    struct sudog sg_small[16];
    struct sudog *sg = n <= 16 ? sg_small : malloc(n * sizeof *sg);
    if (!order || !chans || !sg) {
        if (order != order_small)
            free(order);
        if (chans != chans_small)
            free(chans);
        if (sg != sg_small)
            free(sg);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = n > 1 ? sched_fastrand() % (i + 1) : 0;
        order[i] = order[j];
        order[j] = (uint16_t)i;
    }
    int ret;
    for (;;) {
        struct sudog *wake = NULL;
        int res;
        /* distinct channels in address order: the lock order */
        size_t nch = 0;
        for (size_t i = 0; i < n; i++) {
            struct ringo_chan *c = cases[i].chan;
            if (!c)
                continue;
            size_t k = 0;
            while (k < nch && chans[k] < c)
                k++;
            if (k < nch && chans[k] == c)
                continue;
            memmove(&chans[k + 1], &chans[k], (nch - k) * sizeof *chans);
            chans[k] = c;
            nch++;
        }

        /* pass 1 (and the re-check of C3/C4): everything locked, try each case in random order */
        lock_all(chans, nch);
        _Atomic uint32_t claim = 0;
        int done = -1;
        for (size_t k = 0; k < n && done < 0; k++) {
            size_t i = order[k];
            struct ringo_chan *c = cases[i].chan;
            if (!c)
                continue;
            int ok = chan_try_locked(c, cases[i].op == RINGO_SEND, cases[i].elem, &claim, &res, &wake);
            if (ok) {
                cases[i].result = res;
                done = (int)i;
            }
        }
        if (done >= 0) {
            unlock_all(chans, nch);
            chan_wake_list(wake);
            ret = done;
            break;
        }
        if (deadline == 0) {
            unlock_all(chans, nch);
            ret = -EAGAIN;
            break;
        }
        if (deadline > 0 && ringo_now() >= deadline) {
            unlock_all(chans, nch);
            ret = -ETIMEDOUT;
            break;
        }
        /* Count ourselves on every channel (C3), then look once more: a fast-path op that ran
         * before our counters were visible left its trace in a ring. We are not queued yet, so
         * nothing (not even a settle inside our own attempt) can claim us; we hold every lock,
         * so no unbuffered channel changes meanwhile and only buffered cases need the look. */
        for (size_t i = 0; i < n; i++)
            if (cases[i].chan)
                chan_wait_inc(cases[i].chan, cases[i].op == RINGO_SEND); /* C3 */
        for (size_t k = 0; k < n && done < 0; k++) {
            size_t i = order[k];
            struct ringo_chan *c = cases[i].chan;
            if (!c || !c->cap)
                continue;
            int ok = chan_try_locked(c, cases[i].op == RINGO_SEND, cases[i].elem, &claim, &res, &wake);
            if (ok) {
                cases[i].result = res;
                done = (int)i;
            }
        }
        if (done >= 0) {
            for (size_t i = 0; i < n; i++)
                if (cases[i].chan)
                    chan_wait_dec(cases[i].chan, cases[i].op == RINGO_SEND);
            unlock_all(chans, nch);
            chan_wake_list(wake);
            ret = done;
            break;
        }
        struct g *self = sched_self();
        for (size_t i = 0; i < n; i++) {
            struct ringo_chan *c = cases[i].chan;
            if (!c)
                continue;
            bool snd = cases[i].op == RINGO_SEND;
            sg[i] = (struct sudog){ .g = self, .c = c, .elem = cases[i].elem, .claim = &claim,
                                    .claim_val = (uint32_t)i + 1, .is_send = snd, .counted = true };
            dlist_push_back(snd ? &c->sendq : &c->recvq, &sg[i].node); /* counted above */
        }
        sched_park_prepare_until(self, nch ? WR_SELECT : WR_SELECT_NONE, deadline);
        unlock_all(chans, nch);
        int pr = sched_park(self, deadline, &claim, CLAIM_TIMEOUT);
        /* Withdraw from every channel where a case of ours is still counted (C6). Only we
         * uncount our stale cases, so these flags are stable; the winning case was uncounted by
         * its claimer if its result is final, and that channel may already be freed: do not
         * touch it then. */
        size_t nw = 0;
        for (size_t k = 0; k < nch; k++) {
            bool mine = false;
            for (size_t i = 0; i < n; i++)
                if (cases[i].chan == chans[k] && sg[i].counted)
                    mine = true;
            if (mine)
                chans[nw++] = chans[k]; /* still in address order */
        }
        lock_all(chans, nw);
        for (size_t i = 0; i < n; i++) {
            if (!cases[i].chan || !sg[i].counted)
                continue;
            if (sg[i].node.linked)
                dlist_unlink(cases[i].op == RINGO_SEND ? &cases[i].chan->sendq : &cases[i].chan->recvq,
                             &sg[i].node);
            chan_uncount(cases[i].chan, &sg[i]);
        }
        unlock_all(chans, nw);
        /* a retry (below) collects the channels again at the top */
        if (pr == -ETIMEDOUT) {
            ret = -ETIMEDOUT;
            break;
        }
        /* acquire: pairs with the claimer's acq_rel CAS (it wrote the result before readying) */
        uint32_t won = atomic_load_explicit(&claim, memory_order_acquire) - 1;
        if (sg[won].result == R_RETRY)
            continue; /* C4: claimed by close or by a claimer that lost the value: start over */
        cases[won].result = sg[won].result;
        ret = (int)won;
        break;
    }
    if (order != order_small)
        free(order);
    if (chans != chans_small)
        free(chans);
    if (sg != sg_small)
        free(sg);
    return ret;
}
