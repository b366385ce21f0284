#!/bin/bash
# The README's C API example compiles against memshim.h, links libmemshim and runs.
set -eu
readme=$1 inc=$2 libdir=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$(dirname "$0")/readme_example.sh" "$readme" 'check_readme.sh compiles' >"$tmp/example.c"
[ -s "$tmp/example.c" ] || { echo "example not found in README"; exit 1; }
cc -Wall -Werror -I"$inc" -o "$tmp/example" "$tmp/example.c" -L"$libdir" -lmemshim
out=$(env -u LD_PRELOAD LD_LIBRARY_PATH=$libdir "$tmp/example")
echo "$out"
grep -Eq '^mem allocations: 1, traced: 80[0-9][0-9] bytes \(peak 80[0-9][0-9]\), heap intact$' <<<"$out"
echo "1 passed, 0 failed"
