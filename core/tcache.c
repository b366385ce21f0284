/* SPDX-License-Identifier: MIT */
/*
 * Thread caches: slow paths, creation, teardown, transfer lists (see tcache.h for the
 * design).  The fast paths are the inline functions in tcache.h.  Everything here that
 * touches shared state does so under the core lock.  Never calls malloc (cache structs come
 * from ms_os_map); pthread_setspecific may, and that is handled (PHASE_CREATING).
 */
#include "tcache.h"

#include "core.h"
#include "os.h"
#include "pool.h"

enum ms_tcache_phase { PHASE_NONE, PHASE_CREATING, PHASE_LIVE, PHASE_DEAD };

/* Bins all empty with room 0: every fast path through it fails over to the slow path. */
static struct ms_tcache placeholder;

__thread struct ms_tcache *ms_tcache_self = &placeholder;
static __thread unsigned char tls_phase;

unsigned ms_tcache_batch(unsigned cls)
{
    size_t n = 4096 / ms_class_size(cls);
    return n < 16 ? 16 : n > 64 ? 64 : (unsigned)n;
}

size_t ms_tcache_depot_max(unsigned cls)
{
    return MS_DEPOT_MAX_BYTES / (ms_tcache_batch(cls) * ms_class_size(cls));
}

size_t ms_tcache_spare_max(unsigned cls)
{
    return MS_SPARE_MAX_BYTES / (ms_tcache_batch(cls) * ms_class_size(cls));
}

/* ---- the locked central path: no cache for this thread ---- */

static void *central_alloc(struct ms_core *c, unsigned cls)
{
    void *p;
    ms_core_lock(c);
    unsigned got = ms_pool_alloc_chain(c, cls, 1, 0, &p);
    MS_EXPENSIVE(ms_core_check_invariants(c));
    ms_core_unlock(c);
    return got ? p : NULL;
}

static void central_free(struct ms_core *c, void *p)
{
    ms_core_lock(c);
    ms_pool_free_block(c, p);
    MS_EXPENSIVE(ms_core_check_invariants(c));
    ms_core_unlock(c);
}

/* ---- batches; transfer lists (each under its own lock) ---- */

static void batch_link(void *batch, void *next) { ((void **)batch)[1] = next; }
static void *batch_next(void *batch) { return ((void **)batch)[1]; }

/* Give a list of batches back to the pools.  Under the core lock. */
static void batches_to_pools(struct ms_core *c, void *b)
{
    while (b != NULL) {
        void *next = batch_next(b);
        ms_pool_free_chain(c, b);
        b = next;
    }
}

/* ---- a thread's spare stack (its own: no lock) ---- */

static void spare_push(struct ms_tcache *t, unsigned cls, void *batch)
{
    batch_link(batch, t->spare[cls]);
    t->spare[cls] = batch;
    t->nspare[cls]++;
}

static void *spare_pop(struct ms_tcache *t, unsigned cls)
{
    void *b = t->spare[cls];
    if (b != NULL) {
        t->spare[cls] = batch_next(b);
        t->nspare[cls]--;
    }
    return b;
}

/* Give a thread's spare stacks back to the pools.  Under the core lock. */
static bool spares_to_pools(struct ms_core *c, struct ms_tcache *t)
{
    bool moved = false;
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        moved |= t->spare[cls] != NULL;
        batches_to_pools(c, t->spare[cls]);
        t->spare[cls] = NULL;
        t->nspare[cls] = 0;
    }
    return moved;
}

/* Detach all batches of a transfer list.  Under its lock. */
static void *depot_take_all(struct ms_depot *d)
{
    void *all = d->batches;
    d->batches = NULL;
    d->n = 0;
    return all;
}

/* A full batch from a thread.  No lock held on entry. */
static void depot_push(struct ms_core *c, unsigned cls, void *batch)
{
    struct ms_depot *d = &c->tc.depot[cls];
    pthread_mutex_lock(&d->lock);
    if (!d->bypass && d->n < ms_tcache_depot_max(cls)) {
        batch_link(batch, d->batches);
        d->batches = batch;
        d->n++;
        pthread_mutex_unlock(&d->lock);
        return;
    }
    /* Nobody is taking this class: let its pools (and maybe arenas) drain. */
    batch_link(batch, depot_take_all(d));
    d->bypass = true;
    pthread_mutex_unlock(&d->lock);
    ms_core_lock(c);
    batches_to_pools(c, batch);
    MS_EXPENSIVE(ms_core_check_invariants(c));
    ms_core_unlock(c);
}

/* A full batch for a thread, or NULL.  No lock held on entry.  Not a batch of another
 * live thread's pool: that thread will want it back, and taking it would interleave two
 * threads' blocks (pool.h). */
static void *depot_pop(struct ms_core *c, unsigned cls, unsigned owner)
{
    struct ms_depot *d = &c->tc.depot[cls];
    pthread_mutex_lock(&d->lock);
    void *b = d->batches;
    if (b != NULL && !ms_pools_may_take(&c->pools, ms_pool_of(b), owner))
        b = NULL;
    else
        d->bypass = false;      /* somebody takes blocks of this class again */
    if (b != NULL) {
        d->batches = batch_next(b);
        d->n--;
    }
    pthread_mutex_unlock(&d->lock);
    return b;
}

/* ---- creation and teardown ---- */

static void registry_unlink(struct ms_core *c, struct ms_tcache *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        c->tc.live = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
}

static void bins_flush(struct ms_core *c, struct ms_tcache *t)
{
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        struct ms_bin *b = &t->bins[ms_arenamap_value(cls)];
        ms_pool_free_chain(c, b->head);
        b->head = NULL;
        b->room = ms_tcache_batch(cls);
    }
    spares_to_pools(c, t);
}

static void destructor(void *arg)
{
    struct ms_tcache *t = arg;
    struct ms_core *c = &ms_core;
    /* From here on this thread uses the locked central path. */
    ms_tcache_self = &placeholder;
    tls_phase = PHASE_DEAD;
    ms_core_lock(c);
    bins_flush(c, t);
    registry_unlink(c, t);
    ms_pools_owner_live(&c->pools, t->owner, 0);
    t->next = c->tc.retired;
    c->tc.retired = t;
    MS_EXPENSIVE(ms_core_check_invariants(c));
    ms_core_unlock(c);
}

static struct ms_tcache *cache_create(struct ms_core *c)
{
    if (tls_phase != PHASE_NONE || !__atomic_load_n(&c->tc.key_ok, __ATOMIC_ACQUIRE))
        return NULL;
    tls_phase = PHASE_CREATING;
    ms_core_lock(c);
    struct ms_tcache *t = c->tc.retired;
    if (t != NULL)
        c->tc.retired = t->next;
    ms_core_unlock(c);
    if (t == NULL && (t = ms_os_map(sizeof *t)) == NULL) {
        tls_phase = PHASE_NONE;
        return NULL;
    }
    /* Bins of values that are not classes stay zero (room 0) from ms_os_map on. */
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        t->bins[ms_arenamap_value(cls)].head = t->spare[cls] = NULL;
        t->bins[ms_arenamap_value(cls)].room = ms_tcache_batch(cls);
        t->nspare[cls] = 0;
        t->spare_cap[cls] = 1;
        t->refilled[cls] = false;
    }
    /* May call malloc (glibc, for keys >= 32): that call sees PHASE_CREATING. */
    if (pthread_setspecific(c->tc.key, t) != 0) {
        ms_core_lock(c);
        t->next = c->tc.retired;
        c->tc.retired = t;
        ms_core_unlock(c);
        tls_phase = PHASE_DEAD;    /* do not retry on every call */
        return NULL;
    }
    ms_core_lock(c);
    /* A fresh struct gets an owner id (a reused one keeps its own).  Past the last id:
     * none, no pools of its own, still correct. */
    if (t->owner == 0 && c->tc.nowners < MS_POOL_OWNERS - 1)
        t->owner = (uint16_t)++c->tc.nowners;
    if (t->owner != 0)
        ms_pools_owner_live(&c->pools, t->owner, 1);
    t->prev = NULL;
    t->next = c->tc.live;
    if (t->next != NULL)
        t->next->prev = t;
    c->tc.live = t;
    ms_core_unlock(c);
    ms_tcache_self = t;
    tls_phase = PHASE_LIVE;
    return t;
}

int ms_tcache_setup(struct ms_core *c)
{
    if (c->tc.key_ok)
        return 0;
    if (pthread_key_create(&c->tc.key, destructor) != 0)
        return -1;
    __atomic_store_n(&c->tc.key_ok, true, __ATOMIC_RELEASE);
    return 0;
}

/* ---- slow paths ---- */

void *ms_tcache_alloc_slow(struct ms_bin *b)
{
    struct ms_core *c = &ms_core;
    struct ms_tcache *t = ms_tcache_self;
    unsigned cls = (unsigned)(b - &t->bins[ms_arenamap_value(0)]);
    if (t == &placeholder && (t = cache_create(c)) == NULL)
        return central_alloc(c, cls);
    b = &t->bins[ms_arenamap_value(cls)];
    if (b->head == NULL) {
        unsigned max = ms_tcache_batch(cls);
        void *spare = spare_pop(t, cls);
        if (spare != NULL) {
            b->head = spare;
            b->room = 0;
        } else {
            void *batch = depot_pop(c, cls, t->owner);
            unsigned n = max;
            t->refilled[cls] = true;
            if (batch == NULL) {
                ms_core_lock(c);
                n = ms_pool_alloc_chain(c, cls, n, t->owner, &batch);
                MS_EXPENSIVE(ms_core_check_invariants(c));
                ms_core_unlock(c);
            }
            if (n == 0)
                return NULL;
            b->head = batch;
            b->room = max - n;
        }
    }
    void *p = b->head;
    b->head = *(void **)p;
    b->room++;
    return p;
}

void ms_tcache_free_slow(void *p, unsigned cls)
{
    struct ms_core *c = &ms_core;
    struct ms_tcache *t = ms_tcache_self;
    if (t == &placeholder && (t = cache_create(c)) == NULL) {
        central_free(c, p);
        return;
    }
    struct ms_bin *b = &t->bins[ms_arenamap_value(cls)];
    if (b->room == 0) {
        /* Full: it goes onto the spare stack, whose bound adapts (see tcache.h). */
        if (t->nspare[cls] >= t->spare_cap[cls]) {
            if (t->refilled[cls] && t->spare_cap[cls] < ms_tcache_spare_max(cls)) {
                t->spare_cap[cls] = (uint16_t)(2 * t->spare_cap[cls]);
                if (t->spare_cap[cls] > ms_tcache_spare_max(cls))
                    t->spare_cap[cls] = (uint16_t)ms_tcache_spare_max(cls);
            } else if (!t->refilled[cls] && t->spare_cap[cls] > 1) {
                t->spare_cap[cls]--;
            }
            t->refilled[cls] = false;
            while (t->nspare[cls] >= t->spare_cap[cls])
                depot_push(c, cls, spare_pop(t, cls));
        }
        spare_push(t, cls, b->head);
        b->head = NULL;
        b->room = ms_tcache_batch(cls);
    }
    *(void **)p = b->head;
    b->head = p;
    b->room--;
}

/* ---- whole-cache operations ---- */

void ms_tcache_flush_self(struct ms_core *c)
{
    ms_core_lock(c);
    if (tls_phase == PHASE_LIVE)
        bins_flush(c, ms_tcache_self);
    ms_tcache_reclaim_locked(c);
    MS_EXPENSIVE(ms_core_check_invariants(c));
    ms_core_unlock(c);
}

bool ms_tcache_reclaim_locked(struct ms_core *c)
{
    /* The calling thread's spares are its own to take; other threads' are not (that would
     * need synchronisation on their fast paths). */
    bool moved = tls_phase == PHASE_LIVE && spares_to_pools(c, ms_tcache_self);
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        struct ms_depot *d = &c->tc.depot[cls];
        pthread_mutex_lock(&d->lock);       /* core -> list: the lock order */
        void *all = depot_take_all(d);
        pthread_mutex_unlock(&d->lock);
        moved |= all != NULL;
        batches_to_pools(c, all);
    }
    return moved;
}

void ms_tcache_fork_prepare(struct ms_core *c)
{
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++)
        pthread_mutex_lock(&c->tc.depot[cls].lock);
}

void ms_tcache_fork_parent(struct ms_core *c)
{
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++)
        pthread_mutex_unlock(&c->tc.depot[cls].lock);
}

void ms_tcache_each_depot(struct ms_core *c, void (*fn)(unsigned cls, void *batches,
                                                         size_t n))
{
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        struct ms_depot *d = &c->tc.depot[cls];
        pthread_mutex_lock(&d->lock);
        fn(cls, d->batches, d->n);
        pthread_mutex_unlock(&d->lock);
    }
}

void ms_tcache_after_fork_child(struct ms_core *c)
{
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++)
        pthread_mutex_init(&c->tc.depot[cls].lock, NULL);
    struct ms_tcache *self = tls_phase == PHASE_LIVE ? ms_tcache_self : NULL;
    struct ms_tcache *t = c->tc.live;
    while (t != NULL) {
        struct ms_tcache *next = t->next;
        if (t != self) {
            /* Its thread does not exist here: its blocks are abandoned, the struct reused. */
            ms_pools_owner_live(&c->pools, t->owner, 0);
            t->next = c->tc.retired;
            c->tc.retired = t;
        }
        t = next;
    }
    c->tc.live = self;
    if (self != NULL)
        self->prev = self->next = NULL;
}

size_t ms_tcache_count(struct ms_core *c, size_t cached[MS_NUM_CLASSES],
                       size_t depot[MS_NUM_CLASSES])
{
    size_t nthreads = 0;
    for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
        struct ms_depot *d = &c->tc.depot[cls];
        cached[cls] = 0;
        pthread_mutex_lock(&d->lock);
        depot[cls] = d->n * ms_tcache_batch(cls);
        pthread_mutex_unlock(&d->lock);
    }
    for (struct ms_tcache *t = c->tc.live; t != NULL; t = t->next) {
        nthreads++;
        for (unsigned cls = 0; cls < MS_NUM_CLASSES; cls++) {
            const struct ms_bin *b = &t->bins[ms_arenamap_value(cls)];
            unsigned max = ms_tcache_batch(cls);
            /* Racy by nature (the owner runs its fast path meanwhile): a snapshot. */
            uint32_t room = __atomic_load_n(&b->room, __ATOMIC_RELAXED);
            uint16_t nspare = __atomic_load_n(&t->nspare[cls], __ATOMIC_RELAXED);
            cached[cls] += (room < max ? max - room : 0) + (size_t)nspare * max;
        }
    }
    return nthreads;
}
