/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's message catalogue: every text a user of the debug mode can see comes
 * from diag.c, one report function per error kind (scudo's report.cpp idea).  Each report
 * prints the block dump, the fatal line and the current thread's backtrace (through the
 * config's callbacks), then abort()s.
 *
 * Never returns, never allocates, never uses stdio; it reads only memory the live table
 * says belongs to the block.  Reports from several threads are serialised: the first one
 * wins, the others wait for the abort.
 */
#ifndef MS_DIAG_H
#define MS_DIAG_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addrkind.h"
#include "debug.h"
#include "livetab.h"
#include "quarantine.h"

/* The call that found the problem; names the function in the fatal line. */
enum ms_diag_op {
    MS_DIAG_FREE,          /* memshim_debug_free */
    MS_DIAG_REALLOC,       /* memshim_debug_realloc */
    MS_DIAG_CHECK,         /* memshim_debug_check_heap */
    MS_DIAG_EXIT,          /* memshim_debug_at_exit */
    MS_DIAG_USABLE_SIZE,   /* memshim_debug_usable_size (malloc_usable_size) */
};

/* The checks of SPEC 3.3, in CPython's order (BAD_SIZE is memshim's: the size field no
 * longer matches the size the live table recorded). */
enum ms_diag_bad {
    MS_DIAG_OK = 0,
    MS_DIAG_BAD_ID,
    MS_DIAG_BAD_LEADING,
    MS_DIAG_BAD_SIZE,
    MS_DIAG_BAD_TRAILING,
    MS_DIAG_BAD_LOWER,     /* memshim's: the lower allocator's header in front is damaged */
};

/* The kinds of pointers that are not a block of the layer. */
enum ms_diag_invalid {
    MS_DIAG_INVALID_STACK,
    MS_DIAG_INVALID_IMAGE,
    MS_DIAG_INVALID_INTERIOR,
    MS_DIAG_INVALID_MISALIGNED,
    MS_DIAG_INVALID_UNKNOWN,
};

/* A live block whose trailing pads are damaged and that ends just in front of a block
 * whose header is: the likely culprit. */
struct ms_diag_neighbour {
    uintptr_t p;
    size_t size;
    uint64_t serial;    /* 0: overwritten */
};

/* A live block failed a check: CPython's dump and fatal error.  api_used is the API the
 * call was made through (the bad-ID message names it).  ran_over (or NULL): the block in
 * front of e that overflowed into e's header, named after e's traceback. */
_Noreturn void ms_diag_bad_block(const struct ms_debug_config *cfg, enum ms_diag_op op,
                                 enum ms_diag_bad bad, char api_used,
                                 const struct ms_livetab_entry *e,
                                 const struct ms_diag_neighbour *ran_over);

/* The lower allocator's header in front of a quarantined block was damaged while the
 * block waited (the block in front, ran_over if known, overflowed). */
_Noreturn void ms_diag_freed_lower_header(const struct ms_debug_config *cfg,
                                          enum ms_diag_op op,
                                          const struct ms_quarantine_rec *r,
                                          const struct ms_diag_neighbour *ran_over);

/* A sized operator delete named n bytes for the live block e made for another size. */
_Noreturn void ms_diag_sized_delete(const struct ms_debug_config *cfg,
                                    const struct ms_livetab_entry *e, size_t n);

/* A quarantined block is not all DEADBYTE any more; bad_at is the first modified byte.
 * ran_over (or NULL): the live block in front that ran into the freed block's header. */
_Noreturn void ms_diag_write_after_free(const struct ms_debug_config *cfg,
                                        enum ms_diag_op op,
                                        const struct ms_quarantine_rec *r, uintptr_t bad_at,
                                        const struct ms_diag_neighbour *ran_over);

/* free or realloc of a block that is in the quarantine, or (queued false) that left it
 * recently. */
_Noreturn void ms_diag_double_free(const struct ms_debug_config *cfg, enum ms_diag_op op,
                                   const struct ms_quarantine_rec *r, bool queued);

/* What an invalid pointer was found to be: the block it points into (kind
 * MS_DIAG_INVALID_INTERIOR; freed says whether that block is in the quarantine), or the
 * module it lies in (MS_DIAG_INVALID_IMAGE). */
struct ms_diag_where {
    const struct ms_livetab_entry *container;
    uint64_t serial;            /* the container's */
    bool freed;
    const struct ms_addrinfo *module;
};

/* free or realloc of p that is no block of the layer. */
_Noreturn void ms_diag_invalid_pointer(const struct ms_debug_config *cfg, enum ms_diag_op op,
                                       const void *p, enum ms_diag_invalid kind,
                                       const struct ms_diag_where *where);

/* The program is dying of SIGSEGV or SIGBUS (from the signal handler, info si, context
 * uctx): the crash's facts (crash.h), any register that points into a freed block (found
 * by find_freed, which must not wait: the interrupted code may hold any lock) with that
 * block's dump and tracebacks, "Fatal memshim error: Segmentation fault" and the backtrace
 * from the crashing instruction.  Returns: the caller lets the signal kill. */
void ms_diag_crash(const struct ms_debug_config *cfg, int sig, const siginfo_t *si,
                   const void *uctx,
                   bool (*find_freed)(uintptr_t a, struct ms_quarantine_rec *r));

#endif
