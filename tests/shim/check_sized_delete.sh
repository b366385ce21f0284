#!/bin/bash
# Sized operator delete of the wrong size (tests/shim/sized_delete.cpp): in the debug modes
# the diagnostic and SIGABRT; correct sized, array and aligned deletes pass in every mode.
. "$(dirname "$0")/checklib.sh"
lib=$1 prog=$2 mode=$3
run() { env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" "$prog" "$@" >"$tmp/out" 2>"$tmp/err"; }

run ok; rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "done 100" ] && [ ! -s "$tmp/err" ] ||
    bad "correct deletes: rc $rc, stdout $(cat "$tmp/out"), stderr $(cat "$tmp/err")"
run; rc=$?
case $mode in
*debug)
    [ "$rc" -eq 134 ] || bad "wrong size: exit status $rc, want 134"
    grep -q '^Fatal memshim error: memshim_debug_free: sized delete of 4 bytes, but 40 bytes were allocated$' "$tmp/err" ||
        bad "fatal line: $(cat "$tmp/err")"
    grep -q "^Debug memory block at address p=0x[0-9a-f]*: API 'n'$" "$tmp/err" ||
        bad "dump heading: $(cat "$tmp/err")"
    grep -q '^    operator delete was told the block holds 4 bytes: the object is deleted$' "$tmp/err" ||
        bad "explanation: $(cat "$tmp/err")" ;;
*)
    # Not a debug mode: nothing is checked, the program runs to its end.
    [ "$rc" -eq 0 ] || bad "wrong size outside the debug modes: rc $rc: $(cat "$tmp/err")" ;;
esac
passed "sized-delete-$mode"
