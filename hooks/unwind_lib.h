/* SPDX-License-Identifier: MIT */
/*
 * libunwind, loaded when a mode that prints or records backtraces is configured.
 *
 * memshim does not link libunwind: the default modes never walk a stack, and libunwind
 * (with liblzma, which it needs) cost every program about 110 KiB of resident memory just
 * by being mapped.  The debug and trace modes dlopen() it at start-up and call it through
 * the pointers below.  Start-up can run inside a malloc the dynamic loader makes while it
 * is adding an object (r_debug not consistent); a dlopen there would nest inside the
 * loader's own, so the load then waits for a later attempt (the constructor, the next
 * capture), and stacks captured until then are empty.
 *
 * Never: loads while the loader is mid-change; resolves a symbol by name after the load.
 */
#ifndef MS_UNWIND_LIB_H
#define MS_UNWIND_LIB_H

#define UNW_LOCAL_ONLY
#include <libunwind.h>

struct ms_unwind_lib {
    int (*backtrace)(void **buf, int size);
    int (*getcontext)(unw_context_t *uc);
    int (*init_local)(unw_cursor_t *c, unw_context_t *uc);
    int (*step)(unw_cursor_t *c);
    int (*get_reg)(unw_cursor_t *c, unw_regnum_t reg, unw_word_t *val);
    int (*set_caching_policy)(unw_addr_space_t as, unw_caching_policy_t policy);
    unw_addr_space_t *local_addr_space;
};

/* libunwind's own initialisation (its memory-validation pipe, kept at descriptor 960 or
 * above, out of the program's way), before the first walk; once, after a successful load. */
void ms_unwind_lib_start(void);

/* Filled in by a successful ms_unwind_lib_load; all NULL before. */
extern struct ms_unwind_lib ms_unw __attribute__((visibility("hidden")));

enum ms_unwind_lib_status {
    MS_UNWIND_LIB_LOADED,   /* ms_unw is complete (now or earlier) */
    MS_UNWIND_LIB_LATER,    /* the dynamic loader is busy: try again later */
    MS_UNWIND_LIB_MISSING,  /* libunwind.so.8 (or one of its symbols) is not there */
};

/* Loads libunwind unless done (thread-safe, never blocks: while another thread loads it,
 * LATER; the caller holds memshim's guard so that the loader's allocations go to the C
 * library). */
enum ms_unwind_lib_status ms_unwind_lib_load(void);

/* The name the load looks for, for messages. */
#define MS_UNWIND_LIB_SONAME "libunwind.so.8"

#endif
