/* SPDX-License-Identifier: MIT */
/*
 * What memshim does when the program ends: the checks and reports the options asked for,
 * at exit and on a fatal signal.
 */
#ifndef MS_FINISH_H
#define MS_FINISH_H

/* At start-up, after the stack is composed: installs the fatal-signal handlers that write
 * the snapshot (only when a snapshot was asked for). */
void ms_finish_setup(void);

/* A thread's first allocation through a debug layer (its on_new_thread): its alternate
 * signal stack, when memshim reports crashes and the thread has none, taken back at its
 * exit. */
void ms_finish_arm_thread(void);

/* At exit (the library's destructor): debug checks, tracemalloc report, snapshot, pymalloc
 * statistics, then the leak check, which may end the process with MEMSHIM_LEAKS_EXITCODE. */
void ms_finish_at_exit(void);

#endif
