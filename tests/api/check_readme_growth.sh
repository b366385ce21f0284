#!/bin/bash
# The README's "what grows" example: compiled against memshim.h, linked with libmemshim, run;
# memshim-report --compare of its two snapshots names the growing site with its growth.
set -eu
readme=$1 inc=$2 libdir=$3 report=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$(dirname "$0")/readme_example.sh" "$readme" 'check_readme_growth.sh compiles' >"$tmp/grow.c"
[ -s "$tmp/grow.c" ] || { echo "example not found in README"; exit 1; }
(cd "$tmp" && cc -g -O0 -Wall -Werror -I"$inc" -o grow grow.c -L"$libdir" -lmemshim)
(cd "$tmp" && env -u LD_PRELOAD LD_LIBRARY_PATH=$libdir ./grow)
out=$("$report" "$tmp/after.json" --compare "$tmp/before.json" --key traceback --limit 1)
echo "$out"
grep -Fxq 'grow.c:10: size=234 KiB (+234 KiB), count=5000 (+5000), average=48 B' <<<"$out"
grep -Fxq '  File "grow.c", line 20, in handle_request' <<<"$out"
grep -Fxq '  File "grow.c", line 31, in main' <<<"$out"
grep -Fxq 'Total allocated size: 281 KiB (+234 KiB)' <<<"$out"
echo "1 passed, 0 failed"
