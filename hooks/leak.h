/* SPDX-License-Identifier: MIT */
/*
 * Leaks at exit (LeakSanitizer's and Valgrind's method, on the trace layer's table): a
 * conservative reachability scan from the roots - the writable segments and this thread's
 * TLS blocks of every loaded module, the blocks the dynamic linker allocated (as in
 * LeakSanitizer), the anonymous mappings the program made itself (as Valgrind; see leak.c
 * for which), this thread's stack, registers and thread control block, and the stacks
 * of the other threads that are blocked in a system call - through
 * the live traced blocks.  Traced blocks that nothing reaches are leaks,
 * reported grouped by allocation traceback, biggest first.  memshim's own module and
 * memory (its tables, caches, quarantine) are never roots.
 *
 * Limits (documented in the README): the other threads are not stopped, so a thread that
 * is running at exit is not scanned and blocked threads' registers are not seen (a block
 * reachable only from those may be reported), and a
 * block allocated before tracing started is unknown, so it neither leaks nor keeps
 * anything alive.  Runs at exit, with the world mostly stopped; never calls malloc (its
 * arrays come from ms_os_map); not on any hot path.
 */
#ifndef MS_LEAK_H
#define MS_LEAK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"

struct ms_leak_summary {
    size_t leaked_blocks;
    size_t leaked_bytes;
    size_t leak_sites;        /* distinct allocation tracebacks among the leaks */
    size_t reachable_blocks;
    size_t reachable_bytes;
};

/* Scans and, when something leaked, prints the report to o (nothing otherwise).  Returns
 * the number of leaked blocks (the shim turns a non-zero result into the exit status), or
 * -1 when it could not scan (not tracing, or no memory for the scan).  This thread's stack
 * is scanned from stack_from up; 0 means from the caller's frame, locals included.  A
 * caller whose own locals may hold stale block addresses (an uninitialised buffer) passes
 * its __builtin_frame_address(0), which lies above them. */
long ms_leak_check(struct ms_out *o, struct ms_leak_summary *summary, uintptr_t stack_from);

/* Memory owns(p) says the shim's allocator serves blocks from is never a root (its free
 * blocks hold stale pointers).  Set once at start-up; NULL (the default): none. */
void ms_leak_set_heap_owner(bool (*owns)(const void *p));

#endif
