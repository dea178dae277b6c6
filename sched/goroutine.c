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
#define ID_BLOCK   1024

static size_t page_size;

size_t sched_g_reserve(void) { return G_RESERVE; }
size_t sched_g_slot_bytes(void) { return stk_slot_bytes(); }
size_t sched_g_count_slots(void) { return stk_count(); }
struct g *sched_g_slot(size_t i)
{
    return (struct g *)((char *)stk_slot(i) + stk_slot_bytes() - G_RESERVE);
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
    if (atomic_load_explicit(&gp->n, memory_order_relaxed)) { /* hint; checked under the lock */
        pthread_mutex_lock(&gp->lock);
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
        }
        pthread_mutex_unlock(&gp->lock);
    }
    if (g)
        return g;
    char *slot = stk_carve(sched.node_ids[node]);
    return slot ? g_from_slot(slot) : NULL;
}

void sched_g_free(struct worker *w, struct g *g)
{
    atomic_store_explicit(&g->status, GS_IDLE, memory_order_relaxed); /* S1; dumps read it racily */
    g->fn = NULL;
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
    atomic_store_explicit(&self->status, GS_DEAD, memory_order_relaxed); /* own */
    sched_stat_inc(&w->st_exited); /* own counter; summed by readers */
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

int64_t ringo_go(void (*fn)(void *arg), void *arg)
{
    if (!fn)
        return -EINVAL;
    if (unlikely(!sched_started()) && sched_start() != 0)
        return -EAGAIN;
    struct worker *w = sched_cur_worker();
    struct g *g = pool_get(w);
    if (!g)
        return -ENOMEM;
    int64_t id = new_id(w);
    g->id = id;
    g->fn = fn;
    g->arg = arg;
    g->wait_reason = WR_NONE;
    sched_ctx_init(g, g_entry);
    struct g *self = sched_cur_g(w);
    if (self) {
        sched_stat_inc(&w->st_spawned); /* own counter */
        sched_switch_to_new(w, self, g); /* child first; we come back from runnext */
        return id;
    }
    /* a plain thread (or g0, which never calls ringo_go): the child goes to the global queue */
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
