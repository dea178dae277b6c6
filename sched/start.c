/* sched/start.c — starting the runtime: configuration, environment, topology -> workers.
 *
 * Responsibility: ringo_init / ringo_procs / sched_start; RINGO_* environment parsing; the
 * worker descriptors (by default one per CPU of the affinity mask, fewer under a cgroup CPU
 * limit, placed on the NUMA policy of kernel_iface/topology) and their threads; the runtime's
 * global state (struct sched).
 *
 * Invariants:
 *   N1  started_state moves 0 -> 1 (or -errno) once, under start_lock; started_flag mirrors
 *       1 with a release store, so sched_started() readers (acquire) see every sched.* field.
 *   N2  Every worker thread has reached the start barrier, its I/O state and signal stack
 *       ready, before sched_start returns.
 *   N3  The cgroup CPU limit only shapes the default worker count: ringo_config.procs, then
 *       RINGO_PROCS, win over it, and then the cgroup files are not read at all.
 * Depends on: sched.h, kernel_iface (topology, cgroup, clock, stackmem); proc.c
 * (sched_worker_main).
 */
#include "sched/sched.h"
#include "sched/poller.h"
#include "kernel_iface/cgroup.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/stackmem.h"
#include "kernel_iface/topology.h"
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sched sched = {
    .idle_lock = PTHREAD_MUTEX_INITIALIZER,
    .tlock = PTHREAD_MUTEX_INITIALIZER,
    .next_id = 1,
};

pthread_barrier_t sched_start_barrier;

static struct ringo_config user_cfg = { .pin = -1 };
static int started_state; /* 0 no, 1 yes, -errno failed; under start_lock */
static _Atomic int started_flag;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

bool sched_started(void)
{
    return atomic_load_explicit(&started_flag, memory_order_acquire) == 1; /* pairs with sched_start */
}

static int validate_cfg(const struct ringo_config *c)
{
    if (c->procs > 4096)
        return -EINVAL;
    if (c->stack_size && (c->stack_size < 16384 || c->stack_size > (1ull << 30)))
        return -EINVAL;
    if (c->pin < -1 || c->pin > 1)
        return -EINVAL;
    if (c->ring_entries && c->ring_entries > 32768)
        return -EINVAL;
    return 0;
}

int ringo_init(const struct ringo_config *cfg)
{
    if (!cfg)
        return -EINVAL;
    int r = validate_cfg(cfg);
    if (r)
        return r;
    pthread_mutex_lock(&start_lock);
    if (started_state != 0) {
        pthread_mutex_unlock(&start_lock);
        return -EALREADY;
    }
    user_cfg = *cfg;
    pthread_mutex_unlock(&start_lock);
    return 0;
}

static long env_long(const char *name, long dflt, long lo, long hi)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "ringo: ignoring %s=%s (expected %ld..%ld)\n", name, s, lo, hi);
        return dflt;
    }
    return v;
}

static unsigned parse_flags(const char *env, const char *const *names, unsigned n)
{
    const char *s = getenv(env);
    unsigned bits = 0;
    if (!s)
        return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = 0;
        unsigned i;
        for (i = 0; i < n; i++)
            if (names[i] && strcmp(tok, names[i]) == 0) {
                bits |= 1u << i;
                if (eq && strcmp(tok, "schedtrace") == 0)
                    sched.schedtrace_ms = (unsigned)atoi(eq + 1);
                if (eq && strcmp(tok, "hog") == 0)
                    sched.hog_ms = (unsigned)atoi(eq + 1);
                break;
            }
        if (i == n)
            fprintf(stderr, "ringo: %s: unknown item '%s'\n", env, tok);
    }
    return bits;
}

#if defined(RINGO_VALGRIND) || __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif

/* Under valgrind, whether or not this build registers its stacks (--enable-valgrind). */
static bool on_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return true;
#endif
    const char *p = getenv("LD_PRELOAD"); /* valgrind preloads its vgpreload_*.so into the program */
    return p && strstr(p, "/vgpreload_");
}

/* Valgrind (3.19 at least) treats io_uring_enter as a system call that never blocks, so a
 * worker asleep in it keeps valgrind's global lock and every other thread stops for good
 * (liburing issue #657, KDE bug 463859). Memcheck also cannot see the kernel fill a read
 * buffer through the ring. So under valgrind ringo runs on its epoll backend, whose
 * epoll_wait valgrind knows blocks. Called after RINGO_DISABLE is parsed, before the workers
 * and the I/O backend start. */
static void detect_valgrind(void)
{
    sched.on_valgrind = on_valgrind();
    if (sched.on_valgrind && !(sched.disable & DIS_IO_URING)) {
        sched.disable |= DIS_IO_URING;
        if (sched.debug)
            fprintf(stderr, "ringo: running under valgrind: io_uring off, I/O on epoll\n");
    }
}

/* RINGO_DISABLE and RINGO_DEBUG: first, everything after may depend on them. */
static void read_flags(void)
{
    static const char *const dis_names[] = { "guard_madvise", "io_uring", "futex_uring", "defer_taskrun",
                                             "ring_handoff", "extra_workers", "pbuf_ring" };
    static const char *const dbg_names[] = { "stats", "schedtrace", "sigquit", "topology", "verbose", "hog",
                                             "fdcheck" };
    sched.disable = parse_flags("RINGO_DISABLE", dis_names, 7);
    sched.debug = parse_flags("RINGO_DEBUG", dbg_names, 7);
}

/* The CPUs workers may run on: the affinity mask, narrowed by RINGO_CPUS / RINGO_NODES. */
static int pick_cpus(struct topo *topo, bool have_topo, int *cpus, unsigned *ncpus)
{
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        CPU_SET(0, &allowed);
    sched.allowed = allowed; /* before RINGO_CPUS narrows it: blocking-pool threads (blocking.c) */
    *ncpus = 0;
    if (have_topo) {
        char err[256] = "";
        if (topo_select_cpus(topo, &allowed, sizeof allowed, getenv("RINGO_CPUS"), getenv("RINGO_NODES"), cpus,
                             ncpus, err, sizeof err) != 0) {
            fprintf(stderr, "ringo: %s\n", err);
            return -EINVAL;
        }
    } else {
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &allowed))
                cpus[(*ncpus)++] = c;
    }
    if (*ncpus == 0)
        cpus[(*ncpus)++] = 0;
    return 0;
}

/* Where sched.nprocs came from, for RINGO_DEBUG=topology. */
static char procs_source[CGROUP_SOURCE_MAX + 160];

/* The default worker count: the usable CPUs, lowered to the cgroup CPU limit (N3).
 * RINGO_TEST_CGROUP_ROOT is for tests only: a fixture directory that stands for "/" when the
 * cgroup files are looked up (tests/test_cgroup.c). */
static unsigned default_procs(unsigned ncpus)
{
    char src[CGROUP_SOURCE_MAX];
    uint64_t milli = cgroup_cpu_limit(getenv("RINGO_TEST_CGROUP_ROOT"), src, sizeof src);
    unsigned n = cgroup_default_procs(ncpus, milli);
    if (milli)
        snprintf(procs_source, sizeof procs_source,
                 "%u = min(%u usable CPUs, cgroup limit %llu.%03llu CPUs rounded up, at least 2); %s", n, ncpus,
                 (unsigned long long)(milli / 1000), (unsigned long long)(milli % 1000), src);
    else
        snprintf(procs_source, sizeof procs_source, "%u = usable CPUs; %s", n, src);
    return n;
}

/* Sizes: struct ringo_config first, then the environment, then the defaults. */
static void read_sizes(unsigned ncpus)
{
    long procs = user_cfg.procs ? (long)user_cfg.procs : env_long("RINGO_PROCS", 0, 1, 4096);
    if (user_cfg.procs)
        snprintf(procs_source, sizeof procs_source, "%ld from ringo_config.procs", procs);
    else if (procs)
        snprintf(procs_source, sizeof procs_source, "%ld from RINGO_PROCS", procs);
    else
        procs = (long)default_procs(ncpus);
    long stack = user_cfg.stack_size ? (long)user_cfg.stack_size
                                     : env_long("RINGO_STACK_SIZE", 256 * 1024, 16384, 1L << 30);
    long pin = user_cfg.pin != -1 ? user_cfg.pin : env_long("RINGO_PIN", 1, 0, 1);
    sched.nprocs = (unsigned)procs;
    sched.stack_usable = (size_t)stack;
    /* env only: a struct ringo_config field would change sizeof, and ringo_init copies the
     * whole struct from callers built against the old header. Rounded up to whole pages. */
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t guard = (size_t)env_long("RINGO_STACK_GUARD", (long)STK_GUARD_DEFAULT, 4096, 1L << 30);
    sched.stack_guard = (guard + pg - 1) & ~(pg - 1);
    sched.pin = (int)pin;
    sched.ring_entries = user_cfg.ring_entries ? user_cfg.ring_entries : 256;
    /* the ringo_blocking pool (blocking.c): env only, for the same reason as the guard.
     * 512 threads and 10 s of idleness before one retires, as Tokio's blocking pool. */
    sched.blocking_max = (unsigned)env_long("RINGO_BLOCKING_THREADS", 512, 1, 65536);
    sched.blocking_idle_ms = (unsigned)env_long("RINGO_BLOCKING_IDLE_MS", 10000, 1, 86400000);
}

/* One global queue and one stack pool per node position. */
static int make_nodes(const struct topo_policy *pol, bool have_pol)
{
    sched.have_pol = have_pol;
    sched.nnodes = have_pol ? pol->nnodes : 1;
    sched.node_ids = calloc(sched.nnodes, sizeof(int));
    sched.gq = calloc(sched.nnodes, sizeof *sched.gq);
    sched.gpool = calloc(sched.nnodes, sizeof *sched.gpool);
    if (!sched.node_ids || !sched.gq || !sched.gpool)
        return -ENOMEM;
    for (unsigned n = 0; n < sched.nnodes; n++) {
        sched.node_ids[n] = have_pol ? pol->node_id[n] : -1;
        pthread_mutex_init(&sched.gq[n].lock, NULL);
        pthread_mutex_init(&sched.gpool[n].lock, NULL);
    }
    return 0;
}

/* The worker descriptors: CPU, node, steal order (nearest first), timers. */
/* One worker descriptor, id i: zeroed, its rng seeded, a steal order of n victims, timers. */
static struct worker *new_worker(unsigned i, unsigned n)
{
    struct worker *w;
    if (posix_memalign((void **)&w, CACHELINE, sizeof *w) != 0)
        return NULL;
    memset(w, 0, sizeof *w);
    w->id = i;
    w->rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ (uint64_t)clk_now();
    w->steal_order = calloc(n ? n : 1, sizeof(unsigned));
    if (!w->steal_order) {
        free(w);
        return NULL;
    }
    sched_timers_init(w);
    return w;
}

/* The most extra workers (sysmon.c): one per regular worker, as each stuck one gets one. */
static unsigned extra_max(void)
{
    return sched.nprocs;
}

static int make_workers(const int *worker_cpus, const struct topo_policy *pol, bool have_pol)
{
    sched.nw_max = sched.nprocs + extra_max();
    sched.w = calloc(sched.nw_max, sizeof *sched.w);
    if (!sched.w)
        return -ENOMEM;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *w = new_worker(i, sched.nprocs - 1);
        if (!w)
            return -ENOMEM;
        w->cpu = sched.pin ? worker_cpus[i] : -1;
        w->node = have_pol ? pol->worker_node[i] : 0;
        for (unsigned k = 0; k + 1 < sched.nprocs; k++)
            w->steal_order[k] = have_pol ? pol->steal_order[i * (sched.nprocs - 1) + k] : (i + 1 + k) % sched.nprocs;
        sched.w[i] = w;
    }
    /* relaxed: the threads that read it are created after this (pthread_create orders it) */
    atomic_store_explicit(&sched.nw, sched.nprocs, memory_order_relaxed);
    return 0;
}

int sched_extra_new(void)
{
    unsigned i = sched_nworkers();
    if (i >= sched.nw_max)
        return -EAGAIN;
    struct worker *w = new_worker(i, sched.nprocs);
    if (!w)
        return -ENOMEM;
    w->extra = true;
    w->cpu = -1; /* not pinned: it stands in for a worker whose thread holds that worker's CPU */
    w->node = 0;
    for (unsigned k = 0; k < sched.nprocs; k++)
        w->steal_order[k] = k;
    sched.w[i] = w; /* published by sysmon.c S4 (the release store of sched.nw) */
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&w->thread, &a, sched_worker_main, w);
    pthread_attr_destroy(&a);
    if (r != 0) {
        sched.w[i] = NULL;
        free(w->steal_order);
        free(w);
        return -r;
    }
    return 0;
}

/* One thread per worker; returns when all of them stand at the start barrier (N2). */
static void start_threads(void)
{
    pthread_barrier_init(&sched_start_barrier, NULL, sched.nprocs + 1);
    for (unsigned i = 0; i < sched.nprocs; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&sched.w[i]->thread, &a, sched_worker_main, sched.w[i]);
        pthread_attr_destroy(&a);
        if (r != 0) {
            fprintf(stderr, "ringo: cannot start worker %u: %s\n", i, strerror(r));
            _exit(2); /* the barrier cannot be unwound: a runtime with missing workers would hang */
        }
    }
    pthread_barrier_wait(&sched_start_barrier);
}

static void print_topology(const struct topo *topo, const struct topo_policy *pol, bool have_pol,
                           const int *worker_cpus)
{
    topo_print(topo, stderr);
    if (have_pol)
        topo_policy_print(pol, stderr);
    for (unsigned i = 0; i < sched.nprocs; i++)
        fprintf(stderr, "ringo: worker %u -> cpu %d -> node %d%s\n", i, worker_cpus[i],
                have_pol ? topo->node_id[pol->worker_node[i]] : 0, sched.pin ? "" : " (not pinned)");
}

/* The start, in order: flags, CPUs, sizes, stacks, debug, NUMA policy, workers, threads. */
static int start_locked(void)
{
    read_flags();
    struct topo topo;
    bool have_topo = topo_load(&topo, NULL) == 0;
    int cpus[CPU_SETSIZE];
    unsigned ncpus;
    if (pick_cpus(&topo, have_topo, cpus, &ncpus) != 0) {
        if (have_topo)
            topo_free(&topo);
        return -EINVAL;
    }
    read_sizes(ncpus);
    if (sched.debug & DBG_TOPOLOGY)
        fprintf(stderr, "ringo: procs %s\n", procs_source);
    int worker_cpus[4096];
    for (unsigned i = 0; i < sched.nprocs; i++)
        worker_cpus[i] = cpus[i % ncpus];

    sched_stacks_init();
    detect_valgrind();
    sched_debug_hooks.init();

    struct topo_policy pol;
    bool have_pol = have_topo && topo_policy_build(&pol, &topo, worker_cpus, sched.nprocs, 0x5eed) == 0;
    if (have_topo && (sched.debug & DBG_TOPOLOGY))
        print_topology(&topo, &pol, have_pol, worker_cpus);
    if (make_nodes(&pol, have_pol) != 0)
        return -ENOMEM;
    /* bind stack chunks to their node when the machine has NUMA that libnuma can drive */
    stk_set_numa(have_pol && topo.source && strcmp(topo.source, "libnuma") == 0);
    if (make_workers(worker_cpus, &pol, have_pol) != 0)
        return -ENOMEM;
    if (have_pol)
        sched.pol = pol; /* kept for the life of the process: wake order, node order, cpu homes */
    if (have_topo)
        topo_free(&topo);

    sched_segv_install();
    start_threads();
    atexit(sched_poller.at_exit); /* P5; before the stats hook below, so it runs after it */
    sched_sysmon_start();
    sched_main_watch(); /* started on main: main's pthread_exit is seen (park.c) */
    if (sched.debug & DBG_STATS)
        atexit(sched_debug_hooks.at_exit);
    return 0;
}

int sched_start(void)
{
    if (sched_started())
        return 0;
    pthread_mutex_lock(&start_lock);
    if (started_state == 0) {
        int r = start_locked();
        started_state = r == 0 ? 1 : r;
        if (r == 0)
            atomic_store_explicit(&started_flag, 1, memory_order_release); /* publishes sched.* */
    }
    int r = started_state == 1 ? 0 : started_state;
    pthread_mutex_unlock(&start_lock);
    return r;
}

unsigned ringo_procs(void)
{
    if (sched_start() != 0)
        return 0;
    return sched.nprocs;
}
