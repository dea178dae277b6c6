/* kernel_iface/topology.h - CPUs, NUMA nodes and distances; the NUMA scheduling policy.
 *
 * Internal (hidden) API; goroutine-agnostic. Two halves:
 *
 *   struct topo         what the machine looks like: online CPUs, their node / package / core /
 *                       SMT siblings, and the node distance matrix. Loaded from the live machine
 *                       (libnuma for nodes and distances, /sys for siblings) or from a directory
 *                       shaped like /sys/devices/system (test fixtures).
 *   struct topo_policy  what the scheduler does with it, derived in one place from a topology
 *                       and the worker -> CPU map: per-worker steal order, which idle worker to
 *                       wake, which node's global queue a plain thread's readied goroutines go to.
 *
 * Terms. A "node position" is an index into topo.node_id[] (node ids may be sparse: 0,2,3);
 * every node_* array and the distance matrix are indexed by position, never by id. A "CPU index"
 * is an index into topo.cpu_id[]; cpu_pos[] maps a CPU id back to it.
 *
 * Include with _GNU_SOURCE defined (the build passes -D_GNU_SOURCE): cpu_set_t needs it.
 * Errors are negative errno values; errno is never relied upon. Nothing here is thread-safe
 * against concurrent topo_free / topo_policy_free, but every const function may be called from
 * any number of threads at once.
 */
#ifndef RINGO_KERNEL_IFACE_TOPOLOGY_H
#define RINGO_KERNEL_IFACE_TOPOLOGY_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define TOPO_HIDDEN __attribute__((visibility("hidden")))
#else
#define TOPO_HIDDEN
#endif

/* CPU and node ids must be below this (Linux: NR_CPUS <= 8192, MAX_NUMNODES <= 1024). */
#define TOPO_ID_LIMIT 65536

/* ACPI SLIT convention (the kernel's LOCAL_DISTANCE / REMOTE_DISTANCE). */
#define TOPO_LOCAL_DISTANCE 10
#define TOPO_REMOTE_DISTANCE 20

struct topo {
	unsigned ncpus;       /* online CPUs; the cpu_* arrays have this length, ascending id */
	int *cpu_id;          /* [i] Linux CPU id */
	int *cpu_node;        /* [i] node POSITION of the CPU (index into node_id) */
	int *cpu_pkg;         /* [i] topology/physical_package_id; -1 if unknown */
	int *cpu_core;        /* [i] topology/core_id (unique within a package only); -1 if unknown */
	int *cpu_smt;         /* [i] lowest online CPU id of thread_siblings_list: equal values
	                       *     share one physical core; the CPU's own id if unknown */
	unsigned *cpu_thread; /* [i] rank among its online SMT siblings, 0 = first hardware thread */

	unsigned nnodes;      /* nodes with at least one online CPU (memory-only nodes are left out) */
	int *node_id;         /* [n] node id, ascending */
	unsigned *node_ncpus; /* [n] online CPUs on the node */
	int *dist;            /* [a*nnodes+b] distance FROM node a TO node b (SLIT: 10 = local) */

	int cpu_limit;        /* 1 + largest online CPU id: length of cpu_pos */
	int *cpu_pos;         /* [cpu id] CPU index, or -1 for an offline / unknown CPU */
	const char *source;   /* "libnuma", "flat" (libnuma: NUMA unavailable) or "sysfs"; static */
};

/* Load the topology. sysfs_root NULL: the live machine; CPUs and siblings from /sys (falling
 * back to sysconf and "one core per CPU" where /sys is missing), nodes and distances from
 * libnuma, or one node (id 0, distance 10) when numa_available() < 0. Otherwise sysfs_root is a
 * directory shaped like /sys/devices/system (cpu/online, cpu/cpuN/topology/{core_id,
 * physical_package_id,thread_siblings_list}, node/online, node/nodeN/{cpulist,distance}); with
 * no node/ directory everything is one node, as on a kernel without CONFIG_NUMA.
 * On success *t owns heap arrays (release with topo_free) and 0 is returned; on failure *t is
 * zeroed and one of these is returned: -ENOENT (cpu/online, or the cpulist / distance of a
 * listed node, missing); -EINVAL (malformed or inconsistent files: a CPU on no node or on two, a
 * distance row of the wrong length, a distance outside 10..255); -ERANGE (an id >=
 * TOPO_ID_LIMIT); -ENODEV (no online CPU); -ENOMEM. */
TOPO_HIDDEN int topo_load(struct topo *t, const char *sysfs_root);

/* The live machine with flags: TOPO_FORCE_FLAT takes the "libnuma says NUMA is unavailable"
 * path (one node, id 0, distance 10) even where libnuma works — for RINGO_DISABLE-style
 * forcing of the fallback, and its test. topo_load(t, NULL) is topo_load_live(t, 0). */
#define TOPO_FORCE_FLAT 1u
TOPO_HIDDEN int topo_load_live(struct topo *t, unsigned flags);

/* Release what topo_load allocated; *t is zeroed. NULL and zeroed structs are fine. */
TOPO_HIDDEN void topo_free(struct topo *t);

/* Node position of CPU id `cpu`, or -1 if the CPU is not online in t (or cpu < 0). O(1). */
TOPO_HIDDEN int topo_node_of_cpu(const struct topo *t, int cpu);

/* Parse a Linux cpulist / nodelist: comma-separated ids and inclusive ranges "0-3,8,10-11";
 * blanks around tokens and a trailing newline are allowed; "" is the empty set; overlaps are
 * merged. Writes the ids, ascending and without duplicates, to out[0..*n-1] (out may be NULL when
 * cap is 0, to count). Returns 0; -EINVAL bad syntax or a reversed range; -ERANGE an id >=
 * TOPO_ID_LIMIT; -ENOSPC more than cap ids (*n still says how many). On error err (if errlen>0)
 * gets a one-line message naming the offending text. */
TOPO_HIDDEN int topo_parse_list(const char *s, int *out, unsigned cap, unsigned *n,
                                char *err, size_t errlen);

/* Format ids as a cpulist ("0-3,8"): runs of consecutive ids in the given order collapse into
 * ranges (ascending input gives the canonical form). snprintf contract: always terminated when
 * len > 0; returns the length the full text needs. */
TOPO_HIDDEN size_t topo_format_list(const int *ids, unsigned n, char *buf, size_t len);

/* The CPUs the runtime should run workers on (RINGO_CPUS / RINGO_NODES). The result is
 * online CPUs ∩ allowed ∩ cpus_spec ∩ CPUs of the nodes in nodes_spec; a NULL spec or NULL
 * allowed (with any allowed_size) means "no restriction". allowed is read with CPU_ISSET_S, so a
 * CPU_ALLOC'd set for > CPU_SETSIZE CPUs works. Order: node-contiguous by node position; within
 * a node first hardware threads first (one per physical core), then second threads, each by
 * ascending CPU id — so taking the first k spreads over cores before doubling up on SMT, and
 * fills node 0 before node 1. On Linux's usual numbering this is plain ascending order per node.
 * out_cpus needs room for t->ncpus entries. Returns 0 with *out_n >= 1, or -EINVAL with a
 * message in err: a spec that is empty, malformed, names an offline CPU / unknown node / CPU
 * outside the affinity mask, or a combination that leaves no CPU. */
TOPO_HIDDEN int topo_select_cpus(const struct topo *t, const cpu_set_t *allowed, size_t allowed_size,
                                 const char *cpus_spec, const char *nodes_spec,
                                 int *out_cpus, unsigned *out_n, char *err, size_t errlen);

/* Human-readable dump for RINGO_DEBUG=topology: a summary line, one line per node (CPUs,
 * cores, distance row), one line per CPU (node, package, core, SMT siblings). */
TOPO_HIDDEN void topo_print(const struct topo *t, FILE *f);

/* ------------------------------------------------------------------ policy */

struct topo_policy {
	unsigned nworkers;      /* workers, indexed 0..nworkers-1 */
	int *worker_cpu;        /* [w] CPU id the worker runs on (pinned or nominal) */
	int *worker_node;       /* [w] node position of worker_cpu[w] */

	/* Steal order: victims of worker w are steal_order[w*(nworkers-1) + k], k < nworkers-1,
	 * every other worker exactly once. Workers on w's physical core (SMT siblings, or the same
	 * CPU when workers outnumber CPUs) come first, then the rest of w's node, then the other
	 * nodes by increasing dist[node(w)][node(v)]. Each run of equal rank is shuffled by a PRNG
	 * seeded from (seed, w), so thieves do not all try the same victim first. */
	unsigned *steal_order;
	unsigned *steal_ncore;  /* [w] the first steal_ncore[w] victims share w's physical core */
	unsigned *steal_nlocal; /* [w] the first steal_nlocal[w] victims are on w's node */

	unsigned nnodes;        /* copied from the topology: length of the node_* arrays */
	int *node_id;           /* [n] node id (copy), for printing */
	int *dist;              /* [a*nnodes+b] copy of the topology's matrix */
	unsigned *node_nworkers;/* [n] workers on node position n */
	unsigned nnodes_used;   /* nodes with at least one worker */
	unsigned *nodes_used;   /* [i] their positions, ascending */
	int *node_home;         /* [n] n if it has workers, else the nearest node that has (ties:
	                         *     lowest position): where work born on n should be queued */
	unsigned *node_order;   /* [n*nnodes_used + k] nodes with workers by increasing distance from
	                         *     n (n itself first when used; ties: lowest position): the order
	                         *     in which a worker on n looks at per-node global queues */
	unsigned *wake_order;   /* [n*nworkers + k] all workers, those on n first, then by increasing
	                         *     dist[n][node(w)] (ties: lower node position, lower w) */
	int cpu_limit;          /* length of cpu_home */
	int *cpu_home;          /* [cpu id] node_home[node of cpu], or -1 for CPUs not in the topology */
};

/* Build the policy for nworkers >= 1 workers; worker w runs on CPU worker_cpus[w], which must be
 * online in t (several workers may share a CPU). Deterministic in (t, worker_cpus, seed). t may be
 * freed afterwards. Returns 0, -EINVAL (nworkers 0, or a CPU not in t) or -ENOMEM (then *p is
 * zeroed). Memory is 4 * nworkers^2 bytes for the steal order (1024 workers: 4 MiB). */
TOPO_HIDDEN int topo_policy_build(struct topo_policy *p, const struct topo *t,
                                  const int *worker_cpus, unsigned nworkers, uint64_t seed);

/* Release what topo_policy_build allocated; *p is zeroed. NULL and zeroed structs are fine. */
TOPO_HIDDEN void topo_policy_free(struct topo_policy *p);

/* Which parked worker to wake for work that appeared on node position from_node: the first
 * worker of wake_order[from_node] whose idle[w] is non-zero — same node first, then the nearest
 * node by distance. idle has nworkers flags (a snapshot; the caller owns the race). from_node < 0
 * or >= nnodes means "no preference" (lowest idle w). Returns a worker index, or -1 if none is
 * idle. O(nworkers). */
TOPO_HIDDEN int topo_policy_wake_choice(const struct topo_policy *p, int from_node,
                                        const unsigned char *idle);

/* Node position whose global queue receives goroutines readied by a plain thread running on
 * CPU id cpu (sched_getcpu()): the CPU's node if it has workers, else the nearest that has.
 * For an unknown CPU (-1, offline, hot-added) it is worker 0's node. Always a node with workers.
 * O(1). */
TOPO_HIDDEN int topo_policy_node_of_cpu(const struct topo_policy *p, int cpu);

/* Dump for RINGO_DEBUG=topology: one line per node used, one line per worker with its steal
 * order grouped by rank ("core: 16 | node: 3 1 2 | d21: 20 17 ..."). Workers are printed by
 * index, nodes by id. */
TOPO_HIDDEN void topo_policy_print(const struct topo_policy *p, FILE *f);

#endif /* RINGO_KERNEL_IFACE_TOPOLOGY_H */
