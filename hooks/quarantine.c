/* SPDX-License-Identifier: MIT */
/*
 * The quarantine FIFO (see quarantine.h).  One global queue behind one lock keeps the
 * promise "a block stays quarantined until `budget` bytes were freed after it", which
 * per-thread or per-shard queues would weaken for big blocks.  In front of it each thread
 * has a small buffer (struct front, at most FRONT_RECS records and front_limit bytes) that
 * its frees fill without a lock or an atomic read-modify-write; a full buffer enters the
 * queue in one go, under one lock, and the victims leave in one batch.  (The lock's atomic
 * exchange on every free waited for the 0xDD fill's stores to drain: 12% of debug churn.)
 * The queue is kept at budget - front_limit bytes, so one thread's quarantine stays within
 * the budget; each further thread may hold front_limit more.  While the process has one
 * thread (solo.h) the lock is a plain store and the buffer would only add a copy: frees go
 * straight into the queue, which then holds the whole budget.
 *
 * Readers of other threads' buffers (find, walk, counts) hold Q.lock, which every change
 * but the owner's lock-free append also holds; the append writes the record past the
 * published count and then publishes it (release), so a reader sees whole records only.
 *
 * Hot path.  Never calls malloc (the queue and the buffers come from ms_os_map; only
 * pthread_setspecific may, once per thread), never prints, never reads the blocks.
 */
#include "quarantine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "os.h"
#include "solo.h"
#include "spinlock.h"

#define HISTORY 16384u                    /* records of blocks that left (>= 512 KiB) */
#define FRONT_RECS 32u
#define FRONT_MAX_BYTES ((size_t)64 << 10)
#define FRONT_CHUNK_BYTES ((size_t)64 << 10)
#define SEG_BYTES ((size_t)64 << 10)
#define SEG_RECS ((SEG_BYTES - 2 * sizeof(void *)) / sizeof(struct ms_quarantine_rec))
#define SPARE_SEGS 2u                     /* kept mapped for the tail's next steps */

struct front {
    _Atomic size_t n;                 /* rec[0, n) are queued; only the owner adds */
    size_t bytes;                     /* their charges (the owner's alone) */
    struct front *next, *prev;        /* Q.fronts, or Q.spare_fronts (next only) */
    struct ms_quarantine_rec rec[FRONT_RECS];
};

/* The queue is a chain of 64 KiB segments, oldest first, rather than one ring that doubles:
 * a ring's capacity is a power of two and the queue wraps over all of it, so up to half of
 * its pages were resident without holding a record (4 MiB at the default 16 MiB, more
 * than the records themselves).  Segments cost what they hold, plus the records of blocks
 * that left (HISTORY up to HISTORY + 2 * SEG_RECS: whole segments go) and two spares, and
 * never copy.  Every segment but the tail is full. */
struct seg {
    struct seg *next, *prev;          /* newer, older */
    struct ms_quarantine_rec rec[SEG_RECS];
};

/* A place in the chain: rec[i] of s (i may equal SEG_RECS: the start of s->next). */
struct cursor {
    struct seg *s;
    size_t i;
};

/* NULL: no buffer yet; NO_FRONT: none (thread exiting, or none could be had), so this
 * thread's frees go straight to the queue. */
static struct front no_front;
#define NO_FRONT (&no_front)
static __thread struct front *self;

static struct quarantine_state {
    struct ms_spin lock;
    struct cursor head;               /* the oldest queued record */
    struct seg *tail;                 /* the newest segment; NULL before the first push */
    size_t tail_n;                    /* records in it */
    size_t count;
    size_t bytes;                     /* sum of the queued charges */
    size_t budget;
    /* The records of the last `behind` blocks that left the queue stay in the chain
     * before head (from `oldest` on), so that a free of one of them is still called a
     * double free (error path only).  Whole segments go once HISTORY records remain
     * without them: nothing is copied when a block leaves. */
    struct seg *oldest;
    size_t behind;
    struct seg *spare;                /* mapped, unused (next only) */
    size_t nspare;
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

/* The record at c, stepping into the next segment first if c is at the end of one. */
static inline struct ms_quarantine_rec *cursor_rec(struct cursor *c)
{
    if (c->i == SEG_RECS) {
        c->s = c->s->next;
        c->i = 0;
    }
    return &c->s->rec[c->i];
}

/* Step c back one record and return it (the chain holds one there). */
static inline struct ms_quarantine_rec *cursor_prev(struct cursor *c)
{
    if (c->i == 0) {
        c->s = c->s->prev;
        c->i = SEG_RECS;
    }
    return &c->s->rec[--c->i];
}

/* reserve() found neither room in the tail nor a spare segment (or no chain yet). */
static int reserve_slow(void)
{
    if (Q.spare == NULL) {
        struct seg *s = ms_os_map(sizeof *s);
        if (s == NULL)
            return -1;
        s->next = NULL;
        Q.spare = s;
        Q.nspare = 1;
    }
    if (Q.tail == NULL) {             /* the first segment: head, tail and oldest */
        struct seg *s = Q.spare;
        Q.spare = s->next;
        Q.nspare--;
        s->next = s->prev = NULL;
        Q.tail = Q.oldest = Q.head.s = s;
        Q.tail_n = Q.head.i = 0;
    }
    return 0;
}

/* Room to append `more` records (more <= SEG_RECS): the tail's, else a spare segment. */
static inline int reserve(size_t more)
{
    if (__builtin_expect(Q.tail != NULL && (Q.tail_n + more <= SEG_RECS || Q.spare != NULL), 1))
        return 0;
    return reserve_slow();
}

/* reserve() made room. */
static inline void append_locked(const struct ms_quarantine_rec *r)
{
    if (Q.tail_n == SEG_RECS) {
        struct seg *s = Q.spare;
        Q.spare = s->next;
        Q.nspare--;
        s->next = NULL;
        s->prev = Q.tail;
        Q.tail->next = s;
        Q.tail = s;
        Q.tail_n = 0;
    }
    Q.tail->rec[Q.tail_n++] = *r;
    Q.count++;
    Q.bytes += charge_of(r);
}

/* Move f's records into the chain (Q.lock held); -1 when it cannot grow. */
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

/* The head moved into a new segment: the oldest segments go while HISTORY records of
 * blocks that left remain without them. */
static void trim_history(void)
{
    while (Q.oldest != Q.head.s && Q.behind >= HISTORY + SEG_RECS) {
        struct seg *s = Q.oldest;
        Q.oldest = s->next;
        Q.oldest->prev = NULL;
        Q.behind -= SEG_RECS;
        if (Q.nspare < SPARE_SEGS) {
            s->next = Q.spare;
            Q.spare = s;
            Q.nspare++;
        } else {
            ms_os_unmap(s, sizeof *s);
        }
    }
}

#define PREFETCH_VICTIMS 4 /* the next batch's first victims */

static size_t pop_locked(struct ms_quarantine_rec *victims, size_t max, size_t keep_bytes)
{
    size_t n = 0;
    while (n < max && Q.count > 0 && Q.bytes > keep_bytes) {
        struct seg *was = Q.head.s;
        victims[n] = *cursor_rec(&Q.head);
        Q.head.i++;
        if (Q.head.s != was)
            trim_history();
        Q.bytes -= charge_of(&victims[n]);
        Q.count--;
        Q.behind++;
        n++;
    }
    /* Victims' memory is cold (the budget is far bigger than the caches) and the verifier
     * reads all of it: the caller fetches ahead within a batch; here the first victims of
     * the next batch start on their way, whole lines up to their first 512 bytes. */
    struct cursor c = Q.head;
    for (size_t k = 0; n != 0 && k < PREFETCH_VICTIMS && k < Q.count; k++, c.i++) {
        const struct ms_livetab_entry *e = &cursor_rec(&c)->e;
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

/* Thread exit: the buffer's records join the queue (the next free anywhere pops what is
 * over budget), and the buffer waits for the next thread.  Later frees of this thread (other
 * destructors) go straight to the queue. */
static void front_destructor(void *arg)
{
    struct front *f = arg;
    self = NO_FRONT;
    ms_spin_lock(&Q.lock);
    /* Without room in the queue its blocks stay where they are, never reused: a leak
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

static __attribute__((noinline)) size_t push_shared(const struct ms_quarantine_rec *rec,
                                                    struct ms_quarantine_rec *victims,
                                                    size_t max);

size_t ms_quarantine_push(const struct ms_quarantine_rec *rec,
                          struct ms_quarantine_rec *victims, size_t max)
{
    /* The common case, kept to a few registers: the only thread, no buffer.  Victims
     * still leave in batches as a buffer's spill makes them: nothing until the queue is
     * over budget, then down to budget - front_limit, so the verifier can fetch ahead. */
    if (ms_solo() && self == NULL) {
        size_t n = 0;
        ms_spin_lock(&Q.lock);
        if (reserve(1) != 0)
            n = SIZE_MAX;
        else if (append_locked(rec), Q.bytes > Q.budget)
            n = pop_locked(victims, max, keep_bytes());
        ms_spin_unlock(&Q.lock);
        return n;
    }
    return push_shared(rec, victims, max);
}

/* Several threads, or a thread whose buffer is gone (exiting) or left over from a
 * multi-threaded past (a fork child's). */
static size_t push_shared(const struct ms_quarantine_rec *rec,
                          struct ms_quarantine_rec *victims, size_t max)
{
    size_t c = charge_of(rec);
    /* The only thread: its buffer would spare it nothing (the lock is a plain store then)
     * but a copy, so frees go straight into the queue; a buffer left from a multi-threaded
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
        /* Alone: in batches, as in ms_quarantine_push. */
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
    /* Other threads' buffers are theirs to change: only the caller's joins the queue. */
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

/* Under Q.lock. */
static bool find_locked(uintptr_t p, struct ms_quarantine_rec *out)
{
    for (const struct front *f = Q.fronts; f != NULL; f = f->next) {
        for (size_t i = front_count(f); i-- > 0;) {
            const struct ms_livetab_entry *e = &f->rec[i].e;
            if (p >= ms_livetab_base(e) && p < ms_livetab_end(e)) {
                *out = f->rec[i];
                return true;
            }
        }
    }
    /* Newest first: back from the tail. */
    struct cursor c = { Q.tail, Q.tail_n };
    for (size_t k = 0; k < Q.count; k++) {
        const struct ms_quarantine_rec *r = cursor_prev(&c);
        if (p >= ms_livetab_base(&r->e) && p < ms_livetab_end(&r->e)) {
            *out = *r;
            return true;
        }
    }
    return false;
}

bool ms_quarantine_find(uintptr_t p, struct ms_quarantine_rec *out)
{
    ms_spin_lock(&Q.lock);
    bool hit = find_locked(p, out);
    ms_spin_unlock(&Q.lock);
    return hit;
}

bool ms_quarantine_try_find(uintptr_t p, struct ms_quarantine_rec *out)
{
    if (!ms_spin_trylock(&Q.lock))
        return false;
    bool hit = find_locked(p, out);
    ms_spin_unlock(&Q.lock);
    return hit;
}

bool ms_quarantine_find_released(uintptr_t p, struct ms_quarantine_rec *out)
{
    bool hit = false;
    ms_spin_lock(&Q.lock);
    struct cursor c = Q.head;
    for (size_t k = 0; k < Q.behind && !hit; k++) {
        const struct ms_quarantine_rec *r = cursor_prev(&c);
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
    struct cursor c = Q.head;
    for (size_t k = 0; k < Q.count && !hit; k++, c.i++) {
        const struct ms_quarantine_rec *r = cursor_rec(&c);
        if (fn(r, arg)) {
            *found = *r;
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

/* The other threads are gone, their buffers with them: their records join the queue (a
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
