/* SPDX-License-Identifier: MIT */
/*
 * The trace layer and its table of live blocks (see trace.h).
 *
 * The table: 64 shards chosen by a hash of the address, each an open-addressing table with
 * linear probing and backward-shift deletion (no tombstones, so lookups stay short after
 * millions of frees), under its own spinlock (spinlock.h: the critical sections are a few
 * stores; a pthread mutex cost 84 more instructions a malloc+free pair, and a second atomic:
 * callgrind, tests/bench/churn 1M), padded to a cache line.  An entry is 16 bytes
 * {address, 32-bit size, 32-bit traceback id}; tables grow at 1/2 load, so a live block
 * costs 32..64 bytes (the budget is 64).  Blocks of 4 GiB and more, and blocks tracked in
 * another domain through ms_trace_track, go to a small side table of full entries under
 * one lock, looked at only when it is not empty.
 *
 * Speed: with hundreds of thousands of live blocks the table is far bigger than the caches,
 * and the first probe of a slot is a cache miss that showed as 80% of trace_insert's and
 * trace_remove's time (perf, python3 objects.py).  So the load stays at most 1/2 (short
 * probe runs: one line touched in the common case), and malloc prefetches its slot before
 * the stack capture, which hides the miss.  Frees cannot prefetch (the address is known
 * only at the call), so the hash keeps neighbours together instead: the blocks of one
 * 512-byte region have consecutive home slots (the region is hashed, the offset in it is
 * added), and a program freeing neighbouring objects one after another (Python's gc, a
 * tree's destructor) finds their entries in lines it has just touched.  trace_remove went
 * from 14% to 9% of python3 objects.py's samples (perf).
 *
 * Ordering against the lower allocator: a trace is added after the lower malloc returned
 * (the address is ours until freed) and removed before the lower free (once freed, another
 * thread may get the same address and add its own trace).  The trace taken out for a free
 * or realloc waits in a per-thread slot until the lower call returns, so a debug layer below
 * that finds the block corrupt can still print where it was allocated.  A failed realloc
 * puts the trace back (the shard just lost an entry, so that cannot need more memory).
 *
 * A block that a quarantine below keeps after its free keeps its tracebacks too: the
 * free's own is captured and both go to freedtrace.h's ring, for the reports about freed
 * blocks.  After the lower free, so that a double free found in it is reported with the
 * first free's traceback, not its own.
 *
 * Accounting (current/peak) happens under the shard lock; clear and stop take every lock.
 */
#include "trace.h"

#include <pthread.h>
#include <string.h>

#include "freedtrace.h"
#include "guard.h"
#include "os.h"
#include "solo.h"
#include "spinlock.h"
#include "symbolize.h"
#include "unwind.h"

#define MS_TRACE_SHARD_BITS 6
#define MS_TRACE_SHARDS (1u << MS_TRACE_SHARD_BITS)
#define MS_TRACE_MIN_SLOTS 512
#define MS_TRACE_REGION_BITS 9 /* see the top comment: neighbours share lines */
#define MS_TRACE_BIG_SIZE UINT32_MAX /* sizes from here on live in the side table */

struct ms_trace_entry {
    uintptr_t addr; /* 0: empty slot */
    uint32_t size;
    uint32_t tb;
};

struct ms_trace_shard {
    struct ms_spin lock;
    struct ms_trace_entry *slots;
    size_t mask;  /* slots - 1; meaningless while slots is NULL */
    size_t count;
} __attribute__((aligned(64)));

/* Side table entry: other domains and huge blocks. */
struct ms_trace_other {
    uintptr_t addr; /* 0: empty slot */
    size_t size;
    uint32_t domain;
    uint32_t tb;
};

/* The layer over one lower allocator: ms_trace_init may be called once per family (malloc,
 * new, new[], the API domains) so that each keeps the lower allocator of its own; all of
 * them share the one trace state below. */
#define MS_TRACE_MAX_LOWERS 8

struct ms_trace_state {
    struct ms_allocator lowers[MS_TRACE_MAX_LOWERS];   /* the ctx of each wrapper */
    unsigned nlowers;
    int tracing;      /* atomic */
    unsigned limit;   /* frames per traceback */
    size_t current;   /* atomic: bytes in traced blocks */
    size_t peak;      /* atomic */
    size_t mapped;    /* atomic: bytes of trace tables */
    size_t sampled;   /* atomic: current at the last timeline sample */
    void *(*map)(size_t size);
    pthread_mutex_t other_lock;
    struct ms_trace_other *other;
    size_t other_mask;
    size_t other_count; /* atomic reads outside the lock: 0 means "skip the side table" */
    struct ms_trace_shard shards[MS_TRACE_SHARDS];
};

static struct ms_trace_state trace_state = {
    .other_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* The trace taken out for this thread's free/realloc in progress (see the top comment). */
struct ms_trace_pending {
    uintptr_t addr;
    size_t size;
    uint32_t tb;
};
static _Thread_local struct ms_trace_pending trace_pending;

/* ---- memory ---------------------------------------------------------------------- */

static void *trace_map(size_t size)
{
    void *p = trace_state.map ? trace_state.map(size) : ms_os_map(size);
    if (p)
        __atomic_add_fetch(&trace_state.mapped, size, __ATOMIC_RELAXED);
    return p;
}

static void trace_unmap(void *p, size_t size)
{
    ms_os_unmap(p, size);
    __atomic_sub_fetch(&trace_state.mapped, size, __ATOMIC_RELAXED);
}

void ms_trace_set_mapper(void *(*map)(size_t size))
{
    trace_state.map = map;
}

/* ---- accounting (under a table lock) --------------------------------------------- */

/* A timeline sample when traced memory moved by a step since the last one, or when the
 * last one is 10 ms old. */
static void timeline_check(size_t cur)
{
    size_t last = __atomic_load_n(&trace_state.sampled, __ATOMIC_RELAXED);
    if (cur >= last + MS_TIMELINE_STEP || cur + MS_TIMELINE_STEP <= last || ms_timeline_due()) {
        __atomic_store_n(&trace_state.sampled, cur, __ATOMIC_RELAXED);
        ms_timeline_add(cur);
    }
}

/* current += delta; lock-free across shards, a plain update when alone (solo.h). */
static size_t account_move(size_t delta)
{
    if (ms_solo()) {
        size_t cur = __atomic_load_n(&trace_state.current, __ATOMIC_RELAXED) + delta;
        __atomic_store_n(&trace_state.current, cur, __ATOMIC_RELAXED);
        return cur;
    }
    return __atomic_add_fetch(&trace_state.current, delta, __ATOMIC_RELAXED);
}

static void account_add(size_t size)
{
    size_t cur = account_move(size);
    size_t peak = __atomic_load_n(&trace_state.peak, __ATOMIC_RELAXED);
    while (cur > peak &&
           !__atomic_compare_exchange_n(&trace_state.peak, &peak, cur, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
    timeline_check(cur);
}

static void account_sub(size_t size)
{
    timeline_check(account_move(-size));
}

/* ---- the sharded main table ------------------------------------------------------- */

static uint64_t addr_hash(uintptr_t addr)
{
    uint64_t h = (uint64_t)(addr >> MS_TRACE_REGION_BITS) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return h + ((addr >> 4) & ((1u << (MS_TRACE_REGION_BITS - 4)) - 1));
}

static struct ms_trace_shard *shard_of(uint64_t h)
{
    return &trace_state.shards[h >> (64 - MS_TRACE_SHARD_BITS)];
}

/* Index of addr's entry, or of the empty slot where it would go. */
static size_t shard_probe(const struct ms_trace_shard *sh, uintptr_t addr, uint64_t h)
{
    size_t i = h & sh->mask;
    while (sh->slots[i].addr != 0 && sh->slots[i].addr != addr)
        i = (i + 1) & sh->mask;
    return i;
}

static int shard_grow(struct ms_trace_shard *sh)
{
    size_t old_slots = sh->slots ? sh->mask + 1 : 0;
    size_t slots = old_slots ? old_slots * 2 : MS_TRACE_MIN_SLOTS;
    struct ms_trace_entry *fresh = trace_map(slots * sizeof *fresh);
    if (fresh == NULL)
        return -1;
    struct ms_trace_entry *old = sh->slots;
    /* Atomic stores: malloc reads both without the lock for its prefetch hint. */
    __atomic_store_n(&sh->slots, fresh, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->mask, slots - 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < old_slots; i++)
        if (old[i].addr != 0)
            sh->slots[shard_probe(sh, old[i].addr, addr_hash(old[i].addr))] = old[i];
    if (old)
        trace_unmap(old, old_slots * sizeof *old);
    return 0;
}

/* Backward-shift deletion of slot i: later entries of the probe run move up so no lookup
 * ever needs a tombstone. */
static void shard_delete(struct ms_trace_shard *sh, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & sh->mask;
        uintptr_t a = sh->slots[j].addr;
        if (a == 0)
            break;
        size_t home = addr_hash(a) & sh->mask;
        /* Entry j may move to i if its home is not in the cyclic range (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            sh->slots[i] = sh->slots[j];
            i = j;
        }
    }
    sh->slots[i].addr = 0;
    sh->count--;
}

/* ---- the side table (lock held) ------------------------------------------------- */

static uint64_t other_hash(unsigned domain, uintptr_t addr)
{
    return addr_hash(addr ^ ((uint64_t)domain << 48));
}

static size_t other_probe(unsigned domain, uintptr_t addr)
{
    size_t i = other_hash(domain, addr) & trace_state.other_mask;
    for (;; i = (i + 1) & trace_state.other_mask) {
        const struct ms_trace_other *e = &trace_state.other[i];
        if (e->addr == 0 || (e->addr == addr && e->domain == domain))
            return i;
    }
}

static int other_grow(void)
{
    size_t old_slots = trace_state.other ? trace_state.other_mask + 1 : 0;
    size_t slots = old_slots ? old_slots * 2 : 64;
    struct ms_trace_other *fresh = trace_map(slots * sizeof *fresh);
    if (fresh == NULL)
        return -1;
    struct ms_trace_other *old = trace_state.other;
    trace_state.other = fresh;
    trace_state.other_mask = slots - 1;
    for (size_t i = 0; i < old_slots; i++)
        if (old[i].addr != 0)
            fresh[other_probe(old[i].domain, old[i].addr)] = old[i];
    if (old)
        trace_unmap(old, old_slots * sizeof *old);
    return 0;
}

static void other_delete(size_t i)
{
    size_t j = i, mask = trace_state.other_mask;
    struct ms_trace_other *t = trace_state.other;
    for (;;) {
        j = (j + 1) & mask;
        if (t[j].addr == 0)
            break;
        size_t home = other_hash(t[j].domain, t[j].addr) & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t[i] = t[j];
            i = j;
        }
    }
    t[i].addr = 0;
    __atomic_sub_fetch(&trace_state.other_count, 1, __ATOMIC_RELAXED);
}

/* ---- add / remove / find ------------------------------------------------------------ */

/* Takes addr's trace out of the tables into *out.  Returns 1 if there was one. */
static int trace_remove(unsigned domain, uintptr_t addr, struct ms_trace_pending *out)
{
    if (domain == 0) {
        uint64_t h = addr_hash(addr);
        struct ms_trace_shard *sh = shard_of(h);
        ms_spin_lock(&sh->lock);
        if (sh->slots) {
            size_t i = shard_probe(sh, addr, h);
            if (sh->slots[i].addr == addr) {
                out->addr = addr;
                out->size = sh->slots[i].size;
                out->tb = sh->slots[i].tb;
                account_sub(out->size);
                shard_delete(sh, i);
                ms_spin_unlock(&sh->lock);
                return 1;
            }
        }
        ms_spin_unlock(&sh->lock);
    }
    if (__atomic_load_n(&trace_state.other_count, __ATOMIC_RELAXED) == 0)
        return 0;
    int found = 0;
    pthread_mutex_lock(&trace_state.other_lock);
    if (trace_state.other) {
        size_t i = other_probe(domain, addr);
        if (trace_state.other[i].addr == addr) {
            out->addr = addr;
            out->size = trace_state.other[i].size;
            out->tb = trace_state.other[i].tb;
            account_sub(out->size);
            other_delete(i);
            found = 1;
        }
    }
    pthread_mutex_unlock(&trace_state.other_lock);
    return found;
}

/* Records (or replaces) addr's trace.  force: do not fail for lack of a bigger table if
 * one slot is free (putting back a trace just removed).  Returns 0 or -1. */
static int trace_insert(unsigned domain, uintptr_t addr, size_t size, uint32_t tb, int force)
{
    if (domain == 0 && size < MS_TRACE_BIG_SIZE) {
        uint64_t h = addr_hash(addr);
        struct ms_trace_shard *sh = shard_of(h);
        ms_spin_lock(&sh->lock);
        if (!__atomic_load_n(&trace_state.tracing, __ATOMIC_RELAXED)) {
            ms_spin_unlock(&sh->lock); /* stopped meanwhile: nothing to record */
            return 0;
        }
        if (sh->slots == NULL || (sh->count + 1) * 2 > sh->mask + 1) {
            if (shard_grow(sh) < 0 && (!force || sh->slots == NULL || sh->count == sh->mask)) {
                ms_spin_unlock(&sh->lock);
                return -1;
            }
        }
        size_t i = shard_probe(sh, addr, h);
        if (sh->slots[i].addr == addr)
            account_sub(sh->slots[i].size); /* a stale trace for a reused address */
        else
            sh->count++;
        sh->slots[i].addr = addr;
        sh->slots[i].size = (uint32_t)size;
        sh->slots[i].tb = tb;
        account_add(size);
        ms_spin_unlock(&sh->lock);
        return 0;
    }
    int r = 0;
    pthread_mutex_lock(&trace_state.other_lock);
    size_t count = __atomic_load_n(&trace_state.other_count, __ATOMIC_RELAXED);
    if (trace_state.other == NULL || (count + 1) * 4 > (trace_state.other_mask + 1) * 3) {
        if (other_grow() < 0 && (!force || trace_state.other == NULL || count == trace_state.other_mask)) {
            r = -1;
            goto out;
        }
    }
    size_t i = other_probe(domain, addr);
    struct ms_trace_other *e = &trace_state.other[i];
    if (e->addr == addr)
        account_sub(e->size);
    else
        __atomic_add_fetch(&trace_state.other_count, 1, __ATOMIC_RELAXED);
    e->addr = addr;
    e->domain = domain;
    e->size = size;
    e->tb = tb;
    account_add(size);
out:
    pthread_mutex_unlock(&trace_state.other_lock);
    return r;
}

/* Captures the caller's stack and records the trace.  0 or -1 (no memory). */
static inline __attribute__((always_inline)) int trace_add(unsigned domain, uintptr_t addr,
                                                            size_t size)
{
    unsigned limit = __atomic_load_n(&trace_state.limit, __ATOMIC_RELAXED);
    if (limit > MS_UNWIND_MAX_FRAMES)
        limit = MS_UNWIND_MAX_FRAMES;
    const struct ms_traceback *tb = ms_unwind_capture_traceback((int)limit);
    if (tb == NULL)
        return -1;
    if (domain == 0 && size >= MS_TRACE_BIG_SIZE) {
        /* A huge block may replace a stale small trace of the same address. */
        struct ms_trace_pending stale;
        trace_remove(0, addr, &stale);
    }
    return trace_insert(domain, addr, size, tb->id, 0);
}

int ms_trace_get(unsigned domain, uintptr_t ptr, size_t *size, const struct ms_traceback **tb)
{
    int found = 0;
    uint32_t id = 0;
    if (domain == 0) {
        uint64_t h = addr_hash(ptr);
        struct ms_trace_shard *sh = shard_of(h);
        ms_spin_lock(&sh->lock);
        if (sh->slots) {
            size_t i = shard_probe(sh, ptr, h);
            if (sh->slots[i].addr == ptr && ptr != 0) {
                *size = sh->slots[i].size;
                id = sh->slots[i].tb;
                found = 1;
            }
        }
        ms_spin_unlock(&sh->lock);
    }
    if (!found && __atomic_load_n(&trace_state.other_count, __ATOMIC_RELAXED) != 0) {
        pthread_mutex_lock(&trace_state.other_lock);
        if (trace_state.other) {
            size_t i = other_probe(domain, ptr);
            if (trace_state.other[i].addr == ptr && ptr != 0) {
                *size = trace_state.other[i].size;
                id = trace_state.other[i].tb;
                found = 1;
            }
        }
        pthread_mutex_unlock(&trace_state.other_lock);
    }
    if (!found)
        return -1;
    *tb = ms_traceback_get(id);
    return 0;
}

/* ---- the allocator ------------------------------------------------------------------ */

static int tracing(void)
{
    return __atomic_load_n(&trace_state.tracing, __ATOMIC_RELAXED);
}

/* Asks for addr's table slot to be brought into the cache (see the top comment). */
static inline void prefetch_slot(uintptr_t addr)
{
    uint64_t h = addr_hash(addr);
    const struct ms_trace_shard *sh = shard_of(h);
    const struct ms_trace_entry *slots = __atomic_load_n(&sh->slots, __ATOMIC_RELAXED);
    if (slots) /* a racy read is fine: it is only a hint to the cache */
        __builtin_prefetch(&slots[h & __atomic_load_n(&sh->mask, __ATOMIC_RELAXED)], 1);
}

/* Records the trace of a block the lower allocator just gave; if that is impossible the
 * block goes back and the call fails, as in CPython. */
static inline __attribute__((always_inline)) void *traced(const struct ms_allocator *lo,
                                                           void *p, size_t size)
{
    if (p && tracing())
        prefetch_slot((uintptr_t)p);
    if (p && tracing() && trace_add(0, (uintptr_t)p, size) < 0) {
        lo->free(lo->ctx, p);
        return NULL;
    }
    return p;
}

static void *trace_malloc(void *ctx, size_t size)
{
    const struct ms_allocator *lo = ctx;
    return traced(lo, lo->malloc(lo->ctx, size), size);
}

static void *trace_calloc(void *ctx, size_t nelem, size_t elsize)
{
    const struct ms_allocator *lo = ctx;
    size_t size;
    if (__builtin_mul_overflow(nelem, elsize, &size))
        size = SIZE_MAX; /* the lower calloc fails then; nothing is recorded */
    return traced(lo, lo->calloc(lo->ctx, nelem, elsize), size);
}

static void *trace_memalign(void *ctx, size_t alignment, size_t size)
{
    const struct ms_allocator *lo = ctx;
    return traced(lo, lo->memalign(lo->ctx, alignment, size), size);
}

/* p (allocated at alloc_tb, 0: unknown) was freed and may wait in a quarantine. */
static void keep_freed(uintptr_t p, uint32_t alloc_tb)
{
    unsigned limit = __atomic_load_n(&trace_state.limit, __ATOMIC_RELAXED);
    if (limit > MS_UNWIND_MAX_FRAMES)
        limit = MS_UNWIND_MAX_FRAMES;
    const struct ms_traceback *tb = ms_unwind_capture_traceback((int)limit);
    ms_freedtrace_record(p, alloc_tb, tb != NULL ? tb->id : 0);
}

static void trace_free(void *ctx, void *p)
{
    const struct ms_allocator *lo = ctx;
    if (p == NULL)
        return;
    if (!tracing()) {
        lo->free(lo->ctx, p);
        return;
    }
    int had = trace_remove(0, (uintptr_t)p, &trace_pending);
    lo->free(lo->ctx, p);
    if (ms_freedtrace_enabled())
        keep_freed((uintptr_t)p, had ? trace_pending.tb : 0);
    trace_pending.addr = 0;
}

static void *trace_realloc(void *ctx, void *p, size_t size)
{
    const struct ms_allocator *lo = ctx;
    if (!tracing())
        return lo->realloc(lo->ctx, p, size);
    if (p == NULL)
        return traced(lo, lo->realloc(lo->ctx, NULL, size), size);
    int had = trace_remove(0, (uintptr_t)p, &trace_pending);
    void *q = lo->realloc(lo->ctx, p, size);
    struct ms_trace_pending old = trace_pending;
    trace_pending.addr = 0;
    if (q == NULL) {
        if (had)
            trace_insert(0, old.addr, old.size, old.tb, 1);
        return NULL;
    }
    if (q != p && ms_freedtrace_enabled())
        keep_freed((uintptr_t)p, had ? old.tb : 0);
    /* The old block is gone, so the call cannot fail any more: if the new trace cannot be
     * recorded the block stays untraced (CPython aborts here; a tool must not). */
    trace_add(0, (uintptr_t)q, size);
    return q;
}

static size_t trace_usable_size(void *ctx, void *p)
{
    const struct ms_allocator *lo = ctx;
    return lo->usable_size(lo->ctx, p);
}

void ms_trace_init(struct ms_allocator *out, const struct ms_allocator *lower)
{
    if (trace_state.nlowers == 0)
        for (unsigned i = 0; i < MS_TRACE_SHARDS; i++)
            ms_spin_init(&trace_state.shards[i].lock);
    /* More families than slots never happens (the shim has five); the last slot is then
     * shared, which is only wrong if their lower allocators differ. */
    unsigned k = trace_state.nlowers < MS_TRACE_MAX_LOWERS ? trace_state.nlowers++
                                                           : MS_TRACE_MAX_LOWERS - 1;
    trace_state.lowers[k] = *lower;
    out->ctx = &trace_state.lowers[k];
    out->malloc = trace_malloc;
    out->calloc = trace_calloc;
    out->realloc = trace_realloc;
    out->free = trace_free;
    out->memalign = trace_memalign;
    out->usable_size = trace_usable_size;
}

/* ---- control -------------------------------------------------------------------------- */

static void lock_all(void)
{
    for (unsigned i = 0; i < MS_TRACE_SHARDS; i++)
        ms_spin_lock(&trace_state.shards[i].lock);
    pthread_mutex_lock(&trace_state.other_lock);
}

static void unlock_all(void)
{
    pthread_mutex_unlock(&trace_state.other_lock);
    for (unsigned i = MS_TRACE_SHARDS; i-- > 0;)
        ms_spin_unlock(&trace_state.shards[i].lock);
}

/* Drops every table (all locks held). */
static void drop_tables(void)
{
    for (unsigned i = 0; i < MS_TRACE_SHARDS; i++) {
        struct ms_trace_shard *sh = &trace_state.shards[i];
        if (sh->slots)
            trace_unmap(sh->slots, (sh->mask + 1) * sizeof *sh->slots);
        __atomic_store_n(&sh->slots, NULL, __ATOMIC_RELAXED);
        __atomic_store_n(&sh->mask, 0, __ATOMIC_RELAXED);
        sh->count = 0;
    }
    if (trace_state.other)
        trace_unmap(trace_state.other, (trace_state.other_mask + 1) * sizeof *trace_state.other);
    trace_state.other = NULL;
    trace_state.other_mask = 0;
    __atomic_store_n(&trace_state.other_count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&trace_state.current, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&trace_state.peak, 0, __ATOMIC_RELAXED);
}

int ms_trace_start(unsigned nframe)
{
    if (nframe < 1 || nframe > MS_TRACE_MAX_FRAMES)
        return -1;
    ms_unwind_init();
    __atomic_store_n(&trace_state.limit, nframe, __ATOMIC_RELAXED);
    if (!tracing()) {
        size_t cur = __atomic_load_n(&trace_state.current, __ATOMIC_RELAXED);
        __atomic_store_n(&trace_state.sampled, cur, __ATOMIC_RELAXED);
        ms_timeline_start(cur);
    }
    __atomic_store_n(&trace_state.tracing, 1, __ATOMIC_RELEASE);
    return 0;
}

void ms_trace_stop(void)
{
    lock_all();
    __atomic_store_n(&trace_state.tracing, 0, __ATOMIC_RELEASE);
    drop_tables();
    unlock_all();
}

int ms_trace_is_tracing(void)
{
    return tracing();
}

unsigned ms_trace_get_limit(void)
{
    return __atomic_load_n(&trace_state.limit, __ATOMIC_RELAXED);
}

void ms_trace_get_traced_memory(size_t *current, size_t *peak)
{
    lock_all(); /* a consistent pair */
    *current = __atomic_load_n(&trace_state.current, __ATOMIC_RELAXED);
    *peak = __atomic_load_n(&trace_state.peak, __ATOMIC_RELAXED);
    unlock_all();
}

void ms_trace_reset_peak(void)
{
    lock_all();
    __atomic_store_n(&trace_state.peak, __atomic_load_n(&trace_state.current, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    unlock_all();
}

void ms_trace_clear_traces(void)
{
    lock_all();
    drop_tables();
    unlock_all();
}

size_t ms_trace_get_memory(void)
{
    return __atomic_load_n(&trace_state.mapped, __ATOMIC_RELAXED) + ms_traceback_memory();
}

size_t ms_trace_count(void)
{
    size_t n = 0;
    lock_all();
    for (unsigned i = 0; i < MS_TRACE_SHARDS; i++)
        n += trace_state.shards[i].count;
    n += trace_state.other_count;
    unlock_all();
    return n;
}

int ms_trace_track(unsigned domain, uintptr_t ptr, size_t size)
{
    if (!tracing())
        return -2;
    return trace_add(domain, ptr, size) < 0 ? -1 : 0;
}

int ms_trace_untrack(unsigned domain, uintptr_t ptr)
{
    if (!tracing())
        return -2;
    struct ms_trace_pending gone;
    trace_remove(domain, ptr, &gone);
    return 0;
}

void ms_trace_foreach(void (*fn)(void *arg, unsigned domain, uintptr_t ptr, size_t size,
                                 const struct ms_traceback *tb),
                      void *arg)
{
    for (unsigned s = 0; s < MS_TRACE_SHARDS; s++) {
        struct ms_trace_shard *sh = &trace_state.shards[s];
        ms_spin_lock(&sh->lock);
        for (size_t i = 0; sh->slots && i <= sh->mask; i++)
            if (sh->slots[i].addr)
                fn(arg, 0, sh->slots[i].addr, sh->slots[i].size, ms_traceback_get(sh->slots[i].tb));
        ms_spin_unlock(&sh->lock);
    }
    pthread_mutex_lock(&trace_state.other_lock);
    for (size_t i = 0; trace_state.other && i <= trace_state.other_mask; i++) {
        const struct ms_trace_other *e = &trace_state.other[i];
        if (e->addr)
            fn(arg, e->domain, e->addr, e->size, ms_traceback_get(e->tb));
    }
    pthread_mutex_unlock(&trace_state.other_lock);
}

/* ---- the debug dump's part -------------------------------------------------------------- */

/* "<title> (most recent call first):", tb's frames and an empty line; nothing for NULL. */
static void titled_traceback(struct ms_out *o, const char *title, const struct ms_traceback *tb)
{
    if (tb == NULL)
        return;
    ms_out_str(o, title);
    ms_out_str(o, " (most recent call first):\n");
    ms_trace_print_traceback(o, tb, 1);
    ms_out_char(o, '\n');
}

void ms_trace_print_block_traceback(struct ms_out *o, const void *p)
{
    if (!tracing()) {
        ms_out_str(o, "Enable MEMSHIM_TRACEMALLOC to get the memory block allocation traceback\n\n");
        return;
    }
    const struct ms_traceback *tb = NULL;
    size_t size;
    if (trace_pending.addr != 0 && trace_pending.addr == (uintptr_t)p)
        tb = ms_traceback_get(trace_pending.tb);
    else if (ms_trace_get(0, (uintptr_t)p, &size, &tb) < 0)
        return;
    titled_traceback(o, "Memory block allocated at", tb);
}

void ms_trace_print_freed_tracebacks(struct ms_out *o, const void *p)
{
    uint32_t alloc_id, free_id;
    if (!ms_freedtrace_find((uintptr_t)p, &alloc_id, &free_id)) {
        ms_out_str(o, "The tracebacks of this freed block were not kept (it was freed before "
                      "tracing started,\nor too long ago).\n\n");
        return;
    }
    titled_traceback(o, "Memory block allocated at", ms_traceback_get(alloc_id));
    titled_traceback(o, "Memory block freed at", ms_traceback_get(free_id));
}

/* ---- fork ----------------------------------------------------------------------------- */

void ms_trace_fork_prepare(void)
{
    lock_all();
    ms_traceback_fork_prepare();
}

void ms_trace_fork_parent(void)
{
    ms_traceback_fork_parent();
    unlock_all();
}

void ms_trace_fork_child(void)
{
    ms_traceback_fork_child();
    ms_symbol_fork_child();
    ms_timeline_fork_child();
    ms_freedtrace_fork_child();
    pthread_mutex_init(&trace_state.other_lock, NULL);
    for (unsigned i = 0; i < MS_TRACE_SHARDS; i++)
        ms_spin_init(&trace_state.shards[i].lock);
}
