/* SPDX-License-Identifier: MIT */
/*
 * The quarantine FIFO (see quarantine.h).  One lock for the whole queue: it is held for a
 * few stores per free, and a global FIFO keeps the promise "a block stays quarantined until
 * `budget` bytes were freed after it", which per-thread or per-shard queues would weaken for
 * big blocks.
 *
 * Hot path.  Never calls malloc (the ring comes from ms_os_map), never prints.
 */
#include "quarantine.h"

#include "os.h"
#include "spinlock.h"

#define INITIAL_RECS 1024u
#define HISTORY 16384u                    /* records of blocks that left (512 KiB) */

static struct quarantine_state {
    struct ms_spin lock;
    struct ms_quarantine_rec *ring;   /* cap records, a power of two */
    size_t cap;
    size_t head;                      /* oldest record: ring[head & (cap - 1)] */
    size_t count;
    size_t bytes;                     /* sum of the queued charges */
    size_t budget;
    /* The last HISTORY blocks that left the queue, so that a free of one of them is
     * still called a double free (error path only; written under the lock we hold
     * anyway, so it costs one store per block). */
    struct ms_quarantine_rec *history;
    size_t history_next;
} Q = {
    .lock = MS_SPIN_INIT,
};

/* What a queued block costs: its memory and its record (for small blocks the records
 * are a third of the total, measured under python3; the budget bounds the real RSS). */
static inline size_t charge_of(const struct ms_quarantine_rec *r)
{
    return ms_livetab_end(&r->e) - ms_livetab_base(&r->e) + sizeof *r;
}

#define PREFETCH_AHEAD 8 /* victims; a free pops about one */

static inline struct ms_quarantine_rec *at(size_t i)
{
    return &Q.ring[(Q.head + i) & (Q.cap - 1)];
}

static int grow(void)
{
    size_t ncap = Q.cap ? Q.cap * 2 : INITIAL_RECS;
    struct ms_quarantine_rec *nring = ms_os_map(ncap * sizeof *nring);
    if (nring == NULL)
        return -1;
    for (size_t i = 0; i < Q.count; i++)
        nring[i] = *at(i);
    if (Q.ring != NULL)
        ms_os_unmap(Q.ring, Q.cap * sizeof *Q.ring);
    Q.ring = nring;
    Q.cap = ncap;
    Q.head = 0;
    return 0;
}

static size_t pop_locked(struct ms_quarantine_rec *victims, size_t max, size_t keep_bytes)
{
    size_t n = 0;
    while (n < max && Q.count > 0 && Q.bytes > keep_bytes) {
        victims[n] = *at(0);
        if (Q.history != NULL)
            Q.history[Q.history_next++ & (HISTORY - 1)] = victims[n];
        Q.bytes -= charge_of(&victims[n]);
        Q.head++;
        Q.count--;
        n++;
    }
    /* Victims' memory is cold (the budget is far bigger than the caches) and the verifier
     * reads all of it: start fetching a victim a few frees before it leaves, whole lines
     * up to the first 512 bytes.  (Prefetching only the next victim's first line left the
     * verifier waiting on memory for a quarter of debug churn's time.) */
    if (Q.count > PREFETCH_AHEAD) {
        const struct ms_livetab_entry *e = &at(PREFETCH_AHEAD)->e;
        uintptr_t lo = ms_livetab_base(e), hi = ms_livetab_end(e);
        if (hi - lo > 512)
            hi = lo + 512;
        for (uintptr_t a = lo & ~(uintptr_t)63; a < hi; a += 64)
            __builtin_prefetch((const void *)a);
    }
    return n;
}

void ms_quarantine_configure(size_t budget)
{
    ms_spin_lock(&Q.lock);
    Q.budget = budget;
    if (budget != 0 && Q.history == NULL)
        Q.history = ms_os_map(HISTORY * sizeof *Q.history);
    ms_spin_unlock(&Q.lock);
}

size_t ms_quarantine_budget(void)
{
    return Q.budget;
}

size_t ms_quarantine_push(const struct ms_quarantine_rec *rec,
                          struct ms_quarantine_rec *victims, size_t max)
{
    size_t n;
    ms_spin_lock(&Q.lock);
    if (Q.count == Q.cap && grow() != 0) {
        n = SIZE_MAX;
    } else {
        *at(Q.count) = *rec;
        Q.count++;
        Q.bytes += charge_of(rec);
        n = pop_locked(victims, max, Q.budget);
    }
    ms_spin_unlock(&Q.lock);
    return n;
}

size_t ms_quarantine_evict(struct ms_quarantine_rec *victims, size_t max)
{
    ms_spin_lock(&Q.lock);
    size_t n = pop_locked(victims, max, Q.budget);
    ms_spin_unlock(&Q.lock);
    return n;
}

size_t ms_quarantine_drain(struct ms_quarantine_rec *victims, size_t max)
{
    ms_spin_lock(&Q.lock);
    size_t n = pop_locked(victims, max, 0);
    /* Zero-byte extents cannot exist (every block has a header), so bytes > 0 drains all. */
    ms_spin_unlock(&Q.lock);
    return n;
}

bool ms_quarantine_find(uintptr_t p, struct ms_quarantine_rec *out)
{
    bool hit = false;
    ms_spin_lock(&Q.lock);
    for (size_t i = Q.count; i-- > 0 && !hit;) {
        const struct ms_livetab_entry *e = &at(i)->e;
        if (p >= ms_livetab_base(e) && p < ms_livetab_end(e)) {
            *out = *at(i);
            hit = true;
        }
    }
    ms_spin_unlock(&Q.lock);
    return hit;
}

bool ms_quarantine_find_released(uintptr_t p, struct ms_quarantine_rec *out)
{
    bool hit = false;
    ms_spin_lock(&Q.lock);
    size_t n = Q.history_next < HISTORY ? Q.history_next : HISTORY;
    for (size_t i = 1; Q.history != NULL && i <= n && !hit; i++) {
        const struct ms_quarantine_rec *r = &Q.history[(Q.history_next - i) & (HISTORY - 1)];
        if (r->e.p == p) {
            *out = *r;
            hit = true;
        }
    }
    ms_spin_unlock(&Q.lock);
    return hit;
}

bool ms_quarantine_walk(bool (*fn)(const struct ms_quarantine_rec *r, void *arg),
                        void *arg, struct ms_quarantine_rec *found)
{
    bool hit = false;
    ms_spin_lock(&Q.lock);
    for (size_t i = 0; i < Q.count && !hit; i++) {
        if (fn(at(i), arg)) {
            *found = *at(i);
            hit = true;
        }
    }
    ms_spin_unlock(&Q.lock);
    return hit;
}

size_t ms_quarantine_bytes(void)
{
    ms_spin_lock(&Q.lock);
    size_t b = Q.bytes;
    ms_spin_unlock(&Q.lock);
    return b;
}

size_t ms_quarantine_count(void)
{
    ms_spin_lock(&Q.lock);
    size_t n = Q.count;
    ms_spin_unlock(&Q.lock);
    return n;
}

void ms_quarantine_fork_prepare(void)
{
    ms_spin_lock(&Q.lock);
}

void ms_quarantine_fork_parent(void)
{
    ms_spin_unlock(&Q.lock);
}

void ms_quarantine_fork_child(void)
{
    ms_spin_init(&Q.lock);
}
