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

#include "allocator.h"
#include "options.h"

enum ms_route {
    MS_ROUTE_UNINIT = 0,
    MS_ROUTE_PYMALLOC,
    MS_ROUTE_LIBC,
    MS_ROUTE_STACK,
    MS_ROUTE_BOOTSTRAP,
};

#define MS_BOOTSTRAP_SLOTS 2048 /* a power of two */

struct ms_shim {
    int route;                      /* enum ms_route; read on every call (relaxed) */
    int init_state;                 /* 0 not started, 1 running, 2 done (atomic) */
    struct ms_allocator top;        /* the composed stack, for MS_ROUTE_STACK */
    struct ms_options options;
    /* Blocks the C library handed out while memshim was initialising: they must go back
     * to the C library even when the stack's top layer would not know them. */
    void *bootstrap[MS_BOOTSTRAP_SLOTS];
    int bootstrap_count;
};

extern struct ms_shim ms_shim;

/* The route for this call, initialising memshim first if needed.  Returns
 * MS_ROUTE_BOOTSTRAP for calls made by initialisation itself. */
enum ms_route ms_shim_route_slow(void);

static inline enum ms_route ms_shim_route(void)
{
    enum ms_route r = (enum ms_route)__atomic_load_n(&ms_shim.route, __ATOMIC_ACQUIRE);
    return __builtin_expect(r != MS_ROUTE_UNINIT, 1) ? r : ms_shim_route_slow();
}

/* Bootstrap bookkeeping (shim/bootstrap.c; only consulted on the STACK route). */
void ms_shim_bootstrap_record(void *p);
bool ms_shim_bootstrap_contains(const void *p);
bool ms_shim_bootstrap_forget(void *p);

#endif
