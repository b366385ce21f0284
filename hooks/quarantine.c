/* SPDX-License-Identifier: MIT */
/*
 * The quarantine FIFO (see quarantine.h).  One global ring behind one lock keeps the
 * promise "a block stays quarantined until `budget` bytes were freed after it", which
 * per-thread or per-shard queues would weaken for big blocks.  In front of it each thread
 * has a small buffer (struct front, at most FRONT_RECS records and front_limit bytes) that
 * its frees fill without a lock or an atomic read-modify-write; a full buffer enters the
 * ring in one go, under one lock, and the victims leave in one batch.  (The lock's atomic
 * exchange on every free waited for the 0xDD fill's stores to drain: 12% of debug churn.)
 * The ring is kept at budget - front_limit bytes, so one thread's quarantine stays within
 * the budget; each further thread may hold front_limit more.  While the process has one
 * thread (solo.h) the lock is a plain store and the buffer would only add a copy: frees go
 * straight into the ring, which then holds the whole budget.
 *
 * Readers of other threads' buffers (find, walk, counts) hold Q.lock, which every change
 * but the owner's lock-free append also holds; the append writes the record past the
 * published count and then publishes it (release), so a reader sees whole records only.
 *
 * Hot path.  Never calls malloc (the ring and the buffers come from ms_os_map; only
 * pthread_setspecific may, once per thread), never prints, never reads the blocks.
 */
#include "quarantine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "os.h"
#include "solo.h"
#include "spinlock.h"

#define INITIAL_RECS 1024u
#define HISTORY 16384u                    /* records of blocks that left (512 KiB) */
#define FRONT_RECS 32u
#define FRONT_MAX_BYTES ((size_t)64 << 10)
#define FRONT_CHUNK_BYTES ((size_t)64 << 10)

struct front {
    _Atomic size_t n;                 /* rec[0, n) are queued; only the owner adds */
    size_t bytes;                     /* their charges (the owner's alone) */
    struct front *next, *prev;        /* Q.fronts, or Q.spare_fronts (next only) */
    struct ms_quarantine_rec rec[FRONT_RECS];
};

/* NULL: no buffer yet; NO_FRONT: none (thread exiting, or none could be had), so this
 * thread's frees go straight to the ring. */
static struct front no_front;
#define NO_FRONT (&no_front)
static __thread struct front *self;

static struct quarantine_state {
    struct ms_spin lock;
    struct ms_quarantine_rec *ring;   /* cap records, a power of two */
    size_t cap;
    size_t head;                      /* oldest record: ring[head & (cap - 1)] */
    size_t count;
    size_t bytes;                     /* sum of the queued charges */
    size_t budget;
    /* The records of the last `behind` blocks that left the queue stay in the ring just
     * before head (ring[(head - k) & (cap - 1)], k = 1..behind), so that a free of one of
     * them is still called a double free (error path only).  The ring keeps HISTORY
     * slots spare for them: nothing is copied when a block leaves. */
    size_t behind;
    size_t front_limit;               /* bytes a thread's buffer may hold (0: none) */
    struct front *fronts;             /* every thread's buffer */
    struct front *spare_fronts;       /* buffers of threads that exited, for reuse */
    pthread_key_t key;                /* its destructor moves an exiting thread's buffer */
    bool key_ok;
} Q = {
    .lock = MS_SPIN_INIT,
};

/* What a queued block costs: its memory and its record (for small blocks the records
 * are a third of the total, measured under python3; the budget bounds the real RSS). */
static inline size_t charge_of(const struct ms_quarantine_rec *r)
{
    return ms_livetab_end(&r->e) - ms_livetab_head(&r->e) + sizeof *r;
}

static inline struct ms_quarantine_rec *at(size_t i)
{
    return &Q.ring[(Q.head + i) & (Q.cap - 1)];
}

/* Room in the ring for `more` records besides HISTORY slots of records that left. */
static int reserve(size_t more)
{
    size_t ncap = Q.cap ? Q.cap : INITIAL_RECS;
    while (ncap - Q.count < more + HISTORY)
        ncap *= 2;
    if (ncap == Q.cap)
        return 0;
    struct ms_quarantine_rec *nring = ms_os_map(ncap * sizeof *nring);
    if (nring == NULL)
        return -1;
    size_t behind = Q.behind;
    for (size_t i = 0; i < behind + Q.count; i++)
        nring[i] = Q.ring[(Q.head - behind + i) & (Q.cap - 1)];
    if (Q.ring != NULL)
        ms_os_unmap(Q.ring, Q.cap * sizeof *Q.ring);
    Q.ring = nring;
    Q.cap = ncap;
    Q.head = behind;
    return 0;
}

static void append_locked(const struct ms_quarantine_rec *r)
{
    *at(Q.count) = *r;
    Q.count++;
    Q.bytes += charge_of(r);
    if (Q.count + Q.behind > Q.cap)
        Q.behind = Q.cap - Q.count;    /* the oldest record that left was overwritten */
}

/* Move f's records into the ring (Q.lock held); -1 when the ring cannot grow. */
static int spill_locked(struct front *f)
{
    size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
    if (n == 0)
        return 0;
    if (reserve(n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        append_locked(&f->rec[i]);
    atomic_store_explicit(&f->n, 0, memory_order_relaxed);
    f->bytes = 0;
    return 0;
}

#define PREFETCH_VICTIMS 4 /* the next batch's first victims */

static size_t pop_locked(struct ms_quarantine_rec *victims, size_t max, size_t keep_bytes)
{
    size_t n = 0;
    while (n < max && Q.count > 0 && Q.bytes > keep_bytes) {
        victims[n] = *at(0);
        Q.bytes -= charge_of(&victims[n]);
        Q.head++;
        Q.count--;
        Q.behind += Q.behind < HISTORY;
        n++;
    }
    /* Victims' memory is cold (the budget is far bigger than the caches) and the verifier
     * reads all of it: the caller fetches ahead within a batch; here the first victims of
     * the next batch start on their way, whole lines up to their first 512 bytes. */
    for (size_t k = 0; n != 0 && k < PREFETCH_VICTIMS && k < Q.count; k++) {
        const struct ms_livetab_entry *e = &at(k)->e;
        uintptr_t lo = ms_livetab_head(e), hi = ms_livetab_end(e);
        if (hi - lo > 512)
            hi = lo + 512;
        for (uintptr_t a = lo & ~(uintptr_t)63; a < hi; a += 64)
            __builtin_prefetch((const void *)a);
    }
    return n;
}

static size_t keep_bytes(void)
{
    return Q.budget - Q.front_limit;
}

/* ---- the per-thread buffers ---------------------------------------------------------- */

static void unlink_front_locked(struct front *f)
{
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        Q.fronts = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    f->next = Q.spare_fronts;
    Q.spare_fronts = f;
}

/* Thread exit: the buffer's records join the ring (the next free anywhere pops what is
 * over budget), and the buffer waits for the next thread.  Later frees of this thread (other
 * destructors) go straight to the ring. */
static void front_destructor(void *arg)
{
    struct front *f = arg;
    self = NO_FRONT;
    ms_spin_lock(&Q.lock);
    /* Without room in the ring its blocks stay where they are, never reused: a leak
     * under memory exhaustion rather than a report about a correct program. */
    spill_locked(f);
    atomic_store_explicit(&f->n, 0, memory_order_relaxed);
    f->bytes = 0;
    unlink_front_locked(f);
    ms_spin_unlock(&Q.lock);
}

static struct front *front_create(void)
{
    self = NO_FRONT;                   /* pthread_setspecific may free: go straight */
    if (!Q.key_ok || Q.front_limit == 0)
        return NULL;
    ms_spin_lock(&Q.lock);
    if (Q.spare_fronts == NULL) {
        struct front *chunk = ms_os_map(FRONT_CHUNK_BYTES);
        for (size_t i = 0; chunk != NULL && i < FRONT_CHUNK_BYTES / sizeof *chunk; i++) {
            chunk[i].next = Q.spare_fronts;
            Q.spare_fronts = &chunk[i];
        }
    }
    struct front *f = Q.spare_fronts;
    if (f != NULL)
        Q.spare_fronts = f->next;
    ms_spin_unlock(&Q.lock);
    if (f == NULL)
        return NULL;
    if (pthread_setspecific(Q.key, f) != 0) {
        ms_spin_lock(&Q.lock);
        f->next = Q.spare_fronts;
        Q.spare_fronts = f;
        ms_spin_unlock(&Q.lock);
        return NULL;
    }
    ms_spin_lock(&Q.lock);
    f->prev = NULL;
    f->next = Q.fronts;
    if (f->next != NULL)
        f->next->prev = f;
    Q.fronts = f;
    ms_spin_unlock(&Q.lock);
    self = f;
    return f;
}

static inline struct front *front_self(void)
{
    struct front *f = self;
    if (f == NULL)
        f = front_create();
    return f == NO_FRONT ? NULL : f;
}

/* ---- the interface ------------------------------------------------------------------- */

void ms_quarantine_configure(size_t budget)
{
    ms_spin_lock(&Q.lock);
    Q.budget = budget;
    /* Small budgets (tests, MEMSHIM_QUARANTINE=64K) keep the exact per-free FIFO. */
    Q.front_limit = budget / 64 < 1024 ? 0
                  : budget / 64 < FRONT_MAX_BYTES ? budget / 64 : FRONT_MAX_BYTES;
    ms_spin_unlock(&Q.lock);
    if (Q.front_limit != 0 && !Q.key_ok && pthread_key_create(&Q.key, front_destructor) == 0)
        Q.key_ok = true;
}

size_t ms_quarantine_budget(void)
{
    return Q.budget;
}

size_t ms_quarantine_push(const struct ms_quarantine_rec *rec,
                          struct ms_quarantine_rec *victims, size_t max)
{
    size_t c = charge_of(rec);
    /* The only thread: its buffer would spare it nothing (the lock is a plain store then)
     * but a copy, so frees go straight into the ring; a buffer left from a multi-threaded
     * past (a fork child) is spilled first. */
    bool alone = ms_solo();
    struct front *f = alone ? (self == NO_FRONT ? NULL : self) : front_self();
    if (!alone && f != NULL) {
        size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
        if (n < FRONT_RECS && f->bytes + c <= Q.front_limit) {
            f->rec[n] = *rec;
            f->bytes += c;
            atomic_store_explicit(&f->n, n + 1, memory_order_release);
            return 0;
        }
    }
    size_t n;
    ms_spin_lock(&Q.lock);
    if ((f != NULL && spill_locked(f) != 0) || reserve(1) != 0) {
        n = SIZE_MAX;
    } else {
        if (!alone && f != NULL && c <= Q.front_limit) {
            f->rec[0] = *rec;
            f->bytes = c;
            atomic_store_explicit(&f->n, 1, memory_order_release);
        } else {
            append_locked(rec);
        }
        /* Alone, victims still leave in batches as a buffer's spill makes them: nothing
         * until the ring is over budget, then down to budget - front_limit, so the
         * verifier can fetch ahead. */
        n = alone && Q.bytes <= Q.budget ? 0 : pop_locked(victims, max, keep_bytes());
    }
    ms_spin_unlock(&Q.lock);
    return n;
}

size_t ms_quarantine_evict(struct ms_quarantine_rec *victims, size_t max)
{
    ms_spin_lock(&Q.lock);
    size_t n = pop_locked(victims, max, keep_bytes());
    ms_spin_unlock(&Q.lock);
    return n;
}

size_t ms_quarantine_drain(struct ms_quarantine_rec *victims, size_t max)
{
    struct front *f = self;
    ms_spin_lock(&Q.lock);
    /* Other threads' buffers are theirs to change: only the caller's joins the ring. */
    if (f != NULL && f != NO_FRONT && spill_locked(f) != 0) {
        /* No room to queue them: they leave first, oldest first. */
        size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
        n = n < max ? n : max;
        for (size_t i = 0; i < n; i++)
            victims[i] = f->rec[i];
        size_t left = atomic_load_explicit(&f->n, memory_order_relaxed) - n;
        memmove(f->rec, f->rec + n, left * sizeof *f->rec);
        f->bytes = 0;
        for (size_t i = 0; i < left; i++)
            f->bytes += charge_of(&f->rec[i]);
        atomic_store_explicit(&f->n, left, memory_order_relaxed);
        ms_spin_unlock(&Q.lock);
        return n;
    }
    size_t n = pop_locked(victims, max, 0);
    /* Zero-byte extents cannot exist (every block has a header), so bytes > 0 drains all. */
    ms_spin_unlock(&Q.lock);
    return n;
}

/* Fronts' records, with Q.lock held: the owner only appends past the count it published. */
static size_t front_count(const struct front *f)
{
    return atomic_load_explicit(&f->n, memory_order_acquire);
}

bool ms_quarantine_find(uintptr_t p, struct ms_quarantine_rec *out)
{
    bool hit = false;
    ms_spin_lock(&Q.lock);
    for (const struct front *f = Q.fronts; f != NULL && !hit; f = f->next) {
        for (size_t i = front_count(f); i-- > 0 && !hit;) {
            const struct ms_livetab_entry *e = &f->rec[i].e;
            if (p >= ms_livetab_base(e) && p < ms_livetab_end(e)) {
                *out = f->rec[i];
                hit = true;
            }
        }
    }
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
    for (size_t k = 1; k <= Q.behind && !hit; k++) {
        const struct ms_quarantine_rec *r = &Q.ring[(Q.head - k) & (Q.cap - 1)];
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
    for (const struct front *f = Q.fronts; f != NULL && !hit; f = f->next) {
        size_t n = front_count(f);
        for (size_t i = 0; i < n && !hit; i++) {
            if (fn(&f->rec[i], arg)) {
                *found = f->rec[i];
                hit = true;
            }
        }
    }
    ms_spin_unlock(&Q.lock);
    return hit;
}

size_t ms_quarantine_bytes(void)
{
    ms_spin_lock(&Q.lock);
    size_t b = Q.bytes;
    for (const struct front *f = Q.fronts; f != NULL; f = f->next)
        for (size_t i = 0, n = front_count(f); i < n; i++)
            b += charge_of(&f->rec[i]);
    ms_spin_unlock(&Q.lock);
    return b;
}

size_t ms_quarantine_count(void)
{
    ms_spin_lock(&Q.lock);
    size_t n = Q.count;
    for (const struct front *f = Q.fronts; f != NULL; f = f->next)
        n += front_count(f);
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

/* The other threads are gone, their buffers with them: their records join the ring (a
 * record an owner was appending at the fork is lost, its block never reused), and the
 * buffers wait for the child's new threads. */
void ms_quarantine_fork_child(void)
{
    struct front *next;
    for (struct front *f = Q.fronts; f != NULL; f = next) {
        next = f->next;
        if (f == self)
            continue;
        spill_locked(f);
        atomic_store_explicit(&f->n, 0, memory_order_relaxed);
        f->bytes = 0;
        unlink_front_locked(f);
    }
    ms_spin_init(&Q.lock);
}
