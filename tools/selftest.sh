#!/bin/sh
# selftest.sh — checks the checkers on the fixture trees under fixtures/.
#   fixtures/layers     a fake library tree with known violations (and allowed hooks)
#   fixtures/layers-ok  a tree with none
#   fixtures/atomics    implicit seq_cst calls mixed with comments, strings and _explicit calls
# Builds the layer fixtures with $CC -c into a temporary BUILDDIR laid out like libtool's
# (<dir>/.libs/libringo_internal_la-<name>.o, chan/ without .libs to exercise the fallback,
# plus a stale object whose source is gone), runs the checks and compares with the expected
# output. Exits 0 when the checks behave, 1 otherwise. POSIX sh + awk + grep + diff.
set -u
LC_ALL=C; export LC_ALL   # byte order for sort, plain ASCII for awk
here=$(cd "$(dirname "$0")" && pwd)
fx=$here/fixtures
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-selftest.XXXXXX") || exit 1
case $tmp in /*) ;; *) tmp=$PWD/$tmp;; esac
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# build TREE BUILDDIR: every .c into the libtool-style path; chan/ into the fallback path
build() {
	tree=$1 b=$2
	mkdir -p "$b" && : > "$b/config.h"
	(cd "$tree" && find . -name '*.c' | sed 's|^\./||') | while IFS= read -r src; do
		dir=${src%/*} name=${src##*/} name=${name%.c}
		case $dir in chan) odir=$b/$dir ;; *) odir=$b/$dir/.libs ;; esac
		mkdir -p "$odir"
		$CC -c -fPIC -fvisibility=hidden -I"$b" -I"$tree/include" -I"$tree" \
			"$tree/$src" -o "$odir/libringo_internal_la-$name.o" || { echo "compile failed: $src" >&2; touch "$b/.failed"; }
	done
	if [ -e "$b/.failed" ]; then fail "building the fixture $tree"; else pass "fixture $(basename "$tree") builds"; fi
}

# run NAME EXPECTED-RC CMD...: output into $tmp/NAME.out, check the exit code
run() {
	name=$1 want=$2; shift 2
	"$@" > "$tmp/$name.out" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ]; then pass "$name exits $rc"; else fail "$name exits $rc, want $want"; sed 's/^/    | /' "$tmp/$name.out"; fi
}
# same NAME EXPECTED-FILE: the violation lines (no notes, no summary) must be exactly these
same() {
	grep -v -e '^note: ' -e '^check-[a-z]*: ' "$tmp/$1.out" > "$tmp/$1.got"
	if diff "$2" "$tmp/$1.got" > "$tmp/$1.diff"; then pass "$1 reports exactly the expected lines"
	else fail "$1 output differs from the expected (- expected, + got):"; sed 's/^/    | /' "$tmp/$1.diff"; fi
}
has() { if grep -F -e "$2" "$tmp/$1.out" > /dev/null; then pass "$1: $3"; else fail "$1: $3 (no line with: $2)"; fi; }
hasnt() { if grep -F -e "$2" "$tmp/$1.out" > /dev/null; then fail "$1: $3 (found: $2)"; else pass "$1: $3"; fi; }

# ------------------------------------------------------------------ layers, with violations
build "$fx/layers" "$tmp/b-layers"
# a stale object (source moved away): must be skipped with a note, not checked
printf 'int io_submit(int);\nint gone(void) { return io_submit(0); }\n' > "$tmp/gone.c"
$CC -c -fPIC "$tmp/gone.c" -o "$tmp/b-layers/kernel_iface/.libs/libringo_internal_la-gone.o"
# a leftover non-.libs object next to a .libs one: the .libs one wins (no duplicate report)
cp "$tmp/b-layers/sched/.libs/libringo_internal_la-core_b.o" "$tmp/b-layers/sched/libringo_internal_la-core_b.o"

run layers 1 sh "$here/check-layers.sh" "$fx/layers" "$tmp/b-layers"
cat > "$tmp/layers.want" <<'EOF'
sched/core_a.c:6: [include] core may not include "sched/io/io.h" -- core may include: kernel_iface/*.h sched/*.h include/ringo.h ringo.h config.h
sched/debug/dump.c:4: [include] debug may not include "sched/io/io.h" -- debug may include: kernel_iface/*.h sched/*.h include/ringo.h ringo.h config.h sched/debug/*.h
sched/io/io.c:4: [include] io may not include "sched/debug/debug.h" -- io may include: kernel_iface/*.h sched/*.h include/ringo.h ringo.h config.h sched/io/*.h
sched/newdir/stray.c:1: [no layer] no layer for sched/newdir/stray.c (add its folder to LAYER_FILES)
kernel_iface/kfix.c (kernel_iface/.libs/libringo_internal_la-kfix.o) -> core_helper: [symbol] kernel_iface may not reference core (core_helper is defined in sched/core_a.c)
sched/core_b.c (sched/.libs/libringo_internal_la-core_b.o) -> io_submit: [symbol] core may not reference io (io_submit is defined in sched/io/io.c)
sched/io/io.c (sched/io/.libs/libringo_internal_la-io.o) -> dbg_dump: [symbol] io may not reference debug (dbg_dump is defined in sched/debug/dump.c)
sched/newdir/.libs/libringo_internal_la-stray.o: [no layer] no layer for object sched/newdir/.libs/libringo_internal_la-stray.o (sched/newdir/stray.c)
EOF
same layers "$tmp/layers.want"
has layers 'check-layers: FAIL: 8 violation(s)' "summary counts 8 violations"
has layers 'note: skipping kernel_iface/.libs/libringo_internal_la-gone.o' "stale object skipped with a note"
has layers '(2 via hook allowlist)' "sched_poller and sched_debug_hooks counted as allowed hooks"
hasnt layers '-> sched_poller' "allowed hook sched_poller not reported"
hasnt layers '-> sched_debug_hooks' "allowed hook sched_debug_hooks not reported"
hasnt layers 'chan/chan.h' "commented-out #include ignored"
hasnt layers 'sched/debug/debug.h" -- core' "commented-out #include ignored (2)"
has layers '7 objects' "chan object found via the non-.libs fallback"

# ------------------------------------------------------------------ layers, clean tree
build "$fx/layers-ok" "$tmp/b-ok"
run layers-ok 0 sh "$here/check-layers.sh" "$fx/layers-ok" "$tmp/b-ok"
has layers-ok 'check-layers: OK: no violations' "clean tree passes"
has layers-ok '(1 via hook allowlist)' "hook reference counted"
# ... and the hook is only allowed for the listed symbol: rename it and it must fail
mkdir -p "$tmp/t-hook" && cp -R "$fx/layers-ok/." "$tmp/t-hook/"
sed 's/sched_poller/sched_other/g' "$fx/layers-ok/sched/s.c" > "$tmp/t-hook/sched/s.c"
sed 's/sched_poller/sched_other/g' "$fx/layers-ok/sched/io/p.c" > "$tmp/t-hook/sched/io/p.c"
build "$tmp/t-hook" "$tmp/b-hook"
run layers-hook 1 sh "$here/check-layers.sh" "$tmp/t-hook" "$tmp/b-hook"
has layers-hook '-> sched_other: [symbol] core may not reference io' "non-allowlisted symbol reported"

# ------------------------------------------------------------------ layers, nothing built
mkdir -p "$tmp/b-empty"
run layers-empty 1 sh "$here/check-layers.sh" "$fx/layers-ok" "$tmp/b-empty"
has layers-empty 'no library objects' "empty BUILDDIR is an error"
run layers-usage 2 sh "$here/check-layers.sh" "$fx/layers-ok"

# ------------------------------------------------------------------ atomics
run atomics 1 sh "$here/check-atomics.sh" "$fx/atomics"
cat > "$tmp/atomics.want" <<'EOF'
chan/c.c:6: atomic_fetch_xor(&y, 1u)  [implicit seq_cst: use atomic_fetch_xor_explicit]
chan/c.c:6: atomic_fetch_and(&y, 2u)  [implicit seq_cst: use atomic_fetch_and_explicit]
chan/c.c:6: atomic_fetch_sub(&y, 1u)  [implicit seq_cst: use atomic_fetch_sub_explicit]
sched/a.c:20: atomic_store(&x, 3)  [implicit seq_cst: use atomic_store_explicit]
sched/a.c:21: atomic_load(&x)  [implicit seq_cst: use atomic_load_explicit]
sched/a.c:21: atomic_fetch_or(&x, 4)  [implicit seq_cst: use atomic_fetch_or_explicit]
sched/a.c:22: atomic_compare_exchange_weak(&x, &e, ...  [implicit seq_cst: use atomic_compare_exchange_weak_explicit]
sched/a.c:24: atomic_flag_test_and_set(&f)  [implicit seq_cst: use atomic_flag_test_and_set_explicit]
sched/a.c:25: atomic_flag_clear(&f)  [implicit seq_cst: use atomic_flag_clear_explicit]
sched/sub/b.h:3: atomic_exchange(p, 0)  [implicit seq_cst: use atomic_exchange_explicit]
EOF
same atomics "$tmp/atomics.want"
has atomics 'check-atomics: FAIL: 10 implicit seq_cst atomic call(s) in 3 file(s) (4 sources checked)' "summary"
# every HIT marker in the fixture is one report
want=$(grep -o 'HIT' "$fx/atomics/sched/a.c" "$fx/atomics/sched/sub/b.h" "$fx/atomics/chan/c.c" | wc -l | tr -d ' ')
[ "$want" -eq 10 ] && pass "fixture has 10 HIT markers" || fail "fixture has $want HIT markers, want 10"
run atomics-ok 0 sh "$here/check-atomics.sh" "$fx/layers-ok"
has atomics-ok 'check-atomics: OK' "clean tree passes"

echo
if [ "$fails" -eq 0 ]; then echo "selftest: OK: all checks behave"; exit 0; fi
echo "selftest: FAIL: $fails check(s) misbehave"
exit 1
