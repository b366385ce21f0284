/* SPDX-License-Identifier: MIT */
/*
 * The ring of freed blocks' tracebacks (see freedtrace.h).
 */
#include "freedtrace.h"

#include "os.h"
#include "spinlock.h"

struct freed_rec {
    uintptr_t addr;     /* 0: never written */
    uint32_t alloc_tb;
    uint32_t free_tb;
};

static struct freedtrace_state {
    bool on;                 /* configured, and the ring could be had: one load per free */
    struct ms_spin lock;
    struct freed_rec *ring;  /* NULL until the first record */
    size_t cap;              /* entries */
    size_t next;             /* where the next record goes */
} F = {
    .lock = MS_SPIN_INIT,
};

void ms_freedtrace_configure(size_t entries)
{
    ms_spin_lock(&F.lock);
    if (F.ring == NULL) {
        F.cap = entries;
        __atomic_store_n(&F.on, entries != 0, __ATOMIC_RELAXED);
    }
    ms_spin_unlock(&F.lock);
}

bool ms_freedtrace_enabled(void)
{
    return __atomic_load_n(&F.on, __ATOMIC_RELAXED);
}

void ms_freedtrace_record(uintptr_t addr, uint32_t alloc_tb, uint32_t free_tb)
{
    ms_spin_lock(&F.lock);
    if (F.ring == NULL && F.on) {
        /* Pages are touched as the ring fills: a short run pays for what it freed. */
        F.ring = ms_os_map(F.cap * sizeof *F.ring);
        if (F.ring == NULL)
            __atomic_store_n(&F.on, false, __ATOMIC_RELAXED); /* off for good */
    }
    if (F.ring != NULL) {
        F.ring[F.next] = (struct freed_rec){ addr, alloc_tb, free_tb };
        if (++F.next == F.cap)
            F.next = 0;
    }
    ms_spin_unlock(&F.lock);
}

bool ms_freedtrace_find(uintptr_t addr, uint32_t *alloc_tb, uint32_t *free_tb)
{
    bool found = false;
    ms_spin_lock(&F.lock);
    for (size_t k = 0, i = F.next; F.ring != NULL && k < F.cap; k++) {
        i = i == 0 ? F.cap - 1 : i - 1;
        if (F.ring[i].addr == addr) {
            *alloc_tb = F.ring[i].alloc_tb;
            *free_tb = F.ring[i].free_tb;
            found = true;
            break;
        }
    }
    ms_spin_unlock(&F.lock);
    return found;
}

void ms_freedtrace_fork_child(void)
{
    ms_spin_init(&F.lock);
}
