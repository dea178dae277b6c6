/* tests/test_topology.c - kernel_iface/topology: loading, CPU selection and the NUMA policy.
 *
 * Responsibility: check, for every fixture in tests/fixtures/topology, that the loaded topology
 *   matches what the machine it models looks like, and that the policy built on it steals on
 *   the thief's node first and then by distance, wakes the nearest idle worker, and queues a
 *   plain thread's work on the nearest node with workers; check cpulist parsing, RINGO_CPUS /
 *   RINGO_NODES selection (good specs and every class of bad one), the live machine, malformed
 *   fixtures, and — by a deterministic simulation on the 64-CPU EPYC fixture — that the steal
 *   order keeps >= 90 % of steals on the thief's node under balanced load.
 * Invariants: the expected values below are written out independently of the fixture generator
 *   (formulas per machine, literal distance matrices), so a wrong fixture or a wrong loader
 *   fails. Every random choice comes from a seeded PRNG: runs are reproducible.
 * Depends on: kernel_iface/topology, cmocka, libnuma (through topology). Fixtures are found
 *   through $top_srcdir (exported by the test harness), else the TOPO_FIXTURES define.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* CPU_ALLOC, sched_getcpu, open_memstream; the build passes it already */
#endif
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel_iface/topology.h"

#ifndef TOPO_FIXTURES
#define TOPO_FIXTURES ""
#endif

static char fixtures[4096]; /* directory holding the fixtures, set by the group setup */

/* ================================================================== expected machines */

struct expect {
	const char *name;
	unsigned ncpus, nnodes;
	int cpu_probe;           /* probe CPU ids 0..cpu_probe-1 (beyond the last one too) */
	const int *node_ids;     /* [position] */
	const int *dist;         /* [a*nnodes+b] by position, row = from */
	int (*node_of)(int cpu); /* node id; -1 for an offline / absent CPU */
	int (*pkg_of)(int cpu);
	int (*core_of)(int cpu);
	int (*smt_of)(int cpu);  /* lowest online SMT sibling */
	unsigned (*thread_of)(int cpu);
};

/* this_machine: 1 package, 2 cores, 1 node. */
static int tm_node(int c) { return c >= 0 && c < 2 ? 0 : -1; }
static int tm_pkg(int c) { (void)c; return 0; }
static int tm_core(int c) { return c; }
static int tm_smt(int c) { return c; }
static unsigned tm_thread(int c) { (void)c; return 0; }
static const int tm_ids[] = { 0 };
static const int tm_dist[] = { 10 };

/* two_socket_2x8_smt: cpu = thread*16 + socket*8 + core; sparse core ids. */
static const int ts_core_ids[8] = { 0, 1, 2, 3, 8, 9, 10, 11 };
static int ts_node(int c) { return c >= 0 && c < 32 ? (c / 8) % 2 : -1; }
static int ts_pkg(int c) { return (c / 8) % 2; }
static int ts_core(int c) { return ts_core_ids[c % 8]; }
static int ts_smt(int c) { return c % 16; }
static unsigned ts_thread(int c) { return (unsigned)(c / 16); }
static const int ts_ids[] = { 0, 1 };
static const int ts_dist[] = { 10, 21,
                               21, 10 };

/* epyc_nps4_64: 1 socket, cpu = thread*32 + core, node = core / 8; Rome/Milan NPS4 SLIT. */
static int ep_node(int c) { return c >= 0 && c < 64 ? (c % 32) / 8 : -1; }
static int ep_pkg(int c) { (void)c; return 0; }
static int ep_core(int c) { return c % 32; }
static int ep_smt(int c) { return c % 32; }
static unsigned ep_thread(int c) { return (unsigned)(c / 32); }
static const int ep_ids[] = { 0, 1, 2, 3 };
static const int ep_dist[] = { 10, 11, 12, 12,
                               11, 10, 12, 12,
                               12, 12, 10, 11,
                               12, 12, 11, 10 };

/* eight_node_asym: 8 sockets x 4 cores, no SMT, node = socket = cpu / 4. Board pairs 16, one
 * hop 21, two hops 31 or 32 by direction: an asymmetric SLIT. */
static int en_node(int c) { return c >= 0 && c < 32 ? c / 4 : -1; }
static int en_pkg(int c) { return c / 4; }
static int en_core(int c) { return c % 4; }
static int en_smt(int c) { return c; }
static unsigned en_thread(int c) { (void)c; return 0; }
static const int en_ids[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
static const int en_dist[] = {
	10, 16, 21, 31, 32, 32, 21, 32,
	16, 10, 31, 31, 31, 21, 32, 21,
	21, 32, 10, 16, 21, 31, 32, 32,
	32, 32, 16, 10, 31, 21, 31, 21,
	32, 32, 21, 32, 10, 16, 21, 31,
	31, 21, 32, 21, 16, 10, 31, 31,
	21, 31, 32, 32, 21, 32, 10, 16,
	31, 21, 31, 21, 32, 32, 16, 10,
};

/* sparse_offline_cxl: CPUs 0-5,7 online (6 offline), siblings adjacent (0,1)(2,3)(4,5)(7);
 * node 0 = CPUs 0-3, node 1 memory-only (left out), node 2 = CPUs 4,5,7. */
static int sp_node(int c) { return c >= 0 && c < 4 ? 0 : (c == 4 || c == 5 || c == 7) ? 2 : -1; }
static int sp_pkg(int c) { return c / 4; }
static int sp_core(int c) { return (c / 2) % 2; }
static int sp_smt(int c) { return c == 7 ? 7 : c & ~1; }
static unsigned sp_thread(int c) { return c == 7 ? 0 : (unsigned)(c & 1); }
static const int sp_ids[] = { 0, 2 };
static const int sp_dist[] = { 10, 21,
                               21, 10 };

static const struct expect machines[] = {
	{ "this_machine", 2, 1, 4, tm_ids, tm_dist, tm_node, tm_pkg, tm_core, tm_smt, tm_thread },
	{ "two_socket_2x8_smt", 32, 2, 34, ts_ids, ts_dist, ts_node, ts_pkg, ts_core, ts_smt, ts_thread },
	{ "epyc_nps4_64", 64, 4, 66, ep_ids, ep_dist, ep_node, ep_pkg, ep_core, ep_smt, ep_thread },
	{ "eight_node_asym", 32, 8, 34, en_ids, en_dist, en_node, en_pkg, en_core, en_smt, en_thread },
	{ "sparse_offline_cxl", 7, 2, 10, sp_ids, sp_dist, sp_node, sp_pkg, sp_core, sp_smt, sp_thread },
};
#define NMACHINES (sizeof(machines) / sizeof(machines[0]))

/* ================================================================== helpers */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

static void load_fixture(struct topo *t, const char *name)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", fixtures, name);
	rc = topo_load(t, path);
	if (rc != 0)
		fail_msg("topo_load(%s) = %d", path, rc);
}

/* Position of node id in the expectation, or -1. */
static int exp_pos(const struct expect *e, int node_id)
{
	for (unsigned n = 0; n < e->nnodes; n++)
		if (e->node_ids[n] == node_id)
			return (int)n;
	return -1;
}

static int exp_dist(const struct expect *e, int from_pos, int to_pos)
{
	return e->dist[(unsigned)from_pos * e->nnodes + (unsigned)to_pos];
}

#define assert_has(text, needle)                                                             \
	do {                                                                                 \
		if (strstr((text), (needle)) == NULL)                                        \
			fail_msg("expected \"%s\" in \"%s\"", (needle), (text));             \
	} while (0)

/* Worker CPUs for a machine: all selected CPUs (in topo_select_cpus order). */
static unsigned all_cpus(const struct topo *t, int *cpus)
{
	char err[256];
	unsigned n = 0;

	assert_int_equal(topo_select_cpus(t, NULL, 0, NULL, NULL, cpus, &n, err, sizeof(err)), 0);
	assert_int_equal(n, t->ncpus);
	return n;
}

/* The worker sets every policy property is checked on: all CPUs; every third CPU (uneven
 * node sizes); two workers per CPU (workers sharing a CPU count as one core). */
enum { SET_ALL, SET_THIRD, SET_DOUBLE, NSETS };

static unsigned worker_set(const struct topo *t, int which, int *cpus)
{
	int all[256];
	unsigned n = all_cpus(t, all), k = 0;

	for (unsigned i = 0; i < n; i++) {
		if (which == SET_ALL)
			cpus[k++] = all[i];
		else if (which == SET_THIRD && i % 3 == 0)
			cpus[k++] = all[i];
		else if (which == SET_DOUBLE) {
			cpus[k++] = all[i];
			cpus[k++] = all[i];
		}
	}
	return k;
}

/* ================================================================== loading */

static void test_topology_fixture_load(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMACHINES; m++) {
		const struct expect *e = &machines[m];
		struct topo t;
		unsigned ncpus_on[8] = { 0 };

		load_fixture(&t, e->name);
		assert_string_equal(t.source, "sysfs");
		assert_int_equal(t.ncpus, e->ncpus);
		assert_int_equal(t.nnodes, e->nnodes);
		for (unsigned n = 0; n < t.nnodes; n++) {
			assert_int_equal(t.node_id[n], e->node_ids[n]);
			for (unsigned n2 = 0; n2 < t.nnodes; n2++)
				assert_int_equal(t.dist[n * t.nnodes + n2], e->dist[n * e->nnodes + n2]);
		}
		for (unsigned i = 0; i < t.ncpus; i++) {
			int c = t.cpu_id[i];

			if (i > 0)
				assert_true(t.cpu_id[i - 1] < c);
			assert_int_equal(t.cpu_pos[c], (int)i);
			assert_int_equal(t.node_id[t.cpu_node[i]], e->node_of(c));
			assert_int_equal(t.cpu_pkg[i], e->pkg_of(c));
			assert_int_equal(t.cpu_core[i], e->core_of(c));
			assert_int_equal(t.cpu_smt[i], e->smt_of(c));
			assert_int_equal(t.cpu_thread[i], e->thread_of(c));
			ncpus_on[t.cpu_node[i]]++;
		}
		for (unsigned n = 0; n < t.nnodes; n++)
			assert_int_equal(t.node_ncpus[n], ncpus_on[n]);
		/* cpu -> node for every id, including offline, absent and negative ones */
		assert_int_equal(topo_node_of_cpu(&t, -1), -1);
		for (int c = 0; c < e->cpu_probe; c++) {
			int id = e->node_of(c), got = topo_node_of_cpu(&t, c);

			if (id < 0)
				assert_int_equal(got, -1);
			else
				assert_int_equal(got, exp_pos(e, id));
		}
		topo_free(&t);
		assert_null(t.cpu_id);
		assert_int_equal(t.ncpus, 0);
	}
}

/* The asymmetric fixture must really be asymmetric and non-uniform, or the row-vs-column
 * checks below prove nothing. */
static void test_topology_eight_node_is_asymmetric(void **state)
{
	unsigned asym = 0, distinct = 0;
	int seen[256] = { 0 };

	(void)state;
	for (unsigned a = 0; a < 8; a++) {
		for (unsigned b = 0; b < 8; b++) {
			asym += en_dist[a * 8 + b] != en_dist[b * 8 + a];
			if (!seen[en_dist[a * 8 + b]]++)
				distinct++;
		}
	}
	assert_true(asym >= 8);
	assert_int_equal(distinct, 5); /* 10, 16, 21, 31, 32 */
}

/* ================================================================== policy: steal order */

static void check_steal_order(const struct expect *e, const struct topo_policy *p)
{
	unsigned nw = p->nworkers, per = nw - 1;
	unsigned char *seen = calloc(nw, 1);

	for (unsigned w = 0; w < nw; w++) {
		const unsigned *o = &p->steal_order[(size_t)w * per];
		int home = exp_pos(e, e->node_of(p->worker_cpu[w]));
		unsigned same_node = 0, same_core = 0;
		int prev = 0;

		assert_int_equal(p->worker_node[w], home);
		for (unsigned v = 0; v < nw; v++) {
			if (v == w)
				continue;
			same_node += exp_pos(e, e->node_of(p->worker_cpu[v])) == home;
			same_core += e->smt_of(p->worker_cpu[v]) == e->smt_of(p->worker_cpu[w]);
		}
		assert_int_equal(p->steal_nlocal[w], same_node);
		assert_int_equal(p->steal_ncore[w], same_core);
		memset(seen, 0, nw);
		for (unsigned k = 0; k < per; k++) {
			unsigned v = o[k];
			int vn = exp_pos(e, e->node_of(p->worker_cpu[v]));
			int d = exp_dist(e, home, vn);

			assert_true(v < nw);
			assert_int_not_equal(v, w);
			assert_int_equal(seen[v], 0); /* every other worker exactly once */
			seen[v] = 1;
			if (k < same_core)
				assert_int_equal(e->smt_of(p->worker_cpu[v]), e->smt_of(p->worker_cpu[w]));
			if (k < same_node)
				assert_int_equal(vn, home); /* same node first */
			else
				assert_int_not_equal(vn, home);
			assert_true(d >= prev); /* then by non-decreasing distance FROM the thief */
			prev = d;
		}
	}
	free(seen);
}

static void test_topology_steal_order_every_fixture(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMACHINES; m++) {
		struct topo t;
		int cpus[256];

		load_fixture(&t, machines[m].name);
		for (int set = 0; set < NSETS; set++) {
			struct topo_policy p, q;
			unsigned n = worker_set(&t, set, cpus);
			bool differs = false;

			assert_int_equal(topo_policy_build(&p, &t, cpus, n, 42), 0);
			check_steal_order(&machines[m], &p);
			/* deterministic in the seed ... */
			assert_int_equal(topo_policy_build(&q, &t, cpus, n, 42), 0);
			assert_memory_equal(p.steal_order, q.steal_order, (size_t)n * (n - 1) * sizeof(unsigned));
			topo_policy_free(&q);
			/* ... and the seed matters wherever there is a tie of two or more */
			assert_int_equal(topo_policy_build(&q, &t, cpus, n, 43), 0);
			check_steal_order(&machines[m], &q);
			differs = memcmp(p.steal_order, q.steal_order, (size_t)n * (n - 1) * sizeof(unsigned)) != 0;
			if (n >= 4)
				assert_true(differs);
			topo_policy_free(&q);
			topo_policy_free(&p);
			assert_null(p.steal_order);
		}
		topo_free(&t);
	}
}

/* Thieves of one node must not all try the same victim first: on every node with >= 8
 * workers, no worker is the first same-node (non-sibling) choice, or the first remote choice,
 * of more than half of that node's workers. An unshuffled order fails this at once. */
static void test_topology_steal_order_spreads_first_victims(void **state)
{
	unsigned checked = 0;

	(void)state;
	for (size_t m = 0; m < NMACHINES; m++) {
		struct topo t;
		struct topo_policy p;
		int cpus[256];
		unsigned n;

		load_fixture(&t, machines[m].name);
		n = all_cpus(&t, cpus);
		assert_int_equal(topo_policy_build(&p, &t, cpus, n, 7), 0);
		for (unsigned node = 0; node < p.nnodes; node++) {
			unsigned local_hits[256] = { 0 }, remote_hits[256] = { 0 }, max_l = 0, max_r = 0;

			if (p.node_nworkers[node] < 8)
				continue;
			for (unsigned w = 0; w < n; w++) {
				const unsigned *o = &p.steal_order[(size_t)w * (n - 1)];

				if (p.worker_node[w] != (int)node)
					continue;
				if (p.steal_nlocal[w] > p.steal_ncore[w])
					local_hits[o[p.steal_ncore[w]]]++;
				if (p.steal_nlocal[w] < n - 1)
					remote_hits[o[p.steal_nlocal[w]]]++;
			}
			for (unsigned v = 0; v < n; v++) {
				max_l = local_hits[v] > max_l ? local_hits[v] : max_l;
				max_r = remote_hits[v] > max_r ? remote_hits[v] : max_r;
			}
			assert_true(max_l <= p.node_nworkers[node] / 2);
			assert_true(max_r <= p.node_nworkers[node] / 2);
			checked++;
		}
		topo_policy_free(&p);
		topo_free(&t);
	}
	assert_int_equal(checked, 2 + 4); /* two_socket's and epyc's nodes */
}

/* SMT siblings first: on two_socket, worker on CPU c tries the worker on c's sibling first. */
static void test_topology_steal_order_sibling_first(void **state)
{
	struct topo t;
	struct topo_policy p;
	int cpus[32], worker_of[32];
	unsigned n;

	(void)state;
	load_fixture(&t, "two_socket_2x8_smt");
	n = all_cpus(&t, cpus);
	for (unsigned w = 0; w < n; w++)
		worker_of[cpus[w]] = (int)w;
	assert_int_equal(topo_policy_build(&p, &t, cpus, n, 1), 0);
	for (unsigned w = 0; w < n; w++) {
		int sib = (cpus[w] + 16) % 32;

		assert_int_equal(p.steal_ncore[w], 1);
		assert_int_equal(p.steal_nlocal[w], 15);
		assert_int_equal(p.steal_order[(size_t)w * (n - 1)], worker_of[sib]);
	}
	topo_policy_free(&p);
	topo_free(&t);
}

/* The asymmetric SLIT: a thief on node 0 must visit remote nodes by ROW 0 of the matrix:
 * 1 (16), {2,6} (21), 3 (31), {4,5,7} (32). By column it would put 3 (32) after 5 (31). */
static void test_topology_steal_order_uses_thief_row(void **state)
{
	static const int rank_of_node[8] = { -1, 0, 1, 3, 4, 4, 1, 4 };
	struct topo t;
	struct topo_policy p;
	int cpus[32];
	unsigned n;

	(void)state;
	load_fixture(&t, "eight_node_asym");
	assert_int_equal(t.dist[0 * 8 + 3], 31);
	assert_int_equal(t.dist[3 * 8 + 0], 32);
	n = all_cpus(&t, cpus);
	assert_int_equal(topo_policy_build(&p, &t, cpus, n, 99), 0);
	for (unsigned w = 0; w < 4; w++) { /* the four workers of node 0 */
		const unsigned *o = &p.steal_order[(size_t)w * (n - 1)];
		int prev_rank = -1;

		assert_int_equal(p.worker_node[w], 0);
		assert_int_equal(p.steal_nlocal[w], 3);
		for (unsigned k = 3; k < n - 1; k++) {
			int r = rank_of_node[p.worker_node[o[k]]];

			assert_true(r >= prev_rank);
			prev_rank = r;
		}
		/* exactly: 4 of node 1, then 8 of nodes 2 and 6, 4 of node 3, 12 of nodes 4,5,7 */
		assert_int_equal(p.worker_node[o[3]], 1);
		assert_int_equal(p.worker_node[o[6]], 1);
		assert_int_equal(rank_of_node[p.worker_node[o[7]]], 1);
		assert_int_equal(rank_of_node[p.worker_node[o[14]]], 1);
		assert_int_equal(p.worker_node[o[15]], 3);
		assert_int_equal(p.worker_node[o[18]], 3);
		assert_int_equal(rank_of_node[p.worker_node[o[19]]], 4);
	}
	topo_policy_free(&p);
	topo_free(&t);
}

/* ================================================================== policy: wake, node of cpu */

static void test_topology_wake_choice_every_fixture(void **state)
{
	uint64_t rng = 12345;

	(void)state;
	for (size_t m = 0; m < NMACHINES; m++) {
		const struct expect *e = &machines[m];
		struct topo t;
		int cpus[256];

		load_fixture(&t, e->name);
		for (int set = 0; set < NSETS; set++) {
			struct topo_policy p;
			unsigned n = worker_set(&t, set, cpus);
			unsigned char idle[256];

			assert_int_equal(topo_policy_build(&p, &t, cpus, n, 5), 0);
			/* nobody idle */
			memset(idle, 0, sizeof(idle));
			for (int from = -1; from <= (int)p.nnodes; from++)
				assert_int_equal(topo_policy_wake_choice(&p, from, idle), -1);
			/* everybody idle: a worker of the node itself, when it has any */
			memset(idle, 1, sizeof(idle));
			for (unsigned from = 0; from < p.nnodes; from++) {
				int w = topo_policy_wake_choice(&p, (int)from, idle);

				assert_true(w >= 0 && (unsigned)w < n);
				if (p.node_nworkers[from] > 0)
					assert_int_equal(p.worker_node[w], (int)from);
			}
			/* no preference: lowest idle */
			assert_int_equal(topo_policy_wake_choice(&p, -1, idle), 0);
			/* random idle sets against a brute-force reference */
			for (int trial = 0; trial < 300; trial++) {
				unsigned density = 1 + rng_below(&rng, 8); /* 1/8 .. 8/8 idle */
				int from = (int)rng_below(&rng, p.nnodes);
				long best = -1;
				int w;

				for (unsigned v = 0; v < n; v++)
					idle[v] = rng_below(&rng, 8) < density;
				for (unsigned v = 0; v < n; v++) {
					int vn = exp_pos(e, e->node_of(p.worker_cpu[v]));
					long key = (long)(vn != from) * 100000 + exp_dist(e, from, vn);

					if (idle[v] && (best < 0 || key < best))
						best = key;
				}
				w = topo_policy_wake_choice(&p, from, idle);
				if (best < 0) {
					assert_int_equal(w, -1);
				} else {
					int wn = exp_pos(e, e->node_of(p.worker_cpu[w]));

					assert_true(w >= 0 && idle[w]);
					assert_int_equal((long)(wn != from) * 100000 + exp_dist(e, from, wn), best);
				}
			}
			topo_policy_free(&p);
		}
		topo_free(&t);
	}
}

/* With workers on every CPU, a plain thread's work goes to its own node; node_order starts at
 * the node itself and goes by non-decreasing distance. */
static void test_topology_node_of_cpu_every_fixture(void **state)
{
	(void)state;
	for (size_t m = 0; m < NMACHINES; m++) {
		const struct expect *e = &machines[m];
		struct topo t;
		struct topo_policy p;
		int cpus[256];
		unsigned n;

		load_fixture(&t, e->name);
		n = all_cpus(&t, cpus);
		assert_int_equal(topo_policy_build(&p, &t, cpus, n, 3), 0);
		assert_int_equal(p.nnodes_used, e->nnodes);
		for (int c = 0; c < e->cpu_probe; c++) {
			int id = e->node_of(c);

			assert_int_equal(topo_policy_node_of_cpu(&p, c), id < 0 ? p.worker_node[0] : exp_pos(e, id));
		}
		assert_int_equal(topo_policy_node_of_cpu(&p, -1), p.worker_node[0]);
		assert_int_equal(topo_policy_node_of_cpu(&p, 1 << 20), p.worker_node[0]);
		for (unsigned a = 0; a < p.nnodes; a++) {
			const unsigned *o = &p.node_order[(size_t)a * p.nnodes_used];

			assert_int_equal(o[0], a);
			assert_int_equal(p.node_home[a], (int)a);
			for (unsigned k = 1; k < p.nnodes_used; k++)
				assert_true(exp_dist(e, (int)a, (int)o[k - 1]) <= exp_dist(e, (int)a, (int)o[k]));
		}
		topo_policy_free(&p);
		topo_free(&t);
	}
}

/* Workers on some nodes only: a plain thread on another node queues on the nearest node that
 * has workers (by the row of ITS node). */
static void test_topology_node_of_cpu_without_local_workers(void **state)
{
	static const struct {
		const char *machine, *nodes;
		int cpu, want_node_id;
	} cases[] = {
		{ "two_socket_2x8_smt", "1", 0, 1 },
		{ "two_socket_2x8_smt", "1", 20, 1 },
		{ "epyc_nps4_64", "0,3", 8, 0 },   /* node 1: d(1,0)=11 < d(1,3)=12 */
		{ "epyc_nps4_64", "0,3", 16, 3 },  /* node 2: d(2,3)=11 < d(2,0)=12 */
		{ "epyc_nps4_64", "0,3", 40, 0 },  /* CPU 40 is core 8: node 1 */
		{ "epyc_nps4_64", "0,3", 24, 3 },  /* on a node with workers: itself */
		{ "eight_node_asym", "3,5", 0, 3 },  /* d(0,3)=31 < d(0,5)=32 */
		{ "eight_node_asym", "3,5", 16, 5 }, /* d(4,5)=16 */
		{ "eight_node_asym", "3,5", 28, 3 }, /* node 7: d(7,3)=21 < d(7,5)=32 */
		{ "eight_node_asym", "3,5", 20, 5 }, /* node 5 itself */
		{ "eight_node_asym", "2,4", 4, 2 },  /* node 1: d(1,2)=31 = d(1,4): tie, lower position */
		{ "eight_node_asym", "2,4", 12, 2 }, /* node 3: d(3,2)=16 */
		{ "eight_node_asym", "2,4", 28, 2 }, /* node 7: d(7,2)=31 < d(7,4)=32 */
		{ "eight_node_asym", "2,4", 0, 2 },  /* node 0: d(0,2)=21 < d(0,4)=32 */
		{ "sparse_offline_cxl", "2", 1, 2 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct topo t;
		struct topo_policy p;
		int cpus[256], want;
		unsigned n;
		char err[256];

		load_fixture(&t, cases[i].machine);
		assert_int_equal(topo_select_cpus(&t, NULL, 0, NULL, cases[i].nodes, cpus, &n, err, sizeof(err)), 0);
		assert_int_equal(topo_policy_build(&p, &t, cpus, n, 0), 0);
		want = cases[i].want_node_id;
		assert_int_equal(p.node_id[topo_policy_node_of_cpu(&p, cases[i].cpu)], want);
		/* node_order of that node: used nodes only, nearest first */
		{
			int from = topo_node_of_cpu(&t, cases[i].cpu);
			const unsigned *o = &p.node_order[(size_t)from * p.nnodes_used];

			assert_int_equal(p.node_home[from], (int)o[0]);
			for (unsigned k = 0; k < p.nnodes_used; k++) {
				assert_true(p.node_nworkers[o[k]] > 0);
				if (k > 0)
					assert_true(t.dist[(unsigned)from * t.nnodes + o[k - 1]] <=
					            t.dist[(unsigned)from * t.nnodes + o[k]]);
			}
		}
		topo_policy_free(&p);
		topo_free(&t);
	}
}

static void test_topology_policy_bad_args(void **state)
{
	struct topo t;
	struct topo_policy p;
	int cpus[4] = { 0, 1, 6, 2 };

	(void)state;
	load_fixture(&t, "sparse_offline_cxl");
	assert_int_equal(topo_policy_build(&p, &t, cpus, 0, 0), -EINVAL);
	assert_int_equal(topo_policy_build(&p, &t, cpus, 4, 0), -EINVAL); /* CPU 6 is offline */
	assert_null(p.steal_order);
	cpus[2] = -1;
	assert_int_equal(topo_policy_build(&p, &t, cpus, 4, 0), -EINVAL);
	cpus[2] = 100;
	assert_int_equal(topo_policy_build(&p, &t, cpus, 4, 0), -EINVAL);
	/* one worker: an empty steal order, wake finds it */
	assert_int_equal(topo_policy_build(&p, &t, cpus, 1, 0), 0);
	{
		unsigned char idle[1] = { 1 };

		assert_int_equal(topo_policy_wake_choice(&p, 1, idle), 0);
		assert_int_equal(p.nnodes_used, 1);
		assert_int_equal(topo_policy_node_of_cpu(&p, 7), 0); /* node 2 has no worker */
	}
	topo_policy_free(&p);
	topo_policy_free(&p); /* idempotent on a zeroed policy */
	topo_free(&t);
}

/* ================================================================== cpulist parsing */

static void expect_list(const char *s, const int *want, unsigned nwant)
{
	int got[64];
	unsigned n = 99;
	char err[256] = "";
	int rc = topo_parse_list(s, got, 64, &n, err, sizeof(err));

	if (rc != 0)
		fail_msg("topo_parse_list(\"%s\") = %d: %s", s, rc, err);
	assert_int_equal(n, nwant);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(got[i], want[i]);
}

static void expect_list_error(const char *s, int want_rc, const char *needle)
{
	int got[64];
	unsigned n;
	char err[256] = "";

	assert_int_equal(topo_parse_list(s, got, 64, &n, err, sizeof(err)), want_rc);
	assert_has(err, needle);
}

static void test_topology_cpulist_parse(void **state)
{
	static const int a[] = { 0, 1, 2, 3, 8, 10, 11 };
	static const int b[] = { 0 };
	static const int c[] = { 1, 3, 4 };
	static const int d[] = { 1, 3, 5 };
	static const int e[] = { 0, 1, 2, 3, 4, 5 };
	static const int f[] = { 7, 65535 };
	int big[16];
	unsigned n;

	(void)state;
	expect_list("0-3,8,10-11", a, 7);
	expect_list("0-3,8,10-11\n", a, 7);
	expect_list("0", b, 1);
	expect_list("0-0", b, 1);
	expect_list(" 1 , 3 - 4 \n", c, 3);
	expect_list("5,1,3", d, 3);          /* any order, sorted out */
	expect_list("0-3,2-5,4", e, 6);      /* overlaps merged */
	expect_list("7,65535", f, 2);        /* the largest id */
	expect_list("", NULL, 0);
	expect_list("\n", NULL, 0);          /* a memory-only node's cpulist */

	expect_list_error("0-", -EINVAL, "missing number at the end");
	expect_list_error("1,", -EINVAL, "missing number at the end");
	expect_list_error("1,,2", -EINVAL, "empty item at offset 2");
	expect_list_error(",1", -EINVAL, "empty item at offset 0");
	expect_list_error("-1", -EINVAL, "expected a number at offset 0, found '-'");
	expect_list_error("3-1", -EINVAL, "range 3-1 is reversed");
	expect_list_error("0-3x", -EINVAL, "unexpected 'x' at offset 3");
	expect_list_error("0x3", -EINVAL, "unexpected 'x' at offset 1");
	expect_list_error("1 2", -EINVAL, "unexpected '2' at offset 2");
	expect_list_error("1;2", -EINVAL, "unexpected ';'");
	expect_list_error("all", -EINVAL, "found 'a'");
	expect_list_error("1\x01", -EINVAL, "byte 0x01");
	expect_list_error("65536", -ERANGE, "too large");
	expect_list_error("1-65536", -ERANGE, "id at offset 2 is too large");
	expect_list_error("99999999999999999999999", -ERANGE, "too large"); /* no overflow */

	/* room for 4, 10 given: -ENOSPC, and the count */
	assert_int_equal(topo_parse_list("0-9", big, 4, &n, NULL, 0), -ENOSPC);
	assert_int_equal(n, 10);
	assert_int_equal(topo_parse_list("0-9", NULL, 0, &n, NULL, 0), -ENOSPC);
	assert_int_equal(n, 10);
	assert_int_equal(topo_parse_list(NULL, big, 4, &n, NULL, 0), -EINVAL);
}

static void test_topology_cpulist_format(void **state)
{
	static const int a[] = { 0, 1, 2, 3, 8, 10, 11 };
	static const int b[] = { 5 };
	char buf[64], small[6];
	uint64_t rng = 77;

	(void)state;
	assert_int_equal(topo_format_list(a, 7, buf, sizeof(buf)), strlen("0-3,8,10-11"));
	assert_string_equal(buf, "0-3,8,10-11");
	assert_int_equal(topo_format_list(b, 1, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "5");
	assert_int_equal(topo_format_list(a, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	/* truncation keeps the snprintf contract */
	assert_int_equal(topo_format_list(a, 7, small, sizeof(small)), strlen("0-3,8,10-11"));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(strncmp(small, "0-3,8,10-11", sizeof(small) - 1), 0);
	/* round trip on random sets */
	for (int trial = 0; trial < 200; trial++) {
		int ids[200], back[200];
		unsigned k = 0, n;
		char text[2048], err[128];

		for (int id = 0; id < 200; id++)
			if (rng_below(&rng, 3) == 0)
				ids[k++] = id;
		topo_format_list(ids, k, text, sizeof(text));
		assert_int_equal(topo_parse_list(text, back, 200, &n, err, sizeof(err)), 0);
		assert_int_equal(n, k);
		assert_memory_equal(ids, back, k * sizeof(int));
	}
}

/* ================================================================== CPU selection */

static void expect_select(const char *machine, const cpu_set_t *mask, size_t masksize,
                          const char *cpus, const char *nodes, const char *want)
{
	struct topo t;
	int out[256];
	unsigned n = 0;
	char err[256] = "", got[1024];

	load_fixture(&t, machine);
	if (topo_select_cpus(&t, mask, masksize, cpus, nodes, out, &n, err, sizeof(err)) != 0)
		fail_msg("%s: select(%s, %s) failed: %s", machine, cpus ? cpus : "-", nodes ? nodes : "-", err);
	topo_format_list((const int *)out, n, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("%s: select(%s, %s) = %s, want %s", machine, cpus ? cpus : "-", nodes ? nodes : "-", got, want);
	topo_free(&t);
}

static void expect_select_error(const char *machine, const cpu_set_t *mask, size_t masksize,
                                const char *cpus, const char *nodes, const char *needle)
{
	struct topo t;
	int out[256];
	unsigned n = 77;
	char err[256] = "";

	load_fixture(&t, machine);
	assert_int_equal(topo_select_cpus(&t, mask, masksize, cpus, nodes, out, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(n, 0);
	assert_has(err, needle);
	topo_free(&t);
}

static cpu_set_t *mask_of(const char *list, size_t *size)
{
	cpu_set_t *s = CPU_ALLOC(2048);
	int ids[2048];
	unsigned n;

	*size = CPU_ALLOC_SIZE(2048);
	CPU_ZERO_S(*size, s);
	assert_int_equal(topo_parse_list(list, ids, 2048, &n, NULL, 0), 0);
	for (unsigned i = 0; i < n; i++)
		CPU_SET_S((size_t)ids[i], *size, s);
	return s;
}

static void test_topology_select_cpus_good(void **state)
{
	size_t sz;
	cpu_set_t *m;

	(void)state;
	/* node-contiguous; first hardware threads of a node before second ones */
	expect_select("this_machine", NULL, 0, NULL, NULL, "0-1");
	expect_select("two_socket_2x8_smt", NULL, 0, NULL, NULL, "0-7,16-23,8-15,24-31");
	expect_select("epyc_nps4_64", NULL, 0, NULL, NULL,
	              "0-7,32-39,8-15,40-47,16-23,48-55,24-31,56-63");
	expect_select("eight_node_asym", NULL, 0, NULL, NULL, "0-31");
	expect_select("sparse_offline_cxl", NULL, 0, NULL, NULL, "0,2,1,3-4,7,5"); /* 3,4: a run */
	/* RINGO_NODES */
	expect_select("two_socket_2x8_smt", NULL, 0, NULL, "1", "8-15,24-31");
	expect_select("epyc_nps4_64", NULL, 0, NULL, "3,1", "8-15,40-47,24-31,56-63");
	expect_select("epyc_nps4_64", NULL, 0, NULL, " 2 \n", "16-23,48-55");
	expect_select("sparse_offline_cxl", NULL, 0, NULL, "2", "4,7,5");
	expect_select("eight_node_asym", NULL, 0, NULL, "7,0-1", "0-7,28-31");
	/* RINGO_CPUS, alone and with RINGO_NODES */
	expect_select("two_socket_2x8_smt", NULL, 0, "16,0", NULL, "0,16");
	expect_select("two_socket_2x8_smt", NULL, 0, "0-3,24-27", NULL, "0-3,24-27");
	expect_select("two_socket_2x8_smt", NULL, 0, "0-3,24-27", "1", "24-27");
	expect_select("sparse_offline_cxl", NULL, 0, "5,7,0-1", NULL, "0-1,7,5");
	/* the affinity mask */
	m = mask_of("0-11", &sz);
	expect_select("two_socket_2x8_smt", m, sz, NULL, NULL, "0-11");
	expect_select("two_socket_2x8_smt", m, sz, NULL, "1", "8-11");
	expect_select("two_socket_2x8_smt", m, sz, "9,10", "0-1", "9-10");
	CPU_FREE(m);
	m = mask_of("5-7,1000-1999", &sz); /* a mask with more ids than the machine */
	expect_select("sparse_offline_cxl", m, sz, NULL, NULL, "7,5");
	CPU_FREE(m);
	{
		cpu_set_t small; /* a plain cpu_set_t works too */

		CPU_ZERO(&small);
		CPU_SET(40, &small);
		CPU_SET(2, &small);
		expect_select("epyc_nps4_64", &small, sizeof(small), NULL, NULL, "2,40");
	}
}

static void test_topology_select_cpus_bad(void **state)
{
	size_t sz;
	cpu_set_t *m;

	(void)state;
	expect_select_error("two_socket_2x8_smt", NULL, 0, "", NULL, "RINGO_CPUS is set but empty");
	expect_select_error("two_socket_2x8_smt", NULL, 0, " \n", NULL, "RINGO_CPUS is set but empty");
	expect_select_error("two_socket_2x8_smt", NULL, 0, "0-3x", NULL, "RINGO_CPUS=\"0-3x\": unexpected 'x'");
	expect_select_error("two_socket_2x8_smt", NULL, 0, "3-1", NULL, "range 3-1 is reversed");
	expect_select_error("two_socket_2x8_smt", NULL, 0, "70000", NULL, "too large");
	expect_select_error("two_socket_2x8_smt", NULL, 0, "0-40", NULL,
	                    "RINGO_CPUS=\"0-40\": CPU 32-40 not online (online: 0-31)");
	expect_select_error("sparse_offline_cxl", NULL, 0, "5-7", NULL, "CPU 6 not online (online: 0-5,7)");
	expect_select_error("two_socket_2x8_smt", NULL, 0, NULL, "", "RINGO_NODES is set but empty");
	expect_select_error("two_socket_2x8_smt", NULL, 0, NULL, "0,", "RINGO_NODES=\"0,\": missing number");
	expect_select_error("two_socket_2x8_smt", NULL, 0, NULL, "1-5", "node 2-5 does not exist or has no online CPU (nodes: 0-1)");
	expect_select_error("sparse_offline_cxl", NULL, 0, NULL, "1", "node 1 does not exist or has no online CPU (nodes: 0,2)");
	expect_select_error("two_socket_2x8_smt", NULL, 0, "0-3", "1",
	                    "RINGO_CPUS=\"0-3\" and RINGO_NODES=\"1\" have no CPU in common");
	m = mask_of("0-7", &sz);
	expect_select_error("two_socket_2x8_smt", m, sz, "4-11", NULL,
	                    "CPU 8-11 outside the process affinity mask (allowed: 0-7)");
	expect_select_error("two_socket_2x8_smt", m, sz, NULL, "1",
	                    "RINGO_NODES=\"1\": none of its CPUs (8-15,24-31) is in the process affinity mask (allowed: 0-7)");
	CPU_FREE(m);
	m = mask_of("100-200", &sz);
	expect_select_error("two_socket_2x8_smt", m, sz, NULL, NULL, "no online CPU (0-31) is in the process affinity mask");
	CPU_FREE(m);
}

/* ================================================================== the live machine */

static void test_topology_live_machine(void **state)
{
	struct topo live, fs;
	struct topo_policy p;
	cpu_set_t aff;
	int cpus[1024], here;
	unsigned n, in_aff = 0;
	char err[256], *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_int_equal(topo_load(&live, NULL), 0);
	assert_true(strcmp(live.source, "libnuma") == 0 || strcmp(live.source, "flat") == 0);
	assert_int_equal(live.ncpus, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	assert_true(live.nnodes >= 1);
	for (unsigned a = 0; a < live.nnodes; a++)
		assert_int_equal(live.dist[a * live.nnodes + a], 10);
	here = sched_getcpu();
	assert_true(topo_node_of_cpu(&live, here) >= 0);

	/* the affinity mask, through RINGO_CPUS-less selection */
	assert_int_equal(sched_getaffinity(0, sizeof(aff), &aff), 0);
	for (unsigned i = 0; i < live.ncpus; i++)
		in_aff += CPU_ISSET((size_t)live.cpu_id[i], &aff) != 0;
	assert_int_equal(topo_select_cpus(&live, &aff, sizeof(aff), NULL, NULL, cpus, &n, err, sizeof(err)), 0);
	assert_int_equal(n, in_aff);
	assert_int_equal(topo_policy_build(&p, &live, cpus, n, 0), 0);
	assert_int_equal(topo_policy_node_of_cpu(&p, here), p.node_home[topo_node_of_cpu(&live, here)]);

	f = open_memstream(&text, &len);
	topo_print(&live, f);
	topo_policy_print(&p, f);
	fclose(f);
	assert_has(text, "topology (");
	assert_has(text, "policy: ");
	if (getenv("TOPO_TEST_VERBOSE"))
		fputs(text, stderr);
	free(text);
	topo_policy_free(&p);

	/* The same machine read through sysfs must agree with libnuma. */
	if (strcmp(live.source, "libnuma") == 0 && access("/sys/devices/system/node/online", R_OK) == 0) {
		assert_int_equal(topo_load(&fs, "/sys/devices/system"), 0);
		assert_int_equal(fs.ncpus, live.ncpus);
		assert_int_equal(fs.nnodes, live.nnodes);
		assert_memory_equal(fs.cpu_id, live.cpu_id, live.ncpus * sizeof(int));
		assert_memory_equal(fs.cpu_node, live.cpu_node, live.ncpus * sizeof(int));
		assert_memory_equal(fs.cpu_smt, live.cpu_smt, live.ncpus * sizeof(int));
		assert_memory_equal(fs.node_id, live.node_id, live.nnodes * sizeof(int));
		assert_memory_equal(fs.dist, live.dist, (size_t)live.nnodes * live.nnodes * sizeof(int));
		topo_free(&fs);
	}
	topo_free(&live);
}

/* The libnuma-unavailable fallback, forced: one node 0 at distance 10 holding every CPU, with
 * the same CPUs and siblings as the normal live load. */
static void test_topology_live_machine_flat_fallback(void **state)
{
	struct topo live, flat;
	struct topo_policy p;
	int cpus[1024];
	unsigned n;
	char err[256];

	(void)state;
	assert_int_equal(topo_load(&live, NULL), 0);
	assert_int_equal(topo_load_live(&flat, TOPO_FORCE_FLAT), 0);
	assert_string_equal(flat.source, "flat");
	assert_int_equal(flat.nnodes, 1);
	assert_int_equal(flat.node_id[0], 0);
	assert_int_equal(flat.dist[0], 10);
	assert_int_equal(flat.node_ncpus[0], live.ncpus);
	assert_int_equal(flat.ncpus, live.ncpus);
	assert_memory_equal(flat.cpu_id, live.cpu_id, live.ncpus * sizeof(int));
	assert_memory_equal(flat.cpu_smt, live.cpu_smt, live.ncpus * sizeof(int));
	for (unsigned i = 0; i < flat.ncpus; i++)
		assert_int_equal(flat.cpu_node[i], 0);
	assert_int_equal(topo_select_cpus(&flat, NULL, 0, NULL, "0", cpus, &n, err, sizeof(err)), 0);
	assert_int_equal(n, flat.ncpus);
	assert_int_equal(topo_policy_build(&p, &flat, cpus, n, 0), 0);
	for (unsigned w = 0; w < n; w++)
		assert_int_equal(p.steal_nlocal[w], n - 1);
	topo_policy_free(&p);
	topo_free(&flat);
	topo_free(&live);
}

/* ================================================================== malformed fixtures */

static char tmproot[256];

static void put(const char *rel, const char *text)
{
	char path[512], dir[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmproot, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	for (slash = strchr(dir + strlen(tmproot) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf root/rel (rel "" = root itself). */
static void rm_tree(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s%s%s", tmproot, *rel ? "/" : "", rel);
	if (access(path, F_OK) == 0)
		assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* A valid 2-node, 4-CPU tree; each case then breaks one thing. */
static void make_good_tree(void)
{
	rm_tree("");
	assert_int_equal(mkdir(tmproot, 0755), 0);
	put("cpu/online", "0-3\n");
	for (int c = 0; c < 4; c++) {
		char rel[128], v[16];

		snprintf(v, sizeof(v), "%d\n", c / 2);
		snprintf(rel, sizeof(rel), "cpu/cpu%d/topology/physical_package_id", c);
		put(rel, v);
		snprintf(v, sizeof(v), "%d\n", c % 2);
		snprintf(rel, sizeof(rel), "cpu/cpu%d/topology/core_id", c);
		put(rel, v);
		snprintf(v, sizeof(v), "%d\n", c);
		snprintf(rel, sizeof(rel), "cpu/cpu%d/topology/thread_siblings_list", c);
		put(rel, v);
	}
	put("node/online", "0-1\n");
	put("node/node0/cpulist", "0-1\n");
	put("node/node1/cpulist", "2-3\n");
	put("node/node0/distance", "10 20\n");
	put("node/node1/distance", "20 10\n");
}

static void expect_load(int want)
{
	struct topo t;
	int rc = topo_load(&t, tmproot);

	if (rc != want)
		fail_msg("topo_load = %d, want %d", rc, want);
	if (rc < 0) {
		assert_null(t.cpu_id);
		assert_null(t.dist);
		assert_int_equal(t.ncpus, 0);
	} else {
		topo_free(&t);
	}
}

static int tmp_setup(void **state)
{
	const char *dir = getenv("TMPDIR");

	(void)state;
	snprintf(tmproot, sizeof(tmproot), "%s/ringo_topo_XXXXXX", dir && *dir ? dir : "/tmp");
	return mkdtemp(tmproot) ? 0 : -1;
}

static int tmp_teardown(void **state) /* runs even when the test failed */
{
	(void)state;
	rm_tree("");
	return 0;
}

static void test_topology_malformed_fixtures(void **state)
{
	struct topo t;

	(void)state;
	make_good_tree();
	expect_load(0);
	put("node/node1/distance", "20\n");
	expect_load(-EINVAL); /* a short row */
	put("node/node1/distance", "20 10 10\n");
	expect_load(-EINVAL); /* a long row */
	put("node/node1/distance", "20 9\n");
	expect_load(-EINVAL); /* below LOCAL_DISTANCE */
	put("node/node1/distance", "20 ten\n");
	expect_load(-EINVAL);

	make_good_tree();
	put("node/node1/cpulist", "1-3\n");
	expect_load(-EINVAL); /* CPU 1 on two nodes */
	put("node/node1/cpulist", "3\n");
	expect_load(-EINVAL); /* CPU 2 on no node */
	put("node/node1/cpulist", "2-3,4-9\n");
	expect_load(0);       /* offline CPUs in a node mask are ignored */

	make_good_tree();
	put("cpu/cpu2/topology/core_id", "x\n");
	expect_load(-EINVAL);
	make_good_tree();
	put("cpu/cpu2/topology/thread_siblings_list", "2-\n");
	expect_load(-EINVAL);
	make_good_tree();
	put("cpu/online", "\n");
	expect_load(-ENODEV);
	put("cpu/online", "0-3,70000\n");
	expect_load(-ERANGE);
	put("cpu/online", "0-3:2\n");
	expect_load(-EINVAL);
	make_good_tree();
	put("node/online", "0-1,4\n");
	put("node/node0/distance", "10 20 30\n");
	put("node/node1/distance", "20 10 30\n");
	expect_load(-ENOENT); /* node4/cpulist missing */
	put("node/node4/cpulist", "\n");
	expect_load(-ENOENT); /* node4/distance missing */
	put("node/node4/distance", "30 30 10\n");
	expect_load(0);       /* a memory-only node 4 */

	/* Missing per-CPU topology files mean "unknown", not an error. */
	make_good_tree();
	rm_tree("cpu/cpu3/topology");
	assert_int_equal(topo_load(&t, tmproot), 0);
	assert_int_equal(t.cpu_pkg[3], -1);
	assert_int_equal(t.cpu_core[3], -1);
	assert_int_equal(t.cpu_smt[3], 3);
	topo_free(&t);

	/* No node/ directory: a kernel without NUMA; one node 0 at distance 10. */
	rm_tree("node");
	assert_int_equal(topo_load(&t, tmproot), 0);
	assert_int_equal(t.nnodes, 1);
	assert_int_equal(t.node_id[0], 0);
	assert_int_equal(t.dist[0], 10);
	assert_int_equal(t.node_ncpus[0], 4);
	topo_free(&t);

	/* No cpu/online at all. */
	rm_tree("cpu/online");
	expect_load(-ENOENT);
	assert_int_equal(topo_load(&t, "/nonexistent/ringo"), -ENOENT);
}

/* ================================================================== printing */

static void test_topology_print(void **state)
{
	struct topo t;
	struct topo_policy p;
	int cpus[32];
	unsigned n;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_fixture(&t, "two_socket_2x8_smt");
	n = all_cpus(&t, cpus);
	assert_int_equal(topo_policy_build(&p, &t, cpus, n, 0), 0);
	f = open_memstream(&text, &len);
	topo_print(&t, f);
	topo_policy_print(&p, f);
	fclose(f);
	assert_has(text, "topology (sysfs): 32 CPUs, 16 cores, 2 packages, 2 NUMA nodes\n");
	assert_has(text, "  node 0: 16 CPUs (8 cores) 0-7,16-23; distances 10 21\n");
	assert_has(text, "  node 1: 16 CPUs (8 cores) 8-15,24-31; distances 21 10\n");
	assert_has(text, "  cpu 20: node 0 package 0 core 8 thread 1 (siblings 4,20)\n");
	assert_has(text, "policy: 32 workers on 2 of 2 NUMA nodes\n");
	assert_has(text, "  node 1: 16 workers; global queues nearest first: 1 0\n");
	assert_has(text, "  worker 0 cpu 0 node 0 steals: core: 8 | node: ");
	assert_has(text, " | d21: ");
	free(text);
	topo_policy_free(&p);
	topo_free(&t);

	load_fixture(&t, "sparse_offline_cxl");
	text = NULL;
	f = open_memstream(&text, &len);
	topo_print(&t, f);
	fclose(f);
	assert_has(text, "  node 2: 3 CPUs (2 cores) 4-5,7; distances 21 10\n");
	assert_has(text, "  cpu 7: node 2 package 1 core 1 thread 0 (siblings 7)\n");
	free(text);
	topo_free(&t);
}

/* ================================================================== simulation */

/* Balanced-load work stealing, deterministic. Work is conserved and every worker has the same
 * rates. A worker with work runs one unit per tick, and the unit spawns one more on the same
 * worker (goroutines spawning goroutines). With probability 1/SIM_BLOCK per tick the goroutines
 * queued on a worker all block, as on a channel or I/O — so workers go idle at random times —
 * and SIM_DELAY-ish ticks later they are readied by some waker, on a random worker anywhere
 * (a goroutine readied by another lands on the waker's worker). A worker whose queue is empty
 * at its turn steals half of the first victim with work in `order`. Workers take turns in a
 * fresh random order each tick. Returns the fraction of steals whose victim is on the thief's
 * node and how many were not. Also checks the model: work is conserved, and a thief that finds
 * nothing leaves no work anywhere (the order covers every worker). */
#define SIM_UNITS 2   /* work per worker, ready or blocked */
#define SIM_BLOCK 4   /* 1/4 per tick: a worker's goroutines all block */
#define SIM_DELAY 32  /* blocked for 1..SIM_DELAY-1 ticks */

struct sim_result {
	unsigned long steals, remote;
	double local_frac;
};

static struct sim_result simulate(const struct topo_policy *p, const unsigned *order, uint64_t seed,
                                  unsigned ticks)
{
	unsigned nw = p->nworkers, per = nw - 1;
	unsigned *q = calloc(nw, sizeof(unsigned)), *perm = calloc(nw, sizeof(unsigned));
	unsigned *later = calloc((size_t)SIM_DELAY * nw, sizeof(unsigned)); /* [tick % D][w] */
	unsigned long total = 0, check = 0;
	struct sim_result r = { 0, 0, 0.0 };
	uint64_t rng = seed;

	for (unsigned w = 0; w < nw; w++) {
		q[w] = SIM_UNITS;
		perm[w] = w;
		total += q[w];
	}
	for (unsigned tick = 0; tick < ticks; tick++) {
		unsigned *due = &later[(size_t)(tick % SIM_DELAY) * nw];

		for (unsigned w = 0; w < nw; w++) { /* blocked work readied this tick */
			q[w] += due[w];
			due[w] = 0;
		}
		for (unsigned j = nw - 1; j > 0; j--) {
			unsigned x = rng_below(&rng, j + 1), tmp = perm[j];

			perm[j] = perm[x];
			perm[x] = tmp;
		}
		for (unsigned j = 0; j < nw; j++) {
			unsigned w = perm[j];

			if (q[w] > 0 && rng_below(&rng, SIM_BLOCK) == 0) {
				unsigned back = (tick + 1 + rng_below(&rng, SIM_DELAY - 1)) % SIM_DELAY;

				later[(size_t)back * nw + rng_below(&rng, nw)] += q[w];
				q[w] = 0;
			}
			if (q[w] == 0) {
				for (unsigned k = 0; k < per && q[w] == 0; k++) {
					unsigned v = order[(size_t)w * per + k];

					if (q[v] > 0) {
						unsigned take = (q[v] + 1) / 2;

						q[v] -= take;
						q[w] += take;
						r.steals++;
						r.remote += p->worker_node[v] != p->worker_node[w];
					}
				}
				if (q[w] == 0)
					for (unsigned v = 0; v < nw; v++)
						assert_int_equal(q[v], 0); /* idle although work was ready */
			}
			/* q[w] > 0: run one unit, which spawns one; q[w] unchanged */
		}
	}
	for (unsigned w = 0; w < nw; w++) {
		check += q[w];
		for (unsigned d = 0; d < SIM_DELAY; d++)
			check += later[(size_t)d * nw + w];
	}
	assert_int_equal(check, total); /* work is conserved: the model has no leak */
	free(q);
	free(perm);
	free(later);
	r.local_frac = r.steals ? (double)(r.steals - r.remote) / (double)r.steals : 0.0;
	return r;
}

static void test_topology_sim_epyc_steals_stay_local(void **state)
{
	struct topo t;
	struct topo_policy p;
	int cpus[64];
	unsigned n, per;
	unsigned *blind, *far;
	uint64_t rng = 2024;

	(void)state;
	load_fixture(&t, "epyc_nps4_64");
	n = all_cpus(&t, cpus);
	assert_int_equal(n, 64);
	per = n - 1;
	/* Controls, so the simulation is shown able to fail: a NUMA-blind shuffled order per
	 * worker (what a scheduler without the policy amounts to), and the policy's order reversed
	 * (farthest first). */
	blind = malloc((size_t)n * per * sizeof(unsigned));
	far = malloc((size_t)n * per * sizeof(unsigned));
	for (unsigned w = 0; w < n; w++) {
		for (unsigned k = 0; k < per; k++)
			blind[w * per + k] = (w + 1 + k) % n;
		for (unsigned k = per - 1; k > 0; k--) {
			unsigned x = rng_below(&rng, k + 1), tmp = blind[w * per + k];

			blind[w * per + k] = blind[w * per + x];
			blind[w * per + x] = tmp;
		}
	}
	for (uint64_t seed = 1; seed <= 3; seed++) {
		struct sim_result pol, bl, fa;

		assert_int_equal(topo_policy_build(&p, &t, cpus, n, seed), 0);
		for (unsigned w = 0; w < n; w++)
			for (unsigned k = 0; k < per; k++)
				far[w * per + k] = p.steal_order[w * per + per - 1 - k];
		pol = simulate(&p, p.steal_order, seed * 1000003, 5000);
		bl = simulate(&p, blind, seed * 1000003, 5000);
		fa = simulate(&p, far, seed * 1000003, 5000);
		if (getenv("TOPO_TEST_VERBOSE"))
			fprintf(stderr, "# sim seed %llu: policy %lu steals, %.5f on the thief's node (%lu remote); "
			        "NUMA-blind %.5f of %lu; farthest-first %.5f of %lu\n", (unsigned long long)seed,
			        pol.steals, pol.local_frac, pol.remote, bl.local_frac, bl.steals,
			        fa.local_frac, fa.steals);
		assert_true(pol.steals >= 5000);   /* the simulation did steal, a lot */
		assert_true(pol.local_frac >= 0.90); /* the claim */
		assert_true(bl.local_frac < 0.50); /* and the claim is not automatic */
		assert_true(fa.local_frac < 0.50);
		topo_policy_free(&p);
	}
	free(blind);
	free(far);
	topo_free(&t);
}

/* ================================================================== group */

static int group_setup(void **state)
{
	const char *top = getenv("top_srcdir");
	char probe[4300];

	(void)state;
	if (top != NULL && *top != '\0') {
		snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/topology", top);
		snprintf(probe, sizeof(probe), "%s/this_machine/cpu/online", fixtures);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	snprintf(fixtures, sizeof(fixtures), "%s", TOPO_FIXTURES);
	snprintf(probe, sizeof(probe), "%s/this_machine/cpu/online", fixtures);
	if (access(probe, R_OK) == 0)
		return 0;
	fprintf(stderr, "# topology fixtures not found: set top_srcdir or build with -DTOPO_FIXTURES\n");
	return -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology_fixture_load),
		cmocka_unit_test(test_topology_eight_node_is_asymmetric),
		cmocka_unit_test(test_topology_steal_order_every_fixture),
		cmocka_unit_test(test_topology_steal_order_spreads_first_victims),
		cmocka_unit_test(test_topology_steal_order_sibling_first),
		cmocka_unit_test(test_topology_steal_order_uses_thief_row),
		cmocka_unit_test(test_topology_wake_choice_every_fixture),
		cmocka_unit_test(test_topology_node_of_cpu_every_fixture),
		cmocka_unit_test(test_topology_node_of_cpu_without_local_workers),
		cmocka_unit_test(test_topology_policy_bad_args),
		cmocka_unit_test(test_topology_cpulist_parse),
		cmocka_unit_test(test_topology_cpulist_format),
		cmocka_unit_test(test_topology_select_cpus_good),
		cmocka_unit_test(test_topology_select_cpus_bad),
		cmocka_unit_test(test_topology_live_machine),
		cmocka_unit_test(test_topology_live_machine_flat_fallback),
		cmocka_unit_test_setup_teardown(test_topology_malformed_fixtures, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_topology_print),
		cmocka_unit_test(test_topology_sim_epyc_steals_stay_local),
	};

	return cmocka_run_group_tests_name("topology", tests, group_setup, NULL);
}
