#!/bin/bash
# The README's options table and shim/options.def must name the same variables.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
declared=$(grep -o '^MS_OPTION([a-z_]*, "MEMSHIM_[A-Z_]*"' "$root/shim/options.def" |
           grep -o 'MEMSHIM_[A-Z_]*' | sort -u)
documented=$(grep -o '^| `MEMSHIM_[A-Z_]*`' "$root/README.md" | grep -o 'MEMSHIM_[A-Z_]*' | sort -u)
if [ "$declared" != "$documented" ]; then
  echo "options.def and README.md disagree:"
  diff <(echo "$declared") <(echo "$documented")
  exit 1
fi
echo "1 passed, 0 failed ($(wc -w <<<"$declared") variables documented)"
