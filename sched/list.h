/* sched/list.h — one intrusive doubly-linked list for the whole runtime (never installed).
 *
 * Responsibility: the queue shape that channel wait queues, the epoll backend's waiters and the
 * like share: a head with first/last, nodes embedded in the waiting frame. Not thread-safe: the
 * owner of the list (a lock, or one thread) serialises every call.
 *
 * Invariants:
 *   L1  n->linked is true iff n is on some list; a node is on at most one list.
 *   L2  l->first == NULL iff l->last == NULL iff the list is empty.
 * In debug builds (SCHED_CHECK) pushing a linked node or unlinking an unlinked one is fatal.
 * Depends on: nothing (sched.h for SCHED_CHECK only).
 */
#ifndef RINGO_SCHED_LIST_H
#define RINGO_SCHED_LIST_H
#include "sched/sched.h"
#include <stdbool.h>
#include <stddef.h>

struct dnode {
    struct dnode *next, *prev;
    bool linked;                   /* L1 */
};
struct dlist {
    struct dnode *first, *last;    /* L2 */
};

#define DLIST_INIT { NULL, NULL }
/* The struct that embeds node n as member m. */
#define dlist_entry(n, type, m) ((type *)(void *)((char *)(n) - offsetof(type, m)))

static inline bool dlist_empty(const struct dlist *l) { return l->first == NULL; }

static inline void dlist_push_back(struct dlist *l, struct dnode *n)
{
    SCHED_CHECK(!n->linked, "list: pushing a node that is already linked");
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
    n->linked = true;
}

static inline void dlist_unlink(struct dlist *l, struct dnode *n)
{
    SCHED_CHECK(n->linked, "list: unlinking a node that is not linked");
    if (n->prev)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->next = n->prev = NULL;
    n->linked = false;
}
#endif
