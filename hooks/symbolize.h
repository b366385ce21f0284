/* SPDX-License-Identifier: MIT */
/*
 * Report-time symbolisation: a return address -> module path, offset in the module,
 * function name (C++ demangled when the program has __cxa_demangle), source file and line
 * from DWARF through elfutils' libdwfl.  Results are cached per pc and their strings are
 * interned, so two frames in the same file share one file pointer (reports group on it).
 *
 * Never on the allocation path.  libdw allocates with malloc: every call into it (and into
 * the demangler) runs under the guard, so those allocations go straight to the C library
 * and are neither traced nor checked.  Own tables and strings come from ms_os_map and live
 * until the process ends.  Thread-safe: one lock; the fatal path only tries it and falls
 * back to dladdr (no DWARF) when it is taken, so a crash inside a report cannot deadlock.
 */
#ifndef MS_SYMBOLIZE_H
#define MS_SYMBOLIZE_H

#include <stdint.h>

#include "fmt.h"

enum ms_symbol_mode {
    MS_SYMBOL_NORMAL, /* reports: wait for the lock */
    MS_SYMBOL_FATAL,  /* fatal diagnostics: never wait, degrade to dladdr instead */
    MS_SYMBOL_NOHEAP, /* a crash inside the C library, whose malloc may hold a lock of this
                         thread's: the cache and dladdr only (no libdw, which allocates) */
};

struct ms_symbol {
    const char *module;         /* path of the module, NULL when the pc is in none */
    uintptr_t module_offset;    /* pc - load bias: the address addr2line -e module takes */
    const char *function;       /* NULL when unknown */
    uintptr_t function_offset;  /* pc - function start */
    const char *file;           /* source file as the compiler was given it, NULL if none */
    unsigned line;              /* 0 when file is NULL */
};

/* Is the return address pc in one of the C library's allocator functions (malloc, free,
 * realloc, memalign, ... by dladdr's name)?  They take the arena's lock. */
int ms_symbol_in_c_allocator(uintptr_t pc);

/* Loads libdw (once; see symbolize.c for why it is not linked).  Without it, or before it,
 * lookups give what dladdr knows. */
void ms_symbol_load(void);

/* Fills *out for the return address pc (the line looked up is the call's, pc - 1).
 * Returns 0, or -1 when nothing at all is known (out then holds NULLs and zeros). The
 * strings stay valid until the process ends. */
int ms_symbol_lookup(uintptr_t pc, struct ms_symbol *out, enum ms_symbol_mode mode);

/* One traceback line, in the debug dump's form:
 *   with line info:     `  File "demo.c", line 12, in make_buffer`
 *   without:            `  File "/usr/lib/x86_64-linux-gnu/libc.so.6", offset 0x271c9, in func`
 *   outside any module: `  File "<unknown>", address 0x7f...`
 * (", in func" is left out when the function is unknown). */
void ms_symbol_print_frame(struct ms_out *o, uintptr_t pc, enum ms_symbol_mode mode);
void ms_symbol_print(struct ms_out *o, const struct ms_symbol *s, uintptr_t pc);

/* Is this the C library's start-up code under main or a thread's start routine
 * (_start, __libc_start_main, __libc_start_call_main, start_thread, clone, clone3)?
 * Tracebacks hide a trailing run of these, as Python's hide the interpreter's. */
int ms_symbol_is_startup(const struct ms_symbol *s);

/* fork(): the child gets the lock back free (a report in another thread of the parent may
 * have held it). */
void ms_symbol_fork_child(void);

#endif
