/* SPDX-License-Identifier: MIT */
/*
 * The debug layer (SPEC 3, issue 3): CPython's debug hooks as an allocator over a lower
 * allocator, plus what CPython cannot see: double and invalid frees (a bitmap of the live
 * blocks by address, so nothing is decided by reading bytes in front of an unknown
 * pointer),
 * writes after free (a FIFO quarantine of DEADBYTE-filled blocks, verified when they leave
 * and at exit), overflows of blocks never freed (every live block checked at exit or on
 * demand), and a break on serial number.
 *
 * There is one process-wide instance.  ms_debug_init() configures it before the first
 * block; after that every function is callable from any thread at any time, and in a
 * child after fork() (init registers atfork handlers for every lock of the layer).
 *
 * Never: reads the environment, calls the interposed malloc or stdio, depends on
 * libunwind (backtraces come through the callbacks below).  Diagnostics go to cfg.fd
 * through core/fmt.h, then abort().
 */
#ifndef MS_DEBUG_H
#define MS_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator.h"
#include "fmt.h"

/* API ids (the byte at p-S).  'r', 'm', 'o' are CPython's; the C++ ones are memshim's, so
 * that malloc/delete, new/free and new[]/delete mismatches are bad-ID errors. */
#define MS_DEBUG_API_RAW 'r'        /* the C library family and the raw domain */
#define MS_DEBUG_API_MEM 'm'        /* mem domain */
#define MS_DEBUG_API_OBJ 'o'        /* object domain */
#define MS_DEBUG_API_NEW 'n'        /* C++ operator new / delete (all variants) */
#define MS_DEBUG_API_NEW_ARRAY 'a'  /* C++ operator new[] / delete[] (all variants) */

/* The default quarantine: 16 MiB holds ~200k small blocks (with their records), or a few
 * big ones, for as long as it takes to free that much again; the shim reads
 * MEMSHIM_QUARANTINE to change it.  Measured under python3, any quarantine costs about
 * the same (the program loses its LIFO reuse): 1 MiB and 16 MiB ran alike. */
#define MS_DEBUG_QUARANTINE_DEFAULT ((size_t)16 << 20)

struct ms_debug_config {
    struct ms_allocator lower;        /* the allocator underneath: memalign for aligned
                                         blocks; usable_size so that a corrupted size
                                         field is clamped (without it the header's size
                                         is trusted and a check could read past a block) */
    size_t quarantine_bytes;          /* FIFO budget in bytes (blocks plus 32 bytes of
                                         bookkeeping each); 0: freed blocks go straight
                                         back to lower, and a second free is reported as an
                                         invalid free of an unknown pointer (or missed, once
                                         the address is handed out again) */
    uint64_t break_serialno;          /* 0: off */
    /* Called (outside every lock of the layer) right after block #break_serialno is made
     * by a malloc-like or realloc-like call.  The shim passes an exported, non-inlined
     * function that prints the address and backtrace and raises SIGTRAP. */
    void (*on_break)(void *p, uint64_t serial);
    /* Called at the first malloc-like or realloc-like call of each thread but the one that
     * had the process to itself (outside every lock of the layer; it may allocate).  The
     * shim gives the thread what a crash report needs.  NULL: nothing. */
    void (*on_new_thread)(void);
    /* The allocation-traceback part of a diagnostic.  Return false when tracing is off:
     * the layer then prints "Enable MEMSHIM_TRACEMALLOC to get the memory block
     * allocation traceback" and an empty line.  When tracing is on, print
     * "Memory block allocated at (most recent call first):", the frames and an empty
     * line (or nothing for a block made before tracing started) and return true.
     * NULL: tracing is never on. */
    bool (*print_alloc_traceback)(struct ms_out *o, const void *p);
    /* The same for a freed block p: when tracing, where it was allocated and where it was
     * freed (or why that is not known), and true; false prints the hint instead.  NULL:
     * tracing is never on. */
    bool (*print_freed_tracebacks)(struct ms_out *o, const void *p);
    /* Printed after an empty line that follows the fatal line: "Current thread 0x...
     * (most recent call first):" and the frames.  NULL: nothing. */
    void (*print_current_backtrace)(struct ms_out *o);
    /* The same heading and frames for a crash, from the frame of the crashing instruction
     * at pc on (the frames of the signal handler left out; pc 0: all).  NULL: nothing. */
    void (*print_backtrace_from)(struct ms_out *o, uintptr_t pc);
    /* Pointers the layer never made but that may legitimately reach it (blocks the shim
     * handed out before the stack was composed).  foreign_size returns the usable size
     * of such a block, or 0 if p is not one; foreign_free releases it.  NULL: none. */
    size_t (*foreign_size)(void *p);
    void (*foreign_free)(void *p);
    /* The lower allocator's own header in front of a block (base, need bytes asked of
     * lower): is it intact?  Asked on every check of a block of more than
     * lower_header_above bytes, and of any block that failed another check.  A block that
     * ran over its trailer damages it first, and handing the block back would then crash lower
     * instead of reporting.  NULL: lower keeps no such header (or the shim cannot say). */
    bool (*lower_header_intact)(const void *base, size_t need);
    size_t lower_header_above;
    /* Does giving this lower block back (base, one whose header passed lower_header_intact)
     * return its pages to the OS at once?  Then a block too big for the quarantine is not
     * filled with DEADBYTE on its way out: no pointer could read the fill, and for the
     * buffers that get their own mapping it was a second pass over what may be gigabytes
     * (GNU sort asks for an eighth of RAM and touches what it needs).  NULL: never. */
    bool (*lower_unmaps)(const void *base);
    /* Does a loaded object keep C++'s operator new and delete to itself (its copies call
     * malloc and free)?  Asked only when a free's API id and its block's are malloc's and
     * a C++ family's: then the mismatch is not reported.  NULL: never. */
    bool (*foreign_operators)(void);
    int fd;                           /* where diagnostics go (2) */
};

/* Configure the instance before its first use (its allocators call cfg.lower).  0; -1 if
 * blocks exist already or the tables cannot be mapped.  The config is copied. */
int ms_debug_init(const struct ms_debug_config *cfg);

/* The layer as an allocator for one API id (one of MS_DEBUG_API_*; any other id gives a
 * struct with NULL functions).  All ids share the instance. */
struct ms_allocator ms_debug_allocator(char api_id);

/* Give API id api_id a lower allocator of its own instead of cfg.lower (debug hooks put
 * over a custom allocator of one domain).  Before any block of that id exists, or with a
 * lower that wraps the previous one.  0, or -1 for an unknown id. */
int ms_debug_set_lower(char api_id, const struct ms_allocator *lower);

/* Verify the pads of every live block now; a damaged one gets the diagnostic and abort()
 * (function name memshim_debug_check_heap). */
void ms_debug_check_heap(void);

/* At exit: every live block as ms_debug_check_heap, then every quarantined block must
 * still be all DEADBYTE (function name memshim_debug_at_exit). */
void ms_debug_at_exit(void);

/* Release every quarantined block (each verified first). */
void ms_debug_flush_quarantine(void);

/* A sized operator delete (api_id's family) is about to free p, saying it holds n bytes:
 * if p is a live block of that family made for another size, report it and abort (the
 * object is deleted through a pointer to a type of another size).  Anything else is left
 * to the free that follows. */
void ms_debug_check_sized_delete(char api_id, const void *p, size_t n);

/* From a SIGSEGV or SIGBUS handler (its three arguments): say what the crash suggests
 * (the fill pattern a register holds, the address) and where it happened; then return, so
 * that the signal kills the process. */
void ms_debug_crash_report(int sig, const void *si, const void *uctx);

/* Is p a live block of this layer (decided by address)? */
bool ms_debug_owns(const void *p);

/* The latest serial number: the number of malloc-like and realloc-like calls so far while
 * the process has one thread; with more, this thread's latest (they take numbers from the
 * counter in batches). */
uint64_t ms_debug_serialno(void);

struct ms_debug_stats {
    size_t live_blocks;        /* blocks handed out and not freed */
    size_t quarantine_blocks;
    size_t quarantine_bytes;   /* blocks with headers and trailers, plus 32 bytes of
                                  bookkeeping per block: what the budget bounds */
};
void ms_debug_get_stats(struct ms_debug_stats *out);

#endif
