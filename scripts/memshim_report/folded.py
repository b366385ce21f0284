# SPDX-License-Identifier: MIT
"""Live bytes by call stack: folded stacks ("main;make_buffer;malloc_site 4096", root first,
the value in bytes) for flamegraph.pl and speedscope, and the same stacks as a tree for the
HTML flame graph.

A frame is named by its function, else module+0xoffset.  The C library's start-up frames
under main are dropped; a truncated traceback (deeper than the traceback limit) gets a
"[truncated]" root so that it does not pose as a whole stack.  ';' cannot be escaped in the
folded format, so it becomes '_'; spaces stay (both tools split the value off at the last
space, so "operator new(unsigned long)" survives).
"""
from .stats import kept_tracebacks
from .text import trim_startup

TRUNCATED = "[truncated]"
NO_STACK = "[no stack]"


def stacks(snap, filters=()):
    """(root-first tuple of names) -> [bytes, blocks] of the traces that pass the filters."""
    out = {}
    for tid in kept_tracebacks(snap, filters):
        tb = snap.tracebacks[tid]
        frames = trim_startup(tb.frames)
        names = [f.symbol() for f in reversed(frames)] or [NO_STACK]
        if tb.total > len(tb.frames):
            names.insert(0, TRUNCATED)
        key = tuple(names)
        size, count = snap.usage[tid]
        acc = out.setdefault(key, [0, 0])
        acc[0] += size
        acc[1] += count
    return out


def folded_lines(snap, filters=()):
    lines = []
    for key, (size, _) in stacks(snap, filters).items():
        if size:
            names = (n.replace(";", "_") for n in key)
            lines.append("%s %d" % (";".join(names), size))
    lines.sort()
    return lines
