#!/bin/sh
# check-layers.sh SRCDIR BUILDDIR
#
# Checks that dependencies between the layers of libringo point one way:
#   1. #include "..." lines of every source under SRCDIR/{kernel_iface,sched,chan}
#   2. undefined symbols of every library object under BUILDDIR/{kernel_iface,sched,chan}
#      (nm) that another library object defines.
# Prints one line per violation (file:line or object -> symbol, and the rule), a one-line
# summary, and exits 1 on any violation, 0 otherwise (2 on usage errors).
# POSIX sh + awk + nm + find + sort only (no python).

# ============================== THE RULES (edit here) ==============================
#
# Patterns are paths relative to SRCDIR. "*" matches within one path component (never "/"),
# so "sched/*" is the files directly in sched/ and NOT those in sched/io/.
#
# LAYER_FILES: which files belong to which layer. A source (.c .h .S .s) under one of
# LIB_DIRS that matches no pattern is an error ("no layer for X").
LIB_DIRS='kernel_iface sched chan'
LAYER_FILES='
# layer          files
kernel_iface     kernel_iface/*
core             sched/*  sched/arch/*
io               sched/io/*
debug            sched/debug/*
chan             chan/*
'
# LAYER_INCLUDES: what each layer may #include "...". The included name is resolved like the
# compiler does (directory of the including file, then SRCDIR/include, then SRCDIR; names that
# are not found, e.g. the generated config.h, stay as written). <...> includes are system
# includes and are not checked. Everything not listed is forbidden (e.g. core including
# sched/io/*, sched/debug/* or chan/*).
LAYER_INCLUDES='
# layer          may include
kernel_iface     kernel_iface/*.h  config.h  include/ringo.h  ringo.h   # for ringo_now (exported)
core             kernel_iface/*.h  sched/*.h  sched/arch/*.h  include/ringo.h  ringo.h  config.h
io               kernel_iface/*.h  sched/*.h  include/ringo.h  ringo.h  config.h  sched/io/*.h
debug            kernel_iface/*.h  sched/*.h  include/ringo.h  ringo.h  config.h  sched/debug/*.h
chan             kernel_iface/*.h  sched/*.h  include/ringo.h  ringo.h  config.h  chan/*.h
'
# LAYER_SYMBOLS: an object of <layer> may use symbols defined by objects of these layers.
LAYER_SYMBOLS='
# layer          may reference symbols defined in
kernel_iface     kernel_iface
core             kernel_iface core
io               kernel_iface core io
debug            kernel_iface core debug
chan             kernel_iface core chan
'
# HOOK_ALLOW: the exceptions — hook tables a lower layer may reference in an upper one.
HOOK_ALLOW='
# symbol             defined in   may be referenced from
sched_poller         io           core    # the ops table the scheduler calls for I/O
sched_poller         io           debug   # schedtrace and ringo_stats read I/O through it too
sched_debug_hooks    debug        core    # observability hooks the scheduler calls
'
# ====================================================================================

set -u
LC_ALL=C; export LC_ALL   # byte order for sort, plain ASCII for awk
me=check-layers
if [ $# -ne 2 ]; then
	echo "usage: $0 SRCDIR BUILDDIR" >&2
	exit 2
fi
SRCDIR=$1
BUILDDIR=$2
[ -d "$SRCDIR" ] || { echo "$me: SRCDIR '$SRCDIR' is not a directory" >&2; exit 2; }
[ -d "$BUILDDIR" ] || { echo "$me: BUILDDIR '$BUILDDIR' is not a directory" >&2; exit 2; }
NM=${NM:-nm}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX") || exit 2
case $tmp in /*) ;; *) tmp=$PWD/$tmp;; esac
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

export LAYER_FILES LAYER_INCLUDES LAYER_SYMBOLS HOOK_ALLOW

# Shared awk code: parse the tables, map a path to its layer, glob matching.
AWK_LIB='
function trim_comment(s) { sub(/#.*/, "", s); return s }
function glob2re(g,    r, i, c) {
	r = "^"
	for (i = 1; i <= length(g); i++) {
		c = substr(g, i, 1)
		if (c == "*") r = r "[^/]*"
		else if (c == "?") r = r "[^/]"
		else if (index(".[]()+^$|\\{}", c)) r = r "\\" c
		else r = r c
	}
	return r "$"
}
# table -> tab[layer] = "re1 re2 ..." (as a list in tab_n/tab_re), order kept in ord[]
function parse_layer_files(s,    lines, n, i, f, nf, j) {
	n = split(s, lines, "\n"); nlayer_pat = 0
	for (i = 1; i <= n; i++) {
		nf = split(trim_comment(lines[i]), f, " ")
		if (nf < 2) continue
		known_layer[f[1]] = 1
		for (j = 2; j <= nf; j++) { nlayer_pat++; lp_layer[nlayer_pat] = f[1]; lp_re[nlayer_pat] = glob2re(f[j]) }
	}
}
function layer_of(path,    i) {
	for (i = 1; i <= nlayer_pat; i++) if (path ~ lp_re[i]) return lp_layer[i]
	return ""
}
function parse_includes(s,    lines, n, i, f, nf, j) {
	n = split(s, lines, "\n")
	for (i = 1; i <= n; i++) {
		nf = split(trim_comment(lines[i]), f, " ")
		if (nf < 1) continue
		inc_list[f[1]] = ""
		for (j = 2; j <= nf; j++) { inc_n[f[1]]++; inc_re[f[1], inc_n[f[1]]] = glob2re(f[j]); inc_list[f[1]] = inc_list[f[1]] (j > 2 ? " " : "") f[j] }
	}
}
function may_include(layer, path,    i) {
	for (i = 1; i <= inc_n[layer]; i++) if (path ~ inc_re[layer, i]) return 1
	return 0
}
function parse_symbols(s,    lines, n, i, f, nf, j) {
	n = split(s, lines, "\n")
	for (i = 1; i <= n; i++) {
		nf = split(trim_comment(lines[i]), f, " ")
		if (nf < 1) continue
		sym_rule_seen[f[1]] = 1
		for (j = 2; j <= nf; j++) sym_ok[f[1], f[j]] = 1
	}
}
function parse_hooks(s,    lines, n, i, f, nf) {
	n = split(s, lines, "\n")
	for (i = 1; i <= n; i++) {
		nf = split(trim_comment(lines[i]), f, " ")
		if (nf < 3) continue
		hook_ok[f[1], f[2], f[3]] = 1
	}
}
function exists(p,    t, r) { r = (getline t < p); if (r >= 0) close(p); return r >= 0 }
'

# ---------------------------------------------------------------- 1. sources and includes
: > "$tmp/sources"
for d in $LIB_DIRS; do
	[ -d "$SRCDIR/$d" ] || continue
	(cd "$SRCDIR" && find "$d" -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name '*.s' \)) >> "$tmp/sources"
done
sort -o "$tmp/sources" "$tmp/sources"
nsources=$(wc -l < "$tmp/sources" | tr -d ' ')

# One awk pass over all sources: layer of each file, and every #include "..." checked.
# Block comments are skipped so a commented-out #include is not counted.
: > "$tmp/inc.out"
(cd "$SRCDIR" && awk -v list="$tmp/sources" "$AWK_LIB"'
function dirname(p) { if (p !~ /\//) return "."; sub(/\/[^\/]*$/, "", p); return p }
function normalize(p,    parts, n, i, out, k, res) {
	n = split(p, parts, "/"); k = 0
	for (i = 1; i <= n; i++) {
		if (parts[i] == "" || parts[i] == ".") continue
		if (parts[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
		out[++k] = parts[i]
	}
	res = ""
	for (i = 1; i <= k; i++) res = res (i > 1 ? "/" : "") out[i]
	return res
}
function resolve(file, name,    c) {
	c = normalize(dirname(file) "/" name); if (exists(c)) return c
	c = normalize("include/" name);        if (exists(c)) return c
	c = normalize(name);                   if (exists(c)) return c
	return normalize(name)
}
function scan(file,    layer, inblock, lineno, line, out, p, name, r) {
	layer = layer_of(file)
	if (layer == "") { print file ":1: [no layer] no layer for " file " (add its folder to LAYER_FILES)"; return }
	inblock = 0; lineno = 0
	while ((getline line < file) > 0) {
		lineno++
		# drop /* ... */ (possibly spanning lines) before looking for #include
		out = ""
		while (line != "") {
			if (inblock) {
				p = index(line, "*/"); if (!p) { line = ""; break }
				line = substr(line, p + 2); inblock = 0
			} else {
				p = index(line, "/*"); if (!p) { out = out line; line = ""; break }
				out = out substr(line, 1, p - 1) " "; line = substr(line, p + 2); inblock = 1
			}
		}
		if (out !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
		name = out; sub(/^[ \t]*#[ \t]*include[ \t]*"/, "", name); sub(/".*/, "", name)
		nincl++
		r = resolve(file, name)
		if (!may_include(layer, r))
			print file ":" lineno ": [include] " layer " may not include \"" name "\"" (r != name ? " (" r ")" : "") \
				" -- " layer " may include: " inc_list[layer]
	}
	close(file)
}
BEGIN {
	parse_layer_files(ENVIRON["LAYER_FILES"]); parse_includes(ENVIRON["LAYER_INCLUDES"])
	nincl = 0
	while ((getline f < list) > 0) scan(f)
	print nincl > "/dev/stderr"
}' ) > "$tmp/inc.out" 2> "$tmp/inc.count"
nincludes=$(tail -n 1 "$tmp/inc.count" 2>/dev/null)
[ -n "$nincludes" ] || nincludes=0
case $nincludes in *[!0-9]*) cat "$tmp/inc.count" >&2; echo "$me: include scan failed" >> "$tmp/inc.out"; nincludes=0;; esac

# ---------------------------------------------------------------- 2. objects and symbols
# Library objects: BUILDDIR/<dir>/.libs/libringo_internal_la-<name>.o (libtool PIC objects),
# falling back to BUILDDIR/<dir>/libringo_internal_la-<name>.o. The object maps back to the
# source SRCDIR/<dir>/<name>.{c,S,s}; objects whose source is gone (stale leftovers after a
# move) are skipped with a note.
: > "$tmp/objects.all"
for d in $LIB_DIRS; do
	[ -d "$BUILDDIR/$d" ] || continue
	(cd "$BUILDDIR" && find "$d" -type f -name '*.o') >> "$tmp/objects.all"
done
sort -o "$tmp/objects.all" "$tmp/objects.all"

(cd "$SRCDIR" && awk "$AWK_LIB"'
BEGIN { parse_layer_files(ENVIRON["LAYER_FILES"]) }
{
	o = $0; dir = o; sub(/\/[^\/]*$/, "", dir)
	libs = 0
	if (dir ~ /(^|\/)\.libs$/) { libs = 1; sub(/\/?\.libs$/, "", dir) }
	base = o; sub(/.*\//, "", base); sub(/\.o$/, "", base); sub(/^[A-Za-z0-9_]*_la-/, "", base)
	key = dir "/" base
	if (!(key in pick) || libs) pick[key] = o
	if (!(key in order)) { order[key] = ++n; keys[n] = key }
}
END {
	for (i = 1; i <= n; i++) {
		key = keys[i]; src = ""
		if (exists(key ".c")) src = key ".c"; else if (exists(key ".S")) src = key ".S"; else if (exists(key ".s")) src = key ".s"
		if (src == "") { print "note: skipping " pick[key] " (no source " key ".c/.S in SRCDIR; stale object?)" > "/dev/stderr"; continue }
		print pick[key] "\t" src "\t" layer_of(src)
	}
}' ) < "$tmp/objects.all" > "$tmp/objects" 2> "$tmp/notes"
nobjects=$(wc -l < "$tmp/objects" | tr -d ' ')

# Sources with no object are only a note (e.g. poll_uring.c without liburing).
awk -F '\t' 'NR == FNR { have[$2] = 1; next } /\.[cSs]$/ && !($0 in have) { print "note: no object for " $0 " in BUILDDIR (not built in this configuration?)" }' \
	"$tmp/objects" "$tmp/sources" >> "$tmp/notes"

: > "$tmp/nm"
: > "$tmp/sym.out"
if [ "$nobjects" -eq 0 ]; then
	echo "$BUILDDIR: [objects] no library objects under $BUILDDIR/{$(echo $LIB_DIRS | tr ' ' ',')} -- build libringo_internal.la first" > "$tmp/sym.out"
else
	while IFS='	' read -r obj src layer; do
		if ! "$NM" -P "$BUILDDIR/$obj" > "$tmp/nm.one" 2> "$tmp/nm.err"; then
			echo "$obj: [objects] nm failed: $(head -n 1 "$tmp/nm.err")" >> "$tmp/sym.out"
			continue
		fi
		awk -v obj="$obj" -v src="$src" -v layer="$layer" 'NF >= 2 { print obj "\t" src "\t" layer "\t" $1 "\t" $2 }' "$tmp/nm.one" >> "$tmp/nm"
	done < "$tmp/objects"

	awk -F '\t' "$AWK_LIB"'
	BEGIN { parse_symbols(ENVIRON["LAYER_SYMBOLS"]); parse_hooks(ENVIRON["HOOK_ALLOW"]); nref = 0; nhook = 0 }
	{
		obj = $1; src = $2; layer = $3; sym = $4; t = $5
		srcof[obj] = src; layerof[obj] = layer
		if (layer == "") { if (!(obj in nolayer)) { nolayer[obj] = 1; print obj ": [no layer] no layer for object " obj " (" src ")" } ; next }
		if (t == "U" || t == "w" || t == "v") { nu++; uobj[nu] = obj; usym[nu] = sym; next }
		# global definitions: text, data, bss, rodata, common, small data, weak, ifunc, unique
		if (t ~ /^[ABCDGIRSTVWiu]$/) { ndef[sym]++; def[sym, ndef[sym]] = obj }
	}
	END {
		for (i = 1; i <= nu; i++) {
			obj = uobj[i]; sym = usym[i]; layer = layerof[obj]
			if (!(sym in ndef)) continue           # libc, liburing, ... : not ours
			nref++
			ok = 0; hook = 0; bad = ""
			for (j = 1; j <= ndef[sym]; j++) {
				d = def[sym, j]; dl = layerof[d]
				if (dl == layer || ((layer, dl) in sym_ok)) { ok = 1; break }
				if ((sym, dl, layer) in hook_ok) { ok = 1; hook = 1; break }
				if (bad == "") bad = d
			}
			if (hook) nhook++
			if (ok) continue
			dl = layerof[bad]
			print srcof[obj] " (" obj ") -> " sym ": [symbol] " layer " may not reference " dl \
				" (" sym " is defined in " srcof[bad] ")"
		}
		print nref " " nhook > "/dev/stderr"
	}' "$tmp/nm" >> "$tmp/sym.out" 2> "$tmp/sym.count"
fi
set -- $(cat "$tmp/sym.count" 2>/dev/null) 0 0
nrefs=$1 nhooks=$2

# ---------------------------------------------------------------- report
sort -u "$tmp/inc.out" > "$tmp/report"
sort -u "$tmp/sym.out" >> "$tmp/report"
cat "$tmp/notes" "$tmp/report"
nviol=$(wc -l < "$tmp/report" | tr -d ' ')
stats="$nsources sources, $nincludes includes, $nobjects objects, $nrefs cross-object references ($nhooks via hook allowlist)"
if [ "$nviol" -gt 0 ]; then
	echo "$me: FAIL: $nviol violation(s); checked $stats"
	exit 1
fi
echo "$me: OK: no violations; checked $stats"
exit 0
