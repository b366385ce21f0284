// Bug: allocator mismatch: a block from malloc() is released with C++ `delete`.
// With glibc both end in free(), so nothing breaks, but it is undefined behaviour.
// SPDX-License-Identifier: MIT
#include <cstdlib>

int main()
{
    int *volatile p = static_cast<int *>(std::malloc(sizeof(int))); // alloc
    *p = 1;
    delete p;
    return 0;
}
