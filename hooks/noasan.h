/* SPDX-License-Identifier: MIT */
/*
 * MS_NO_ASAN: for the functions that read memory the program never handed to memshim on
 * purpose - the leak scanner's reads of data segments and stacks, the stack memo's reads of
 * return-address slots - redzones between globals and stack objects included.  Not a bug,
 * so AddressSanitizer builds must not check them (LSan's own scanner is exempt the same way).
 */
#ifndef MS_NOASAN_H
#define MS_NOASAN_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MS_NO_ASAN __attribute__((no_sanitize("address")))
#endif
#endif
#if !defined(MS_NO_ASAN) && defined(__SANITIZE_ADDRESS__)
#define MS_NO_ASAN __attribute__((no_sanitize_address))
#endif
#ifndef MS_NO_ASAN
#define MS_NO_ASAN
#endif

#endif
