#!/bin/bash
# A program that dies of SIGSEGV under a debug mode gets the crash report
# (hooks/crash.c): what the registers or the address suggest, the fatal line, and the
# backtrace from the crashing function; it still dies of the signal (status 139).  A
# handler of the program's own is left alone, and without a debug mode nothing is printed.
. "$(dirname "$0")/checklib.sh"
lib=$1 crash=$2 mode=$3

run() {
    env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$1" "$crash" "$2" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# expect CASE FACT-PATTERN [N] : a report with that fact, frame N (1) in the function CASE
expect() {
    run "$mode" "$1"
    [ "$rc" -eq 139 ] || bad "$1: exit status $rc, want 139 (SIGSEGV): $(cat "$tmp/err")"
    grep -q '^Crash at pc=0x[0-9a-f]*: SIGSEGV$' "$tmp/err" ||
        bad "$1: heading missing: $(cat "$tmp/err")"
    grep -q "^    $2" "$tmp/err" || bad "$1: want '$2': $(cat "$tmp/err")"
    grep -q '^Fatal memshim error: Segmentation fault$' "$tmp/err" ||
        bad "$1: fatal line missing: $(cat "$tmp/err")"
    # The first frame (the second for a crash inside the C library) is the crashing
    # function: the handler's frames are left out.
    grep -A"${3:-1}" '^Current thread 0x[0-9a-f]* (most recent call first):$' "$tmp/err" |
        tail -n 1 | grep -q "^  File \".*crash\.c\", line [0-9]*, in $1\$" ||
        bad "$1: backtrace does not start in $1: $(cat "$tmp/err")"
}

G='A general protection fault: a non-canonical address, which the kernel does not report\.$'
expect freed "$G"
expect freed 'Register [a-z0-9]* holds 0xdddddddddddddddd: DEADBYTE (0xdd) fills freed blocks: most likely a value read from freed memory (a use after free)\.$'
if [ "$(uname -m)" = x86_64 ]; then
    # The freed block a register still points to: named, with where it was allocated and
    # freed when tracing.
    expect freed_kept 'Registers\? \(.*, \)\?rbx (p)\(, .*\)\? points\? into the freed block below: the crash most likely used it after it was freed\.$'
    grep -q '^Debug memory block at address p=0x[0-9a-f]*: API .r.$' "$tmp/err" &&
        grep -q '^    The block was made by call #[0-9]* to debug malloc/realloc and freed after call #[0-9]*\.$' "$tmp/err" &&
        grep -q '^Enable MEMSHIM_TRACEMALLOC to get the memory block allocation and free tracebacks$' "$tmp/err" ||
        bad "freed_kept: block dump: $(cat "$tmp/err")"
    env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" MEMSHIM_TRACEMALLOC=8 "$crash" freed_kept \
        >"$tmp/out" 2>"$tmp/err"
    grep -A1 '^Memory block allocated at (most recent call first):$' "$tmp/err" |
        grep -q '^  File ".*crash\.c", line [0-9]*, in make_node$' &&
        grep -A1 '^Memory block freed at (most recent call first):$' "$tmp/err" |
        grep -q '^  File ".*crash\.c", line [0-9]*, in drop_node$' ||
        bad "freed_kept traced: tracebacks: $(cat "$tmp/err")"
fi
expect fresh 'Register [a-z0-9]* holds 0xcdcdcdcdcdcdcdcd: CLEANBYTE (0xcd) fills new blocks: most likely a value read from a block nothing wrote yet (uninitialised memory)\.$'
expect past_end 'Register [a-z0-9]* holds 0xfdfdfdfdfdfdfdfd: FORBIDDENBYTE (0xfd) surrounds every block: most likely a value read past the end or before the start of a block\.$'
expect null 'A read of address 0x8, where nothing is mapped (8 bytes from a null pointer)\.$'
expect null "No register holds one of memshim's fill patterns (0xdd, 0xcd, 0xfd)\.\$"
expect overflow 'The address is next to the stack pointer (0x[0-9a-f]*): most likely a stack overflow (too deep a recursion, or too big a local array)\.$'
expect overflow_thread 'The address is next to the stack pointer (0x[0-9a-f]*): most likely a stack overflow (too deep a recursion, or too big a local array)\.$'
if [ "$(uname -m)" = x86_64 ]; then
    expect overflow_kept 'The address is next to the stack pointer (0x[0-9a-f]*): most likely a stack overflow'
    ! grep -q 'into the freed block below' "$tmp/err" ||
        bad "overflow_kept: a freed block named for a stack overflow: $(head -5 "$tmp/err")"
fi

# Inside the C library: its frame first, then the program's, symbolised as usual.
expect in_libc 'A read of address 0x0, where nothing is mapped (a null pointer)\.$' 2
# Inside the C library's allocator, whose lock may be held: no DWARF lookup (it would
# allocate); dladdr's names, the module and offset of the program's frame.
run "$mode" in_libc_free
[ "$rc" -eq 139 ] || bad "in_libc_free: exit status $rc, want 139: $(cat "$tmp/err")"
grep -A1 '^Current thread 0x[0-9a-f]* (most recent call first):$' "$tmp/err" |
    grep -q '^  File "[^"]*/libc\.so\.6", offset 0x[0-9a-f]*' ||
    bad "in_libc_free: first frame not in libc.so.6: $(cat "$tmp/err")"
grep -q '^  File "[^"]*shim_crash", offset 0x[0-9a-f]*$' "$tmp/err" ||
    bad "in_libc_free: the program's frame (module and offset) missing: $(cat "$tmp/err")"

# Threads crashing at once: one whole report (the others wait for the process to die).
for i in 1 2 3; do
    expect crash_together 'Registers\? [a-z0-9, ]* holds\? 0xdddddddddddddddd: DEADBYTE'
    n=$(grep -c '^Crash at pc=' "$tmp/err")
    [ "$n" -eq 1 ] || bad "crash_together: $n reports: $(cat "$tmp/err")"
done

# A report that hangs (here dladdr, which it calls, never returns) is ended by its
# deadline: SIGALRM after 30 s, the text so far already out.  One mode: it takes 30 s.
if [ "$mode" = debug ]; then
    timeout 120 env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" "$crash" hang >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 142 ] && grep -q '^Fatal memshim error: Segmentation fault$' "$tmp/err" ||
        bad "hang: exit status $rc, want 142 (SIGALRM): $(cat "$tmp/err")"
fi

run "$mode" bus
[ "$rc" -eq 135 ] || bad "bus: exit status $rc, want 135 (SIGBUS): $(cat "$tmp/err")"
grep -q '^Crash at pc=0x[0-9a-f]*: SIGBUS$' "$tmp/err" &&
    grep -q '^    A read of address 0x[0-9a-f]*, past the end of the file mapped there\.$' "$tmp/err" &&
    grep -q '^Fatal memshim error: Bus error$' "$tmp/err" &&
    grep -A1 '^Current thread' "$tmp/err" | grep -q 'crash\.c", line [0-9]*, in bus$' ||
    bad "bus: $(cat "$tmp/err")"

run "$mode" sent
# raise(): no report (Python's faulthandler re-raises the crash it reported).
[ "$rc" -eq 139 ] && [ ! -s "$tmp/err" ] || bad "sent: status $rc, err '$(cat "$tmp/err")'"
# From another process.
env LD_PRELOAD="$lib" MEMSHIM_MALLOC="$mode" "$crash" wait >"$tmp/out" 2>"$tmp/err" &
pid=$!
for i in $(seq 100); do grep -q ready "$tmp/out" && break; sleep 0.05; done
kill -SEGV "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 139 ] && grep -q "^    The signal was sent by process $$, not caused by an access\.\$" "$tmp/err" ||
    bad "sent by another process: status $rc: $(cat "$tmp/err")"

run "$mode" handled
[ "$rc" -eq 3 ] && grep -q "own handler ran" "$tmp/out" && [ ! -s "$tmp/err" ] ||
    bad "handled: status $rc, out '$(cat "$tmp/out")', err '$(cat "$tmp/err")'"

# Not a debug mode: the program dies as it would without memshim, silently.
run pymalloc null
[ "$rc" -eq 139 ] && [ ! -s "$tmp/err" ] || bad "pymalloc: status $rc, err '$(cat "$tmp/err")'"

passed "crash-$mode"
