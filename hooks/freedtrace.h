/* SPDX-License-Identifier: MIT */
/*
 * Where freed blocks were allocated and freed, for the debug layer's reports about them
 * (double free, write after free, a free inside a freed block), as ASan and Valgrind print
 * them.  tracemalloc drops a block's trace when it is freed; while a quarantine keeps freed
 * blocks around, the trace layer also records here: a ring of {address, allocation
 * traceback id, free traceback id}, sized so that a block is still in it while the
 * quarantine can hold it and some time after (ms_freedtrace_configure).  Looked up newest
 * first: an address freed again since is a newer block.
 *
 * Records take one spinlock for a few stores; lookups are for error paths.  Never calls
 * malloc (the ring comes from ms_os_map, on the first record), never prints.
 */
#ifndef MS_FREEDTRACE_H
#define MS_FREEDTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keep the last `entries` frees (0: none).  Before the first record only. */
void ms_freedtrace_configure(size_t entries);

/* Is the ring on (configured, and its memory could be had)? */
bool ms_freedtrace_enabled(void);

/* addr was freed; tracebacks by id (0: none). */
void ms_freedtrace_record(uintptr_t addr, uint32_t alloc_tb, uint32_t free_tb);

/* The newest record for addr; false when it is not (or no longer) in the ring. */
bool ms_freedtrace_find(uintptr_t addr, uint32_t *alloc_tb, uint32_t *free_tb);

/* fork(): the child gets an unlocked ring (a record in progress in another thread is a
 * few stores; the child may see it torn, which only an error report would read). */
void ms_freedtrace_fork_child(void);

#endif
