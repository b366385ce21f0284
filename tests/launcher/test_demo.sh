#!/bin/bash
# SPDX-License-Identifier: MIT
# `memshim` with no program: the bundled demo compiles and shows the top allocation sites,
# a leak line and the overflow diagnostic, exits 0, within 30 s.  Run from an install
# prefix (the demo is then compiled into a temporary directory).
# usage: test_demo.sh SOURCE_ROOT LIBMEMSHIM
set -u
src=$1 lib=$2
. "$(dirname "$0")/prefix.sh"
unset LD_PRELOAD ${!MEMSHIM_*}
start=$(date +%s)
out=$(cd "$prefix" && "$memshim" 2>&1); rc=$?
took=$(( $(date +%s) - start ))
check "demo status" 0 $rc
[ "$took" -lt 30 ] && pass || fail "demo took ${took}s"
expect() { grep -q -e "$1" <<<"$out" && pass || fail "demo output lacks /$1/"; }
expect '^\[ Top 10 \]$'
expect '^demo\.c:[0-9]*: size=1[0-9][0-9] KiB, count=5007, average=24 B$'   # new_entry
expect '^Peak traced memory: '
expect '^memshim: leak of 12800 bytes in 200 blocks, allocated at'
expect '^  File "demo\.c", line [0-9]*, in format_line$'
expect '^Debug memory block at address p=0x[0-9a-f]*: API .r.$'
expect '^        at tail+0: 0x00 \*\*\* OUCH$'
expect '^  File "demo\.c", line [0-9]*, in make_label$'
expect '^Fatal memshim error: memshim_debug_free: bad trailing pad byte$'
expect '^demo: indexed 20000 lines'
expect '(exit status 134 = 128 + SIGABRT.)'
# The launcher's "Aborted" job message must not appear; the demo explains instead.
grep -q 'Aborted' <<<"$out" && fail "shell job message in demo output" || pass
[ "$failures" -eq 0 ] || echo "$out"
finish
