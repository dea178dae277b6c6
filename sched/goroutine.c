/* sched/goroutine.c — goroutines: create, exit, ids, stacks and their pools.
 *
 * Responsibility: ringo_go / ringo_exit / ringo_self / ringo_num_goroutines, and the life of a
 * stack slot: carved from the arena (kernel_iface/stackmem), the descriptor (struct g) placed at
 * the top of its own slot, recycled through a per-worker LIFO pool, surplus moved to a global
 * pool with its pages given back.
 *
 * Slot layout (low -> high):  [guard][stack ............ grows down][struct g]
 *   The guard is sched.stack_guard bytes (RINGO_STACK_GUARD, default STK_GUARD_DEFAULT): large
 *   enough that a big frame without stack-clash probes lands in it; it costs address space, no
 *   memory. The descriptor shares the top page with the first frames, so a goroutine parked
 *   shallowly costs one resident page.
 *
 * Scheduling of a new goroutine: child first. Spawned from a goroutine, the child runs at once
 * and the parent waits in runnext (a thief may take the parent if this worker stays busy, see
 * proc.c RUNNEXT_STEAL_NS): a spawn loop of short goroutines reuses one hot stack, and a tree
 * of goroutines (skynet) runs depth first. Spawned from a plain thread, the child goes to the
 * global queue.
 *
 * Invariants:
 *   S1  A descriptor in a pool has status GS_IDLE and is on exactly one pool list.
 *   S2  Stacks in a worker pool beyond POOL_HI are moved, POOL_BATCH at a time, to the global
 *       pool; once that holds more than GPOOL_HOT, the stacks moved there have every page below
 *       the descriptor page released. (Releasing eagerly made spawn-heavy programs refault the
 *       same pages over and over: skynet spent a third of its time in the kernel.)
 *   S3  Decay (issue 13: 48 of 82 MB stayed resident after 10,000 clients left). A worker that
 *       goes idle hands the stacks of its pool beyond POOL_BATCH to the global pool
 *       (sched_g_pool_trim). Every quarter second (sysmon.c DECAY_NS) the sysmon takes from each
 *       global pool the stacks that sat unused that whole time (its low-water mark since the
 *       last decay, less
 *       GPOOL_FLOOR) and gives back all their pages, the descriptor's too: such a slot leaves
 *       the pool for the node's cold list (slot addresses, under the pool lock) and gets a
 *       fresh descriptor when it is taken again. A zeroed descriptor reads as GS_IDLE, so a
 *       dump that walks every slot sees an idle one. A burst that keeps coming back keeps its
 *       stacks warm: only a full quiet interval gives them back.
 * Big stacks (ringo_go_opts with a stack_size above the configured one; issue 14):
 *   B1  A request is rounded up to a power of two, plus one page for the descriptor, and gets a
 *       slot of its own from stackmem (stk_carve_big: [guard][stack][struct g], the same guard
 *       as the arena's). Powers of two keep the number of sizes small, so a freed slot serves
 *       the next request of its class: programs that make many big-stack goroutines reuse a
 *       few mappings instead of growing the address space (at most twice the request, in
 *       address space only: untouched pages cost nothing).
 *   B2  A freed big slot gives back every stack page below its descriptor's page at once (big
 *       stacks are rare, and their pages are many), and goes back to stackmem's free list for
 *       its size. The descriptor page stays: a reused slot keeps its descriptor (TSan fiber,
 *       valgrind registration) as a pooled one does, and a dump that walks the big-slot table
 *       sees GS_IDLE.
 *   B3  Big descriptors never enter the pools (S1-S3 are about arena slots only), so decay
 *       never touches them; g->stack_big tells them apart, constant for the slot's life.
 *   A request at or below the configured stack size takes an ordinary slot ("at least
 *   stack_size" in ringo.h).
 * Contexts: ringo_go from anywhere; sched_g_free on the worker that switched the dead g out.
 * Depends on: sched.h, ctx.c (first frame, switch to the child), runq.c/proc.c (global push),
 *   kernel_iface/stackmem.
 */
#include "sched/sched.h"
#include "kernel_iface/stackmem.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define G_RESERVE  ((sizeof(struct g) + 63) & ~(size_t)63)
#define POOL_HI    256u   /* stacks a worker keeps, pages intact */
#define POOL_BATCH 64u    /* moved to the global pool at a time */
#define GPOOL_HOT  1024u  /* stacks the global pool keeps with their pages; beyond, pages go back */
#define GPOOL_FLOOR 64u   /* S3: stacks a node keeps warm however quiet */
#define ID_BLOCK   1024

static size_t page_size;

size_t sched_g_reserve(void) { return G_RESERVE; }
size_t sched_g_slot_bytes(void) { return stk_slot_bytes(); }
size_t sched_g_count_slots(void) { return stk_count(); }
struct g *sched_g_slot(size_t i)
{
    return (struct g *)((char *)stk_slot(i) + stk_slot_bytes() - G_RESERVE);
}
size_t sched_g_count_big(void) { return stk_big_count(); }
struct g *sched_g_big(size_t i)
{
    size_t body;
    char *base = stk_big_slot(i, &body);
    return (struct g *)(base + stk_guard_bytes() + body - G_RESERVE);
}

void sched_stacks_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (sched.stack_usable + G_RESERVE + page_size - 1) & ~(page_size - 1);
    stk_setup(sched.stack_guard + body, sched.stack_guard, !(sched.disable & DIS_GUARD_MADVISE));
}

static struct g *g_from_slot(char *slot)
{
    struct g *g = (struct g *)(slot + stk_slot_bytes() - G_RESERVE);
    memset(g, 0, sizeof *g);
    g->stack_lo = slot + stk_guard_bytes();
    g->stack_size = (size_t)((char *)g - g->stack_lo);
    sched_ctx_stack_new(g);
    return g;
}

/* Give back every page of g's stack below the page that holds the descriptor. */
static void g_release_pages(struct g *g)
{
    char *top_page = (char *)((uintptr_t)g & ~(uintptr_t)(page_size - 1));
    stk_release(g->stack_lo, (size_t)(top_page - g->stack_lo));
}

/* A stack for a goroutine spawned by w (NULL: a plain thread), from the node it will run on
 * first: w's pool, then w's node's global pool, then a new slot from that node's chunks. */
static struct g *pool_get(struct worker *w)
{
    if (w && w->pool) {
        struct g *g = w->pool;
        w->pool = g->schedlink;
        w->npool--;
        return g;
    }
    int node = w ? (int)w->node : sched_thread_node();
    struct gpool *gp = &sched.gpool[node];
    struct g *g = NULL;
    char *cold = NULL;
    /* relaxed: hints, checked under the lock */
    if (atomic_load_explicit(&gp->n, memory_order_relaxed) || atomic_load_explicit(&gp->ncold, memory_order_relaxed)) {
        pthread_mutex_lock(&gp->lock);
        size_t nc = atomic_load_explicit(&gp->ncold, memory_order_relaxed); /* under lock */
        if (!gp->head && nc) {
            cold = gp->cold[nc - 1]; /* S3: a slot with no pages: a new descriptor below */
            atomic_store_explicit(&gp->ncold, nc - 1, memory_order_relaxed);
        }
        if (gp->head) {
            g = gp->head;
            gp->head = g->schedlink;
            atomic_fetch_sub_explicit(&gp->n, 1, memory_order_relaxed); /* under lock */
            /* refill the worker pool with a batch, so the next spawns stay lock-free */
            while (w && gp->head && w->npool < POOL_BATCH) {
                struct g *x = gp->head;
                gp->head = x->schedlink;
                atomic_fetch_sub_explicit(&gp->n, 1, memory_order_relaxed); /* under lock */
                x->schedlink = w->pool;
                w->pool = x;
                w->npool++;
            }
            size_t left = atomic_load_explicit(&gp->n, memory_order_relaxed); /* under lock */
            if (left < gp->low)
                gp->low = left; /* S3 */
        }
        pthread_mutex_unlock(&gp->lock);
    }
    if (g)
        return g;
    if (cold)
        return g_from_slot(cold);
    char *slot = stk_carve(sched.node_ids[node]);
    return slot ? g_from_slot(slot) : NULL;
}

/* ------------------------------------------------------------------ big stacks (B1-B3 above) */

/* B1: the smallest power of two >= stack_size, plus the descriptor's page. */
static struct g *big_get(size_t stack_size)
{
    size_t cls = page_size;
    while (cls < stack_size)
        cls <<= 1;
    size_t body = cls + page_size;
    char *base = stk_carve_big(body);
    if (!base)
        return NULL;
    struct g *g = (struct g *)(base + stk_guard_bytes() + body - G_RESERVE);
    if (!g->stack_big) { /* a new mapping (a reused one keeps its descriptor: B2) */
        g->stack_lo = base + stk_guard_bytes();
        g->stack_size = (size_t)((char *)g - g->stack_lo);
        g->stack_big = 1;
        sched_ctx_stack_new(g);
    }
    return g;
}

/* B2: its stack pages go back now; the descriptor's page stays, with what the tools keep in it. */
static void big_free(struct g *g)
{
    g_release_pages(g);
    stk_free_big(g->stack_lo - stk_guard_bytes());
}

void sched_g_free(struct worker *w, struct g *g)
{
    atomic_store_explicit(&g->status, GS_IDLE, memory_order_relaxed); /* S1; dumps read it racily */
    g->fn = NULL;
    if (unlikely(g->stack_big)) { /* B3 */
        big_free(g);
        return;
    }
    g->schedlink = w->pool;
    w->pool = g;
    if (++w->npool <= POOL_HI)
        return;
    /* S2: move a batch to the global pool, giving their pages back if it is large already */
    struct g *head = NULL, *tail = NULL;
    struct gpool *gp = &sched.gpool[w->node]; /* the stacks stay on this worker's node */
    bool release = atomic_load_explicit(&gp->n, memory_order_relaxed) >= GPOOL_HOT; /* hint only */
    for (unsigned i = 0; i < POOL_BATCH; i++) {
        struct g *x = w->pool;
        w->pool = x->schedlink;
        w->npool--;
        if (release)
            g_release_pages(x);
        x->schedlink = head;
        head = x;
        if (!tail)
            tail = x;
    }
    pthread_mutex_lock(&gp->lock);
    tail->schedlink = gp->head;
    gp->head = head;
    atomic_fetch_add_explicit(&gp->n, POOL_BATCH, memory_order_relaxed); /* under lock */
    pthread_mutex_unlock(&gp->lock);
}

/* The stacks of w's pool beyond keep go to w's node's global pool. */
static void pool_give_back(struct worker *w, unsigned keep)
{
    if (w->npool <= keep)
        return;
    struct g *head = NULL, *tail = NULL;
    size_t k = 0;
    while (w->npool > keep) {
        struct g *x = w->pool;
        w->pool = x->schedlink;
        w->npool--;
        x->schedlink = head;
        head = x;
        if (!tail)
            tail = x;
        k++;
    }
    struct gpool *gp = &sched.gpool[w->node];
    pthread_mutex_lock(&gp->lock);
    tail->schedlink = gp->head;
    gp->head = head;
    atomic_fetch_add_explicit(&gp->n, k, memory_order_relaxed); /* under lock */
    pthread_mutex_unlock(&gp->lock);
}

/* S3: the owner, going idle: the stacks of its pool beyond POOL_BATCH go to the global pool,
 * where the sysmon's decay can reach them. */
void sched_g_pool_trim(struct worker *w)
{
    pool_give_back(w, POOL_BATCH);
}

/* A locked worker's end (lockthread.c): every stack of its pool to the global pool. */
void sched_g_pool_flush(struct worker *w)
{
    pool_give_back(w, 0);
}

bool sched_g_pools_warm(void)
{
    for (unsigned node = 0; node < sched.nnodes; node++)
        if (atomic_load_explicit(&sched.gpool[node].n, memory_order_relaxed) > GPOOL_FLOOR) /* a hint */
            return true;
    return false;
}

/* S3: the sysmon, every DECAY_NS. */
void sched_g_pools_decay(void)
{
#ifdef RINGO_VALGRIND
    /* a slot's stack is registered with valgrind once, when its descriptor is made (ctx.c):
     * a decayed slot would be registered again; valgrind builds keep their stacks warm */
    return;
#endif
    size_t slot = stk_slot_bytes(), guard = stk_guard_bytes();
    for (unsigned node = 0; node < sched.nnodes; node++) {
        struct gpool *gp = &sched.gpool[node];
        pthread_mutex_lock(&gp->lock);
        size_t n = atomic_load_explicit(&gp->n, memory_order_relaxed); /* under lock */
        size_t take = gp->low > n ? n : gp->low; /* low <= n unless stacks were added since */
        take = take > GPOOL_FLOOR ? take - GPOOL_FLOOR : 0;
        /* room on the cold list first: only this thread adds to it, so it still fits below */
        size_t nc = atomic_load_explicit(&gp->ncold, memory_order_relaxed); /* under lock */
        if (take && nc + take > gp->cold_cap) {
            size_t cap = gp->cold_cap ? gp->cold_cap : 256;
            while (cap < nc + take)
                cap *= 2;
            char **c = realloc(gp->cold, cap * sizeof *c);
            if (c) {
                gp->cold = c;
                gp->cold_cap = cap;
            }
        }
        if (take > gp->cold_cap - nc)
            take = gp->cold_cap - nc; /* no memory for more: the rest stay warm */
        char **slots = take ? malloc(take * sizeof *slots) : NULL;
        if (!slots)
            take = 0;
        for (size_t i = 0; i < take; i++) {
            struct g *x = gp->head;
            gp->head = x->schedlink;
            slots[i] = (char *)x->stack_lo - guard; /* read before its pages go */
            sched_ctx_stack_release(x);
        }
        atomic_fetch_sub_explicit(&gp->n, take, memory_order_relaxed); /* under lock */
        gp->low = n - take;
        pthread_mutex_unlock(&gp->lock);
        if (!take)
            continue;
        /* these slots are on no list now: nobody else reaches them */
        for (size_t i = 0; i < take; i++)
            stk_release(slots[i] + guard, slot - guard);
        pthread_mutex_lock(&gp->lock);
        nc = atomic_load_explicit(&gp->ncold, memory_order_relaxed); /* under lock; only ever lower */
        memcpy(gp->cold + nc, slots, take * sizeof *slots);
        atomic_store_explicit(&gp->ncold, nc + take, memory_order_relaxed); /* under lock */
        pthread_mutex_unlock(&gp->lock);
        free(slots);
    }
}

static int64_t new_id(struct worker *w)
{
    if (!w)
        return atomic_fetch_add_explicit(&sched.next_id, 1, memory_order_relaxed); /* uniqueness only */
    if (w->id_next == w->id_end) {
        w->id_next = atomic_fetch_add_explicit(&sched.next_id, ID_BLOCK, memory_order_relaxed);
        w->id_end = w->id_next + ID_BLOCK;
    }
    return w->id_next++;
}

TSAN_NO_FRAMES static _Noreturn void g_exit(void)
{
    struct worker *w = sched_cur_worker();
    struct g *self = w->curg;
    if (unlikely(self->gls)) {
        sched_gls_exit(self); /* destructors, on our stack; they may block */
        w = sched_cur_worker(); /* I4 */
    }
    if (self->grp)
        sched_group_leave(self); /* group.c G1 (a mutex: the thread may wait, g stays here) */
    atomic_store_explicit(&self->status, GS_DEAD, memory_order_relaxed); /* own */
    if (unlikely(w->locked)) {
        sched_lockw_exit(self); /* lockthread.c: its thread ends after it */
        /* a locked worker's counters are nobody's sum: count the exit globally */
        atomic_fetch_sub_explicit(&sched.thread_spawned, 1, memory_order_relaxed); /* counter only */
    } else {
        sched_stat_inc(&w->st_exited); /* own counter; summed by readers */
    }
    sched_switch_exit(w, self);
}

TSAN_NO_FRAMES static void g_entry(void *arg)
{
    struct g *self = arg;
    sched_ctx_entered();
    sched_post_switch(sched_cur_worker());
    self->fn(self->arg);
    g_exit();
}

/* ------------------------------------------------------------------ options (issue 14) */
#define GO_FLAGS_KNOWN RINGO_GO_NO_GROUP /* struct ringo_go_opts.flags */
#define GO_STACK_MAX ((size_t)1 << 30)  /* the most a ringo_go_opts.stack_size may ask */

static int opts_check(const struct ringo_go_opts *o)
{
    if (o->flags & ~GO_FLAGS_KNOWN)
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->_r_reserved / sizeof o->_r_reserved[0]; i++)
        if (o->_r_reserved[i])
            return -EINVAL; /* a field of a later version: refuse rather than ignore it */
    return o->stack_size > GO_STACK_MAX ? -EINVAL : 0;
}

/* Copy name, truncated to G_NAME_LEN - 1 bytes; a byte that would break a dump line (control
 * characters, '"', '\\') is stored as '_'. NULL: no name. */
static void set_name(struct g *g, const char *name)
{
    size_t i = 0;
    for (; name && i < G_NAME_LEN - 1 && name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        g->name[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '_' : (char)c;
    }
    g->name[i] = 0;
}

int ringo_set_name(const char *name)
{
    if (!name)
        return -EINVAL;
    struct g *self = sched_self(); /* a plain thread: its stand-in (attaches) */
    set_name(self, name);
    return 0;
}

int64_t ringo_go(void (*fn)(void *arg), void *arg)
{
    return ringo_go_opts(fn, arg, NULL);
}

int64_t ringo_go_opts(void (*fn)(void *arg), void *arg, const struct ringo_go_opts *opts)
{
    return sched_go_in(fn, arg, opts, NULL);
}

int64_t sched_go_in(void (*fn)(void *arg), void *arg, const struct ringo_go_opts *opts, struct ringo_group *grp)
{
    if (!fn)
        return -EINVAL;
    if (unlikely(opts)) {
        int e = opts_check(opts);
        if (e)
            return e;
    }
    if (unlikely(!sched_started()) && sched_start() != 0)
        return -EAGAIN;
    struct worker *w = sched_cur_worker();
    struct g *g = unlikely(opts && opts->stack_size > sched.stack_usable) ? big_get(opts->stack_size)
                                                                          : pool_get(w);
    if (!g)
        return -ENOMEM;
    g->gls = NULL;                            /* issue 14: none until the first ringo_gls_set */
    set_name(g, opts ? opts->name : NULL);    /* issue 14 */
    int64_t id = new_id(w);
    g->id = id;
    g->fn = fn;
    g->arg = arg;
    g->wait_reason = WR_NONE;
    sched_ctx_init(g, g_entry);
    struct g *self = sched_cur_g(w);
    if (!grp && self && likely(!(opts && (opts->flags & RINGO_GO_NO_GROUP))))
        grp = self->grp; /* a member's goroutine is a member (group.c), unless told otherwise */
    g->grp = NULL;
    g->lockw = NULL;
    g->lock_depth = 0;
    if (unlikely(grp != NULL))
        sched_group_join(g, grp);
    if (self && likely(!w->locked)) {
        sched_stat_inc(&w->st_spawned); /* own counter */
        sched_switch_to_new(w, self, g); /* child first; we come back from runnext */
        return id;
    }
    /* a plain thread, a locked goroutine (lockthread.c: its thread runs nothing else), or g0
     * (which never calls ringo_go): the child goes to the global queue */
    sched_main_watch(); /* main may pthread_exit and leave the rest to the goroutines */
    atomic_fetch_add_explicit(&sched.thread_spawned, 1, memory_order_relaxed); /* counter only */
    atomic_store_explicit(&g->status, GS_RUNNABLE, memory_order_relaxed); /* published by the queue lock */
    sched_global_push(g);
    return id;
}

_Noreturn void ringo_exit(void)
{
    struct worker *w = sched_cur_worker();
    if (!sched_cur_g(w)) {
        /* on main: the goroutines run on; when none is left the process ends with Go's
         * "no goroutines (main called ringo_exit)" (sched/debug/deadlock.c) */
        sched_main_ringo_exit();
        pthread_exit(NULL);
    }
    g_exit();
}

int64_t ringo_self(void)
{
    struct worker *w = sched_cur_worker();
    struct g *g = sched_cur_g(w);
    return g ? g->id : 0;
}

size_t ringo_num_goroutines(void)
{
    if (!sched_started())
        return 0;
    int64_t n = atomic_load_explicit(&sched.thread_spawned, memory_order_relaxed);
    for (unsigned i = 0, nw = sched_nworkers(); i < nw; i++) {
        n += (int64_t)atomic_load_explicit(&sched.w[i]->st_spawned, memory_order_relaxed);
        n -= (int64_t)atomic_load_explicit(&sched.w[i]->st_exited, memory_order_relaxed);
    }
    return n > 0 ? (size_t)n : 0;
}

static const char *const wr_names[WR__COUNT] = {
    [WR_NONE] = "",
    [WR_CHAN_SEND] = "chan send",
    [WR_CHAN_RECV] = "chan receive",
    [WR_SELECT] = "select",
    [WR_SELECT_NONE] = "select (no cases)",
    [WR_MUTEX] = "sync.Mutex.Lock",
    [WR_WAITGROUP] = "sync.WaitGroup.Wait",
    [WR_SLEEP] = "sleep",
    [WR_IO] = "IO wait",
    [WR_CHAN_SEND_NIL] = "chan send (nil chan)",
    [WR_CHAN_RECV_NIL] = "chan receive (nil chan)",
    [WR_BLOCKING] = "blocking call",
    [WR_GROUP] = "group wait",
    [WR_RWMUTEX_R] = "sync.RWMutex.RLock",
    [WR_RWMUTEX_W] = "sync.RWMutex.Lock",
    [WR_COND] = "sync.Cond.Wait",
    [WR_SEM] = "semaphore.Acquire",
};

const char *sched_waitreason_str(int wr)
{
    return wr >= 0 && wr < WR__COUNT && wr_names[wr] ? wr_names[wr] : "?";
}

const char *sched_status_str(uint32_t st)
{
    switch (st) {
    case GS_IDLE: return "idle";
    case GS_RUNNABLE: return "runnable";
    case GS_RUNNING: return "running";
    case GS_PARKING: return "parking";
    case GS_WOKEN: return "runnable";
    case GS_PARKED: return "waiting";
    case GS_DEAD: return "dead";
    }
    return "?";
}
