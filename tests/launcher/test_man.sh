#!/bin/bash
# SPDX-License-Identifier: MIT
# memshim(1) renders without a single groff warning (and through man -l when man is
# there).  Exit 77 (skipped) where groff is not installed.
# usage: test_man.sh SOURCE_ROOT
set -u
page=$1/scripts/memshim.1
command -v groff >/dev/null || { echo "groff not installed: skipped"; exit 77; }
export LC_ALL=C.UTF-8
warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
[ -z "$warn" ] || { echo "FAIL: groff warnings:"; echo "$warn"; exit 1; }
out=$(groff -man -Tutf8 -ww -P-cbou "$page" 2>/dev/null)
grep -q 'SYNOPSIS' <<<"$out" && grep -q 'EXIT STATUS' <<<"$out" ||
  { echo "FAIL: rendered page lacks its sections"; exit 1; }
if command -v man >/dev/null; then
  warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$warn" ] || { echo "FAIL: man -l warnings:"; echo "$warn"; exit 1; }
fi
echo "1 passed, 0 failed"
