#!/bin/bash
# The library must export the glibc malloc family and C++'s operators new/delete (all of
# them) and memshim_* names, nothing
# else: an internal symbol leaking into a program's namespace could capture the program's
# own function of the same name.
set -u
lib=$1
family="aligned_alloc calloc free malloc malloc_usable_size memalign posix_memalign pvalloc realloc reallocarray valloc
  _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t
  _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
  _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
  _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
  _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"
family=$(echo $family)
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
status=0
for f in $family; do
  if ! grep -qx "$f" <<<"$exported"; then
    echo "missing export: $f"; status=1
  fi
done
for s in $exported; do
  case " $family " in *" $s "*) continue ;; esac
  [[ $s == memshim_* ]] && continue
  echo "unexpected export: $s"; status=1
done
[ $status -eq 0 ] && echo "exports ok: $(wc -w <<<"$exported") symbols"
exit $status
