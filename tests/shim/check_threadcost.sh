#!/bin/bash
# A thread costs about what it costs without memshim: at most 4 KiB of resident memory more
# (its cache's bins).  Static TLS is what broke this before: glibc clears every preloaded
# library's TLS in every new thread, and 12 KiB of it made each thread cost 20 KiB, not 8.
set -u
lib=$1 prog=$2; shift 2
plain=$("$prog") || { echo "FAIL: plain run"; exit 1; }
shim=$(env LD_PRELOAD="$lib" "$@" "$prog") || { echo "FAIL: run under memshim ($*)"; exit 1; }
if [ "$shim" -gt $((plain + 4)) ]; then
    echo "FAIL: a thread costs $shim KiB under memshim ($*), $plain KiB without"
    exit 1
fi
echo "threadcost ($*): $shim KiB a thread, $plain KiB without: ok"
