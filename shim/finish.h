/* SPDX-License-Identifier: MIT */
/*
 * What memshim does when the program ends: the checks and reports the options asked for,
 * at exit and on a fatal signal.
 */
#ifndef MS_FINISH_H
#define MS_FINISH_H

#include <stdbool.h>

/* At start-up, after the stack is composed: installs the fatal-signal handlers that write
 * the snapshot (only when a snapshot was asked for). */
void ms_finish_setup(void);

/* Has this thread been given what a crash report needs (its alternate signal stack)? */
extern _Thread_local bool ms_finish_thread_armed;

/* A thread's first allocation through a debug stack: its alternate signal stack, when
 * memshim reports crashes and the thread has none, taken back at its exit. */
void ms_finish_arm_thread(void);

static inline void ms_finish_arm(void)
{
    if (__builtin_expect(!ms_finish_thread_armed, 0))
        ms_finish_arm_thread();
}

/* At exit (the library's destructor): debug checks, tracemalloc report, snapshot, pymalloc
 * statistics, then the leak check, which may end the process with MEMSHIM_LEAKS_EXITCODE. */
void ms_finish_at_exit(void);

#endif
