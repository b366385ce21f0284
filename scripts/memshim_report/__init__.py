# SPDX-License-Identifier: MIT
"""memshim-report's pieces, one concept per module:

snapshot   reads and validates a memshim snapshot (hostile input: every check, one error)
symbolize  names raw frames (module + offset) with addr2line
sizefmt    sizes as tracemalloc's _format_size
stats      statistics by key, cumulative, filters, compare (tracemalloc's semantics)
text       the text report (tracemalloc's formats)
folded     folded stacks for flamegraph.pl / speedscope, and the stacks the HTML flame uses
html       the self-contained HTML report
"""
