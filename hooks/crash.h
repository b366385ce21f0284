/* SPDX-License-Identifier: MIT */
/*
 * What a debug mode says about a SIGSEGV or SIGBUS: the signal and its address in words,
 * and what the registers of the crashing instruction suggest (see crash.c).
 */
#ifndef MS_CRASH_H
#define MS_CRASH_H

#include <signal.h>
#include <stdint.h>

#include "fmt.h"

/* The report's heading and facts, for the signal sig with info si and context uctx (the
 * handler's third argument; NULL: none).  Returns the pc of the crashing instruction (0
 * when the context does not give it), where the backtrace should start. */
uintptr_t ms_crash_describe(struct ms_out *o, int sig, const siginfo_t *si, const void *uctx);

/* The general registers of the context (names and values), at most max; how many. */
int ms_crash_registers(const void *uctx, const char **names, uint64_t *values, int max);

/* "Segmentation fault", "Bus error": the fatal line's message. */
const char *ms_crash_signal_name(int sig);

#endif
