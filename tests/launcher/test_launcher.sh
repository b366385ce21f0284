#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/memshim from an install prefix: each option sets the right variable, exit
# statuses pass through (128+signal), LD_PRELOAD keeps its entries behind memshim, --html
# writes a report with SVG in it, bad options exit 2 with one line and a hint.
# usage: test_launcher.sh SOURCE_ROOT LIBMEMSHIM PROBE
set -u
src=$1 lib=$2 probe=$3
. "$(dirname "$0")/prefix.sh"
unset LD_PRELOAD ${!MEMSHIM_*}

# env OPTIONS...: the probe's MEMSHIM_* variables, sorted, without LD_PRELOAD.
env_of() { "$memshim" "$@" -- "$probe" env | grep '^MEMSHIM_' | sort | tr '\n' ' '; }

check "no option" "" "$(env_of)"
check "--malloc" "MEMSHIM_MALLOC=malloc_debug " "$(env_of --malloc=malloc_debug)"
check "--debug" "MEMSHIM_MALLOC=debug " "$(env_of --debug)"
check "--stats" "MEMSHIM_MALLOCSTATS=1 " "$(env_of --stats 2>/dev/null)"
check "--arena-size" "MEMSHIM_ARENA_SIZE=4M " "$(env_of --arena-size=4M)"
check "--quarantine" "MEMSHIM_QUARANTINE=64M " "$(env_of --quarantine=64M)"
check "--break-serial" "MEMSHIM_BREAK_SERIALNO=123456 " "$(env_of --break-serial=123456)"
check "--trace" "MEMSHIM_REPORT=- MEMSHIM_TRACEMALLOC=16 " "$(env_of --trace 2>/dev/null)"
check "--trace=5" "MEMSHIM_REPORT=- MEMSHIM_TRACEMALLOC=5 " "$(env_of --trace=5 2>/dev/null)"
check "--leaks" "MEMSHIM_LEAKS=1 MEMSHIM_TRACEMALLOC=16 " "$(env_of --leaks 2>/dev/null)"
check "--no-leaks" "MEMSHIM_LEAKS=0 " "$(env_of --no-leaks)"
check "--leaks-exitcode" "MEMSHIM_LEAKS_EXITCODE=7 " "$(env_of --leaks-exitcode=7)"
tmp=$prefix/out; mkdir -p "$tmp"
check "--snapshot" "MEMSHIM_SNAPSHOT=$tmp/s-%p.json MEMSHIM_TRACEMALLOC=16 " \
      "$(env_of --snapshot="$tmp/s-%p.json")"
check "--report" "MEMSHIM_REPORT=$tmp/r.txt MEMSHIM_TRACEMALLOC=16 " \
      "$(env_of --report="$tmp/r.txt")"
check "--trace=3 --snapshot" "MEMSHIM_SNAPSHOT=$tmp/s.json MEMSHIM_TRACEMALLOC=3 " \
      "$(env_of --trace=3 --snapshot="$tmp/s.json")"
check "--debug --no-leaks --trace=2" "MEMSHIM_LEAKS=0 MEMSHIM_MALLOC=debug MEMSHIM_REPORT=- MEMSHIM_TRACEMALLOC=2 " \
      "$(env_of --debug --no-leaks --trace=2 2>/dev/null)"
# The variables really reach the library: --report writes the top-10 file.
"$memshim" --report="$tmp/top.txt" "$probe" alloc >/dev/null 2>&1
grep -q '^\[ Top 10 \]' "$tmp/top.txt" 2>/dev/null && pass || fail "--report wrote no [ Top 10 ] report"
# The launcher's own checks run nothing under the options: one run, one snapshot.
"$memshim" --snapshot="$tmp/one-%p.json" --report="$tmp/one.txt" "$probe" exit 0 2>/dev/null
check "snapshots of one run" 1 "$(ls "$tmp" | grep -c '^one-[0-9]*\.json$')"
# --trace alone prints the summary on stderr (top sites and current/peak).
out=$("$memshim" --trace "$probe" alloc 2>&1 >/dev/null)
grep -q 'probe.c:[0-9]*: size=' <<<"$out" && grep -q '^Peak traced memory:' <<<"$out" && pass ||
  fail "--trace printed no top sites / peak: $out"

# LD_PRELOAD: memshim first, what was there kept (in order), nothing added when unset.
check "LD_PRELOAD unset" "LD_PRELOAD=$lib" "$("$memshim" "$probe" env | grep '^LD_PRELOAD=')"
other=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
[ -f "$other" ] || other=/lib/x86_64-linux-gnu/libc.so.6
check "LD_PRELOAD kept" "LD_PRELOAD=$lib:$other" \
      "$(LD_PRELOAD=$other "$memshim" "$probe" env | grep '^LD_PRELOAD=')"
check "LD_PRELOAD two kept" "LD_PRELOAD=$lib:$other:/nonexistent.so" \
      "$(LD_PRELOAD="$other:/nonexistent.so" "$memshim" "$probe" env 2>/dev/null | grep '^LD_PRELOAD=')"

# Exit status: the program's own, 128+signal for a death by signal.
for n in 0 3 77; do
  "$memshim" "$probe" exit $n; check "exit $n" $n $?
done
"$memshim" "$probe" kill SEGV 2>/dev/null; check "SIGSEGV" 139 $?
"$memshim" "$probe" kill ABRT 2>/dev/null; check "SIGABRT" 134 $?
"$memshim" --html="$tmp/x.html" "$probe" kill SEGV 2>/dev/null; check "--html SIGSEGV" 139 $?
"$memshim" --html="$tmp/y.html" "$probe" exit 5 2>/dev/null; check "--html exit 5" 5 $?
"$memshim" /nonexistent/program 2>/dev/null; check "missing program" 127 $?

# --html: the report exists, is the HTML page with its SVG charts, and names our site.
rm -f "$tmp/r.html"
"$memshim" --html="$tmp/r.html" "$probe" alloc >/dev/null 2>&1; check "--html status" 0 $?
grep -q '<svg' "$tmp/r.html" 2>/dev/null && pass || fail "--html: no <svg in $tmp/r.html"
grep -q 'probe.c' "$tmp/r.html" 2>/dev/null && pass || fail "--html: probe.c missing from the report"
# ... and its own LD_PRELOAD does not leak into memshim-report (it would trace Python).
[ -z "$(ls "$tmp" | grep -v -e '\.html$' -e '\.txt$' -e '\.json$')" ] && pass || fail "stray files: $(ls "$tmp")"

# Bad options and values: exit 2, one line naming the problem, then the hint.
bad() {
  local err
  err=$("$memshim" "$@" "$probe" exit 0 2>&1 >/dev/null); local rc=$?
  check "$* status" 2 $rc
  [ "$(wc -l <<<"$err")" -eq 2 ] && grep -q "^memshim: " <<<"$err" &&
    grep -q -- "--help" <<<"$err" && pass || fail "$*: message [$err]"
}
bad --bogus
bad -x
bad --malloc=fast
bad --malloc=
bad --trace=abc
bad --trace=70000
bad --arena-size=3M
bad --quarantine=lots
bad --break-serial=0
bad --leaks-exitcode=300
bad --stats=1
bad --snapshot
bad --html=
err=$("$memshim" --debug 2>&1 >/dev/null); check "options without a program" 2 $?
grep -q "no PROGRAM" <<<"$err" && pass || fail "options without a program: [$err]"
err=$("$memshim" --malloc=fast "$probe" exit 0 2>&1 >/dev/null)
grep -q "^memshim: --malloc=fast: invalid MEMSHIM_MALLOC value 'fast'" <<<"$err" && pass ||
  fail "--malloc=fast message: $err"

# --help: exit 0, every option of the synopsis explained.
out=$("$memshim" --help); check "--help status" 0 $?
for opt in --debug --malloc= --trace --stats --leaks --no-leaks --leaks-exitcode= --arena-size= \
           --quarantine= --break-serial= --snapshot= --report= --html= example:; do
  grep -q -e "$opt" <<<"$out" && pass || fail "--help does not mention $opt"
done
finish
