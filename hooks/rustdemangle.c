/* SPDX-License-Identifier: MIT */
/*
 * Rust demangling (see rustdemangle.h).  v0: a recursive-descent reader of the grammar of
 * RFC 2603 that prints as it reads (an impl path is read with printing off; a backreference
 * re-reads the name from an earlier position).  Legacy: length-prefixed components joined
 * with "::", the hash component dropped, "$LT$"-style escapes and ".." decoded.
 *
 * Owns nothing but the caller's buffer.  Never allocates, never reads past the name's end,
 * bounds recursion (backreferences nest) with MAX_DEPTH and work with MAX_STEPS.  Forms it
 * does not know (punycode identifiers, string/array/struct constants) make it give up: the
 * caller keeps the mangled name, which is no worse than before.
 */
#include "rustdemangle.h"

#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 200
#define MAX_STEPS 100000            /* backreferences can make the work exponential */

struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

static void out_n(struct out *o, const char *s, size_t n)
{
    if (o->full || n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_u64(struct out *o, uint64_t v)
{
    char t[20];
    size_t i = sizeof t;
    do
        t[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    out_n(o, t + i, sizeof t - i);
}

/* ---- v0 ------------------------------------------------------------------------------ */

struct v0 {
    const char *s;         /* after "_R": backreferences count from here */
    size_t n;              /* up to a '.' suffix */
    size_t pos;
    int depth;
    unsigned steps;
    bool bad;
    bool quiet;            /* reading without printing */
    uint64_t bound;        /* lifetimes bound by the enclosing binders */
    struct out *o;
};

static void emit_n(struct v0 *v, const char *s, size_t n)
{
    if (!v->quiet)
        out_n(v->o, s, n);
}

static void emit(struct v0 *v, const char *s)
{
    emit_n(v, s, strlen(s));
}

static void emit_u64(struct v0 *v, uint64_t x)
{
    if (!v->quiet)
        out_u64(v->o, x);
}

static char peek(const struct v0 *v)
{
    return v->pos < v->n ? v->s[v->pos] : '\0';
}

static bool eat(struct v0 *v, char c)
{
    if (v->bad || peek(v) != c)
        return false;
    v->pos++;
    return true;
}

static char next(struct v0 *v)
{
    if (v->bad || v->pos >= v->n) {
        v->bad = true;
        return '\0';
    }
    return v->s[v->pos++];
}

static bool enter(struct v0 *v)
{
    if (v->bad || ++v->depth > MAX_DEPTH || ++v->steps > MAX_STEPS) {
        v->bad = true;
        return false;
    }
    return true;
}

static void leave(struct v0 *v)
{
    v->depth--;
}

/* <base-62-number>: "_" is 0, digits then "_" are their value plus one. */
static uint64_t base62(struct v0 *v)
{
    if (eat(v, '_'))
        return 0;
    uint64_t x = 0;
    for (;;) {
        char c = next(v);
        unsigned d;
        if (c == '_')
            break;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'z')
            d = 10 + (unsigned)(c - 'a');
        else if (c >= 'A' && c <= 'Z')
            d = 36 + (unsigned)(c - 'A');
        else {
            v->bad = true;
            return 0;
        }
        if (x > (UINT64_MAX - d) / 62) {
            v->bad = true;
            return 0;
        }
        x = x * 62 + d;
    }
    if (x == UINT64_MAX) {
        v->bad = true;
        return 0;
    }
    return x + 1;
}

/* tag <base-62-number>, or nothing (0). */
static uint64_t opt_base62(struct v0 *v, char tag)
{
    if (!eat(v, tag))
        return 0;
    uint64_t x = base62(v);
    if (x == UINT64_MAX) {
        v->bad = true;
        return 0;
    }
    return x + 1;
}

static size_t decimal(struct v0 *v)
{
    char c = next(v);
    if (c < '0' || c > '9') {
        v->bad = true;
        return 0;
    }
    size_t x = (size_t)(c - '0');
    if (x == 0)
        return 0;
    while (peek(v) >= '0' && peek(v) <= '9') {
        x = x * 10 + (size_t)(next(v) - '0');
        if (x > v->n) {               /* no identifier is longer than the name */
            v->bad = true;
            return 0;
        }
    }
    return x;
}

/* <undisambiguated-identifier>: its bytes in the name (punycode ones are not decoded). */
static bool ident(struct v0 *v, const char **at, size_t *len)
{
    if (eat(v, 'u')) {
        v->bad = true;
        return false;
    }
    size_t n = decimal(v);
    eat(v, '_');
    if (v->bad || n > v->n - v->pos) {
        v->bad = true;
        return false;
    }
    *at = v->s + v->pos;
    *len = n;
    v->pos += n;
    return true;
}

static void print_path(struct v0 *v, bool in_value);
static void print_type(struct v0 *v);
static void print_const(struct v0 *v);

/* "B" was read: follow the backreference with fn, then come back.  While reading quietly
 * there is nothing to print, so the target is not read again. */
static void backref(struct v0 *v, void (*fn)(struct v0 *, bool), bool arg)
{
    size_t at_b = v->pos - 1;
    uint64_t target = base62(v);
    if (v->bad || target >= at_b) {
        v->bad = true;
        return;
    }
    if (v->quiet || v->o->full)
        return;
    size_t back = v->pos;
    v->pos = (size_t)target;
    if (enter(v)) {
        fn(v, arg);
        leave(v);
    }
    v->pos = back;
}

static void print_lifetime(struct v0 *v, uint64_t lt)
{
    emit(v, "'");
    if (lt == 0) {
        emit(v, "_");
        return;
    }
    if (lt > v->bound) {
        v->bad = true;
        return;
    }
    uint64_t depth = v->bound - lt;
    if (depth < 26) {
        char c = (char)('a' + depth);
        emit_n(v, &c, 1);
    } else {
        emit(v, "_");
        emit_u64(v, depth);
    }
}

/* [<binder>]: "for<'a, 'b> " and the lifetimes it binds, for what fn reads. */
static void in_binder(struct v0 *v, void (*fn)(struct v0 *))
{
    uint64_t n = opt_base62(v, 'G');
    if (v->bad || n > 1000) {
        v->bad = true;
        return;
    }
    if (n > 0) {
        emit(v, "for<");
        for (uint64_t i = 0; i < n; i++) {
            if (i > 0)
                emit(v, ", ");
            v->bound++;
            print_lifetime(v, 1);
        }
        emit(v, "> ");
    }
    fn(v);
    v->bound -= n;
}

static void print_generic_arg(struct v0 *v)
{
    if (eat(v, 'L'))
        print_lifetime(v, base62(v));
    else if (eat(v, 'K'))
        print_const(v);
    else
        print_type(v);
}

/* Items up to "E", separated by sep; how many. */
static size_t print_list(struct v0 *v, void (*fn)(struct v0 *), const char *sep)
{
    size_t i = 0;
    while (!v->bad && !eat(v, 'E')) {
        if (i++ > 0)
            emit(v, sep);
        fn(v);
    }
    return i;
}

static void print_path_value(struct v0 *v, bool in_value)
{
    print_path(v, in_value);
}

static void print_type_arg(struct v0 *v, bool unused)
{
    (void)unused;
    print_type(v);
}

static void print_const_arg(struct v0 *v, bool unused)
{
    (void)unused;
    print_const(v);
}

static void print_path(struct v0 *v, bool in_value)
{
    if (!enter(v))
        return;
    char tag = next(v);
    const char *name;
    size_t len;
    switch (tag) {
    case 'C':
        opt_base62(v, 's');
        if (ident(v, &name, &len))
            emit_n(v, name, len);
        break;
    case 'N': {
        char ns = next(v);
        if (!((ns >= 'a' && ns <= 'z') || (ns >= 'A' && ns <= 'Z'))) {
            v->bad = true;
            break;
        }
        print_path(v, in_value);
        uint64_t dis = opt_base62(v, 's');
        if (!ident(v, &name, &len))
            break;
        if (ns >= 'A' && ns <= 'Z') {
            emit(v, "::{");
            if (ns == 'C')
                emit(v, "closure");
            else if (ns == 'S')
                emit(v, "shim");
            else
                emit_n(v, &ns, 1);
            if (len > 0) {
                emit(v, ":");
                emit_n(v, name, len);
            }
            emit(v, "#");
            emit_u64(v, dis);
            emit(v, "}");
        } else if (len > 0) {
            emit(v, "::");
            emit_n(v, name, len);
        }
        break;
    }
    case 'M':
    case 'X':
    case 'Y':
        if (tag != 'Y') {
            opt_base62(v, 's');
            bool was = v->quiet;
            v->quiet = true;
            print_path(v, false);
            v->quiet = was;
        }
        emit(v, "<");
        print_type(v);
        if (tag != 'M') {
            emit(v, " as ");
            print_path(v, false);
        }
        emit(v, ">");
        break;
    case 'I':
        print_path(v, in_value);
        if (in_value)
            emit(v, "::");
        emit(v, "<");
        print_list(v, print_generic_arg, ", ");
        emit(v, ">");
        break;
    case 'B':
        backref(v, print_path_value, in_value);
        break;
    default:
        v->bad = true;
    }
    leave(v);
}

static const char *basic_type(char tag)
{
    switch (tag) {
    case 'a': return "i8";
    case 'b': return "bool";
    case 'c': return "char";
    case 'd': return "f64";
    case 'e': return "str";
    case 'f': return "f32";
    case 'h': return "u8";
    case 'i': return "isize";
    case 'j': return "usize";
    case 'l': return "i32";
    case 'm': return "u32";
    case 'n': return "i128";
    case 'o': return "u128";
    case 'p': return "_";
    case 's': return "i16";
    case 't': return "u16";
    case 'u': return "()";
    case 'v': return "...";
    case 'x': return "i64";
    case 'y': return "u64";
    case 'z': return "!";
    default: return NULL;
    }
}

static void print_fn_sig(struct v0 *v)
{
    bool is_unsafe = eat(v, 'U');
    const char *abi = NULL;
    size_t abi_len = 0;
    if (eat(v, 'K')) {
        if (eat(v, 'C')) {
            abi = "C";
            abi_len = 1;
        } else if (!ident(v, &abi, &abi_len) || abi_len == 0) {
            v->bad = true;
            return;
        }
    }
    if (is_unsafe)
        emit(v, "unsafe ");
    if (abi != NULL) {
        emit(v, "extern \"");
        for (size_t i = 0; i < abi_len; i++)   /* "C_unwind" is written "C-unwind" */
            emit_n(v, abi[i] == '_' ? "-" : &abi[i], 1);
        emit(v, "\" ");
    }
    emit(v, "fn(");
    print_list(v, print_type, ", ");
    emit(v, ")");
    if (!eat(v, 'u')) {
        emit(v, " -> ");
        print_type(v);
    }
}

/* A dyn trait's path; true when it left "<" open for the associated-type bindings. */
static bool print_path_open_generics(struct v0 *v);

static void open_generics_arg(struct v0 *v, bool unused)
{
    (void)unused;
    /* Through a backreference: the callee reports nothing back, so it closes what it
     * opened; bindings then get their own "<...>" (rare: rustc backrefs whole paths). */
    if (print_path_open_generics(v))
        emit(v, ">");
}

static bool print_path_open_generics(struct v0 *v)
{
    if (eat(v, 'B')) {
        backref(v, open_generics_arg, false);
        return false;
    }
    if (eat(v, 'I')) {
        print_path(v, false);
        emit(v, "<");
        print_list(v, print_generic_arg, ", ");
        return true;
    }
    print_path(v, false);
    return false;
}

static void print_dyn_trait(struct v0 *v)
{
    bool open = print_path_open_generics(v);
    while (!v->bad && eat(v, 'p')) {
        emit(v, open ? ", " : "<");
        open = true;
        const char *name;
        size_t len;
        if (!ident(v, &name, &len))
            return;
        emit_n(v, name, len);
        emit(v, " = ");
        print_type(v);
    }
    if (open)
        emit(v, ">");
}

static void print_dyn_bounds(struct v0 *v)
{
    print_list(v, print_dyn_trait, " + ");
}

static void print_type(struct v0 *v)
{
    if (!enter(v))
        return;
    char tag = next(v);
    const char *basic = basic_type(tag);
    if (basic != NULL) {
        emit(v, basic);
        leave(v);
        return;
    }
    switch (tag) {
    case 'R':
    case 'Q':
        emit(v, "&");
        if (eat(v, 'L')) {
            uint64_t lt = base62(v);
            if (lt != 0) {
                print_lifetime(v, lt);
                emit(v, " ");
            }
        }
        if (tag == 'Q')
            emit(v, "mut ");
        print_type(v);
        break;
    case 'P':
        emit(v, "*const ");
        print_type(v);
        break;
    case 'O':
        emit(v, "*mut ");
        print_type(v);
        break;
    case 'A':
        emit(v, "[");
        print_type(v);
        emit(v, "; ");
        print_const(v);
        emit(v, "]");
        break;
    case 'S':
        emit(v, "[");
        print_type(v);
        emit(v, "]");
        break;
    case 'T': {
        emit(v, "(");
        size_t n = print_list(v, print_type, ", ");
        if (n == 1)
            emit(v, ",");
        emit(v, ")");
        break;
    }
    case 'F':
        in_binder(v, print_fn_sig);
        break;
    case 'D': {
        emit(v, "dyn ");
        in_binder(v, print_dyn_bounds);
        if (!eat(v, 'L')) {
            v->bad = true;
            break;
        }
        uint64_t lt = base62(v);
        if (lt != 0) {
            emit(v, " + ");
            print_lifetime(v, lt);
        }
        break;
    }
    case 'B':
        backref(v, print_type_arg, false);
        break;
    default:
        v->pos--;                      /* a path names the type */
        print_path(v, false);
    }
    leave(v);
}

/* <const-data> of an integer: hex digits up to "_", printed in decimal when they fit. */
static void print_const_uint(struct v0 *v)
{
    size_t start = v->pos;
    uint64_t x = 0;
    size_t digits = 0;
    for (;;) {
        char c = next(v);
        if (c == '_')
            break;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = 10 + (unsigned)(c - 'a');
        else {
            v->bad = true;
            return;
        }
        if (digits > 0 || d != 0)
            digits++;
        x = x << 4 | d;
    }
    if (digits > 16) {
        emit(v, "0x");
        emit_n(v, v->s + start, v->pos - 1 - start);
    } else {
        emit_u64(v, x);
    }
}

static void print_const(struct v0 *v)
{
    if (!enter(v))
        return;
    char tag = next(v);
    switch (tag) {
    case 'p':
        emit(v, "_");
        break;
    case 'h': case 't': case 'm': case 'y': case 'o': case 'j':
        print_const_uint(v);
        break;
    case 'a': case 's': case 'l': case 'x': case 'n': case 'i':
        if (eat(v, 'n'))
            emit(v, "-");
        print_const_uint(v);
        break;
    case 'b':
        if (eat(v, '0') && eat(v, '_'))
            emit(v, "false");
        else if (eat(v, '1') && eat(v, '_'))
            emit(v, "true");
        else
            v->bad = true;
        break;
    case 'c': {
        uint64_t c = 0;
        for (char h; !v->bad && (h = next(v)) != '_';) {
            if (h >= '0' && h <= '9')
                c = c << 4 | (uint64_t)(h - '0');
            else if (h >= 'a' && h <= 'f')
                c = c << 4 | (uint64_t)(h - 'a' + 10);
            else
                v->bad = true;
            if (c > 0x10ffff)
                v->bad = true;
        }
        if (v->bad)
            break;
        char ch = (char)c;
        emit(v, "'");
        if (c == '\'' || c == '\\') {
            emit(v, "\\");
            emit_n(v, &ch, 1);
        } else if (c >= 0x20 && c < 0x7f) {
            emit_n(v, &ch, 1);
        } else {
            const char *hex = "0123456789abcdef";
            char buf[8];
            size_t k = sizeof buf;
            do
                buf[--k] = hex[c & 15];
            while ((c >>= 4) != 0);
            emit(v, "\\u{");
            emit_n(v, buf + k, sizeof buf - k);
            emit(v, "}");
        }
        emit(v, "'");
        break;
    }
    case 'B':
        backref(v, print_const_arg, false);
        break;
    default:                           /* str, reference, array, tuple, struct constants */
        v->bad = true;
    }
    leave(v);
}

static bool demangle_v0(const char *sym, struct out *o)
{
    struct v0 v = { .s = sym + 2, .o = o };
    if (v.s[0] >= '0' && v.s[0] <= '9')
        return false;                  /* an encoding version: none is defined yet */
    while (v.s[v.n] != '\0' && v.s[v.n] != '.') {
        char c = v.s[v.n++];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || c == '_'))
            return false;
    }
    print_path(&v, true);
    if (!v.bad && v.pos < v.n && peek(&v) >= 'A' && peek(&v) <= 'Z') {
        v.quiet = true;                /* the instantiating crate */
        print_path(&v, false);
    }
    return !v.bad && v.pos == v.n;
}

/* ---- legacy ---------------------------------------------------------------------------- */

static bool is_rust_hash(const char *s, size_t n)
{
    if (n != 17 || s[0] != 'h')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* One component with its escapes decoded; false on an escape it does not know. */
static bool legacy_component(struct out *o, const char *s, size_t n)
{
    static const struct { const char *esc; char c; } named[] = {
        { "SP", '@' }, { "BP", '*' }, { "RF", '&' }, { "LT", '<' }, { "GT", '>' },
        { "LP", '(' }, { "RP", ')' }, { "C", ',' },
    };
    size_t i = 0;
    if (n >= 2 && s[0] == '_' && s[1] == '$')
        i = 1;
    while (i < n) {
        if (s[i] == '.') {
            bool two = i + 1 < n && s[i + 1] == '.';
            out_n(o, two ? "::" : ".", two ? 2 : 1);
            i += two ? 2 : 1;
            continue;
        }
        if (s[i] != '$') {
            out_n(o, &s[i], 1);
            i++;
            continue;
        }
        const char *end = memchr(s + i + 1, '$', n - i - 1);
        if (end == NULL)
            return false;
        const char *esc = s + i + 1;
        size_t len = (size_t)(end - esc);
        bool known = false;
        for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
            if (strlen(named[k].esc) == len && memcmp(named[k].esc, esc, len) == 0) {
                out_n(o, &named[k].c, 1);
                known = true;
            }
        if (!known && len >= 2 && len <= 3 && esc[0] == 'u') {
            unsigned c = 0;
            for (size_t k = 1; k < len; k++) {
                char h = esc[k];
                if (h >= '0' && h <= '9')
                    c = c << 4 | (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f')
                    c = c << 4 | (unsigned)(h - 'a' + 10);
                else
                    return false;
            }
            if (c < 0x20 || c >= 0x7f)
                return false;
            char ch = (char)c;
            out_n(o, &ch, 1);
            known = true;
        }
        if (!known)
            return false;
        i += len + 2;
    }
    return true;
}

static bool demangle_legacy(const char *sym, struct out *o)
{
    const char *s = sym + 3;           /* after "_ZN" */
    const char *comp[64];
    size_t len[64], n = 0;
    while (*s != 'E') {
        if (*s < '1' || *s > '9' || n == 64)
            return false;
        size_t l = 0;
        while (*s >= '0' && *s <= '9') {
            l = l * 10 + (size_t)(*s++ - '0');
            if (l > 4096)
                return false;
        }
        if (strnlen(s, l) < l)
            return false;
        comp[n] = s;
        len[n++] = l;
        s += l;
    }
    if ((s[1] != '\0' && s[1] != '.') || n < 2 || !is_rust_hash(comp[n - 1], len[n - 1]))
        return false;
    for (size_t i = 0; i + 1 < n; i++) {
        if (i > 0)
            out_n(o, "::", 2);
        if (!legacy_component(o, comp[i], len[i]))
            return false;
    }
    return true;
}

bool ms_rust_demangle(const char *sym, char *buf, size_t cap)
{
    if (sym == NULL || sym[0] != '_' || cap == 0)
        return false;
    struct out o = { .buf = buf, .cap = cap };
    bool ok;
    if (sym[1] == 'R')
        ok = demangle_v0(sym, &o);
    else if (sym[1] == 'Z' && sym[2] == 'N')
        ok = demangle_legacy(sym, &o);
    else
        return false;
    if (!ok || o.full)
        return false;
    buf[o.len] = '\0';
    return true;
}
