/* SPDX-License-Identifier: MIT */
/*
 * Report time for the trace layer: traceback printing (the debug dump's part) and the
 * tracemalloc text report ("[ Top 10 ]" by file and line of the most recent frame).
 *
 * Never on the allocation path.  Never calls malloc: the report's temporary tables come from
 * ms_os_map and are unmapped before it returns; symbolisation raises the guard itself.
 * Sorting is a selection of the `limit` biggest (O(n * limit)), which needs no memory and no
 * qsort (glibc's qsort may call malloc).
 */
#include <string.h>

#include "os.h"
#include "symbolize.h"
#include "trace.h"

/* ---- sizes, exactly as tracemalloc's _format_size ------------------------------------- */

/* Prints num/den rounded to `decimals` (0 or 1) digits, half to even: what Python's "%.Nf"
 * does with the value (exactly, since size / 1024**k is exact in a double). */
static void out_fixed(struct ms_out *o, unsigned __int128 num, unsigned __int128 den, int decimals)
{
    unsigned __int128 scaled = decimals ? num * 10 : num;
    unsigned __int128 q = scaled / den, r = scaled % den;
    if (2 * r > den || (2 * r == den && (q & 1)))
        q++;
    if (decimals) {
        ms_out_udec(o, (uint64_t)(q / 10), 0);
        ms_out_char(o, '.');
        ms_out_udec(o, (uint64_t)(q % 10), 0);
    } else {
        ms_out_udec(o, (uint64_t)q, 0);
    }
}

void ms_trace_format_size(struct ms_out *o, int64_t size, uint64_t count, int sign)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    unsigned __int128 num = size < 0 ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
    unsigned __int128 den = count ? count : 1;
    int u = 0;
    /* Python: one decimal below 100 of a unit (not for bytes), none below 10 * 1024 of it,
     * else on to the next unit; TiB takes whatever is left. */
    while (u < 4 && !(u > 0 && num < 100 * den) && !(num < 10 * 1024 * den)) {
        den *= 1024;
        u++;
    }
    if (size < 0)
        ms_out_char(o, '-');
    else if (sign)
        ms_out_char(o, '+');
    out_fixed(o, num, den, u > 0 && num < 100 * den);
    ms_out_char(o, ' ');
    ms_out_str(o, units[u]);
}

/* ---- tracebacks ------------------------------------------------------------------------ */

void ms_trace_print_traceback(struct ms_out *o, const struct ms_traceback *tb, int fatal)
{
    enum ms_symbol_mode mode = fatal ? MS_SYMBOL_FATAL : MS_SYMBOL_NORMAL;
    if (tb->nframe == 0) {
        ms_out_str(o, "  File \"<unknown>\", line 0\n"); /* as tracemalloc's unknown frame */
        return;
    }
    /* The C library's start-up frames under main are noise (lookups are cached, so the
     * second pass below costs nothing more). */
    uint32_t end = tb->nframe;
    struct ms_symbol s;
    while (end > 1) {
        ms_symbol_lookup(tb->frames[end - 1], &s, mode);
        if (!ms_symbol_is_startup(&s))
            break;
        end--;
    }
    for (uint32_t i = 0; i < end; i++)
        ms_symbol_print_frame(o, tb->frames[i], mode);
}

/* ---- the top-N report ----------------------------------------------------------------- */

/* One allocation site (most recent frame's pc) or one report line. */
struct ms_report_site {
    uintptr_t key;     /* pc (sites) / second half of the line's key (lines); 0 = empty */
    const char *label; /* lines: file, or module (then key is the offset), NULL = unknown */
    int has_line;
    uint64_t size;
    uint64_t count;
};

struct ms_report_table {
    struct ms_report_site *slots;
    size_t mask, count, bytes;
    int failed;
};

static uint64_t site_hash(const char *label, uintptr_t key)
{
    uint64_t h = ((uint64_t)(uintptr_t)label ^ (key * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

static struct ms_report_site *site_slot(struct ms_report_table *t, const char *label, uintptr_t key)
{
    size_t i = site_hash(label, key) & t->mask;
    while (t->slots[i].key != 0 && !(t->slots[i].key == key && t->slots[i].label == label))
        i = (i + 1) & t->mask;
    return &t->slots[i];
}

static int site_grow(struct ms_report_table *t)
{
    size_t old_slots = t->slots ? t->mask + 1 : 0;
    size_t slots = old_slots ? old_slots * 2 : 1024;
    struct ms_report_site *old = t->slots;
    struct ms_report_site *fresh = ms_os_map(slots * sizeof *fresh);
    if (fresh == NULL)
        return -1;
    t->slots = fresh;
    t->mask = slots - 1;
    t->bytes = slots * sizeof *fresh;
    for (size_t i = 0; i < old_slots; i++)
        if (old[i].key)
            *site_slot(t, old[i].label, old[i].key) = old[i];
    if (old)
        ms_os_unmap(old, old_slots * sizeof *old);
    return 0;
}

static void site_add(struct ms_report_table *t, const char *label, uintptr_t key, int has_line,
                     uint64_t size, uint64_t count)
{
    if (t->failed)
        return;
    if ((t->slots == NULL || (t->count + 1) * 2 > t->mask + 1) && site_grow(t) < 0) {
        t->failed = 1;
        return;
    }
    struct ms_report_site *s = site_slot(t, label, key);
    if (s->key == 0) {
        s->key = key;
        s->label = label;
        s->has_line = has_line;
        t->count++;
    }
    s->size += size;
    s->count += count;
}

static void site_free(struct ms_report_table *t)
{
    if (t->slots)
        ms_os_unmap(t->slots, t->bytes);
}

/* Traces with no frame at all group under tracemalloc's "<unknown>:0"; key 1 is safe since
 * no return address is 1. */
#define MS_REPORT_NO_FRAME 1

static void collect_trace(void *arg, unsigned domain, uintptr_t ptr, size_t size,
                          const struct ms_traceback *tb)
{
    (void)domain;
    (void)ptr;
    uintptr_t pc = tb && tb->nframe ? tb->frames[0] : MS_REPORT_NO_FRAME;
    site_add(arg, NULL, pc, 0, size, 1);
}

/* tracemalloc's Statistic order: size, then count, then the traceback, all descending. */
static int line_before(const struct ms_report_site *a, const struct ms_report_site *b)
{
    if (a->size != b->size)
        return a->size > b->size;
    if (a->count != b->count)
        return a->count > b->count;
    int c = strcmp(a->label ? a->label : "<unknown>", b->label ? b->label : "<unknown>");
    if (c != 0)
        return c > 0;
    return a->key > b->key;
}

static void print_label(struct ms_out *o, const struct ms_report_site *s)
{
    if (s->label == NULL) {
        ms_out_str(o, "<unknown>:0");
    } else if (s->has_line) {
        ms_out_str(o, s->label);
        ms_out_char(o, ':');
        ms_out_udec(o, s->key, 0);
    } else {
        ms_out_str(o, s->label);
        ms_out_str(o, "+0x");
        ms_out_hex(o, s->key, 1);
    }
}

static void print_stat(struct ms_out *o, uint64_t size, uint64_t count)
{
    ms_out_str(o, "size=");
    ms_trace_format_size(o, (int64_t)size, 1, 0);
    ms_out_str(o, ", count=");
    ms_out_udec(o, count, 0);
    if (count) {
        ms_out_str(o, ", average=");
        ms_trace_format_size(o, (int64_t)size, count, 0);
    }
    ms_out_char(o, '\n');
}

void ms_trace_report(struct ms_out *o, int limit)
{
    struct ms_report_table sites = { 0 }, lines = { 0 };
    ms_trace_foreach(collect_trace, &sites);

    /* Sites -> lines: several return addresses share a line; a frame without line info is
     * its own line (module + offset). */
    for (size_t i = 0; sites.slots && i <= sites.mask; i++) {
        const struct ms_report_site *s = &sites.slots[i];
        if (s->key == 0)
            continue;
        struct ms_symbol sym = { 0 };
        if (s->key != MS_REPORT_NO_FRAME)
            ms_symbol_lookup(s->key, &sym, MS_SYMBOL_NORMAL);
        if (sym.file)
            site_add(&lines, sym.file, sym.line ? sym.line : 1, 1, s->size, s->count);
        else if (sym.module)
            site_add(&lines, sym.module, sym.module_offset ? sym.module_offset : 1, 0, s->size,
                     s->count);
        else
            site_add(&lines, NULL, 1, 0, s->size, s->count);
    }

    ms_out_str(o, "[ Top ");
    ms_out_udec(o, limit > 0 ? (uint64_t)limit : 0, 0);
    ms_out_str(o, " ]\n");
    size_t shown = 0;
    while (lines.slots && (int)shown < limit) {
        struct ms_report_site *best = NULL;
        for (size_t i = 0; i <= lines.mask; i++) {
            struct ms_report_site *s = &lines.slots[i];
            if (s->key != 0 && s->count != 0 && (best == NULL || line_before(s, best)))
                best = s;
        }
        if (best == NULL)
            break;
        print_label(o, best);
        ms_out_str(o, ": ");
        print_stat(o, best->size, best->count);
        best->count = 0; /* printed */
        shown++;
    }
    uint64_t other_n = 0, other_size = 0, other_count = 0;
    for (size_t i = 0; lines.slots && i <= lines.mask; i++)
        if (lines.slots[i].key != 0 && lines.slots[i].count != 0) {
            other_n++;
            other_size += lines.slots[i].size;
            other_count += lines.slots[i].count;
        }
    if (other_n) {
        ms_out_udec(o, other_n, 0);
        ms_out_str(o, " other: ");
        print_stat(o, other_size, other_count);
    }
    if (sites.failed || lines.failed)
        ms_out_str(o, "(incomplete: no memory for the report's tables)\n");
    size_t current, peak;
    ms_trace_get_traced_memory(&current, &peak);
    ms_out_str(o, "Current traced memory: ");
    ms_trace_format_size(o, (int64_t)current, 1, 0);
    ms_out_str(o, "\nPeak traced memory: ");
    ms_trace_format_size(o, (int64_t)peak, 1, 0);
    ms_out_char(o, '\n');
    ms_out_flush(o);
    site_free(&sites);
    site_free(&lines);
}
