#!/bin/bash
# A library keeping operator new/delete to itself (tests/shim/ownnew.c): blocks crossing
# between it and memshim's operators are no error, in every mode; without it, or once it is
# unloaded, malloc then delete is still reported as a bad ID in the debug modes.
. "$(dirname "$0")/checklib.sh"
lib=$1 prog=$2 dso=$3 mode=$4
run() { env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" "$prog" "$dso" "$1" >"$tmp/out" 2>"$tmp/err"; }

run cross; rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = done ] && [ ! -s "$tmp/err" ] ||
    bad "cross: rc $rc, stdout $(cat "$tmp/out"), stderr $(cat "$tmp/err")"
for how in plain closed; do
    run $how; rc=$?
    case $mode in
    *debug)
        [ "$rc" -eq 134 ] || bad "$how: exit status $rc, want 134: $(cat "$tmp/err")"
        grep -q "^Fatal memshim error: memshim_debug_free: bad ID: Allocated using API 'r', verified using API 'n'$" "$tmp/err" ||
            bad "$how: fatal line: $(cat "$tmp/err")" ;;
    *)
        [ "$rc" -eq 0 ] || bad "$how outside the debug modes: rc $rc: $(cat "$tmp/err")" ;;
    esac
done
passed "ownnew-$mode"
