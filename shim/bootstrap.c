/* SPDX-License-Identifier: MIT */
/*
 * Blocks the C library handed out while memshim was starting (the loader's and dlsym's
 * nested calls, dlopen of libmimalloc).  They belong to the C library for ever; on the STACK
 * route a debug layer would not know them, so free/realloc/usable_size look here first.
 *
 * A pointer set (ptrset.h) in static memory: start-up may not allocate, and the set stays
 * small (hundreds of blocks at most).  When it is full, new blocks are not recorded (their
 * later free would be reported by a debug layer: the set is sized far above what start-up
 * has ever been seen to need).
 *
 * Thread-safety: written only by the initialising thread before the route is published, and
 * by later frees of the recorded blocks, which a correct program makes once per block.
 */
#include <stdint.h>

#include "ptrset.h"
#include "stack.h"

void ms_shim_bootstrap_record(void *p)
{
    if (p == NULL || ms_shim.bootstrap_count >= MS_BOOTSTRAP_SLOTS * 3 / 4)
        return;
    uintptr_t a = (uintptr_t)p;
    if (ms_shim.bootstrap_hi == 0)          /* the first one */
        ms_shim.bootstrap_lo = ms_shim.bootstrap_hi = a;
    ms_shim.bootstrap_lo = a < ms_shim.bootstrap_lo ? a : ms_shim.bootstrap_lo;
    ms_shim.bootstrap_hi = a > ms_shim.bootstrap_hi ? a : ms_shim.bootstrap_hi;
    ms_ptrset_insert(ms_shim.bootstrap, MS_BOOTSTRAP_SLOTS, p);
    ms_shim.bootstrap_count++;
}

bool ms_shim_bootstrap_contains(const void *p)
{
    return ms_shim_bootstrap_may_hold(p)
           && ms_ptrset_find(ms_shim.bootstrap, MS_BOOTSTRAP_SLOTS, p) != NULL;
}

bool ms_shim_bootstrap_take(void *p)
{
    void **slot = ms_ptrset_find(ms_shim.bootstrap, MS_BOOTSTRAP_SLOTS, p);
    if (slot == NULL)
        return false;
    ms_ptrset_remove(slot);
    ms_shim.bootstrap_count--;
    return true;
}
