/* source: where a worker's script and module texts come from (see source.h). */
#include "script/source.h"

#include "core/mem.h"
#include "script/scriptset.h"
#include "script/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Reads a script or module file, up to the configured cap. Returns 0,
 * -ENOENT when there is no such file, or -1 with a message. Caller frees. */
int source_read(struct luavm *vm, const char *path, char **out, size_t *len, char *err,
                size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return -ENOENT;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    size_t cap = vm->opt.max_script_bytes;
    char *data = xmalloc(cap + 1);
    size_t n = fread(data, 1, cap + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    if (n > cap) {
        free(data);
        snprintf(err, errlen, "%s: larger than max_script_bytes (%zu)", path, cap);
        return -1;
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    return 0;
}

/* The text of `rel` (a script's path in the scripts folder, or a module's
 * "lib/<name>.lua"): from the snapshot, or from disk when there is none.
 * Returns 0 with *src (borrowed from the snapshot, or read into *owned,
 * which the caller frees) and its version (0 from disk); -ENOENT when there
 * is no such file; -1 with the message in err. */
int source_find(struct luavm *vm, const char *rel, const char **src, size_t *len, char **owned,
                unsigned long long *version, char *err, size_t errlen)
{
    *owned = NULL;
    *version = 0;
    if (vm->set) {
        const struct script_src *e = scriptset_find(vm->set, rel);
        if (!e)
            return -ENOENT;
        *version = e->version;
        if (!e->src) {
            snprintf(err, errlen, "%s", e->error ? e->error : "did not load");
            return -1;
        }
        *src = e->src;
        *len = e->len;
        return 0;
    }
    char path[SOURCE_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    int rc = source_read(vm, path, owned, len, err, errlen);
    if (rc < 0)
        return rc;
    *src = *owned;
    return 0;
}
