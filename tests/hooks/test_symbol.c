/* SPDX-License-Identifier: MIT */
/*
 * Report-time symbolisation: a function of this test binary to its file, line and name; a
 * frame in a library without debug information to module path and offset; C++ names
 * demangled when the program has the C++ runtime, Rust names always; an address outside
 * every module.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolize.h"
#include "unwind.h"
#include "test_trace_util.h"

static uintptr_t pcs[8];
static int n_pcs, known_line;

static __attribute__((noinline)) void known_site(void)
{
    uint32_t total;
    known_line = __LINE__ + 1;
    n_pcs = ms_unwind_capture(pcs, 8, &total, NULL);
}

Test(symbol, function_file_and_line_of_this_binary)
{
    known_site();
    cr_assert_gt(n_pcs, 1);
    struct ms_symbol s;
    cr_assert_eq(ms_symbol_lookup(pcs[0], &s, MS_SYMBOL_NORMAL), 0);
    cr_assert_str_eq(s.function, "known_site");
    cr_assert_str_eq(s.file, __FILE__, "the name the compiler was given");
    cr_assert_eq(s.line, (unsigned)known_line);
    char exe[PATH_MAX];
    cr_assert_not_null(realpath("/proc/self/exe", exe));
    cr_assert_str_eq(s.module, exe);
    Dl_info info;
    cr_assert(dladdr((void *)pcs[0], &info));
    cr_assert_eq(s.module_offset, pcs[0] - (uintptr_t)info.dli_fbase);
    cr_assert_eq(s.function_offset, pcs[0] - (uintptr_t)&known_site);

    struct ms_out o;
    ms_out_init(&o, -1);
    ms_symbol_print_frame(&o, pcs[0], MS_SYMBOL_NORMAL);
    char expect[256];
    snprintf(expect, sizeof expect, "  File \"%s\", line %d, in known_site\n", __FILE__, known_line);
    cr_assert_str_eq(collected(&o), expect);

    /* Cached and interned: the same answer, the same strings. */
    struct ms_symbol again;
    ms_symbol_lookup(pcs[0], &again, MS_SYMBOL_NORMAL);
    cr_assert_eq(again.file, s.file);
    cr_assert_eq(again.function, s.function);
    ms_symbol_lookup(pcs[1], &again, MS_SYMBOL_NORMAL);
    cr_assert_eq(again.file, s.file, "two frames in one file share its name");
    cr_assert_str_eq(again.function, "symbol_function_file_and_line_of_this_binary_impl");
}

Test(symbol, library_without_debug_info)
{
    /* This test's caller is Criterion's runner, in a library without debug information. */
    known_site();
    struct ms_symbol s;
    cr_assert_eq(ms_symbol_lookup(pcs[2], &s, MS_SYMBOL_NORMAL), 0);
    Dl_info info;
    cr_assert(dladdr((void *)(pcs[2] - 1), &info));
    cr_assert(strstr(info.dli_fname, "libcriterion") != NULL, "caller in %s", info.dli_fname);
    cr_assert_null(s.file);
    cr_assert_eq(s.line, 0);
    char path[PATH_MAX];
    cr_assert_not_null(realpath(info.dli_fname, path));
    cr_assert_str_eq(s.module, path);
    cr_assert_eq(s.module_offset, pcs[2] - (uintptr_t)info.dli_fbase);
    cr_assert_str_eq(s.function, "criterion_internal_test_main");

    struct ms_out o;
    ms_out_init(&o, -1);
    ms_symbol_print_frame(&o, pcs[2], MS_SYMBOL_NORMAL);
    char expect[PATH_MAX + 100];
    snprintf(expect, sizeof expect, "  File \"%s\", offset 0x%lx, in criterion_internal_test_main\n",
             path, (unsigned long)s.module_offset);
    cr_assert_str_eq(collected(&o), expect);
}

Test(symbol, outside_every_module)
{
    struct ms_symbol s;
    cr_assert_eq(ms_symbol_lookup(0x10, &s, MS_SYMBOL_NORMAL), -1);
    cr_assert_null(s.module);
    cr_assert_null(s.function);
    struct ms_out o;
    ms_out_init(&o, -1);
    ms_symbol_print_frame(&o, 0x10, MS_SYMBOL_FATAL);
    cr_assert_str_eq(collected(&o), "  File \"<unknown>\", address 0x10\n");
}

Test(symbol, cxx_names_demangled)
{
    void *cxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL);
    cr_assert_not_null(cxx, "%s", dlerror());
    void *dtor = dlsym(cxx, "_ZNSt9bad_allocD0Ev");
    cr_assert_not_null(dtor);
    struct ms_symbol s;
    cr_assert_eq(ms_symbol_lookup((uintptr_t)dtor + 2, &s, MS_SYMBOL_NORMAL), 0);
    cr_assert_str_eq(s.function, "std::bad_alloc::~bad_alloc()");
}

/* Functions of this binary under the names rustc gives (v0 and legacy). */
__attribute__((noinline)) void rust_v0_fn(void) __asm__("_RNvNtCs1234_5crate6module4func");
__attribute__((noinline)) void rust_v0_fn(void)
{
    uint32_t total;
    n_pcs = ms_unwind_capture(pcs, 8, &total, NULL);
}
__attribute__((noinline)) void rust_legacy_fn(void)
    __asm__("_ZN5crate6module20Thing$LT$T$GT$$u20$x17h0123456789abcdefE");
__attribute__((noinline)) void rust_legacy_fn(void)
{
    uint32_t total;
    n_pcs = ms_unwind_capture(pcs, 8, &total, NULL);
}

Test(symbol, rust_names_demangled)
{
    struct ms_symbol s;
    rust_v0_fn();
    cr_assert_gt(n_pcs, 0);
    cr_assert_eq(ms_symbol_lookup(pcs[0], &s, MS_SYMBOL_NORMAL), 0);
    cr_assert_str_eq(s.function, "crate::module::func");
    rust_legacy_fn();
    cr_assert_gt(n_pcs, 0);
    cr_assert_eq(ms_symbol_lookup(pcs[0], &s, MS_SYMBOL_NORMAL), 0);
    cr_assert_str_eq(s.function, "crate::module::Thing<T> x");
}

Test(symbol, startup_frames_recognised)
{
    struct ms_symbol s = { .function = "__libc_start_call_main" };
    cr_assert(ms_symbol_is_startup(&s));
    s.function = "start_thread";
    cr_assert(ms_symbol_is_startup(&s));
    s.function = "main";
    cr_assert(!ms_symbol_is_startup(&s));
    s.function = NULL;
    cr_assert(!ms_symbol_is_startup(&s));
}

Test(symbol, fatal_mode_gives_the_same_answer)
{
    ms_symbol_load();   /* a fatal lookup never loads libdw: the shim does it at start-up */
    known_site();
    struct ms_symbol s;
    cr_assert_eq(ms_symbol_lookup(pcs[0], &s, MS_SYMBOL_FATAL), 0);
    cr_assert_str_eq(s.function, "known_site");
    cr_assert_eq(s.line, (unsigned)known_line);
}

Test(symbol, fatal_mode_without_libdw_falls_back_to_dladdr)
{
    known_site();
    struct ms_symbol s;
    cr_assert_eq(ms_symbol_lookup(pcs[0], &s, MS_SYMBOL_FATAL), 0);
    cr_assert_not_null(s.module, "dladdr knows the module");
    cr_assert_eq(s.line, 0, "no line without libdw");
}
