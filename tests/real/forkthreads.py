# SPDX-License-Identifier: MIT
"""tests/real workload: fork() from a multi-threaded parent, every object through malloc.

Four threads keep building and dropping dicts, lists and strings while the main thread forks
children one after another; each child (whose allocator state was copied in the middle of
the threads' work) builds objects of its own and reports a checksum through a pipe. Run with
PYTHONMALLOC=malloc under LD_PRELOAD; the output is deterministic and compared with a plain
run by tests/real/run.sh.
"""
import os
import threading
import zlib

CHILDREN = 40


def churn(seed, stop, results, idx):
    x = seed
    total = 0
    while not stop.is_set():
        objs = []
        for i in range(2000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            objs.append({"k": x % 1000, "s": "v" * (x % 50), "t": (i, x & 7)})
        total += len(objs)
    results[idx] = total


def child_work(n):
    h = 0
    for r in range(20):
        d = {("key%d_%d" % (n, i)): [i, str(i * r), (i, r)] for i in range(500)}
        h = zlib.crc32(repr(sorted(d.items())[:50]).encode(), h)
    return h


def main():
    stop = threading.Event()
    results = [0] * 4
    threads = [threading.Thread(target=churn, args=(s + 1, stop, results, s)) for s in range(4)]
    for t in threads:
        t.start()
    lines = []
    for n in range(CHILDREN):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, b"%08x" % child_work(n))
            os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 64)
            if not chunk:
                break
            data += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        lines.append("child %d status %d crc %s" % (n, os.waitstatus_to_exitcode(status),
                                                     data.decode()))
    stop.set()
    for t in threads:
        t.join()
    print("\n".join(lines))
    print("threads done: %s" % all(v > 0 for v in results))


if __name__ == "__main__":
    main()
