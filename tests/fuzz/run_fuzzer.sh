#!/bin/sh
# Runs one libFuzzer target over its seed corpus: run_fuzzer.sh FUZZER SEED_DIR WORK_DIR
# [libFuzzer options...].  New inputs go to WORK_DIR (created), never into the seeds in
# the source tree; a crash leaves its input in WORK_DIR/crash-* and the status non-zero.
set -eu
fuzzer=$1 seeds=$2 work=$3
shift 3
mkdir -p "$work"
export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
exec "$fuzzer" -artifact_prefix="$work/" -print_final_stats=1 "$@" "$work" "$seeds"
