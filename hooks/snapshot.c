/* SPDX-License-Identifier: MIT */
/*
 * The snapshot writer (see snapshot.h).  Format, version 1 (one JSON object):
 *
 *   {"format": "memshim-snapshot", "version": 1, "pid": 1234, "traceback_limit": 16,
 *    "totals": {"current": bytes, "peak": bytes, "traces": count},
 *    "traces": [[domain, size, traceback_id], ...],
 *    "tracebacks": [{"id": 1, "total": 12, "frames": [frame_id, ...]}, ...],
 *    "frames": [{"id": 0, "module": "/usr/bin/x", "offset": 4660, "function": "main",
 *                "file": "x.c", "line": 12}, ...],
 *    "timeline": [[milliseconds since tracing started, current bytes], ...]}
 *
 * Frames of a traceback are most recent first; "total" is the stack's whole depth (more
 * than the frames listed when the traceback was truncated).  Unknown strings are null and
 * an unknown line is 0.  Traceback id 0 (no traceback: a trace made while the snapshot
 * was being written) has no entry.  Only the tracebacks and frames that live traces use
 * are written.  File names are as in the reports: as the compiler was given them.
 */
#include "snapshot.h"

#include <link.h>
#include <string.h>
#include <unistd.h>

#include "addrkind.h"
#include "guard.h"
#include "os.h"
#include "symbolize.h"
#include "trace.h"

struct ms_snapshot_frames {
    uintptr_t *pcs;  /* by frame id */
    uint32_t *slots; /* open addressing over pcs: frame id + 1, 0 = empty */
    size_t n, cap;   /* cap: slots in the hash (pcs has cap / 2) */
};

struct ms_snapshot_writer {
    struct ms_out out;
    uint8_t *used;       /* bitmap of traceback ids referenced by traces */
    size_t used_bits;
    size_t ntraces;
    struct ms_snapshot_frames frames;
    int failed;
};

/* ---- JSON helpers ------------------------------------------------------------------ */

static void json_string(struct ms_out *o, const char *s)
{
    if (s == NULL) {
        ms_out_str(o, "null");
        return;
    }
    ms_out_char(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            ms_out_char(o, '\\');
            ms_out_char(o, (char)c);
        } else if (c < 0x20) {
            ms_out_str(o, "\\u00");
            ms_out_hex(o, c, 2);
        } else {
            ms_out_char(o, (char)c);
        }
    }
    ms_out_char(o, '"');
}

static void json_key(struct ms_out *o, const char *key)
{
    json_string(o, key);
    ms_out_str(o, ": ");
}

/* ---- frame ids -------------------------------------------------------------------------- */

static uint64_t pc_hash(uintptr_t pc)
{
    uint64_t h = pc * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static int frames_grow(struct ms_snapshot_frames *f)
{
    size_t cap = f->cap ? f->cap * 2 : 4096;
    uint32_t *slots = ms_os_map(cap * sizeof *slots);
    uintptr_t *pcs = ms_os_map(cap / 2 * sizeof *pcs);
    if (slots == NULL || pcs == NULL) {
        if (slots)
            ms_os_unmap(slots, cap * sizeof *slots);
        if (pcs)
            ms_os_unmap(pcs, cap / 2 * sizeof *pcs);
        return -1;
    }
    for (size_t id = 0; id < f->n; id++) {
        pcs[id] = f->pcs[id];
        size_t i = pc_hash(pcs[id]) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)id + 1;
    }
    if (f->cap) {
        ms_os_unmap(f->slots, f->cap * sizeof *f->slots);
        ms_os_unmap(f->pcs, f->cap / 2 * sizeof *f->pcs);
    }
    f->slots = slots;
    f->pcs = pcs;
    f->cap = cap;
    return 0;
}

/* The frame id of pc, made if new; -1 when out of memory. */
static long frame_id(struct ms_snapshot_frames *f, uintptr_t pc)
{
    if ((f->n + 1) * 2 > f->cap && frames_grow(f) < 0)
        return -1;
    size_t i = pc_hash(pc) & (f->cap - 1);
    for (; f->slots[i]; i = (i + 1) & (f->cap - 1))
        if (f->pcs[f->slots[i] - 1] == pc)
            return f->slots[i] - 1;
    f->pcs[f->n] = pc;
    f->slots[i] = (uint32_t)++f->n;
    return (long)f->n - 1;
}

/* ---- sections ------------------------------------------------------------------------- */

static void write_trace(void *arg, unsigned domain, uintptr_t ptr, size_t size,
                        const struct ms_traceback *tb)
{
    (void)ptr;
    struct ms_snapshot_writer *w = arg;
    uint32_t id = tb ? tb->id : 0;
    if (id >= w->used_bits)
        id = 0; /* interned after the bitmap was sized: written as unknown */
    else
        w->used[id / 8] |= (uint8_t)(1u << (id % 8));
    ms_out_str(&w->out, w->ntraces++ ? ",\n  [" : "\n  [");
    ms_out_udec(&w->out, domain, 0);
    ms_out_str(&w->out, ", ");
    ms_out_udec(&w->out, size, 0);
    ms_out_str(&w->out, ", ");
    ms_out_udec(&w->out, id, 0);
    ms_out_char(&w->out, ']');
}

static void write_tracebacks(struct ms_snapshot_writer *w)
{
    struct ms_out *o = &w->out;
    int first = 1;
    ms_out_str(o, ",\n \"tracebacks\": [");
    for (uint32_t id = 1; id < w->used_bits; id++) {
        if (!(w->used[id / 8] & (1u << (id % 8))))
            continue;
        const struct ms_traceback *tb = ms_traceback_get(id);
        if (tb == NULL)
            continue;
        ms_out_str(o, first ? "\n  {\"id\": " : ",\n  {\"id\": ");
        first = 0;
        ms_out_udec(o, id, 0);
        ms_out_str(o, ", \"total\": ");
        ms_out_udec(o, tb->total, 0);
        ms_out_str(o, ", \"frames\": [");
        for (uint32_t i = 0; i < tb->nframe; i++) {
            long f = frame_id(&w->frames, tb->frames[i]);
            if (f < 0) {
                w->failed = 1;
                break;
            }
            if (i)
                ms_out_str(o, ", ");
            ms_out_udec(o, (uint64_t)f, 0);
        }
        ms_out_str(o, "]}");
    }
    ms_out_str(o, "\n ]");
}

/* The raw path's module lookup: by address over the program headers (no allocation; the
 * main program's name is read from /proc/self/exe, as dladdr would give argv[0]). */
struct ms_raw_module {
    uintptr_t pc;
    int found;
    const char *name;
    uintptr_t bias;
    char exe[256];
};

static int find_raw_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct ms_raw_module *m = arg;
    if (!ms_addrkind_module_holds(info, m->pc))
        return 0;
    m->found = 1;
    m->bias = info->dlpi_addr;
    m->name = info->dlpi_name;
    if (m->name == NULL || m->name[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", m->exe, sizeof m->exe - 1);
        m->exe[n > 0 ? n : 0] = '\0';
        m->name = n > 0 ? m->exe : NULL;
    }
    return 1;
}

static void write_frames(struct ms_snapshot_writer *w, enum ms_snapshot_flags flags)
{
    struct ms_out *o = &w->out;
    ms_out_str(o, ",\n \"frames\": [");
    for (size_t id = 0; id < w->frames.n; id++) {
        uintptr_t pc = w->frames.pcs[id];
        struct ms_symbol s = { 0 };
        /* Out here: s.module may point into m.exe, and is read below. */
        struct ms_raw_module m = { .pc = pc - 1 };
        if (flags & MS_SNAPSHOT_RAW) {
            dl_iterate_phdr(find_raw_module, &m);
            if (m.found) {
                s.module = m.name;
                s.module_offset = pc - m.bias;
            }
        } else {
            ms_symbol_lookup(pc, &s, MS_SYMBOL_NORMAL);
        }
        ms_out_str(o, id ? ",\n  {\"id\": " : "\n  {\"id\": ");
        ms_out_udec(o, id, 0);
        ms_out_str(o, ", ");
        json_key(o, "module");
        json_string(o, s.module);
        ms_out_str(o, ", ");
        json_key(o, "offset");
        ms_out_udec(o, s.module ? s.module_offset : pc, 0);
        ms_out_str(o, ", ");
        json_key(o, "function");
        json_string(o, s.function);
        ms_out_str(o, ", ");
        json_key(o, "file");
        json_string(o, s.file);
        ms_out_str(o, ", ");
        json_key(o, "line");
        ms_out_udec(o, s.line, 0);
        ms_out_char(o, '}');
    }
    ms_out_str(o, "\n ]");
}

static void write_sample(void *arg, const struct ms_timeline_sample *s)
{
    struct ms_snapshot_writer *w = arg;
    ms_out_str(&w->out, w->ntraces++ ? ", [" : "[");
    uint64_t us = s->ns / 1000;
    char frac[4] = { '.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                     (char)('0' + us % 10) };
    ms_out_udec(&w->out, us / 1000, 0);
    ms_out_mem(&w->out, frac, sizeof frac);
    ms_out_str(&w->out, ", ");
    ms_out_udec(&w->out, s->current, 0);
    ms_out_char(&w->out, ']');
}

int ms_snapshot_write(int fd, enum ms_snapshot_flags flags)
{
    if (!ms_trace_is_tracing())
        return -1;
    struct ms_snapshot_writer w;
    memset(&w, 0, sizeof w);
    ms_out_init(&w.out, fd);
    /* Ids are dense from 1; room for tracebacks made while writing. */
    w.used_bits = ms_traceback_count() + 1 + 65536;
    size_t used_bytes = (w.used_bits + 7) / 8;
    w.used = ms_os_map(used_bytes);
    if (w.used == NULL)
        return -1;

    size_t current, peak;
    ms_trace_get_traced_memory(&current, &peak);
    struct ms_out *o = &w.out;
    ms_out_str(o, "{\"format\": \"memshim-snapshot\", \"version\": ");
    ms_out_udec(o, MS_SNAPSHOT_VERSION, 0);
    ms_out_str(o, ", \"pid\": ");
    ms_out_udec(o, (uint64_t)getpid(), 0);
    ms_out_str(o, ", \"traceback_limit\": ");
    ms_out_udec(o, ms_trace_get_limit(), 0);
    ms_out_str(o, ",\n \"totals\": {\"current\": ");
    ms_out_udec(o, current, 0);
    ms_out_str(o, ", \"peak\": ");
    ms_out_udec(o, peak, 0);
    ms_out_str(o, ", \"traces\": ");
    ms_out_udec(o, ms_trace_count(), 0);
    ms_out_str(o, "},\n \"traces\": [");
    ms_trace_foreach(write_trace, &w);
    ms_out_str(o, "\n ]");
    write_tracebacks(&w);
    write_frames(&w, flags);
    ms_out_str(o, ",\n \"timeline\": [");
    w.ntraces = 0;
    ms_timeline_foreach(current, write_sample, &w);
    ms_out_str(o, "]}\n");
    ms_out_flush(o);

    ms_os_unmap(w.used, used_bytes);
    if (w.frames.cap) {
        ms_os_unmap(w.frames.slots, w.frames.cap * sizeof *w.frames.slots);
        ms_os_unmap(w.frames.pcs, w.frames.cap / 2 * sizeof *w.frames.pcs);
    }
    return w.failed ? -1 : 0;
}

int ms_snapshot_path(char *out, size_t size, const char *pattern, long pid)
{
    size_t n = 0;
    for (const char *p = pattern; *p; p++) {
        char digits[24];
        const char *piece = p;
        size_t len = 1;
        if (p[0] == '%' && p[1] == 'p') {
            size_t k = sizeof digits;
            unsigned long v = pid < 0 ? 0 : (unsigned long)pid;
            do
                digits[--k] = (char)('0' + v % 10);
            while (v /= 10);
            piece = digits + k;
            len = sizeof digits - k;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            p++;
        }
        if (n + len >= size)
            return -1;
        memcpy(out + n, piece, len);
        n += len;
    }
    if (n >= size)
        return -1;
    out[n] = '\0';
    return 0;
}
