# SPDX-License-Identifier: MIT
"""memshim-report against known snapshots, run as /usr/bin/python3 test_report.py SCRIPT.

- expected text: each case's exact output is compared with expected/<case>.txt (fixtures
  a.json and b.json, whose sites and sizes are written out in fixtures/README);
  `--regen` rewrites those files (then read the diff before committing it).
- oracle: the same traces loaded into Python's own tracemalloc.Snapshot give the same lines
  and order, by lineno, filename, traceback, cumulative and compare_to, on a fixed fixture
  and on a large seeded random one; sizes are checked against tracemalloc._format_size.
- error path: each broken snapshot exits 2 with one line on stderr and no traceback.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
EXPECTED = os.path.join(HERE, "expected")
SCRIPT = None  # set from argv

# name -> arguments; "A"/"B" stand for the fixtures.
CASES = {
    "a_lineno": ["A"],
    "a_lineno_cumulative": ["A", "--cumulative"],
    "a_filename": ["A", "--key", "filename"],
    "a_filename_cumulative": ["A", "--key", "filename", "--cumulative"],
    "a_traceback": ["A", "--key", "traceback", "--no-source"],
    "a_limit2": ["A", "--limit", "2"],
    "a_include_demo": ["A", "--include", "*demo.c"],
    "a_include_line": ["A", "--include", "demo.c:40", "--include", "*libfoo*"],
    "a_exclude_all_frames": ["A", "--exclude", "*libc.so*", "--all-frames"],
    "a_include_all_frames_tb": ["A", "--include", "*.c:31", "--all-frames", "--key",
                                "traceback", "--no-source"],
    "a_collapsed": ["A", "--format", "collapsed"],
    "a_collapsed_exclude": ["A", "--format", "collapsed", "--exclude", "*util.c"],
    "b_vs_a": ["B", "--compare", "A"],
    "b_vs_a_limit3": ["B", "--compare", "A", "--limit", "3"],
    "b_vs_a_filename": ["B", "--compare", "A", "--key", "filename"],
    "b_vs_a_traceback": ["B", "--compare", "A", "--key", "traceback", "--no-source"],
}


def run(args, cwd=None):
    p = subprocess.run(["/usr/bin/python3", SCRIPT] + args, capture_output=True, text=True,
                       cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def fixture_args(args):
    table = {"A": os.path.join(FIX, "a.json"), "B": os.path.join(FIX, "b.json")}
    return [table.get(a, a) for a in args]


def ok(test, args):
    rc, out, err = run(args)
    test.assertEqual((rc, err), (0, ""), args)
    return out


# ---- an oracle: the snapshot's traces in Python's own tracemalloc ------------------------

def tm_snapshot(path, key_type):
    """tracemalloc.Snapshot of a memshim snapshot's traces.  Frame names as memshim-report
    shows them: file, else module+0xoffset (lineno) or module (filename), else <unknown>."""
    with open(path) as f:
        s = json.load(f)
    frames = {}
    for f in s["frames"]:
        if f["file"] is not None:
            frames[f["id"]] = (f["file"], f["line"])
        elif f["module"] is not None:
            name = f["module"] if key_type == "filename" else "%s+0x%x" % (f["module"], f["offset"])
            frames[f["id"]] = (name, 0)
        else:
            frames[f["id"]] = ("<unknown>", 0)
    tbs = {t["id"]: (tuple(frames[i] for i in t["frames"]), t["total"]) for t in s["tracebacks"]}
    tbs[0] = ((("<unknown>", 0),), 1)
    traces = []
    for d, size, tid in s["traces"]:
        fr, total = tbs[tid]
        traces.append((d, size, fr or (("<unknown>", 0),), total))
    return tracemalloc.Snapshot(traces, s["traceback_limit"])


def tm_lines(stats, key_type):
    """tracemalloc's lines, with the site as memshim-report labels it: the most recent frame
    (tracemalloc's str(Traceback) is the oldest one) and module+0x.. without ':0'."""
    out = []
    for st in stats:
        body = str(st).split(": ", 1)[1]
        site = str(st.traceback[-1])
        if "+0x" in site and site.endswith(":0"):
            site = site[:-2]
        out.append("%s: %s" % (site, body))
    return out


def stat_lines(text):
    return [l for l in text.splitlines()
            if not l.startswith(("[", "  ", "Total allocated size:"))]


class Expected(unittest.TestCase):
    def test_cases(self):
        for name, args in CASES.items():
            with self.subTest(case=name):
                out = ok(self, fixture_args(args))
                with open(os.path.join(EXPECTED, name + ".txt")) as f:
                    self.assertEqual(out, f.read())

    def test_known_sizes(self):
        # a.json: demo.c:12 is 3 x 4096 (make_buffer from main:30) + 2 x 1000 (main:31).
        out = ok(self, fixture_args(["A"]))
        self.assertIn("demo.c:12: size=14.0 KiB, count=5, average=2858 B\n", out)
        self.assertIn("lib/util.c:88: size=49.0 KiB, count=3, average=16.3 KiB\n", out)
        self.assertTrue(out.startswith("[ Top 10 ]\n"))
        self.assertTrue(out.endswith("Total allocated size: 63.3 KiB\n"))  # 64804 bytes

    def test_cumulative_counts_a_frame_once_per_block(self):
        # recurse() at demo.c:40 is three frames of the same 4 blocks: 4 blocks, 256 B.
        out = ok(self, fixture_args(["A", "--cumulative", "--limit", "0"]))
        self.assertIn("demo.c:40: size=256 B, count=4, average=64 B\n", out)

    def test_empty_snapshot(self):
        empty = os.path.join(FIX, "empty.json")
        self.assertEqual(ok(self, [empty]), "[ Top 10 ]\nTotal allocated size: 0 B\n")
        self.assertEqual(ok(self, [empty, "--format", "json"]), "[]\n")
        self.assertEqual(ok(self, [empty, "--format", "collapsed"]), "")

    def test_other_line(self):
        out = ok(self, fixture_args(["A", "--limit", "2"]))
        # 3 lines left: 256 + 40 + 20 bytes in 4 + 2 + 1 blocks.
        self.assertIn("\n3 other: size=316 B, count=7, average=45 B\n", out)

    def test_json_parses(self):
        for key in ("lineno", "filename", "traceback"):
            out = ok(self, fixture_args(["A", "--format", "json", "--key", key]))
            stats = json.loads(out)
            self.assertEqual(sum(s["size"] for s in stats), 64804)
            self.assertEqual(sum(s["count"] for s in stats), 15)
            self.assertEqual(stats[0]["site"], "lib/util.c:0" if key == "filename"
                             else "lib/util.c:88")
        diff = json.loads(ok(self, fixture_args(["B", "--compare", "A", "--format", "json"])))
        self.assertEqual(diff[0]["site"], "cache.c:7")
        self.assertEqual((diff[0]["size_diff"], diff[0]["count_diff"]), (300000, 1))
        top = json.loads(ok(self, fixture_args(["A", "--format", "json", "--key", "traceback",
                                                "--limit", "1"])))
        self.assertEqual([f["function"] for f in top[0]["frames"]],
                         ["grow", "main", "__libc_start_call_main"])

    def test_collapsed_sums_to_live_bytes(self):
        out = ok(self, fixture_args(["A", "--format", "collapsed"]))
        total = sum(int(l.rsplit(" ", 1)[1]) for l in out.splitlines())
        self.assertEqual(total, 64804)
        self.assertIn("main;make_buffer 14288\n", out)

    def test_source_lines_shown_when_file_exists(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "demo.c"), "w") as f:
                f.write("\n" * 11 + "    char *p = malloc(n);   \n")
            rc, out, err = run([os.path.join(FIX, "a.json"), "--key", "traceback"], cwd=d)
        self.assertEqual(rc, 0, err)
        self.assertIn('  File "demo.c", line 12, in make_buffer\n    char *p = malloc(n);\n', out)

    def test_names_that_the_terminal_cannot_encode(self):
        with open(os.path.join(FIX, "a.json")) as f:
            s = json.load(f)
        s["frames"][0]["function"] = "caf\u00e9"
        s["frames"][1]["function"] = "evil\u001b[2J"  # control characters are cleaned
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "u.json")
            with open(path, "w") as f:
                json.dump(s, f)
            p = subprocess.run(["/usr/bin/python3", SCRIPT, path, "--key", "traceback"],
                               capture_output=True, text=True,
                               env=dict(os.environ, PYTHONIOENCODING="ascii"))
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertIn(", in caf\\xe9\n", p.stdout)
        self.assertIn(", in evil?[2J\n", p.stdout)

    def test_help_explains_every_option(self):
        rc, out, err = run(["--help"])
        self.assertEqual(rc, 0)
        for opt in ("--key", "--cumulative", "--limit", "--compare", "--include", "--exclude",
                    "--all-frames", "--format", "--html", "module+0xoffset", "examples:"):
            self.assertIn(opt, out)


class Oracle(unittest.TestCase):
    def check(self, path, args, key_type, cumulative=False, old=None):
        out = ok(self, [path, "--limit", "0"] + args)
        snap = tm_snapshot(path, key_type)
        if old is None:
            expect = snap.statistics(key_type, cumulative)
        else:
            expect = snap.compare_to(tm_snapshot(old, key_type), key_type, cumulative)
        self.assertEqual(stat_lines(out), tm_lines(expect, key_type))

    def test_fixture(self):
        a, b = os.path.join(FIX, "a.json"), os.path.join(FIX, "b.json")
        self.check(a, [], "lineno")
        self.check(a, ["--key", "filename"], "filename")
        self.check(a, ["--key", "traceback"], "traceback")
        self.check(b, ["--compare", a], "lineno", old=a)
        self.check(b, ["--compare", a, "--key", "traceback"], "traceback", old=a)

    def test_random(self):
        with tempfile.TemporaryDirectory() as d:
            paths = [os.path.join(d, "r%d.json" % i) for i in range(2)]
            for i, p in enumerate(paths):
                with open(p, "w") as f:
                    json.dump(random_snapshot(1234 + i), f)
            for key in ("lineno", "filename", "traceback"):
                self.check(paths[0], ["--key", key], key)
                self.check(paths[1], ["--key", key, "--compare", paths[0]], key, old=paths[0])
            for key in ("lineno", "filename"):
                # Each frame's file and line once per traceback: tracemalloc agrees.
                self.check(paths[0], ["--key", key, "--cumulative"], key, cumulative=True)
                self.check(paths[1], ["--key", key, "--cumulative", "--compare", paths[0]], key,
                           cumulative=True, old=paths[0])


def random_snapshot(seed):
    """Thousands of traces over a few hundred tracebacks; sizes from 1 B to 3 TiB; files
    and lines distinct within a traceback (so cumulative is comparable with tracemalloc)."""
    rng = random.Random(seed)
    files = ["src/a.c", "src/b.c", "lib/c.c", "d.c", "/abs/e.c"]
    frames = []
    for i in range(300):
        if i % 50 == 49:
            frames.append(dict(id=i, module="/lib/libz.so", offset=i * 16, function=None,
                               file=None, line=0))
        else:
            frames.append(dict(id=i, module="/bin/x", offset=i, function="f%d" % i,
                               file=rng.choice(files), line=rng.randint(1, 40)))
    tbs = []
    for t in range(1, 400):
        ids, seen = [], set()
        for _ in range(rng.randint(1, 6)):
            f = rng.randrange(300)
            k = (frames[f]["file"], frames[f]["line"], frames[f]["module"])
            k2 = frames[f]["file"] or frames[f]["module"]
            if k in seen or k2 in seen:
                continue
            seen.update((k, k2))
            ids.append(f)
        tbs.append(dict(id=t, total=len(ids) + rng.choice((0, 0, 3)), frames=ids))
    traces = []
    for _ in range(5000):
        size = rng.choice((rng.randint(1, 600), rng.randint(1, 1 << 20), rng.randint(1, 1 << 42)))
        traces.append([0, size, rng.randint(1, 399)])
    cur = sum(t[1] for t in traces)
    return {"format": "memshim-snapshot", "version": 1, "pid": 1, "traceback_limit": 6,
            "totals": {"current": cur, "peak": cur, "traces": len(traces)},
            "traces": traces, "tracebacks": tbs, "frames": frames, "timeline": []}


class FormatSize(unittest.TestCase):
    def test_against_tracemalloc(self):
        sys.path.insert(0, os.path.join(os.path.dirname(SCRIPT)))
        from memshim_report.sizefmt import format_size
        values = set()
        for unit in (1, 1024, 1024**2, 1024**3, 1024**4, 1024**5):
            for base in (0, 1, 5, 99, 100, 101, 1023, 1024, 9999, 10239, 10240, 10241,
                         102399, 102400, 102401):
                values.update((base * unit, base * unit - 1, base * unit + 1))
            for tenths in range(0, 1000, 7):  # x.x5 cases: round half to even
                values.add(tenths * unit // 10 + unit // 20)
        rng = random.Random(7)
        values.update(rng.randrange(1 << 50) for _ in range(3000))
        values.update(rng.randrange(1 << 20) for _ in range(3000))
        floats = [v / d for v in list(values)[:2000] for d in (3, 7)]
        for v in sorted(values) + floats:
            for n in (v, -v):
                for sign in (False, True):
                    self.assertEqual(format_size(n, sign), tracemalloc._format_size(n, sign),
                                     (n, sign))


class Errors(unittest.TestCase):
    def expect_error(self, args, needle=None):
        rc, out, err = run(args)
        self.assertEqual(rc, 2, (args, err))
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("memshim-report: "), err)
        self.assertNotIn("Traceback", err)
        if needle:
            self.assertIn(needle, err)

    def test_broken_fixtures(self):
        bad = os.path.join(FIX, "bad")
        names = sorted(os.listdir(bad))
        self.assertGreaterEqual(len(names), 12)
        for name in names:
            with self.subTest(fixture=name):
                self.expect_error([os.path.join(bad, name)], name)
                # The same with every mode of output.
                self.expect_error([os.path.join(bad, name), "--format", "collapsed"])
                self.expect_error([os.path.join(FIX, "a.json"), "--compare",
                                   os.path.join(bad, name)], name)

    def test_deep_nesting(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"format": "memshim-snapshot", "traces": ' + "[" * 200000 + "]" * 200000
                    + "}")
            f.flush()
            self.expect_error([f.name], "nested too deeply")

    def test_missing_file_and_directory(self):
        self.expect_error(["/nonexistent/snap.json"], "No such file")
        self.expect_error([FIX], "directory")

    def test_usage_errors(self):
        a = os.path.join(FIX, "a.json")
        self.expect_error([a, "--key", "traceback", "--cumulative"], "--cumulative")
        self.expect_error([a, "--key", "bogus"], "--key")
        self.expect_error([a, "--limit", "-1"], "--limit")
        self.expect_error([a, "--compare", a, "--format", "collapsed"], "--compare")
        self.expect_error([a, "--compare", a, "--html", "/dev/null"], "--compare")
        self.expect_error([], "SNAPSHOT")


class RealSnapshots(unittest.TestCase):
    """Snapshots written by libmemshim.so around sites.c (MS_REPORT_SITES, MS_REPORT_LIB)."""

    @classmethod
    def setUpClass(cls):
        exe, lib = os.environ.get("MS_REPORT_SITES"), os.environ.get("MS_REPORT_LIB")
        if not exe or not lib:
            raise unittest.SkipTest("MS_REPORT_SITES / MS_REPORT_LIB not set (meson sets them)")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.snaps = []
        for run_no in (1, 2, 3):
            path = os.path.join(cls.tmp.name, "run%d.json" % run_no)
            env = dict(os.environ, LD_PRELOAD=lib, MEMSHIM_TRACEMALLOC="16",
                       MEMSHIM_LEAKS="0", MEMSHIM_SNAPSHOT=path,
                       MEMSHIM_REPORT=path[:-5] + ".txt")
            p = subprocess.run([exe, str(run_no)], env=env, capture_output=True, text=True)
            assert p.returncode == (-11 if run_no == 3 else 0) and p.stderr == "", p.stderr
            cls.snaps.append(path)
        cls.lines = {}
        with open(os.path.join(HERE, "sites.c")) as f:
            for no, line in enumerate(f, 1):
                if "/* site: " in line:
                    cls.lines[line.split("/* site: ")[1].split(" ")[0]] = no

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def site_lines(self, out):
        """site name -> the text after 'sites.c:LINE: ' (file names as the compiler had them)."""
        by_line = {v: k for k, v in self.lines.items()}
        found = {}
        for line in out.splitlines():
            head, sep, body = line.partition(": ")
            if sep and head.rpartition(":")[0].endswith("sites.c"):
                no = int(head.rpartition(":")[2])
                found.setdefault(by_line.get(no, no), body)
        return found

    def test_same_as_the_report_at_exit(self):
        # The library's own MEMSHIM_REPORT and this tool agree line for line.
        with open(self.snaps[0][:-5] + ".txt") as f:
            at_exit = f.read().splitlines()
        out = ok(self, [self.snaps[0]]).splitlines()
        self.assertTrue(at_exit[-2].startswith("Current traced memory: "), at_exit)
        self.assertEqual(at_exit[:-2], out[:-1])
        self.assertGreaterEqual(len(out), 4)

    def test_crash_snapshot_symbolised(self):
        # Written from the SIGSEGV handler: module + offset only; addr2line names them.
        with open(self.snaps[2]) as f:
            self.assertIsNone(json.load(f)["frames"][0]["file"])
        if shutil.which("addr2line") is None:
            self.skipTest("no addr2line (binutils)")
        out = ok(self, [self.snaps[2], "--include", "*sites.c"])
        self.assertEqual(self.site_lines(out), self.site_lines(ok(self, [self.snaps[0]])))
        out = ok(self, [self.snaps[2], "--key", "traceback", "--no-source"])
        self.assertRegex(out, r'  File "[^"]*sites.c", line %d, in make_buffer\n'
                         % self.lines["make_buffer"])
        raw = ok(self, [self.snaps[2], "--no-symbolize"])
        self.assertRegex(raw, r"\n\S*report_sites\+0x[0-9a-f]+: size=110 KiB, count=4,")

    def test_lineno(self):
        out = ok(self, [self.snaps[0], "--include", "*sites.c"])
        got = self.site_lines(out)
        self.assertEqual(got["make_buffer"], "size=110 KiB, count=4, average=27.4 KiB")
        self.assertEqual(got["grow_table"], "size=97.7 KiB, count=100, average=1000 B")
        self.assertEqual(got["recurse"], "size=64 B, count=1, average=64 B")
        self.assertEqual(len(got), 3, out)  # make_buffer(777) was freed

    def test_cumulative(self):
        out = ok(self, [self.snaps[0], "--cumulative", "--include", "*sites.c", "--all-frames"])
        got = self.site_lines(out)
        self.assertEqual(got["main_small"], "size=12.0 KiB, count=3, average=4096 B")
        self.assertEqual(got["main_big"], "size=97.7 KiB, count=1, average=97.7 KiB")
        self.assertEqual(got["recurse"], "size=64 B, count=1, average=64 B")

    def test_traceback(self):
        out = ok(self, [self.snaps[0], "--key", "traceback", "--no-source"])
        self.assertRegex(out, r'  File "[^"]*sites.c", line %d, in make_buffer\n'
                              r'  File "[^"]*sites.c", line %d, in main\n'
                         % (self.lines["make_buffer"], self.lines["main_big"]))
        # recurse(30): 31 levels + main, only 16 recorded.
        self.assertRegex(out, r"  \.\.\. \d+ more frames not recorded")
        self.assertNotIn("__libc_start", out)

    def test_compare(self):
        out = ok(self, [self.snaps[1], "--compare", self.snaps[0], "--include", "*sites.c"])
        got = self.site_lines(out)
        # run 2: 6 x 4096 + 100000 bytes at make_buffer, 200 x 1000 at grow_table.
        self.assertEqual(got["make_buffer"],
                         "size=122 KiB (+12.0 KiB), count=7 (+3), average=17.4 KiB")
        self.assertEqual(got["grow_table"],
                         "size=195 KiB (+97.7 KiB), count=200 (+100), average=1000 B")
        self.assertTrue(out.startswith("[ Top 10 differences ]\n"))

    def test_collapsed(self):
        out = ok(self, [self.snaps[0], "--format", "collapsed"])
        self.assertIn("main;make_buffer 112288\n", out)
        self.assertIn("main;grow_table 100000\n", out)
        self.assertIn("[truncated];" + ";".join(["recurse"] * 16) + " 64\n", out)


def regen():
    os.makedirs(EXPECTED, exist_ok=True)
    for name, args in CASES.items():
        rc, out, err = run(fixture_args(args))
        assert rc == 0, err
        with open(os.path.join(EXPECTED, name + ".txt"), "w") as f:
            f.write(out)


if __name__ == "__main__":
    SCRIPT = os.path.abspath(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--regen":
        regen()
        sys.exit(0)
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
