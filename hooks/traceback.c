/* SPDX-License-Identifier: MIT */
/*
 * Traceback interning (see traceback.h).
 *
 * Layout: tracebacks live in a bump arena of mapped chunks.  An id indexes a two-level
 * directory (4096 chunks of 65536 pointers, each chunk mapped when first needed) so ids
 * resolve without a lock and the directory never moves.  The intern table is open
 * addressing with linear probing over 64-bit slots (hash << 32 | id, 0 = empty), written
 * with one atomic store, so a reader sees either an empty slot or a complete entry whose
 * traceback is already published.  Growth builds a new table and publishes it; a reader
 * still probing the old one may miss a new entry, and then simply takes the lock and looks
 * again.  Old tables stay mapped (readers may be in them; their total is below the current
 * table's size) - tracebacks are never freed either, as explained in the header.
 */
#include "traceback.h"

#include <pthread.h>
#include <string.h>

#include "os.h"

#define MS_TB_DIR_BITS 16
#define MS_TB_DIR_CHUNK ((size_t)1 << MS_TB_DIR_BITS)
#define MS_TB_DIR_TOP 4096
#define MS_TB_MIN_SLOTS 4096
#define MS_TB_ARENA_CHUNK ((size_t)1 << 20)

struct ms_tb_table {
    size_t mask;
    size_t count;
    uint64_t slots[];
};

struct ms_traceback_state {
    pthread_mutex_t lock; /* serialises inserts and growth; lookups never take it */
    struct ms_tb_table *table;
    const struct ms_traceback **dir[MS_TB_DIR_TOP];
    uint32_t last_id;     /* ids start at 1; 0 here keeps the struct in .bss */
    char *arena;
    size_t arena_used, arena_size;
    size_t mapped; /* bytes mapped for all of the above */
    void *(*map)(size_t size);
};

static struct ms_traceback_state tb_state = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* The traceback this thread interned last.  Consecutive allocations mostly come from the
 * same call site (a loop, a constructor), and comparing with this one costs no probe of
 * the shared table, whose slot is a cache miss once it outgrows the cache.  Safe to keep
 * for ever: tracebacks are immutable and never freed. */
static _Thread_local const struct ms_traceback *tb_last;

static void *tb_map(size_t size)
{
    void *p = tb_state.map ? tb_state.map(size) : ms_os_map(size);
    if (p)
        tb_state.mapped += size;
    return p;
}

void ms_traceback_set_mapper(void *(*map)(size_t size))
{
    pthread_mutex_lock(&tb_state.lock);
    tb_state.map = map;
    pthread_mutex_unlock(&tb_state.lock);
}

/* Two independent multiply lanes (even and odd frames): the multiplies' latency, not their
 * number, bounds a hash of a few frames. */
uint64_t ms_traceback_hash_frames(const uintptr_t *pcs, uint32_t n)
{
    uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
    uint32_t i = 0;
    for (; i + 1 < n; i += 2) {
        a = (a ^ pcs[i]) * 0x9e3779b97f4a7c15ull;
        b = (b ^ pcs[i + 1]) * 0xc2b2ae3d27d4eb4full;
        a ^= a >> 29;
        b ^= b >> 31;
    }
    if (i < n)
        a = (a ^ pcs[i]) * 0x9e3779b97f4a7c15ull;
    return a ^ (b * 0x165667b19e3779f9ull) ^ n;
}

/* The finaliser spreads the bits so the low ones index the table. */
static uint32_t tb_hash(uint64_t frames_hash, uint32_t total)
{
    uint64_t h = frames_hash ^ ((uint64_t)total << 32);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    uint32_t r = (uint32_t)h;
    return r ? r : 1;
}

const struct ms_traceback *ms_traceback_get(uint32_t id)
{
    if (id == 0)
        return NULL;
    size_t top = id >> MS_TB_DIR_BITS;
    if (top >= MS_TB_DIR_TOP)
        return NULL;
    const struct ms_traceback **chunk = __atomic_load_n(&tb_state.dir[top], __ATOMIC_ACQUIRE);
    if (chunk == NULL)
        return NULL;
    return __atomic_load_n(&chunk[id & (MS_TB_DIR_CHUNK - 1)], __ATOMIC_ACQUIRE);
}

static int tb_equal(const struct ms_traceback *tb, uint32_t hash, const uintptr_t *pcs,
                    uint32_t n, uint32_t total)
{
    return tb->hash == hash && tb->nframe == n && tb->total == total &&
           memcmp(tb->frames, pcs, n * sizeof pcs[0]) == 0;
}

/* Probes table t; returns the match, or NULL with *empty set to the first empty slot. */
static const struct ms_traceback *tb_find(struct ms_tb_table *t, uint32_t hash,
                                          const uintptr_t *pcs, uint32_t n, uint32_t total,
                                          size_t *empty)
{
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint64_t slot = __atomic_load_n(&t->slots[i], __ATOMIC_ACQUIRE);
        if (slot == 0) {
            *empty = i;
            return NULL;
        }
        if ((uint32_t)(slot >> 32) == hash) {
            const struct ms_traceback *tb = ms_traceback_get((uint32_t)slot);
            if (tb && tb_equal(tb, hash, pcs, n, total))
                return tb;
        }
    }
}

static struct ms_tb_table *tb_new_table(size_t slots)
{
    struct ms_tb_table *t = tb_map(sizeof *t + slots * sizeof(uint64_t));
    if (t)
        t->mask = slots - 1;
    return t;
}

/* Doubles the table (lock held). */
static int tb_grow(void)
{
    struct ms_tb_table *old = tb_state.table;
    struct ms_tb_table *t = tb_new_table(old ? (old->mask + 1) * 2 : MS_TB_MIN_SLOTS);
    if (t == NULL)
        return -1;
    if (old) {
        for (size_t i = 0; i <= old->mask; i++) {
            uint64_t slot = old->slots[i];
            if (slot == 0)
                continue;
            size_t j = (uint32_t)(slot >> 32) & t->mask;
            while (t->slots[j] != 0)
                j = (j + 1) & t->mask;
            t->slots[j] = slot;
        }
        t->count = old->count;
    }
    __atomic_store_n(&tb_state.table, t, __ATOMIC_RELEASE);
    return 0;
}

static struct ms_traceback *tb_arena_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (tb_state.arena == NULL || tb_state.arena_used + size > tb_state.arena_size) {
        size_t chunk = size > MS_TB_ARENA_CHUNK ? size : MS_TB_ARENA_CHUNK;
        char *a = tb_map(chunk);
        if (a == NULL)
            return NULL;
        tb_state.arena = a;
        tb_state.arena_used = 0;
        tb_state.arena_size = chunk;
    }
    struct ms_traceback *tb = (struct ms_traceback *)(tb_state.arena + tb_state.arena_used);
    tb_state.arena_used += size;
    return tb;
}

/* Gives tb the next id in the directory (lock held). */
static int tb_assign_id(struct ms_traceback *tb)
{
    uint32_t id = tb_state.last_id + 1;
    size_t top = id >> MS_TB_DIR_BITS;
    if (top >= MS_TB_DIR_TOP)
        return -1;
    const struct ms_traceback **chunk = tb_state.dir[top];
    if (chunk == NULL) {
        chunk = tb_map(MS_TB_DIR_CHUNK * sizeof *chunk);
        if (chunk == NULL)
            return -1;
        __atomic_store_n(&tb_state.dir[top], chunk, __ATOMIC_RELEASE);
    }
    tb->id = id;
    __atomic_store_n(&chunk[id & (MS_TB_DIR_CHUNK - 1)], tb, __ATOMIC_RELEASE);
    tb_state.last_id = id;
    return 0;
}

const struct ms_traceback *ms_traceback_intern(const uintptr_t *pcs, uint32_t n, uint32_t total)
{
    return ms_traceback_intern_hashed(pcs, n, total, ms_traceback_hash_frames(pcs, n));
}

const struct ms_traceback *ms_traceback_intern_hashed(const uintptr_t *pcs, uint32_t n,
                                                      uint32_t total, uint64_t frames_hash)
{
    uint32_t hash = tb_hash(frames_hash, total);
    const struct ms_traceback *last = tb_last;
    if (last && tb_equal(last, hash, pcs, n, total))
        return last;
    size_t empty;
    struct ms_tb_table *t = __atomic_load_n(&tb_state.table, __ATOMIC_ACQUIRE);
    if (t) {
        const struct ms_traceback *tb = tb_find(t, hash, pcs, n, total, &empty);
        if (tb)
            return tb_last = tb;
    }

    pthread_mutex_lock(&tb_state.lock);
    const struct ms_traceback *found = NULL;
    struct ms_traceback *tb = NULL;
    t = tb_state.table;
    if (t && (found = tb_find(t, hash, pcs, n, total, &empty)) != NULL)
        goto out;
    /* Keep the load at most 1/2: probes stay short for the lock-free readers. */
    if (t == NULL || (t->count + 1) * 2 > t->mask + 1) {
        if (tb_grow() < 0)
            goto out;
        t = tb_state.table;
        tb_find(t, hash, pcs, n, total, &empty);
    }
    tb = tb_arena_alloc(sizeof *tb + n * sizeof pcs[0]);
    if (tb == NULL)
        goto out;
    tb->hash = hash;
    tb->total = total;
    tb->nframe = n;
    memcpy(tb->frames, pcs, n * sizeof pcs[0]);
    if (tb_assign_id(tb) < 0)
        goto out; /* the arena bytes are lost; only past 2^28 tracebacks or out of memory */
    __atomic_store_n(&t->slots[empty], (uint64_t)hash << 32 | tb->id, __ATOMIC_RELEASE);
    t->count++;
    found = tb;
out:
    pthread_mutex_unlock(&tb_state.lock);
    if (found)
        tb_last = found;
    return found;
}

size_t ms_traceback_count(void)
{
    pthread_mutex_lock(&tb_state.lock);
    size_t n = tb_state.table ? tb_state.table->count : 0;
    pthread_mutex_unlock(&tb_state.lock);
    return n;
}

size_t ms_traceback_memory(void)
{
    pthread_mutex_lock(&tb_state.lock);
    size_t n = tb_state.mapped;
    pthread_mutex_unlock(&tb_state.lock);
    return n;
}

void ms_traceback_fork_prepare(void)
{
    pthread_mutex_lock(&tb_state.lock);
}

void ms_traceback_fork_parent(void)
{
    pthread_mutex_unlock(&tb_state.lock);
}

void ms_traceback_fork_child(void)
{
    pthread_mutex_init(&tb_state.lock, NULL);
}
