/* SPDX-License-Identifier: MIT */
/*
 * Internal consistency checks of the core, in tiers (scudo's CHECK/DCHECK idea):
 *   MS_ASSERT(e)        debug builds only (compiled out with NDEBUG); never placed on the
 *                       malloc/free fast path, so even debug builds keep it short;
 *   MS_EXPENSIVE_CHECKS whole-structure walks (ms_core_check_invariants), compiled in only
 *                       by the meson option expensive_checks.
 * A failed check writes one line to stderr with write(2) and aborts: it means a bug in the
 * core, not in the program (user errors are the debug hooks' business).
 *
 * Never allocates or calls stdio.  Thread-safe.
 */
#ifndef MS_CHECK_H
#define MS_CHECK_H

#define MS_LIKELY(e) __builtin_expect(!!(e), 1)
#define MS_UNLIKELY(e) __builtin_expect(!!(e), 0)

_Noreturn void ms_check_fail(const char *expr, const char *file, int line);

#ifdef NDEBUG
#define MS_ASSERT(e) ((void)0)
#else
#define MS_ASSERT(e) (MS_LIKELY(e) ? (void)0 : ms_check_fail(#e, __FILE__, __LINE__))
#endif

#ifdef MS_EXPENSIVE_CHECKS
#define MS_EXPENSIVE(stmt) do { stmt; } while (0)
#else
#define MS_EXPENSIVE(stmt) do { } while (0)
#endif

#endif
