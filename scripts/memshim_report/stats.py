# SPDX-License-Identifier: MIT
"""Statistics over a snapshot with tracemalloc's semantics (Lib/tracemalloc.py):

- key "lineno": the most recent frame's file and line; "filename": its file (line 0);
  "traceback": every frame.  A trace without frames counts as tracemalloc's "<unknown>:0".
- cumulative (lineno/filename only): a trace counts for every key its frames have, each key
  once per trace (so recursion does not count a block twice, and no key exceeds the total).
- sort: size, count, then key, all descending (Snapshot.statistics); compare: |size diff|,
  size, |count diff|, count, key, descending (Snapshot.compare_to).  Keys compare as
  tracemalloc's tracebacks: tuples of (file, line) from the oldest frame.
- filters as tracemalloc.Filter: fnmatch of the pattern on the file name (the module's
  path for frames without debug info), an optional line, the most recent frame or any frame;
  a trace is kept when any include filter matches (or there is none) and no exclude does.

Work is per traceback id (the snapshot aggregated traces by it), so 100,000 traces sharing a
few hundred tracebacks cost a few hundred steps here.
"""
import fnmatch

from .snapshot import UNKNOWN_FRAME

KEYS = ("lineno", "filename", "traceback")


class Statistic:
    """One line of a report.  `key` is what groups and sorts; `frames` (most recent first)
    is what is shown; `total` the deepest stack seen (traceback key: truncation shows)."""

    __slots__ = ("key", "frames", "size", "count", "size_diff", "count_diff", "total")

    def __init__(self, key, frames, total=0):
        self.key, self.frames, self.total = key, frames, total
        self.size = self.count = self.size_diff = self.count_diff = 0


class Filter:
    """tracemalloc.Filter: `inclusive`, a file name pattern, an optional line, all_frames."""

    def __init__(self, inclusive, pattern, lineno=None, all_frames=False):
        self.inclusive, self.pattern = inclusive, pattern
        self.lineno, self.all_frames = lineno, all_frames

    @classmethod
    def parse(cls, inclusive, text, all_frames):
        """PATTERN or PATTERN:LINE (the last ':' followed only by digits is the line)."""
        pattern, sep, line = text.rpartition(":")
        if sep and line.isdigit() and pattern:
            return cls(inclusive, pattern, int(line), all_frames)
        return cls(inclusive, text, None, all_frames)

    def _frame_matches(self, frame):
        if not fnmatch.fnmatchcase(frame.filter_name(), self.pattern):
            return False
        return self.lineno is None or frame.line == self.lineno

    def keeps(self, frames):
        """True when a traceback (most recent first) passes this filter."""
        frames = frames or (UNKNOWN_FRAME,)
        if self.all_frames:
            hit = any(self._frame_matches(f) for f in frames)
        else:
            hit = self._frame_matches(frames[0])
        return hit == self.inclusive


def kept_tracebacks(snap, filters):
    """The traceback ids of snap whose traces pass the filters."""
    include = [f for f in filters if f.inclusive]
    exclude = [f for f in filters if not f.inclusive]
    kept = []
    for tid in snap.usage:
        frames = snap.tracebacks[tid].frames
        if include and not any(f.keeps(frames) for f in include):
            continue
        if any(not f.keeps(frames) for f in exclude):
            continue
        kept.append(tid)
    return kept


def _keys_of(frames, key_type, cumulative):
    """(key, shown frames) pairs one traceback counts for."""
    frames = frames or (UNKNOWN_FRAME,)
    if key_type == "traceback":
        return [(tuple(f.key() for f in reversed(frames)), frames)]
    pick = (lambda f: f.key()) if key_type == "lineno" else (lambda f: f.file_key())
    if not cumulative:
        return [((pick(frames[0]),), frames[:1])]
    seen = {}
    for f in frames:
        k = (pick(f),)
        if k not in seen:
            seen[k] = (f,)
    return list(seen.items())


def group(snap, key_type, cumulative=False, filters=()):
    """key -> Statistic for the snapshot's traces that pass the filters."""
    if key_type not in KEYS:
        raise ValueError("unknown key %r" % key_type)
    if cumulative and key_type == "traceback":
        raise ValueError("--cumulative works with --key lineno or filename, not traceback")
    stats = {}
    for tid in kept_tracebacks(snap, filters):
        size, count = snap.usage[tid]
        tb = snap.tracebacks[tid]
        for key, frames in _keys_of(tb.frames, key_type, cumulative):
            st = stats.get(key)
            if st is None:
                st = stats[key] = Statistic(key, frames)
            st.size += size
            st.count += count
            st.total = max(st.total, tb.total)
    return stats


def statistics(snap, key_type, cumulative=False, filters=()):
    """Snapshot.statistics: a sorted list of Statistic."""
    out = list(group(snap, key_type, cumulative, filters).values())
    out.sort(key=lambda s: (s.size, s.count, s.key), reverse=True)
    return out


def compare(new, old, key_type, cumulative=False, filters=()):
    """Snapshot.compare_to: Statistics with size_diff/count_diff, sorted."""
    new_group = group(new, key_type, cumulative, filters)
    old_group = group(old, key_type, cumulative, filters)
    out = []
    for key, st in new_group.items():
        prev = old_group.pop(key, None)
        st.size_diff = st.size - (prev.size if prev else 0)
        st.count_diff = st.count - (prev.count if prev else 0)
        out.append(st)
    for key, prev in old_group.items():
        st = Statistic(key, prev.frames, prev.total)
        st.size_diff, st.count_diff = -prev.size, -prev.count
        out.append(st)
    out.sort(key=lambda s: (abs(s.size_diff), s.size, abs(s.count_diff), s.count, s.key),
             reverse=True)
    return out


def traced_total(snap, filters=()):
    """(bytes, blocks) of the traces that pass the filters."""
    size = count = 0
    for tid in kept_tracebacks(snap, filters):
        size += snap.usage[tid][0]
        count += snap.usage[tid][1]
    return size, count
