/* kernel_iface/cgroup.h - the CPU bandwidth limit of the process's cgroup (containers).
 *
 * Internal (hidden) API; goroutine-agnostic. One question, answered from files only:
 * how many CPUs' worth of time may this process use on average (cgroup v2 cpu.max, v1
 * cpu.cfs_quota_us / cpu.cfs_period_us), taking the tightest of its cgroup and every ancestor
 * visible in the mount; and the default worker count that follows from it. The rule and how
 * it relates to Go 1.25's container-aware GOMAXPROCS are in cgroup.c's top comment.
 *
 * Nothing here fails: a missing, unreadable or malformed file means "no limit" (or "this
 * level sets no limit"), and the reason is in the source text for RINGO_DEBUG to show.
 * Thread-safe (no globals); allocates only while it runs.
 */
#ifndef RINGO_KERNEL_IFACE_CGROUP_H
#define RINGO_KERNEL_IFACE_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CGROUP_HIDDEN __attribute__((visibility("hidden")))
#else
#define CGROUP_HIDDEN
#endif

/* A source text buffer of this size holds every message short of pathologically long paths
 * (longer text is cut, always NUL-terminated). */
#define CGROUP_SOURCE_MAX 1024

/* The CPU limit in millicpus (1500 = 1.5 CPUs), rounded up to a whole millicpu; 0 = no limit.
 * root: a directory standing for "/" (test fixtures: it holds proc/self/cgroup,
 * proc/self/mountinfo and the cgroup files below the mount points named there); NULL or ""
 * is the live machine. src (if srclen > 0) receives one line without newline saying where the
 * number came from, with paths as the process sees them (without root), e.g.
 *   "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 150000/100000"
 *   "cgroup v1 /sys/fs/cgroup/cpu/x/cpu.cfs_quota_us: 50000/100000"
 *   "cgroup v2 /sys/fs/cgroup/a: no CPU limit up to /sys/fs/cgroup"
 *   "no cgroup CPU limit: cannot read /proc/self/cgroup: No such file or directory"
 * followed by "; ignored FILE: REASON" for every file that was present but unusable. */
CGROUP_HIDDEN uint64_t cgroup_cpu_limit(const char *root, char *src, size_t srclen);

/* The default worker count for ncpus usable CPUs under a limit of millicpus (0 = none):
 * ncpus when there is no limit, else min(ncpus, max(2, ceil(millicpus / 1000))). */
CGROUP_HIDDEN unsigned cgroup_default_procs(unsigned ncpus, uint64_t millicpus);

#endif /* RINGO_KERNEL_IFACE_CGROUP_H */
