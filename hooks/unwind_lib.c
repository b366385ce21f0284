/* SPDX-License-Identifier: MIT */
/*
 * libunwind, loaded at run time (see unwind_lib.h).
 *
 * State: ms_unw, written once under load_lock and published by `loaded` (release); read
 * without a lock after an acquire of `loaded`.
 */
#include "unwind_lib.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

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
