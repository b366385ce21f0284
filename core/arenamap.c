/* SPDX-License-Identifier: MIT */
/*
 * Writing side of the address map (see arenamap.h for the layout and the rules).  Runs
 * only under the core lock when an arena is mapped or released.  Leaves come from
 * ms_os_map and are never freed: a lock-free reader may hold a leaf pointer at any time.
 */
#include "arenamap.h"

#include "os.h"

struct ms_arenamap ms_arenamap;

static uint8_t *leaf_for(uintptr_t a, int create)
{
    size_t i = a >> (MS_POOL_BITS + MS_ARENAMAP_LEAF_BITS);
    uint8_t *leaf = ms_arenamap.root[i];
    if (leaf == NULL && create) {
        leaf = ms_os_map(MS_ARENAMAP_LEAF_LEN);
        if (leaf == NULL)
            return NULL;
        ms_arenamap.nleaves++;
        /* Release: a reader that sees the pointer sees the zero-filled leaf. */
        __atomic_store_n(&ms_arenamap.root[i], leaf, __ATOMIC_RELEASE);
    }
    return leaf;
}

int ms_arenamap_mark(uintptr_t first, size_t npools, unsigned v)
{
    MS_ASSERT((first & MS_POOL_MASK) == 0);
    if (npools == 0)
        return 0;
    uintptr_t last = first + (npools - 1) * MS_POOL_SIZE;
    if (last < first || (last >> MS_ARENAMAP_ADDR_BITS) != 0)
        return -1;
    /* Create every leaf first, so that failure leaves nothing half-marked. */
    for (uintptr_t a = first;; a += MS_POOL_SIZE * MS_ARENAMAP_LEAF_LEN) {
        if (leaf_for(a, 1) == NULL)
            return -1;
        if ((a >> (MS_POOL_BITS + MS_ARENAMAP_LEAF_BITS)) ==
            (last >> (MS_POOL_BITS + MS_ARENAMAP_LEAF_BITS)))
            break;
    }
    if (leaf_for(last, 1) == NULL)
        return -1;
    for (size_t k = 0; k < npools; k++)
        ms_arenamap_set_pool((const void *)(first + k * MS_POOL_SIZE), v);
    return 0;
}
