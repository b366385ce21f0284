/* SPDX-License-Identifier: MIT */
/*
 * Rust symbol names for people, as rustc-demangle's alternate form ("{:#}") writes them:
 * no crate disambiguators, no trailing hash.  Both of rustc's manglings: the legacy one
 * (an Itanium-like "_ZN...17h<16 hex digits>E", which the C++ runtime's demangler would
 * leave with its hash and "$LT$"-style escapes) and v0 ("_R...", the default of the Rust
 * toolchains on these machines for the standard library).
 */
#ifndef MS_RUSTDEMANGLE_H
#define MS_RUSTDEMANGLE_H

#include <stdbool.h>
#include <stddef.h>

/* Write sym's demangled form to out (NUL-terminated) and return true; false when sym is
 * not a Rust symbol, is malformed, uses a form this demangler does not know, or the result
 * does not fit in cap bytes (out's contents are then unspecified).  Never allocates, never
 * recurses without bound: usable from any context. */
bool ms_rust_demangle(const char *sym, char *out, size_t cap);

#endif
