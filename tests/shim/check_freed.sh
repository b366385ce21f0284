#!/bin/bash
# Reports about freed blocks (tests/shim/freed.c) name where the block was allocated and
# where it was freed when tracing is on, as ASan and Valgrind do, and say how to get them
# when it is off.
. "$(dirname "$0")/checklib.sh"
lib=$1 freed=$2 mode=$3

# expect BUG FATAL-LINE-PATTERN
expect() {
    env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" MEMSHIM_TRACEMALLOC=8 "$freed" "$1" \
        >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ "$rc" -eq 134 ] || bad "$1: exit status $rc, want 134: $(cat "$tmp/err")"
    grep -q "^Fatal memshim error: memshim_debug_[a-z_]*: $2\$" "$tmp/err" ||
        bad "$1: fatal line, want '$2': $(cat "$tmp/err")"
    # Each heading is followed by its frames; the first is the function that called
    # malloc / free.
    grep -A1 '^Memory block allocated at (most recent call first):$' "$tmp/err" |
        grep -q '^  File ".*freed\.c", line [0-9]*, in make_block$' ||
        bad "$1: allocation traceback missing: $(cat "$tmp/err")"
    grep -A1 '^Memory block freed at (most recent call first):$' "$tmp/err" |
        grep -q '^  File ".*freed\.c", line [0-9]*, in drop_block$' ||
        bad "$1: free traceback missing: $(cat "$tmp/err")"
    # Both come before the fatal line.
    sed -n '/^Fatal memshim error/,$p' "$tmp/err" | grep -q '^Memory block' &&
        bad "$1: tracebacks after the fatal line: $(cat "$tmp/err")"
}

expect double 'double free'
expect write 'write to freed memory'
expect realloc 'realloc of freed memory'
expect interior 'invalid free of an interior pointer'

# Without tracing: the hint, no tracebacks.
env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" "$freed" double >"$tmp/out" 2>"$tmp/err"
grep -q '^Enable MEMSHIM_TRACEMALLOC to get the memory block allocation and free tracebacks$' \
    "$tmp/err" || bad "untraced: hint missing: $(cat "$tmp/err")"
grep -q '^Memory block' "$tmp/err" && bad "untraced: tracebacks printed: $(cat "$tmp/err")"

passed "freed-$mode"
