/* SPDX-License-Identifier: MIT */
/*
 * What a debug mode says about a SIGSEGV or SIGBUS: the signal and its address in words,
 * and what the registers of the crashing instruction suggest (see crash.c).
 */
#ifndef MS_CRASH_H
#define MS_CRASH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "fmt.h"

/* The report's heading and facts, for the signal sig with info si and context uctx (the
 * handler's third argument; NULL: none).  Returns the pc of the crashing instruction (0
 * when the context does not give it), where the backtrace should start.  *overflow: the
 * fault was next to the stack pointer (a stack overflow, which no heap block explains). */
uintptr_t ms_crash_describe(struct ms_out *o, int sig, const siginfo_t *si, const void *uctx,
                            bool *overflow);

/* Does pick(v, arg) accept the value v of some general register of the context (values
 * below 4096 are not offered)?  Stops at the first it accepts. */
bool ms_crash_register_in(const void *uctx, bool (*pick)(uintptr_t v, void *arg), void *arg);

/* "    Register rbx (p)" or "    Registers rbx (p), rdx (p+8)": the general registers of the
 * context that hold a value in [lo, hi), with their offsets from p; how many (0: nothing
 * printed). */
int ms_crash_list_registers(struct ms_out *o, const void *uctx, uintptr_t lo, uintptr_t hi,
                            uintptr_t p);

/* "Segmentation fault", "Bus error": the fatal line's message. */
const char *ms_crash_signal_name(int sig);

#endif
