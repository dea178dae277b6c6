/* kernel_iface/topology.c - CPUs, NUMA nodes and distances; the NUMA scheduling policy.
 *
 * Responsibility: turn the machine (libnuma + /sys) or a sysfs-shaped fixture directory into a
 *   struct topo, choose the worker CPUs from RINGO_CPUS / RINGO_NODES and the affinity mask, and
 *   derive, in this one place, every NUMA decision the scheduler makes: the per-worker steal
 *   order, the worker to wake for work born on a node, and the node whose global queue receives
 *   goroutines readied by a plain thread. The scheduler only reads the tables built here.
 * Invariants:
 *   - topo: cpu_* arrays ascending by CPU id; node_id ascending; every online CPU is on exactly
 *     one node position; every node position has >= 1 CPU; dist is nnodes x nnodes, row = from.
 *   - policy: row w of steal_order is a permutation of {0..nworkers-1} \ {w}, ranked (same core,
 *     same node, then remote by non-decreasing dist[node(w)][node(v)]), shuffled only within a
 *     rank; steal_ncore[w] <= steal_nlocal[w]; node_home[n] and every node_order entry name a
 *     node with workers; wake_order row n is a permutation of all workers.
 *   - Building is deterministic in (topology, worker CPUs, seed): a PRNG (splitmix64) seeded from
 *     (seed, w) shuffles worker w's ties, so two runs with one seed steal identically.
 * Contexts: plain functions, no globals, no locks. Loading and building allocate; the lookups
 *   (topo_node_of_cpu, topo_policy_wake_choice, topo_policy_node_of_cpu) do not and are safe
 *   from any thread on a policy nobody frees.
 * Departures from ARCHITECTURE.md: the prefix is topo_ (not kif_), as the module's brief asks.
 *   Memory-only nodes (CXL, HBM without CPUs) are left out of the topology: no worker can run
 *   there, and a plain thread's work goes to a node with workers anyway. Within a node the
 *   steal order puts SMT siblings first (they share L1/L2, so stolen work finds warm cache);
 *   that is a tie-break inside "same node first", never a change of it.
 * Depends on: libc, libnuma (numa_available, numa_node_of_cpu, numa_distance). No goroutines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r, CPU_ISSET_S; the build passes -D_GNU_SOURCE already */
#endif
#include "kernel_iface/topology.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIVE_SYSFS "/sys/devices/system"
#define FILE_MAX (64 * 1024) /* sysfs lists and distance rows are far smaller than this */

/* ================================================================== id sets */

#define IDSET_WORDS (TOPO_ID_LIMIT / 64)

/* A set of ids < TOPO_ID_LIMIT: 8 KiB, used only while loading and selecting. */
struct idset {
	uint64_t w[IDSET_WORDS];
};

static struct idset *idset_new(void)
{
	return calloc(1, sizeof(struct idset));
}

static void idset_add(struct idset *s, unsigned id)
{
	s->w[id / 64] |= UINT64_C(1) << (id % 64);
}

static bool idset_has(const struct idset *s, int id)
{
	return id >= 0 && id < TOPO_ID_LIMIT && (s->w[id / 64] >> (id % 64)) & 1;
}

static unsigned idset_count(const struct idset *s)
{
	unsigned n = 0;

	for (size_t i = 0; i < IDSET_WORDS; i++)
		n += (unsigned)__builtin_popcountll(s->w[i]);
	return n;
}

/* Next member >= from, or -1. */
static int idset_next(const struct idset *s, int from)
{
	for (int id = from < 0 ? 0 : from; id < TOPO_ID_LIMIT; id++) {
		uint64_t word = s->w[id / 64] >> (id % 64);

		if (word == 0) {
			id |= 63; /* skip the rest of this word */
			continue;
		}
		return id + __builtin_ctzll(word);
	}
	return -1;
}

#define IDSET_FOREACH(id, s) for (int id = idset_next((s), 0); id >= 0; id = idset_next((s), id + 1))

/* ================================================================== messages */

static void msg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ================================================================== list parsing */

/* Parse one decimal id at *pp. Returns 0, -EINVAL (no digit) or -ERANGE (>= TOPO_ID_LIMIT). */
static int parse_id(const char **pp, unsigned *out)
{
	const char *p = *pp;
	unsigned long v = 0;
	bool big = false;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v >= TOPO_ID_LIMIT) {
			big = true;
			v = TOPO_ID_LIMIT; /* keep scanning the digits, without overflow */
		}
	}
	*pp = p;
	*out = (unsigned)v;
	return big ? -ERANGE : 0;
}

/* Parse a cpulist into s (which is added to, not cleared). Messages quote at most 64 chars. */
static int parse_list_into(const char *str, struct idset *s, char *err, size_t errlen)
{
	const char *p = str;

	while (blank(*p))
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		unsigned lo, hi;
		const char *at;
		int rc;

		while (blank(*p))
			p++;
		at = p;
		rc = parse_id(&p, &lo);
		if (rc == -ERANGE)
			goto too_big;
		if (rc < 0)
			goto expected_number;
		hi = lo;
		while (blank(*p))
			p++;
		if (*p == '-') {
			p++;
			while (blank(*p))
				p++;
			at = p;
			rc = parse_id(&p, &hi);
			if (rc == -ERANGE)
				goto too_big;
			if (rc < 0)
				goto expected_number;
			if (hi < lo) {
				msg(err, errlen, "\"%.64s\": range %u-%u is reversed", str, lo, hi);
				return -EINVAL;
			}
			while (blank(*p))
				p++;
		}
		for (unsigned id = lo; id <= hi; id++)
			idset_add(s, id);
		if (*p == '\0')
			return 0;
		if (*p != ',') {
			if (isprint((unsigned char)*p))
				msg(err, errlen, "\"%.64s\": unexpected '%c' at offset %zu (expected a list like 0-3,8,10-11)",
				    str, *p, (size_t)(p - str));
			else
				msg(err, errlen, "\"%.64s\": unexpected byte 0x%02x at offset %zu (expected a list like 0-3,8,10-11)",
				    str, (unsigned char)*p, (size_t)(p - str));
			return -EINVAL;
		}
		p++;
		continue;
expected_number:
		if (*at == '\0')
			msg(err, errlen, "\"%.64s\": missing number at the end (expected a list like 0-3,8,10-11)", str);
		else if (*at == ',')
			msg(err, errlen, "\"%.64s\": empty item at offset %zu (expected a list like 0-3,8,10-11)",
			    str, (size_t)(at - str));
		else if (isprint((unsigned char)*at))
			msg(err, errlen, "\"%.64s\": expected a number at offset %zu, found '%c' (expected a list like 0-3,8,10-11)",
			    str, (size_t)(at - str), *at);
		else
			msg(err, errlen, "\"%.64s\": expected a number at offset %zu, found byte 0x%02x",
			    str, (size_t)(at - str), (unsigned char)*at);
		return -EINVAL;
too_big:
		msg(err, errlen, "\"%.64s\": id at offset %zu is too large (ids must be below %d)",
		    str, (size_t)(at - str), TOPO_ID_LIMIT);
		return -ERANGE;
	}
}

int topo_parse_list(const char *s, int *out, unsigned cap, unsigned *n, char *err, size_t errlen)
{
	struct idset *set;
	unsigned k = 0;
	int rc;

	*n = 0;
	if (s == NULL) {
		msg(err, errlen, "no list given");
		return -EINVAL;
	}
	set = idset_new();
	if (set == NULL)
		return -ENOMEM;
	rc = parse_list_into(s, set, err, errlen);
	if (rc == 0) {
		IDSET_FOREACH(id, set) {
			if (k < cap)
				out[k] = id;
			k++;
		}
		*n = k;
		if (k > cap) {
			msg(err, errlen, "\"%.64s\": %u ids, room for %u", s, k, cap);
			rc = -ENOSPC;
		}
	}
	free(set);
	return rc;
}

size_t topo_format_list(const int *ids, unsigned n, char *buf, size_t len)
{
	size_t need = 0;

	if (len > 0)
		buf[0] = '\0';
	for (unsigned i = 0; i < n;) {
		unsigned j = i;
		char item[32];
		int m;

		while (j + 1 < n && ids[j + 1] == ids[j] + 1)
			j++;
		if (j == i)
			m = snprintf(item, sizeof(item), "%s%d", i ? "," : "", ids[i]);
		else
			m = snprintf(item, sizeof(item), "%s%d-%d", i ? "," : "", ids[i], ids[j]);
		if (len > 0 && need < len - 1)
			snprintf(buf + need, len - need, "%s", item);
		need += (size_t)m;
		i = j + 1;
	}
	return need;
}

/* Format a set as a cpulist into buf (small helper for messages). */
static const char *fmt_set(const struct idset *s, char *buf, size_t len)
{
	int run_lo = -1, prev = -2;
	size_t used = 0;

	buf[0] = '\0';
	for (int id = idset_next(s, 0);; id = idset_next(s, id + 1)) {
		if (id >= 0 && id == prev + 1) {
			prev = id;
			continue;
		}
		if (run_lo >= 0 && used < len) {
			int m = run_lo == prev
			      ? snprintf(buf + used, len - used, "%s%d", used ? "," : "", run_lo)
			      : snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", run_lo, prev);
			used += m > 0 ? (size_t)m : 0;
		}
		if (id < 0)
			break;
		run_lo = prev = id;
	}
	if (used >= len && len > 4)
		strcpy(buf + len - 4, "...");
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
	return buf;
}

/* ================================================================== file reading */

struct loader {
	const char *root; /* directory shaped like /sys/devices/system */
	bool live;        /* reading the real /sys: be lenient, fall back instead of failing */
	char *buf;        /* FILE_MAX bytes, NUL-terminated after each read */
};

static int read_rel(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read root/<fmt...> into ld->buf. Returns the length, or -errno (-EFBIG if too long). */
static int read_rel(struct loader *ld, const char *fmt, ...)
{
	char rel[256], path[4096];
	size_t got = 0;
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", ld->root, rel) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r = read(fd, ld->buf + got, FILE_MAX - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == FILE_MAX - 1) {
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	ld->buf[got] = '\0';
	return (int)got;
}

/* One integer file (core_id, physical_package_id). Returns 0 with *v, -ENOENT, or -EINVAL. */
static int read_int(struct loader *ld, int *v, const char *fmt, int a)
{
	char *end;
	long x;
	int rc = read_rel(ld, fmt, a);

	if (rc < 0)
		return rc;
	errno = 0;
	x = strtol(ld->buf, &end, 10);
	while (blank(*end))
		end++;
	if (end == ld->buf || *end != '\0' || errno != 0 || x < -1 || x > INT32_MAX)
		return -EINVAL;
	*v = (int)x;
	return 0;
}

/* ================================================================== topology */

void topo_free(struct topo *t)
{
	if (t == NULL)
		return;
	free(t->cpu_id);
	free(t->cpu_node);
	free(t->cpu_pkg);
	free(t->cpu_core);
	free(t->cpu_smt);
	free(t->cpu_thread);
	free(t->node_id);
	free(t->node_ncpus);
	free(t->dist);
	free(t->cpu_pos);
	memset(t, 0, sizeof(*t));
}

int topo_node_of_cpu(const struct topo *t, int cpu)
{
	if (cpu < 0 || cpu >= t->cpu_limit || t->cpu_pos[cpu] < 0)
		return -1;
	return t->cpu_node[t->cpu_pos[cpu]];
}

/* Online CPUs: cpu/online, or (live only) sysconf's count as 0..n-1. */
static int load_online(struct loader *ld, struct idset *online)
{
	int rc = read_rel(ld, "cpu/online");

	if (rc >= 0)
		rc = parse_list_into(ld->buf, online, NULL, 0);
	if (rc < 0 && ld->live) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		memset(online, 0, sizeof(*online));
		for (long i = 0; i < n && i < TOPO_ID_LIMIT; i++)
			idset_add(online, (unsigned)i);
		rc = 0;
	}
	return rc;
}

/* Package, core id and SMT siblings of every CPU. Missing files mean "unknown" (-1, or alone on
 * its core); malformed files are an error for a fixture, "unknown" for the live machine. */
static int load_cpu_topology(struct loader *ld, struct topo *t, const struct idset *online,
                             struct idset *scratch)
{
	unsigned *nthreads = calloc((size_t)t->cpu_limit, sizeof(*nthreads));

	if (nthreads == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < t->ncpus; i++) {
		int cpu = t->cpu_id[i], rc;

		rc = read_int(ld, &t->cpu_pkg[i], "cpu/cpu%d/topology/physical_package_id", cpu);
		if (rc == -EINVAL && !ld->live)
			goto bad;
		if (rc < 0)
			t->cpu_pkg[i] = -1;
		rc = read_int(ld, &t->cpu_core[i], "cpu/cpu%d/topology/core_id", cpu);
		if (rc == -EINVAL && !ld->live)
			goto bad;
		if (rc < 0)
			t->cpu_core[i] = -1;

		t->cpu_smt[i] = cpu;
		rc = read_rel(ld, "cpu/cpu%d/topology/thread_siblings_list", cpu);
		if (rc >= 0) {
			memset(scratch, 0, sizeof(*scratch));
			rc = parse_list_into(ld->buf, scratch, NULL, 0);
			if (rc < 0 && !ld->live)
				goto bad;
			if (rc == 0) {
				IDSET_FOREACH(sib, scratch) {
					if (idset_has(online, sib)) {
						if (sib < t->cpu_smt[i])
							t->cpu_smt[i] = sib;
						break; /* ascending: the first online one is the lowest */
					}
				}
			}
		}
		/* Ascending CPU order makes this the rank among the siblings seen so far. */
		t->cpu_thread[i] = nthreads[t->cpu_smt[i]]++;
	}
	free(nthreads);
	return 0;
bad:
	free(nthreads);
	return -EINVAL;
}

/* Nodes from a sysfs-shaped tree. raw_ids: online node ids; each CPU gets the position of the
 * node listing it; rows with no CPU are dropped. */
/* node/nodeN/cpulist: mark each online CPU of node nid with its raw index k; a CPU on two
 * nodes is an error. */
static int read_node_cpus(struct loader *ld, const struct topo *t, const struct idset *online,
                          struct idset *scratch, unsigned nid, int k, int *raw_node)
{
	int rc = read_rel(ld, "node/node%d/cpulist", nid);

	if (rc < 0)
		return rc;
	memset(scratch, 0, sizeof(*scratch));
	rc = parse_list_into(ld->buf, scratch, NULL, 0);
	if (rc < 0)
		return rc;
	IDSET_FOREACH(cpu, scratch) {
		if (!idset_has(online, cpu))
			continue; /* offline CPUs may linger in a node mask */
		if (raw_node[t->cpu_pos[cpu]] >= 0)
			return -EINVAL; /* a CPU on two nodes */
		raw_node[t->cpu_pos[cpu]] = k;
	}
	return 0;
}

/* node/nodeN/distance: exactly nraw distances, each in [TOPO_LOCAL_DISTANCE, 255]. */
static int parse_distance_row(const char *buf, int *row, unsigned nraw)
{
	unsigned ncols = 0;
	char *end;

	for (const char *p = buf;; p = end) {
		long d;

		while (blank(*p))
			p++;
		if (*p == '\0')
			break;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		errno = 0;
		d = strtol(p, &end, 10);
		if (errno != 0 || d < TOPO_LOCAL_DISTANCE || d > 255 || ncols >= nraw)
			return -EINVAL;
		row[ncols++] = (int)d;
	}
	return ncols == nraw ? 0 : -EINVAL;
}

static int load_nodes_sysfs(struct loader *ld, struct topo *t, const struct idset *online,
                            struct idset *scratch)
{
	struct idset *nodes_online = NULL;
	int *raw_ids = NULL, *raw_dist = NULL, *raw_node = NULL, *pos_of_raw = NULL;
	unsigned nraw, k = 0;
	int rc = read_rel(ld, "node/online");

	if (rc == -ENOENT) {
		/* No node/ directory: a kernel without CONFIG_NUMA. One node, id 0. */
		t->nnodes = 1;
		t->node_id = calloc(1, sizeof(int));
		t->node_ncpus = calloc(1, sizeof(unsigned));
		t->dist = calloc(1, sizeof(int));
		if (!t->node_id || !t->node_ncpus || !t->dist)
			return -ENOMEM;
		t->dist[0] = TOPO_LOCAL_DISTANCE;
		t->node_ncpus[0] = t->ncpus;
		return 0; /* cpu_node[] is already all 0 */
	}
	if (rc < 0)
		return rc;
	nodes_online = idset_new();
	if (nodes_online == NULL)
		return -ENOMEM;
	rc = parse_list_into(ld->buf, nodes_online, NULL, 0);
	if (rc < 0)
		goto out;
	nraw = idset_count(nodes_online);
	rc = -EINVAL;
	if (nraw == 0)
		goto out;
	rc = -ENOMEM;
	raw_ids = calloc(nraw, sizeof(int));
	raw_dist = calloc((size_t)nraw * nraw, sizeof(int));
	raw_node = malloc(t->ncpus * sizeof(int)); /* per CPU index: raw node index or -1 */
	pos_of_raw = malloc(nraw * sizeof(int));
	if (!raw_ids || !raw_dist || !raw_node || !pos_of_raw)
		goto out;
	for (unsigned i = 0; i < t->ncpus; i++)
		raw_node[i] = -1;

	IDSET_FOREACH(nid, nodes_online) {
		raw_ids[k] = nid;
		rc = read_node_cpus(ld, t, online, scratch, nid, (int)k, raw_node);
		if (rc < 0)
			goto out;
		rc = read_rel(ld, "node/node%d/distance", nid);
		if (rc < 0)
			goto out;
		rc = parse_distance_row(ld->buf, &raw_dist[k * nraw], nraw);
		if (rc < 0)
			goto out;
		k++;
	}

	/* Keep the nodes that have CPUs. */
	rc = -EINVAL;
	for (unsigned i = 0; i < t->ncpus; i++)
		if (raw_node[i] < 0)
			goto out; /* an online CPU on no node */
	t->nnodes = 0;
	for (unsigned r = 0; r < nraw; r++) {
		pos_of_raw[r] = -1;
		for (unsigned i = 0; i < t->ncpus; i++) {
			if (raw_node[i] == (int)r) {
				pos_of_raw[r] = (int)t->nnodes++;
				break;
			}
		}
	}
	rc = -ENOMEM;
	t->node_id = calloc(t->nnodes, sizeof(int));
	t->node_ncpus = calloc(t->nnodes, sizeof(unsigned));
	t->dist = calloc((size_t)t->nnodes * t->nnodes, sizeof(int));
	if (!t->node_id || !t->node_ncpus || !t->dist)
		goto out;
	for (unsigned r = 0; r < nraw; r++) {
		if (pos_of_raw[r] < 0)
			continue;
		t->node_id[pos_of_raw[r]] = raw_ids[r];
		for (unsigned c = 0; c < nraw; c++)
			if (pos_of_raw[c] >= 0)
				t->dist[(unsigned)pos_of_raw[r] * t->nnodes + (unsigned)pos_of_raw[c]] =
					raw_dist[r * nraw + c];
	}
	for (unsigned i = 0; i < t->ncpus; i++) {
		t->cpu_node[i] = pos_of_raw[raw_node[i]];
		t->node_ncpus[t->cpu_node[i]]++;
	}
	rc = 0;
out:
	free(nodes_online);
	free(raw_ids);
	free(raw_dist);
	free(raw_node);
	free(pos_of_raw);
	return rc;
}

/* Nodes from libnuma, or one flat node when NUMA is unavailable (or force_flat). */
static int load_nodes_libnuma(struct topo *t, bool force_flat)
{
	int *raw = malloc(t->ncpus * sizeof(int));
	bool flat = force_flat || numa_available() < 0;
	int lowest = -1;

	if (raw == NULL)
		return -ENOMEM;
	if (flat) {
		for (unsigned i = 0; i < t->ncpus; i++)
			raw[i] = 0;
	} else {
		for (unsigned i = 0; i < t->ncpus; i++) {
			raw[i] = numa_node_of_cpu(t->cpu_id[i]);
			if (raw[i] >= TOPO_ID_LIMIT)
				raw[i] = -1;
			if (raw[i] >= 0 && (lowest < 0 || raw[i] < lowest))
				lowest = raw[i];
		}
		if (lowest < 0) { /* libnuma placed no CPU at all: treat as flat */
			flat = true;
			lowest = 0;
		}
		/* A CPU libnuma cannot place (hot-added after libnuma read the masks): lowest node. */
		for (unsigned i = 0; i < t->ncpus; i++)
			if (raw[i] < 0)
				raw[i] = lowest;
	}

	/* Distinct ids, ascending: an insertion into a small sorted array. */
	t->node_id = malloc(t->ncpus * sizeof(int));
	if (t->node_id == NULL)
		goto nomem;
	t->nnodes = 0;
	for (unsigned i = 0; i < t->ncpus; i++) {
		unsigned j = 0;

		while (j < t->nnodes && t->node_id[j] < raw[i])
			j++;
		if (j < t->nnodes && t->node_id[j] == raw[i])
			continue;
		memmove(&t->node_id[j + 1], &t->node_id[j], (t->nnodes - j) * sizeof(int));
		t->node_id[j] = raw[i];
		t->nnodes++;
	}
	t->node_ncpus = calloc(t->nnodes, sizeof(unsigned));
	t->dist = calloc((size_t)t->nnodes * t->nnodes, sizeof(int));
	if (!t->node_ncpus || !t->dist)
		goto nomem;
	for (unsigned i = 0; i < t->ncpus; i++) {
		unsigned n = 0;

		while (t->node_id[n] != raw[i])
			n++;
		t->cpu_node[i] = (int)n;
		t->node_ncpus[n]++;
	}
	for (unsigned a = 0; a < t->nnodes; a++) {
		for (unsigned b = 0; b < t->nnodes; b++) {
			int d = flat ? 0 : numa_distance(t->node_id[a], t->node_id[b]);

			if (d <= 0) /* libnuma could not tell: the kernel's defaults */
				d = a == b ? TOPO_LOCAL_DISTANCE : TOPO_REMOTE_DISTANCE;
			t->dist[a * t->nnodes + b] = d;
		}
	}
	t->source = flat ? "flat" : "libnuma";
	free(raw);
	return 0;
nomem:
	free(raw);
	return -ENOMEM;
}

static int load(struct topo *t, const char *sysfs_root, unsigned flags)
{
	struct loader ld = { .root = sysfs_root ? sysfs_root : LIVE_SYSFS, .live = sysfs_root == NULL };
	struct idset *online = idset_new(), *scratch = idset_new();
	unsigned i = 0;
	int rc = -ENOMEM, last = -1;

	memset(t, 0, sizeof(*t));
	ld.buf = malloc(FILE_MAX);
	if (!online || !scratch || !ld.buf)
		goto out;
	rc = load_online(&ld, online);
	if (rc < 0)
		goto out;
	t->ncpus = idset_count(online);
	rc = -ENODEV;
	if (t->ncpus == 0)
		goto out;
	IDSET_FOREACH(cpu, online)
		last = cpu;
	t->cpu_limit = last + 1;

	rc = -ENOMEM;
	t->cpu_id = calloc(t->ncpus, sizeof(int));
	t->cpu_node = calloc(t->ncpus, sizeof(int));
	t->cpu_pkg = calloc(t->ncpus, sizeof(int));
	t->cpu_core = calloc(t->ncpus, sizeof(int));
	t->cpu_smt = calloc(t->ncpus, sizeof(int));
	t->cpu_thread = calloc(t->ncpus, sizeof(unsigned));
	t->cpu_pos = malloc((size_t)t->cpu_limit * sizeof(int));
	if (!t->cpu_id || !t->cpu_node || !t->cpu_pkg || !t->cpu_core || !t->cpu_smt ||
	    !t->cpu_thread || !t->cpu_pos)
		goto out;
	for (int c = 0; c < t->cpu_limit; c++)
		t->cpu_pos[c] = -1;
	IDSET_FOREACH(cpu, online) {
		t->cpu_id[i] = cpu;
		t->cpu_pos[cpu] = (int)i++;
	}

	rc = load_cpu_topology(&ld, t, online, scratch);
	if (rc < 0)
		goto out;
	if (ld.live) {
		rc = load_nodes_libnuma(t, flags & TOPO_FORCE_FLAT);
	} else {
		t->source = "sysfs";
		rc = load_nodes_sysfs(&ld, t, online, scratch);
	}
out:
	free(online);
	free(scratch);
	free(ld.buf);
	if (rc == -EFBIG || rc == -ENAMETOOLONG)
		rc = -EINVAL;
	if (rc < 0)
		topo_free(t);
	return rc;
}

int topo_load(struct topo *t, const char *sysfs_root)
{
	return load(t, sysfs_root, 0);
}

int topo_load_live(struct topo *t, unsigned flags)
{
	return load(t, NULL, flags);
}

/* ================================================================== CPU selection */

/* Order of topo_select_cpus: node position, hardware thread rank, CPU id. */
static int cmp_select(const void *a, const void *b, void *arg)
{
	const struct topo *t = arg;
	int i = t->cpu_pos[*(const int *)a], j = t->cpu_pos[*(const int *)b];

	if (t->cpu_node[i] != t->cpu_node[j])
		return t->cpu_node[i] < t->cpu_node[j] ? -1 : 1;
	if (t->cpu_thread[i] != t->cpu_thread[j])
		return t->cpu_thread[i] < t->cpu_thread[j] ? -1 : 1;
	return (t->cpu_id[i] > t->cpu_id[j]) - (t->cpu_id[i] < t->cpu_id[j]);
}

static bool spec_blank(const char *s)
{
	while (blank(*s))
		s++;
	return *s == '\0';
}

/* a &= b, or a &= ~b when invert. */
static void idset_and(struct idset *a, const struct idset *b, bool invert)
{
	for (size_t i = 0; i < IDSET_WORDS; i++)
		a->w[i] &= invert ? ~b->w[i] : b->w[i];
}

/* Is every member of a in b? */
static bool idset_within(const struct idset *a, const struct idset *b)
{
	for (size_t i = 0; i < IDSET_WORDS; i++)
		if (a->w[i] & ~b->w[i])
			return false;
	return true;
}

/* RINGO_CPUS: narrow want to the CPUs of the spec, each of which must be online and allowed. */
static int narrow_by_cpus(const char *cpus_spec, const struct idset *online, const struct idset *mask,
                          struct idset *spec, struct idset *want, char *err, size_t errlen)
{
	char e[200], l1[160], l2[160];

	if (spec_blank(cpus_spec)) {
		msg(err, errlen, "RINGO_CPUS is set but empty (give a CPU list like 0-3,8; online: %s)",
		    fmt_set(online, l1, sizeof(l1)));
		return -EINVAL;
	}
	if (parse_list_into(cpus_spec, spec, e, sizeof(e)) < 0) {
		msg(err, errlen, "RINGO_CPUS=%s", e);
		return -EINVAL;
	}
	if (idset_count(spec) == 0) {
		msg(err, errlen, "RINGO_CPUS=\"%.64s\" names no CPU", cpus_spec);
		return -EINVAL;
	}
	if (!idset_within(spec, online)) { /* name every offending CPU at once */
		idset_and(spec, online, true);
		msg(err, errlen, "RINGO_CPUS=\"%.64s\": CPU %s not online (online: %s)", cpus_spec,
		    fmt_set(spec, l2, sizeof(l2)), fmt_set(online, l1, sizeof(l1)));
		return -EINVAL;
	}
	if (!idset_within(spec, mask)) {
		idset_and(spec, mask, true);
		msg(err, errlen, "RINGO_CPUS=\"%.64s\": CPU %s outside the process affinity mask (allowed: %s)",
		    cpus_spec, fmt_set(spec, l2, sizeof(l2)), fmt_set(mask, l1, sizeof(l1)));
		return -EINVAL;
	}
	idset_and(want, spec, false);
	return 0;
}

/* RINGO_NODES: narrow want to the CPUs of the named nodes; a node must exist, and the result
 * must keep a CPU. */
static int narrow_by_nodes(const struct topo *t, const char *cpus_spec, const char *nodes_spec,
                           const struct idset *mask, struct idset *spec, struct idset *other,
                           struct idset *want, char *err, size_t errlen)
{
	char e[200], l1[160], l2[160];

	memset(spec, 0, sizeof(*spec));
	if (spec_blank(nodes_spec)) {
		msg(err, errlen, "RINGO_NODES is set but empty (give a node list like 0,2)");
		return -EINVAL;
	}
	if (parse_list_into(nodes_spec, spec, e, sizeof(e)) < 0) {
		msg(err, errlen, "RINGO_NODES=%s", e);
		return -EINVAL;
	}
	for (unsigned i = 0; i < t->nnodes; i++)
		idset_add(other, (unsigned)t->node_id[i]);
	if (idset_count(spec) == 0) {
		msg(err, errlen, "RINGO_NODES=\"%.64s\" names no node", nodes_spec);
		return -EINVAL;
	}
	if (!idset_within(spec, other)) {
		idset_and(spec, other, true);
		msg(err, errlen, "RINGO_NODES=\"%.64s\": node %s does not exist or has no online CPU (nodes: %s)",
		    nodes_spec, fmt_set(spec, l2, sizeof(l2)), fmt_set(other, l1, sizeof(l1)));
		return -EINVAL;
	}
	memset(other, 0, sizeof(*other)); /* now: the CPUs of the chosen nodes */
	for (unsigned i = 0; i < t->ncpus; i++)
		if (idset_has(spec, t->node_id[t->cpu_node[i]]))
			idset_add(other, (unsigned)t->cpu_id[i]);
	idset_and(want, other, false);
	if (idset_count(want) == 0) {
		if (cpus_spec != NULL)
			msg(err, errlen, "RINGO_CPUS=\"%.64s\" and RINGO_NODES=\"%.64s\" have no CPU in common "
			    "(the nodes have CPUs %s)", cpus_spec, nodes_spec, fmt_set(other, l1, sizeof(l1)));
		else
			msg(err, errlen, "RINGO_NODES=\"%.64s\": none of its CPUs (%s) is in the process "
			    "affinity mask (allowed: %s)", nodes_spec, fmt_set(other, l1, sizeof(l1)),
			    fmt_set(mask, l2, sizeof(l2)));
		return -EINVAL;
	}
	return 0;
}

int topo_select_cpus(const struct topo *t, const cpu_set_t *allowed, size_t allowed_size,
                     const char *cpus_spec, const char *nodes_spec,
                     int *out_cpus, unsigned *out_n, char *err, size_t errlen)
{
	/* online: online CPUs; mask: online ∩ allowed; want: the result being narrowed;
	 * spec: a parsed spec; other: node ids, then CPUs of the chosen nodes. */
	struct idset *online = idset_new(), *mask = idset_new(), *want = idset_new();
	struct idset *spec = idset_new(), *other = idset_new();
	char l1[160];
	unsigned n = 0;
	int rc = -ENOMEM;

	*out_n = 0;
	if (!online || !mask || !want || !spec || !other)
		goto out;
	rc = -EINVAL;
	for (unsigned i = 0; i < t->ncpus; i++) {
		size_t cpu = (size_t)t->cpu_id[i];

		idset_add(online, (unsigned)cpu);
		if (allowed == NULL || (cpu < allowed_size * 8 && CPU_ISSET_S(cpu, allowed_size, allowed)))
			idset_add(mask, (unsigned)cpu);
	}
	if (idset_count(mask) == 0) {
		msg(err, errlen, "no online CPU (%s) is in the process affinity mask",
		    fmt_set(online, l1, sizeof(l1)));
		goto out;
	}
	*want = *mask;

	if (cpus_spec != NULL && narrow_by_cpus(cpus_spec, online, mask, spec, want, err, errlen) != 0)
		goto out;
	if (nodes_spec != NULL &&
	    narrow_by_nodes(t, cpus_spec, nodes_spec, mask, spec, other, want, err, errlen) != 0)
		goto out;

	IDSET_FOREACH(cpu, want)
		out_cpus[n++] = cpu;
	qsort_r(out_cpus, n, sizeof(int), cmp_select, (void *)t);
	*out_n = n;
	rc = 0;
out:
	free(online);
	free(mask);
	free(want);
	free(spec);
	free(other);
	return rc;
}

/* ================================================================== printing */

void topo_print(const struct topo *t, FILE *f)
{
	int *ids = malloc(t->ncpus * sizeof(int));
	unsigned ncores = 0, npkgs = 0;
	char list[512];

	if (ids == NULL)
		return;
	for (unsigned i = 0; i < t->ncpus; i++) {
		if (t->cpu_thread[i] == 0)
			ncores++;
		bool seen = false;
		for (unsigned j = 0; j < i; j++)
			seen |= t->cpu_pkg[j] == t->cpu_pkg[i];
		npkgs += !seen;
	}
	fprintf(f, "topology (%s): %u CPUs, %u cores, %u packages, %u NUMA nodes\n",
	        t->source, t->ncpus, ncores, npkgs, t->nnodes);
	for (unsigned n = 0; n < t->nnodes; n++) {
		unsigned k = 0, nc = 0;

		for (unsigned i = 0; i < t->ncpus; i++) {
			if (t->cpu_node[i] != (int)n)
				continue;
			ids[k++] = t->cpu_id[i];
			nc += t->cpu_thread[i] == 0;
		}
		topo_format_list(ids, k, list, sizeof(list));
		fprintf(f, "  node %d: %u CPUs (%u cores) %s; distances", t->node_id[n], k, nc, list);
		for (unsigned m = 0; m < t->nnodes; m++)
			fprintf(f, " %d", t->dist[n * t->nnodes + m]);
		fputc('\n', f);
	}
	for (unsigned i = 0; i < t->ncpus; i++) {
		unsigned k = 0;

		for (unsigned j = 0; j < t->ncpus; j++)
			if (t->cpu_smt[j] == t->cpu_smt[i])
				ids[k++] = t->cpu_id[j];
		topo_format_list(ids, k, list, sizeof(list));
		fprintf(f, "  cpu %d: node %d package %d core %d thread %u (siblings %s)\n", t->cpu_id[i],
		        t->node_id[t->cpu_node[i]], t->cpu_pkg[i], t->cpu_core[i], t->cpu_thread[i], list);
	}
	free(ids);
}

/* ================================================================== policy */

/* splitmix64 (Steele, Lea, Flood 2014): a full-period generator, good enough to shuffle ties. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

struct ranked {
	uint64_t key; /* sort key; equal keys form a tie run */
	unsigned v;   /* worker or node */
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->v > y->v) - (x->v < y->v);
}

static uint64_t dist_key(int d)
{
	return d < 0 ? 0 : d > 0xffff ? 0xffff : (uint64_t)d;
}

void topo_policy_free(struct topo_policy *p)
{
	if (p == NULL)
		return;
	free(p->worker_cpu);
	free(p->worker_node);
	free(p->steal_order);
	free(p->steal_ncore);
	free(p->steal_nlocal);
	free(p->node_id);
	free(p->dist);
	free(p->node_nworkers);
	free(p->nodes_used);
	free(p->node_home);
	free(p->node_order);
	free(p->wake_order);
	free(p->cpu_home);
	memset(p, 0, sizeof(*p));
}

/* Steal order of worker w: rank (0 same core, 1 same node, 2 remote), then distance, then a
 * shuffle within equal keys (seeded per worker, so thieves do not pile onto one victim). */
static void policy_steal_order(struct topo_policy *p, unsigned w, const int *smt, struct ranked *r,
                               uint64_t seed)
{
	unsigned nw = p->nworkers, nn = p->nnodes, per = nw - 1;
	int home = p->worker_node[w];
	uint64_t state = seed ^ (UINT64_C(0xd1b54a32d192ed03) * (w + 1));
	unsigned k = 0;

	for (unsigned v = 0; v < nw; v++) {
		uint64_t rank;

		if (v == w)
			continue;
		if (p->worker_node[v] != home)
			rank = 2;
		else
			rank = smt[v] == smt[w] ? 0 : 1;
		r[k].key = rank << 32 | dist_key(p->dist[(unsigned)home * nn + (unsigned)p->worker_node[v]]);
		r[k].v = v;
		if (rank == 0)
			p->steal_ncore[w]++;
		if (rank < 2)
			p->steal_nlocal[w]++;
		k++;
	}
	qsort(r, k, sizeof(*r), cmp_ranked);
	(void)splitmix64(&state); /* decorrelate neighbouring w */
	for (unsigned lo = 0; lo < k;) {
		unsigned hi = lo + 1;

		while (hi < k && r[hi].key == r[lo].key)
			hi++;
		for (unsigned j = hi - 1; j > lo; j--) { /* Fisher-Yates within [lo, hi) */
			unsigned x = lo + (unsigned)(splitmix64(&state) % (j - lo + 1));
			struct ranked tmp = r[j];

			r[j] = r[x];
			r[x] = tmp;
		}
		lo = hi;
	}
	for (unsigned j = 0; j < k; j++)
		p->steal_order[(size_t)w * per + j] = r[j].v;
}

/* Nodes with workers, and for every node the used nodes nearest first (its home: the first). */
static void policy_node_order(struct topo_policy *p, struct ranked *r)
{
	unsigned nn = p->nnodes;

	for (unsigned n = 0; n < nn; n++)
		if (p->node_nworkers[n] > 0)
			p->nodes_used[p->nnodes_used++] = n;
	for (unsigned n = 0; n < nn; n++) {
		for (unsigned i = 0; i < p->nnodes_used; i++) {
			unsigned m = p->nodes_used[i];

			r[i].key = (uint64_t)(m != n) << 32 | dist_key(p->dist[n * nn + m]);
			r[i].v = m;
		}
		qsort(r, p->nnodes_used, sizeof(*r), cmp_ranked);
		for (unsigned i = 0; i < p->nnodes_used; i++)
			p->node_order[(size_t)n * p->nnodes_used + i] = r[i].v;
		p->node_home[n] = (int)r[0].v;
	}
}

/* Wake order: workers on n first, then by distance from n, node position, index. */
static void policy_wake_order(struct topo_policy *p, struct ranked *r)
{
	unsigned nn = p->nnodes, nw = p->nworkers;

	for (unsigned n = 0; n < nn; n++) {
		for (unsigned w = 0; w < nw; w++) {
			unsigned m = (unsigned)p->worker_node[w];

			r[w].key = (uint64_t)(m != n) << 48 | dist_key(p->dist[n * nn + m]) << 24 | m;
			r[w].v = w;
		}
		qsort(r, nw, sizeof(*r), cmp_ranked);
		for (unsigned w = 0; w < nw; w++)
			p->wake_order[(size_t)n * nw + w] = r[w].v;
	}
}

/* Every array of the policy, sized for nw workers on t's nodes; false (nothing kept) if one
 * cannot be had. */
static bool policy_alloc(struct topo_policy *p, const struct topo *t, unsigned nw)
{
	unsigned nn = t->nnodes, per = nw - 1;

	p->worker_cpu = malloc(nw * sizeof(int));
	p->worker_node = malloc(nw * sizeof(int));
	p->steal_order = malloc(((size_t)nw * per + 1) * sizeof(unsigned));
	p->steal_ncore = calloc(nw, sizeof(unsigned));
	p->steal_nlocal = calloc(nw, sizeof(unsigned));
	p->node_id = malloc(nn * sizeof(int));
	p->dist = malloc((size_t)nn * nn * sizeof(int));
	p->node_nworkers = calloc(nn, sizeof(unsigned));
	p->nodes_used = malloc(nn * sizeof(unsigned));
	p->node_home = malloc(nn * sizeof(int));
	p->node_order = malloc((size_t)nn * nn * sizeof(unsigned));
	p->wake_order = malloc((size_t)nn * nw * sizeof(unsigned));
	p->cpu_home = malloc((size_t)t->cpu_limit * sizeof(int));
	if (!p->worker_cpu || !p->worker_node || !p->steal_order || !p->steal_ncore ||
	    !p->steal_nlocal || !p->node_id || !p->dist || !p->node_nworkers || !p->nodes_used ||
	    !p->node_home || !p->node_order || !p->wake_order || !p->cpu_home) {
		topo_policy_free(p);
		return false;
	}
	return true;
}

int topo_policy_build(struct topo_policy *p, const struct topo *t, const int *worker_cpus,
                      unsigned nworkers, uint64_t seed)
{
	unsigned nw = nworkers, nn = t->nnodes;

	memset(p, 0, sizeof(*p));
	if (nw == 0 || worker_cpus == NULL)
		return -EINVAL;
	for (unsigned w = 0; w < nw; w++)
		if (topo_node_of_cpu(t, worker_cpus[w]) < 0)
			return -EINVAL;

	p->nworkers = nw;
	p->nnodes = nn;
	p->cpu_limit = t->cpu_limit;
	struct ranked *r = malloc((nw > nn ? nw : nn) * sizeof(*r));
	int *smt = malloc(nw * sizeof(int));
	if (!r || !smt || !policy_alloc(p, t, nw)) {
		free(r);
		free(smt);
		memset(p, 0, sizeof(*p));
		return -ENOMEM;
	}
	memcpy(p->node_id, t->node_id, nn * sizeof(int));
	memcpy(p->dist, t->dist, (size_t)nn * nn * sizeof(int));
	for (unsigned w = 0; w < nw; w++) {
		int i = t->cpu_pos[worker_cpus[w]];

		p->worker_cpu[w] = worker_cpus[w];
		p->worker_node[w] = t->cpu_node[i];
		smt[w] = t->cpu_smt[i];
		p->node_nworkers[p->worker_node[w]]++;
	}
	for (unsigned w = 0; w < nw; w++)
		policy_steal_order(p, w, smt, r, seed);
	policy_node_order(p, r);
	policy_wake_order(p, r);
	for (int c = 0; c < t->cpu_limit; c++)
		p->cpu_home[c] = t->cpu_pos[c] < 0 ? -1 : p->node_home[t->cpu_node[t->cpu_pos[c]]];
	free(r);
	free(smt);
	return 0;
}

int topo_policy_wake_choice(const struct topo_policy *p, int from_node, const unsigned char *idle)
{
	if (from_node < 0 || (unsigned)from_node >= p->nnodes) {
		for (unsigned w = 0; w < p->nworkers; w++)
			if (idle[w])
				return (int)w;
		return -1;
	}
	const unsigned *order = &p->wake_order[(size_t)from_node * p->nworkers];

	for (unsigned k = 0; k < p->nworkers; k++)
		if (idle[order[k]])
			return (int)order[k];
	return -1;
}

int topo_policy_node_of_cpu(const struct topo_policy *p, int cpu)
{
	if (cpu >= 0 && cpu < p->cpu_limit && p->cpu_home[cpu] >= 0)
		return p->cpu_home[cpu];
	return p->worker_node[0];
}

void topo_policy_print(const struct topo_policy *p, FILE *f)
{
	unsigned per = p->nworkers - 1;

	fprintf(f, "policy: %u workers on %u of %u NUMA nodes\n", p->nworkers, p->nnodes_used, p->nnodes);
	for (unsigned i = 0; i < p->nnodes_used; i++) {
		unsigned n = p->nodes_used[i];

		fprintf(f, "  node %d: %u workers; global queues nearest first:", p->node_id[n],
		        p->node_nworkers[n]);
		for (unsigned k = 0; k < p->nnodes_used; k++)
			fprintf(f, " %d", p->node_id[p->node_order[(size_t)n * p->nnodes_used + k]]);
		fputc('\n', f);
	}
	for (unsigned w = 0; w < p->nworkers; w++) {
		const unsigned *o = &p->steal_order[(size_t)w * per];
		unsigned home = (unsigned)p->worker_node[w];
		int prev_d = -1;

		fprintf(f, "  worker %u cpu %d node %d steals:", w, p->worker_cpu[w], p->node_id[home]);
		for (unsigned k = 0; k < per; k++) {
			int d = p->dist[home * p->nnodes + (unsigned)p->worker_node[o[k]]];

			if (k == 0 && p->steal_ncore[w] > 0)
				fputs(" core:", f);
			if (k == p->steal_ncore[w] && k < p->steal_nlocal[w])
				fputs(k ? " | node:" : " node:", f);
			if (k >= p->steal_nlocal[w] && d != prev_d) {
				fprintf(f, "%s d%d:", k ? " |" : "", d);
				prev_d = d;
			}
			fprintf(f, " %u", o[k]);
		}
		fputc('\n', f);
	}
}
