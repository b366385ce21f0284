# SPDX-License-Identifier: MIT
"""memshim-report --html: /usr/bin/python3 test_html.py SCRIPT [--chromium]

Without --chromium: the page written for fixtures/a.json holds the summary, the sites by
line and by stack (with their frames), the function names, the flame graph and the memory
chart as inline SVG, nothing fetched from elsewhere; a hostile name is escaped; a snapshot
of 100,000 traces over 20,000 stacks renders quickly into a bounded page.

With --chromium: the page is loaded from file:// in headless Chromium; the DOM after its
script ran has the sites, function names and both SVG charts, and a screenshot is taken and
is not blank (MS_REPORT_SCREENSHOT=file keeps it).  Exit 77 (meson's "skipped") with a message when Chromium is not installed
and cannot be installed, or cannot run here.
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
SCRIPT = None
SKIP = 77


def render(snapshot, out, *extra):
    p = subprocess.run(["/usr/bin/python3", SCRIPT, snapshot, "--html", out] + list(extra),
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr
    with open(out, encoding="utf-8") as f:
        return f.read()


def big_snapshot(path, ntraces=100000, nstacks=20000):
    rng = random.Random(99)
    frames = [dict(id=i, module="/bin/big", offset=i, function="fn_%d" % i,
                   file="src/f%d.c" % (i % 40), line=i % 500 + 1) for i in range(2000)]
    tbs = [dict(id=t, total=16, frames=[rng.randrange(2000) for _ in range(rng.randint(2, 16))])
           for t in range(1, nstacks + 1)]
    traces = [[0, rng.randint(1, 5000), rng.randint(1, nstacks)] for _ in range(ntraces)]
    cur = sum(t[1] for t in traces)
    timeline = [[i * 0.5, cur * i // 30000] for i in range(30001)]
    with open(path, "w") as f:
        json.dump({"format": "memshim-snapshot", "version": 1, "pid": 7, "traceback_limit": 16,
                   "totals": {"current": cur, "peak": cur, "traces": ntraces},
                   "traces": traces, "tracebacks": tbs, "frames": frames,
                   "timeline": timeline}, f)


class Page(unittest.TestCase):
    def test_contents(self):
        with tempfile.TemporaryDirectory() as d:
            page = render(os.path.join(FIX, "a.json"), os.path.join(d, "a.html"))
        for needle in ("lib/util.c:88", "demo.c:12", "make_buffer", "grow", "foo_alloc",
                       '<svg id="flame"', '<svg class="chart" id="timeline"',
                       "current traced memory", "peak traced memory", "live blocks traced",
                       '<table id="sites-lineno">', '<table id="sites-traceback">',
                       '<details><summary>lib/util.c:88</summary>',
                       "File &quot;demo.c&quot;, line 31, in main",
                       "7 more frames not recorded", "time since tracing started (ms)",
                       "traced memory (KiB)", "peak 184 KiB"):
            self.assertIn(needle, page)
        # The flame graph: a root of all live bytes and main's children.
        self.assertRegex(page, r'<g data-x="0\.0+" data-w="1\.0+" data-depth="0" data-name="all">')
        self.assertIn('data-name="main"', page)
        # Self-contained: nothing fetched, no external reference.
        self.assertNotRegex(page, r'(src|href)=|@import|url\(|https?://(?!www\.w3\.org/2000/svg)')

    def test_empty_snapshot(self):
        with tempfile.TemporaryDirectory() as d:
            page = render(os.path.join(FIX, "empty.json"), os.path.join(d, "e.html"))
        self.assertIn("No live bytes in the snapshot", page)
        self.assertIn("no timeline to chart", page)

    def test_hostile_names_escaped(self):
        with open(os.path.join(FIX, "a.json")) as f:
            s = json.load(f)
        s["frames"][0]["function"] = "<script>alert(1)</script>"
        s["frames"][0]["file"] = 'x"><img src=x onerror=alert(1)>.c'
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.json")
            with open(path, "w") as f:
                json.dump(s, f)
            page = render(path, os.path.join(d, "h.html"))
        self.assertNotIn("<script>alert", page)
        self.assertNotIn("<img", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)

    def test_big_snapshot_bounded(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "big.json")
            big_snapshot(path)
            start = time.monotonic()
            page = render(path, os.path.join(d, "big.html"))
            took = time.monotonic() - start
        self.assertLess(took, 30, "100,000 traces took %.1f s" % took)
        self.assertLessEqual(page.count("<g data-x="), 3000)
        self.assertLess(len(page), 3 << 20)
        self.assertLessEqual(page.count("<tr><td"), 100)
        self.assertIn("more sites not shown", page)
        points = re.search(r'<polyline class="line" points="([^"]*)"', page).group(1)
        self.assertLessEqual(len(points.split()), 2000)


# ---- Chromium ---------------------------------------------------------------------------

def skip(why):
    print("SKIP: %s" % why)
    sys.exit(SKIP)


def find_chromium():
    forced = os.environ.get("MS_REPORT_CHROMIUM")  # a browser to use instead (or to fail)
    if forced:
        return forced
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("chromium not found: apt-get install -y chromium")
        p = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True,
                           text=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode == 0 and shutil.which("chromium"):
            return shutil.which("chromium")
        skip("chromium is not installed and apt-get could not install it: %s"
             % (p.stderr.strip().splitlines() or ["?"])[-1])
    skip("chromium is not installed (Debian package 'chromium'; needs root to install)")


def chromium(exe, profile, *args):
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + profile]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=120)


def png_not_blank(path):
    """(width, height, distinct colours in a sample): decodes the PNG (8-bit RGB/RGBA, the
    five filters) with zlib, looking at every 8th row."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w, h, bpp = 8, [], 0, 0, 3
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), "unexpected PNG type"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        if y % 8 == 0:
            for x in range(0, stride, bpp * 2):
                colours.add(bytes(line[x:x + 3]))
        prev = line
    return w, h, len(colours)


def run_chromium():
    exe = find_chromium()
    with tempfile.TemporaryDirectory() as d:
        page = os.path.join(d, "a.html")
        render(os.path.join(FIX, "a.json"), page)
        url = "file://" + page
        try:
            p = chromium(exe, os.path.join(d, "profile1"), "--dump-dom", url)
        except (OSError, subprocess.TimeoutExpired) as e:
            skip("chromium could not run: %s" % e)
        if p.returncode != 0 or "<html" not in p.stdout:
            skip("chromium could not run here (status %d): %s"
                 % (p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1]))
        dom = p.stdout
        failures = []
        for needle in ('data-flame="ready"', "lib/util.c:88", "demo.c:12", "make_buffer",
                       "foo_alloc", 'id="flame"', 'id="timeline"', "<polyline",
                       "time since tracing started (ms)", "current traced memory"):
            if needle not in dom:
                failures.append("DOM lacks %r" % needle)
        # Zoom (the page's #zoom=NAME does what a click does): make_buffer fills the width,
        # grow (beside it) is hidden, main (below it) spans the width.
        p = chromium(exe, os.path.join(d, "profile3"), "--dump-dom", url + "#zoom=make_buffer")
        zoomed = {m.group(1): m.group(0) for m in
                  re.finditer(r'<g [^>]*data-name="([^"]*)"[^>]*>.*?</g>', p.stdout)}
        if not re.search(r'<rect x="0" [^>]*width="1200"', zoomed.get("make_buffer", "")):
            failures.append("#zoom=make_buffer did not widen it: %r" % zoomed.get("make_buffer"))
        if "display: none" not in zoomed.get("grow", ""):
            failures.append("#zoom=make_buffer did not hide grow")
        if "display: none" in zoomed.get("main", "display: none"):
            failures.append("#zoom=make_buffer hid main, its caller")
        shot = os.path.join(d, "shot.png")
        p = chromium(exe, os.path.join(d, "profile2"), "--screenshot=" + shot,
                     "--window-size=1280,1800", "--hide-scrollbars", url)
        if not os.path.exists(shot):
            failures.append("no screenshot: %s" % p.stderr.strip()[-300:])
        else:
            keep = os.environ.get("MS_REPORT_SCREENSHOT")
            if keep:
                shutil.copy(shot, keep)
            w, h, colours = png_not_blank(shot)
            print("screenshot %dx%d, %d distinct colours sampled" % (w, h, colours))
            if colours < 20:
                failures.append("screenshot looks blank (%d colours)" % colours)
    for f in failures:
        print("FAIL: " + f)
    print("chromium: %s" % ("ok" if not failures else "%d failures" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    SCRIPT = os.path.abspath(sys.argv[1])
    if sys.argv[2:3] == ["--chromium"]:
        sys.exit(run_chromium())
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
