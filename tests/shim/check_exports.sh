#!/bin/bash
# The library must export the glibc malloc family (all of it) and memshim_* names, nothing
# else: an internal symbol leaking into a program's namespace could capture the program's
# own function of the same name.
set -u
lib=$1
family="aligned_alloc calloc free malloc malloc_usable_size memalign posix_memalign pvalloc realloc reallocarray valloc"
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
status=0
for f in $family; do
  if ! grep -qx "$f" <<<"$exported"; then
    echo "missing export: $f"; status=1
  fi
done
cxx_ok='^_Zn[wa]m|^_Zd[la]Pv'   # C++ operator new/delete, once the debug issue adds them
for s in $exported; do
  case " $family " in *" $s "*) continue ;; esac
  [[ $s == memshim_* ]] && continue
  [[ $s =~ $cxx_ok ]] && continue
  echo "unexpected export: $s"; status=1
done
[ $status -eq 0 ] && echo "exports ok: $(wc -w <<<"$exported") symbols"
exit $status
