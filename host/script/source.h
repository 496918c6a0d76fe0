/*
 * source: the text of a script or module, as a worker sees it: from the
 * snapshot it holds (scriptset.h), or read from disk when it has none
 * (`check`, unit tests) and for the host's own lualib/ modules.
 */
#ifndef CLIQHOST_SOURCE_H
#define CLIQHOST_SOURCE_H

#include <stddef.h>

struct luavm;

/* Paths are the scripts folder plus a short relative name; messages hold a
 * path and a sentence. */
#define SOURCE_PATH_MAX 1024
#define SOURCE_ERR_MAX  (SOURCE_PATH_MAX + 400)

/* Reads a script or module file, up to max_script_bytes. Returns 0 with
 * *out (caller frees) and *len, -ENOENT when there is no such file, or -1
 * with a message in err. */
int source_read(struct luavm *vm, const char *path, char **out, size_t *len, char *err,
                size_t errlen);

/* The text of `rel` (a script's path in the scripts folder, or a module's
 * "lib/<name>.lua"): from the snapshot, or from disk when there is none.
 * Returns 0 with *src (borrowed from the snapshot, or read into *owned,
 * which the caller frees) and its version (0 from disk); -ENOENT when there
 * is no such file; -1 with the message in err. */
int source_find(struct luavm *vm, const char *rel, const char **src, size_t *len, char **owned,
                unsigned long long *version, char *err, size_t errlen);

#endif
