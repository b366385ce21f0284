/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's diagnostics (see diag.h).  The live-block dump reproduces CPython's
 * _PyObject_DebugDumpAddress text (SPEC 3.4) byte for byte; the reports CPython does not
 * have (write after free, double free, invalid free) use the same shape: a
 * "Debug memory block at address p=..." heading, indented facts, an empty line, the fatal
 * line.
 *
 * Error path only.  Never allocates, never uses stdio, never reads outside the extent the
 * live table recorded for the block (a corrupted size field cannot make the dump crash,
 * CPython's gh-112140).
 */
#include "diag.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "crash.h"
#include "debug_layout.h"

static struct diag_state {
    atomic_int reporting;              /* a report is being written: others wait */
} D;

static _Thread_local int diag_depth;  /* a report that fails inside its callbacks */

static const char *const op_names[] = {
    [MS_DIAG_FREE] = "memshim_debug_free",
    [MS_DIAG_REALLOC] = "memshim_debug_realloc",
    [MS_DIAG_CHECK] = "memshim_debug_check_heap",
    [MS_DIAG_EXIT] = "memshim_debug_at_exit",
    [MS_DIAG_USABLE_SIZE] = "memshim_debug_usable_size",
};

/* One report at a time: the first thread to find an error prints it and aborts; a
 * second one would interleave its text, so it waits for the abort instead. */
static void begin(struct ms_out *o, const struct ms_debug_config *cfg)
{
    if (diag_depth++ > 0)
        abort();
    if (atomic_exchange(&D.reporting, 1) != 0) {
        for (;;)
            pause();
    }
    ms_out_init(o, cfg->fd);
}

static _Noreturn void finish(struct ms_out *o, const struct ms_debug_config *cfg,
                             enum ms_diag_op op, const char *msg1, const char *msg2)
{
    ms_out_str(o, "Fatal memshim error: ");
    ms_out_str(o, op_names[op]);
    ms_out_str(o, ": ");
    ms_out_str(o, msg1);
    if (msg2)
        ms_out_str(o, msg2);
    ms_out_char(o, '\n');
    if (cfg->print_current_backtrace) {
        ms_out_char(o, '\n');
        /* Out before symbolising, which may use the C library's heap: if that is what
         * the program damaged, the report must already be on stderr when it fails. */
        ms_out_flush(o);
        cfg->print_current_backtrace(o);
    }
    ms_out_flush(o);
    abort();
}

static void hex_byte(struct ms_out *o, uint8_t b)
{
    ms_out_str(o, "0x");
    ms_out_hex(o, b, 2);
}

/* " xx xx ..." -- every byte of q[0, n) up to 16, else the first 8, " ...", the last 8. */
static void bytes(struct ms_out *o, const uint8_t *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (n > 16 && i == 8) {
            ms_out_str(o, " ...");
            i = n - 8;
        }
        ms_out_char(o, ' ');
        ms_out_hex(o, q[i], 2);
    }
}

/* "    Data at p: ..." (CPython's). */
static void data_line(struct ms_out *o, const uint8_t *q, size_t n)
{
    if (n == 0)
        return;
    ms_out_str(o, "    Data at p:");
    bytes(o, q, n);
    ms_out_char(o, '\n');
}

static void heading(struct ms_out *o, const void *p)
{
    ms_out_str(o, "Debug memory block at address p=");
    ms_out_ptr(o, p);
}

static void api_tail(struct ms_out *o, char api)
{
    ms_out_str(o, ": API '");
    ms_out_char(o, api);
    ms_out_str(o, "'\n");
}

static void requested(struct ms_out *o, uint64_t n)
{
    ms_out_str(o, "    ");
    ms_out_udec(o, n, 0);
    ms_out_str(o, " bytes originally requested\n");
}

static void made_by(struct ms_out *o, uint64_t serial)
{
    ms_out_str(o, "    The block was made by call #");
    ms_out_udec(o, serial, 0);
    ms_out_str(o, " to debug malloc/realloc");
}

/* The pad lines for S-1 bytes before p (leading) or S bytes at tail. */
static void pads(struct ms_out *o, const uint8_t *at, size_t n, bool leading)
{
    size_t bad = ms_layout_first_not(at, n, MS_FORBIDDENBYTE);
    ms_out_str(o, "    The ");
    ms_out_udec(o, n, 0);
    if (leading) {
        ms_out_str(o, " pad bytes at p-");
        ms_out_udec(o, n, 0);
    } else {
        ms_out_str(o, " pad bytes at tail=");
        ms_out_ptr(o, at);
    }
    if (bad == n) {
        ms_out_str(o, " are FORBIDDENBYTE, as expected.\n");
        return;
    }
    ms_out_str(o, " are not all FORBIDDENBYTE (0xfd):\n");
    for (size_t i = 0; i < n; i++) {
        ms_out_str(o, leading ? "        at p-" : "        at tail+");
        ms_out_udec(o, leading ? n - i : i, 0);
        ms_out_str(o, ": ");
        hex_byte(o, at[i]);
        if (at[i] != MS_FORBIDDENBYTE)
            ms_out_str(o, " *** OUCH");
        ms_out_char(o, '\n');
    }
    if (leading) {
        ms_out_str(o, "    Because memory is corrupted at the start, the count of bytes "
                      "requested\n"
                      "       may be bogus, and checking the trailing pad bytes may "
                      "segfault.\n");
    }
}

/* CPython's _PyObject_DebugDumpAddress, with the size taken from the live set (the
 * header's, clamped to the lower block, or the table's record for an aligned block) so
 * that every read stays inside the block. */
static void dump_live(struct ms_out *o, const struct ms_livetab_entry *e, bool lower_damaged)
{
    const uint8_t *p = (const uint8_t *)e->p;
    size_t real = ms_livetab_size(e);
    uint64_t claimed = ms_layout_size(p);

    heading(o, p);
    api_tail(o, ms_layout_api(p));
    requested(o, claimed);
    pads(o, p - (MS_DEBUG_S - 1), MS_DEBUG_S - 1, true);
    if (claimed != real && !ms_livetab_is_aligned_block(e)) {
        /* Only the lower allocator's size of the block is known: no tail to show. */
        if (lower_damaged) {
            ms_out_str(o, "    With the C library's header damaged, the room the block has is "
                          "unknown,\n       so the trailing pad bytes are not read.\n");
        } else {
            ms_out_str(o, "    The size field is corrupted: the block has room for at most ");
            ms_out_udec(o, real, 0);
            ms_out_str(o, " bytes,\n       so the trailing pad bytes cannot be found.\n");
        }
        data_line(o, p, real);
        ms_out_char(o, '\n');
        return;
    }
    if (claimed != real) {
        ms_out_str(o, "    The size field is corrupted: memshim recorded ");
        ms_out_udec(o, real, 0);
        ms_out_str(o, " bytes for this block.\n");
    }
    pads(o, p + real, MS_DEBUG_S, false);
    made_by(o, ms_layout_get_be(p + real + MS_DEBUG_S));
    ms_out_str(o, ".\n");
    data_line(o, p, real);
    ms_out_char(o, '\n');
}

/* The dump's traceback part: cb's text when tracing is on, else the hint. */
static void traceback_part(struct ms_out *o, bool (*cb)(struct ms_out *o, const void *p),
                           const void *p, const char *hint)
{
    ms_out_flush(o); /* see finish() */
    if (cb == NULL || !cb(o, p))
        ms_out_str(o, hint);
}

static void alloc_traceback(struct ms_out *o, const struct ms_debug_config *cfg,
                            const void *p)
{
    traceback_part(o, cfg->print_alloc_traceback, p,
                   "Enable MEMSHIM_TRACEMALLOC to get the memory block allocation traceback\n\n");
}

static void freed_tracebacks(struct ms_out *o, const struct ms_debug_config *cfg,
                             const void *p)
{
    traceback_part(o, cfg->print_freed_tracebacks, p,
                   "Enable MEMSHIM_TRACEMALLOC to get the memory block allocation and free "
                   "tracebacks\n\n");
}

/* "p+3" / "p-5": where a byte sits relative to the program's pointer. */
static void rel(struct ms_out *o, uintptr_t at, uintptr_t p)
{
    ms_out_str(o, "p");
    if (at >= p) {
        ms_out_char(o, '+');
        ms_out_udec(o, at - p, 0);
    } else {
        ms_out_char(o, '-');
        ms_out_udec(o, p - at, 0);
    }
}

static void freed_heading(struct ms_out *o, const struct ms_quarantine_rec *r)
{
    heading(o, (const void *)r->e.p);
    api_tail(o, ms_livetab_api(&r->e));
    requested(o, ms_livetab_size(&r->e));
    made_by(o, r->serial);
    ms_out_str(o, " and freed after call #");
    ms_out_udec(o, r->freed_after, 0);
    ms_out_str(o, ".\n");
}

/* Not CPython's: a damaged header is nearly always the block in front running over its
 * end, and the dump alone blames the victim.  Names that block (n, or nothing when NULL)
 * and its allocation traceback when tracing. */
static void ran_over_part(struct ms_out *o, const struct ms_debug_config *cfg,
                          const struct ms_diag_neighbour *n)
{
    if (n == NULL)
        return;
    ms_out_str(o, "    The block in front of it, p=");
    ms_out_ptr(o, (const void *)n->p);
    ms_out_str(o, ", has bad trailing pad bytes too:\n"
                  "       it was most likely written past its end, into this block's "
                  "header.\n       It holds ");
    ms_out_udec(o, n->size, 0);
    if (n->serial) {
        ms_out_str(o, " bytes and was made by call #");
        ms_out_udec(o, n->serial, 0);
        ms_out_str(o, ".\n\n");
    } else {
        ms_out_str(o, " bytes; its serial number was overwritten too.\n\n");
    }
    if (cfg->print_alloc_traceback)
        cfg->print_alloc_traceback(o, (const void *)n->p);
}

/* Not CPython's either: only the shim's lower (glibc) keeps a header there. */
static void lower_header_line(struct ms_out *o, const struct ms_livetab_entry *e)
{
    uintptr_t word = ms_livetab_base(e) - sizeof(size_t);
    ms_out_str(o, "    The C library's chunk header in front of the block, its size word at ");
    rel(o, word, e->p);
    ms_out_str(o, ",\n       is damaged (0x");
    ms_out_hex(o, *(const uint64_t *)word, 16);
    ms_out_str(o, "): giving the block back would crash the C library.\n\n");
}

void ms_diag_bad_block(const struct ms_debug_config *cfg, enum ms_diag_op op,
                       enum ms_diag_bad bad, char api_used, const struct ms_livetab_entry *e,
                       const struct ms_diag_neighbour *ran_over)
{
    struct ms_out o;
    begin(&o, cfg);
    dump_live(&o, e, bad == MS_DIAG_BAD_LOWER);
    if (bad == MS_DIAG_BAD_LOWER)
        lower_header_line(&o, e);
    alloc_traceback(&o, cfg, (const void *)e->p);
    ran_over_part(&o, cfg, ran_over);
    switch (bad) {
    case MS_DIAG_BAD_ID: {
        char msg[] = "bad ID: Allocated using API 'x', verified using API 'y'";
        msg[sizeof "bad ID: Allocated using API '" - 1] = ms_layout_api((const uint8_t *)e->p);
        msg[sizeof msg - 3] = api_used;
        finish(&o, cfg, op, msg, NULL);
    }
    case MS_DIAG_BAD_LEADING:
        finish(&o, cfg, op, "bad leading pad byte", NULL);
    case MS_DIAG_BAD_SIZE:
        finish(&o, cfg, op, "bad size field", NULL);
    case MS_DIAG_BAD_LOWER:
        finish(&o, cfg, op, "bad C library chunk header", NULL);
    default:
        finish(&o, cfg, op, "bad trailing pad byte", NULL);
    }
}

void ms_diag_write_after_free(const struct ms_debug_config *cfg, enum ms_diag_op op,
                              const struct ms_quarantine_rec *r, uintptr_t bad_at,
                              const struct ms_diag_neighbour *ran_over)
{
    struct ms_out o;
    const struct ms_livetab_entry *e = &r->e;
    begin(&o, cfg);
    freed_heading(&o, r);
    ms_out_str(&o, "    It was written to after it was freed: the byte at ");
    rel(&o, bad_at, e->p);
    ms_out_str(&o, " is ");
    hex_byte(&o, *(const uint8_t *)bad_at);
    ms_out_str(&o, ", not DEADBYTE (0xdd).\n");
    /* What was written, when it was more than a byte: its value often says what it was (a
     * pointer, a counter, a flag), and the data line elides the middle of a block. */
    uintptr_t last = ms_livetab_end(e) - 1;
    while (last > bad_at && *(const uint8_t *)last == MS_DEADBYTE)
        last--;
    if (last > bad_at) {
        ms_out_str(&o, "    The changes span ");
        rel(&o, bad_at, e->p);
        ms_out_str(&o, " to ");
        rel(&o, last, e->p);
        ms_out_char(&o, ':');
        bytes(&o, (const uint8_t *)bad_at, last + 1 - bad_at);
        ms_out_char(&o, '\n');
    }
    data_line(&o, (const uint8_t *)e->p, ms_livetab_size(e));
    ms_out_char(&o, '\n');
    freed_tracebacks(&o, cfg, (const void *)e->p);
    ran_over_part(&o, cfg, ran_over);
    finish(&o, cfg, op, "write to freed memory", NULL);
}

/* Not CPython's (it has no sized free): ASan's new-delete-type-mismatch. */
void ms_diag_sized_delete(const struct ms_debug_config *cfg, const struct ms_livetab_entry *e,
                          size_t n)
{
    struct ms_out o;
    begin(&o, cfg);
    dump_live(&o, e, false);
    ms_out_str(&o, "    operator delete was told the block holds ");
    ms_out_udec(&o, n, 0);
    ms_out_str(&o, n == 1 ? " byte" : " bytes");
    ms_out_str(&o, ": the object is deleted\n"
                   "       through a pointer to a type of another size (a base class without a\n"
                   "       virtual destructor?).\n\n");
    alloc_traceback(&o, cfg, (const void *)e->p);
    struct ms_out msg; /* the fatal line's message, formatted without printing */
    ms_out_init(&msg, -1);
    ms_out_str(&msg, "sized delete of ");
    ms_out_udec(&msg, n, 0);
    ms_out_str(&msg, " bytes, but ");
    ms_out_udec(&msg, ms_livetab_size(e), 0);
    ms_out_str(&msg, " bytes were allocated");
    ms_out_char(&msg, '\0');
    finish(&o, cfg, MS_DIAG_FREE, msg.buf, NULL);
}

void ms_diag_freed_lower_header(const struct ms_debug_config *cfg, enum ms_diag_op op,
                                const struct ms_quarantine_rec *r,
                                const struct ms_diag_neighbour *ran_over)
{
    struct ms_out o;
    begin(&o, cfg);
    freed_heading(&o, r);
    lower_header_line(&o, &r->e);
    freed_tracebacks(&o, cfg, (const void *)r->e.p);
    ran_over_part(&o, cfg, ran_over);
    finish(&o, cfg, op, "bad C library chunk header", NULL);
}

void ms_diag_double_free(const struct ms_debug_config *cfg, enum ms_diag_op op,
                         const struct ms_quarantine_rec *r, bool queued)
{
    struct ms_out o;
    begin(&o, cfg);
    freed_heading(&o, r);
    ms_out_str(&o, queued ? "    It is in the quarantine: "
                          : "    It has left the quarantine (its memory may be in use "
                            "again): ");
    if (op == MS_DIAG_REALLOC)
        ms_out_str(&o, "realloc was called on a block that was already freed.\n\n");
    else if (op == MS_DIAG_USABLE_SIZE)
        ms_out_str(&o, "malloc_usable_size was called on a block that was already freed.\n\n");
    else
        ms_out_str(&o, "this is its second free.\n\n");
    freed_tracebacks(&o, cfg, (const void *)r->e.p);
    finish(&o, cfg, op, op == MS_DIAG_REALLOC       ? "realloc of freed memory"
                        : op == MS_DIAG_USABLE_SIZE ? "malloc_usable_size of freed memory"
                                                    : "double free",
           NULL);
}

void ms_diag_invalid_pointer(const struct ms_debug_config *cfg, enum ms_diag_op op,
                             const void *p, enum ms_diag_invalid kind,
                             const struct ms_diag_where *where)
{
    struct ms_out o;
    const char *what = "an unknown pointer";
    begin(&o, cfg);
    heading(&o, p);
    ms_out_str(&o, ": not a block memshim handed out\n");
    switch (kind) {
    case MS_DIAG_INVALID_STACK:
        ms_out_str(&o, "    p is on the stack of the current thread.\n");
        what = "a stack address";
        break;
    case MS_DIAG_INVALID_IMAGE:
        ms_out_str(&o, "    p is in the image of ");
        ms_out_str(&o, where->module->module[0] ? where->module->module : "the main program");
        ms_out_str(&o, " at offset ");
        ms_out_ptr(&o, (const void *)where->module->offset);
        ms_out_str(&o, " (a global, a static or a constant).\n");
        what = "a global address";
        break;
    case MS_DIAG_INVALID_INTERIOR: {
        const struct ms_livetab_entry *container = where->container;
        uintptr_t q = container->p;
        bool freed = where->freed;
        ms_out_str(&o, "    p is ");
        ms_out_udec(&o, (uintptr_t)p >= q ? (uintptr_t)p - q : q - (uintptr_t)p, 0);
        ms_out_str(&o, (uintptr_t)p >= q ? " bytes inside the " : " bytes in front of the ");
        ms_out_str(&o, freed ? "freed block at " : "block at ");
        ms_out_ptr(&o, (const void *)q);
        ms_out_str(&o, " (");
        ms_out_udec(&o, ms_livetab_size(container), 0);
        ms_out_str(&o, " bytes, made by call #");
        ms_out_udec(&o, where->serial, 0);
        ms_out_str(&o, " to debug malloc/realloc).\n");
        what = "an interior pointer";
        break;
    }
    case MS_DIAG_INVALID_MISALIGNED:
        ms_out_str(&o, "    p is not aligned to 16 bytes: memshim never hands out such an "
                       "address.\n");
        what = "a misaligned pointer";
        break;
    default:
        ms_out_str(&o, "    memshim did not hand out this address, or the block there was "
                       "freed and has left the quarantine.\n");
        break;
    }
    ms_out_char(&o, '\n');
    if (kind == MS_DIAG_INVALID_INTERIOR && where->freed)
        freed_tracebacks(&o, cfg, (const void *)where->container->p);
    else if (kind == MS_DIAG_INVALID_INTERIOR)
        alloc_traceback(&o, cfg, (const void *)where->container->p);
    finish(&o, cfg, op, op == MS_DIAG_REALLOC       ? "invalid realloc of "
                        : op == MS_DIAG_USABLE_SIZE ? "invalid malloc_usable_size of "
                                                    : "invalid free of ",
           what);
}

struct freed_pick {
    bool (*find_freed)(uintptr_t a, struct ms_quarantine_rec *r);
    struct ms_quarantine_rec *r;
};

static bool in_freed(uintptr_t v, void *arg)
{
    struct freed_pick *f = arg;
    return f->find_freed(v, f->r);
}

/* The registers that point into a freed block, in one line; the first such block goes to
 * *r.  Only when the lookup can be had without waiting (find_freed's promise). */
static bool registers_in_freed(struct ms_out *o, const void *uctx,
                               bool (*find_freed)(uintptr_t a, struct ms_quarantine_rec *r),
                               struct ms_quarantine_rec *r)
{
    struct freed_pick f = { find_freed, r };
    if (!ms_crash_register_in(uctx, in_freed, &f))
        return false;
    int count = ms_crash_list_registers(o, uctx, ms_livetab_base(&r->e),
                                        ms_livetab_end(&r->e), r->e.p);
    ms_out_str(o, count > 1 ? " point" : " points");
    ms_out_str(o, " into the freed block below: the crash most likely used it after it was "
                  "freed.\n");
    return true;
}

void ms_diag_crash(const struct ms_debug_config *cfg, int sig, const siginfo_t *si,
                   const void *uctx,
                   bool (*find_freed)(uintptr_t a, struct ms_quarantine_rec *r))
{
    struct ms_out o;
    struct ms_quarantine_rec r;
    begin(&o, cfg);
    bool overflow;
    uintptr_t pc = ms_crash_describe(&o, sig, si, uctx, &overflow);
    /* A stack overflow is its own explanation: a register that happens to point into a
     * freed block (a Rust program's, recursing) is no use after free. */
    bool freed = si->si_code > 0 && !overflow && find_freed != NULL
                 && registers_in_freed(&o, uctx, find_freed, &r);
    ms_out_char(&o, '\n');
    if (freed) {
        freed_heading(&o, &r);
        ms_out_char(&o, '\n');
        freed_tracebacks(&o, cfg, (const void *)r.e.p);
    }
    ms_out_str(&o, "Fatal memshim error: ");
    ms_out_str(&o, ms_crash_signal_name(sig));
    ms_out_char(&o, '\n');
    if (cfg->print_backtrace_from) {
        ms_out_char(&o, '\n');
        ms_out_flush(&o);
        cfg->print_backtrace_from(&o, pc);
    }
    ms_out_flush(&o);
    /* The caller lets the process die of the signal; should the access not fault again
     * (another thread mapped the page meanwhile), later reports must not wait for this one. */
    diag_depth--;
    atomic_store(&D.reporting, 0);
}
