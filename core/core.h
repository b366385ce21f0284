/* SPDX-License-Identifier: MIT */
/*
 * The shared core's one state struct and its lock: pools (pool.c), arenas (arena.c), the
 * transfer lists and the registry of thread caches (tcache.c), the configuration, and the
 * lower allocator.  One process-wide instance, ms_core (defined in pymalloc.c).
 *
 * Thread-safety: every field is read and written under ms_core.lock, except the
 * configuration fields marked "fixed", which are written once before the first arena and
 * only read afterwards.  Not on the hot path: the thread caches in front (tcache.h) are.
 */
#ifndef MS_CORE_H
#define MS_CORE_H

#include <pthread.h>
#include <stdbool.h>

#include "allocator.h"
#include "arena.h"
#include "pool.h"
#include "tcache.h"

struct ms_core {
    pthread_mutex_t lock;
    struct ms_allocator lower;     /* 0 and > 512 bytes, foreign pointers (fixed) */
    bool stats;                    /* stats before every new arena (fixed) */
    int stats_fd;                  /* ... on this descriptor */
    struct ms_pools pools;
    struct ms_arenas arenas;
    struct ms_tcache_shared tc;
};

extern struct ms_core ms_core __attribute__((visibility("hidden")));

static inline void ms_core_lock(struct ms_core *c) { pthread_mutex_lock(&c->lock); }
static inline void ms_core_unlock(struct ms_core *c) { pthread_mutex_unlock(&c->lock); }

/* The stats report with the lock already held (stats.c). */
void ms_stats_print_locked(struct ms_core *c, int fd);

#ifdef MS_EXPENSIVE_CHECKS
/* Walk every structure and abort on the first inconsistency.  Under the lock. */
void ms_core_check_invariants(struct ms_core *c);
#endif

#endif
