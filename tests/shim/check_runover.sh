#!/bin/bash
# A write running over one block into the next block's header (tests/shim/runover.c):
# the free of the second block aborts with a dump that names the first block, and when the
# damaged header is glibc's chunk header, the report says so instead of glibc crashing.
. "$(dirname "$0")/checklib.sh"
lib=$1 runover=$2 mode=$3

# expect SIZE PAST FATAL-LINE-PATTERN [freed]
expect() {
    env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" MEMSHIM_TRACEMALLOC=4 MEMSHIM_QUARANTINE=4096 \
        "$runover" "$1" "$2" ${4:-} >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -eq 77 ]; then
        echo "size $1: no two adjacent blocks, skipped"
        return
    fi
    [ "$rc" -eq 134 ] || bad "size $1 past $2: exit status $rc, want 134: $(cat "$tmp/err")"
    grep -q "^Fatal memshim error: memshim_debug_[a-z]*: $3\$" "$tmp/err" ||
        bad "size $1 past $2: fatal line, want '$3': $(cat "$tmp/err")"
    grep -q '^    The block in front of it, p=0x[0-9a-f]*, has bad trailing pad bytes too:$' "$tmp/err" ||
        bad "size $1 past $2: culprit not named: $(cat "$tmp/err")"
    # The culprit's own allocation traceback follows the paragraph that names it.
    sed -n '/The block in front of it/,$p' "$tmp/err" | grep -q 'in make_culprit$' ||
        bad "size $1 past $2: culprit's traceback missing: $(cat "$tmp/err")"
    if [ "$3" = 'bad C library chunk header' ]; then
        grep -q 'giving the block back would crash the C library' "$tmp/err" ||
            bad "size $1 past $2: the damaged chunk header is not described: $(cat "$tmp/err")"
    fi
}

# Past the 16-byte trailer, 8 more bytes reach glibc's size word in front of the next
# chunk (blocks of 40 and 1000 bytes fill their chunks exactly); "all" reaches our header.
if [ "$mode" = malloc_debug ]; then
    expect 40 24 'bad C library chunk header'
fi
expect 40 all 'bad ID: Allocated using API .A., verified using API .r.'
# Into a freed block's header: found when it leaves the quarantine, the culprit named.
expect 40 all 'write to freed memory' freed
expect 1000 24 'bad C library chunk header'
passed "runover-$mode"
