/* SPDX-License-Identifier: MIT */
/*
 * libunwind's signal masking, hoisted out of its inner loop (see unwind_mask.h).
 *
 * State: the redirect (written once under ms_unwind_init's pthread_once, read-only after)
 * and each thread's open region.
 */
#include "unwind_mask.h"

#include <elf.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addrkind.h"
#include "elfdyn.h"
#include "unwind_lib.h"

struct ms_unwind_mask_state {
    int redirected;
};

struct ms_unwind_mask_region {
    int blocked; /* set only while every signal really is blocked */
    sigset_t saved;
    unsigned long elided; /* libunwind's calls answered without a system call */
};

static struct ms_unwind_mask_state mask_state;
static _Thread_local struct ms_unwind_mask_region mask_region;

/* libunwind calls it from its thread-exit destructors too, after a ThreadSanitizer runtime
 * has let go of the thread (its function-entry hook then crashed): no instrumentation. */
#if defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define UNINSTRUMENTED __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#ifndef UNINSTRUMENTED
#define UNINSTRUMENTED __attribute__((no_sanitize_thread))
#endif

/* What libunwind calls instead of sigprocmask. */
static UNINSTRUMENTED int region_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (!mask_region.blocked)
        return sigprocmask(how, set, old);
    if (old != NULL)
        *old = mask_region.saved;
    mask_region.elided++;
    return 0;
}

unsigned long ms_unwind_mask_elided(void)
{
    return mask_region.elided;
}

void ms_unwind_mask_begin(void)
{
    sigset_t all;
    if (!mask_state.redirected)
        return;
    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &mask_region.saved) != 0)
        return;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    mask_region.blocked = 1;
}

void ms_unwind_mask_end(void)
{
    if (!mask_region.blocked)
        return;
    /* Cleared while still blocked: no handler can run and see it set with signals open. */
    mask_region.blocked = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    sigprocmask(SIG_SETMASK, &mask_region.saved, NULL);
}

/* --- finding and writing libunwind's PLT slot for sigprocmask --------------------------- */

struct plt_search {
    uintptr_t inside; /* an address in libunwind's code */
    uintptr_t slot;
    uintptr_t relro_lo, relro_hi;
};

static bool is_sigprocmask_slot(const struct ms_elfdyn *t, uint32_t sym, uintptr_t offset,
                                void *arg)
{
    struct plt_search *s = arg;
    if (strcmp(ms_elfdyn_name(t, sym), "sigprocmask") != 0)
        return false;
    s->slot = t->base + offset;
    return true;
}

static int find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct plt_search *s = arg;
    if (!ms_addrkind_module_holds(info, s->inside))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO) {
            s->relro_lo = info->dlpi_addr + ph->p_vaddr;
            s->relro_hi = s->relro_lo + ph->p_memsz;
        }
    }
    /* A non-PIE program's call of unw_step may have made its own PLT entry the function's
     * address: only libunwind's slot is ever written. */
    struct ms_elfdyn t;
    if (info->dlpi_name != NULL && strstr(info->dlpi_name, "libunwind")
        && ms_elfdyn_read(info, &t))
        ms_elfdyn_each_reloc(&t, true, is_sigprocmask_slot, s);
    return 1;
}

/* Writes the slot, opening a read-only (RELRO) page for the time of the store. */
static int write_slot(const struct plt_search *s)
{
    int (*fn)(int, const sigset_t *, sigset_t *) = region_sigprocmask;
    int relro = s->slot >= s->relro_lo && s->slot < s->relro_hi;
    long page = sysconf(_SC_PAGESIZE);
    void *lo = (void *)(s->slot & ~(uintptr_t)(page - 1));
    if (relro && mprotect(lo, (size_t)page, PROT_READ | PROT_WRITE) != 0)
        return -1;
    void *value;
    memcpy(&value, &fn, sizeof value);
    __atomic_store_n((void **)s->slot, value, __ATOMIC_RELEASE);
    if (relro)
        mprotect(lo, (size_t)page, PROT_READ);
    return 0;
}

int ms_unwind_mask_init(void)
{
    struct plt_search s = { 0 };
    if (mask_state.redirected)
        return 0;
    if (ms_unw.step == NULL)
        return -1;
    memcpy(&s.inside, &ms_unw.step, sizeof s.inside);
    dl_iterate_phdr(find_module, &s);
    if (s.slot == 0 || write_slot(&s) != 0)
        return -1;
    mask_state.redirected = 1;
    return 0;
}
