#!/bin/sh
# readme_example.sh README MARKER: prints the first ```c block after the HTML comment that
# names MARKER (the README's examples are compiled from there, never from a copy).
awk -v m="$2" 'index($0, m) && /<!--/ {f=1; next} f && /^```c/ {g=1; next} g && /^```/ {exit} g' "$1"
