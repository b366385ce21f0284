/* SPDX-License-Identifier: MIT */
/*
 * The shim's one state struct: which route every interposed call takes, and the composed
 * allocator stack.  The stack is composed once, by ms_shim_init(), from the options; it
 * never changes after the first block exists.
 *
 * Routes, fastest first: PYMALLOC and LIBC call the bottom allocator directly (no indirect
 * call on the default path: the whole point of pymalloc is speed); STACK goes through the
 * composed struct ms_allocator (debug hooks, tracing).  BOOTSTRAP serves the calls that
 * initialisation itself makes (dlsym, pthread_atfork) from the C library.
 */
#ifndef MS_STACK_H
#define MS_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator.h"
#include "debug.h"
#include "fmt.h"
#include "memshim.h"
#include "options.h"

#include <pthread.h>

enum ms_route {
    MS_ROUTE_UNINIT = 0,
    MS_ROUTE_PYMALLOC,
    MS_ROUTE_LIBC,
    MS_ROUTE_STACK,
    MS_ROUTE_BOOTSTRAP,
};

/* The families whose blocks a debug layer tells apart (its API id byte). */
enum ms_api {
    MS_API_C,          /* malloc family ('r') */
    MS_API_NEW,        /* C++ operator new / delete ('n') */
    MS_API_NEW_ARRAY,  /* C++ operator new[] / delete[] ('a') */
    MS_API_MEM,        /* memshim_mem_* ('m') */
    MS_API_OBJ,        /* memshim_obj_* ('o') */
    MS_API_COUNT
};

#define MS_BOOTSTRAP_SLOTS 2048 /* a power of two */

struct ms_shim {
    int route;                      /* enum ms_route; read on every call (relaxed) */
    int init_state;                 /* 0 not started, 1 running, 2 done (atomic) */
    /* The dynamic loader's code, [loader_lo, loader_lo + loader_len), whose mallocs under
     * memshim's guard loader.c remembers.  0: not looked for.  Next to route: the
     * non-default routes' malloc reads both, and they should share a cache line. */
    uintptr_t loader_lo;
    size_t loader_len;
    /* The composed stack per family, for MS_ROUTE_STACK (the same struct in every slot
     * unless a debug layer is in it).  A pointer to one of two sets, swapped atomically
     * when tracing is started at run time (memshim_tracemalloc_start). */
    struct ms_allocator *top;
    struct ms_allocator top_sets[2][MS_API_COUNT];
    struct ms_options options;
    /* Prints the calling thread's backtrace (from the tracing layer's unwinder), or NULL. */
    void (*print_backtrace)(struct ms_out *o);
    bool trace_in_stack;            /* the trace layer is in the composed stack */
    bool debug_in_stack;            /* the debug layer is in use (mode or run-time setup) */

    /* The public API's domains (api.c): each an atomically swapped pointer to the
     * current allocator (NULL: the default, the route for that family). */
    struct memshim_allocator *domain[3];
    bool domain_changed[3];         /* a custom allocator or run-time debug hooks */
    bool domain_debug[3];           /* debug hooks on top of the domain already */
    pthread_mutex_t api_lock;       /* serialises the API's set-up calls */

    /* Blocks the C library handed out while memshim was initialising: they must go back
     * to the C library even when the stack's top layer would not know them. */
    void *bootstrap[MS_BOOTSTRAP_SLOTS];
    int bootstrap_count;
    uintptr_t bootstrap_lo, bootstrap_hi;   /* every recorded block lies in [lo, hi] */
};

extern struct ms_shim ms_shim;

/* The route for this call, initialising memshim first if needed.  Returns
 * MS_ROUTE_BOOTSTRAP for calls made by initialisation itself. */
enum ms_route ms_shim_route_slow(void);

static inline const struct ms_allocator *ms_shim_top(enum ms_api api)
{
    return &__atomic_load_n(&ms_shim.top, __ATOMIC_ACQUIRE)[api];
}

static inline enum ms_route ms_shim_route(void)
{
    enum ms_route r = (enum ms_route)__atomic_load_n(&ms_shim.route, __ATOMIC_ACQUIRE);
    return __builtin_expect(r != MS_ROUTE_UNINIT, 1) ? r : ms_shim_route_slow();
}

/* The malloc-family operations for one family, whatever the route (shim/route.c).
 * Layer semantics (allocator.h): size 0 is a real block, NULL means out of memory; errno
 * is the caller's business.  alignment is a power of two >= sizeof(void *). */
void *ms_route_malloc(enum ms_api api, size_t size);
void *ms_route_calloc(enum ms_api api, size_t nelem, size_t elsize);
void *ms_route_realloc(enum ms_api api, void *ptr, size_t size);
void ms_route_free(enum ms_api api, void *ptr);
void *ms_route_memalign(enum ms_api api, size_t alignment, size_t size);
size_t ms_route_usable_size(enum ms_api api, void *ptr);

/* The debug layer's configuration for this process, over lower (stack.c). */
void ms_shim_debug_config(struct ms_debug_config *cfg, struct ms_allocator lower);

/* Puts the trace layer on top of every family at run time, if it is not there (stack.c,
 * under api_lock). */
void ms_shim_add_trace_layer(void);

/* Bootstrap bookkeeping (shim/bootstrap.c; only consulted on the STACK route). */
void ms_shim_bootstrap_record(void *p);
bool ms_shim_bootstrap_contains(const void *p);
bool ms_shim_bootstrap_take(void *p);   /* the lookup: bootstrap_count != 0 */

/* Might p be a recorded block?  Start-up's blocks are few and lie together at the
 * bottom of the C library's heap, far from pymalloc's arenas. */
static inline bool ms_shim_bootstrap_may_hold(const void *p)
{
    return ms_shim.bootstrap_count != 0
           && (uintptr_t)p - ms_shim.bootstrap_lo <= ms_shim.bootstrap_hi - ms_shim.bootstrap_lo;
}

/* Was p handed out by the C library during start-up?  Then it is forgotten (it goes back
 * to the C library).  Every free of the STACK route asks, and start-up's blocks mostly
 * live for ever (dlsym's): the tests are inline, the lookup (a cache miss) is not. */
static inline bool ms_shim_bootstrap_forget(void *p)
{
    return ms_shim_bootstrap_may_hold(p) && ms_shim_bootstrap_take(p);
}

#endif
