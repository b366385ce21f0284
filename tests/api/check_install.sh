#!/bin/bash
# `meson install` into a scratch root, then build a program with pkg-config against the
# installed header and library, and run it (memshim linked directly replaces malloc).
set -eu
build=$1 src=$2
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
DESTDIR=$root meson install -C "$build" --no-rebuild --quiet >/dev/null
pc=$(dirname "$(find "$root" -name memshim.pc | head -1)")
[ -n "$pc" ] || { echo "no memshim.pc installed"; exit 1; }
for f in memshim.h libmemshim.so; do
  [ -n "$(find "$root" -name "$f")" ] || { echo "$f not installed"; exit 1; }
done
[ -x "$(find "$root" -path '*/bin/memshim' | head -1)" ] || { echo "scripts/memshim not installed"; exit 1; }
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs memshim)
cc -o "$root/linked" "$src" $flags
libdir=$(dirname "$(find "$root" -name libmemshim.so | head -1)")
env -u LD_PRELOAD LD_LIBRARY_PATH=$libdir MEMSHIM_MALLOC=pymalloc "$root/linked"
echo "1 passed, 0 failed"
