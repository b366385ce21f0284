/* SPDX-License-Identifier: MIT */
/*
 * Start-up and shut-down of memshim: reads the options, composes the allocator stack (the
 * one place that does), and prints the exit reports that were asked for.
 *
 * Start-up happens inside the first malloc-family call, which may come from the dynamic
 * loader, another library's constructor or a thread of a program that dlopen()ed us; the
 * constructor below only makes sure it has happened before main.  The initialising thread's
 * own nested calls (dlsym and the atfork registration allocate) are served by the C library and
 * remembered, so that a debug stack does not later mistake them for invalid frees.
 *
 * Never: runs on the hot path after start-up.
 */
#include "stack.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "debug.h"
#include "finish.h"
#include "freedtrace.h"
#include "leak.h"
#include "libc.h"
#include "loader.h"
#include "mimalloc.h"
#include "os.h"
#include "ownnew.h"
#include "pymalloc.h"
#include "sizeclass.h"
#include "symbolize.h"
#include "trace.h"
#include "unwind.h"
#include "unwind_lib.h"

struct ms_shim ms_shim = {
    .api_lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local int this_thread_initialises;

/* The debug layer's API id for each family. */
static const char api_ids[MS_API_COUNT] = {
    [MS_API_C] = MS_DEBUG_API_RAW,
    [MS_API_NEW] = MS_DEBUG_API_NEW,
    [MS_API_NEW_ARRAY] = MS_DEBUG_API_NEW_ARRAY,
    [MS_API_MEM] = MS_DEBUG_API_MEM,
    [MS_API_OBJ] = MS_DEBUG_API_OBJ,
};

/* The debug layer's "Memory block allocated at" part: the trace layer's, when tracing. */
static bool print_alloc_traceback(struct ms_out *o, const void *p)
{
    if (!ms_trace_is_tracing())
        return false;
    ms_trace_print_block_traceback(o, p);
    return true;
}

static bool print_freed_tracebacks(struct ms_out *o, const void *p)
{
    if (!ms_trace_is_tracing())
        return false;
    ms_trace_print_freed_tracebacks(o, p);
    return true;
}

void ms_shim_debug_config(struct ms_debug_config *cfg, struct ms_allocator lower)
{
    const struct ms_options *opt = &ms_shim.options;
    ms_loader_init();
    *cfg = (struct ms_debug_config){
        .lower = lower,
        .quarantine_bytes = opt->quarantine,
        .break_serialno = opt->break_serialno,
        .on_break = memshim_break_serialno,
        .on_new_thread = ms_finish_arm_thread,
        .print_alloc_traceback = print_alloc_traceback,
        .print_freed_tracebacks = print_freed_tracebacks,
        .print_current_backtrace = ms_unwind_print_current,
        .print_backtrace_from = ms_unwind_print_from,
        /* Start-up's blocks never reach the layer (route.c); the loader's may. */
        .foreign_size = ms_loader_block_size,
        .foreign_free = ms_loader_block_free,
        .foreign_operators = ms_ownnew_loaded,
        .fd = 2,
    };
}

void ms_shim_add_trace_layer(void)
{
    if (ms_shim.trace_in_stack)
        return;
    ms_symbol_load();
    struct ms_allocator *now = ms_shim.top;
    struct ms_allocator *next = now == ms_shim.top_sets[0] ? ms_shim.top_sets[1]
                                                           : ms_shim.top_sets[0];
    for (int i = 0; i < MS_API_COUNT; i++)
        ms_trace_init(&next[i], &now[i]);
    ms_os_atfork(ms_trace_fork_prepare, ms_trace_fork_parent, ms_trace_fork_child);
    ms_shim.print_backtrace = ms_unwind_print_current;
    __atomic_store_n(&ms_shim.top, next, __ATOMIC_RELEASE);
    __atomic_store_n(&ms_shim.route, MS_ROUTE_STACK, __ATOMIC_RELEASE);
    ms_shim.trace_in_stack = true;
}

/* The leak scan's "memory the allocators serve blocks from" in the mimalloc modes: free
 * blocks there hold stale pointers, never roots. */
static bool pymalloc_or_mimalloc_owns(const void *p)
{
    return ms_pymalloc_owns(p) || ms_mimalloc_owns(p);
}

static bool route_plausible(const void *base, size_t need)
{
    return ms_pymalloc_owns(base) || ms_libc_chunk_plausible(base, need);
}

static bool route_unmaps(const void *base)
{
    return !ms_pymalloc_owns(base) && ms_libc_chunk_mapped(base);
}

/* The modes that walk stacks load libunwind (unwind_lib.h).  If the dynamic loader is in
 * the middle of adding an object, the load waits for the constructor or a later capture. */
static void load_unwinder(void)
{
    if (ms_unwind_init() >= 0 || ms_unwind_lib_load() != MS_UNWIND_LIB_MISSING)
        return;
    const char *why = "libunwind.so.8 (Debian package libunwind8) could not be loaded";
    if (ms_shim.options.tracemalloc)
        ms_options_reject_tracemalloc(why);
    ms_options_reject_mode(why);
}

/* Builds the stack bottom-up and returns the route the interposed functions take.  The
 * route stays UNINIT until start-up is complete, so nested calls are bootstrap ones. */
static enum ms_route compose(void)
{
    const struct ms_options *opt = &ms_shim.options;
    struct ms_allocator *top = ms_shim.top_sets[0];
    ms_shim.top = top;
    struct ms_allocator libc = ms_libc_allocator();
    struct ms_allocator bottom = libc;

    if (opt->base == MS_BASE_MIMALLOC && ms_mimalloc_load(&bottom) != 0)
        ms_options_reject_mode("libmimalloc.so.2 is not installed (Debian package libmimalloc2.0)");

    struct ms_allocator base = bottom;
    if (opt->base != MS_BASE_MALLOC) {
        struct ms_pymalloc_config pycfg = {
            .arena_size = opt->arena_size,
            .lower = bottom,
            .arenas = {0},
            .stats_fd = opt->mallocstats ? 2 : -1,
            .dirty_delay_ns = MS_PYMALLOC_DIRTY_DELAY_NS,
        };
        ms_pymalloc_init(&pycfg);
        base = ms_pymalloc_allocator();
        ms_leak_set_heap_owner(opt->base == MS_BASE_MIMALLOC ? pymalloc_or_mimalloc_owns
                                                             : ms_pymalloc_owns);
    }

    if (opt->debug || opt->tracemalloc) {
        load_unwinder();
        ms_shim.print_backtrace = ms_unwind_print_current;
    }

    if (opt->debug) {
        struct ms_debug_config dcfg;
        ms_shim_debug_config(&dcfg, base);
        /* Blocks pymalloc does not serve come from glibc, behind its chunk header. */
        if (opt->base != MS_BASE_MIMALLOC) {
            dcfg.lower_header_intact = opt->base == MS_BASE_MALLOC ? ms_libc_chunk_plausible
                                                                   : route_plausible;
            dcfg.lower_header_above = opt->base == MS_BASE_MALLOC ? 0 : MS_SMALL_THRESHOLD;
            dcfg.lower_unmaps = opt->base == MS_BASE_MALLOC ? ms_libc_chunk_mapped
                                                            : route_unmaps;
        }
        ms_debug_init(&dcfg);
        /* Tracebacks of freed blocks for as long as the quarantine may hold them (a record
         * charges at least 64 bytes of the budget) and the double-free history after. */
        if (opt->quarantine != 0)
            ms_freedtrace_configure(opt->quarantine / 64 + 20480);
        ms_os_atfork(ms_loader_fork_prepare, ms_loader_fork_parent, ms_loader_fork_child);
        ms_shim.debug_in_stack = true;
        for (int i = 0; i < MS_API_COUNT; i++)
            top[i] = ms_debug_allocator(api_ids[i]);
    } else {
        for (int i = 0; i < MS_API_COUNT; i++)
            top[i] = base;
    }

    if (opt->tracemalloc) {
        /* The trace layer goes on top of everything, one wrapper per family, as
         * tracemalloc's hooks go on top of the debug hooks. */
        for (int i = 0; i < MS_API_COUNT; i++) {
            struct ms_allocator below = top[i];
            ms_trace_init(&top[i], &below);
        }
        ms_os_atfork(ms_trace_fork_prepare, ms_trace_fork_parent, ms_trace_fork_child);
        ms_shim.trace_in_stack = true;
        ms_trace_start(opt->tracemalloc);
    }

    ms_finish_setup();
    if (opt->debug || opt->tracemalloc)
        return MS_ROUTE_STACK;
    return opt->base == MS_BASE_MALLOC ? MS_ROUTE_LIBC : MS_ROUTE_PYMALLOC;
}

enum ms_route ms_shim_route_slow(void)
{
    int expected = 0;
    if (__atomic_compare_exchange_n(&ms_shim.init_state, &expected, 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        this_thread_initialises = 1;
        ms_options_parse(&ms_shim.options);
        enum ms_route chosen = compose();
        __atomic_store_n(&ms_shim.init_state, 2, __ATOMIC_RELEASE);
        __atomic_store_n(&ms_shim.route, (int)chosen, __ATOMIC_RELEASE);
        this_thread_initialises = 0;
        return chosen;
    }
    if (this_thread_initialises)
        return MS_ROUTE_BOOTSTRAP;
    /* Another thread is initialising: wait for it (start-up is short and happens once). */
    while (__atomic_load_n(&ms_shim.init_state, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
    return (enum ms_route)__atomic_load_n(&ms_shim.route, __ATOMIC_ACQUIRE);
}

/* Make sure start-up (and so the check of the options) happens before main even in a
 * program that never allocates. */
__attribute__((constructor)) static void memshim_start(void)
{
    (void)ms_shim_route();
    ms_libc_prepare();
    /* The modes that print tracebacks load the symboliser now, while dlopen is safe: not
     * in compose(), which may run inside the dynamic loader's own malloc call, and not at
     * the fatal error, in a damaged process. */
    if (ms_shim.options.debug || ms_shim.options.tracemalloc) {
        load_unwinder();
        ms_symbol_load();
    }
}

/* Runs after the program's own destructors (a preloaded library is initialised first, so
 * it is finalised last). */
__attribute__((destructor)) static void memshim_finish(void)
{
    if (ms_shim.init_state == 2)
        ms_finish_at_exit();
}
