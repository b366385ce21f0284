/* SPDX-License-Identifier: MIT */
/*
 * The live-block table (see livetab.h).  Sharding keeps threads that allocate at the same
 * time off each other's locks; open addressing keeps a lookup to about one cache line
 * (16-byte entries, load factor 3/8..3/4, so 21-43 bytes per block instead of the ~72 of
 * a chained table with nodes: the table is the debug mode's main RSS cost over CPython's,
 * and its cache misses are the main time cost, so it is kept small).
 *
 * Hot path.  Never calls malloc (tables come from ms_os_map), never prints.
 */
#include "livetab.h"

#include "os.h"
#include "spinlock.h"

#define SHARD_BITS 6
#define NSHARDS (1u << SHARD_BITS)
#define INITIAL_SLOTS 64u

struct shard {
    struct ms_spin lock;
    struct ms_livetab_entry *slots;   /* NULL until the first insert */
    size_t mask;                      /* slots - 1 */
    size_t count;
} __attribute__((aligned(64)));

static struct livetab_state {
    struct shard shards[NSHARDS];
} T = {
    .shards = { [0 ... NSHARDS - 1] = { .lock = MS_SPIN_INIT } },
};

/* Blocks are 16-byte aligned, so the low 4 bits carry nothing; the finaliser spreads the
 * rest over all 64 bits (low bits pick the shard, the next ones the slot). */
static inline uint64_t hash_ptr(uintptr_t p)
{
    uint64_t x = (uint64_t)p >> 4;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static inline struct shard *shard_of(uint64_t h)
{
    return &T.shards[h & (NSHARDS - 1)];
}

static inline size_t home_slot(const struct shard *s, uint64_t h)
{
    return (size_t)(h >> SHARD_BITS) & s->mask;
}

static int shard_alloc(struct shard *s, size_t nslots)
{
    struct ms_livetab_entry *slots = ms_os_map(nslots * sizeof *slots);
    if (slots == NULL)
        return -1;
    s->slots = slots;
    s->mask = nslots - 1;
    s->count = 0;
    return 0;
}

/* Store e in the first empty slot from its home (e->p known to be absent). */
static void place(struct shard *s, const struct ms_livetab_entry *e)
{
    size_t i = home_slot(s, hash_ptr(e->p));
    while (s->slots[i].p != 0)
        i = (i + 1) & s->mask;
    s->slots[i] = *e;
    s->count++;
}

/* Double the table: amortised O(1) per insert. */
static int grow(struct shard *s)
{
    struct ms_livetab_entry *old = s->slots;
    size_t old_n = s->mask + 1;
    if (shard_alloc(s, old_n * 2) != 0) {
        s->slots = old;
        s->mask = old_n - 1;
        return -1;
    }
    for (size_t i = 0; i < old_n; i++)
        if (old[i].p != 0)
            place(s, &old[i]);
    ms_os_unmap(old, old_n * sizeof *old);
    return 0;
}

static size_t find(const struct shard *s, uintptr_t p, uint64_t h)
{
    if (s->slots == NULL)
        return SIZE_MAX;
    size_t i = home_slot(s, h);
    for (;;) {
        uintptr_t q = s->slots[i].p;
        if (q == p)
            return i;
        if (q == 0)
            return SIZE_MAX;
        i = (i + 1) & s->mask;
    }
}

/* Backward-shift deletion: no tombstones, so probe lengths stay short forever. */
static void erase(struct shard *s, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        if (s->slots[j].p == 0)
            break;
        size_t home = home_slot(s, hash_ptr(s->slots[j].p));
        /* Move j back to the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].p = 0;
    s->count--;
}

int ms_livetab_init(void)
{
    for (unsigned k = 0; k < NSHARDS; k++) {
        struct shard *s = &T.shards[k];
        ms_spin_lock(&s->lock);
        int rc = s->slots == NULL ? shard_alloc(s, INITIAL_SLOTS) : 0;
        ms_spin_unlock(&s->lock);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int ms_livetab_insert(const struct ms_livetab_entry *e)
{
    struct shard *s = shard_of(hash_ptr(e->p));
    int rc = 0;
    ms_spin_lock(&s->lock);
    if (s->slots == NULL)
        rc = shard_alloc(s, INITIAL_SLOTS);
    else if ((s->count + 1) * 4 > (s->mask + 1) * 3 && grow(s) != 0)
        rc = s->count + 1 < s->mask ? 0 : -1;   /* keep one slot empty: probes end */
    if (rc == 0)
        place(s, e);
    ms_spin_unlock(&s->lock);
    return rc;
}

/* Find p under its shard lock, copy its entry out, and remove it if asked. */
static bool locate(uintptr_t p, bool remove, struct ms_livetab_entry *out)
{
    uint64_t h = hash_ptr(p);
    struct shard *s = shard_of(h);
    ms_spin_lock(&s->lock);
    size_t i = find(s, p, h);
    if (i != SIZE_MAX) {
        *out = s->slots[i];
        if (remove)
            erase(s, i);
    }
    ms_spin_unlock(&s->lock);
    return i != SIZE_MAX;
}

bool ms_livetab_claim(uintptr_t p, struct ms_livetab_entry *out)
{
    return locate(p, true, out);
}

bool ms_livetab_lookup(uintptr_t p, struct ms_livetab_entry *out)
{
    return locate(p, false, out);
}

bool ms_livetab_walk(bool (*fn)(const struct ms_livetab_entry *e, void *arg), void *arg,
                     struct ms_livetab_entry *found)
{
    for (unsigned k = 0; k < NSHARDS; k++) {
        struct shard *s = &T.shards[k];
        bool hit = false;
        ms_spin_lock(&s->lock);
        for (size_t i = 0; s->slots != NULL && i <= s->mask && !hit; i++) {
            if (s->slots[i].p != 0 && fn(&s->slots[i], arg)) {
                *found = s->slots[i];
                hit = true;
            }
        }
        ms_spin_unlock(&s->lock);
        if (hit)
            return true;
    }
    return false;
}

size_t ms_livetab_count(void)
{
    size_t n = 0;
    for (unsigned k = 0; k < NSHARDS; k++) {
        ms_spin_lock(&T.shards[k].lock);
        n += T.shards[k].count;
        ms_spin_unlock(&T.shards[k].lock);
    }
    return n;
}

void ms_livetab_fork_prepare(void)
{
    for (unsigned k = 0; k < NSHARDS; k++)
        ms_spin_lock(&T.shards[k].lock);
}

void ms_livetab_fork_parent(void)
{
    for (unsigned k = NSHARDS; k-- > 0;)
        ms_spin_unlock(&T.shards[k].lock);
}

/* The child has one thread and every lock was held by the forking one: start afresh. */
void ms_livetab_fork_child(void)
{
    for (unsigned k = 0; k < NSHARDS; k++)
        ms_spin_init(&T.shards[k].lock);
}
