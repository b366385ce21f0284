/* SPDX-License-Identifier: MIT */
/*
 * Rust names in reports: rustc's v0 and legacy manglings demangled as rustc-demangle's
 * alternate form writes them (no crate hashes, no trailing hash).  The expected texts are
 * what binutils' c++filt printed for the same names, less those hashes and the ": usize"
 * type suffix it gives constants; the whole of the Rust 1.95 and nightly compilers'
 * librustc_driver (39,000 names) matched the same way when this was written.
 * Then what it must refuse (C and C++ names, damaged or truncated ones, a buffer too
 * small) and a name whose backreferences would take exponential work.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rustdemangle.h"

static const struct {
    const char *mangled, *want;
} names[] = {
    { "_RNvXs1g_NtCsgEmfK2I1SDS_4core3fmtRDNtB6_5DebugEL_Bx_3fmtB8_",
      "<&dyn core::fmt::Debug as core::fmt::Debug>::fmt" },
    { "_RNvMs3_NtCsbEht8wFNRx7_5alloc7raw_vecINtB5_6RawVecTOhFUKCBN_EuENtNtCsi4IsKQVxMg0_3std5alloc6SystemE8grow_oneB13_",
      "<alloc::raw_vec::RawVec<(*mut u8, unsafe extern \"C\" fn(*mut u8)), std::alloc::System>>::grow_one" },
    { "_RNvXs0_NtNtCs37hIe2BRrty_18tracing_subscriber3fmt4timeFG0_QL1_INtNtB7_6format6WriterL0_EEINtNtCs8NwYtU1Mohg_4core6result6ResultuNtNtB1u_3fmt5ErrorENtB5_10FormatTime11format_time",
      "<for<'a, 'b> fn(&'a mut tracing_subscriber::fmt::format::Writer<'b>) -> core::result::Result<(), core::fmt::Error> as tracing_subscriber::fmt::time::FormatTime>::format_time" },
    { "_RNvXsh_NtCs8NwYtU1Mohg_4core3fmteNtB5_5Debug3fmt",
      "<str as core::fmt::Debug>::fmt" },
    { "_RNSNvYNCNvNtNtNtCsjrHSEGnQ3l9_3std3sys11personality3gcc14find_eh_action0INtNtNtCsgEmfK2I1SDS_4core3ops8function6FnOnceuE9call_once6vtableBe_",
      "<std::sys::personality::gcc::find_eh_action::{closure#0} as core::ops::function::FnOnce<()>>::call_once::{shim:vtable#0}" },
    { "_RNvXs1h_NtCs8NwYtU1Mohg_4core3fmtQShNtB6_5Debug3fmtCscYsbIx0cOGh_14rustc_demangle",
      "<&mut [u8] as core::fmt::Debug>::fmt" },
    { "_RINvNtCs8NwYtU1Mohg_4core9panicking13assert_failedPuBM_ECsdVlYlcEixFp_9dyn_clone",
      "core::panicking::assert_failed::<*const (), *const ()>" },
    { "_RNvXsq_NtCsgEmfK2I1SDS_4core3fmtONtNtB7_3ffi6c_voidNtB5_5Debug3fmtCsjrHSEGnQ3l9_3std",
      "<*mut core::ffi::c_void as core::fmt::Debug>::fmt" },
    { "_RNvXs0_NtCseQVuubCcFDg_12simd_adler324hashAhj0_NtB7_11Adler32Hash4hash",
      "<[u8; 0] as simd_adler32::Adler32Hash>::hash" },
    { "_RNvXsg_NtCsairCCGeQF1y_12rustc_expand6expandNtNtCs61nHkvlE5qF_9rustc_ast3ast5CrateNtB5_23InvocationCollectorNode16expand_cfg_false",
      "<rustc_ast::ast::Crate as rustc_expand::expand::InvocationCollectorNode>::expand_cfg_false" },
    { "_RNvCs8LySKWCQLzQ_12rustc_public15external_crates",
      "rustc_public::external_crates" },
    { "_RNCNvNtCsjrHSEGnQ3l9_3std5alloc8rust_oom0B5_",
      "std::alloc::rust_oom::{closure#0}" },
    { "_ZN3std4hash6random11RandomState3new4KEYS29_$u7b$$u7b$constant$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$17h3223da8f250cc602E",
      "std::hash::random::RandomState::new::KEYS::{{constant}}::{{closure}}" },
    { "_RNvXs0_CsdejxB620mHg_12wasm_encoderShNtB5_6Encode6encode",
      "<[u8] as wasm_encoder::Encode>::encode" },
    { "_RNvXs0_NtCs8NwYtU1Mohg_4core3anyDNtB5_3AnyNtNtB7_6marker4SendEL_NtNtB7_3fmt5Debug3fmt",
      "<dyn core::any::Any + core::marker::Send as core::fmt::Debug>::fmt" },
    { "_RINvMs_NtCsgVdDwkt78Uu_4jiff5errorNtB5_5Error5rangeINtNtNtB7_4util8rangeint4ri32Knn3b9ac9ff_Kn3b9ac9ff_EllEB7_",
      "<jiff::error::Error>::range::<jiff::util::rangeint::ri32<-999999999, 999999999>, i32, i32>" },
    { "_RNvXss_NtCsgEmfK2I1SDS_4core3fmtuNtB5_5Debug3fmt",
      "<() as core::fmt::Debug>::fmt" },
    { "_RNvXs_NtCsdlM2EbGYIhh_9rustc_hir10intravisitzNtB4_9HirTyCtxt8hir_body",
      "<! as rustc_hir::intravisit::HirTyCtxt>::hir_body" },
    { "_ZN5alloc3vec16Vec$LT$T$C$A$GT$3len17h58d90ea39df7a084E",
      "alloc::vec::Vec<T,A>::len" },
    { "_ZN4core5slice4iter13Iter$LT$T$GT$3new17h343fb642d4d6c757E",
      "core::slice::iter::Iter<T>::new" },
    { "_ZN107_$LT$std..collections..hash..map..Values$LT$K$C$V$GT$$u20$as$u20$core..iter..traits..iterator..Iterator$GT$4fold28_$u7b$$u7b$closure$u7d$$u7d$17hf5a4644571e5854eE",
      "<std::collections::hash::map::Values<K,V> as core::iter::traits::iterator::Iterator>::fold::{{closure}}" },
    { "_ZN51_$LT$T$u20$as$u20$core..borrow..Borrow$LT$T$GT$$GT$6borrow17h5356be5e2c5ceddfE",
      "<T as core::borrow::Borrow<T>>::borrow" },
    { "_RNvCs8LySKWCQLzQ_12rustc_public15external_crates.llvm.4152761829385512075",
      "rustc_public::external_crates" },
    { "_ZN5leaky4make17h12e2c25519b93806E",
      "leaky::make" },
};

Test(rustdemangle, names_as_rustc_demangle_writes_them)
{
    char out[1024];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cr_assert(ms_rust_demangle(names[i].mangled, out, sizeof out), "%s", names[i].mangled);
        cr_expect_str_eq(out, names[i].want, "%s", names[i].mangled);
    }
}

Test(rustdemangle, other_names_are_left_alone)
{
    static const char *const not_rust[] = {
        "main", "", "_", "_R", "_ZN", "_Z3fooi",
        "_ZN3foo3barEv",                          /* C++: no hash component */
        "_ZN3foo3barE",
        "_ZN3std2rt10lang_start17h0123456789abcdeE",   /* hash one digit short */
        "_ZN3std2rt10lang_start17h0123456789abcdefgE", /* not hex */
        "_ZN3std2rt17h0123456789abcdefE3fooE",          /* hash not last */
        "_ZN10short17h0123456789abcdefE",               /* length past the end */
        "_RNvC",                                        /* truncated v0 */
        "_RNvCs8LySKWCQLzQ_12rustc_public15external_crat",
        "_RNvCs8LySKWCQLzQ_12rustc_public15external_crates$", /* not a v0 character */
        "_R0NvC1a1b",                                   /* an encoding version */
        "_RNvC1a1bB9_",                                 /* backref not backwards */
        "_RNvCu3abc1b",                                 /* punycode: not decoded */
        "_RINvC1a1bKe616263_E",                         /* a str constant */
    };
    char out[256];
    for (size_t i = 0; i < sizeof not_rust / sizeof not_rust[0]; i++)
        cr_expect_not(ms_rust_demangle(not_rust[i], out, sizeof out), "%s", not_rust[i]);
    cr_expect_not(ms_rust_demangle(NULL, out, sizeof out));
}

Test(rustdemangle, result_must_fit)
{
    const char *m = "_RNCNvNtCsjrHSEGnQ3l9_3std5alloc8rust_oom0B5_";
    const char *want = "std::alloc::rust_oom::{closure#0}";
    char out[64];
    size_t n = strlen(want);
    cr_assert(ms_rust_demangle(m, out, n + 1));
    cr_assert_str_eq(out, want);
    cr_assert_not(ms_rust_demangle(m, out, n));
    cr_assert_not(ms_rust_demangle(m, out, 1));
    cr_assert_not(ms_rust_demangle(m, out, 0));
}

/* <base-62-number> of x, as v0 writes backreference positions. */
static size_t base62(size_t x, char *to)
{
    static const char d[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char t[16];
    size_t n = 0, k = 0;
    if (x == 0) {
        to[0] = '_';
        return 1;
    }
    for (x--; ; x /= 62) {
        t[n++] = d[x % 62];
        if (x < 62)
            break;
    }
    while (n > 0)
        to[k++] = t[--n];
    to[k++] = '_';
    return k;
}

/* Type k is the pair (type k-1, type k-1), each a backreference: 2^40 leaves. */
Test(rustdemangle, exponential_backreferences_give_up_quickly)
{
    static char sym[4096];
    size_t n = 0;
    n += (size_t)sprintf(sym, "_RINvC1a1b");
    size_t prev = n - 2;                       /* positions count from after "_R" */
    sym[n++] = 'u';
    for (int k = 0; k < 40; k++) {
        size_t here = n - 2;
        sym[n++] = 'T';
        for (int twice = 0; twice < 2; twice++) {
            sym[n++] = 'B';
            n += base62(prev, sym + n);
        }
        sym[n++] = 'E';
        prev = here;
    }
    sym[n++] = 'E';
    sym[n] = '\0';
    static char out[1 << 20];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_not(ms_rust_demangle(sym, out, sizeof out));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(s, 5.0, "took %.3f s", s);   /* unbounded, it would run for hours */
    /* Three levels of the same shape are small and fine. */
    char small[256];
    cr_assert(ms_rust_demangle("_RINvC1a1buTB7_B7_ETB8_B8_ETBg_Bg_EE", small, sizeof small));
    cr_assert_str_eq(small, "a::b::<(), ((), ()), (((), ()), ((), ())), ((((), ()), ((), ())), "
                            "(((), ()), ((), ())))>");
}
