// SPDX-License-Identifier: MIT
// A derived object deleted through a base pointer whose class has no virtual destructor:
// the compiler's sized delete passes the base's size.  In a debug mode memshim must stop
// there (tests/shim/check_sized_delete.sh); with "ok" the deletes are all correct ones
// (plain, array, aligned, through the right type), which must pass silently.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct Base {
    int x = 1;
};
struct Derived : Base {
    long y[4] = {};
};
struct alignas(64) Wide {
    char c[100];
};

__attribute__((noinline)) Base *make_derived() { return new Derived; }

int main(int argc, char **argv)
{
    bool ok = argc > 1 && std::strcmp(argv[1], "ok") == 0;
    std::vector<std::string> v;
    for (int i = 0; i < 100; i++)
        v.push_back(std::to_string(i) + " a string long enough for the heap");
    delete new Derived;
    delete[] new Derived[3];
    delete new Wide;
    delete[] new Wide[2];
    delete std::make_unique<std::string>("x").release();
    if (!ok) {
        Base *b = make_derived();
        delete b;
    }
    std::printf("done %zu\n", v.size());
    return 0;
}
