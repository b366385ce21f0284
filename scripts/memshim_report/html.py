# SPDX-License-Identifier: MIT
"""The HTML report: one self-contained file (inline CSS, JS and SVG; nothing fetched, opens
from file://) with the summary, the top sites by line and by traceback (expandable to the
whole stack), a flame graph of live bytes by stack (click a frame to zoom, click the root
or press Escape to zoom out) and a chart of traced memory over time.

Everything is aggregated here before rendering, so the page's size does not follow the
number of traces: the tables show the top TABLE_ROWS, the flame graph the FLAME_NODES
biggest nodes (a node's parent is always at least as big, so the kept set is a tree), the
chart at most CHART_POINTS samples (the min and max of each bucket, so peaks survive).
Every string from the snapshot is escaped (it is untrusted input).
"""
import html
import math

from . import folded, stats
from .sizefmt import format_size
from .text import format_frame, label, trim_startup

TABLE_ROWS = 50
FLAME_NODES = 3000
CHART_POINTS = 2000
FLAME_WIDTH = 1200.0
FLAME_ROW = 18

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:12px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#b0bec5;font-size:13px}
main{padding:8px 24px 40px;max-width:1400px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:140px}
.card b{display:block;font-size:22px} .card span{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eceff1;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.site{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.bar{background:#ef6c00;height:8px;border-radius:2px;min-width:1px}
details summary{cursor:pointer;font-family:ui-monospace,monospace}
details ol{margin:4px 0 8px;padding-left:28px;font-family:ui-monospace,monospace;font-size:12px}
svg{background:#fff;border:1px solid #ddd;display:block;width:100%;height:auto}
#flame g{cursor:pointer} #flame rect{stroke:#fff;stroke-width:0.5}
#flame text{font:11px ui-monospace,monospace;pointer-events:none;fill:#222}
.chart text{font:11px system-ui,sans-serif;fill:#444} .chart .axis{stroke:#888}
.chart .grid{stroke:#eee} .chart .line{fill:none;stroke:#1565c0;stroke-width:1.5}
.chart .area{fill:#1565c0;fill-opacity:.12} .chart .peak{stroke:#c62828;stroke-dasharray:4 3}
.note{color:#666;font-size:12px}
"""

# Zoom: every frame's <g> carries its x and width as fractions of the whole (data-x,
# data-w); clicking one maps [x, x + w] onto the full width and hides what falls outside.
JS = """
(function(){
var svg=document.getElementById('flame'); if(!svg) return;
var W=+svg.getAttribute('data-width'), gs=svg.querySelectorAll('g[data-x]');
function zoom(x0,w0,depth){
  for(var i=0;i<gs.length;i++){
    var g=gs[i], x=+g.getAttribute('data-x'), w=+g.getAttribute('data-w'),
        d=+g.getAttribute('data-depth'), r=g.querySelector('rect'), t=g.querySelector('text');
    var inside=x>=x0-1e-9 && x+w<=x0+w0+1e-9, above=d<depth && x<=x0+1e-9 && x+w>=x0+w0-1e-9;
    if(!inside && !above){g.style.display='none';continue;}
    g.style.display='';
    var nx=inside?(x-x0)/w0*W:0, nw=inside?w/w0*W:W;
    r.setAttribute('x',nx); r.setAttribute('width',Math.max(nw,0.5));
    t.setAttribute('x',nx+3);
    var name=g.getAttribute('data-name'), fit=Math.floor((nw-6)/6.7);
    t.textContent=fit>=3?(name.length>fit?name.slice(0,fit-1)+'\\u2026':name):'';
  }
}
svg.addEventListener('click',function(e){
  var g=e.target.closest('g[data-x]'); if(!g) return;
  zoom(+g.getAttribute('data-x'),+g.getAttribute('data-w'),+g.getAttribute('data-depth'));
});
document.addEventListener('keydown',function(e){if(e.key==='Escape') zoom(0,1,0);});
zoom(0,1,0);
var m=/^#zoom=(.+)$/.exec(location.hash);  /* a link to a zoomed view: #zoom=function */
if(m) for(var i=0;i<gs.length;i++) if(gs[i].getAttribute('data-name')===decodeURIComponent(m[1])){
  zoom(+gs[i].getAttribute('data-x'),+gs[i].getAttribute('data-w'),+gs[i].getAttribute('data-depth'));
  break;}
document.body.setAttribute('data-flame','ready');
})();
"""


def esc(s):
    return html.escape(str(s), quote=True)


# ---- flame graph -----------------------------------------------------------------------

class Node:
    __slots__ = ("name", "size", "count", "children")

    def __init__(self, name):
        self.name, self.size, self.count, self.children = name, 0, 0, {}


def flame_tree(snap, filters):
    root = Node("all")
    for names, (size, count) in folded.stacks(snap, filters).items():
        node = root
        node.size += size
        node.count += count
        for name in names:
            node = node.children.setdefault(name, Node(name))
            node.size += size
            node.count += count
    return root


def _kept(root, limit):
    """The ids of the `limit` biggest nodes (each kept node's parent is kept)."""
    nodes = []
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        nodes.append((node.size, -depth, id(node)))
        stack.extend((c, depth + 1) for c in node.children.values())
    nodes.sort(reverse=True)
    return set(n[2] for n in nodes[:limit])


def _colour(name):
    h = 0
    for ch in name[:40]:
        h = (h * 31 + ord(ch)) & 0xFFFFFF
    return "hsl(%d,%d%%,%d%%)" % (10 + h % 45, 70 + (h >> 8) % 25, 55 + (h >> 16) % 12)


def flame_svg(root):
    if root.size == 0:
        return '<p class="note">No live bytes in the snapshot: nothing to draw.</p>'
    kept = _kept(root, FLAME_NODES)
    rows = []  # (depth, x fraction, w fraction, node)
    stack = [(root, 0, 0.0)]
    maxdepth = 0
    while stack:
        node, depth, x = stack.pop()
        w = node.size / root.size
        rows.append((depth, x, w, node))
        maxdepth = max(maxdepth, depth)
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            if id(child) in kept and child.size:
                stack.append((child, depth + 1, cx))
            cx += child.size / root.size
    height = (maxdepth + 1) * FLAME_ROW + 4
    out = ['<svg id="flame" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" '
           'data-width="%d" role="img" aria-label="flame graph of live bytes by stack">'
           % (FLAME_WIDTH, height, FLAME_WIDTH)]
    for depth, x, w, node in sorted(rows, key=lambda r: r[0]):
        y = height - 2 - (depth + 1) * FLAME_ROW
        tip = "%s: %s (%.1f%%), %d blocks" % (node.name, format_size(node.size),
                                              100.0 * w, node.count)
        px, pw = x * FLAME_WIDTH, w * FLAME_WIDTH
        fit = int((pw - 6) / 6.7)
        text = node.name if len(node.name) <= fit else (node.name[:fit - 1] + "\u2026"
                                                         if fit >= 3 else "")
        out.append('<g data-x="%.9f" data-w="%.9f" data-depth="%d" data-name="%s">'
                   '<title>%s</title><rect x="%.2f" y="%d" width="%.2f" height="%d" '
                   'fill="%s"/><text x="%.2f" y="%d">%s</text></g>'
                   % (x, w, depth, esc(node.name), esc(tip), px, y, max(pw, 0.5),
                      FLAME_ROW - 1, "#cfd8dc" if depth == 0 else _colour(node.name),
                      px + 3, y + FLAME_ROW - 5, esc(text)))
    out.append("</svg>")
    return "\n".join(out)


# ---- memory over time ------------------------------------------------------------------

def _nice_step(span, ticks=6):
    raw = span / ticks if span > 0 else 1
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _size_unit(top):
    for i, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB")):
        if top < 1024 ** (i + 1) or unit == "TiB":
            return unit, 1024 ** i
    return "B", 1


def _downsample(points):
    if len(points) <= CHART_POINTS:
        return points
    per = math.ceil(len(points) / (CHART_POINTS / 2))
    out = []
    for i in range(0, len(points), per):
        chunk = points[i:i + per]
        lo = min(chunk, key=lambda p: p[1])
        hi = max(chunk, key=lambda p: p[1])
        out.extend(sorted({lo, hi}))
    return out


def timeline_svg(timeline, peak):
    if len(timeline) < 2:
        return '<p class="note">The snapshot has no timeline to chart.</p>'
    pts = _downsample(sorted(timeline))
    t_end = max(p[0] for p in pts) or 1.0
    top = max(max(p[1] for p in pts), peak, 1) * 1.05
    seconds = t_end >= 2000
    tdiv = 1000.0 if seconds else 1.0
    unit, udiv = _size_unit(top)
    W, H, L, R, T, B = 1000, 320, 80, 20, 16, 44
    pw, ph = W - L - R, H - T - B

    def sx(t):
        return L + t / t_end * pw

    def sy(v):
        return T + ph - v / top * ph
    out = ['<svg class="chart" id="timeline" xmlns="http://www.w3.org/2000/svg" '
           'viewBox="0 0 %d %d" role="img" aria-label="traced memory over time">' % (W, H)]
    step = _nice_step(top / udiv)
    v = 0.0
    while v * udiv <= top:
        y = sy(v * udiv)
        out.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>' % (L, W - R, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s %s</text>'
                   % (L - 6, y + 4, ("%g" % v), unit))
        v += step
    tstep = _nice_step(t_end / tdiv, 8)
    t = 0.0
    while t * tdiv <= t_end + 1e-9:
        x = sx(t * tdiv)
        out.append('<line class="axis" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>'
                   % (x, x, T + ph, T + ph + 5))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (x, T + ph + 18, t))
        t += tstep
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (L, W - R, T + ph, T + ph))
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (L, L, T, T + ph))
    out.append('<text x="%.1f" y="%d" text-anchor="middle">time since tracing started (%s)'
               '</text>' % (L + pw / 2, H - 6, "s" if seconds else "ms"))
    out.append('<text transform="translate(14,%.1f) rotate(-90)" text-anchor="middle">'
               'traced memory (%s)</text>' % (T + ph / 2, unit))
    line = " ".join("%.1f,%.1f" % (sx(t), sy(v)) for t, v in pts)
    area = "%.1f,%.1f %s %.1f,%.1f" % (sx(pts[0][0]), sy(0), line, sx(pts[-1][0]), sy(0))
    out.append('<polygon class="area" points="%s"/>' % area)
    out.append('<polyline class="line" points="%s"/>' % line)
    if peak:
        y = sy(peak)
        out.append('<line class="peak" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>' % (L, W - R, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#c62828">peak %s</text>'
                   % (W - R - 4, y - 4, esc(format_size(peak))))
    out.append("</svg>")
    return "\n".join(out)


# ---- tables and page -------------------------------------------------------------------

def _row_cells(st, total):
    pct = 100.0 * st.size / total if total else 0.0
    avg = format_size(st.size / st.count) if st.count else "-"
    return ('<td class="n">%s</td><td class="n">%d</td><td class="n">%s</td>'
            '<td class="n">%.1f%%</td><td><div class="bar" style="width:%.1f%%"></div></td>'
            % (esc(format_size(st.size)), st.count, esc(avg), pct, pct))


HEAD = ('<tr><th>%s</th><th>function</th><th>size</th><th>blocks</th><th>average</th>'
        '<th>share</th><th style="width:20%%"></th></tr>')


def lines_table(result, total):
    if not result:
        return '<p class="note">No live traces.</p>'
    rows = ["<table id=\"sites-lineno\">", HEAD % "site (file:line)"]
    for st in result[:TABLE_ROWS]:
        fn = st.frames[0].function if st.frames and st.frames[0].function else ""
        rows.append('<tr><td class="site">%s</td><td class="site">%s</td>%s</tr>'
                    % (esc(label(st)), esc(fn), _row_cells(st, total)))
    rows.append("</table>")
    if len(result) > TABLE_ROWS:
        rows.append('<p class="note">%d more sites not shown (memshim-report --limit 0 lists '
                    'them all).</p>' % (len(result) - TABLE_ROWS))
    return "\n".join(rows)


def traceback_table(result, total):
    if not result:
        return '<p class="note">No live traces.</p>'
    head = HEAD.replace("<th>function</th>", "<th>called from (most recent first)</th>")
    rows = ['<table id="sites-traceback">', head % "allocation stack (click to expand)"]
    for st in result[:TABLE_ROWS]:
        frames = trim_startup(st.frames)
        items = "".join("<li>%s</li>" % esc(format_frame(f).strip()) for f in frames)
        if st.total > len(st.frames):
            items += "<li>... %d more frames not recorded</li>" % (st.total - len(st.frames))
        calls = [f.symbol() for f in frames]
        path = " \u2190 ".join(calls[:6]) + (" \u2190 \u2026" if len(calls) > 6 else "")
        rows.append('<tr><td class="site"><details><summary>%s</summary><ol>%s</ol></details>'
                    '</td><td class="site">%s</td>%s</tr>'
                    % (esc(label(st)), items, esc(path), _row_cells(st, total)))
    rows.append("</table>")
    if len(result) > TABLE_ROWS:
        rows.append('<p class="note">%d more stacks not shown.</p>' % (len(result) - TABLE_ROWS))
    return "\n".join(rows)


def card(value, what):
    return '<div class="card"><b>%s</b><span>%s</span></div>' % (esc(value), esc(what))


def render(snap, filters=()):
    by_line = stats.statistics(snap, "lineno", filters=filters)
    by_tb = stats.statistics(snap, "traceback", filters=filters)
    size, count = stats.traced_total(snap, filters)
    cards = [card(format_size(snap.totals["current"]), "current traced memory"),
             card(format_size(snap.totals["peak"]), "peak traced memory"),
             card("%d" % snap.totals["traces"], "live blocks traced"),
             card("%d" % len(by_line), "allocation sites (file:line)"),
             card("%d" % len(by_tb), "distinct stacks")]
    if filters:
        cards.append(card("%s in %d blocks" % (format_size(size), count), "after filters"))
    title = "memshim report: %s" % snap.path
    sub = "pid %s, traceback limit %d frames; leaks are not part of a snapshot (see the " \
          "report at exit, MEMSHIM_LEAKS)" % (snap.pid if snap.pid is not None else "?",
                                              snap.traceback_limit)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title><style>%s</style></head><body>" % (esc(title), CSS),
        "<header><h1>%s</h1><p>%s</p></header><main>" % (esc(title), esc(sub)),
        '<h2>Summary</h2><div class="cards" id="summary">%s</div>' % "".join(cards),
        "<h2>Top sites by line</h2>", lines_table(by_line, size),
        "<h2>Top sites by stack</h2>", traceback_table(by_tb, size),
        '<h2>Flame graph of live bytes</h2><p class="note">Width is live bytes; the root is '
        'at the bottom. Click a frame to zoom into it, click the bottom row or press Escape '
        'to zoom out; hover for sizes.</p>', flame_svg(flame_tree(snap, filters)),
        "<h2>Traced memory over time</h2>", timeline_svg(snap.timeline, snap.totals["peak"]),
        "</main><script>%s</script></body></html>" % JS,
    ]
    return "\n".join(parts) + "\n"


def write(path, snap, filters=()):
    page = render(snap, filters)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
