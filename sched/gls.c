/* sched/gls.c — goroutine-local storage (issue 14): ringo_gls_key_create/delete, get, set.
 *
 * Responsibility: values per goroutine (and per plain thread, on its stand-in g), found by key,
 * with pthread-style destructors at exit. Goroutines move between threads, so __thread cannot
 * hold per-goroutine context; this is what pthread_getspecific is for threads.
 *
 * Keys: a fixed table of GLS_KEYS entries, each with a generation counter (seq: even free, odd
 * in use; 0 never used). A key names an entry and the generation it was made in:
 * key = seq << GLS_IDX_BITS | index, so it is never 0 (seq is odd), and a zeroed, never-created
 * key is invalid. A value is stored with the seq of the key it was set with, so after a delete
 * and a create that reuses the entry, the new key (another seq) never sees the old values (the
 * ABA case). The seq has 32 - GLS_IDX_BITS bits: the same entry must be created and deleted
 * 2^24 times while a goroutine holds a value from the first generation before a stale value
 * can reappear (as ck_epoch, we name the window rather than close it).
 *
 * Storage: none until a goroutine's first ringo_gls_set of a non-NULL value (struct g holds a
 * pointer, NULL; ringo_go clears it, nothing else): an array of (seq, value) indexed by key
 * index, grown to the highest index the goroutine sets (8 entries first, then powers of two).
 * Only the goroutine itself reads or writes it; it is freed at exit, so a descriptor recycled
 * from a stack pool has none.
 *
 * Exit (sched_gls_exit): up to GLS_ROUNDS rounds, as pthread's PTHREAD_DESTRUCTOR_ITERATIONS:
 * each non-NULL value of a live key with a destructor is set to NULL, then the destructor is
 * called with it, on the goroutine's own stack, as the goroutine (it may use every ringo call,
 * block, set values again: the next round sees them); a round that called none ends it. What
 * is left after the last round, and the values of deleted keys, are dropped without a call.
 * Goroutines: at the return of their function and at ringo_exit (goroutine.c g_exit). Plain
 * threads: when the thread exits (pthread_exit or return from its start routine; the stand-in's
 * thread-specific destructor, park.c); not at exit() or a return from main(), as for pthread
 * keys.
 *
 * Invariants:
 *   L1  keys[i].seq changes only under keys_lock; create stores the destructor before the seq
 *       (release), and get/set/exit read the seq with acquire before the destructor.
 *   L2  An entry of a goroutine's storage holds a value only with the seq of the key that set
 *       it; a value is returned only when that seq is the entry's current one.
 * Contexts: every call from a goroutine or a plain thread; ringo_gls_get/set on a thread that
 *   never used ringo: get returns NULL without attaching, set attaches it (starts the runtime).
 * Depends on: sched.h (struct g, sched_cur_worker, sched_self, sched_thread_g).
 */
#include "sched/sched.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GLS_IDX_BITS 7u
#define GLS_KEYS     (1u << GLS_IDX_BITS)   /* keys alive at once */
#define GLS_SEQ_MASK ((1u << (32u - GLS_IDX_BITS)) - 1u)
#define GLS_ROUNDS   4

typedef void (*gls_dtor)(void *);

static struct {
    _Atomic uint32_t seq;       /* L1 */
    _Atomic(gls_dtor) dtor;     /* published by the seq */
} keys[GLS_KEYS];
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

struct gls_ent {
    uint32_t seq;               /* L2: the generation of the key that set val */
    void *val;
};
struct gls {
    size_t n;                   /* entries */
    struct gls_ent e[];
};

static inline bool key_live(uint32_t idx, uint32_t seq)
{
    /* acquire: pairs with create's release (its destructor) */
    return (seq & 1) && atomic_load_explicit(&keys[idx].seq, memory_order_acquire) == seq;
}

int ringo_gls_key_create(ringo_gls_key *key, void (*destructor)(void *))
{
    if (!key)
        return -EINVAL;
    pthread_mutex_lock(&keys_lock);
    for (uint32_t i = 0; i < GLS_KEYS; i++) {
        uint32_t s = atomic_load_explicit(&keys[i].seq, memory_order_relaxed); /* under keys_lock */
        if (s & 1)
            continue;
        s = s + 1; /* odd: in use (s was even, so it stays within GLS_SEQ_MASK) */
        atomic_store_explicit(&keys[i].dtor, destructor, memory_order_relaxed); /* published by the seq */
        atomic_store_explicit(&keys[i].seq, s, memory_order_release);             /* L1 */
        pthread_mutex_unlock(&keys_lock);
        *key = s << GLS_IDX_BITS | i;
        return 0;
    }
    pthread_mutex_unlock(&keys_lock);
    return -EAGAIN;
}

int ringo_gls_key_delete(ringo_gls_key key)
{
    uint32_t idx = key & (GLS_KEYS - 1), seq = key >> GLS_IDX_BITS;
    pthread_mutex_lock(&keys_lock);
    /* under keys_lock */
    if (!(seq & 1) || atomic_load_explicit(&keys[idx].seq, memory_order_relaxed) != seq) {
        pthread_mutex_unlock(&keys_lock);
        return -EINVAL;
    }
    atomic_store_explicit(&keys[idx].dtor, NULL, memory_order_relaxed); /* ordered by the seq */
    atomic_store_explicit(&keys[idx].seq, (seq + 1) & GLS_SEQ_MASK, memory_order_release); /* L1 */
    pthread_mutex_unlock(&keys_lock);
    return 0;
}

/* The calling goroutine, or this thread's stand-in (NULL if it has none). */
static struct g *cur_g(void)
{
    struct g *g = sched_cur_g(sched_cur_worker());
    return g ? g : sched_thread_g();
}

void *ringo_gls_get(ringo_gls_key key)
{
    uint32_t idx = key & (GLS_KEYS - 1), seq = key >> GLS_IDX_BITS;
    struct g *g = cur_g();
    struct gls *s = g ? g->gls : NULL;
    if (!s || idx >= s->n || s->e[idx].seq != seq || !key_live(idx, seq))
        return NULL;
    return s->e[idx].val;
}

int ringo_gls_set(ringo_gls_key key, const void *value)
{
    uint32_t idx = key & (GLS_KEYS - 1), seq = key >> GLS_IDX_BITS;
    if (!key_live(idx, seq))
        return -EINVAL;
    struct g *g = value ? sched_self() : cur_g(); /* storing NULL needs no stand-in */
    struct gls *s = g ? g->gls : NULL;
    if (!s || idx >= s->n) {
        if (!value)
            return 0; /* nothing stored is NULL already */
        size_t n = s ? s->n : 0, want = 8;
        while (want <= idx)
            want *= 2;
        s = realloc(s, sizeof *s + want * sizeof s->e[0]);
        if (!s)
            return -ENOMEM; /* the old storage, if any, is intact */
        memset(s->e + n, 0, (want - n) * sizeof s->e[0]);
        s->n = want;
        g->gls = s;
    }
    s->e[idx].seq = seq;
    s->e[idx].val = (void *)value;
    return 0;
}

void sched_gls_exit(struct g *g)
{
    for (int round = 0; round < GLS_ROUNDS; round++) {
        bool called = false;
        /* g->gls re-read at each step: a destructor's ringo_gls_set may have moved it */
        for (size_t i = 0; i < g->gls->n; i++) {
            struct gls_ent *e = &g->gls->e[i];
            void *v = e->val;
            if (!v)
                continue;
            e->val = NULL;
            if (!key_live((uint32_t)i, e->seq))
                continue; /* a deleted key: dropped (L2) */
            gls_dtor d = atomic_load_explicit(&keys[i].dtor, memory_order_relaxed); /* after the seq (L1) */
            if (d) {
                d(v);
                called = true;
            }
        }
        if (!called)
            break;
    }
    free(g->gls);
    g->gls = NULL;
}
