/* SPDX-License-Identifier: MIT */
/*
 * Arena management (see arena.h for the rules and why).  Under the core lock only.
 * Never calls malloc: arena objects come from ms_os_map.
 */
#include "arena.h"

#include "arenamap.h"
#include "check.h"
#include "core.h"
#include "os.h"
#include "pool.h"

/* Pool alignment, not arena alignment: the map is pool-grained, so a pool-aligned arena
 * loses nothing, and trimming costs at most 12 KiB of transient address space. */
static void *default_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return ms_os_map_aligned(size, MS_POOL_SIZE);
}

static void default_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    ms_os_unmap(p, size);
}

const struct ms_arena_allocator ms_arena_default_allocator = {
    NULL, default_alloc, default_free,
};

#define MS_ARENA_CHUNK_BYTES ((size_t)64 << 10)

#define MS_ARENA_CHUNK_OBJECTS \
    ((MS_ARENA_CHUNK_BYTES - sizeof(struct ms_arena_chunk)) / sizeof(struct ms_arena))

/* A reused object, else the next never-used one of the newest chunk: objects are handed
 * out in order, so a chunk's pages are touched only as arenas are made (python3 makes a
 * handful; linking the whole chunk up front put 64 KiB into every process's RSS). */
static struct ms_arena *object_get(struct ms_arenas *as)
{
    struct ms_arena *a = as->unused;
    if (a != NULL) {
        as->unused = a->next;
        return a;
    }
    struct ms_arena_chunk *ch = as->chunks;
    if (ch == NULL || ch->n == MS_ARENA_CHUNK_OBJECTS) {
        ch = ms_os_map(MS_ARENA_CHUNK_BYTES);
        if (ch == NULL)
            return NULL;
        ch->n = 0;
        ch->next = as->chunks;
        as->chunks = ch;
    }
    return &ch->obj[ch->n++];
}

static struct ms_arena *new_arena(struct ms_core *c)
{
    struct ms_arenas *as = &c->arenas;
    if (as->arena_size == 0)                 /* first use before (or without) init */
        as->arena_size = MS_ARENA_SIZE_DEFAULT;
    if (as->allocator.alloc == NULL)
        as->allocator = ms_arena_default_allocator;
    if (c->stats)
        ms_stats_print_locked(c, c->stats_fd);   /* PYTHONMALLOCSTATS does it here too */
    struct ms_arena *a = object_get(as);
    if (a == NULL)
        return NULL;
    struct ms_arena_allocator al = as->allocator;
    void *mem = al.alloc(al.ctx, as->arena_size);
    if (mem == NULL)
        goto fail;
    uintptr_t base = (uintptr_t)mem;
    uintptr_t first = ms_arena_first_pool(base);
    unsigned npools = (unsigned)((base + as->arena_size - first) / MS_POOL_SIZE);
    if (npools == 0 || ms_arenamap_mark(first, npools, MS_ARENAMAP_FREE) != 0) {
        al.free(al.ctx, mem, as->arena_size);
        goto fail;
    }
    a->address = base;
    a->pool_address = (char *)first;
    a->freepools = NULL;
    a->ndirty = 0;
    a->nfreepools = a->ntotalpools = npools;
    a->next = a->prev = NULL;
    a->allocator = al;
    as->ntimes_allocated++;
    if (++as->ncurrent > as->highwater)
        as->highwater = as->ncurrent;
    return a;
fail:
    a->address = 0;
    a->next = as->unused;
    as->unused = a;
    return NULL;
}

static size_t dirty_max(const struct ms_arenas *as)
{
    return as->dirty_max ? as->dirty_max : MS_ARENA_DIRTY_MAX_BYTES / MS_POOL_SIZE;
}

/* Over the budget: purge now, or let the pools wait for the program to take them again? */
static int purge_due(struct ms_arenas *as)
{
    if (as->dirty_delay_ns == 0 || as->ndirty > dirty_max(as) * MS_ARENA_DIRTY_HARD_FACTOR)
        return 1;
    uint64_t now = ms_os_coarse_ns();
    if (as->over_since == 0) {
        as->over_since = now;
        return 0;
    }
    return now - as->over_since >= as->dirty_delay_ns;
}

struct ms_pool *ms_arena_take_pool(struct ms_core *c)
{
    struct ms_arenas *as = &c->arenas;
    if (as->usable == NULL) {
        struct ms_arena *a = new_arena(c);
        if (a == NULL)
            return NULL;
        as->usable = a;
        MS_ASSERT(as->nfp2lasta[a->nfreepools] == NULL);
        as->nfp2lasta[a->nfreepools] = a;
    }
    struct ms_arena *a = as->usable;
    unsigned nf = a->nfreepools;
    MS_ASSERT(nf > 0 && a->prev == NULL);
    /* The head is the only arena that can have nf - 1 free pools afterwards. */
    if (as->nfp2lasta[nf] == a)
        as->nfp2lasta[nf] = NULL;
    if (nf > 1)
        as->nfp2lasta[nf - 1] = a;
    a->nfreepools = --nf;
    if (nf == 0) {
        as->usable = a->next;
        if (as->usable != NULL)
            as->usable->prev = NULL;
        a->next = NULL;
    }
    struct ms_pool *p = a->freepools;
    if (p != NULL) {
        a->freepools = p->next;
        if (a->ndirty > 0) {
            a->ndirty--;
            if (--as->ndirty <= dirty_max(as))
                as->over_since = 0; /* taken back: the wait starts again */
        }
    } else {
        p = (struct ms_pool *)a->pool_address;
        a->pool_address += MS_POOL_SIZE;
        p->szidx = MS_POOL_NO_CLASS;
        p->arena = a;
        p->count = 0;
    }
    p->next = p->prev = NULL;
    MS_EXPENSIVE(ms_arenas_check(c));
    return p;
}

static void release(struct ms_core *c, struct ms_arena *a)
{
    struct ms_arenas *as = &c->arenas;
    as->ndirty -= a->ndirty;
    a->ndirty = 0;
    if (as->nfp2lasta[a->nfreepools] == a)
        as->nfp2lasta[a->nfreepools] =
            (a->prev != NULL && a->prev->nfreepools == a->nfreepools) ? a->prev : NULL;
    if (a->prev == NULL)
        as->usable = a->next;
    else
        a->prev->next = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    uintptr_t first = ms_arena_first_pool(a->address);
    ms_arenamap_mark(first, a->ntotalpools, 0);
    a->allocator.free(a->allocator.ctx, (void *)a->address, as->arena_size);
    a->address = 0;
    a->next = as->unused;
    as->unused = a;
    as->ncurrent--;
}

/* Give the pages of an arena's dirty pools back, all but each header's (it holds the
 * free-pool link); they read back as zero. */
static void clean(struct ms_arenas *as, struct ms_arena *a)
{
    size_t page = ms_os_page_size();
    struct ms_pool *q = a->freepools;
    for (unsigned i = 0; i < a->ndirty; i++, q = q->next) {
        if (page < MS_POOL_SIZE)
            ms_os_discard((char *)q + page, MS_POOL_SIZE - page);
        /* Its free list ran through the discarded pages: if the pool serves its class
         * again, it carves from the start.  (Keeping the list lost blocks and broke the
         * pool count: found by fuzz_debug.) */
        q->freeblock = NULL;
        q->nextoffset = MS_POOL_OVERHEAD;
    }
    as->ndirty -= a->ndirty;
    a->ndirty = 0;
}

/* Give back the wholly free arenas but the last usable one (CPython's keep-one rule; they
 * sit at the usable list's tail, being the freest), then clean the freest others (new pools
 * come from the list's head, so these are the least likely to be refilled soon) until at
 * most keep dirty pools are left. */
static void purge(struct ms_core *c, size_t keep)
{
    struct ms_arenas *as = &c->arenas;
    struct ms_arena *a = as->usable;
    while (a != NULL && a->next != NULL)
        a = a->next;
    as->over_since = 0;
    while (a != NULL) {
        struct ms_arena *prev = a->prev;
        int wholly_free = a->nfreepools == a->ntotalpools;
        if (wholly_free && a->next != NULL)
            release(c, a);
        else if (as->ndirty > keep)
            clean(as, a);
        else if (!wholly_free)
            break;
        a = prev;
    }
}

void ms_arena_give_pool(struct ms_core *c, struct ms_pool *p)
{
    struct ms_arenas *as = &c->arenas;
    struct ms_arena *a = p->arena;
    p->next = a->freepools;
    a->freepools = p;
    unsigned nf = a->nfreepools;
    struct ms_arena *lastnf = as->nfp2lasta[nf];
    if (lastnf == a) {
        struct ms_arena *q = a->prev;
        as->nfp2lasta[nf] = (q != NULL && q->nfreepools == nf) ? q : NULL;
    }
    a->nfreepools = ++nf;

    if (nf == a->ntotalpools && a->next != NULL && (as->dirty_delay_ns == 0 || a->ndirty == 0)) {
        /* Wholly free and not the last usable arena: give it back now (CPython's rule).
         * With a delay it waits with the other free pools (see purge), unless its pages
         * were given back already: then keeping it saves nothing.  nf is the count no
         * other arena can share with it here, so nfp2lasta[nf] is not a. */
        release(c, a);
        MS_EXPENSIVE(ms_arenas_check(c));
        return;
    }
    a->ndirty++;
    as->ndirty++;
    if (nf == 1) {
        /* It was full (on no list): it becomes the head, the fullest usable arena. */
        a->next = as->usable;
        a->prev = NULL;
        if (as->usable != NULL)
            as->usable->prev = a;
        as->usable = a;
        if (as->nfp2lasta[1] == NULL)
            as->nfp2lasta[1] = a;
    } else {
        if (as->nfp2lasta[nf] == NULL)
            as->nfp2lasta[nf] = a;
        if (a != lastnf) {
            /* Slide right, to just after the last arena that had nf - 1 free pools. */
            if (a->prev != NULL)
                a->prev->next = a->next;
            else
                as->usable = a->next;
            a->next->prev = a->prev;
            a->prev = lastnf;
            a->next = lastnf->next;
            if (a->next != NULL)
                a->next->prev = a;
            lastnf->next = a;
        }
    }
    if (as->ndirty > dirty_max(as) && purge_due(as))
        purge(c, dirty_max(as) / 2);
    MS_EXPENSIVE(ms_arenas_check(c));
}

bool ms_arena_purge_all(struct ms_core *c)
{
    struct ms_arenas *as = &c->arenas;
    size_t arenas = as->ncurrent, dirty = as->ndirty;
    purge(c, 0);
    MS_EXPENSIVE(ms_arenas_check(c));
    return as->ncurrent != arenas || as->ndirty != dirty;
}

#ifdef MS_EXPENSIVE_CHECKS
void ms_arenas_check(struct ms_core *c)
{
    struct ms_arenas *as = &c->arenas;
    struct ms_arena *prev = NULL;
    size_t ndirty = 0;
    for (struct ms_arena *a = as->usable; a != NULL; prev = a, a = a->next) {
        if (a->prev != prev || a->address == 0 || a->nfreepools == 0 ||
            (prev != NULL && prev->nfreepools > a->nfreepools))
            ms_check_fail("usable arena list order", __FILE__, __LINE__);
        int last_of_count = a->next == NULL || a->next->nfreepools != a->nfreepools;
        if ((as->nfp2lasta[a->nfreepools] == a) != last_of_count)
            ms_check_fail("nfp2lasta", __FILE__, __LINE__);
        unsigned n = 0;
        for (struct ms_pool *p = a->freepools; p != NULL; p = p->next)
            n++;
        if (a->ndirty > n)
            ms_check_fail("arena dirty pool count", __FILE__, __LINE__);
        ndirty += a->ndirty;
        uintptr_t end = ms_arena_first_pool(a->address) + (uintptr_t)a->ntotalpools * MS_POOL_SIZE;
        n += (unsigned)((end - (uintptr_t)a->pool_address) / MS_POOL_SIZE);
        if (n != a->nfreepools)
            ms_check_fail("arena free pool count", __FILE__, __LINE__);
    }
    if (ndirty != as->ndirty)
        ms_check_fail("dirty pool total", __FILE__, __LINE__);
    for (unsigned n = 0; n <= MS_MAX_POOLS_PER_ARENA; n++) {
        struct ms_arena *a = as->nfp2lasta[n];
        if (a != NULL && (a->nfreepools != n || a->address == 0))
            ms_check_fail("nfp2lasta entry", __FILE__, __LINE__);
    }
}
#endif
