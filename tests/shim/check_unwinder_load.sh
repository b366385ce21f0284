#!/bin/bash
# libunwind (and liblzma, which it needs) are loaded only by the modes that walk stacks:
# libmemshim.so does not name them as dependencies, a default-mode program never maps them,
# a debug or traced one does and still gets its backtraces (check_trace.sh, the golden
# tests).  What a default-mode program maps it pays for in resident memory (issue 2).
set -u
lib=$1
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

needed=$(readelf -dW "$lib" | grep NEEDED)
grep -Eq 'libunwind|liblzma' <<<"$needed" && bad "libmemshim.so needs: $needed"

maps() { env LD_PRELOAD="$lib" "$@" cat /proc/self/maps; }
for mode in pymalloc malloc; do
    m=$(maps MEMSHIM_MALLOC=$mode) || bad "$mode: cat failed"
    grep -q libmemshim <<<"$m" || bad "$mode: libmemshim.so not mapped (test broken?)"
    grep -Eq 'libunwind|liblzma' <<<"$m" && bad "$mode maps libunwind: $(grep -E 'libunwind|liblzma' <<<"$m")"
done
for setting in MEMSHIM_MALLOC=debug MEMSHIM_MALLOC=malloc_debug "MEMSHIM_TRACEMALLOC=4 MEMSHIM_LEAKS=0"; do
    m=$(maps $setting) || bad "$setting: cat failed"
    grep -q 'libunwind\.so' <<<"$m" || bad "$setting does not map libunwind"
done

[ $fails -eq 0 ] && echo "unwinder loading ok"
exit $((fails != 0))
