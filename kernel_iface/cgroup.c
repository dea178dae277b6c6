/* kernel_iface/cgroup.c - the CPU bandwidth limit of the process's cgroup (containers).
 *
 * Responsibility: find the process's CPU cgroup (/proc/self/cgroup) and the mount that shows
 *   it (/proc/self/mountinfo), read the limit of that cgroup and of every ancestor visible in
 *   the mount, and say where the tightest one came from; turn it into a default worker count.
 *
 * The rule, and Go 1.25. Go 1.25's container-aware GOMAXPROCS (src/runtime/cgroup_linux.go,
 *   src/internal/runtime/cgroup/cgroup_linux.go; go.dev/issue/73193) defaults to
 *   min(CPUs in the affinity mask, L) with L = max(2, ceil(quota / period)): "A limit less than
 *   2 is rounded up to 2, and any fractional component is rounded up". The minimum of 2 keeps
 *   one worker from being starved by a goroutine that computes while others wait. ringo uses
 *   the same formula (cgroup_default_procs). Go reads the limit of the LEAF cgroup only (its
 *   comment: "a parent cgroup may have a tighter limit ... container runtimes tend to hide
 *   parent cgroups"); ringo, as its issue 12 asks, also walks up the ancestors the mount
 *   shows and takes the smallest quota/period, which is the limit the kernel enforces. Where
 *   only the leaf is visible (the usual container) both give the same number. Like Go, a v1
 *   hierarchy with the cpu controller takes precedence over v2; v2 "max" and a negative v1
 *   quota (the kernel prints -1) mean no limit; the number is read once, at start (Go also
 *   re-reads it periodically; ringo's worker count is fixed for the life of the process).
 *
 * Invariants:
 *   - The returned millicpus is ceil(1000 * quota / period) of one level (never 0 when a limit
 *     exists), so ceil(millicpus / 1000) == ceil(quota / period) exactly: the rounding above
 *     is the same as Go's on the exact fraction.
 *   - Nothing fails: a file that is missing at a level (the v2 root cgroup has no cpu.max;
 *     an ancestor may not enable the cpu controller) is skipped in silence; one that is present
 *     but unreadable, too long or malformed sets no limit and is named in the source text
 *     ("; ignored FILE: REASON"); an unreadable or malformed /proc/self/cgroup or mountinfo
 *     means "no limit" with the reason as the text.
 *   - Paths in the text are as the process sees them: the fixture root is never shown.
 * Contexts: plain functions, no globals; allocates one work area per call (paths are up to
 *   PATH_MAX, too big for a goroutine's stack).
 * Depends on: libc (open, read, snprintf). No goroutines, nothing else of ringo.
 */
#include "kernel_iface/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROC_FILE_CAP (4u << 20) /* mountinfo of a host with tens of thousands of mounts fits */
#define LIMIT_FILE_CAP 128       /* cpu.max is at most 40 bytes: "INT64 INT64\n" */
#define PERIOD_MAX UINT32_MAX    /* the kernel caps the period at 1 s = 1000000 us */

struct mount {
	bool found;
	size_t rootlen;       /* length of the mount's root field (the longest visible one wins) */
	char point[PATH_MAX]; /* mount point, unescaped */
	char rel[PATH_MAX];   /* the cgroup's path below the mount's root, "/" for the root itself */
};

struct work {
	char root[PATH_MAX];  /* "" (live) or the fixture root without trailing '/' */
	char v1[PATH_MAX];    /* cgroup path of the v1 hierarchy with cpu, "" if none */
	char v2[PATH_MAX];    /* cgroup path in the v2 hierarchy ("0::"), "" if none */
	struct mount m1, m2;
	char dir[PATH_MAX];   /* the level being read */
	char file[PATH_MAX];
	char what[PATH_MAX + 64];  /* "FILE: QUOTA/PERIOD" of the level being read */
	char best[PATH_MAX + 64];  /* the same for the tightest level so far */
	char notes[CGROUP_SOURCE_MAX];
	size_t nlen;
};

/* ================================================================== text helpers */

/* Append "; ignored FILE: REASON" to the notes (cut when full). */
static void note(struct work *w, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void note(struct work *w, const char *file, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->nlen + 1 >= sizeof(w->notes))
		return;
	n = snprintf(w->notes + w->nlen, sizeof(w->notes) - w->nlen, "; ignored %s: ", file);
	if (n > 0)
		w->nlen = w->nlen + (size_t)n < sizeof(w->notes) ? w->nlen + (size_t)n : sizeof(w->notes) - 1;
	va_start(ap, fmt);
	n = vsnprintf(w->notes + w->nlen, sizeof(w->notes) - w->nlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->nlen = w->nlen + (size_t)n < sizeof(w->notes) ? w->nlen + (size_t)n : sizeof(w->notes) - 1;
}

/* File content for a message: the first 40 bytes, control characters as '?', "..." when cut. */
static const char *shown(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t k = 0;

	for (size_t i = 0; i < len && k + 4 < buflen; i++) {
		if (i == 40) {
			memcpy(buf + k, "...", 3);
			k += 3;
			break;
		}
		buf[k++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	}
	buf[k] = '\0';
	return buf;
}

static const char *read_error(int rc)
{
	if (rc == -EFBIG)
		return "too long to be a cgroup file";
	if (rc == -EILSEQ)
		return "holds a NUL byte";
	return strerror(-rc);
}

/* ================================================================== reading */

/* Read the file root+path whole into *out (malloc'd, NUL-terminated, *len bytes before the
 * NUL). Returns 0, -errno from open/read, -ENAMETOOLONG, -ENOMEM, -EFBIG (over cap bytes) or
 * -EILSEQ (a NUL byte inside: not a text file). */
static int slurp(const struct work *w, const char *path, size_t cap, char **out, size_t *len)
{
	char full[PATH_MAX];
	size_t size = 0, have = 512;
	char *buf;
	int fd, rc = 0;
	int n = snprintf(full, sizeof(full), "%s%s", w->root, path);

	*out = NULL;
	*len = 0;
	if (n < 0 || (size_t)n >= sizeof(full))
		return -ENAMETOOLONG;
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(have);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (size + 1 >= have) {
			char *bigger = have > cap ? NULL : realloc(buf, have * 2);

			if (bigger == NULL) {
				rc = have > cap ? -EFBIG : -ENOMEM;
				break;
			}
			buf = bigger;
			have *= 2;
		}
		ssize_t r = read(fd, buf + size, have - 1 - size);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		size += (size_t)r;
		if (size > cap) {
			rc = -EFBIG;
			break;
		}
	}
	close(fd);
	if (rc == 0 && memchr(buf, '\0', size) != NULL)
		rc = -EILSEQ;
	if (rc != 0) {
		free(buf);
		return rc;
	}
	buf[size] = '\0';
	*out = buf;
	*len = size;
	return 0;
}

/* Is item one of the comma-separated names in list? */
static bool has_item(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && strncmp(p, item, n) == 0)
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}

/* ================================================================== /proc/self/cgroup */

/* Lines "ID:CONTROLLERS:/PATH" (man 7 cgroups): "0::/p" is the v2 hierarchy, a v1 line whose
 * controllers include "cpu" the v1 CPU hierarchy. Fills w->v1 / w->v2 (first of each wins).
 * Returns 0, or -EINVAL with the offending line in err. */
static int parse_proc_cgroup(struct work *w, char *text, char *err, size_t errlen)
{
	unsigned lineno = 0;
	char *next;

	for (char *line = text; *line; line = next) {
		char shownbuf[64];
		char *c1, *c2, *dest = NULL;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		lineno++;
		c1 = strchr(line, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c1 == NULL || c2 == NULL || c1 == line || strspn(line, "0123456789") != (size_t)(c1 - line) ||
		    c2[1] != '/') {
			snprintf(err, errlen, "line %u \"%s\" is not ID:CONTROLLERS:/PATH", lineno,
			         shown(line, strlen(line), shownbuf, sizeof(shownbuf)));
			return -EINVAL;
		}
		*c1 = *c2 = '\0';
		if (strcmp(line, "0") == 0 && c1[1] == '\0')
			dest = w->v2;
		else if (has_item(c1 + 1, "cpu"))
			dest = w->v1;
		if (dest == NULL || dest[0] != '\0')
			continue;
		if (strlen(c2 + 1) >= PATH_MAX) {
			snprintf(err, errlen, "line %u: path longer than PATH_MAX", lineno);
			return -EINVAL;
		}
		strcpy(dest, c2 + 1);
	}
	return 0;
}

/* ================================================================== /proc/self/mountinfo */

/* Undo the kernel's show_path escaping ("\040" for a space, also tab, newline, backslash).
 * false on a broken escape. */
static bool unescape(const char *in, char *out, size_t outlen)
{
	size_t k = 0;

	for (const char *p = in; *p; k++) {
		if (k + 1 >= outlen)
			return false;
		if (*p != '\\') {
			out[k] = *p++;
			continue;
		}
		if (p[1] < '0' || p[1] > '3' || p[2] < '0' || p[2] > '7' || p[3] < '0' || p[3] > '7')
			return false;
		out[k] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
		p += 4;
	}
	out[k] = '\0';
	return true;
}

/* Does a path contain a ".." component? (A cgroup outside our cgroup namespace shows so.) */
static bool has_dotdot(const char *p)
{
	for (const char *s = strstr(p, "/.."); s; s = strstr(s + 1, "/.."))
		if (s[3] == '/' || s[3] == '\0')
			return true;
	return false;
}

/* If the mount (root field mroot, mount point mpoint) shows cgroup path cg, and its root is
 * longer than the one m holds, record it in m. */
static void consider_mount(struct mount *m, const char *mroot, const char *mpoint, const char *cg)
{
	size_t rl = strlen(mroot);
	const char *rel;

	if (cg[0] == '\0' || has_dotdot(cg))
		return;
	if (strcmp(mroot, "/") == 0)
		rel = cg, rl = 0;
	else if (strncmp(cg, mroot, rl) == 0 && (cg[rl] == '\0' || cg[rl] == '/'))
		rel = cg[rl] ? cg + rl : "/";
	else
		return; /* a bind mount of some other part of the hierarchy */
	if (m->found && rl <= m->rootlen)
		return;
	if (strlen(mpoint) >= sizeof(m->point) || strlen(rel) >= sizeof(m->rel))
		return;
	m->found = true;
	m->rootlen = rl;
	strcpy(m->point, mpoint);
	strcpy(m->rel, rel);
	for (size_t n = strlen(m->rel); n > 1 && m->rel[n - 1] == '/'; n--)
		m->rel[n - 1] = '\0';
}

/* man 5 proc_pid_mountinfo: "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SOURCE
 * SUPER". A "cgroup2" mount can show w->v2, a "cgroup" mount whose super options include
 * "cpu" can show w->v1. Fills w->m1 / w->m2. Returns 0, or -EINVAL with the line in err. */
static int parse_mountinfo(struct work *w, char *text, char *err, size_t errlen)
{
	unsigned lineno = 0;
	char *next;
	char root[PATH_MAX], point[PATH_MAX];

	for (char *line = text; *line; line = next) {
		char *f[16], *save = NULL;
		unsigned nf = 0, dash = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		lineno++;
		for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			if (nf < 16)
				f[nf] = t;
			if (dash == 0 && nf >= 6 && strcmp(t, "-") == 0)
				dash = nf;
			nf++;
		}
		if (dash == 0 || dash + 3 >= nf || dash + 3 >= 16) {
			snprintf(err, errlen, "line %u has not the fields of a mount", lineno);
			return -EINVAL;
		}
		bool v2 = strcmp(f[dash + 1], "cgroup2") == 0 && w->v2[0];
		bool v1 = strcmp(f[dash + 1], "cgroup") == 0 && w->v1[0] && has_item(f[dash + 3], "cpu");

		if (!v1 && !v2)
			continue;
		if (!unescape(f[3], root, sizeof(root)) || !unescape(f[4], point, sizeof(point))) {
			snprintf(err, errlen, "line %u has a broken \\ escape", lineno);
			return -EINVAL;
		}
		consider_mount(v1 ? &w->m1 : &w->m2, root, point, v1 ? w->v1 : w->v2);
	}
	return 0;
}

/* ================================================================== limit files */

/* A decimal number 0..INT64_MAX (the kernel prints the values as s64), nothing else. */
static bool parse_u63(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*s - '0')) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return true;
}

/* ceil(1000 * quota / period) without overflow; huge values saturate (they are no limit in
 * practice). 0 with a note if a value is out of range. */
static uint64_t millicpus(struct work *w, uint64_t quota, uint64_t period)
{
	uint64_t whole, rem;

	if (period == 0 || period > PERIOD_MAX) {
		note(w, w->file, "period %llu out of range", (unsigned long long)period);
		return 0;
	}
	if (quota == 0) {
		note(w, w->file, "quota 0 (the kernel allows no such limit)");
		return 0;
	}
	whole = quota / period;
	rem = quota % period;
	if (whole >= UINT64_MAX / 2000)
		return UINT64_MAX / 2;
	return whole * 1000 + (rem * 1000 + period - 1) / period; /* rem * 1000 < 2^42 */
}

/* Read dir/name into *text. Returns 1 read, 0 absent (skip the level), -1 present but
 * unusable (noted). w->file holds the path. */
static int read_limit_file(struct work *w, const char *dir, const char *name, char **text)
{
	size_t len;
	int rc, n = snprintf(w->file, sizeof(w->file), "%s/%s", strcmp(dir, "/") ? dir : "", name);

	if (n < 0 || (size_t)n >= sizeof(w->file))
		return 0;
	rc = slurp(w, w->file, LIMIT_FILE_CAP, text, &len);
	if (rc == -ENOENT || rc == -ENOTDIR)
		return 0;
	if (rc != 0) {
		note(w, w->file, "%s", read_error(rc));
		return -1;
	}
	if (len > 0 && (*text)[len - 1] == '\n')
		(*text)[len - 1] = '\0';
	return 1;
}

static void malformed(struct work *w, const char *text)
{
	char buf[64];

	note(w, w->file, "malformed \"%s\"", shown(text, strlen(text), buf, sizeof(buf)));
}

/* v2: dir/cpu.max is "max PERIOD" or "QUOTA PERIOD". */
static uint64_t level_v2(struct work *w, const char *dir)
{
	char *text, *sp;
	uint64_t q = 0, p = 0, m = 0;

	if (read_limit_file(w, dir, "cpu.max", &text) <= 0)
		return 0;
	sp = strchr(text, ' ');
	if (sp == NULL) {
		malformed(w, text);
	} else {
		*sp = '\0';
		if (!parse_u63(sp + 1, &p) || (strcmp(text, "max") != 0 && !parse_u63(text, &q))) {
			*sp = ' ';
			malformed(w, text);
		} else if (strcmp(text, "max") != 0 && (m = millicpus(w, q, p)) != 0) {
			snprintf(w->what, sizeof(w->what), "%s: %llu/%llu", w->file, (unsigned long long)q,
			         (unsigned long long)p);
		}
	}
	free(text);
	return m;
}

/* v1: dir/cpu.cfs_quota_us (negative: no limit) over dir/cpu.cfs_period_us. */
static uint64_t level_v1(struct work *w, const char *dir)
{
	char *text;
	char quota_file[PATH_MAX];
	uint64_t q = 0, p = 0, m = 0;
	int rc;

	if (read_limit_file(w, dir, "cpu.cfs_quota_us", &text) <= 0)
		return 0;
	if (text[0] == '-' && parse_u63(text + 1, &q)) {
		free(text); /* -1: no limit */
		return 0;
	}
	if (!parse_u63(text, &q)) {
		malformed(w, text);
		free(text);
		return 0;
	}
	free(text);
	memcpy(quota_file, w->file, sizeof(quota_file));
	rc = read_limit_file(w, dir, "cpu.cfs_period_us", &text);
	if (rc == 0)
		note(w, w->file, "missing, so %s is no limit", quota_file);
	if (rc <= 0)
		return 0;
	if (!parse_u63(text, &p))
		malformed(w, text);
	else if ((m = millicpus(w, q, p)) != 0)
		snprintf(w->what, sizeof(w->what), "%s: %llu/%llu", quota_file, (unsigned long long)q,
		         (unsigned long long)p);
	free(text);
	return m;
}

/* Walk from the cgroup up to the mount's root; the tightest level's text goes to w->best. */
static uint64_t walk(struct work *w, int version, struct mount *m)
{
	uint64_t best = 0;
	char *rel = m->rel;

	for (;;) {
		bool top = strcmp(rel, "/") == 0;
		int n = snprintf(w->dir, sizeof(w->dir), "%s%s", strcmp(m->point, "/") ? m->point : "",
		                 top ? "" : rel);
		uint64_t v = 0;

		if (n > 0 && (size_t)n < sizeof(w->dir)) {
			if (w->dir[0] == '\0')
				strcpy(w->dir, "/");
			v = version == 2 ? level_v2(w, w->dir) : level_v1(w, w->dir);
		}
		if (v != 0 && (best == 0 || v < best)) {
			best = v;
			memcpy(w->best, w->what, sizeof(w->best));
		}
		if (top)
			break;
		char *slash = strrchr(rel, '/');

		if (slash == rel)
			rel[1] = '\0';
		else
			*slash = '\0';
	}
	return best;
}

/* ================================================================== entry points */

/* The source text: head, then the notes. */
static void finish(char *src, size_t srclen, const struct work *w, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void finish(char *src, size_t srclen, const struct work *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (srclen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(src, srclen, fmt, ap);
	va_end(ap);
	if (w != NULL && n >= 0 && (size_t)n < srclen)
		snprintf(src + n, srclen - (size_t)n, "%s", w->notes);
}

static uint64_t limit_of(struct work *w, char *src, size_t srclen)
{
	char *text;
	char err[256];
	size_t len;
	int rc, version;
	struct mount *m;
	uint64_t lim;

	rc = slurp(w, "/proc/self/cgroup", PROC_FILE_CAP, &text, &len);
	if (rc != 0) {
		finish(src, srclen, w, "no cgroup CPU limit: cannot read /proc/self/cgroup: %s", read_error(rc));
		return 0;
	}
	rc = parse_proc_cgroup(w, text, err, sizeof(err));
	free(text);
	if (rc != 0) {
		finish(src, srclen, w, "no cgroup CPU limit: /proc/self/cgroup malformed: %s", err);
		return 0;
	}
	if (w->v1[0] == '\0' && w->v2[0] == '\0') {
		finish(src, srclen, w, "no cgroup CPU limit: /proc/self/cgroup names no v2 and no v1 cpu hierarchy");
		return 0;
	}
	rc = slurp(w, "/proc/self/mountinfo", PROC_FILE_CAP, &text, &len);
	if (rc != 0) {
		finish(src, srclen, w, "no cgroup CPU limit: cannot read /proc/self/mountinfo: %s", read_error(rc));
		return 0;
	}
	rc = parse_mountinfo(w, text, err, sizeof(err));
	free(text);
	if (rc != 0) {
		finish(src, srclen, w, "no cgroup CPU limit: /proc/self/mountinfo malformed: %s", err);
		return 0;
	}
	/* A v1 hierarchy with the cpu controller takes precedence over v2, as in Go; then v2 is
	 * never a stand-in: a controller is bound to one hierarchy, so no v2 cgroup of this
	 * process has a cpu.max. */
	version = w->v1[0] ? 1 : 2;
	m = version == 1 ? &w->m1 : &w->m2;
	if (!m->found) {
		const char *cg = w->v1[0] ? w->v1 : w->v2;

		finish(src, srclen, w, "no cgroup CPU limit: no cgroup%s mount in /proc/self/mountinfo shows %s",
		       w->v1[0] ? " v1 cpu" : "2", cg);
		return 0;
	}
	bool leaf_is_top = strcmp(m->rel, "/") == 0;

	lim = walk(w, version, m);
	if (lim != 0) {
		finish(src, srclen, w, "cgroup v%d %s", version, w->best);
		return lim;
	}
	/* walk() cut m->rel down to "/"; rebuild the leaf for the message */
	if (leaf_is_top)
		finish(src, srclen, w, "cgroup v%d %s: no CPU limit", version, m->point);
	else
		finish(src, srclen, w, "cgroup v%d %s%s: no CPU limit up to %s", version,
		       strcmp(m->point, "/") ? m->point : "",
		       version == 1 ? w->v1 + m->rootlen : w->v2 + m->rootlen, m->point);
	return 0;
}

uint64_t cgroup_cpu_limit(const char *root, char *src, size_t srclen)
{
	struct work *w = calloc(1, sizeof(*w));
	uint64_t lim;
	size_t n;

	if (srclen > 0)
		src[0] = '\0';
	if (w == NULL) {
		finish(src, srclen, NULL, "no cgroup CPU limit: out of memory");
		return 0;
	}
	n = root ? strlen(root) : 0;
	if (n >= sizeof(w->root)) {
		finish(src, srclen, NULL, "no cgroup CPU limit: root directory name too long");
		free(w);
		return 0;
	}
	if (n > 0)
		memcpy(w->root, root, n);
	while (n > 0 && w->root[n - 1] == '/')
		w->root[--n] = '\0'; /* "/" is the live machine */
	lim = limit_of(w, src, srclen);
	free(w);
	return lim;
}

unsigned cgroup_default_procs(unsigned ncpus, uint64_t millicpus)
{
	uint64_t lim;

	if (millicpus == 0)
		return ncpus;
	lim = millicpus / 1000 + (millicpus % 1000 != 0);
	if (lim < 2)
		lim = 2;
	return lim < ncpus ? (unsigned)lim : ncpus;
}
