/* SPDX-License-Identifier: MIT */
/*
 * Blocks the C library handed out while memshim was starting (the loader's and dlsym's
 * nested calls, dlopen of libmimalloc).  They belong to the C library for ever; on the STACK
 * route a debug layer would not know them, so free/realloc/usable_size look here first.
 *
 * An open-addressing set with linear probing and tombstones in static memory: start-up may
 * not allocate, and the set stays small (hundreds of blocks at most).  When it is full, new
 * blocks are not recorded (their later free would be reported by a debug layer: the set is
 * sized far above what start-up has ever been seen to need).
 *
 * Thread-safety: written only by the initialising thread before the route is published, and
 * by later frees of the recorded blocks, which a correct program makes once per block.
 */
#include <stdint.h>

#include "stack.h"

#define TOMBSTONE ((void *)1)

static size_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (MS_BOOTSTRAP_SLOTS - 1);
}

void ms_shim_bootstrap_record(void *p)
{
    if (p == NULL || ms_shim.bootstrap_count >= MS_BOOTSTRAP_SLOTS * 3 / 4)
        return;
    for (size_t i = slot_of(p);; i = (i + 1) & (MS_BOOTSTRAP_SLOTS - 1)) {
        if (ms_shim.bootstrap[i] == NULL || ms_shim.bootstrap[i] == TOMBSTONE) {
            uintptr_t a = (uintptr_t)p;
            if (ms_shim.bootstrap_hi == 0)          /* the first one */
                ms_shim.bootstrap_lo = ms_shim.bootstrap_hi = a;
            ms_shim.bootstrap_lo = a < ms_shim.bootstrap_lo ? a : ms_shim.bootstrap_lo;
            ms_shim.bootstrap_hi = a > ms_shim.bootstrap_hi ? a : ms_shim.bootstrap_hi;
            ms_shim.bootstrap[i] = p;
            ms_shim.bootstrap_count++;
            return;
        }
    }
}

static void **find(const void *p)
{
    for (size_t i = slot_of(p), n = 0; n < MS_BOOTSTRAP_SLOTS;
         i = (i + 1) & (MS_BOOTSTRAP_SLOTS - 1), n++) {
        if (ms_shim.bootstrap[i] == p)
            return &ms_shim.bootstrap[i];
        if (ms_shim.bootstrap[i] == NULL)
            return NULL;
    }
    return NULL;
}

bool ms_shim_bootstrap_contains(const void *p)
{
    return ms_shim_bootstrap_may_hold(p) && find(p) != NULL;
}

bool ms_shim_bootstrap_take(void *p)
{
    void **slot = find(p);
    if (slot == NULL)
        return false;
    *slot = TOMBSTONE;
    ms_shim.bootstrap_count--;
    return true;
}
