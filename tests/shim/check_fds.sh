#!/bin/bash
# memshim takes none of the program's low file descriptors in any mode, and none at all in
# the modes that do not trace: libunwind's pipe (opened when it first initialises, kept
# open) waits for the first stack walk and lands at 960 or above (hooks/unwind_lib.c), so
# a program's first open() still returns 3 and its descriptor listing is what it is without
# memshim (CPython's test_subprocess and test_posix failed on two extra ones at 3 and 4).
set -u
lib=$1
prog=$2
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Descriptors the caller left open (meson, a terminal) are the same in both runs.
want=$("$prog") || bad "plain run failed"
grep -q '^first open: ' <<<"$want" || bad "plain run printed: $want"
for setting in MEMSHIM_MALLOC=pymalloc MEMSHIM_MALLOC=malloc MEMSHIM_MALLOC=debug \
               MEMSHIM_MALLOC=malloc_debug MEMSHIM_MALLOC=pymalloc_debug; do
    got=$(env $setting LD_PRELOAD="$lib" "$prog") || bad "$setting: run failed"
    [ "$got" = "$want" ] || bad "$setting: got '$got', want '$want'"
done
for setting in "MEMSHIM_TRACEMALLOC=8 MEMSHIM_LEAKS=0" \
               "MEMSHIM_MALLOC=debug MEMSHIM_TRACEMALLOC=8 MEMSHIM_LEAKS=0"; do
    got=$(env $setting LD_PRELOAD="$lib" "$prog") || bad "$setting: run failed"
    [ "$(head -2 <<<"$got")" = "$(head -2 <<<"$want")" ] \
        || bad "$setting: got '$got', want '$want' below 64"
done
# The pipe is still there for libunwind: at the mark (960, or half a soft limit below
# 1024) and closed on exec (O_CLOEXEC, octal 02000000, in the flags).
soft=$(ulimit -n)
mark=960
[ "$soft" != unlimited ] && [ "$soft" -lt 1024 ] && mark=$((soft / 2))
info=$(env MEMSHIM_TRACEMALLOC=8 MEMSHIM_LEAKS=0 LD_PRELOAD="$lib" \
       bash -c "readlink /proc/\$\$/fd/$mark; grep flags /proc/\$\$/fdinfo/$mark")
grep -q '^pipe:' <<<"$info" && grep -Eq 'flags:[[:space:]]+02[0-7]{6}$' <<<"$info" \
    || bad "no close-on-exec libunwind pipe at $mark in a traced bash: $info"

[ $fails -eq 0 ] && echo "file descriptors ok"
exit $((fails != 0))
