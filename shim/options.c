/* SPDX-License-Identifier: MIT */
/*
 * Reads the MEMSHIM_* variables declared in options.def, once, from the first malloc-family
 * call (getenv works by then: the dynamic loader has set up environ before any library
 * code runs).  The only place in memshim that reads the environment.
 *
 * Never: allocates (it may run inside the program's first malloc), or ignores a bad value.
 */
#include "options.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"

enum ms_kind {
    MS_KIND_MODE, MS_KIND_FLAG, MS_KIND_ARENA, MS_KIND_BYTES, MS_KIND_SERIAL,
    MS_KIND_FRAMES, MS_KIND_SWITCH, MS_KIND_EXITCODE, MS_KIND_PATH,
};

struct ms_option_desc {
    const char *variable;
    enum ms_kind kind;
    const char *fallback;
    const char *accepted;
};

enum ms_option_id {
#define MS_OPTION(field, var, kind, dflt, accepted, help) MS_OPT_##field,
#include "options.def"
#undef MS_OPTION
    MS_OPT_COUNT
};

static const struct ms_option_desc option_table[MS_OPT_COUNT] = {
#define MS_OPTION(field, var, kind, dflt, accepted, help) {var, kind, dflt, accepted},
#include "options.def"
#undef MS_OPTION
};

/* PYTHONMALLOC's names (CPython 3.13), "debug" being pymalloc_debug. */
static const struct {
    const char *name;
    enum ms_base base;
    bool debug;
} mode_names[] = {
    {"", MS_BASE_PYMALLOC, false},
    {"default", MS_BASE_PYMALLOC, false},
    {"pymalloc", MS_BASE_PYMALLOC, false},
    {"pymalloc_debug", MS_BASE_PYMALLOC, true},
    {"debug", MS_BASE_PYMALLOC, true},
    {"malloc", MS_BASE_MALLOC, false},
    {"malloc_debug", MS_BASE_MALLOC, true},
    {"mimalloc", MS_BASE_MIMALLOC, false},
    {"mimalloc_debug", MS_BASE_MIMALLOC, true},
};

/* One line, then exit 1.  The value is printed as given but cut at 200 bytes and with
 * control characters escaped, so a hostile value cannot flood or mangle the terminal. */
static _Noreturn void reject_because(const struct ms_option_desc *d, const char *value,
                                     const char *reason)
{
    struct ms_out o;
    ms_out_init(&o, 2);
    ms_out_str(&o, "memshim: invalid ");
    ms_out_str(&o, d->variable);
    ms_out_str(&o, " value '");
    size_t n = strlen(value);
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f || c == '\\') {
            ms_out_str(&o, "\\x");
            ms_out_hex(&o, c, 2);
        } else {
            ms_out_char(&o, (char)c);
        }
    }
    if (n > 200)
        ms_out_str(&o, "...");
    ms_out_str(&o, "'; ");
    if (reason) {
        ms_out_str(&o, reason);
        ms_out_str(&o, "; ");
    }
    ms_out_str(&o, "accepted: ");
    ms_out_str(&o, d->accepted);
    ms_out_char(&o, '\n');
    ms_out_flush(&o);
    _exit(1);
}

static _Noreturn void reject(const struct ms_option_desc *d, const char *value)
{
    reject_because(d, value, NULL);
}

static _Noreturn void reject_set_value(const struct ms_option_desc *d, const char *reason)
{
    const char *v = getenv(d->variable);
    reject_because(d, v ? v : "", reason);
}

void ms_options_reject_mode(const char *reason)
{
    reject_set_value(&option_table[MS_OPT_mode], reason);
}

void ms_options_reject_tracemalloc(const char *reason)
{
    reject_set_value(&option_table[MS_OPT_tracemalloc], reason);
}

/* Decimal digits, then optionally one suffix from `suffixes` (K, M, G: powers of 1024,
 * either case); no sign, no spaces, no overflow. */
static bool parse_number(const char *s, const char *suffixes, uint64_t *out)
{
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t digit = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (*s == '\0') {
        *out = v;
        return true;
    }
    char c = (char)(*s & ~0x20);   /* upper case */
    if (s[1] != '\0' || strchr(suffixes, c) == NULL)
        return false;
    unsigned shift = c == 'K' ? 10 : c == 'M' ? 20 : 30;
    if (v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

static bool parse_arena_size(const char *s, size_t *out)
{
    uint64_t v;
    if (!parse_number(s, "KM", &v) || v < (256u << 10) || v > (64u << 20) || (v & (v - 1)))
        return false;
    *out = (size_t)v;
    return true;
}

static bool parse_bytes(const char *s, size_t *out)
{
    uint64_t v;
    if (!parse_number(s, "KMG", &v) || v > SIZE_MAX / 2)
        return false;
    *out = (size_t)v;
    return true;
}

static bool parse_serial(const char *s, uint64_t *out)
{
    return parse_number(s, "", out) && *out != 0;
}

static bool parse_at_most(const char *s, uint64_t max, uint64_t *out)
{
    return parse_number(s, "", out) && *out <= max;
}

/* A path from the environment: copied (never written to in an AT_SECURE process, where
 * the environment is not the user's to trust). */
static bool parse_path(const char *s, char *out, size_t size)
{
    size_t n = strlen(s);
    if (n >= size)
        return false;
    if (getauxval(AT_SECURE)) {
        out[0] = '\0';
        return true;
    }
    memcpy(out, s, n + 1);
    return true;
}

static const char *value_of(const struct ms_option_desc *d)
{
    const char *v = getenv(d->variable);
    return v && *v ? v : d->fallback;
}

void ms_options_parse(struct ms_options *out)
{
    const struct ms_option_desc *d;
    const char *v;

    d = &option_table[MS_OPT_mode];
    v = getenv(d->variable);
    if (v == NULL)
        v = "";
    size_t i;
    for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
        if (strcmp(v, mode_names[i].name) == 0)
            break;
    if (i == sizeof mode_names / sizeof mode_names[0])
        reject(d, v);
    out->base = mode_names[i].base;
    out->debug = mode_names[i].debug;

    d = &option_table[MS_OPT_mallocstats];
    v = value_of(d);
    out->mallocstats = v[0] != '\0';

    d = &option_table[MS_OPT_arena_size];
    v = value_of(d);
    if (!parse_arena_size(v, &out->arena_size))
        reject(d, v);

    d = &option_table[MS_OPT_quarantine];
    v = value_of(d);
    if (!parse_bytes(v, &out->quarantine))
        reject(d, v);

    d = &option_table[MS_OPT_break_serialno];
    v = value_of(d);
    out->break_serialno = 0;
    if (*v != '\0' && !parse_serial(v, &out->break_serialno))
        reject(d, v);

    uint64_t n;
    d = &option_table[MS_OPT_tracemalloc];
    v = value_of(d);
    if (!parse_at_most(v, 65535, &n))
        reject(d, v);
    out->tracemalloc = (unsigned)n;

    d = &option_table[MS_OPT_leaks];
    v = value_of(d);
    if (*v == '\0')
        out->leaks = out->tracemalloc != 0;
    else if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)
        out->leaks = v[0] == '1';
    else
        reject(d, v);

    d = &option_table[MS_OPT_leaks_exitcode];
    v = value_of(d);
    if (!parse_at_most(v, 255, &n))
        reject(d, v);
    out->leaks_exitcode = (int)n;

    d = &option_table[MS_OPT_snapshot];
    v = value_of(d);
    if (!parse_path(v, out->snapshot, sizeof out->snapshot))
        reject(d, v);

    d = &option_table[MS_OPT_report];
    v = value_of(d);
    if (!parse_path(v, out->report, sizeof out->report))
        reject(d, v);
}
