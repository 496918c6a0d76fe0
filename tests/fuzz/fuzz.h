/*
 * fuzz: what the fuzz targets share.
 *
 * Each target defines LLVMFuzzerInitialize (once per process) and
 * LLVMFuzzerTestOneInput (once per input). libFuzzer calls them in the fuzz
 * build; replay_main.c calls them for every file of the seed corpus and the
 * regression inputs in the normal builds. A broken invariant aborts with
 * FUZZ_CHECK's message, which libFuzzer reports as a crash and saves the
 * input; assert() would vanish under NDEBUG.
 */
#ifndef CLIQHOST_FUZZ_H
#define CLIQHOST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, "%s", #cond);                                            \
    } while (0)

/* Prints "file:line: invariant broken: <message>" and aborts. */
void fuzz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Makes a fresh folder under $TMPDIR (or /tmp) that is removed with all it
 * holds when the process exits normally. Returns its path (static storage). */
const char *fuzz_tmpdir(const char *name);

/* 1 if s (n bytes) is valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). Written apart from the host's own
 * check, so the two can disagree. */
int fuzz_utf8_valid(const char *s, size_t n);

/* Parses text (n bytes) as the host does: one JSON value, then only
 * whitespace. Returns the tree (caller frees with cJSON_Delete) or NULL. */
struct cJSON *fuzz_json_parse(const char *text, size_t n);

#endif
