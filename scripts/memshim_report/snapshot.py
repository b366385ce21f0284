# SPDX-License-Identifier: MIT
"""Reads a memshim snapshot (format "memshim-snapshot", version 1: see hooks/snapshot.c).

The file is untrusted input: every field is checked for presence, type and range, every id
must point somewhere, and anything wrong raises SnapshotError with one line that says what
and where.  Nothing else escapes from load() (deep nesting, huge numbers, bad UTF-8 included).

Strings are cleaned of control characters and lone surrogates when read, so a hostile
function or file name cannot drive the terminal or break the output encodings.

Traces are aggregated by traceback id as they are read (a snapshot of millions of blocks has
far fewer tracebacks): everything downstream works per traceback, with a size and a count.
"""
import json
import math
import os
import re

FORMAT = "memshim-snapshot"
VERSION = 1
MAX_U64 = 2**64 - 1
MAX_U32 = 2**32 - 1
MAX_FRAMES = 65535  # MEMSHIM_TRACEMALLOC's upper bound
MAX_BYTES = 4 << 30  # a snapshot bigger than this is not one memshim wrote for a person

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class SnapshotError(Exception):
    """A snapshot that cannot be used; str() is the one line to print."""


class Frame:
    """One frame: where a return address points.  `name`/`line`/`has_line` are its key
    for lineno statistics: file and line when the debug info has them, else module+offset
    (no line), else tracemalloc's "<unknown>:0"."""

    __slots__ = ("module", "offset", "function", "file", "line", "name", "has_line")

    def __init__(self, module, offset, function, file, line):
        self.module, self.offset, self.function = module, offset, function
        self.file, self.line = file, line
        if file is not None:
            self.name, self.has_line = file, True
        elif module is not None:
            self.name, self.has_line = "%s+0x%x" % (module, offset), False
        else:
            self.name, self.has_line = "<unknown>", True
        if file is None:
            self.line = 0  # a line without its file means nothing

    def key(self):
        """The lineno key: a (name, line, has_line) tuple, sorted as tracemalloc's frames."""
        return (self.name, self.line, self.has_line)

    def file_key(self):
        """The filename key: the file, else the module, else "<unknown>" (line 0)."""
        return (self.file or self.module or "<unknown>", 0, True)

    def filter_name(self):
        """What a filter's pattern is matched against: the file, else the module."""
        return self.file or self.module or "<unknown>"

    def symbol(self):
        """The function, else module+offset: a flame graph's / folded stack's label."""
        if self.function is not None:
            return self.function
        if self.module is not None:
            return "%s+0x%x" % (self.module, self.offset)
        return "0x%x" % self.offset


UNKNOWN_FRAME = Frame(None, 0, None, None, 0)


class Traceback:
    __slots__ = ("frames", "total")

    def __init__(self, frames, total):
        self.frames = frames  # tuple of Frame, most recent first
        self.total = total    # the stack's whole depth (> len(frames) when truncated)


NO_TRACEBACK = Traceback((), 0)


class Snapshot:
    """A loaded snapshot.  `usage` maps traceback id -> [size, count] of the live traces
    that have it; `tracebacks` id -> Traceback (id 0 is the empty one)."""

    def __init__(self, path):
        self.path = path
        self.pid = None
        self.traceback_limit = 0
        self.totals = {}
        self.usage = {}
        self.tracebacks = {0: NO_TRACEBACK}
        self.timeline = []
        self.ntraces = 0


def _fail(path, what):
    raise SnapshotError("%s: %s" % (path, what))


def _kind(v):
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _uint(path, where, v, limit=MAX_U64):
    if type(v) is not int:
        _fail(path, "%s must be an integer, not %s" % (where, _kind(v)))
    if v < 0 or v > limit:
        _fail(path, "%s is out of range (%d)" % (where, v) if len(str(v)) < 40
              else "%s is out of range" % where)
    return v


def _text(path, where, v):
    if v is None:
        return None
    if type(v) is not str:
        _fail(path, "%s must be a string or null, not %s" % (where, _kind(v)))
    return _UNSAFE.sub("?", v)


def _field(path, where, obj, key):
    if key not in obj:
        _fail(path, "%s has no \"%s\"" % (where, key))
    return obj[key]


def _list(path, where, v):
    if type(v) is not list:
        _fail(path, "%s must be a list, not %s" % (where, _kind(v)))
    return v


def _object(path, where, v):
    if type(v) is not dict:
        _fail(path, "%s must be an object, not %s" % (where, _kind(v)))
    return v


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _parse(path, data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        _fail(path, "not UTF-8 text (byte %d)" % e.start)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        _fail(path, "not a memshim snapshot: JSON nested too deeply")
    except json.JSONDecodeError as e:
        _fail(path, "not valid JSON: %s (line %d, column %d)" % (e.msg, e.lineno, e.colno))
    except ValueError as e:  # NaN/Infinity, integers of thousands of digits
        if "digits" in str(e):
            _fail(path, "not a memshim snapshot: a number with thousands of digits")
        _fail(path, "not valid JSON: %s" % str(e).split("\n")[0][:100])


def _read_frames(path, top):
    frames = {}
    for i, f in enumerate(_list(path, "\"frames\"", _field(path, "the snapshot", top, "frames"))):
        where = "frames[%d]" % i
        _object(path, where, f)
        fid = _uint(path, where + ".id", _field(path, where, f, "id"), MAX_U32)
        if fid in frames:
            _fail(path, "%s: frame id %d appears twice" % (where, fid))
        frames[fid] = Frame(
            _text(path, where + ".module", _field(path, where, f, "module")),
            _uint(path, where + ".offset", _field(path, where, f, "offset")),
            _text(path, where + ".function", _field(path, where, f, "function")),
            _text(path, where + ".file", _field(path, where, f, "file")),
            _uint(path, where + ".line", _field(path, where, f, "line"), MAX_U32))
    return frames


def _read_tracebacks(path, top, frames, snap):
    items = _list(path, "\"tracebacks\"", _field(path, "the snapshot", top, "tracebacks"))
    for i, t in enumerate(items):
        where = "tracebacks[%d]" % i
        _object(path, where, t)
        tid = _uint(path, where + ".id", _field(path, where, t, "id"), MAX_U32)
        if tid == 0:
            _fail(path, "%s: traceback id 0 is reserved (no traceback)" % where)
        if tid in snap.tracebacks:
            _fail(path, "%s: traceback id %d appears twice" % (where, tid))
        ids = _list(path, where + ".frames", _field(path, where, t, "frames"))
        if len(ids) > MAX_FRAMES:
            _fail(path, "%s has %d frames (at most %d)" % (where, len(ids), MAX_FRAMES))
        tb_frames = []
        for j, fid in enumerate(ids):
            fid = _uint(path, "%s.frames[%d]" % (where, j), fid, MAX_U32)
            if fid not in frames:
                _fail(path, "%s.frames[%d]: frame id %d is not in \"frames\"" % (where, j, fid))
            tb_frames.append(frames[fid])
        total = _uint(path, where + ".total", _field(path, where, t, "total"), MAX_U32)
        if total < len(tb_frames):
            _fail(path, "%s.total (%d) is less than its %d frames" % (where, total, len(tb_frames)))
        snap.tracebacks[tid] = Traceback(tuple(tb_frames), total)


def _read_traces(path, top, snap):
    usage = snap.usage
    items = _list(path, "\"traces\"", _field(path, "the snapshot", top, "traces"))
    for i, tr in enumerate(items):
        # The common case first: a well-formed [domain, size, id] of plain integers.
        if type(tr) is list and len(tr) == 3:
            domain, size, tid = tr
            if (type(domain) is int and type(size) is int and type(tid) is int
                    and 0 <= domain <= MAX_U32 and 0 <= size <= MAX_U64):
                u = usage.get(tid)
                if u is not None:
                    u[0] += size
                    u[1] += 1
                    continue
                if tid in snap.tracebacks:
                    usage[tid] = [size, 1]
                    continue
        where = "traces[%d]" % i
        if type(tr) is not list or len(tr) != 3:
            _fail(path, "%s must be a list [domain, size, traceback_id]" % where)
        _uint(path, where + " domain", tr[0], MAX_U32)
        _uint(path, where + " size", tr[1])
        tid = _uint(path, where + " traceback id", tr[2], MAX_U32)
        _fail(path, "%s: traceback id %d is not in \"tracebacks\"" % (where, tid))
    snap.ntraces = len(items)


def _read_timeline(path, top, snap):
    items = top.get("timeline", [])
    for i, s in enumerate(_list(path, "\"timeline\"", items)):
        where = "timeline[%d]" % i
        if type(s) is not list or len(s) != 2:
            _fail(path, "%s must be a list [milliseconds, bytes]" % where)
        ms, cur = s
        if type(ms) not in (int, float) or not math.isfinite(ms) or ms < 0 or ms > 1e15:
            _fail(path, "%s: the time must be a non-negative number of milliseconds" % where)
        snap.timeline.append((ms, _uint(path, where + " bytes", cur)))


def _read(path):
    """The file's bytes, at most MAX_BYTES (read in pieces: f.read(MAX_BYTES) would
    allocate the whole limit up front)."""
    too_big = "bigger than %d GiB: not a snapshot" % (MAX_BYTES >> 30)
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_BYTES:
                _fail(path, too_big)
            pieces, n = [], 0
            while True:
                piece = f.read(1 << 24)
                if not piece:
                    return b"".join(pieces)
                n += len(piece)
                if n > MAX_BYTES:
                    _fail(path, too_big)
                pieces.append(piece)
    except OSError as e:
        raise SnapshotError("%s: %s" % (path, e.strerror or e))


def _clean(text):
    return _UNSAFE.sub("?", text)


def load(path, symbolize=False):
    """Reads and checks the snapshot at path; raises SnapshotError.  symbolize: name the
    raw frames (module + offset only, as written from a fatal signal) with addr2line."""
    data = _read(path)
    top = _parse(path, data)
    if type(top) is not dict:
        _fail(path, "not a memshim snapshot: the top level is %s, not an object" % _kind(top))
    if top.get("format") != FORMAT:
        _fail(path, "not a memshim snapshot (\"format\" is not \"%s\")" % FORMAT)
    version = top.get("version")
    if type(version) is not int or version != VERSION:
        if type(version) is int:
            _fail(path, "snapshot version %d is not supported (this tool reads version %d)"
                  % (version, VERSION))
        _fail(path, "\"version\" must be the integer %d, not %s" % (VERSION, _kind(version)))
    snap = Snapshot(path)
    snap.pid = top.get("pid") if type(top.get("pid")) is int else None
    limit = top.get("traceback_limit", 0)
    snap.traceback_limit = _uint(path, "\"traceback_limit\"", limit, MAX_FRAMES)
    totals = _object(path, "\"totals\"", _field(path, "the snapshot", top, "totals"))
    for k in ("current", "peak", "traces"):
        snap.totals[k] = _uint(path, "totals.%s" % k, _field(path, "\"totals\"", totals, k))
    frames = _read_frames(path, top)
    if symbolize:
        from . import symbolize as sym
        sym.resolve(frames, Frame, _clean)
    _read_tracebacks(path, top, frames, snap)
    _read_traces(path, top, snap)
    _read_timeline(path, top, snap)
    return snap
