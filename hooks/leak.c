/* SPDX-License-Identifier: MIT */
/*
 * The leak scan (see leak.h).
 *
 * 1. Copy the live traces (domain 0: heap blocks) into a mapped array, sorted by address
 *    (heapsort: in place, no malloc, O(n log n) for millions of blocks).
 * 2. Mark: every aligned word of every root that points into a block (interior pointers
 *    count, as in LeakSanitizer) marks it and queues it; queued blocks are scanned the same
 *    way until the queue is empty.  Each block is queued at most once.
 * 3. Report the unmarked blocks grouped by traceback id, biggest total first.
 */
#include "leak.h"

#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addrkind.h"
#include "guard.h"
#include "noasan.h"
#include "os.h"
#include "procfile.h"
#include "trace.h"
#include "traceback.h"

/* Memory the shim's own allocator serves the program from (pymalloc's arenas): its free
 * blocks hold stale pointers, so it is never a root.  NULL: none. */
static bool (*heap_owns)(const void *p);

void ms_leak_set_heap_owner(bool (*owns)(const void *p))
{
    heap_owns = owns;
}

struct ms_leak_block {
    uintptr_t addr;
    size_t size;
    uint32_t tb;
    uint32_t marked;
};

struct ms_leak_site {
    uint32_t tb;
    size_t bytes;
    size_t blocks;
};

struct ms_leak_scan {
    struct ms_leak_block *blocks;
    size_t n, cap;
    uint32_t *queue;
    size_t queued;
    uintptr_t lo, hi; /* [first block, end of last block): a cheap first filter */
};

/* ---- sorting without malloc ---------------------------------------------------------- */

typedef int ms_leak_before_fn(const void *a, const void *b);

static void swap_bytes(char *a, char *b, size_t size)
{
    while (size--) {
        char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void sift_down(char *base, size_t size, size_t root, size_t n, ms_leak_before_fn *before)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && before(base + child * size, base + (child + 1) * size))
            child++;
        if (!before(base + root * size, base + child * size))
            return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}

/* Sorts n elements so that before(a, b) holds for no later a and earlier b. */
static void heap_sort(void *array, size_t n, size_t size, ms_leak_before_fn *before)
{
    char *base = array;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(base, size, i, n, before);
    for (size_t end = n; end > 1; end--) {
        swap_bytes(base, base + (end - 1) * size, size);
        sift_down(base, size, 0, end - 1, before);
    }
}

static int block_before(const void *a, const void *b)
{
    return ((const struct ms_leak_block *)a)->addr < ((const struct ms_leak_block *)b)->addr;
}

/* Biggest first, then more blocks, then the older traceback: a stable, readable order. */
static int site_after(const void *a, const void *b)
{
    const struct ms_leak_site *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes;
    if (x->blocks != y->blocks)
        return x->blocks > y->blocks;
    return x->tb < y->tb;
}

/* ---- marking -------------------------------------------------------------------------- */

/* The last block that starts at or below v (blocks are sorted and never overlap, so only
 * it can contain v or anything up to v), or NULL. */
static struct ms_leak_block *last_from(const struct ms_leak_scan *s, uintptr_t v)
{
    if (s->n == 0 || v < s->blocks[0].addr)
        return NULL;
    size_t lo = 0, hi = s->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->blocks[mid].addr <= v)
            lo = mid;
        else
            hi = mid;
    }
    return &s->blocks[lo];
}

static inline uintptr_t block_end(const struct ms_leak_block *b)
{
    return b->addr + (b->size ? b->size : 1);
}

static struct ms_leak_block *block_at(struct ms_leak_scan *s, uintptr_t v)
{
    if (v < s->lo || v >= s->hi)
        return NULL;
    struct ms_leak_block *b = last_from(s, v);
    return b && v < block_end(b) ? b : NULL;
}

static inline void mark(struct ms_leak_scan *s, struct ms_leak_block *b)
{
    if (b && !b->marked) {
        b->marked = 1;
        s->queue[s->queued++] = (uint32_t)(b - s->blocks);
    }
}

static inline void mark_word(struct ms_leak_scan *s, uintptr_t v)
{
    mark(s, block_at(s, v));
}

/* A conservative scan reads every word of data segments and stacks (noasan.h). */
static MS_NO_ASAN void scan_range(struct ms_leak_scan *s, uintptr_t from, uintptr_t to)
{
    from = (from + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (uintptr_t p = from; p + sizeof(uintptr_t) <= to; p += sizeof(uintptr_t))
        mark_word(s, *(const uintptr_t *)p);
}

static void drain(struct ms_leak_scan *s)
{
    while (s->queued) {
        const struct ms_leak_block *b = &s->blocks[s->queue[--s->queued]];
        scan_range(s, b->addr, b->addr + b->size);
    }
}

/* ---- roots ---------------------------------------------------------------------------- */

static int scan_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct ms_leak_scan *s = arg;
    uintptr_t me = (uintptr_t)&scan_module;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && me - lo < ph->p_memsz)
            return 0; /* memshim's own module is never a root */
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
            scan_range(s, lo, lo + ph->p_memsz);
        else if (ph->p_type == PT_TLS && info->dlpi_tls_data)
            scan_range(s, (uintptr_t)info->dlpi_tls_data,
                       (uintptr_t)info->dlpi_tls_data + ph->p_memsz);
    }
    drain(s);
    return 0;
}

/*
 * Blocks the dynamic linker allocated (its first frame lies in ld.so) are roots, as in
 * LeakSanitizer: ld.so keeps the only pointer to some of them where no scan looks.  The
 * TLS vector (DTV) of every thread that has exited is one: glibc caches the dead thread's
 * stack for reuse, and the thread descriptor at its top, which holds the vector, is not a
 * root.  Without this, every program that ever joined a thread "leaked" 336 bytes a
 * thread (allocate_dtv, from pthread_create) and exited with status 23.
 */
struct ms_leak_range {
    uintptr_t base, lo, hi;
};

static int find_linker(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct ms_leak_range *r = arg;
    if (info->dlpi_addr != r->base)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (r->hi == 0 || lo < r->lo)
            r->lo = lo;
        if (lo + ph->p_memsz > r->hi)
            r->hi = lo + ph->p_memsz;
    }
    return r->hi != 0;
}

static void scan_linker_blocks(struct ms_leak_scan *s)
{
    /* AT_BASE: where the kernel loaded the program interpreter (0 without one). */
    struct ms_leak_range r = { .base = (uintptr_t)getauxval(AT_BASE) };
    if (r.base == 0)
        return;
    dl_iterate_phdr(find_linker, &r);
    if (r.hi == 0)
        return;
    for (size_t i = 0; i < s->n; i++) {
        const struct ms_traceback *tb = ms_traceback_get(s->blocks[i].tb);
        /* frames[0] is a return address: the call itself is the byte before it. */
        if (tb && tb->nframe && tb->frames[0] - 1 - r.lo < r.hi - r.lo)
            mark(s, &s->blocks[i]);
    }
    drain(s);
}

/* The C library's thread control block holds the TLS vector and pthread_setspecific
 * values; glibc's struct pthread is larger than this on x86-64, so reading it is safe. */
#define MS_LEAK_TCB_BYTES 0x700

static uintptr_t thread_pointer(void)
{
#if defined(__x86_64__)
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
#else
    return 0; /* elsewhere: the TCB is not scanned (see leak.h's limits) */
#endif
}

/* The callee-saved registers as the caller of ms_leak_check left them (caller-saved ones
 * are dead across the call).  Not setjmp: glibc mangles the saved frame pointer in a
 * jmp_buf, and that register may hold a heap pointer. */
#define MS_LEAK_REGS 6

static inline __attribute__((always_inline)) void spill_registers(uintptr_t *regs)
{
#if defined(__x86_64__)
    __asm__ volatile("mov %%rbx, 0(%0)\n\t"
                     "mov %%rbp, 8(%0)\n\t"
                     "mov %%r12, 16(%0)\n\t"
                     "mov %%r13, 24(%0)\n\t"
                     "mov %%r14, 32(%0)\n\t"
                     "mov %%r15, 40(%0)\n\t"
                     :
                     : "r"(regs)
                     : "memory");
#else
    __builtin_unwind_init(); /* spills them into this frame: scanned less precisely */
    for (int i = 0; i < MS_LEAK_REGS; i++)
        regs[i] = 0;
#endif
}

/* Scans the stack from stack_from (at most the frame of ms_leak_check's caller: the scan's own
 * frames are left out, since their unused slots hold stale copies of every block address
 * the scan has handled) to the top, the saved registers and the thread control block. */
static void scan_this_thread(struct ms_leak_scan *s, uintptr_t stack_from, const uintptr_t *regs)
{
    scan_range(s, (uintptr_t)regs, (uintptr_t)(regs + MS_LEAK_REGS));
    uintptr_t stack, top;
    if (ms_addrkind_own_stack(&stack, &top) && stack && stack_from > stack && stack_from < top)
        scan_range(s, stack_from, top);
    uintptr_t tp = thread_pointer();
    if (tp)
        scan_range(s, tp, tp + MS_LEAK_TCB_BYTES);
    drain(s);
}

/* ---- other threads ------------------------------------------------------------------- */

/* Reads a whole small /proc file into buf (NUL-terminated); its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The end of the writable mapping that contains addr; 0 when not found. */
static uintptr_t mapping_end(uintptr_t addr)
{
    struct ms_procfile_mapping m;
    return ms_procfile_mapping_of(addr, &m) && m.writable ? m.hi : 0;
}

/*
 * Other threads' stacks, without stopping them: a thread blocked in a system call (the
 * usual state of a thread at exit: joining, waiting, sleeping) shows its user stack
 * pointer in /proc/self/task/<tid>/syscall; everything from there to the end of its stack
 * mapping (which also holds its TLS and thread control block, glibc puts them there) is
 * scanned.  A thread that is running shows no stack pointer and is skipped, and blocked
 * threads' callee-saved registers are not seen (the kernel keeps them): leak.h's limits.
 */
static void scan_other_threads(struct ms_leak_scan *s)
{
    int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    long me = syscall(SYS_gettid);
    char ents[2048];
    long n;
    while ((n = syscall(SYS_getdents64, dir, ents, sizeof ents)) > 0) {
        for (long off = 0; off < n;) {
            struct ms_dirent {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (struct ms_dirent *)(ents + off);
            off += d->reclen;
            const char *p = d->name;
            long tid = 0;
            while (*p >= '0' && *p <= '9')
                tid = tid * 10 + (*p++ - '0');
            if (tid <= 0 || tid == me || *p)
                continue;
            char path[64], info[256];
            struct ms_out o; /* the formatter builds the path without stdio */
            ms_out_init(&o, -1);
            ms_out_str(&o, "/proc/self/task/");
            ms_out_udec(&o, (uint64_t)tid, 0);
            ms_out_str(&o, "/syscall");
            memcpy(path, o.buf, o.len < sizeof path - 1 ? o.len : sizeof path - 1);
            path[o.len < sizeof path - 1 ? o.len : sizeof path - 1] = '\0';
            if (read_small(path, info, sizeof info) <= 0 || info[0] < '0' || info[0] > '9')
                continue; /* "running" (or gone): no stack pointer to start from */
            /* "nr arg1 .. arg6 sp pc": the eighth field. */
            const char *f = info;
            for (int field = 0; field < 7 && f; field++) {
                f = strchr(f, ' ');
                if (f)
                    f++;
            }
            if (f == NULL)
                continue;
            uintptr_t sp = ms_procfile_parse_hex(&f);
            uintptr_t end = sp ? mapping_end(sp) : 0;
            if (end > sp)
                scan_range(s, sp, end);
        }
    }
    close(dir);
    drain(s);
}

/* ---- the program's own mappings ------------------------------------------------------ */

/*
 * Memory the program maps itself (a garbage collector's pages, python's pymalloc arenas, a
 * custom pool) may hold the only pointer to a block; Valgrind scans it, LeakSanitizer does
 * not and reports such blocks.  Roots here: anonymous private read-write mappings, except
 *   - memshim's own (MADV_DONTDUMP, "dd" in smaps: its tables hold every block's address),
 *   - those next to an inaccessible mapping (thread stacks above their guard page, whose
 *     dead part is stale; glibc's heaps in front of their reserve, whose free chunks are
 *     stale; other reservations), memshim's own guard pages excepted,
 * and within them the traced blocks themselves (scanned only when reachable) and the pages of
 * the shim's own allocator (heap_owns).
 * Read through process_vm_readv, so that a mapping another thread unmaps meanwhile is an
 * error, not a crash, and only pages the program touched, so that a huge untouched
 * reservation costs nothing.  "Touched" is /proc/self/pagemap's present-or-swapped: mincore
 * alone says "not resident" for a swapped-out page, whose pointers would then be missed and
 * their blocks reported as leaks; it is the fallback where pagemap cannot be read.
 */
enum { VMA_OTHER, VMA_ANON_RW, VMA_NONE };

struct ms_leak_vma {
    uintptr_t lo, hi;
    uint8_t kind;
    uint8_t dontdump;
    uint8_t touched;                  /* smaps: some of it resident or swapped */
};

struct ms_leak_vmas {
    struct ms_leak_vma *v;
    size_t n, cap;
};

#define MS_LEAK_MAX_VMAS 65536 /* Linux's default vm.max_map_count is 65530 */
#define MS_LEAK_CHUNK ((size_t)2 << 20) /* one pagemap read: 512 entries, 4 KiB */

static const char *skip_field(const char *p)
{
    while (*p && *p != ' ')
        p++;
    while (*p == ' ')
        p++;
    return p;
}

static void add_vma(const char *line, void *arg)
{
    struct ms_leak_vmas *m = arg;
    char c = line[0];
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
        if (m->n == m->cap)
            return;
        const char *p = line;
        struct ms_leak_vma *v = &m->v[m->n++];
        v->lo = ms_procfile_parse_hex(&p);
        p++; /* '-' */
        v->hi = ms_procfile_parse_hex(&p);
        p = skip_field(p);
        const char *perms = p;
        p = skip_field(skip_field(skip_field(skip_field(p)))); /* offset, dev, inode */
        bool named = *p != '\0';
        v->dontdump = 0;
        v->touched = 0;
        if (strncmp(perms, "rw-p", 4) == 0 && !named)
            v->kind = VMA_ANON_RW;
        else if (strncmp(perms, "---p", 4) == 0)
            v->kind = VMA_NONE;
        else
            v->kind = VMA_OTHER;
    } else if (m->n && (strncmp(line, "Rss:", 4) == 0 || strncmp(line, "Swap:", 5) == 0)) {
        const char *p = skip_field(line);
        if (*p != '0')
            m->v[m->n - 1].touched = 1;
    } else if (m->n && strncmp(line, "VmFlags:", 8) == 0) {
        m->v[m->n - 1].dontdump = strstr(line, " dd") != NULL;
    }
}

/* An inaccessible mapping that tells its neighbour is a stack or a heap (see above).  Not
 * memshim's own guard pages (the crash report's alternate stack has one): "dd" like the
 * rest of memshim's mappings, and a program mapping that lands next to one is no stack. */
static bool is_reserve(const struct ms_leak_vma *v)
{
    return v->kind == VMA_NONE && !v->dontdump;
}

#define PAGEMAP_PRESENT ((uint64_t)1 << 63)
#define PAGEMAP_SWAPPED ((uint64_t)1 << 62)

#define NO_PAGE_INFO (-2) /* pages not of 4 KiB: every one is read */

/* touched[i] for the 4 KiB pages of [at, at + len) (at most a chunk): whether page i may
 * hold something other than zeros.  pagemap_fd -1: mincore's answer, or all when that
 * fails too. */
static void touched_pages(int pagemap_fd, uintptr_t at, size_t len, unsigned char *touched,
                          uint64_t *entry)
{
    size_t pages = len / 4096;
    if (pagemap_fd == NO_PAGE_INFO) {
        memset(touched, 1, pages);
        return;
    }
    if (pagemap_fd >= 0
        && pread(pagemap_fd, entry, pages * sizeof *entry, (off_t)(at / 4096 * sizeof *entry))
               == (ssize_t)(pages * sizeof *entry)) {
        for (size_t i = 0; i < pages; i++)
            touched[i] = (entry[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0;
        return;
    }
    if (mincore((void *)at, len, touched) != 0)
        memset(touched, 1, pages);
}

/* buf: a page to read into, then room for a chunk's pagemap entries. */
static void scan_mapping(struct ms_leak_scan *s, uintptr_t lo, uintptr_t hi, uintptr_t *buf,
                         int pagemap_fd)
{
    unsigned char touched[MS_LEAK_CHUNK / 4096];
    for (uintptr_t at = lo; at < hi; at += MS_LEAK_CHUNK) {
        size_t len = hi - at < MS_LEAK_CHUNK ? hi - at : MS_LEAK_CHUNK;
        touched_pages(pagemap_fd, at, len, touched, (uint64_t *)(buf + 4096 / sizeof *buf));
        for (size_t off = 0; off < len; off += 4096) {
            uintptr_t pg = at + off;
            if (!(touched[off / 4096] & 1) || (heap_owns && heap_owns((const void *)pg)))
                continue;
            struct iovec local = { buf, 4096 }, remote = { (void *)pg, 4096 };
            if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 4096)
                continue;
            /* Words inside a traced block are its contents: they count only if the block
             * is reached, through the queue. */
            const struct ms_leak_block *last = last_from(s, pg + 4095);
            bool mixed = last != NULL && block_end(last) > pg;
            for (size_t w = 0; w < 4096 / sizeof *buf; w++)
                if (!mixed || block_at(s, pg + w * sizeof *buf) == NULL)
                    mark_word(s, buf[w]);
        }
    }
}

static void scan_program_mappings(struct ms_leak_scan *s)
{
    struct ms_leak_vmas m = { .cap = MS_LEAK_MAX_VMAS };
    size_t bytes = m.cap * sizeof *m.v;
    m.v = ms_os_map(bytes);
    size_t buf_bytes = 4096 + MS_LEAK_CHUNK / 4096 * sizeof(uint64_t);
    uintptr_t *buf = ms_os_map(buf_bytes);
    int pagemap_fd = sysconf(_SC_PAGESIZE) != 4096
                         ? NO_PAGE_INFO
                         : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (m.v && buf) {
        ms_procfile_each_line("/proc/self/smaps", add_vma, &m);
        for (size_t i = 0; i < m.n; i++) {
            const struct ms_leak_vma *v = &m.v[i];
            if (v->kind != VMA_ANON_RW || v->dontdump || !v->touched)
                continue;
            if ((i > 0 && m.v[i - 1].hi == v->lo && is_reserve(&m.v[i - 1]))
                || (i + 1 < m.n && m.v[i + 1].lo == v->hi && is_reserve(&m.v[i + 1])))
                continue;
            scan_mapping(s, v->lo, v->hi, buf, pagemap_fd);
        }
        drain(s);
    }
    if (pagemap_fd >= 0)
        close(pagemap_fd);
    if (m.v)
        ms_os_unmap(m.v, bytes);
    if (buf)
        ms_os_unmap(buf, buf_bytes);
}

/* ---- collecting and reporting ------------------------------------------------------ */

static void collect(void *arg, unsigned domain, uintptr_t ptr, size_t size,
                    const struct ms_traceback *tb)
{
    struct ms_leak_scan *s = arg;
    if (domain != 0 || s->n == s->cap)
        return; /* other domains are not heap blocks; blocks born during the scan wait */
    struct ms_leak_block *b = &s->blocks[s->n++];
    b->addr = ptr;
    b->size = size;
    b->tb = tb ? tb->id : 0;
    b->marked = 0;
}

static void print_report(struct ms_out *o, struct ms_leak_site *sites, size_t nsites,
                         const struct ms_leak_summary *sum)
{
    for (size_t i = 0; i < nsites; i++) {
        ms_out_str(o, "memshim: leak of ");
        ms_out_udec(o, sites[i].bytes, 0);
        ms_out_str(o, sites[i].bytes == 1 ? " byte in " : " bytes in ");
        ms_out_udec(o, sites[i].blocks, 0);
        ms_out_str(o, sites[i].blocks == 1 ? " block" : " blocks");
        const struct ms_traceback *tb = ms_traceback_get(sites[i].tb);
        if (tb) {
            ms_out_str(o, ", allocated at (most recent call first):\n");
            ms_trace_print_traceback(o, tb, 0);
        } else {
            ms_out_char(o, '\n');
        }
        ms_out_char(o, '\n');
    }
    ms_out_str(o, "memshim: leaked ");
    ms_out_udec(o, sum->leaked_bytes, 0);
    ms_out_str(o, " bytes in ");
    ms_out_udec(o, sum->leaked_blocks, 0);
    ms_out_str(o, " blocks from ");
    ms_out_udec(o, sum->leak_sites, 0);
    ms_out_str(o, " allocation sites; still reachable: ");
    ms_out_udec(o, sum->reachable_bytes, 0);
    ms_out_str(o, " bytes in ");
    ms_out_udec(o, sum->reachable_blocks, 0);
    ms_out_str(o, " blocks\n");
    ms_out_flush(o);
}

/* Groups the leaks by traceback and prints them; s->blocks is sorted by traceback id by
 * then, so the leaks of one traceback are adjacent. */
static void report(struct ms_out *o, struct ms_leak_scan *s, struct ms_leak_summary *sum)
{
    size_t nsites = 0;
    for (size_t i = 0, seen = 0; i < s->n; i++) {
        if (s->blocks[i].marked)
            continue;
        if (!seen || s->blocks[i].tb != s->blocks[seen - 1].tb)
            nsites++;
        seen = i + 1;
    }
    size_t bytes = nsites * sizeof(struct ms_leak_site);
    struct ms_leak_site *sites = ms_os_map(bytes);
    if (sites == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct ms_leak_block *b = &s->blocks[i];
        if (b->marked)
            continue;
        if (k == 0 || sites[k - 1].tb != b->tb)
            sites[k++].tb = b->tb;
        sites[k - 1].bytes += b->size;
        sites[k - 1].blocks++;
    }
    sum->leak_sites = nsites;
    heap_sort(sites, nsites, sizeof *sites, site_after);
    print_report(o, sites, nsites, sum);
    ms_os_unmap(sites, bytes);
}

static int block_tb_before(const void *a, const void *b)
{
    return ((const struct ms_leak_block *)a)->tb < ((const struct ms_leak_block *)b)->tb;
}

__attribute__((noinline)) long ms_leak_check(struct ms_out *o, struct ms_leak_summary *summary,
                                             uintptr_t stack_from)
{
    uintptr_t regs[MS_LEAK_REGS];
    spill_registers(regs);
    if (stack_from == 0)
        stack_from = (uintptr_t)__builtin_frame_address(0);
    struct ms_leak_summary sum = { 0 };
    if (summary)
        *summary = sum;
    if (!ms_trace_is_tracing())
        return -1;
    struct ms_leak_scan s = { 0 };
    s.cap = ms_trace_count() + 4096; /* room for blocks made while counting */
    size_t blocks_bytes = s.cap * sizeof *s.blocks, queue_bytes = s.cap * sizeof *s.queue;
    s.blocks = ms_os_map(blocks_bytes);
    s.queue = ms_os_map(queue_bytes);
    long result = -1;
    if (s.blocks == NULL || s.queue == NULL)
        goto out;
    ms_trace_foreach(collect, &s);
    heap_sort(s.blocks, s.n, sizeof *s.blocks, block_before);
    if (s.n) {
        s.lo = s.blocks[0].addr;
        s.hi = s.blocks[s.n - 1].addr + (s.blocks[s.n - 1].size ? s.blocks[s.n - 1].size : 1);
        for (size_t i = 0; i < s.n; i++) {
            uintptr_t end = s.blocks[i].addr + (s.blocks[i].size ? s.blocks[i].size : 1);
            if (end > s.hi)
                s.hi = end;
        }
    }
    dl_iterate_phdr(scan_module, &s);
    scan_linker_blocks(&s);
    scan_program_mappings(&s);
    scan_this_thread(&s, stack_from, regs);
    scan_other_threads(&s);
    for (size_t i = 0; i < s.n; i++) {
        if (s.blocks[i].marked) {
            sum.reachable_blocks++;
            sum.reachable_bytes += s.blocks[i].size;
        } else {
            sum.leaked_blocks++;
            sum.leaked_bytes += s.blocks[i].size;
        }
    }
    if (sum.leaked_blocks) {
        heap_sort(s.blocks, s.n, sizeof *s.blocks, block_tb_before);
        report(o, &s, &sum);
    }
    result = (long)sum.leaked_blocks;
    if (summary)
        *summary = sum;
out:
    if (s.blocks)
        ms_os_unmap(s.blocks, blocks_bytes);
    if (s.queue)
        ms_os_unmap(s.queue, queue_bytes);
    return result;
}
