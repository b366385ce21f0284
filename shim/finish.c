/* SPDX-License-Identifier: MIT */
/*
 * The end of the program: debug checks of every live and quarantined block, the
 * tracemalloc text report, the JSON snapshot, the pymalloc statistics and the leak report,
 * in that order (a corrupted block aborts before anything else is read; the leak report may
 * end the process, so it comes last).  Also the end by a fatal signal: in the debug modes a
 * SIGSEGV or SIGBUS gets the crash report (hooks/crash.c), and with MEMSHIM_SNAPSHOT any
 * fatal signal gets the snapshot; then the process dies of the signal with its usual status
 * (and core file: a fault is left to happen again with the default action, so the core
 * shows the crashing instruction, not memshim's handler).  A handler the program had
 * already is never replaced, and one it installs later replaces memshim's.
 *
 * Files named by the environment are created without following a symlink at that path
 * (O_NOFOLLOW) and never in a set-user-ID process (options.c leaves the path empty there).
 * Never: allocates through the layers (whatever may allocate runs under the guard, so it
 * goes to the C library).  Not on any hot path.
 */
#include "finish.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debug.h"
#include "fmt.h"
#include "guard.h"
#include "leak.h"
#include "os.h"
#include "pymalloc.h"
#include "snapshot.h"
#include "stack.h"
#include "trace.h"

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

/* Opens the file a path option names ("-": stderr for the report).  -1 on failure, after
 * one line on stderr saying why (the program's run is not otherwise affected). */
static int open_output(const char *pattern, const char *variable)
{
    if (strcmp(pattern, "-") == 0)
        return dup(2);
    char path[4200];
    if (ms_snapshot_path(path, sizeof path, pattern, (long)getpid()) != 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        struct ms_out o;
        ms_out_init(&o, 2);
        ms_out_str(&o, "memshim: cannot write ");
        ms_out_str(&o, variable);
        ms_out_str(&o, " file ");
        ms_out_str(&o, path);
        ms_out_str(&o, ": ");
        ms_out_str(&o, err == ELOOP ? "it is a symbolic link" : strerror(err));
        ms_out_char(&o, '\n');
        ms_out_flush(&o);
    }
    return fd;
}

static void write_snapshot(enum ms_snapshot_flags flags)
{
    int fd = open_output(ms_shim.options.snapshot, "MEMSHIM_SNAPSHOT");
    if (fd < 0)
        return;
    ms_snapshot_write(fd, flags);
    close(fd);
}

static bool reports_crashes(int sig)
{
    return ms_shim.options.debug && (sig == SIGSEGV || sig == SIGBUS);
}

/* A signal the process raised itself is a deliberate raise() or, nearly always, another
 * handler passing on a crash it has reported (Python's faulthandler re-raises): the
 * fault's address and registers are gone, and a second report would only change the
 * stderr that program promised (test_faulthandler checks it is empty). */
static bool raised_here(const siginfo_t *si)
{
    return si != NULL && si->si_code <= 0 && si->si_pid == getpid();
}

static bool writes_snapshot(void)
{
    return ms_shim.options.tracemalloc != 0 && ms_shim.options.snapshot[0] != '\0';
}

/* sig's action becomes the default one; the previous one goes to *old (if not NULL). */
static bool default_action(int sig, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, old) == 0;
}

/* Let sig end the process with its default action: a fault (kernel-sent, si_code > 0) by
 * returning, so that the instruction runs again and faults for good (the core file then
 * shows it, not this handler); anything else by raising it again. */
static void die_of(int sig, const siginfo_t *si)
{
    default_action(sig, NULL);
    if (si == NULL || si->si_code <= 0)
        raise(sig);
}

/* A report that hangs (a lock the crash left held, deep in a library the report uses)
 * must not turn a crash into a hang: SIGALRM's default action ends the process if the
 * report takes longer than this (symbolising a big program's DWARF takes seconds).  The
 * program's own alarm and SIGALRM action come back after the report, for the rare fault
 * that does not happen again. */
#define REPORT_DEADLINE_S 30

static void report_with_deadline(int sig, siginfo_t *si, void *uctx)
{
    struct sigaction old_action;
    sigset_t alrm, old_mask;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    bool armed = default_action(SIGALRM, &old_action);
    if (armed)
        sigprocmask(SIG_UNBLOCK, &alrm, &old_mask);
    unsigned old_alarm = armed ? alarm(REPORT_DEADLINE_S) : 0;
    ms_debug_crash_report(sig, si, uctx);
    if (armed) {
        alarm(old_alarm);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        sigaction(SIGALRM, &old_action, NULL);
    }
}

/* One thread writes the report; others that crash meanwhile (a freed object several threads
 * use) wait for the process to die rather than kill it halfway through the report, which
 * SA_RESETHAND's default action would do.  A fault inside the report itself finds its own
 * thread already here and lets the default action end the process. */
static void on_fatal_signal(int sig, siginfo_t *si, void *uctx)
{
    static atomic_int handling;
    static _Thread_local bool here;
    int saved_errno = errno;
    if (here) {
        errno = saved_errno;
        die_of(sig, si);
        return;
    }
    here = true;
    if (atomic_exchange(&handling, 1) != 0) {
        for (;;)
            pause();
    }
    if (reports_crashes(sig) && !raised_here(si))
        report_with_deadline(sig, si, uctx);
    /* Symbols are not looked up here (libdw is not async-signal-safe): raw pcs, which the
     * report tool resolves from the modules' paths and offsets. */
    if (writes_snapshot())
        write_snapshot(MS_SNAPSHOT_RAW);
    errno = saved_errno;
    die_of(sig, si);
}

/* The crash report of a stack overflow needs a stack to run on: every thread that
 * allocates gets an alternate one, unless it has one (the thread that sets memshim up at
 * once, the others at their first allocation through a debug layer).  Its pages are
 * touched only by a crash; a guard page under it stops a report that overflows it too.
 * A thread's goes back at its exit (kept for the next thread, up to SPARE_STACKS). */
#define ALT_STACK_BYTES ((size_t)256 << 10)
#define SPARE_STACKS 16

static struct {
    bool handler_installed;          /* a SIGSEGV report is possible at all */
    pthread_once_t once;
    pthread_key_t key;               /* its destructor takes a thread's stack back */
    bool key_ok;
    pthread_mutex_t lock;            /* spare (only tried, never waited for) */
    void *spare[SPARE_STACKS];       /* mappings (guard page first) */
    int nspare;
} alt = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

/* A mapping with the guard page first, or NULL. */
static void *map_alternate_stack(void)
{
    /* Only ever tried: a fork child whose parent had another thread in here finds the lock
     * held for good, and then maps and unmaps without the spares. */
    void *m = NULL;
    if (pthread_mutex_trylock(&alt.lock) == 0) {
        m = alt.nspare > 0 ? alt.spare[--alt.nspare] : NULL;
        pthread_mutex_unlock(&alt.lock);
    }
    if (m != NULL)
        return m;
    size_t page = ms_os_page_size();
    m = ms_os_map(ALT_STACK_BYTES + page);
    if (m != NULL && mprotect(m, page, PROT_NONE) != 0) {
        ms_os_unmap(m, ALT_STACK_BYTES + page);
        m = NULL;
    }
    return m;
}

static void unmap_alternate_stack(void *m)
{
    bool kept = false;
    if (pthread_mutex_trylock(&alt.lock) == 0) {
        kept = alt.nspare < SPARE_STACKS;
        if (kept)
            alt.spare[alt.nspare++] = m;
        pthread_mutex_unlock(&alt.lock);
    }
    if (!kept)
        ms_os_unmap(m, ALT_STACK_BYTES + ms_os_page_size());
}

/* The mapping now this thread's alternate stack, or NULL (it has one already, or none
 * could be had). */
static void *give_alternate_stack(void)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || (cur.ss_flags & SS_DISABLE) == 0)
        return NULL;
    int saved_errno = errno;
    char *m = map_alternate_stack();
    if (m != NULL) {
        stack_t ss = {.ss_sp = m + ms_os_page_size(), .ss_size = ALT_STACK_BYTES};
        if (sigaltstack(&ss, NULL) != 0) {
            unmap_alternate_stack(m);
            m = NULL;
        }
    }
    errno = saved_errno;
    return m;
}

/* Thread exit.  A program that set a stack of its own since keeps it. */
static void take_alternate_stack_back(void *m)
{
    stack_t cur, off = {.ss_flags = SS_DISABLE};
    if (sigaltstack(NULL, &cur) != 0 || (cur.ss_flags & SS_ONSTACK) != 0)
        return;
    bool ours = (cur.ss_flags & SS_DISABLE) == 0
                && cur.ss_sp == (char *)m + ms_os_page_size();
    if (ours && sigaltstack(&off, NULL) != 0)
        return;
    unmap_alternate_stack(m);
}

static void make_key(void)
{
    alt.key_ok = pthread_key_create(&alt.key, take_alternate_stack_back) == 0;
}

void ms_finish_arm_thread(void)
{
    if (!__atomic_load_n(&alt.handler_installed, __ATOMIC_ACQUIRE))
        return;
    pthread_once(&alt.once, make_key);
    if (!alt.key_ok)
        return;
    void *m = give_alternate_stack();
    if (m != NULL && pthread_setspecific(alt.key, m) != 0)
        take_alternate_stack_back(m);
}

void ms_finish_setup(void)
{
    /* The setting-up thread's stack stays for the process's life: no key needed. */
    if (reports_crashes(SIGSEGV))
        give_alternate_stack();
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        int sig = fatal_signals[i];
        if (!reports_crashes(sig) && !writes_snapshot())
            continue;
        struct sigaction sa, old;
        if (sigaction(sig, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) != 0
            || old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fatal_signal;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) == 0 && reports_crashes(sig))
            __atomic_store_n(&alt.handler_installed, true, __ATOMIC_RELEASE);
    }
}

static void write_report(void)
{
    int fd = open_output(ms_shim.options.report, "MEMSHIM_REPORT");
    if (fd < 0)
        return;
    struct ms_out o;
    ms_out_init(&o, fd);
    ms_trace_report(&o, 10);
    ms_out_flush(&o);
    close(fd);
}

void ms_finish_at_exit(void)
{
    const struct ms_options *opt = &ms_shim.options;
    if (opt->debug)
        ms_debug_at_exit();
    bool tracing = opt->tracemalloc && ms_trace_is_tracing();
    if (tracing && opt->report[0] != '\0')
        write_report();
    if (tracing && opt->snapshot[0] != '\0')
        write_snapshot(MS_SNAPSHOT_SYMBOLS);
    /* As CPython: the statistics only when pymalloc is in use. */
    if (opt->mallocstats && opt->base != MS_BASE_MALLOC)
        ms_pymalloc_print_stats(2);
    /* Programs that close stderr before exit (coreutils does) cannot be told about leaks;
     * changing their exit status without a word would be worse than saying nothing. */
    if (tracing && opt->leaks && fcntl(2, F_GETFD) != -1) {
        struct ms_out o;
        ms_out_init(&o, 2);
        /* Not from here: o's buffer is not written yet and holds stale words of earlier
         * calls, among them the address of the program's last block, which then passed for
         * reachable (a leak of the last allocation before exit went unreported). */
        long leaked = ms_leak_check(&o, NULL, (uintptr_t)__builtin_frame_address(0));
        ms_out_flush(&o);
        if (leaked > 0 && opt->leaks_exitcode != 0) {
            /* exit() flushes stdio after the destructors; _exit would lose the program's
             * buffered output, so flush it here (under the guard: stdio may allocate). */
            ms_guard_enter();
            fflush(NULL);
            ms_guard_leave();
            _exit(opt->leaks_exitcode);
        }
    }
}
