#!/bin/bash
# SPDX-License-Identifier: MIT
# Drift check: the launcher's OPTION_TABLE (scripts/memshim), shim/options.def, the
# launcher's --help and the man page (scripts/memshim.1) must agree: every options.def
# variable has a launcher option, every option's variable is declared there, and --help and
# memshim(1) name every option and (the man page) every variable.
# usage: test_options.sh SOURCE_ROOT
set -u
src=$1
failures=0 passes=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { passes=$((passes + 1)); }

declared=$(grep -o '^MS_OPTION([a-z_]*, "MEMSHIM_[A-Z_]*"' "$src/shim/options.def" |
           grep -o 'MEMSHIM_[A-Z_]*' | sort -u)
[ -n "$declared" ] || { echo "no MS_OPTION in shim/options.def"; exit 1; }
# The table rows: "option|variable[=value]|meta|help".
rows=$(sed -n '/^OPTION_TABLE=(/,/^)/p' "$src/scripts/memshim" | grep '^  "--')
[ -n "$rows" ] || { echo "no OPTION_TABLE in scripts/memshim"; exit 1; }
mapped=$(cut -d'|' -f2 <<<"$rows" | sed 's/=.*//' | grep . | sort -u)
if [ "$declared" == "$mapped" ]; then pass; else
  fail "options.def (<) and the launcher's table (>) disagree:"
  diff <(echo "$declared") <(echo "$mapped")
fi
# Variables the table sets with a fixed value must accept it: the mode names are
# options.def's.
modes=$(grep -A1 '"MEMSHIM_MALLOC"' "$src/shim/options.def" | tail -n1)
grep -q '"--debug|MEMSHIM_MALLOC=debug|' "$src/scripts/memshim" && grep -q '\bdebug\b' <<<"$modes" &&
  pass || fail "--debug's mode is not one of options.def's: $modes"

options=$(cut -d'|' -f1 <<<"$rows" | sed 's/^  "//; s/[=[].*//')
help=$(bash "$src/scripts/memshim" --help 2>&1)
man=$(sed 's/\\-/-/g; s/\\f[BIRP]//g; s/\\c$//' "$src/scripts/memshim.1" | tr -d '\n')
for opt in $options; do
  grep -q -e "$opt" <<<"$help" && pass || fail "--help does not mention $opt"
  grep -q -e "$opt" <<<"$man" && pass || fail "scripts/memshim.1 does not mention $opt"
done
for var in $declared; do
  grep -q "^\.B $var\$" "$src/scripts/memshim.1" && pass ||
    fail "scripts/memshim.1 ENVIRONMENT lacks $var"
done
echo "$passes passed, $failures failed ($(wc -w <<<"$declared") variables, $(wc -w <<<"$options") options)"
[ "$failures" -eq 0 ]
