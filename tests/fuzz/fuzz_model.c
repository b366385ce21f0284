/* SPDX-License-Identifier: MIT */
/*
 * The fuzzers' reference model and interpreter (see fuzz_model.h), and the pymalloc set-up
 * they share.  Input format, read byte by byte until it runs out:
 *   op byte (op = b % FZ_NOPS), slot byte (slot = b % FZ_SLOTS), then per op a size
 *   (one range byte and two value bytes, see read_size) and, for the aligned call, an
 *   alignment byte (8 << (b % 10): 8..4096).
 * Sizes are drawn mostly around the small-block threshold (512 B) so that realloc crosses
 * it both ways; a few are impossible (near SIZE_MAX) and must fail without harm.
 * Each block is filled with a pattern derived from its id and offset; the pattern is
 * checked before every free and realloc and after every realloc.
 */
#include "fuzz_model.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pymalloc.h"

#define FZ_SLOTS 64

enum fz_op {
    OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE, OP_MEMALIGN, OP_USABLE, OP_REALLOC_ZERO,
    OP_MALLOC_ZERO, OP_HUGE, OP_REALLOC_HUGE, FZ_NOPS
};

struct fz_block {
    unsigned char *p;      /* NULL: slot empty */
    size_t size;           /* requested */
    size_t usable;
    uint32_t id;
};

struct fz_model {
    const struct fz_target *t;
    struct fz_block b[FZ_SLOTS];
    size_t live_bytes;
    uint32_t next_id;
    const uint8_t *in, *end;
};

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static unsigned next_byte(struct fz_model *m)
{
    return m->in < m->end ? *m->in++ : 0;
}

/* Range byte: 0-3 tiny (0..63), 4-7 small (0..512), 8-11 the threshold (448..575),
 * 12-13 medium (0..8191), 14 large (0..262143), 15 exactly a class size. */
static size_t read_size(struct fz_model *m)
{
    unsigned r = next_byte(m) % 16;
    size_t v = next_byte(m) | (size_t)next_byte(m) << 8;
    if (r < 4)
        return v % 64;
    if (r < 8)
        return v % 513;
    if (r < 12)
        return 448 + v % 128;
    if (r < 14)
        return v % 8192;
    if (r == 14)
        return (v << 2) | (v & 3);
    return 16 * (1 + v % 32);
}

static unsigned char pattern(uint32_t id, size_t i)
{
    return (unsigned char)(id * 0x9du + i * 7u + (i >> 8));
}

static void fill(struct fz_block *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        b->p[i] = pattern(b->id, i);
}

static void verify(const struct fz_block *b, size_t n, const char *when)
{
    for (size_t i = 0; i < n; i++)
        if (b->p[i] != pattern(b->id, i))
            fz_fail("%s: block %u (%p, %zu bytes) byte %zu is 0x%02x, want 0x%02x", when,
                    b->id, (void *)b->p, b->size, i, b->p[i], pattern(b->id, i));
}

/* Usable size, alignment and overlap with every other live block. */
static void admit(struct fz_model *m, unsigned slot, size_t align, const char *what)
{
    struct fz_block *b = &m->b[slot];
    if (((uintptr_t)b->p & (align - 1)) != 0)
        fz_fail("%s(%zu): %p not aligned to %zu", what, b->size, (void *)b->p, align);
    size_t u = m->t->a.usable_size(m->t->a.ctx, b->p);
    if (u < b->size || (m->t->usable_exact && u != b->size))
        fz_fail("%s(%zu): usable size %zu", what, b->size, u);
    b->usable = u;
    uintptr_t lo = (uintptr_t)b->p, hi = lo + (u ? u : 1);
    for (unsigned i = 0; i < FZ_SLOTS; i++) {
        const struct fz_block *o = &m->b[i];
        if (i == slot || o->p == NULL)
            continue;
        uintptr_t olo = (uintptr_t)o->p, ohi = olo + (o->usable ? o->usable : 1);
        if (lo < ohi && olo < hi)
            fz_fail("%s(%zu) = %p overlaps live block %u at %p (%zu usable)", what, b->size,
                    (void *)b->p, o->id, (void *)o->p, o->usable);
    }
}

static void release(struct fz_model *m, unsigned slot)
{
    struct fz_block *b = &m->b[slot];
    if (b->p == NULL)
        return;
    verify(b, b->size, "before free");
    m->t->a.free(m->t->a.ctx, b->p);
    m->live_bytes -= b->size;
    b->p = NULL;
}

static void take(struct fz_model *m, unsigned slot, void *p, size_t size, size_t align,
                 const char *what)
{
    struct fz_block *b = &m->b[slot];
    if (p == NULL)
        fz_fail("%s(%zu) failed", what, size);
    b->p = p;
    b->size = size;
    b->id = ++m->next_id;
    m->live_bytes += size;
    admit(m, slot, align, what);
}

static void op_realloc(struct fz_model *m, unsigned slot, size_t n)
{
    struct fz_block *b = &m->b[slot];
    const struct ms_allocator *a = &m->t->a;
    if (b->p == NULL) {
        take(m, slot, a->realloc(a->ctx, NULL, n), n, 16, "realloc(NULL)");
        fill(b, 0, n);
        return;
    }
    verify(b, b->size, "before realloc");
    unsigned char *q = a->realloc(a->ctx, b->p, n);
    if (q == NULL)
        fz_fail("realloc(%zu -> %zu) failed", b->size, n);
    size_t keep = b->size < n ? b->size : n;
    b->p = q;
    m->live_bytes = m->live_bytes - b->size + n;
    b->size = n;
    verify(b, keep, "after realloc");
    admit(m, slot, 16, "realloc");
    fill(b, keep, n);
}

/* Requests nobody can satisfy: NULL, and nothing else changes. */
static void op_huge(struct fz_model *m, unsigned slot)
{
    const struct ms_allocator *a = &m->t->a;
    size_t k = next_byte(m);
    size_t huge = SIZE_MAX - k * 4099;
    void *p;
    switch (next_byte(m) % 4) {
    case 0:
        p = a->malloc(a->ctx, huge);
        break;
    case 1:
        p = a->calloc(a->ctx, (SIZE_MAX >> (k % 60)) / 2 + 2, (size_t)2 << (k % 60));
        break;
    case 2:
        p = a->memalign(a->ctx, (size_t)8 << (k % 10), huge);
        break;
    default:
        p = a->calloc(a->ctx, 1, huge);
        break;
    }
    if (p != NULL)
        fz_fail("impossible request (k %zu) returned %p", k, p);
    (void)slot;
}

static void op_realloc_huge(struct fz_model *m, unsigned slot)
{
    struct fz_block *b = &m->b[slot];
    const struct ms_allocator *a = &m->t->a;
    size_t huge = SIZE_MAX - next_byte(m) * 8191;
    if (b->p == NULL)
        return;
    void *q = a->realloc(a->ctx, b->p, huge);
    if (q != NULL)
        fz_fail("realloc(%p, %zu) returned %p", (void *)b->p, huge, q);
    verify(b, b->size, "after failed realloc");
}

static void step(struct fz_model *m)
{
    const struct ms_allocator *a = &m->t->a;
    unsigned op = next_byte(m) % FZ_NOPS;
    unsigned slot = next_byte(m) % FZ_SLOTS;
    struct fz_block *b = &m->b[slot];
    size_t n;

    switch (op) {
    case OP_MALLOC:
        release(m, slot);
        n = read_size(m);
        take(m, slot, a->malloc(a->ctx, n), n, 16, "malloc");
        fill(b, 0, n);
        break;
    case OP_CALLOC: {
        release(m, slot);
        n = read_size(m);
        size_t el = 1 + next_byte(m) % 16;
        size_t nelem = n / el;
        take(m, slot, a->calloc(a->ctx, nelem, el), nelem * el, 16, "calloc");
        for (size_t i = 0; i < b->size; i++)
            if (b->p[i] != 0)
                fz_fail("calloc(%zu, %zu): byte %zu is 0x%02x", nelem, el, i, b->p[i]);
        fill(b, 0, b->size);
        break;
    }
    case OP_REALLOC:
        op_realloc(m, slot, read_size(m));
        break;
    case OP_FREE:
        release(m, slot);
        break;
    case OP_MEMALIGN: {
        release(m, slot);
        n = read_size(m);
        size_t align = (size_t)8 << (next_byte(m) % 10);
        take(m, slot, a->memalign(a->ctx, align, n), n, align, "memalign");
        fill(b, 0, n);
        break;
    }
    case OP_USABLE:
        if (b->p != NULL) {
            size_t u = a->usable_size(a->ctx, b->p);
            if (u != b->usable)
                fz_fail("usable size of %p changed: %zu then %zu", (void *)b->p, b->usable, u);
            /* All of it is writable; the model keeps only the requested bytes. */
            memset(b->p + b->size, 0xa5, u - b->size);
        }
        break;
    case OP_REALLOC_ZERO:
        if (b->p != NULL)
            op_realloc(m, slot, 0);
        break;
    case OP_MALLOC_ZERO:
        release(m, slot);
        take(m, slot, a->malloc(a->ctx, 0), 0, 16, "malloc");
        break;
    case OP_HUGE:
        op_huge(m, slot);
        break;
    case OP_REALLOC_HUGE:
        op_realloc_huge(m, slot);
        break;
    }
    if (m->t->after_op != NULL)
        m->t->after_op();
    if (m->t->live_bytes != NULL && m->t->live_bytes() != m->live_bytes)
        fz_fail("layer counts %zu live bytes, the model %zu", m->t->live_bytes(), m->live_bytes);
}

void fz_run(const struct fz_target *t, const uint8_t *data, size_t size)
{
    struct fz_model m;
    memset(&m, 0, sizeof m);
    m.t = t;
    m.in = data;
    m.end = data + size;
    while (m.in < m.end)
        step(&m);
    for (unsigned i = 0; i < FZ_SLOTS; i++)
        release(&m, i);
    if (t->live_bytes != NULL && t->live_bytes() != 0)
        fz_fail("layer counts %zu live bytes after every block was freed", t->live_bytes());
}

/* --- the pymalloc core over glibc ------------------------------------------------------ */

static void *l_malloc(void *ctx, size_t n) { (void)ctx; return malloc(n); }
static void *l_calloc(void *ctx, size_t a, size_t b) { (void)ctx; return calloc(a, b); }
/* The contract's realloc(p, 0) keeps a block (glibc's frees it), as shim/libc.c does. */
static void *l_realloc(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n ? n : 1); }
static void l_free(void *ctx, void *p) { (void)ctx; free(p); }
static size_t l_usable(void *ctx, void *p) { (void)ctx; return malloc_usable_size(p); }

static void *l_memalign(void *ctx, size_t al, size_t n)
{
    (void)ctx;
    void *p = NULL;
    return posix_memalign(&p, al, n) == 0 ? p : NULL;
}

/* Arenas from mmap, counted; the core asks page alignment only and gets just that, so
 * it loses a partial first pool in most arenas (the misaligned path, as CPython). */
static long arenas_live;

static void *a_alloc(void *ctx, size_t size)
{
    (void)ctx;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    arenas_live++;
    return p;
}

static void a_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    if (munmap(p, size) != 0)
        fz_fail("arena %p (%zu bytes) could not be unmapped", p, size);
    arenas_live--;
}

void fz_pymalloc_setup(size_t arena_size)
{
    struct ms_pymalloc_config cfg = {
        .arena_size = arena_size,
        .lower = { NULL, l_malloc, l_calloc, l_realloc, l_free, l_memalign, l_usable },
        .arenas = { NULL, a_alloc, a_free },
        .stats_fd = -1,
    };
    if (ms_pymalloc_init(&cfg) != 0)
        fz_fail("ms_pymalloc_init failed");
}

/* The value of the stats line that starts with label. */
static size_t stats_value(const char *text, const char *label)
{
    const char *s = strstr(text, label);
    if (s == NULL)
        fz_fail("stats report has no \"%s\" line", label);
    s = strchr(s, '=');
    size_t v = 0;
    for (s++; *s != '\n' && *s != '\0'; s++)
        if (*s >= '0' && *s <= '9')
            v = v * 10 + (size_t)(*s - '0');
    return v;
}

void fz_check_core_empty(void)
{
    static int fd = -1;
    static char text[16384];
    ms_pymalloc_flush_thread_cache();
    if (fd < 0 && (fd = memfd_create("fuzz-stats", 0)) < 0)
        fz_fail("memfd_create failed");
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        fz_fail("cannot reset the stats file");
    ms_pymalloc_print_stats(fd);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        fz_fail("no stats report");
    text[n] = '\0';
    size_t used = stats_value(text, "# bytes in allocated blocks");
    size_t cur = stats_value(text, "# arenas allocated current");
    if (used != 0 || cur > 1 || (long)cur != arenas_live)
        fz_fail("after freeing everything: %zu bytes in use, %zu arenas (%ld mapped)\n%s",
                used, cur, arenas_live, text);
}
