/* SPDX-License-Identifier: MIT */
/*
 * "Only one thread exists": the hooks' atomic read-modify-writes (the serial number, the
 * live-block bitmap, the trace counters, spinlocks) are plain loads and stores then.
 * A lock-prefixed instruction costs ~20 cycles even uncontended; the debug layer paid three
 * per malloc/free pair (perf, python3 under MEMSHIM_MALLOC=debug: 8% of the run).
 *
 * The flag is glibc's own __libc_single_threaded (2.32+), which glibc's malloc trusts the
 * same way: true until the process's first pthread_create, which clears it before the new
 * thread exists (so a thread that reads true is alone, and its plain stores are published
 * to the new thread by pthread_create), and never set again.  A program that makes threads
 * with a raw clone() breaks glibc's malloc as much as this.
 *
 * Never use it to skip a check: only to drop the lock prefix of an update that is atomic
 * for the sake of other threads.
 */
#ifndef MS_SOLO_H
#define MS_SOLO_H

#include <stdbool.h>
#include <sys/single_threaded.h>

static inline bool ms_solo(void)
{
    return __builtin_expect(__libc_single_threaded != 0, 1);
}

#endif
