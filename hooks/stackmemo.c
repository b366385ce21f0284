/* SPDX-License-Identifier: MIT */
/*
 * The per-thread stack memo (see stackmemo.h).  Four ways per set of CFAs, replaced in
 * turn: one loop of a program often allocates from a few call chains that reach malloc at
 * the same stack depth (sqlite3: a quarter of its captures missed with one way).
 * A lookup reads the remembered return-address slots (about 20 words, all on the caller's
 * live stack, below the top of the thread's stack: stores are refused otherwise).
 */
#include "stackmemo.h"

#include <pthread.h>
#include <string.h>

#include "addrkind.h"
#include "guard.h"
#include "noasan.h"
#include "os.h"

#define MEMO_SET_BITS 6
#define MEMO_WAYS 4                 /* entries per set: chains that share a CFA */
#define MEMO_ENTRIES (MEMO_WAYS << MEMO_SET_BITS)
#define MEMO_FRAMES 24              /* return addresses checked per capture, at most */

struct ms_stackmemo_entry {
    uintptr_t cfa;                  /* 0: empty */
    uint64_t hash;
    const void *attached;
    uint32_t total;
    uint16_t max;
    uint8_t n;                      /* return addresses checked: pc[0..n) */
    uint8_t top;                    /* memshim's frames: kept ones start at pc[top - 1] */
    uint8_t kept;
    uint32_t off[MEMO_FRAMES];      /* slot of pc[k] is at cfa - 8 + off[k] */
    uintptr_t pc[MEMO_FRAMES];      /* buf[k + 1] of the capture */
};

#define FRAME_SIZES 16384           /* learned frame sizes, by return address */

/* How far above the slot of a return address pc the next frame's slot is: the size of
 * the frame of the function pc returns into, at that call (learned from libunwind). */
struct frame_size {
    uintptr_t pc;                   /* 0: empty */
    uint32_t size;
};

struct memo_table {
    uintptr_t lo, hi;               /* the thread's stack */
    struct frame_size sizes[FRAME_SIZES];
    uint8_t victim[1 << MEMO_SET_BITS];    /* the way a set's next store replaces */
    struct ms_stackmemo_entry e[MEMO_ENTRIES];
    struct ms_depth_entry depths[MS_STACKMEMO_DEPTHS];
};

/* NO_MEMO: this thread has none and will not try again (no stack bounds, no memory). */
static struct memo_table no_memo;
#define NO_MEMO (&no_memo)
static __thread struct memo_table *memo_self;

/* Only the key whose destructor unmaps a thread's table when it exits: the tables are
 * the threads' own, so nothing is shared, locked or handled at fork. */
static struct memo_shared {
    pthread_once_t once;
    pthread_key_t key;
    int key_ok;
} M = { .once = PTHREAD_ONCE_INIT };

static void table_release(void *arg)
{
    memo_self = NO_MEMO;            /* later destructors' captures simply walk */
    ms_os_unmap(arg, sizeof(struct memo_table));
}

static void memo_setup(void)
{
    M.key_ok = pthread_key_create(&M.key, table_release) == 0;
}

static struct memo_table *table_create(void)
{
    memo_self = NO_MEMO;            /* until it is complete; pthread_setspecific may malloc */
    pthread_once(&M.once, memo_setup);
    uintptr_t lo, hi;
    struct memo_table *t;
    if (!M.key_ok || !ms_addrkind_own_stack(&lo, &hi) || (t = ms_os_map(sizeof *t)) == NULL)
        return NO_MEMO;
    t->lo = lo;
    t->hi = hi;
    ms_guard_enter();
    int set = pthread_setspecific(M.key, t) == 0;
    ms_guard_leave();
    if (!set) {
        table_release(t);
        return NO_MEMO;
    }
    memo_self = t;
    return t;
}

static inline unsigned set_of(uintptr_t cfa)
{
    uint64_t h = (uint64_t)(cfa >> 4) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - MEMO_SET_BITS));
}

/* Do e's return addresses still sit in their slots below cfa?  (Reads the callers'
 * frames, their redzones in an ASan build too.) */
static inline MS_NO_ASAN int still_on_stack(const struct ms_stackmemo_entry *e, uintptr_t cfa)
{
    const uintptr_t base = cfa - 8;
    for (unsigned k = 0; k < e->n; k++)
        if (*(const uintptr_t *)(base + e->off[k]) != e->pc[k])
            return 0;
    return 1;
}

struct ms_stackmemo_entry *ms_stackmemo_find(uintptr_t cfa, int max)
{
    struct memo_table *t = memo_self;
    if (t == NULL || t == NO_MEMO)
        return NULL;
    struct ms_stackmemo_entry *set = &t->e[set_of(cfa) * MEMO_WAYS];
    for (struct ms_stackmemo_entry *e = set; e < set + MEMO_WAYS; e++)
        if (e->cfa == cfa && e->max == (uint16_t)max && still_on_stack(e, cfa))
            return e;
    return NULL;
}

int ms_stackmemo_frames(const struct ms_stackmemo_entry *e, uintptr_t *pcs, uint32_t *total,
                        uint64_t *hash)
{
    memcpy(pcs, &e->pc[e->top - 1], (size_t)e->kept * sizeof *pcs);
    *total = e->total;
    if (hash != NULL)
        *hash = e->hash;
    return e->kept;
}

const void *ms_stackmemo_attached(const struct ms_stackmemo_entry *e)
{
    return e->attached;
}

void ms_stackmemo_attach(struct ms_stackmemo_entry *e, const void *what)
{
    e->attached = what;
}

struct ms_depth_entry *ms_stackmemo_depths(void)
{
    struct memo_table *t = memo_self;
    if (t == NULL)
        t = table_create();
    return t != NO_MEMO ? t->depths : NULL;
}

int ms_stackmemo_accepts(uintptr_t cfa, int max, int n, int top, int kept)
{
    /* buf[0] is not on the stack (a pc in the capture), so the kept frames must start
     * after it; max must fit the entry's field. */
    if (n - 1 > MEMO_FRAMES || n < 2 || top < 1 || top + kept > n || max > UINT16_MAX)
        return 0;
    struct memo_table *t = memo_self;
    if (t == NULL)
        t = table_create();
    /* Only captures on this thread's own stack (not a sigaltstack, not a coroutine's
     * stack that may be unmapped by the next time the same address comes round). */
    return t != NO_MEMO && cfa >= t->lo + 8 && cfa <= t->hi;
}

static inline struct frame_size *size_of(struct memo_table *t, uintptr_t pc)
{
    uint64_t h = (uint64_t)pc * 0x9e3779b97f4a7c15ull;
    return &t->sizes[h >> (64 - 14)];  /* 14 = log2(FRAME_SIZES) */
}

MS_NO_ASAN int ms_stackmemo_slots(uintptr_t cfa, void *const *buf, int n, uint32_t *off)
{
    struct memo_table *t = memo_self;
    if (t == NULL || t == NO_MEMO || n < 2)
        return 0;
    uintptr_t base = cfa - 8;
    uint32_t o = 0;
    off[0] = 0;
    for (int k = 1; k + 1 < n; k++) {
        const struct frame_size *f = size_of(t, (uintptr_t)buf[k]);
        if (f->pc != (uintptr_t)buf[k] || f->size == 0)
            return 0;
        o += f->size;
        if (base + o + sizeof(uintptr_t) > t->hi
            || *(const uintptr_t *)(base + o) != (uintptr_t)buf[k + 1])
            return 0;               /* not learned, or a frame whose size varies */
        off[k] = o;
    }
    return 1;
}

void ms_stackmemo_learn(void *const *buf, int n, const uint32_t *off)
{
    struct memo_table *t = memo_self;
    if (t == NULL || t == NO_MEMO)
        return;
    for (int k = 1; k + 1 < n; k++) {
        struct frame_size *f = size_of(t, (uintptr_t)buf[k]);
        f->pc = (uintptr_t)buf[k];
        f->size = off[k] - off[k - 1];
    }
}

struct ms_stackmemo_entry *ms_stackmemo_store(uintptr_t cfa, int max, void *const *buf,
                                              int n, int top, int kept, uint32_t total,
                                              uint64_t hash, const uint32_t *off)
{
    struct memo_table *t = memo_self;
    unsigned set = set_of(cfa);
    struct ms_stackmemo_entry *e = &t->e[set * MEMO_WAYS + t->victim[set]];
    t->victim[set] = (uint8_t)((t->victim[set] + 1) % MEMO_WAYS);
    for (int k = 1; k < n; k++) {
        e->off[k - 1] = off[k - 1];
        e->pc[k - 1] = (uintptr_t)buf[k];
    }
    e->n = (uint8_t)(n - 1);
    e->top = (uint8_t)top;
    e->kept = (uint8_t)kept;
    e->max = (uint16_t)max;
    e->total = total;
    e->hash = hash;
    e->attached = NULL;
    e->cfa = cfa;
    return e;
}
