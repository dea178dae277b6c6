#!/bin/sh
# check-atomics.sh SRCDIR
#
# Fails on any implicit seq_cst C11 atomic call in the library sources (SRCDIR/sched, chan,
# kernel_iface, recursively; *.c and *.h): the generic functions without the _explicit suffix.
# Every atomic operation in ringo names its memory order, so a reader (and TSan) can tell the
# intended ordering; write atomic_load_explicit(&x, memory_order_seq_cst) if seq_cst is meant.
# Text inside /* */ and // comments, string literals and character constants is ignored.
# Prints file:line: call for each hit, a one-line summary; exits 1 on any hit, 0 otherwise.
# POSIX sh + awk + find + sort only (no python).

# ============================== THE RULES (edit here) ==============================
LIB_DIRS='kernel_iface sched chan'
# the implicit-seq_cst generic functions (C11 7.17); a call is NAME followed by "("
IMPLICIT='atomic_load atomic_store atomic_exchange
	atomic_compare_exchange_strong atomic_compare_exchange_weak
	atomic_fetch_add atomic_fetch_sub atomic_fetch_or atomic_fetch_and atomic_fetch_xor
	atomic_flag_test_and_set atomic_flag_clear'
# ====================================================================================

set -u
LC_ALL=C; export LC_ALL   # byte order for sort, plain ASCII for awk
me=check-atomics
if [ $# -ne 1 ]; then
	echo "usage: $0 SRCDIR" >&2
	exit 2
fi
SRCDIR=$1
[ -d "$SRCDIR" ] || { echo "$me: SRCDIR '$SRCDIR' is not a directory" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-atomics.XXXXXX") || exit 2
case $tmp in /*) ;; *) tmp=$PWD/$tmp;; esac
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

: > "$tmp/sources"
for d in $LIB_DIRS; do
	[ -d "$SRCDIR/$d" ] || continue
	(cd "$SRCDIR" && find "$d" -type f \( -name '*.c' -o -name '*.h' \)) >> "$tmp/sources"
done
sort -o "$tmp/sources" "$tmp/sources"
nsources=$(wc -l < "$tmp/sources" | tr -d ' ')

export IMPLICIT
(cd "$SRCDIR" && awk -v list="$tmp/sources" '
# Blank out comments, string literals and character constants (kept: code and line numbers).
# State survives across lines for /* */ and for backslash-continued // comments and strings.
function strip(line,    out, i, n, c, c2) {
	out = ""; n = length(line); i = 1
	while (i <= n) {
		c = substr(line, i, 1); c2 = substr(line, i, 2)
		if (st == "block") {
			if (c2 == "*/") { st = ""; out = out "  "; i += 2 } else { out = out " "; i++ }
		} else if (st == "line") {
			out = out " "; i++
		} else if (st == "str" || st == "chr") {
			if (c == "\\") { out = out "  "; i += 2 }
			else if ((st == "str" && c == "\"") || (st == "chr" && c == "\047")) { st = ""; out = out " "; i++ }
			else { out = out " "; i++ }
		} else if (c2 == "/*") { st = "block"; out = out "  "; i += 2
		} else if (c2 == "//") { st = "line"; out = out "  "; i += 2
		} else if (c == "\"") { st = "str"; out = out " "; i++
		} else if (c == "\047") { st = "chr"; out = out " "; i++
		} else { out = out c; i++ }
	}
	# a // comment ends at the newline unless the line ends in a backslash; so do literals
	if (st == "line" && substr(line, n, 1) != "\\") st = ""
	if ((st == "str" || st == "chr") && substr(line, n, 1) != "\\") st = ""
	return out
}
BEGIN {
	n = split(ENVIRON["IMPLICIT"], names, " ")
	alt = ""
	for (k = 1; k <= n; k++) { gsub(/[ \t\n]/, "", names[k]); if (names[k] != "") alt = alt (alt == "" ? "" : "|") names[k] }
	re = "(^|[^A-Za-z0-9_])(" alt ")[ \t]*\\("
	hits = 0
	while ((getline file < list) > 0) {
		st = ""; lineno = 0
		while ((getline raw < file) > 0) {
			lineno++
			code = strip(raw)
			while (match(code, re)) {
				call = substr(code, RSTART, RLENGTH)
				sub(/^[^A-Za-z_]/, "", call); sub(/[ \t]*\($/, "", call)
				# the call text: from the name to its closing parenthesis (or the end of the line)
				rest = substr(code, RSTART + RLENGTH); depth = 1; text = call "("
				for (j = 1; j <= length(rest) && depth > 0; j++) {
					c = substr(rest, j, 1); text = text c
					if (c == "(") depth++; else if (c == ")") depth--
				}
				if (depth > 0) { sub(/[ \t]+$/, "", text); text = text " ..." }
				gsub(/[ \t]+/, " ", text)
				print file ":" lineno ": " text "  [implicit seq_cst: use " call "_explicit]"
				hits++
				code = substr(code, RSTART + RLENGTH)
			}
		}
		close(file)
	}
	print hits > "/dev/stderr"
}' ) > "$tmp/out" 2> "$tmp/count"

cat "$tmp/out"
nhits=$(tail -n 1 "$tmp/count" 2>/dev/null)
case $nhits in ''|*[!0-9]*) cat "$tmp/count" >&2; echo "$me: FAIL: scan failed"; exit 1;; esac
if [ "$nhits" -gt 0 ]; then
	nfiles=$(cut -d: -f1 "$tmp/out" | sort -u | wc -l | tr -d ' ')
	echo "$me: FAIL: $nhits implicit seq_cst atomic call(s) in $nfiles file(s) ($nsources sources checked)"
	exit 1
fi
echo "$me: OK: no implicit seq_cst atomic calls ($nsources sources checked)"
exit 0
