/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's entry points (see debug.h): CPython's _PyMem_DebugRaw* over the lower
 * allocator, with every pointer first looked up in the live set and freed blocks parked
 * in the quarantine (quarantine.c).  The live set is the bitmap of blockmap.c for plain
 * blocks (p = lower block + 2*S: all but aligned ones) and the hash table of livetab.c
 * for aligned blocks, which need their lower block's address recorded.  Layout in
 * debug_layout.h, messages in diag.c.
 *
 * The rule that makes double and invalid frees reliable: a block leaves the live set only
 * through claim() (an atomic clear under a lock), so of two racing frees exactly one
 * wins, and memory around a pointer is read only once the live set has vouched for it.
 *
 * Hot path: one table insert per malloc, one claim per free plus one quarantine push (and
 * the verification of the block that leaves).  Never calls the interposed malloc, stdio
 * or getenv; thread-safe; fork-safe through the atfork handlers registered in init.
 */
#include "debug.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "addrkind.h"
#include "blockmap.h"
#include "check.h"
#include "debug_layout.h"
#include "diag.h"
#include "guard.h"
#include "livetab.h"
#include "os.h"
#include "quarantine.h"
#include "solo.h"

#define NAPIS 5
#define VICTIM_BATCH 64            /* a thread buffer's 32 and their byte balance */
#define VERIFY_AHEAD 4

struct debug_api {
    char id;
    bool own_lower;                   /* lower below: this id's own (set_lower) */
    struct ms_allocator lower;
};

static struct debug_state {
    struct ms_debug_config cfg;
    _Atomic uint64_t serial;          /* CPython's serialno, shared by every API */
    bool any_own_lower;               /* some id has a lower of its own: look it up */
    bool atfork_registered;
    struct debug_api apis[NAPIS];
} S = {
    .cfg = { .fd = 2 },
    .apis = { { .id = MS_DEBUG_API_RAW }, { .id = MS_DEBUG_API_MEM },
              { .id = MS_DEBUG_API_OBJ }, { .id = MS_DEBUG_API_NEW },
              { .id = MS_DEBUG_API_NEW_ARRAY } },
};

static inline char api_of(void *ctx)
{
    return ((const struct debug_api *)ctx)->id;
}

/* The allocator under blocks of API id api: cfg.lower unless ms_debug_set_lower gave that
 * id one of its own (debug hooks over a custom domain allocator).  An unknown id (a
 * corrupted header) gets cfg.lower. */
static inline const struct ms_allocator *lower_of(char api)
{
    if (MS_LIKELY(!S.any_own_lower))
        return &S.cfg.lower;
    for (int i = 0; i < NAPIS; i++)
        if (S.apis[i].id == api)
            return S.apis[i].own_lower ? &S.apis[i].lower : &S.cfg.lower;
    return &S.cfg.lower;
}

/* Serial numbers come from the process-wide counter one at a time while the process has
 * one thread, and in batches of SERIAL_BATCH per thread once it has more: one shared atomic
 * add per malloc bounced the counter's cache line between two threads churning privately
 * (tests/bench/churn 5000000 2 under debug: 1.94 s, 1.70 s with batches).  Numbers stay
 * unique; across threads they follow the order in which batches were taken, and a thread
 * that exits leaves the rest of its batch unused (CPython's counter has the GIL). */
#define SERIAL_BATCH 64

static _Thread_local struct serial_batch {
    uint64_t next, end;               /* [next, end): this thread's to hand out */
} serial_batch;

static inline uint64_t bump_serial(void)
{
    if (ms_solo()) {
        uint64_t s = atomic_load_explicit(&S.serial, memory_order_relaxed) + 1;
        atomic_store_explicit(&S.serial, s, memory_order_relaxed);
        return s;
    }
    struct serial_batch *b = &serial_batch;
    if (MS_UNLIKELY(b->next == b->end)) {
        bool first = b->end == 0;
        b->next = atomic_fetch_add_explicit(&S.serial, SERIAL_BATCH, memory_order_relaxed) + 1;
        b->end = b->next + SERIAL_BATCH;
        if (first && S.cfg.on_new_thread != NULL)
            S.cfg.on_new_thread();    /* may allocate: the batch is set already */
    }
    return b->next++;
}

/* The number of the latest call, for "freed after call #N": the counter while the process
 * has one thread, else this thread's latest (the counter runs ahead by the batches other
 * threads hold). */
static inline uint64_t latest_serial(void)
{
    uint64_t all = atomic_load_explicit(&S.serial, memory_order_relaxed);
    if (ms_solo() || serial_batch.end == 0)
        return all;
    return serial_batch.next - 1;
}

/* ---- the live set --------------------------------------------------------------------- */

/* What the lower block at head holds for the layer's use (its usable size less the
 * header and trailer), clamped to MS_DEBUG_MAX_REQUEST. */
static inline size_t lower_room_of(const struct ms_allocator *lo, uintptr_t head)
{
    if (lo->usable_size == NULL)
        return MS_DEBUG_MAX_REQUEST;
    size_t u = lo->usable_size(lo->ctx, (void *)head);
    size_t room = u < MS_DEBUG_OVERHEAD ? 0 : u - MS_DEBUG_OVERHEAD;
    return room < MS_DEBUG_MAX_REQUEST ? room : MS_DEBUG_MAX_REQUEST;
}

/* A plain block's entry, from its header (the bitmap vouched for p, so the header is
 * ours to read).  The size is clamped to what the lower block can hold, so neither the
 * checks nor the dump can read past the block when the size field is corrupted
 * (gh-112140); a clamped size then fails the size check. */
static void entry_from_header(uintptr_t p, struct ms_livetab_entry *e)
{
    const uint8_t *q = (const uint8_t *)p;
    uint64_t n = ms_layout_size(q);
    size_t room = lower_room_of(lower_of(ms_layout_api(q)), p - MS_DEBUG_HEAD);
    e->p = p;
    e->meta = ms_livetab_meta(n <= room ? (size_t)n : room, ms_layout_api(q), 0);
}

static int track(const struct ms_livetab_entry *e)
{
    if (!ms_livetab_is_aligned_block(e) && ms_blockmap_covers(e->p))
        return ms_blockmap_set(e->p);
    return ms_livetab_insert(e);
}

/* Take p out of the live set: the free/realloc choke point. */
static bool claim(uintptr_t p, struct ms_livetab_entry *e)
{
    if (ms_blockmap_claim(p)) {
        entry_from_header(p, e);
        return true;
    }
    return ms_livetab_claim(p, e);
}

static bool lookup(uintptr_t p, struct ms_livetab_entry *e)
{
    if (ms_blockmap_test(p)) {
        entry_from_header(p, e);
        return true;
    }
    return ms_livetab_lookup(p, e);
}

/* Visit every live block (fn runs with the block protected from concurrent frees). */
struct visit {
    bool (*fn)(const struct ms_livetab_entry *e, void *arg);
    void *arg;
    struct ms_livetab_entry found;
};

static bool visit_plain(uintptr_t p, void *arg)
{
    struct visit *v = arg;
    entry_from_header(p, &v->found);
    return v->fn(&v->found, v->arg);
}

static bool walk_live(bool (*fn)(const struct ms_livetab_entry *e, void *arg), void *arg,
                      struct ms_livetab_entry *found)
{
    struct visit v = { .fn = fn, .arg = arg };
    if (ms_blockmap_walk(visit_plain, &v) != 0) {
        *found = v.found;
        return true;
    }
    return ms_livetab_walk(fn, arg, found);
}

/* ---- checks (SPEC 3.3) ------------------------------------------------------------- */

/* Is lower's own header in front of e's lower block intact, as far as the shim can tell?
 * Only for blocks that came from cfg.lower, above the size where it keeps one: n + 32 is
 * what a plain block asked of lower (an aligned one asked more), so the blocks pymalloc
 * serves cost one compare.  A block that failed another check (failed) may have had its
 * size clamped to nothing by a damaged lower header: then the size cannot decide. */
static inline bool lower_header_ok(const struct ms_livetab_entry *e, char api, bool failed)
{
    if (MS_LIKELY(!failed && ms_livetab_size(e) + MS_DEBUG_OVERHEAD <= S.cfg.lower_header_above))
        return true;
    if (S.cfg.lower_header_intact == NULL || lower_of(api) != &S.cfg.lower)
        return true;
    uintptr_t base = ms_livetab_base(e);
    return S.cfg.lower_header_intact((const void *)base, ms_livetab_end(e) - base);
}

/* API id, leading pads, size field, trailing pads, in CPython's order, then lower's
 * header.  The common case is two word compares and one size compare. */
static enum ms_diag_bad check_block(const struct ms_livetab_entry *e, char api)
{
    const uint8_t *p = (const uint8_t *)e->p;
    size_t n = ms_livetab_size(e);
    uint64_t head, tail;
    const uint64_t pads = 0xfdfdfdfdfdfdfdfdull;
    memcpy(&head, p - MS_DEBUG_S, 8);
    memcpy(&tail, p + n, 8);
    if (head == ((pads << 8) | (uint8_t)api) && tail == pads && ms_layout_size(p) == n)
        return lower_header_ok(e, api, false) ? MS_DIAG_OK : MS_DIAG_BAD_LOWER;
    if (ms_layout_api(p) != api)
        return MS_DIAG_BAD_ID;
    if (ms_layout_first_not(p - (MS_DEBUG_S - 1), MS_DEBUG_S - 1, MS_FORBIDDENBYTE)
        != MS_DEBUG_S - 1)
        return MS_DIAG_BAD_LEADING;
    /* Before the size: a damaged lower header leaves the size clamped to nothing. */
    if (!lower_header_ok(e, api, true))
        return MS_DIAG_BAD_LOWER;
    if (ms_layout_size(p) != n)
        return MS_DIAG_BAD_SIZE;
    return MS_DIAG_BAD_TRAILING;
}

/* The live block ending at most this many bytes in front of a damaged header may have
 * run into it: the lower allocators' slack (size-class rounding, a chunk header). */
#define RAN_OVER_GAP 64

struct ran_over {
    uintptr_t head;      /* the damaged header */
    uintptr_t best_end;  /* end of the nearest culprit so far (0: none) */
    struct ms_diag_neighbour found;
};

/* Runs while the walk holds n, so n's trailer cannot be freed under the read. */
static bool ends_in_front(const struct ms_livetab_entry *n, void *arg)
{
    struct ran_over *r = arg;
    uintptr_t end = ms_livetab_end(n);
    if (end > r->head || r->head - end > RAN_OVER_GAP || end <= r->best_end)
        return false;
    const uint8_t *tail = (const uint8_t *)n->p + ms_livetab_size(n);
    if (ms_layout_first_not(tail, MS_DEBUG_S, MS_FORBIDDENBYTE) == MS_DEBUG_S)
        return false;
    r->best_end = end;
    r->found.p = n->p;
    r->found.size = ms_livetab_size(n);
    r->found.serial = ms_layout_get_be(tail + MS_DEBUG_S);
    if (r->found.serial > atomic_load_explicit(&S.serial, memory_order_relaxed))
        r->found.serial = 0; /* the overflow ran over it too */
    return false; /* a nearer one may follow */
}

/* The live block that ran into the header (ours, or lower's in front of it) at head;
 * false when none is in sight. */
static bool find_ran_over(uintptr_t head, struct ms_diag_neighbour *out)
{
    struct ran_over r = { .head = head };
    struct ms_livetab_entry unused;
    walk_live(ends_in_front, &r, &unused);
    *out = r.found;
    return r.best_end != 0;
}

static _Noreturn void bad_block(enum ms_diag_op op, enum ms_diag_bad bad, char api,
                                const struct ms_livetab_entry *e)
{
    struct ms_diag_neighbour n;
    /* A damaged header of lower's lies in front of its base, not of our header. */
    uintptr_t head = bad == MS_DIAG_BAD_LOWER ? ms_livetab_base(e) : ms_livetab_head(e);
    bool found = bad != MS_DIAG_BAD_TRAILING && find_ran_over(head, &n);
    ms_diag_bad_block(&S.cfg, op, bad, api, e, found ? &n : NULL);
}

static bool is_cxx(char api)
{
    return api == MS_DEBUG_API_NEW || api == MS_DEBUG_API_NEW_ARRAY;
}

/* A C++ delete of a malloc block, or a free of a C++ block, is a correct program's doing
 * where a loaded object keeps operator new and delete of its own (they call malloc and
 * free): its blocks carry 'r' and cross to code that calls memshim's operators. */
static bool families_may_mix(char call_api, char block_api)
{
    bool crossed = (is_cxx(call_api) && block_api == MS_DEBUG_API_RAW)
                   || (is_cxx(block_api) && call_api == MS_DEBUG_API_RAW);
    return crossed && S.cfg.foreign_operators != NULL && S.cfg.foreign_operators();
}

static void check_or_die(enum ms_diag_op op, char api, const struct ms_livetab_entry *e)
{
    enum ms_diag_bad bad = check_block(e, api);
    if (bad == MS_DIAG_BAD_ID && op == MS_DIAG_FREE && families_may_mix(api, ms_livetab_api(e)))
        bad = check_block(e, ms_livetab_api(e));
    if (bad != MS_DIAG_OK)
        bad_block(op, bad, api, e);
}

/* ---- pointers the live set does not vouch for ------------------------------------- */

struct containing {
    uintptr_t addr;
    uint64_t serial;
};

/* Runs while the walk holds the block, so it cannot be freed while its trailer is read. */
static bool contains(const struct ms_livetab_entry *e, void *arg)
{
    struct containing *c = arg;
    if (c->addr < ms_livetab_base(e) || c->addr >= ms_livetab_end(e))
        return false;
    c->serial = ms_layout_get_be((const uint8_t *)e->p + ms_livetab_size(e) + MS_DEBUG_S);
    return true;
}

/* p is not a live block: say what it is, and abort.  The slow scans are fine here. */
static _Noreturn void bad_pointer(enum ms_diag_op op, void *ptr)
{
    uintptr_t a = (uintptr_t)ptr;
    struct ms_quarantine_rec r;
    bool in_freed = ms_quarantine_find(a, &r);
    /* A free of the same block racing with this one may still be filling it before it
     * queues it: give it up to 100 ms, so that the report can say "double free". */
    if (!in_freed && (a & 15) == 0 && S.cfg.quarantine_bytes != 0) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            sched_yield();
            in_freed = ms_quarantine_find(a, &r);
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while (!in_freed && (now.tv_sec - start.tv_sec) * 1000000000L
                                      + (now.tv_nsec - start.tv_nsec) < 100000000L);
    }
    if (in_freed && r.e.p == a)
        ms_diag_double_free(&S.cfg, op, &r, true);
    if (!in_freed && ms_quarantine_find_released(a, &r))
        ms_diag_double_free(&S.cfg, op, &r, false);
    struct ms_diag_where where = { .container = &r.e, .serial = r.serial, .freed = true };
    struct ms_livetab_entry live;
    struct containing c = { .addr = a };
    if (walk_live(contains, &c, &live)) {
        where.container = &live;
        where.serial = c.serial;
        where.freed = false;
    }
    if (where.container == &live || in_freed)
        ms_diag_invalid_pointer(&S.cfg, op, ptr, MS_DIAG_INVALID_INTERIOR, &where);
    struct ms_addrinfo module;
    ms_addrkind_classify(ptr, &module);
    where.module = &module;
    if (module.kind == MS_ADDR_STACK)
        ms_diag_invalid_pointer(&S.cfg, op, ptr, MS_DIAG_INVALID_STACK, &where);
    if (module.kind == MS_ADDR_IMAGE)
        ms_diag_invalid_pointer(&S.cfg, op, ptr, MS_DIAG_INVALID_IMAGE, &where);
    ms_diag_invalid_pointer(&S.cfg, op, ptr,
                            (a & 15) ? MS_DIAG_INVALID_MISALIGNED : MS_DIAG_INVALID_UNKNOWN,
                            &where);
}

static bool is_foreign(void *ptr, size_t *size)
{
    if (S.cfg.foreign_size == NULL)
        return false;
    *size = S.cfg.foreign_size(ptr);
    return *size != 0;
}

/* ---- making blocks ----------------------------------------------------------------- */

static void release(const struct ms_quarantine_rec *v, size_t n, enum ms_diag_op op);

static size_t drain_quarantine(enum ms_diag_op op)
{
    struct ms_quarantine_rec victims[VICTIM_BATCH];
    size_t n, total = 0;
    do {
        n = ms_quarantine_drain(victims, VICTIM_BATCH);
        release(victims, n, op);
        total += n;
    } while (n == VICTIM_BATCH);
    return total;
}

/* Out of memory: the quarantine is a luxury, and the blocks it holds can pin far more than
 * its budget (a queued block at the top of the C library's heap stops it from trimming).
 * Empty it (all but other threads' small buffers, which are theirs to change), then the
 * caller retries once more; false when there was nothing to give back. */
static bool reclaim_quarantine(void)
{
    return drain_quarantine(MS_DIAG_CHECK) != 0;
}

/* Decorate p, enter it in the table, honour the break.  base is what lower returned.
 * Inlined: as a call it saved and restored six registers on every malloc. */
static inline __attribute__((always_inline)) void *publish(uint8_t *base, uint8_t *p, size_t n,
                                                           char api, unsigned align_log2,
                                                           uint64_t serial, bool fill)
{
    ms_layout_decorate(p, n, api, serial);
    struct ms_livetab_entry e = {
        .p = (uintptr_t)p, .meta = ms_livetab_meta(n, api, align_log2),
    };
    if (track(&e) != 0) {
        const struct ms_allocator *lo = lower_of(api);
        lo->free(lo->ctx, base);
        return NULL;
    }
    /* The fill comes after the table's atomic update: a lock-prefixed instruction waits for
     * every store before it to drain, and the fill's (cold lines) made the bitmap's
     * fetch_or 28% of two threads' debug churn (perf).  Whoever looks at a live block
     * before it is returned (a heap walk) checks the header and trailer, written first. */
    if (fill)
        memset(p, MS_CLEANBYTE, n);
    if (serial == S.cfg.break_serialno && S.cfg.on_break != NULL)
        S.cfg.on_break(p, serial);
    return p;
}

static void *alloc_block(char api, size_t n, bool zero)
{
    if (n > MS_DEBUG_MAX_REQUEST)
        return NULL;
    size_t total = n + MS_DEBUG_OVERHEAD;
    const struct ms_allocator *lo = lower_of(api);
    uint8_t *base;
    do
        base = zero ? lo->calloc(lo->ctx, 1, total) : lo->malloc(lo->ctx, total);
    while (base == NULL && reclaim_quarantine());
    if (base == NULL)
        return NULL;
    return publish(base, base + MS_DEBUG_HEAD, n, api, 0, bump_serial(), !zero);
}

static void *debug_malloc(void *ctx, size_t n)
{
    return alloc_block(api_of(ctx), n, false);
}

static void *debug_calloc(void *ctx, size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n))
        return NULL;
    return alloc_block(api_of(ctx), n, true);
}

/* p = base + alignment, so the header sits right in front of an aligned p and the
 * table's log2(alignment) finds base again. */
static void *debug_memalign(void *ctx, size_t alignment, size_t n)
{
    if (alignment <= MS_DEBUG_HEAD)
        return alloc_block(api_of(ctx), n, false);
    const struct ms_allocator *lo = lower_of(api_of(ctx));
    if ((alignment & (alignment - 1)) != 0 || alignment > MS_DEBUG_MAX_REQUEST
        || n > MS_DEBUG_MAX_REQUEST || lo->memalign == NULL)
        return NULL;
    uint8_t *base;
    do
        base = lo->memalign(lo->ctx, alignment, alignment + n + MS_DEBUG_TAIL);
    while (base == NULL && reclaim_quarantine());
    if (base == NULL)
        return NULL;
    return publish(base, base + alignment, n, api_of(ctx), (unsigned)__builtin_ctzll(alignment),
                   bump_serial(), true);
}

/* ---- freeing blocks and the quarantine --------------------------------------------- */

static size_t first_dirty(const struct ms_quarantine_rec *r)
{
    uintptr_t head = ms_livetab_head(&r->e);
    return ms_layout_first_not((const uint8_t *)head, ms_livetab_end(&r->e) - head,
                               MS_DEADBYTE);
}

static void prefetch_extent(const struct ms_quarantine_rec *r)
{
    uintptr_t lo = ms_livetab_head(&r->e), hi = ms_livetab_end(&r->e);
    if (hi - lo > 512)
        hi = lo + 512;
    for (uintptr_t a = lo & ~(uintptr_t)63; a < hi; a += 64)
        __builtin_prefetch((const void *)a);
}

/* A write that starts in the freed block's header is most likely the block in front
 * running over its end: name it. */
static _Noreturn void write_after_free(enum ms_diag_op op, const struct ms_quarantine_rec *r)
{
    uintptr_t head = ms_livetab_head(&r->e);
    size_t at = first_dirty(r);
    struct ms_diag_neighbour n;
    bool found = at < MS_DEBUG_HEAD && find_ran_over(head, &n);
    ms_diag_write_after_free(&S.cfg, op, r, head + at, found ? &n : NULL);
}

/* A block leaving the quarantine must still be all DEADBYTE; then it goes to lower.
 * Victims are cold: a few are being fetched while one is verified. */
static void release(const struct ms_quarantine_rec *v, size_t n, enum ms_diag_op op)
{
    for (size_t i = 0; i < n; i++) {
        if (i + VERIFY_AHEAD < n)
            prefetch_extent(&v[i + VERIFY_AHEAD]);
        uintptr_t head = ms_livetab_head(&v[i].e);
        size_t extent = ms_livetab_end(&v[i].e) - head;
        if (!ms_layout_all((const uint8_t *)head, extent, MS_DEADBYTE))
            write_after_free(op, &v[i]);
        if (!lower_header_ok(&v[i].e, ms_livetab_api(&v[i].e), false)) {
            struct ms_diag_neighbour n;
            bool found = find_ran_over(ms_livetab_base(&v[i].e), &n);
            ms_diag_freed_lower_header(&S.cfg, op, &v[i], found ? &n : NULL);
        }
        const struct ms_allocator *lo = lower_of(ms_livetab_api(&v[i].e));
        lo->free(lo->ctx, (void *)ms_livetab_base(&v[i].e));
    }
}

/* e goes straight back to lower: there is no quarantine, e is bigger than its whole budget,
 * or the queue could not grow.  Filled with DEADBYTE first (filled: done already), unless
 * lower unmaps it at once. */
static __attribute__((noinline)) void hand_back(const struct ms_livetab_entry *e, bool filled)
{
    const struct ms_allocator *lo = lower_of(ms_livetab_api(e));
    void *base = (void *)ms_livetab_base(e);
    /* Only a block lower keeps a header for can be one it maps on its own: the blocks
     * pymalloc serves are settled by the size, as in lower_header_ok(). */
    bool unmapped = S.cfg.lower_unmaps != NULL && lo == &S.cfg.lower
                    && ms_livetab_size(e) + MS_DEBUG_OVERHEAD > S.cfg.lower_header_above
                    && S.cfg.lower_unmaps(base);
    if (!filled && !unmapped) {
        uintptr_t head = ms_livetab_head(e);
        memset((void *)head, MS_DEADBYTE, ms_livetab_end(e) - head);
    }
    lo->free(lo->ctx, base);
}

/* e has left the live table: fill it with DEADBYTE and park it in the quarantine. */
static void retire(const struct ms_livetab_entry *e)
{
    uintptr_t head = ms_livetab_head(e);
    size_t extent = ms_livetab_end(e) - head;
    size_t budget = S.cfg.quarantine_bytes;
    if (budget == 0 || extent > budget) {
        hand_back(e, false);
        return;
    }
    uint64_t serial = ms_layout_get_be((const uint8_t *)e->p + ms_livetab_size(e) + MS_DEBUG_S);
    memset((void *)head, MS_DEADBYTE, extent);
    struct ms_quarantine_rec rec = {
        .e = *e, .serial = serial, .freed_after = latest_serial(),
    };
    struct ms_quarantine_rec victims[VICTIM_BATCH];
    size_t n = ms_quarantine_push(&rec, victims, VICTIM_BATCH);
    if (n == SIZE_MAX) {
        hand_back(e, true);
        return;
    }
    if (n == 0)                        /* most frees: nothing over budget yet */
        return;
    release(victims, n, MS_DIAG_FREE);
    while (n == VICTIM_BATCH) {
        n = ms_quarantine_evict(victims, VICTIM_BATCH);
        release(victims, n, MS_DIAG_FREE);
    }
}

static void debug_free(void *ctx, void *ptr)
{
    if (ptr == NULL)
        return;
    char api = api_of(ctx);
    struct ms_livetab_entry e;
    if (!claim((uintptr_t)ptr, &e)) {
        size_t size;
        if (is_foreign(ptr, &size)) {
            S.cfg.foreign_free(ptr);
            return;
        }
        bad_pointer(MS_DIAG_FREE, ptr);
    }
    check_or_die(MS_DIAG_FREE, api, &e);
    retire(&e);
}

/* ---- realloc ------------------------------------------------------------------------ */

/* Aligned blocks (their data does not start 2*S into the lower block), foreign blocks
 * and, with a quarantine, blocks outgrowing their lower block move by copy: a new block,
 * the old one freed through the quarantine. */
static void *realloc_by_copy(char api, struct ms_livetab_entry *e, size_t n)
{
    uint8_t *q = alloc_block(api, n, false);
    if (q == NULL) {
        track(e);
        return NULL;
    }
    size_t old = ms_livetab_size(e);
    memcpy(q, (const void *)e->p, old < n ? old : n);
    retire(e);
    return q;
}

static void *realloc_foreign(char api, void *ptr, size_t old, size_t n)
{
    uint8_t *q = alloc_block(api, n, false);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, old < n ? old : n);
    S.cfg.foreign_free(ptr);
    return q;
}

#define ERASED_SIZE 64

/* CPython's _PyMem_DebugRawRealloc: erase the header, the trailer and up to 64 bytes at
 * each end of the data (keeping a copy), realloc the lower block, redecorate, restore.
 * If the block moved, what the lower allocator left behind is DEADBYTE there; growth is
 * CLEANBYTE; on failure the old block is rebuilt exactly. */
static void *debug_realloc(void *ctx, void *ptr, size_t n)
{
    char api = api_of(ctx);
    if (ptr == NULL)
        return alloc_block(api, n, false);
    struct ms_livetab_entry e;
    /* Out of the table before lower may free the address for another thread to reuse. */
    if (!claim((uintptr_t)ptr, &e)) {
        size_t old;
        if (is_foreign(ptr, &old))
            return realloc_foreign(api, ptr, old, n);
        bad_pointer(MS_DIAG_REALLOC, ptr);
    }
    check_or_die(MS_DIAG_REALLOC, api, &e);
    if (n > MS_DEBUG_MAX_REQUEST) {
        track(&e);
        return NULL;
    }
    const struct ms_allocator *lo = lower_of(api);
    if (ms_livetab_is_aligned_block(&e) || lo->realloc == NULL)
        return realloc_by_copy(api, &e, n);
    /* Beyond CPython: with a quarantine, growth that cannot stay in place moves by copy,
     * and the old block waits in the quarantine like any freed one, so that a write
     * through the old pointer (an array grew under a saved pointer) is found. */
    size_t old = ms_livetab_size(&e);
    if (n > old && S.cfg.quarantine_bytes != 0
        && n > lower_room_of(lo, (uintptr_t)ptr - MS_DEBUG_HEAD))
        return realloc_by_copy(api, &e, n);

    uint8_t *data = ptr;
    uint8_t *head = data - MS_DEBUG_HEAD;
    uint8_t *tail = data + old;
    uint64_t serial = ms_layout_get_be(tail + MS_DEBUG_S);
    uint8_t save[2 * ERASED_SIZE];
    if (old <= sizeof save) {
        memcpy(save, data, old);
        memset(head, MS_DEADBYTE, old + MS_DEBUG_OVERHEAD);
    } else {
        memcpy(save, data, ERASED_SIZE);
        memset(head, MS_DEADBYTE, ERASED_SIZE + MS_DEBUG_HEAD);
        memcpy(save + ERASED_SIZE, tail - ERASED_SIZE, ERASED_SIZE);
        memset(tail - ERASED_SIZE, MS_DEADBYTE, ERASED_SIZE + MS_DEBUG_TAIL);
    }

    uint8_t *r;
    do
        r = lo->realloc(lo->ctx, head, n + MS_DEBUG_OVERHEAD);
    while (r == NULL && reclaim_quarantine());
    size_t now = n;
    if (r == NULL)
        now = old;
    else {
        head = r;
        serial = bump_serial();
    }
    data = head + MS_DEBUG_HEAD;
    ms_layout_decorate(data, now, api, serial);
    if (old <= sizeof save) {
        memcpy(data, save, now < old ? now : old);
    } else {
        size_t i = old - ERASED_SIZE;
        memcpy(data, save, now < ERASED_SIZE ? now : ERASED_SIZE);
        if (now > i)
            memcpy(data + i, save + ERASED_SIZE,
                   now - i < ERASED_SIZE ? now - i : ERASED_SIZE);
    }
    if (r == NULL) {
        track(&e);
        return NULL;
    }
    if (now > old)
        memset(data + old, MS_CLEANBYTE, now - old);
    struct ms_livetab_entry ne = { .p = (uintptr_t)data, .meta = ms_livetab_meta(now, api, 0) };
    /* Tracking fails only when the OS refuses memory for the map: the block is then left
     * untracked rather than losing the program's data. */
    track(&ne);
    if (serial == S.cfg.break_serialno && S.cfg.on_break != NULL)
        S.cfg.on_break(data, serial);
    return data;
}

static size_t debug_usable_size(void *ctx, void *ptr)
{
    (void)ctx;
    struct ms_livetab_entry e;
    size_t size;
    if (ptr == NULL)
        return 0;
    if (lookup((uintptr_t)ptr, &e))
        return ms_livetab_size(&e);
    if (is_foreign(ptr, &size))
        return size;
    /* glibc would read a stale or made-up chunk header here and answer anything (or
     * crash); ASan reports it, and so do we: it is a use of a dangling pointer. */
    bad_pointer(MS_DIAG_USABLE_SIZE, ptr);
}

/* ---- whole-heap checks --------------------------------------------------------------- */

static bool live_is_bad(const struct ms_livetab_entry *e, void *arg)
{
    enum ms_diag_bad *bad = arg;
    *bad = check_block(e, ms_livetab_api(e));
    return *bad != MS_DIAG_OK;
}

static bool freed_is_dirty(const struct ms_quarantine_rec *r, void *arg)
{
    (void)arg;
    return ms_livetab_head(&r->e) + first_dirty(r) != ms_livetab_end(&r->e);
}

static void check_live(enum ms_diag_op op)
{
    struct ms_livetab_entry e;
    enum ms_diag_bad bad = MS_DIAG_OK;
    if (walk_live(live_is_bad, &bad, &e))
        bad_block(op, bad, ms_livetab_api(&e), &e);
}

static void check_quarantine(enum ms_diag_op op)
{
    struct ms_quarantine_rec r;
    if (ms_quarantine_walk(freed_is_dirty, NULL, &r))
        write_after_free(op, &r);
}

void ms_debug_check_heap(void)
{
    check_live(MS_DIAG_CHECK);
}

void ms_debug_at_exit(void)
{
    check_live(MS_DIAG_EXIT);
    check_quarantine(MS_DIAG_EXIT);
}

void ms_debug_flush_quarantine(void)
{
    drain_quarantine(MS_DIAG_CHECK);
}

/* ---- set-up ---------------------------------------------------------------------------- */

static void fork_prepare(void)
{
    ms_quarantine_fork_prepare();
    ms_livetab_fork_prepare();
    ms_blockmap_fork_prepare();
}

static void fork_parent(void)
{
    ms_blockmap_fork_parent();
    ms_livetab_fork_parent();
    ms_quarantine_fork_parent();
}

static void fork_child(void)
{
    ms_blockmap_fork_child();
    ms_livetab_fork_child();
    ms_quarantine_fork_child();
}

int ms_debug_init(const struct ms_debug_config *cfg)
{
    if (ms_blockmap_count() != 0 || ms_livetab_count() != 0 || ms_quarantine_count() != 0
        || ms_livetab_init() != 0)
        return -1;
    S.cfg = *cfg;
    if (S.cfg.lower_header_intact == NULL)
        S.cfg.lower_header_above = SIZE_MAX; /* one compare decides, as for small blocks */
    ms_quarantine_configure(cfg->quarantine_bytes);
    if (!S.atfork_registered) {
        /* glibc may allocate for its handler list: keep that out of the layers. */
        ms_guard_enter();
        int rc = ms_os_atfork(fork_prepare, fork_parent, fork_child);
        ms_guard_leave();
        if (rc != 0)
            return -1;
        S.atfork_registered = true;
    }
    return 0;
}

struct ms_allocator ms_debug_allocator(char api_id)
{
    for (int i = 0; i < NAPIS; i++) {
        if (S.apis[i].id == api_id) {
            return (struct ms_allocator){
                .ctx = &S.apis[i],
                .malloc = debug_malloc,
                .calloc = debug_calloc,
                .realloc = debug_realloc,
                .free = debug_free,
                .memalign = debug_memalign,
                .usable_size = debug_usable_size,
            };
        }
    }
    return (struct ms_allocator){ 0 };
}

void ms_debug_check_sized_delete(char api_id, const void *p, size_t n)
{
    struct ms_livetab_entry e;
    /* Most C++ deletes are sized: the common case is the bit and the size field (ours to
     * read once the bit is set), without lookup()'s clamp to the lower block. */
    if (p == NULL || (ms_blockmap_test((uintptr_t)p) && ms_layout_size(p) == n))
        return;
    if (!lookup((uintptr_t)p, &e) || ms_livetab_api(&e) != api_id
        || ms_livetab_size(&e) == n)
        return;
    if (check_block(&e, api_id) != MS_DIAG_OK)
        return; /* the free reports the damage, with CPython's words */
    ms_diag_sized_delete(&S.cfg, &e, n);
}

void ms_debug_crash_report(int sig, const void *si, const void *uctx)
{
    ms_diag_crash(&S.cfg, sig, si, uctx, ms_quarantine_try_find);
}

bool ms_debug_owns(const void *p)
{
    struct ms_livetab_entry e;
    return p != NULL && lookup((uintptr_t)p, &e);
}

uint64_t ms_debug_serialno(void)
{
    return latest_serial();
}

void ms_debug_get_stats(struct ms_debug_stats *out)
{
    out->live_blocks = ms_blockmap_count() + ms_livetab_count();
    out->quarantine_blocks = ms_quarantine_count();
    out->quarantine_bytes = ms_quarantine_bytes();
}

int ms_debug_set_lower(char api_id, const struct ms_allocator *lower)
{
    for (int i = 0; i < NAPIS; i++) {
        if (S.apis[i].id == api_id) {
            S.apis[i].lower = *lower;
            S.apis[i].own_lower = true;
            S.any_own_lower = true;
            return 0;
        }
    }
    return -1;
}
