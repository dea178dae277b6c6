/* tests/test_cgroup.c - kernel_iface/cgroup: the container CPU limit and the default procs.
 *
 * Responsibility: on cgroup trees this test writes into a temporary directory (standing for
 *   "/": proc/self/cgroup, proc/self/mountinfo, the cgroup files), check the exact limit in
 *   millicpus and the exact source text for: v2 with the limit at the leaf, a tighter limit at
 *   an ancestor, "max"; v1 quota, v1 -1, v1 over v2; a v1 mount whose root is a nested cgroup
 *   (a container's view) and an escaped mount point; missing files; garbage in every file.
 *   Check the rounding rule (cgroup_default_procs) on its own, the live machine, and — in
 *   child processes pointed at a fixture by RINGO_TEST_CGROUP_ROOT — that the runtime's default
 *   procs follows the limit, that RINGO_DEBUG=topology says where it came from, and that
 *   RINGO_PROCS wins.
 * Invariants: every expected text is written out literally here; each case builds its tree
 *   from nothing (the previous one is removed first), so cases cannot leak into each other.
 * Depends on: kernel_iface/cgroup, the runtime (ringo_procs, in the children), cmocka,
 *   tests/testutil.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* CPU_COUNT; the build passes it already */
#endif
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel_iface/cgroup.h"
#include "testutil.h"

static char tmproot[4096];

/* ================================================================== fixture trees */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove everything below tmproot (tmproot stays). */
static void clear_tree(void)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/proc", tmproot);
	if (lstat(path, &st) == 0)
		assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	snprintf(path, sizeof(path), "%s/sys", tmproot);
	if (lstat(path, &st) == 0)
		assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Write len bytes to tmproot/rel, creating the directories on the way. */
static void put_bytes(const char *rel, const char *content, size_t len)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmproot, rel);
	for (char *p = path + strlen(tmproot) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0)
			assert_int_equal(errno, EEXIST);
		*p = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void put(const char *rel, const char *content)
{
	put_bytes(rel, content, strlen(content));
}

#define MI_ROOTFS "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
#define MI_PROC "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
#define MI_V2 "25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"

/* A v2-only machine; the process is in /a/b. */
static void v2_tree(void)
{
	clear_tree();
	put("proc/self/cgroup", "0::/a/b\n");
	put("proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2);
	put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n"); /* the root: no cpu.max */
}

/* A v1 machine (with the v2 hierarchy mounted too, as systemd's "hybrid" does); the process
 * is in /job of the cpu,cpuacct hierarchy. */
static void v1_tree(void)
{
	clear_tree();
	put("proc/self/cgroup", "12:memory:/job\n4:cpu,cpuacct:/job\n3:cpuset:/\n1:name=systemd:/job\n0::/job\n");
	put("proc/self/mountinfo", MI_ROOTFS MI_PROC
	    "30 22 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:5 - tmpfs tmpfs ro,mode=755\n"
	    "31 30 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:6 - cgroup2 cgroup2 rw\n"
	    "33 30 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,memory\n"
	    "34 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
	    "35 30 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuset\n");
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
}

static void expect(uint64_t milli, const char *source)
{
	char src[CGROUP_SOURCE_MAX];
	uint64_t got;

	memset(src, 'x', sizeof(src));
	got = cgroup_cpu_limit(tmproot, src, sizeof(src));
	if (got != milli || strcmp(src, source) != 0)
		fprintf(stderr, "# got %llu \"%s\"\n# want %llu \"%s\"\n", (unsigned long long)got, src,
		        (unsigned long long)milli, source);
	assert_int_equal(got, milli);
	assert_string_equal(src, source);
}

/* ================================================================== cgroup v2 */

static void test_cgroup_v2_leaf_limit(void **state)
{
	(void)state;
	v2_tree();
	put("sys/fs/cgroup/a/cpu.max", "max 100000\n");
	put("sys/fs/cgroup/a/b/cpu.max", "150000 100000\n");
	expect(1500, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 150000/100000");

	/* rounding up to a whole millicpu, so ceil(milli / 1000) is ceil(quota / period) */
	put("sys/fs/cgroup/a/b/cpu.max", "100001 100000\n");
	expect(1001, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 100001/100000");
	put("sys/fs/cgroup/a/b/cpu.max", "1000 3000\n");
	expect(334, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 1000/3000");
	put("sys/fs/cgroup/a/b/cpu.max", "400000 100000"); /* no newline: still fine */
	expect(4000, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 400000/100000");
}

static void test_cgroup_v2_tighter_ancestor(void **state)
{
	(void)state;
	v2_tree();
	put("sys/fs/cgroup/a/cpu.max", "50000 100000\n");
	put("sys/fs/cgroup/a/b/cpu.max", "150000 100000\n");
	expect(500, "cgroup v2 /sys/fs/cgroup/a/cpu.max: 50000/100000");

	/* a deeper process: the tightest level anywhere on the way up wins, whatever the periods */
	put("proc/self/cgroup", "0::/a/b/c/d\n");
	put("sys/fs/cgroup/a/cpu.max", "max 100000\n");
	put("sys/fs/cgroup/a/b/c/cpu.max", "30000 10000\n"); /* 3 CPUs */
	put("sys/fs/cgroup/a/b/c/d/cpu.max", "max 100000\n");
	expect(1500, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 150000/100000");
	put("sys/fs/cgroup/a/b/c/cpu.max", "120000 100000\n");
	expect(1200, "cgroup v2 /sys/fs/cgroup/a/b/c/cpu.max: 120000/100000");
	/* the leaf and an ancestor equal: the deeper one is named */
	put("sys/fs/cgroup/a/b/c/d/cpu.max", "240000 200000\n");
	expect(1200, "cgroup v2 /sys/fs/cgroup/a/b/c/d/cpu.max: 240000/200000");
}

static void test_cgroup_v2_max(void **state)
{
	(void)state;
	v2_tree();
	put("sys/fs/cgroup/a/cpu.max", "max 100000\n");
	put("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
	expect(0, "cgroup v2 /sys/fs/cgroup/a/b: no CPU limit up to /sys/fs/cgroup");

	/* the process in the root cgroup (a container with its own cgroup namespace) */
	put("proc/self/cgroup", "0::/\n");
	expect(0, "cgroup v2 /sys/fs/cgroup: no CPU limit");
	put("sys/fs/cgroup/cpu.max", "200000 100000\n"); /* a namespace root can have a limit */
	expect(2000, "cgroup v2 /sys/fs/cgroup/cpu.max: 200000/100000");
}

/* ================================================================== cgroup v1 */

static void test_cgroup_v1_quota(void **state)
{
	(void)state;
	v1_tree();
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "250000\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "100000\n");
	/* the v2 hierarchy has no cpu controller here; a cpu.max in it must not count */
	put("sys/fs/cgroup/unified/job/cpu.max", "10000 100000\n");
	expect(2500, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us: 250000/100000");

	/* an ancestor's tighter quota */
	put("proc/self/cgroup", "4:cpu,cpuacct:/job/task\n0::/job\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/task/cpu.cfs_quota_us", "-1\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/task/cpu.cfs_period_us", "100000\n");
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "50000\n");
	expect(1000, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us: 50000/50000");
}

static void test_cgroup_v1_unlimited(void **state)
{
	(void)state;
	v1_tree();
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "-1\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "100000\n");
	expect(0, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/job: no CPU limit up to /sys/fs/cgroup/cpu,cpuacct");
	/* -1 needs no period file */
	put("proc/self/cgroup", "4:cpu,cpuacct:/\n");
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "garbage\n");
	expect(0, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct: no CPU limit");
}

/* A container's view of v1: the mount's root field is the container's own cgroup, so
 * /proc/self/cgroup's path is found below the mount point with that prefix taken off, and the
 * walk stops at the mount point (the ancestors above are not visible). */
static void test_cgroup_v1_nested_mount_root(void **state)
{
	(void)state;
	clear_tree();
	put("proc/self/cgroup", "5:cpuacct,cpu:/docker/abc/sub\n");
	put("proc/self/mountinfo", MI_ROOTFS
	    /* a bind mount of another part of the hierarchy: it does not show /docker/abc/sub */
	    "40 22 0:29 /docker/other /mnt/other rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
	    "41 22 0:29 /docker /sys/fs/cgroup/cpu,cpuacct rw,relatime master:9 - cgroup cgroup rw,cpuacct,cpu\n"
	    /* the most specific root that shows the cgroup wins */
	    "42 22 0:29 /docker/abc /sys/fs/cgroup/my\\040cpu rw,relatime master:9 - cgroup cgroup rw,cpuacct,cpu\n");
	put("sys/fs/cgroup/my cpu/sub/cpu.cfs_quota_us", "300000\n");
	put("sys/fs/cgroup/my cpu/sub/cpu.cfs_period_us", "100000\n");
	put("sys/fs/cgroup/my cpu/cpu.cfs_quota_us", "150000\n");
	put("sys/fs/cgroup/my cpu/cpu.cfs_period_us", "100000\n");
	/* decoys: where the full cgroup path would lead if the root were not taken off */
	put("sys/fs/cgroup/my cpu/docker/abc/sub/cpu.cfs_quota_us", "10000\n");
	put("sys/fs/cgroup/my cpu/docker/abc/sub/cpu.cfs_period_us", "100000\n");
	put("mnt/other/cpu.cfs_quota_us", "10000\n");
	put("mnt/other/cpu.cfs_period_us", "100000\n");
	expect(1500, "cgroup v1 /sys/fs/cgroup/my cpu/cpu.cfs_quota_us: 150000/100000");

	/* the process in the mount's root cgroup itself */
	put("proc/self/cgroup", "5:cpuacct,cpu:/docker/abc\n");
	put("sys/fs/cgroup/my cpu/cpu.cfs_quota_us", "-1\n");
	expect(0, "cgroup v1 /sys/fs/cgroup/my cpu: no CPU limit");

	/* outside every mount's root: nothing visible */
	put("proc/self/cgroup", "5:cpuacct,cpu:/system.slice/x\n");
	expect(0, "no cgroup CPU limit: no cgroup v1 cpu mount in /proc/self/mountinfo shows /system.slice/x");
	/* a cgroup namespace shows a cgroup outside it with ".." */
	put("proc/self/cgroup", "0::/../../elsewhere\n");
	put("proc/self/mountinfo", MI_ROOTFS MI_V2);
	put("sys/fs/cgroup/cpu.max", "100000 100000\n");
	expect(0, "no cgroup CPU limit: no cgroup2 mount in /proc/self/mountinfo shows /../../elsewhere");
}

/* ================================================================== missing and garbage */

static void test_cgroup_missing_files(void **state)
{
	(void)state;
	clear_tree();
	expect(0, "no cgroup CPU limit: cannot read /proc/self/cgroup: No such file or directory");
	v2_tree();
	clear_tree();
	put("proc/self/cgroup", "0::/a/b\n");
	expect(0, "no cgroup CPU limit: cannot read /proc/self/mountinfo: No such file or directory");
	/* no cgroup2 mount at all */
	put("proc/self/mountinfo", MI_ROOTFS MI_PROC);
	expect(0, "no cgroup CPU limit: no cgroup2 mount in /proc/self/mountinfo shows /a/b");
	/* no cpu controller anywhere: no cpu.max at any level, and nothing to complain about */
	v2_tree();
	expect(0, "cgroup v2 /sys/fs/cgroup/a/b: no CPU limit up to /sys/fs/cgroup");
	/* cpu.max only above: still found */
	put("sys/fs/cgroup/a/cpu.max", "70000 100000\n");
	expect(700, "cgroup v2 /sys/fs/cgroup/a/cpu.max: 70000/100000");
	/* v1 only, but no cpu line: v2 is used */
	put("proc/self/cgroup", "3:memory:/a/b\n0::/a/b\n");
	expect(700, "cgroup v2 /sys/fs/cgroup/a/cpu.max: 70000/100000");
	/* neither */
	put("proc/self/cgroup", "3:memory:/a/b\n");
	expect(0, "no cgroup CPU limit: /proc/self/cgroup names no v2 and no v1 cpu hierarchy");
	put("proc/self/cgroup", "");
	expect(0, "no cgroup CPU limit: /proc/self/cgroup names no v2 and no v1 cpu hierarchy");
	/* v1 quota without its period file */
	v1_tree();
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "50000\n");
	expect(0, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/job: no CPU limit up to /sys/fs/cgroup/cpu,cpuacct"
	          "; ignored /sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us: missing, so "
	          "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us is no limit");
	/* v1 cpu line, but the v1 cpu hierarchy is not mounted: no limit (v2 is not a stand-in) */
	put("proc/self/mountinfo", MI_ROOTFS MI_V2);
	expect(0, "no cgroup CPU limit: no cgroup v1 cpu mount in /proc/self/mountinfo shows /job");
}

/* Each bad cpu.max at the leaf is ignored with its reason; the ancestor's limit still counts. */
static void test_cgroup_garbage_limit_files(void **state)
{
	static const struct {
		const char *content, *reason;
	} bad[] = {
		{ "garbage\n", "malformed \"garbage\"" },
		{ "150000\n", "malformed \"150000\"" },
		{ "150000 100000 7\n", "malformed \"150000 100000 7\"" },
		{ "150000  100000\n", "malformed \"150000  100000\"" },
		{ "1.5 100000\n", "malformed \"1.5 100000\"" },
		{ "-5 100000\n", "malformed \"-5 100000\"" },
		{ "150000 100000\n\n", "malformed \"150000 100000?\"" },
		{ "max\n", "malformed \"max\"" },
		{ "MAX 100000\n", "malformed \"MAX 100000\"" },
		{ "\n", "malformed \"\"" },
		{ "", "malformed \"\"" },
		{ "99999999999999999999 100000\n", "malformed \"99999999999999999999 100000\"" },
		{ "150000 0\n", "period 0 out of range" },
		{ "150000 99999999999\n", "period 99999999999 out of range" },
		{ "0 100000\n", "quota 0 (the kernel allows no such limit)" },
		{ "0123456789012345678901234567890123456789abcdef\n",
		  "malformed \"0123456789012345678901234567890123456789...\"" },
	};
	char want[512];

	(void)state;
	v2_tree();
	put("sys/fs/cgroup/a/cpu.max", "300000 100000\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put("sys/fs/cgroup/a/b/cpu.max", bad[i].content);
		snprintf(want, sizeof(want), "cgroup v2 /sys/fs/cgroup/a/cpu.max: 300000/100000; "
		         "ignored /sys/fs/cgroup/a/b/cpu.max: %s", bad[i].reason);
		expect(3000, want);
	}
	/* a NUL byte, a file far too long, a directory where the file should be */
	put_bytes("sys/fs/cgroup/a/b/cpu.max", "15\0000 100000\n", sizeof("15\0000 100000\n") - 1);
	expect(3000, "cgroup v2 /sys/fs/cgroup/a/cpu.max: 300000/100000; "
	             "ignored /sys/fs/cgroup/a/b/cpu.max: holds a NUL byte");
	{
		char big[4096];

		memset(big, '1', sizeof(big));
		put_bytes("sys/fs/cgroup/a/b/cpu.max", big, sizeof(big));
	}
	expect(3000, "cgroup v2 /sys/fs/cgroup/a/cpu.max: 300000/100000; "
	             "ignored /sys/fs/cgroup/a/b/cpu.max: too long to be a cgroup file");
	/* garbage at every level: no limit, each one named */
	put("sys/fs/cgroup/a/b/cpu.max", "x y\n");
	put("sys/fs/cgroup/a/cpu.max", "max max\n");
	expect(0, "cgroup v2 /sys/fs/cgroup/a/b: no CPU limit up to /sys/fs/cgroup; "
	          "ignored /sys/fs/cgroup/a/b/cpu.max: malformed \"x y\"; "
	          "ignored /sys/fs/cgroup/a/cpu.max: malformed \"max max\"");
	/* an unreadable file (not when root: root reads anything) */
	if (geteuid() != 0) {
		char path[4200];

		put("sys/fs/cgroup/a/b/cpu.max", "100000 100000\n");
		put("sys/fs/cgroup/a/cpu.max", "max 100000\n");
		snprintf(path, sizeof(path), "%s/sys/fs/cgroup/a/b/cpu.max", tmproot);
		assert_int_equal(chmod(path, 0), 0);
		expect(0, "cgroup v2 /sys/fs/cgroup/a/b: no CPU limit up to /sys/fs/cgroup; "
		          "ignored /sys/fs/cgroup/a/b/cpu.max: Permission denied");
	}
}

static void test_cgroup_garbage_v1_files(void **state)
{
	(void)state;
	v1_tree();
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "20000\n");
	put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "10000\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "lots\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "100000\n");
	expect(2000, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us: 20000/10000; "
	             "ignored /sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us: malformed \"lots\"");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "5000\n");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "-100000\n");
	expect(2000, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us: 20000/10000; "
	             "ignored /sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us: malformed \"-100000\"");
	put("sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "0\n");
	expect(2000, "cgroup v1 /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us: 20000/10000; "
	             "ignored /sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us: period 0 out of range");
}

static void test_cgroup_garbage_proc_files(void **state)
{
	(void)state;
	v2_tree();
	put("sys/fs/cgroup/a/b/cpu.max", "150000 100000\n");
	put("proc/self/cgroup", "hello\n");
	expect(0, "no cgroup CPU limit: /proc/self/cgroup malformed: line 1 \"hello\" is not ID:CONTROLLERS:/PATH");
	put("proc/self/cgroup", "0::/a/b\nx:cpu:/a\n");
	expect(0, "no cgroup CPU limit: /proc/self/cgroup malformed: line 2 \"x:cpu:/a\" is not ID:CONTROLLERS:/PATH");
	put("proc/self/cgroup", "0::a/b\n");
	expect(0, "no cgroup CPU limit: /proc/self/cgroup malformed: line 1 \"0::a/b\" is not ID:CONTROLLERS:/PATH");
	put_bytes("proc/self/cgroup", "0::/a/b\0\n", 9);
	expect(0, "no cgroup CPU limit: cannot read /proc/self/cgroup: holds a NUL byte");

	put("proc/self/cgroup", "0::/a/b\n");
	put("proc/self/mountinfo", MI_ROOTFS "nonsense\n" MI_V2);
	expect(0, "no cgroup CPU limit: /proc/self/mountinfo malformed: line 2 has not the fields of a mount");
	put("proc/self/mountinfo", MI_ROOTFS "25 22 0:22 / /sys/fs/cgroup rw - cgroup2\n");
	expect(0, "no cgroup CPU limit: /proc/self/mountinfo malformed: line 2 has not the fields of a mount");
	put("proc/self/mountinfo", MI_ROOTFS "25 22 0:22 / /sys/fs/cgr\\0oup rw - cgroup2 cgroup2 rw\n");
	expect(0, "no cgroup CPU limit: /proc/self/mountinfo malformed: line 2 has a broken \\ escape");
	/* and back to a good file: the limit is there again */
	put("proc/self/mountinfo", MI_ROOTFS MI_V2);
	expect(1500, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 150000/100000");
}

/* ================================================================== the rule */

static void test_cgroup_default_procs_rule(void **state)
{
	static const struct {
		unsigned ncpus;
		uint64_t milli;
		unsigned want;
	} cases[] = {
		{ 8, 0, 8 },      /* no limit: the CPUs */
		{ 8, 1, 2 },      /* at least 2 */
		{ 8, 500, 2 },
		{ 8, 1000, 2 },
		{ 8, 1500, 2 },
		{ 8, 2000, 2 },
		{ 8, 2001, 3 },   /* any fraction rounds up */
		{ 8, 2500, 3 },
		{ 8, 3000, 3 },
		{ 8, 7999, 8 },
		{ 8, 100000, 8 }, /* never above the CPUs */
		{ 1, 1500, 1 },   /* the minimum of 2 never exceeds the CPUs */
		{ 2, 500, 2 },
		{ 64, UINT64_MAX / 2, 64 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(cgroup_default_procs(cases[i].ncpus, cases[i].milli), cases[i].want);
}

static void test_cgroup_root_spelling(void **state)
{
	char root[4200], src[CGROUP_SOURCE_MAX];

	(void)state;
	v2_tree();
	put("sys/fs/cgroup/a/b/cpu.max", "150000 100000\n");
	snprintf(root, sizeof(root), "%s//", tmproot); /* trailing slashes are fine */
	assert_int_equal(cgroup_cpu_limit(root, src, sizeof(src)), 1500);
	assert_string_equal(src, "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 150000/100000");
	/* a short buffer: cut, terminated */
	assert_int_equal(cgroup_cpu_limit(tmproot, src, 10), 1500);
	assert_string_equal(src, "cgroup v2");
	assert_int_equal(cgroup_cpu_limit(tmproot, NULL, 0), 1500);
}

/* The live machine: whatever it is, an answer with a reason. */
static void test_cgroup_live_machine(void **state)
{
	char src[CGROUP_SOURCE_MAX];
	uint64_t milli;

	(void)state;
	milli = cgroup_cpu_limit(NULL, src, sizeof(src));
	fprintf(stderr, "# live: %llu millicpus: %s\n", (unsigned long long)milli, src);
	assert_true(strncmp(src, "cgroup v1 /", 11) == 0 || strncmp(src, "cgroup v2 /", 11) == 0 ||
	            strncmp(src, "no cgroup CPU limit: ", 21) == 0);
	if (milli != 0)
		assert_non_null(strstr(src, "cpu.max: ") ? strstr(src, "cpu.max: ") : strstr(src, "cpu.cfs_quota_us: "));
	else
		assert_true(strstr(src, "no CPU limit") != NULL || strncmp(src, "no cgroup CPU limit: ", 21) == 0);
	/* "/" is the live machine too */
	{
		char src2[CGROUP_SOURCE_MAX];

		assert_int_equal(cgroup_cpu_limit("/", src2, sizeof(src2)), milli);
		assert_string_equal(src2, src);
	}
}

/* ================================================================== the runtime */

static int child_procs(void)
{
	printf("procs=%u\n", ringo_procs());
	return 0;
}

static unsigned affinity_cpus(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

static void run_procs_child(const char *procs_env, struct child_result *r)
{
	char rootenv[4200];
	const char *env[] = { rootenv, "RINGO_DEBUG=topology", procs_env, NULL };

	snprintf(rootenv, sizeof(rootenv), "RINGO_TEST_CGROUP_ROOT=%s", tmproot);
	tu_run_child("procs", env, 30, r);
	if (!r->exited || r->code != 0)
		fprintf(stderr, "# child output:\n%s\n", r->out);
	assert_true(r->exited);
	assert_int_equal(r->code, 0);
}

static void test_cgroup_runtime_default_procs(void **state)
{
	static struct child_result r;
	char want[64];
	unsigned ncpus = affinity_cpus();

	(void)state;
	if (getenv("RINGO_CPUS") || getenv("RINGO_NODES"))
		skip(); /* the usable CPUs would not be the affinity mask */
	v2_tree();
	put("sys/fs/cgroup/a/b/cpu.max", "150000 100000\n");

	run_procs_child("RINGO_PROCS=", &r); /* set but empty: the default */
	snprintf(want, sizeof(want), "procs=%u\n", cgroup_default_procs(ncpus, 1500));
	assert_non_null(strstr(r.out, want));
	if (ncpus >= 2)
		assert_non_null(strstr(r.out, "procs=2\n"));
	snprintf(want, sizeof(want), "ringo: procs %u = min(%u usable CPUs, ", ncpus >= 2 ? 2 : ncpus, ncpus);
	assert_non_null(strstr(r.out, want));
	assert_non_null(strstr(r.out, "cgroup limit 1.500 CPUs rounded up, at least 2); "
	                              "cgroup v2 /sys/fs/cgroup/a/b/cpu.max: 150000/100000\n"));

	/* RINGO_PROCS wins, and the cgroup is not consulted */
	run_procs_child("RINGO_PROCS=3", &r);
	assert_non_null(strstr(r.out, "procs=3\n"));
	assert_non_null(strstr(r.out, "ringo: procs 3 from RINGO_PROCS\n"));
	assert_null(strstr(r.out, "cpu.max"));

	/* no limit: the usable CPUs, and the reason */
	put("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
	run_procs_child("RINGO_PROCS=", &r);
	snprintf(want, sizeof(want), "procs=%u\n", ncpus);
	assert_non_null(strstr(r.out, want));
	snprintf(want, sizeof(want), "ringo: procs %u = usable CPUs; ", ncpus);
	assert_non_null(strstr(r.out, want));
	assert_non_null(strstr(r.out, "cgroup v2 /sys/fs/cgroup/a/b: no CPU limit up to /sys/fs/cgroup\n"));

	/* garbage: no limit, with the note, and the runtime starts */
	put("sys/fs/cgroup/a/b/cpu.max", "1.5\n");
	run_procs_child("RINGO_PROCS=", &r);
	snprintf(want, sizeof(want), "procs=%u\n", ncpus);
	assert_non_null(strstr(r.out, want));
	assert_non_null(strstr(r.out, "ignored /sys/fs/cgroup/a/b/cpu.max: malformed \"1.5\"\n"));
}

/* ================================================================== group */

static int tmp_setup(void **state)
{
	const char *dir = getenv("TMPDIR");

	(void)state;
	snprintf(tmproot, sizeof(tmproot), "%s/ringo_cgroup_XXXXXX", dir && *dir ? dir : "/tmp");
	return mkdtemp(tmproot) ? 0 : -1;
}

static int tmp_teardown(void **state) /* runs even when a test failed */
{
	(void)state;
	if (tmproot[0]) {
		char path[4200];

		snprintf(path, sizeof(path), "%s/sys/fs/cgroup/a/b/cpu.max", tmproot);
		(void)chmod(path, 0644);
		nftw(tmproot, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	return 0;
}

static const struct child_scenario child_scenarios[] = {
	{ "procs", child_procs },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_v2_leaf_limit),
		cmocka_unit_test(test_cgroup_v2_tighter_ancestor),
		cmocka_unit_test(test_cgroup_v2_max),
		cmocka_unit_test(test_cgroup_v1_quota),
		cmocka_unit_test(test_cgroup_v1_unlimited),
		cmocka_unit_test(test_cgroup_v1_nested_mount_root),
		cmocka_unit_test(test_cgroup_missing_files),
		cmocka_unit_test(test_cgroup_garbage_limit_files),
		cmocka_unit_test(test_cgroup_garbage_v1_files),
		cmocka_unit_test(test_cgroup_garbage_proc_files),
		cmocka_unit_test(test_cgroup_default_procs_rule),
		cmocka_unit_test(test_cgroup_root_spelling),
		cmocka_unit_test(test_cgroup_live_machine),
		cmocka_unit_test(test_cgroup_runtime_default_procs),
	};

	tu_maybe_child(argc, argv, child_scenarios);
	tu_init_self();
	return TU_RUN_GROUP("cgroup", tests, tmp_setup, tmp_teardown);
}
