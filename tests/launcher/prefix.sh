# SPDX-License-Identifier: MIT
# Sourced by the launcher tests: lays out a throw-away install prefix in $prefix, as
# `meson install` would (bin/, lib/<triplet>/, share/memshim/), around the library just
# built, so the tests run the launcher's installed-layout lookup whatever the build dir is
# called.  Needs $src (source root) and $lib (the built libmemshim.so).  Sets $memshim.
prefix=$(mktemp -d "${TMPDIR:-/tmp}/memshim-launcher.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
mkdir -p "$prefix/bin" "$prefix/lib/x86_64-linux-gnu" "$prefix/share/memshim/demo"
cp "$src/scripts/memshim" "$src/scripts/memshim-report" "$prefix/bin/"
ln -s "$src/scripts/memshim_report" "$prefix/share/memshim/memshim_report"
cp "$src/scripts/demo/"*.c "$prefix/share/memshim/demo/"
ln -s "$lib" "$prefix/lib/x86_64-linux-gnu/libmemshim.so"
memshim=$prefix/bin/memshim
lib=$(readlink -f "$lib")
failures=0
passes=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { passes=$((passes + 1)); }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" == "$3" ]; then pass; else fail "$1: expected [$2], got [$3]"; fi; }
finish() { echo "$passes passed, $failures failed"; [ "$failures" -eq 0 ]; exit; }
