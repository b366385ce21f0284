/* SPDX-License-Identifier: MIT */
/*
 * libunwind, loaded at run time (see unwind_lib.h).
 *
 * State: ms_unw, written once under load_lock and published by `loaded` (release); read
 * without a lock after an acquire of `loaded`.
 */
#include "unwind_lib.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct ms_unwind_lib ms_unw;

struct ms_unwind_lib_state {
    pthread_mutex_t load_lock;
    int loaded;   /* ms_unw complete */
    int missing;  /* dlopen or dlsym failed: never tried again */
};

static struct ms_unwind_lib_state lib_state = { .load_lock = PTHREAD_MUTEX_INITIALIZER };

/* libunwind's names are macros (unw_step is _ULx86_64_step on this architecture): the
 * strings come from the same header the calls are typed by. */
#define MS_UNW_NAME2(x) #x
#define MS_UNW_NAME(x) MS_UNW_NAME2(x)

static int resolve(void *lib, void *slot, const char *name)
{
    void *sym = dlsym(lib, name);
    if (sym == NULL)
        return -1;
    *(void **)slot = sym;
    return 0;
}

/* The loader is between changes: no object half added or half removed.  At start-up this
 * holds from the moment the first constructor runs; a malloc inside dlopen's mapping or
 * relocation of an object sees RT_ADD. */
static int loader_consistent(void)
{
    return __atomic_load_n(&_r_debug.r_state, __ATOMIC_ACQUIRE) == RT_CONSISTENT;
}

/* Descriptors libunwind's pipe must stay clear of: a program's own fixed numbers and the
 * lowest ones its open() returns. */
#define FD_MARK 960

/* libunwind opens a pipe when it first initialises (x86-64's memory validation; it stays
 * open for the process's life) and gets the lowest free descriptors: 3 and 4 in a fresh
 * process.  The program then finds them taken: its first open() no longer returns 3, a
 * listing of its descriptors shows two more (CPython's test_subprocess and test_posix
 * failed on that), and a script's `exec 3<file` puts the user's file where libunwind keeps
 * its pipe, which it would then read a byte from, write to and close when it validates an
 * address.  So it initialises while every free descriptor below FD_MARK (half the limit
 * when that is low) holds a placeholder, and its pipe lands above them: about 2,000 system
 * calls, once.  And only when the first stack is walked: a debug-mode run that never
 * reports anything never has the pipe. */
void ms_unwind_lib_start(void)
{
    const struct ms_unwind_lib *u = &ms_unw;
    int held[FD_MARK];
    int n = 0, mark = FD_MARK;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < FD_MARK + 64)
        mark = (int)(rl.rlim_cur / 2);
    int fd = open("/dev/null", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat null;
    if (fd >= 0 && fstat(fd, &null) != 0) {
        close(fd);
        fd = -1;
    }
    while (fd >= 0 && fd < mark && n < FD_MARK) {
        held[n++] = fd;
        fd = fcntl(held[0], F_DUPFD_CLOEXEC, 0);
    }
    if (fd >= 0)                       /* the first at or above the mark */
        close(fd);
    unw_context_t uc;
    unw_cursor_t c;
    u->getcontext(&uc);
    u->init_local(&c, &uc);
    /* Another thread may have put a descriptor of its own on one of these numbers
     * meanwhile (dup2): only what is still the placeholder is closed. */
    while (n > 0) {
        struct stat st;
        fd = held[--n];
        if (fstat(fd, &st) == 0 && st.st_dev == null.st_dev && st.st_ino == null.st_ino
            && (fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK))
            close(fd);
    }
}

static enum ms_unwind_lib_status load_locked(void)
{
    if (lib_state.loaded)
        return MS_UNWIND_LIB_LOADED;
    if (lib_state.missing)
        return MS_UNWIND_LIB_MISSING;
    if (!loader_consistent())
        return MS_UNWIND_LIB_LATER;
    void *lib = dlopen(MS_UNWIND_LIB_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    struct ms_unwind_lib u;
    if (lib == NULL
        || resolve(lib, &u.backtrace, "unw_backtrace") != 0
        || resolve(lib, &u.getcontext, MS_UNW_NAME(unw_tdep_getcontext)) != 0
        || resolve(lib, &u.init_local, MS_UNW_NAME(unw_init_local)) != 0
        || resolve(lib, &u.step, MS_UNW_NAME(unw_step)) != 0
        || resolve(lib, &u.get_reg, MS_UNW_NAME(unw_get_reg)) != 0
        || resolve(lib, &u.set_caching_policy, MS_UNW_NAME(unw_set_caching_policy)) != 0
        || resolve(lib, &u.local_addr_space, MS_UNW_NAME(unw_local_addr_space)) != 0) {
        lib_state.missing = 1;
        return MS_UNWIND_LIB_MISSING;
    }
    ms_unw = u;
    __atomic_store_n(&lib_state.loaded, 1, __ATOMIC_RELEASE);
    return MS_UNWIND_LIB_LOADED;
}

enum ms_unwind_lib_status ms_unwind_lib_load(void)
{
    if (__atomic_load_n(&lib_state.loaded, __ATOMIC_ACQUIRE))
        return MS_UNWIND_LIB_LOADED;
    /* Never waits: the thread loading may itself wait in dlopen for the loader's lock,
     * held by a thread whose malloc came here. */
    if (pthread_mutex_trylock(&lib_state.load_lock) != 0)
        return MS_UNWIND_LIB_LATER;
    enum ms_unwind_lib_status s = load_locked();
    pthread_mutex_unlock(&lib_state.load_lock);
    return s;
}
