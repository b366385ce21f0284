# SPDX-License-Identifier: MIT
"""Names for raw frames.  A snapshot written from a fatal signal has no function, file or
line (the library does not look symbols up in a signal handler), only module + offset of
each return address: here they are resolved with binutils' addr2line, one run per module,
offsets on its standard input.  Without addr2line, or for a module it cannot read, the
frames stay module+0xoffset.

The offset is a return address's: the call is the byte before it, so offset - 1 is looked
up (as the library does).  Module paths come from an untrusted file: only regular files
are handed to addr2line, as an argument after -e, with a time limit.
"""
import os
import shutil
import subprocess

TIMEOUT = 120


def _parse_location(text):
    """'file.c:12 (discriminator 3)' -> ('file.c', 12); unknown parts None / 0."""
    text = text.split(" (discriminator", 1)[0].strip()
    path, _, line = text.rpartition(":")
    if not path or path == "??":
        return None, 0
    return path, int(line) if line.isdigit() and len(line) < 10 else 0


def _run(tool, module, offsets):
    """offset -> (function, file, line) for one module; {} when addr2line fails."""
    query = "".join("0x%x\n" % max(off - 1, 0) for off in offsets)
    try:
        p = subprocess.run([tool, "-C", "-f", "-e", module], input=query, capture_output=True,
                           text=True, errors="replace", timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = p.stdout.splitlines()
    if p.returncode != 0 or len(lines) != 2 * len(offsets):
        return {}
    out = {}
    for i, off in enumerate(offsets):
        function = lines[2 * i].strip()
        path, line = _parse_location(lines[2 * i + 1])
        out[off] = (None if function in ("", "??") else function, path, line)
    return out


def resolve(frames, make_frame, clean):
    """Replaces, in the dict id -> Frame, the frames that have a module but no function and
    no file by what addr2line says.  make_frame(module, offset, function, file, line)
    builds a frame; clean(text) makes a string safe to print."""
    tool = shutil.which("addr2line")
    if tool is None:
        return
    wanted = {}
    for fid, f in frames.items():
        if f.module is not None and f.function is None and f.file is None:
            wanted.setdefault(f.module, []).append(fid)
    for module, ids in wanted.items():
        try:
            if not os.path.isfile(module):
                continue
        except (OSError, ValueError):
            continue
        offsets = sorted(set(frames[i].offset for i in ids))
        found = _run(tool, module, offsets)
        for fid in ids:
            old = frames[fid]
            hit = found.get(old.offset)
            if hit is None or hit == (None, None, 0):
                continue
            function, path, line = hit
            frames[fid] = make_frame(module, old.offset, clean(function) if function else None,
                                     clean(path) if path else None, line if path else 0)
