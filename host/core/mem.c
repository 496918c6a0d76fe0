/* mem: allocation wrappers that abort with the caller's file and line. */
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n, const char *file, int line)
{
    /* Plain stdio: the logger itself allocates nothing, but keep this path
     * free of any dependency that could need memory. */
    fprintf(stderr, "cliqhost: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *mem_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n, file, line);
    return p;
}

void *mem_calloc(size_t n, size_t m, const char *file, int line)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom(n * m, file, line);
    return p;
}

void *mem_realloc(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n, file, line);
    return q;
}

char *mem_strndup(const char *s, size_t n, const char *file, int line)
{
    size_t len = strnlen(s, n);
    char *d = mem_malloc(len + 1, file, line);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
