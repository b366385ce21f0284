/* SPDX-License-Identifier: MIT */
/*
 * The crash report's facts (see crash.h).  The debug layer writes known bytes (SPEC 3.1):
 * DEADBYTE over freed blocks, CLEANBYTE over fresh ones, FORBIDDENBYTE around each.  A
 * pointer loaded from one of those areas is made of that byte, and dereferencing it is
 * what crashes; so a register of the faulting instruction that holds such a value (give or
 * take a field offset) says where the pointer was read: a freed block, a field nobody set,
 * a read past a block's end.  Visual C++ users read 0xDDDDDDDD the same way; ASan's
 * "high value address" hint is the same idea.  The 64-bit patterns are not canonical
 * addresses, so the kernel reports a general protection fault without an address: the
 * registers are the only witness.
 *
 * Runs in a signal handler: reads the siginfo and the ucontext only, never memory they
 * point to; never allocates.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* REG_* names of ucontext's registers */
#endif
#include "crash.h"

#include <stdbool.h>
#include <stddef.h>
#include <ucontext.h>

#include "debug_layout.h"

/* A pointer made of a pattern, plus or minus this much (a field offset, an index): still
 * that pattern.  Real heap, stack and image addresses lie far from all three. */
#define NEAR ((uint64_t)1 << 16)

struct pattern {
    uint8_t byte;
    const char *name;
    const char *what;   /* what the byte is for, and what its presence suggests */
};

static const struct pattern patterns[] = {
    {MS_DEADBYTE, "DEADBYTE", "fills freed blocks: most likely a value read from freed memory "
                              "(a use after free)"},
    {MS_CLEANBYTE, "CLEANBYTE", "fills new blocks: most likely a value read from a block "
                                "nothing wrote yet (uninitialised memory)"},
    {MS_FORBIDDENBYTE, "FORBIDDENBYTE", "surrounds every block: most likely a value read past "
                                        "the end or before the start of a block"},
};

static bool near(uint64_t v, uint64_t centre)
{
    return v - (centre - NEAR) <= 2 * NEAR;
}

/* The pattern v is made of (64 bits, or 32 when narrow is allowed), or NULL. */
static const struct pattern *pattern_of(uint64_t v, bool narrow)
{
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        uint64_t b = patterns[i].byte;
        if (near(v, b * 0x0101010101010101u) || (narrow && near(v, b * 0x01010101u)))
            return &patterns[i];
    }
    return NULL;
}

/* " 0x<v>: <NAME> (0x<byte>) <what>.": the end of a fact about a value made of p. */
static void pattern_tail(struct ms_out *o, uint64_t v, const struct pattern *p)
{
    ms_out_str(o, " 0x");
    ms_out_hex(o, v, 1);
    ms_out_str(o, ": ");
    ms_out_str(o, p->name);
    ms_out_str(o, " (0x");
    ms_out_hex(o, p->byte, 2);
    ms_out_str(o, ") ");
    ms_out_str(o, p->what);
    ms_out_str(o, ".\n");
}

/* The machine context: the pc, the general registers worth reading and whether the
 * access was a write (-1: not known). */
struct context {
    uintptr_t pc;
    uintptr_t sp;                     /* 0: not known */
    int write;
    int nregs;
    const char *names[32];
    uint64_t values[32];
};

static void read_context(const void *uctx, struct context *c)
{
    c->pc = 0;
    c->sp = 0;
    c->write = -1;
    c->nregs = 0;
    if (uctx == NULL)
        return;
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    static const struct {
        const char *name;
        int reg;
    } regs[] = {
        {"rax", REG_RAX}, {"rbx", REG_RBX}, {"rcx", REG_RCX}, {"rdx", REG_RDX},
        {"rsi", REG_RSI}, {"rdi", REG_RDI}, {"rbp", REG_RBP}, {"r8", REG_R8},
        {"r9", REG_R9},   {"r10", REG_R10}, {"r11", REG_R11}, {"r12", REG_R12},
        {"r13", REG_R13}, {"r14", REG_R14}, {"r15", REG_R15},
    };
    const greg_t *g = uc->uc_mcontext.gregs;
    c->pc = (uintptr_t)g[REG_RIP];
    c->sp = (uintptr_t)g[REG_RSP];
    if (g[REG_TRAPNO] == 14)          /* a page fault: bit 1 of its error code is "write" */
        c->write = (g[REG_ERR] & 2) != 0;
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        c->names[c->nregs] = regs[i].name;
        c->values[c->nregs++] = (uint64_t)g[regs[i].reg];
    }
#elif defined(__aarch64__)
    static const char *const names[] = {
        "x0",  "x1",  "x2",  "x3",  "x4",  "x5",  "x6",  "x7",  "x8",  "x9",
        "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19",
        "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
    };
    c->pc = (uintptr_t)uc->uc_mcontext.pc;
    c->sp = (uintptr_t)uc->uc_mcontext.sp;
    for (int i = 0; i < 30; i++) {
        c->names[c->nregs] = names[i];
        c->values[c->nregs++] = uc->uc_mcontext.regs[i];
    }
#else
    (void)uc;
#endif
}

/* "    Register rax" or "    Registers rax, rdi": the registers whose value lies in
 * [lo, hi), each with " (p+N)" after it when p is not 0; returns how many (nothing is
 * printed for none). */
static int list_registers(struct ms_out *o, const struct context *c, uint64_t lo,
                          uint64_t hi, uintptr_t p)
{
    int count = 0;
    for (int i = 0; i < c->nregs; i++)
        count += c->values[i] >= lo && c->values[i] < hi;
    if (count == 0)
        return 0;
    ms_out_str(o, count > 1 ? "    Registers " : "    Register ");
    for (int i = 0, k = 0; i < c->nregs; i++) {
        uint64_t v = c->values[i];
        if (v < lo || v >= hi)
            continue;
        if (k++ > 0)
            ms_out_str(o, ", ");
        ms_out_str(o, c->names[i]);
        if (p == 0)
            continue;
        ms_out_str(o, v == p ? " (p" : v > p ? " (p+" : " (p-");
        if (v != p)
            ms_out_udec(o, v > p ? v - p : p - v, 0);
        ms_out_char(o, ')');
    }
    return count;
}

int ms_crash_list_registers(struct ms_out *o, const void *uctx, uintptr_t lo, uintptr_t hi,
                            uintptr_t p)
{
    struct context c;
    read_context(uctx, &c);
    return list_registers(o, &c, lo, hi, p);
}

bool ms_crash_register_in(const void *uctx, bool (*pick)(uintptr_t v, void *arg), void *arg)
{
    struct context c;
    read_context(uctx, &c);
    for (int i = 0; i < c.nregs; i++)
        if (c.values[i] >= 4096 && pick((uintptr_t)c.values[i], arg))
            return true;
    return false;
}

const char *ms_crash_signal_name(int sig)
{
    return sig == SIGBUS ? "Bus error" : sig == SIGSEGV ? "Segmentation fault" : "Fatal signal";
}

static void address_fact(struct ms_out *o, int sig, const siginfo_t *si, int write)
{
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (sig == SIGSEGV && si->si_code == SI_KERNEL && addr == 0) {
        ms_out_str(o, "    A general protection fault: a non-canonical address, which the "
                      "kernel does not report.\n");
        return;
    }
    ms_out_str(o, write == 1 ? "    A write to address " : write == 0 ? "    A read of address "
                                                                      : "    An access to address ");
    ms_out_ptr(o, (const void *)addr);
    if (sig == SIGSEGV && si->si_code == SEGV_MAPERR)
        ms_out_str(o, ", where nothing is mapped");
    else if (sig == SIGSEGV && si->si_code == SEGV_ACCERR)
        ms_out_str(o, ", which its mapping does not allow");
    else if (sig == SIGBUS && si->si_code == BUS_ADRALN)
        ms_out_str(o, ", which is misaligned");
    else if (sig == SIGBUS && si->si_code == BUS_ADRERR)
        ms_out_str(o, ", past the end of the file mapped there");
    if (addr == 0) {
        ms_out_str(o, " (a null pointer)");
    } else if (addr < NEAR) {
        ms_out_str(o, " (");
        ms_out_udec(o, addr, 0);
        ms_out_str(o, " bytes from a null pointer)");
    }
    ms_out_str(o, ".\n");
}

uintptr_t ms_crash_describe(struct ms_out *o, int sig, const siginfo_t *si, const void *uctx,
                            bool *overflow)
{
    struct context c;
    *overflow = false;
    read_context(uctx, &c);
    ms_out_str(o, "Crash at pc=");
    ms_out_ptr(o, (const void *)c.pc);
    ms_out_str(o, sig == SIGBUS ? ": SIGBUS\n" : sig == SIGSEGV ? ": SIGSEGV\n" : ": a signal\n");
    if (si->si_code <= 0) {
        /* kill() or sigqueue() from elsewhere (the shim stays quiet about a signal the
         * process raised itself): nothing faulted, the facts below would be noise. */
        ms_out_str(o, "    The signal was sent by process ");
        ms_out_udec(o, (uint64_t)si->si_pid, 0);
        ms_out_str(o, ", not caused by an access.\n");
        return c.pc;
    }
    address_fact(o, sig, si, c.write);
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (sig == SIGSEGV && c.sp != 0 && addr != 0 && addr - (c.sp - NEAR) <= 2 * NEAR) {
        /* The guard page under a thread's stack: the frame being pushed did not fit. */
        ms_out_str(o, "    The address is next to the stack pointer (");
        ms_out_ptr(o, (const void *)c.sp);
        ms_out_str(o, "): most likely a stack overflow (too deep a recursion, or too big a "
                      "local array).\n");
        *overflow = true;
        return c.pc;
    }
    const struct pattern *p = pattern_of((uint64_t)(uintptr_t)si->si_addr, true);
    bool hinted = false;
    if (p != NULL && (uintptr_t)si->si_addr != 0) {
        ms_out_str(o, "    The address is");
        pattern_tail(o, (uint64_t)(uintptr_t)si->si_addr, p);
        hinted = true;
    }
    for (int i = 0; i < c.nregs; i++) {
        p = pattern_of(c.values[i], false);
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = c.values[j] == c.values[i];
        if (p == NULL || seen)
            continue;
        /* Every register with this value, in one line. */
        int count = list_registers(o, &c, c.values[i], c.values[i] + 1, 0);
        ms_out_str(o, count > 1 ? " hold" : " holds");
        pattern_tail(o, c.values[i], p);
        hinted = true;
    }
    if (!hinted && sig == SIGSEGV)
        ms_out_str(o, "    No register holds one of memshim's fill patterns (0xdd, 0xcd, "
                      "0xfd).\n");
    return c.pc;
}
