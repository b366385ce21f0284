/* SPDX-License-Identifier: MIT */
/*
 * The per-thread "memshim is allocating for itself" guard (tracemalloc's and heaptrack's
 * reentrancy flag).  While it is raised, the shim sends every malloc-family call of this
 * thread straight to the C library, past every layer: libunwind's and libdw's own
 * allocations are then neither traced, nor checked, nor able to deadlock on a layer lock.
 * A block allocated under the guard must be freed under the guard (the layers that raise
 * it keep such blocks to themselves).
 *
 * Lives in core/ only because every layer may raise it; core itself never does.
 */
#ifndef MS_GUARD_H
#define MS_GUARD_H

extern _Thread_local unsigned ms_guard_depth;

static inline void ms_guard_enter(void) { ms_guard_depth++; }
static inline void ms_guard_leave(void) { ms_guard_depth--; }
static inline int ms_guard_active(void) { return ms_guard_depth != 0; }

#endif
