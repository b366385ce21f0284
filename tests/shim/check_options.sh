#!/bin/bash
# Every bad configuration value gets exactly one line on stderr (the variable, the bad value
# and what is accepted) and exit status 1 before main; good values run silently.
set -u
lib=$1
fails=0 passes=0

run() {  # run VAR VALUE -> sets rc, err, out
  local tmp; tmp=$(mktemp)
  out=$(env "$1=$2" LD_PRELOAD="$lib" /bin/echo hello 2>"$tmp"); rc=$?
  err=$(cat "$tmp"); rm -f "$tmp"
}

bad() {
  run "$1" "$2"
  local lines; lines=$(printf '%s' "$err" | grep -c '')
  if [ "$rc" -ne 1 ] || [ "$lines" -ne 1 ] || [ -n "$out" ] ||
     ! grep -q "$1" <<<"$err" || ! grep -q "accepted" <<<"$err"; then
    echo "FAIL bad value $1='${2:0:40}': rc=$rc lines=$lines out='$out' err='${err:0:300}'"
    fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
  # The bad value itself is quoted (cut to 200 bytes, control characters escaped).
  if [ ${#2} -le 200 ] && [[ $2 =~ ^[[:print:]]*$ ]] && ! grep -qF "'$2'" <<<"$err"; then
    echo "FAIL bad value $1='$2' is not quoted in: $err"; fails=$((fails + 1))
  fi
}

good() {
  run "$1" "$2"
  if [ "$rc" -ne 0 ] || [ -n "$err" ] || [ "$out" != hello ]; then
    echo "FAIL good value $1='$2': rc=$rc out='$out' err='$err'"; fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
}

bad MEMSHIM_MALLOC bogus
bad MEMSHIM_MALLOC PYMALLOC
bad MEMSHIM_MALLOC "pymalloc "
bad MEMSHIM_MALLOC "$(printf 'x\033[31mred')"
bad MEMSHIM_MALLOC "$(head -c 100000 /dev/zero | tr '\0' a)"
bad MEMSHIM_ARENA_SIZE 3M
bad MEMSHIM_ARENA_SIZE 128K
bad MEMSHIM_ARENA_SIZE 128M
bad MEMSHIM_ARENA_SIZE -1M
bad MEMSHIM_ARENA_SIZE 1M1
bad MEMSHIM_ARENA_SIZE 99999999999999999999999999
bad MEMSHIM_ARENA_SIZE 0x100000
bad MEMSHIM_QUARANTINE -1
bad MEMSHIM_QUARANTINE 1T
bad MEMSHIM_QUARANTINE 16MB
bad MEMSHIM_QUARANTINE 99999999999999999999G
bad MEMSHIM_BREAK_SERIALNO 0
bad MEMSHIM_BREAK_SERIALNO 12x
bad MEMSHIM_BREAK_SERIALNO 18446744073709551616
good MEMSHIM_MALLOC ""
good MEMSHIM_MALLOC debug
good MEMSHIM_MALLOC pymalloc_debug
good MEMSHIM_MALLOC malloc_debug
good MEMSHIM_MALLOC mimalloc_debug
good MEMSHIM_QUARANTINE 0
good MEMSHIM_QUARANTINE 1G
good MEMSHIM_QUARANTINE 4096
good MEMSHIM_BREAK_SERIALNO 18446744073709551615
good MEMSHIM_MALLOC default
good MEMSHIM_MALLOC pymalloc
good MEMSHIM_MALLOC malloc
good MEMSHIM_MALLOC mimalloc
good MEMSHIM_ARENA_SIZE 256K
good MEMSHIM_ARENA_SIZE 1M
good MEMSHIM_ARENA_SIZE 64M
good MEMSHIM_ARENA_SIZE 4194304
good MEMSHIM_ARENA_SIZE ""

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
