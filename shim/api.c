/* SPDX-License-Identifier: MIT */
/*
 * memshim's own exported functions (the memshim_* public API; the malloc family lives in
 * interpose.c and cxx.c).  Not on the hot path.
 */
#include <signal.h>

#include "fmt.h"
#include "stack.h"

#define MS_EXPORT __attribute__((visibility("default")))

/* Called by the debug layer when block number MEMSHIM_BREAK_SERIALNO is handed out.  As
 * the Windows CRT's _CrtSetBreakAlloc: stop right there.  Under gdb, `break
 * memshim_break_serialno` stops before the SIGTRAP; without a debugger the SIGTRAP ends the
 * program (status 133), with the address and backtrace printed. */
MS_EXPORT __attribute__((noinline)) void memshim_break_serialno(void *p, uint64_t serial)
{
    struct ms_out o;
    ms_out_init(&o, 2);
    ms_out_str(&o, "memshim: block #");
    ms_out_udec(&o, serial, 0);
    ms_out_str(&o, " (MEMSHIM_BREAK_SERIALNO) handed out at p=");
    ms_out_ptr(&o, p);
    ms_out_char(&o, '\n');
    ms_out_flush(&o);
    if (ms_shim.print_backtrace != NULL) {
        ms_shim.print_backtrace(&o);
        ms_out_flush(&o);
    }
    raise(SIGTRAP);
}
