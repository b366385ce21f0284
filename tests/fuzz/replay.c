/* SPDX-License-Identifier: MIT */
/*
 * Replays a fuzz target's seed corpus without libFuzzer: every file in the directories
 * named on the command line goes through LLVMFuzzerTestOneInput once.  This is how a gcc
 * build (CI's) still runs each target's model checks; exploring new inputs needs clang
 * and scripts/fuzz.  Exits non-zero when a directory holds no input (the target itself
 * aborts on a failed check).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 1;
}

int main(int argc, char **argv)
{
    int inputs = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d == NULL)
            continue;
        char path[4096];
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            inputs += replay_file(path);
        }
        closedir(d);
    }
    printf("%d inputs replayed\n", inputs);
    return inputs > 0 ? 0 : 1;
}
