# SPDX-License-Identifier: MIT
"""Sizes exactly as tracemalloc's _format_size (Lib/tracemalloc.py): bytes below 10 KiB;
then the first unit (KiB, MiB, GiB) in which the value is below 100 gets one decimal, or
below 10 * 1024 gets none; TiB takes whatever is left.  Rounding is Python's "%.1f"/"%.0f"
(half to even on the exact binary value), and `sign` adds "+" to non-negative values as
"%+" does (so a diff of zero prints "+0 B").
"""

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(size, sign=False):
    """size: int or float (an average); sign: show "+" for diffs."""
    spec = "%+" if sign else "%"
    value = size
    for i, unit in enumerate(UNITS):
        last = i == len(UNITS) - 1
        if i > 0 and abs(value) < 100:
            return (spec + ".1f %s") % (value, unit)
        if abs(value) < 10 * 1024 or last:
            return (spec + ".0f %s") % (value, unit)
        value /= 1024
    raise AssertionError("unreachable")
