/* SPDX-License-Identifier: MIT */
/*
 * Pool carving, per-class used lists and the used/full/empty state changes (see pool.h).
 * Under the core lock only.  Never calls malloc.
 */
#include "pool.h"

#include "arena.h"
#include "arenamap.h"
#include "check.h"
#include "core.h"
#include "tcache.h"

void ms_pools_init(struct ms_pools *p)
{
    for (unsigned i = 0; i < MS_NUM_CLASSES; i++) {
        p->used[i].next = &p->used[i];
        p->used[i].prev = &p->used[i];
        p->used[i].szidx = i;
    }
}

static void used_unlink(struct ms_pool *p)
{
    p->prev->next = p->next;
    p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

static void used_push_front(struct ms_pools *ps, struct ms_pool *p)
{
    struct ms_pool *head = &ps->used[p->szidx];
    p->next = head->next;
    p->prev = head;
    head->next->prev = p;
    head->next = p;
}

/* A pool fresh from an arena, set up for class cls and put on the used list. */
static struct ms_pool *pool_start(struct ms_core *c, unsigned cls)
{
    struct ms_pool *p = ms_arena_take_pool(c);
    if (p == NULL)
        return NULL;
    if (p->szidx != cls) {
        /* Otherwise it last served this class: header and free list are still valid. */
        p->szidx = cls;
        p->freeblock = NULL;
        p->nextoffset = MS_POOL_OVERHEAD;
        p->maxnextoffset = (uint32_t)(MS_POOL_SIZE - ms_class_size(cls));
    }
    MS_ASSERT(p->count == 0);
    __atomic_store_n(&p->owner, 0, __ATOMIC_RELAXED);
    ms_arenamap_set_pool(p, ms_arenamap_value(cls));
    used_push_front(&c->pools, p);
    return p;
}

/* Append up to want blocks of pool p to the chain ending at *tailp; returns how many.
 * Given-back blocks first (their list is already a chain: it is cut, not rebuilt), then
 * never-used ones, linked in one tight loop.  This is the refill path of every thread
 * cache, so it avoids per-block calls and writes it does not need. */
static unsigned pool_take_run(struct ms_pool *p, size_t size, unsigned want, void ***tailp)
{
    void **tail = *tailp;
    unsigned got = 0;
    void *b = p->freeblock;
    if (b != NULL) {
        *tail = b;
        got = 1;
        while (got < want && *(void **)b != NULL) {
            b = *(void **)b;
            got++;
        }
        p->freeblock = *(void **)b;
        tail = (void **)b;
    }
    if (got < want && p->nextoffset <= p->maxnextoffset) {
        unsigned avail = (unsigned)((p->maxnextoffset - p->nextoffset) / size) + 1;
        unsigned k = want - got < avail ? want - got : avail;
        char *x = (char *)p + p->nextoffset;
        *tail = x;
        for (unsigned i = 1; i < k; i++, x += size)
            *(void **)x = x + size;
        tail = (void **)x;
        p->nextoffset += (uint32_t)(k * size);
        got += k;
    }
    p->count += got;
    *tailp = tail;
    return got;
}

/* The first used pool of the list that owner may take from (see MS_POOL_OWNER_SCAN);
 * the sentinel (start a fresh pool) when the whole list belongs to other live threads. */
static struct ms_pool *pick(struct ms_pools *ps, struct ms_pool *sentinel, unsigned owner)
{
    struct ms_pool *p = sentinel->next;
    for (int i = 0; i < MS_POOL_OWNER_SCAN; i++, p = p->next)
        if (p == sentinel || ms_pools_may_take(ps, p, owner))
            return p;
    return sentinel->next;
}

unsigned ms_pool_alloc_chain(struct ms_core *c, unsigned cls, unsigned n, unsigned owner,
                             void **head)
{
    size_t size = ms_class_size(cls);
    struct ms_pool *sentinel = &c->pools.used[cls];
    void *first = NULL;
    void **tail = &first;
    unsigned got = 0;
    if (MS_UNLIKELY(sentinel->next == NULL))
        ms_pools_init(&c->pools);   /* first block ever: the core is zero-initialised */
    while (got < n) {
        struct ms_pool *p = pick(&c->pools, sentinel, owner);
        if (p == sentinel) {
            /* A new arena would be mapped: first give the transfer lists' blocks back, they
             * may free whole pools (for this class or any other). */
            if (c->arenas.usable == NULL && ms_tcache_reclaim_locked(c))
                continue;
            p = pool_start(c, cls);
            if (p == NULL)
                break;
        }
        __atomic_store_n(&p->owner, (uint16_t)owner, __ATOMIC_RELAXED);
        got += pool_take_run(p, size, n - got, &tail);
        if (ms_pool_is_full(p))
            used_unlink(p);
    }
    *tail = NULL;
    *head = first;
    return got;
}

/* The rare transitions of a block given back: the pool was full (to the front of its
 * used list) or is now empty (to its arena). */
static __attribute__((noinline)) void free_transition(struct ms_core *c, struct ms_pool *p,
                                                      int was_full)
{
    if (p->count == 0) {
        /* A pool of >= 31 blocks cannot go from full to empty in one step. */
        if (!was_full)
            used_unlink(p);
        ms_arenamap_set_pool(p, MS_ARENAMAP_FREE);
        ms_arena_give_pool(c, p);
    } else if (was_full) {
        used_push_front(&c->pools, p);
    }
}

static inline void free_one(struct ms_core *c, void *block)
{
    struct ms_pool *p = ms_pool_of(block);
    void *fb = p->freeblock;
    int was_full = fb == NULL && p->nextoffset > p->maxnextoffset;
    *(void **)block = fb;
    p->freeblock = block;
    if (MS_UNLIKELY(--p->count == 0 || was_full))
        free_transition(c, p, was_full);
}

void ms_pool_free_block(struct ms_core *c, void *block)
{
    MS_ASSERT(ms_pool_of(block)->count > 0 && ms_pool_of(block)->szidx < MS_NUM_CLASSES);
    free_one(c, block);
}

void ms_pool_free_chain(struct ms_core *c, void *head)
{
    /* The flush path of thread caches: every block of a batch passes here, so the loop
     * body is the common case only (see bench_core, python workloads). */
    while (head != NULL) {
        void *next = *(void **)head;
        free_one(c, head);
        head = next;
    }
}

#ifdef MS_EXPENSIVE_CHECKS
void ms_pools_check(struct ms_core *c)
{
    if (c->pools.used[0].next == NULL)
        return;
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        struct ms_pool *s = &c->pools.used[cls];
        for (struct ms_pool *p = s->next; p != s; p = p->next) {
            if (p->next->prev != p || p->szidx != cls || p->count == 0 ||
                p->count >= ms_class_nblocks(cls) || ms_pool_is_full(p) ||
                ms_arenamap_get(p) != ms_arenamap_value(cls) || p->arena == NULL || p->arena->address == 0)
                ms_check_fail("used pool list", __FILE__, __LINE__);
            unsigned nfree = 0;
            for (void *b = p->freeblock; b != NULL; b = *(void **)b) {
                if (ms_pool_of(b) != p)
                    ms_check_fail("pool free list leaves the pool", __FILE__, __LINE__);
                nfree++;
            }
            unsigned carved = (p->nextoffset - MS_POOL_OVERHEAD) / (unsigned)ms_class_size(cls);
            if (p->count + nfree != carved)
                ms_check_fail("pool count", __FILE__, __LINE__);
        }
    }
}
#endif
