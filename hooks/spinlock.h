/* SPDX-License-Identifier: MIT */
/*
 * A test-and-test-and-set spinlock for the debug layer's short critical sections (a few
 * stores into a hash table or a ring).  Cheaper than a pthread mutex when uncontended:
 * one atomic exchange to take it and a plain release store to drop it (a mutex also
 * needs an atomic on unlock to look for waiters).  Spinners yield the CPU after a short
 * while, so a holder that was preempted (or is growing a table with mmap) gets it back.
 *
 * Taking it is a plain store while the process has one thread (solo.h).
 * Never allocates, never blocks in the kernel except sched_yield.  A child after fork()
 * re-initialises every lock it may have inherited held (ms_spin_init).
 */
#ifndef MS_SPINLOCK_H
#define MS_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

#include "solo.h"

#if defined(__x86_64__) || defined(__i386__)
#define MS_CPU_RELAX() __builtin_ia32_pause()
#else
#define MS_CPU_RELAX() atomic_signal_fence(memory_order_seq_cst)
#endif

struct ms_spin {
    atomic_int held;
};

#define MS_SPIN_INIT { 0 }

static inline void ms_spin_init(struct ms_spin *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_relaxed);
}

static inline void ms_spin_lock(struct ms_spin *l)
{
    if (ms_solo()) {
        /* Nobody else to exclude; a lock held here now would be held by ourselves,
         * which spinning would not cure either. */
        atomic_store_explicit(&l->held, 1, memory_order_relaxed);
        return;
    }
    while (atomic_exchange_explicit(&l->held, 1, memory_order_acquire)) {
        for (int spins = 0; atomic_load_explicit(&l->held, memory_order_relaxed); spins++) {
            if (spins < 64)
                MS_CPU_RELAX();
            else
                sched_yield();
        }
    }
}

/* Take it only if it is free (from a signal handler: the interrupted code may hold it). */
static inline int ms_spin_trylock(struct ms_spin *l)
{
    return atomic_load_explicit(&l->held, memory_order_relaxed) == 0
           && atomic_exchange_explicit(&l->held, 1, memory_order_acquire) == 0;
}

static inline void ms_spin_unlock(struct ms_spin *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif
