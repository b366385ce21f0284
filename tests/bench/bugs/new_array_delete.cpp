// Bug: allocator mismatch: an array from `new int[8]` is released with `delete` (not
// `delete[]`); int has no destructor, so there is no array cookie: only the API differs.
// SPDX-License-Identifier: MIT
int main()
{
    int *volatile p;
    p = new int[8]; // alloc
    p[0] = 1;
    delete p;
    return 0;
}
