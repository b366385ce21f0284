#!/bin/bash
# A default-mode process must not run code that the linker placed after all of memshim's
# own: the kernel maps a file's text in 64 KiB windows, so one call there keeps the tail
# (trace and report code, 20 KiB) resident in every process (issue 2's peak RSS).  Two
# such calls existed: libc_nonshared.a's pthread_atfork stub (core/os.h has ms_os_atfork
# instead) and the C runtime's empty _fini at exit (meson.build links without DT_FINI).
# Checked on the built library: which pages a run keeps resident depends on where the
# loader put it (the windows are aligned to the address), so a pagemap check would flake.
set -u
lib=$1
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

readelf -dW "$lib" | grep -q '(FINI)' && bad "libmemshim.so has a DT_FINI entry"
readelf -dW "$lib" | grep -q '(FINI_ARRAY)' || bad "no FINI_ARRAY: destructors lost?"
nm --defined-only "$lib" | grep -Eq ' [tT] (__)?pthread_atfork$' \
    && bad "libmemshim.so links libc_nonshared's pthread_atfork stub"

[ $fails -eq 0 ] && echo "no call into the text tail"
exit $((fails != 0))
