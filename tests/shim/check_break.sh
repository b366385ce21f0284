#!/bin/bash
# MEMSHIM_BREAK_SERIALNO=N: without a debugger the program stops with SIGTRAP after printing
# the block's address and backtrace; under gdb, `break memshim_break_serialno` stops there
# with the serial number as an argument and the program's own frames below.
set -u
lib=$1 prog=$2
passes=0 fails=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
err=$(env LD_PRELOAD="$lib" MEMSHIM_MALLOC=debug MEMSHIM_BREAK_SERIALNO=1 "$prog" 2>&1 >/dev/null); rc=$?
[ "$rc" -eq 133 ] && ok || bad "status $rc, want 133 (SIGTRAP)"
grep -q '^memshim: block #1 (MEMSHIM_BREAK_SERIALNO) handed out at p=0x[0-9a-f]*$' <<<"$err" && ok || bad "message: $err"
grep -q '^Current thread 0x[0-9a-f]* (most recent call first):$' <<<"$err" && ok || bad "backtrace heading: $err"
grep -q 'in make_buffer$' <<<"$err" && ok || bad "the backtrace names the allocating function: $err"

if command -v gdb >/dev/null; then
  out=$(timeout 60 gdb -q -batch -nx -ex 'set startup-with-shell off' \
        -ex "set environment LD_PRELOAD $lib" -ex 'set environment MEMSHIM_MALLOC debug' \
        -ex 'set environment MEMSHIM_BREAK_SERIALNO 1' \
        -ex 'set breakpoint pending on' -ex 'break memshim_break_serialno' \
        -ex run -ex 'print serial' -ex bt "$prog" 2>&1)
  grep -q 'Breakpoint 1, memshim_break_serialno' <<<"$out" && ok || bad "gdb did not stop: $out"
  grep -q '^\$1 = 1$' <<<"$out" && ok || bad "serial argument: $out"
  grep -q 'make_buffer' <<<"$out" && ok || bad "gdb backtrace: $out"
else
  echo "gdb not installed: the gdb part is skipped"
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
