# SPDX-License-Identifier: MIT
"""Benchmark and real-program workload: an object-heavy Python script.

Builds and drops many small objects the way ordinary Python code does -- dicts, lists, tuples,
str and bytes, small class instances, sets, a JSON round trip -- so that under
PYTHONMALLOC=malloc every one of them goes through malloc/free. Deterministic: the same
SCALE prints the same lines under every allocator (scripts/bench and tests/real compare them).

Usage: /usr/bin/python3 objects.py [SCALE, default 4]   (SCALE 4: about 1.5 s on glibc, unloaded)
"""
import json
import sys
import zlib


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y


class Node:
    def __init__(self, key, value, children=None):
        self.key = key
        self.value = value
        self.children = children or []


def build(seed, n):
    """Many short-lived small objects: the allocator's work dominates the interpreter's."""
    live = []
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        k = x % 97
        d = {"id": i, "k": k, "name": "n" + str(x % 10007), "t": (i, k, x & 255)}
        if k % 3 == 0:
            d["tags"] = [str(k), str(i % 7), (k, i)]
        node = Node(k, d)
        if live and k % 2:
            node.children.append(live[-1])
        live.append(node)
        if len(live) > 40000:
            # drop a chunk: frees a mix of dicts, lists, tuples, strs and instances
            del live[:20000]
    return x, live


def tree(seed, depth):
    if depth == 0:
        return Node(seed % 1000, str(seed))
    return Node(seed % 1000, None, [tree(seed * 3 + c, depth - 1) for c in range(3)])


def walk(node):
    total = node.key
    for child in node.children:
        total += walk(child)
    return total


def round_once(seed):
    h = 0
    x, live = build(seed, 60000)
    h = zlib.crc32(repr((x, len(live), live[-1].value["name"])).encode(), h)
    groups = {}
    for node in live:
        groups.setdefault(node.value["name"][:3], []).append(node.key)
    h = zlib.crc32(repr(sorted((k, sum(v)) for k, v in groups.items())).encode(), h)
    pts = [Point(i * 0.5, (i * 7919) % 1000) for i in range(5000)]
    pts.sort(key=lambda p: (p.y, p.x))
    h = zlib.crc32(repr((pts[0].x, pts[-1].y)).encode(), h)
    words = ["w%d_%d" % (i % 251, i % 17) for i in range(8000)]
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    h = zlib.crc32(" ".join(sorted(set(words))[:100]).encode(), h)
    pairs = [(w, len(w), w.upper()) for w in words]
    h = zlib.crc32(repr(max(pairs)).encode(), h)
    text = json.dumps([n.value for n in live[:300]], sort_keys=True)
    h = zlib.crc32(repr(len(json.loads(text))).encode() + text.encode(), h)
    h = zlib.crc32(repr(walk(tree(seed, 6))).encode(), h)
    return h, len(live) + len(pts) + len(words)


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    h = 0
    objects = 0
    for i in range(scale):
        rh, n = round_once(12345 + i)
        h = zlib.crc32(rh.to_bytes(4, "little"), h)
        objects += n
        if i % 5 == 4:
            print("round %d crc %08x" % (i + 1, h))
    print("objects %d crc %08x" % (objects, h))


if __name__ == "__main__":
    main()
