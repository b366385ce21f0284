# SPDX-License-Identifier: MIT
"""The text report, in tracemalloc's formats:

  [ Top 10 ]
  demo.c:12: size=213 KiB, count=3744, average=58 B          (Statistic.__str__)
  demo.c:12: size=8173 KiB (+4428 KiB), count=71332 (+39369), average=117 B   (StatisticDiff)
  3 other: size=..., count=..., average=...
  Total allocated size: 1234 KiB

A key prints as tracemalloc's Frame ("file:line"); a frame without debug info as
"module+0xoffset" (as memshim's own report at exit).  With --key traceback each statistic is
followed by its frames, most recent first, in the form of memshim's debug dump
(`  File "demo.c", line 12, in make_buffer`), each followed by its source line when the file
can be read (as tracemalloc's Traceback.format does through linecache).
"""
import os

from .sizefmt import format_size

MAX_SOURCE_BYTES = 16 << 20


class SourceLines:
    """Source lines by (file, line), read lazily; only regular files (a hostile snapshot may
    name a FIFO or a device), at most 16 MiB each, undecodable bytes replaced."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.files = {}

    def get(self, path, line):
        if not self.enabled or path is None or line <= 0:
            return ""
        lines = self.files.get(path)
        if lines is None:
            lines = self.files[path] = self._read(path)
        if line > len(lines):
            return ""
        return "".join(c if c >= " " or c == "\t" else "?" for c in lines[line - 1].strip())

    @staticmethod
    def _read(path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except (OSError, ValueError):
            return []
        try:
            st = os.fstat(fd)
            if not (st.st_mode & 0o170000 == 0o100000) or st.st_size > MAX_SOURCE_BYTES:
                return []
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read(MAX_SOURCE_BYTES).decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        finally:
            os.close(fd)


def format_counts(size, count):
    text = "size=%s, count=%d" % (format_size(size), count)
    if count:
        text += ", average=%s" % format_size(size / count)
    return text


def format_diff(size, size_diff, count, count_diff):
    text = "size=%s (%s), count=%d (%+d)" % (format_size(size), format_size(size_diff, True),
                                             count, count_diff)
    if count:
        text += ", average=%s" % format_size(size / count)
    return text


def format_frame(f):
    """One frame as memshim's debug dump prints it."""
    if f.file is not None:
        text = '  File "%s", line %d' % (f.file, f.line)
    elif f.module is not None:
        text = '  File "%s", offset 0x%x' % (f.module, f.offset)
    elif f.offset:
        text = '  File "<unknown>", address 0x%x' % f.offset
    else:
        text = '  File "<unknown>", line 0'
    if f.function is not None:
        text += ", in " + f.function
    return text


STARTUP = frozenset(("_start", "__libc_start_main", "__libc_start_call_main",
                     "__libc_start_main_impl", "start_thread", "clone", "clone3"))


def trim_startup(frames):
    """Drops the C library's start-up frames under main (noise), keeping at least one."""
    end = len(frames)
    while end > 1 and frames[end - 1].function in STARTUP:
        end -= 1
    return frames[:end]


def format_traceback(st, sources):
    lines = []
    for f in trim_startup(st.frames):
        lines.append(format_frame(f))
        src = sources.get(f.file, f.line)
        if src:
            lines.append("    " + src)
    if st.total > len(st.frames):
        lines.append("  ... %d more frame%s not recorded (traceback limit)"
                     % (st.total - len(st.frames), "" if st.total - len(st.frames) == 1 else "s"))
    return lines


def render(stats, key_type, limit, total, diff=False, sources=None):
    """The report's lines. total: (bytes, blocks) of the filtered traces, or for a diff
    ((new bytes, new blocks), (old bytes, old blocks))."""
    sources = sources or SourceLines(False)
    shown = stats if limit == 0 else stats[:limit]
    lines = ["[ Top %d%s ]" % (limit if limit else len(stats), " differences" if diff else "")]
    for st in shown:
        if diff:
            body = format_diff(st.size, st.size_diff, st.count, st.count_diff)
        else:
            body = format_counts(st.size, st.count)
        lines.append("%s: %s" % (label(st), body))
        if key_type == "traceback":
            lines.extend(format_traceback(st, sources))
    other = stats[len(shown):]
    if other:
        size = sum(s.size for s in other)
        count = sum(s.count for s in other)
        if diff:
            body = format_diff(size, sum(s.size_diff for s in other),
                               count, sum(s.count_diff for s in other))
        else:
            body = format_counts(size, count)
        lines.append("%d other: %s" % (len(other), body))
    if diff:
        (new_size, _), (old_size, _) = total
        lines.append("Total allocated size: %s (%s)"
                     % (format_size(new_size), format_size(new_size - old_size, True)))
    else:
        lines.append("Total allocated size: %s" % format_size(total[0]))
    return lines


def label(st):
    """tracemalloc's str(Frame) of the statistic's site: the key's most recent frame (keys
    are oldest first, as tracemalloc's tracebacks)."""
    name, line, has_line = st.key[-1]
    return "%s:%d" % (name, line) if has_line else name
