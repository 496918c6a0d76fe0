/*
 * mem: the host's allocation wrappers.
 *
 * The host's own memory (not the Lua heap, which script/vm caps separately) comes
 * from these. Out of memory in the host is not recoverable in any useful way,
 * so they never return NULL: they log the file and line and abort.
 */
#ifndef CLIQHOST_MEM_H
#define CLIQHOST_MEM_H

#include <stddef.h>

#define xmalloc(n)     mem_malloc((n), __FILE__, __LINE__)
#define xcalloc(n, m)  mem_calloc((n), (m), __FILE__, __LINE__)
#define xrealloc(p, n) mem_realloc((p), (n), __FILE__, __LINE__)
#define xstrdup(s)     mem_strndup((s), (size_t)-1, __FILE__, __LINE__)
#define xstrndup(s, n) mem_strndup((s), (n), __FILE__, __LINE__)

/* Never return NULL; abort with file:line on failure. Caller frees with free(). */
void *mem_malloc(size_t n, const char *file, int line);
void *mem_calloc(size_t n, size_t m, const char *file, int line);
void *mem_realloc(void *p, size_t n, const char *file, int line);
/* Copies at most n bytes of s and always NUL-terminates. Caller frees. */
char *mem_strndup(const char *s, size_t n, const char *file, int line);

#endif
