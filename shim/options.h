/* SPDX-License-Identifier: MIT */
/*
 * The parsed configuration (one struct, filled once from the environment at start-up).
 * Never: allocates, or reads the environment after start-up.
 */
#ifndef MS_OPTIONS_H
#define MS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

/* What serves the blocks, under the optional debug hooks. */
enum ms_base {
    MS_BASE_PYMALLOC,   /* pymalloc over the C library */
    MS_BASE_MALLOC,     /* the C library alone */
    MS_BASE_MIMALLOC,   /* pymalloc over Debian's libmimalloc instead of the C library */
};

struct ms_options {
    enum ms_base base;
    bool debug;
    bool mallocstats;
    size_t arena_size;
    size_t quarantine;
    uint64_t break_serialno;   /* 0: off */
    unsigned tracemalloc;      /* frames; 0: off */
    bool leaks;                /* when tracing */
    int leaks_exitcode;
    /* "" when unset, or in a set-user-ID/AT_SECURE process (no file named by the
     * environment is written there).  Not yet expanded (%p). */
    char snapshot[4096];
    char report[4096];
};

/* Parse every variable of options.def.  On an invalid value: one line on stderr naming the
 * variable, the bad value and the accepted ones, then _exit(1), as CPython does for
 * PYTHONMALLOC. */
void ms_options_parse(struct ms_options *out);

/* For a value that parsed but cannot be honoured on this machine (mimalloc not installed):
 * the same one line, with the reason, and exit status 1. */
_Noreturn void ms_options_reject_mode(const char *reason);
/* The same for MEMSHIM_TRACEMALLOC (its backtraces need libunwind). */
_Noreturn void ms_options_reject_tracemalloc(const char *reason);

#endif
