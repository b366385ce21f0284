// SPDX-License-Identifier: MIT
// Every replaceable operator new/delete variant under memshim: alignment, sizes, the
// new-handler protocol and std::bad_alloc on failure, nothrow returning nullptr.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>
#include <map>

static int passes, failures;
#define CHECK(c, what)                                                     \
    do {                                                                   \
        if (c) passes++;                                                   \
        else { failures++; std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, what); } \
    } while (0)

static int handler_calls;
static void handler() {
    handler_calls++;
    std::set_new_handler(nullptr);  // next failure throws
}

struct alignas(64) Wide { char c[100]; };
struct alignas(256) Wider { char c[512]; };

int main() {
    // Containers exercise plain and sized new/delete at many sizes.
    std::map<int, std::string> m;
    size_t expected = 0;
    for (int i = 0; i < 20000; i++) {
        m[i] = std::string(i % 300, 'x');
        expected += i % 300;
    }
    size_t total = 0;
    for (auto &kv : m) total += kv.second.size() * (kv.second == std::string(kv.first % 300, 'x'));
    CHECK(total == expected, "map contents");
    std::vector<std::vector<int>> vv(1000);
    for (int i = 0; i < 1000; i++) vv[i].resize(i);
    CHECK(vv[999].size() == 999, "vectors");

    for (int i = 0; i < 100; i++) {
        Wide *w = new Wide;
        CHECK(reinterpret_cast<uintptr_t>(w) % 64 == 0, "aligned new 64");
        delete w;
        Wider *a = new Wider[3];
        CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0, "aligned new[] 256");
        delete[] a;
        Wide *n = new (std::nothrow) Wide;
        CHECK(n && reinterpret_cast<uintptr_t>(n) % 64 == 0, "aligned nothrow new");
        delete n;
        char *z = new char[0];
        CHECK(z != nullptr, "new char[0]");
        delete[] z;
        int *one = new int(7);
        CHECK(*one == 7, "new int");
        ::operator delete(one, sizeof(int));
    }

    // Failure: the handler runs, then std::bad_alloc is thrown.
    std::set_new_handler(handler);
    bool threw = false;
    try {
        volatile size_t huge = SIZE_MAX / 2;
        char *p = new char[huge];
        p[0] = 1;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "new of an impossible size throws std::bad_alloc");
    CHECK(handler_calls == 1, "the new-handler was called once before the throw");
    volatile size_t huge = SIZE_MAX / 2;
    CHECK(new (std::nothrow) char[huge] == nullptr, "nothrow new of an impossible size");

    std::printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
