/*
 * replay_main: runs a fuzz target over files without libFuzzer.
 *
 *   fuzz_replay_<t> PATH...    each PATH a file, or a folder whose files run
 *                              in name order; a missing folder is skipped
 *
 * The normal builds (gcc, and the ASan pass) link this with each target's
 * LLVMFuzzerTestOneInput, so the seed corpus and every regression input run
 * in CTest. A broken invariant or a sanitizer report fails the test; the
 * file that was running is named on standard error first.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Inputs bigger than this are not inputs libFuzzer would make (-max_len). */
#define REPLAY_MAX (1024 * 1024)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char *data = malloc(REPLAY_MAX + 1);
    size_t n = data ? fread(data, 1, REPLAY_MAX + 1, f) : 0;
    int bad = !data || ferror(f) || n > REPLAY_MAX;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: unreadable, or over %d bytes\n", path, REPLAY_MAX);
        free(data);
        return -1;
    }
    fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
    /* An exact-size copy, so ASan sees a read past the input's end. */
    unsigned char *copy = malloc(n ? n : 1);
    memcpy(copy, data, n);
    free(data);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in dir. Returns the number run, or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    int count = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(names[i]) < 0)
                failed = 1;
            else
                count++;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : count;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    int total = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            if (errno == ENOENT) {
                fprintf(stderr, "%s: none\n", argv[i]);
                continue;
            }
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            int n = run_dir(argv[i]);
            if (n < 0)
                failed = 1;
            else
                total += n;
        } else if (run_file(argv[i]) < 0) {
            failed = 1;
        } else {
            total++;
        }
    }
    printf("replayed %d inputs%s\n", total, failed ? " (some files could not be read)" : "");
    return failed || total == 0;
}
