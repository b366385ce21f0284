#!/bin/bash
# MEMSHIM_TRACEMALLOC wired end to end: leak report and exit status, MEMSHIM_LEAKS and
# MEMSHIM_LEAKS_EXITCODE, the text report, snapshots (JSON, %p in a forked child, on a fatal
# signal, never through a planted symlink), and the debug dump's allocation traceback.
set -u
lib=$1 leaky=$2 overflow=$3 mode=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
passes=0 fails=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" MEMSHIM_TRACEMALLOC=16 "$@"; }

out=$(run "$leaky" 2>"$tmp/err"); rc=$?
[ "$rc" -eq 23 ] && ok || bad "leaks: exit status $rc, want 23"
[ "$out" = done ] && ok || bad "leaks: stdout '$out'"
n=$(grep -c '^memshim: leak of' "$tmp/err")
[ "$n" -eq 3 ] && ok || bad "leaks: $n leak sites reported, want 3: $(cat "$tmp/err")"
grep -q '^memshim: leak of 2000 bytes in 1 block, allocated at' "$tmp/err" && ok || bad "site_b leak line"
grep -q '^memshim: leak of 900 bytes in 3 blocks' "$tmp/err" && ok || bad "site_c leak line"
grep -q '^memshim: leak of 500 bytes in 5 blocks' "$tmp/err" && ok || bad "site_a leak line"
grep -q 'File "[^"]*leaky.c", line [0-9]*, in site_b' "$tmp/err" && ok || bad "leak traceback names site_b"
grep -q '^memshim: leaked 3400 bytes in 9 blocks from 3 allocation sites; still reachable: [0-9]* bytes in [0-9]* blocks$' "$tmp/err" && ok || bad "summary line: $(tail -1 "$tmp/err")"

# Not in malloc mode: there glibc's own arena state (in libc's data segment, a root) points
# into the block carved last, which a conservative scan must call reachable (README: limits).
if [ "$mode" != malloc ]; then
    run "$leaky" last 2>"$tmp/err"; rc=$?
    [ "$rc" -eq 23 ] && grep -q '^memshim: leak of 100 bytes in 1 block, allocated at' "$tmp/err" && ok ||
        bad "leak as the last allocation before exit: rc $rc, stderr: $(cat "$tmp/err")"
fi

run "$leaky" clean >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && ok || bad "clean program: rc $rc, stderr: $(cat "$tmp/err")"
run "$leaky" mapped >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && ok || bad "blocks reachable from the program's own mapping: rc $rc, stderr: $(cat "$tmp/err")"
run "$leaky" stale >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 23 ] && grep -q '^memshim: leak of 100 bytes in 1 block, allocated at' "$tmp/err" && ok ||
    bad "a leak whose only pointer is in freed memory: rc $rc, stderr: $(cat "$tmp/err")"
run "$leaky" threads >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && ok || bad "clean program with joined threads: rc $rc, stderr: $(cat "$tmp/err")"

# A forked child that leaks reports its own leaks and exits 23; the parent sees that.
out=$(run "$leaky" fork 2>"$tmp/err"); rc=$?
grep -q '^child status 23$' <<<"$out" && ok || bad "fork: child leak status: $out"
n=$(grep -Ec '^memshim: leak of (8000 bytes in 4|10000 bytes in 5) blocks' "$tmp/err")
[ "$n" -eq 1 ] && [ "$rc" -eq 23 ] && ok || bad "fork: $n reports of the child's own leak (want 1), parent rc $rc"

MEMSHIM_LEAKS=0 run "$leaky" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && ok || bad "MEMSHIM_LEAKS=0: rc $rc"
MEMSHIM_LEAKS_EXITCODE=0 run "$leaky" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && grep -q 'leak of' "$tmp/err" && ok || bad "MEMSHIM_LEAKS_EXITCODE=0: rc $rc"

MEMSHIM_LEAKS=0 MEMSHIM_REPORT="$tmp/report.txt" run "$leaky" >/dev/null 2>&1
head -1 "$tmp/report.txt" | grep -qx '\[ Top 10 \]' && ok || bad "report heading"
grep -q 'leaky.c:[0-9]*: size=2000 B, count=1, average=2000 B' "$tmp/report.txt" && ok || bad "report line: $(cat "$tmp/report.txt")"
grep -q '^Peak traced memory: ' "$tmp/report.txt" && ok || bad "report peak line"

MEMSHIM_LEAKS=0 MEMSHIM_SNAPSHOT="$tmp/snap-%p.json" run "$leaky" fork >"$tmp/out" 2>&1
n=$(ls "$tmp"/snap-*.json 2>/dev/null | wc -l)
[ "$n" -eq 2 ] && ok || bad "fork: $n snapshot files, want 2 (parent and child)"
for f in "$tmp"/snap-*.json; do
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format"]=="memshim-snapshot" and d["traces"]' "$f" \
    && ok || bad "snapshot $f is not a valid snapshot"
done
rm -f "$tmp"/snap-*.json

MEMSHIM_LEAKS=0 MEMSHIM_SNAPSHOT="$tmp/crash.json" run "$leaky" crash >/dev/null 2>&1; rc=$?
[ "$rc" -eq $((128 + 11)) ] && ok || bad "crash: status $rc, want 139 (SIGSEGV)"
/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/crash.json" 2>/dev/null \
  && ok || bad "no valid snapshot after SIGSEGV"

echo precious >"$tmp/target"; ln -s "$tmp/target" "$tmp/link.json"
MEMSHIM_LEAKS=0 MEMSHIM_SNAPSHOT="$tmp/link.json" run "$leaky" >/dev/null 2>"$tmp/err"
[ "$(cat "$tmp/target")" = precious ] && ok || bad "the snapshot followed a planted symlink"
grep -q 'symbolic link' "$tmp/err" && ok || bad "no message about the symlink: $(cat "$tmp/err")"

if [[ $mode == *debug* ]]; then
  run "$overflow" 2>"$tmp/err"; rc=$?
  [ "$rc" -eq 134 ] && ok || bad "overflow: status $rc, want 134"
  grep -A3 '^Memory block allocated at (most recent call first):$' "$tmp/err" |
    grep -q '^  File "[^"]*overflow.c", line [0-9]*, in make_buffer$' && ok || bad "dump traceback: $(cat "$tmp/err")"
  grep -q '^Fatal memshim error: memshim_debug_free: bad trailing pad byte$' "$tmp/err" && ok || bad "fatal line"
  grep -q '^Current thread 0x[0-9a-f]* (most recent call first):$' "$tmp/err" && ok || bad "current thread backtrace"
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
