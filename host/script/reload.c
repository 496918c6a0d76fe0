/* reload: the watcher that checks changes and publishes snapshots (see reload.h). */
#include "script/reload.h"

#include "cliq/request.h"
#include "core/log.h"
#include "core/mem.h"
#include "script/luavm.h"
#include "script/loader.h"
#include "script/scriptset.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define GONE_HASH 1 /* seen_hash of a file that was deleted */
#define MAX_DIRS  4096

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h < 2 ? h + 2 : h; /* 0 and 1 mean "none" and "gone" */
}

/* ---- the folder on disk ------------------------------------------------- */

struct found {
    char *rel;
    struct stat st;
};

struct listing {
    struct found *f;
    size_t n, cap;
    char **dirs; /* folders to watch */
    size_t ndirs, capdirs;
};

static int lua_file_name(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".lua") == 0 && name[0] != '.';
}

static void add_dir(struct listing *l, const char *path)
{
    if (l->ndirs == MAX_DIRS)
        return;
    if (l->ndirs == l->capdirs) {
        l->capdirs = l->capdirs ? 2 * l->capdirs : 16;
        l->dirs = xrealloc(l->dirs, l->capdirs * sizeof *l->dirs);
    }
    l->dirs[l->ndirs++] = xstrdup(path);
}

static void add_file(struct listing *l, const char *rel, const struct stat *st)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->f = xrealloc(l->f, l->cap * sizeof *l->f);
    }
    l->f[l->n].rel = xstrdup(rel);
    l->f[l->n].st = *st;
    l->n++;
}

/* Lists the .lua files in root/reldir (reldir "" or ending in '/'), into
 * subfolders when `deep`. Folders found go on the watch list. */
static void list_dir(struct listing *l, const char *root, const char *reldir, int deep, int depth)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/%s", root, reldir);
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    add_dir(l, dir);
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.')
            continue;
        char rel[1024];
        int n = snprintf(rel, sizeof rel, "%s%s", reldir, de->d_name);
        if (n < 0 || (size_t)n >= sizeof rel - 1)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (deep && depth < 16) {
                rel[n] = '/';
                rel[n + 1] = '\0';
                list_dir(l, root, rel, deep, depth + 1);
            }
        } else if (S_ISREG(st.st_mode) && lua_file_name(de->d_name)) {
            add_file(l, rel, &st);
        }
    }
    closedir(dh);
}

static int cmp_found(const void *a, const void *b)
{
    return strcmp(((const struct found *)a)->rel, ((const struct found *)b)->rel);
}

/* Every script and module file under root, sorted by path. */
static void list_scripts(struct listing *l, const char *root)
{
    struct stat st;
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    add_dir(l, root);
    for (const char *const *t = request_types; *t; t++) {
        int per_component;
        const char *p = request_type_path(*t, &per_component);
        if (per_component) {
            list_dir(l, root, p, 0, 0);
        } else {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", root, p);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                add_file(l, p, &st);
        }
    }
    list_dir(l, root, "lib/", 1, 0);
    if (l->n > 1)
        qsort(l->f, l->n, sizeof *l->f, cmp_found);
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->f[i].rel);
    free(l->f);
    for (size_t i = 0; i < l->ndirs; i++)
        free(l->dirs[i]);
    free(l->dirs);
}

static int same_stat(const struct script_src *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void set_stat(struct script_src *e, const struct stat *st)
{
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->ctime = st->st_ctim;
}

/* Reads root/rel up to cap bytes. Returns the text (caller frees) or NULL
 * with the reason in err. */
static char *read_text(const char *root, const char *rel, size_t cap, size_t *len, char *err,
                       size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *data = xmalloc(cap + 1);
    size_t n = fread(data, 1, cap + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > cap) {
        free(data);
        if (bad)
            snprintf(err, errlen, "%s: read error", path);
        else
            snprintf(err, errlen, "%s: larger than max_script_bytes (%zu)", path, cap);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

/* ---- one rescan --------------------------------------------------------- */

/* One file's part in a rescan. */
struct item {
    const char *rel;
    int module;             /* under lib/ */
    struct script_src *old; /* served now (or known only by its error), or NULL */
    const struct stat *st;  /* on disk now, or NULL: gone */
    char *text;             /* read from disk when it may differ from what is served */
    size_t len;
    uint64_t hash;    /* of text; GONE_HASH when gone */
    char *read_error; /* could not read it */
    int dirty;        /* the disk differs from what is served: try the disk's version */
    int moved;        /* the disk changed since the last rescan looked */
    int writing;      /* empty and just written: left for the next rescan */
    /* While settling. */
    int held;        /* a module whose disk version is held back */
    int accepted;    /* a script whose disk version loads */
    int affected;    /* serves its old text but requires a module that changes */
    char *why;       /* why the disk version is not taken */
    char *deps_seen; /* "\n"-joined modules its top level loaded, last check */
};

struct scan {
    struct scripts_hub *hub;
    const struct luavm_options *lo;
    struct item *it;
    size_t n;
    int initial;
    int failures; /* files rejected */
    int unknown;  /* unknown handler names */
    int changes;
    int quiet;   /* `check`: problems go to its output, not the log */
    int writing; /* a file is being written: rescan soon */
    struct luavm *vm;
    struct item *checking; /* the script whose top level runs */
};

/* Logs unless the rescan is quiet. */
__attribute__((format(printf, 3, 4))) static void note(struct scan *sc, enum log_level level,
                                                       const char *fmt, ...)
{
    if (sc->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}

static struct item *find_item(struct scan *sc, const char *rel)
{
    size_t lo = 0, hi = sc->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sc->it[mid].rel, rel);
        if (c == 0)
            return &sc->it[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether the "\n"-joined list `seen` holds `rel`. */
static int seen_has(const char *seen, const char *rel)
{
    size_t n = strlen(rel);
    for (const char *q = seen; q && (q = strstr(q, rel)); q += n)
        if ((q == seen || q[-1] == '\n') && (q[n] == '\n' || q[n] == '\0'))
            return 1;
    return 0;
}

/* Every module a script's top level loads, however deep, counts as its
 * dependency (each check starts with an empty module cache). */
static void on_require(void *ud, const char *parent, const char *module)
{
    (void)parent;
    struct scan *sc = ud;
    struct item *p = sc->checking;
    if (!p || seen_has(p->deps_seen, module))
        return;
    size_t ml = strlen(module);
    size_t have = p->deps_seen ? strlen(p->deps_seen) : 0;
    p->deps_seen = xrealloc(p->deps_seen, have + ml + 2);
    if (have)
        p->deps_seen[have++] = '\n';
    memcpy(p->deps_seen + have, module, ml + 1);
}

static void set_deps(struct script_src *e, const char *seen)
{
    script_src_free_deps(e);
    if (!seen)
        return;
    size_t n = 1;
    for (const char *q = seen; *q; q++)
        n += *q == '\n';
    e->deps = xcalloc(n, sizeof *e->deps);
    const char *q = seen;
    while (*q) {
        const char *nl = strchr(q, '\n');
        size_t l = nl ? (size_t)(nl - q) : strlen(q);
        e->deps[e->ndeps++] = xstrndup(q, l);
        q += l + (nl ? 1 : 0);
    }
}

/* A module whose disk version is in play this round. */
static int changing(const struct item *m)
{
    return m->module && m->dirty && !m->held;
}

/* The modules a check runs against: the disk's version of each module in
 * play, what is served for the others. */
static struct scriptset *candidate(struct scan *sc)
{
    struct scriptset *s = scriptset_new(sc->n);
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        if (!it->module)
            continue;
        struct script_src *e;
        if (changing(it)) {
            if (!it->st)
                continue; /* deleted: try without it */
            e = script_src_new(it->rel);
            e->src = xmalloc(it->len + 1);
            memcpy(e->src, it->text, it->len + 1);
            e->len = it->len;
            e->version = i + 1;
        } else if (it->old && it->old->src) {
            e = script_src_hold(it->old);
        } else {
            continue;
        }
        s->e[s->n++] = e;
    }
    return s;
}

static int check(struct scan *sc, struct item *it, const char *src, size_t len, char *keys,
                 size_t keyslen, char *err, size_t errlen)
{
    free(it->deps_seen);
    it->deps_seen = NULL;
    sc->checking = it;
    int rc = loader_validate(sc->vm, it->rel, src, len, on_require, sc, keys, keyslen, err, errlen);
    sc->checking = NULL;
    return rc;
}

static void set_why(struct item *it, const char *why)
{
    free(it->why);
    it->why = xstrdup(why);
}

/* Whether a script still serving its old text requires a module in play. */
static int reaches_change(struct scan *sc, const struct item *it)
{
    for (size_t d = 0; it->old && d < it->old->ndeps; d++) {
        struct item *m = find_item(sc, it->old->deps[d]);
        if (m && changing(m))
            return 1;
    }
    return 0;
}

/* One round: every script in play against the modules in play. A script
 * still on its old text that no longer loads holds back the changing
 * modules it loaded. Returns how many modules it held back. */
static int settle_round(struct scan *sc)
{
    char err[1600];
    struct scriptset *cand = candidate(sc);
    loader_use_set(sc->vm, cand);
    scriptset_release(cand);
    int held = 0;
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        if (it->module)
            continue;
        it->accepted = it->affected = 0;
        if (it->dirty && it->st && !it->read_error) {
            if (check(sc, it, it->text, it->len, NULL, 0, err, sizeof err) == 0) {
                it->accepted = 1;
                continue;
            }
            set_why(it, err);
        }
        if (it->dirty && !it->st)
            continue; /* deleted */
        if (!it->old || !it->old->src || !reaches_change(sc, it))
            continue;
        it->affected = 1;
        if (check(sc, it, it->old->src, it->old->len, NULL, 0, err, sizeof err) == 0)
            continue;
        /* Hold back what it loaded that changed; failing that, all it
         * required before. */
        int blamed = 0;
        for (int pass = 0; pass < 2 && !blamed; pass++) {
            for (size_t j = 0; j < sc->n; j++) {
                struct item *m = &sc->it[j];
                if (!changing(m))
                    continue;
                int used = pass == 0 ? seen_has(it->deps_seen, m->rel) : 1;
                if (pass == 1) {
                    used = 0;
                    for (size_t d = 0; d < it->old->ndeps && !used; d++)
                        used = strcmp(it->old->deps[d], m->rel) == 0;
                }
                if (!used)
                    continue;
                char why[1800];
                snprintf(why, sizeof why, "%s; %s does not load with it: %s",
                         m->st ? "change not taken" : "deleted but still required", it->rel, err);
                set_why(m, why);
                m->held = 1;
                blamed = 1;
                held++;
            }
        }
    }
    return held;
}

/* Warns about handler names no handler type has ("exection"). Returns
 * how many. */
static int unknown_keys(struct scan *sc, const struct item *it, char *keys, FILE *out)
{
    const char *type = NULL;
    for (const char *const *t = request_types; *t && !type; t++) {
        int per;
        const char *p = request_type_path(*t, &per);
        if (per ? strncmp(it->rel, p, strlen(p)) == 0 : strcmp(it->rel, p) == 0)
            type = *t;
    }
    if (type == request_type_schedule)
        return 0; /* its fields were checked as it loaded (schedspec.h) */
    int n = 0;
    char *save = NULL;
    for (char *k = strtok_r(keys, ", ", &save); k && type; k = strtok_r(NULL, ", ", &save)) {
        if (request_key_known(type, k))
            continue;
        if (out)
            fprintf(out, "%s/%s:1: unknown handler '%s' (a %s script has: %s)\n",
                    sc->lo->scripts_dir, it->rel, k, type, request_keys_for_type(type));
        else
            note(sc, LOG_WARN, "%s: unknown handler '%s' (a %s script has: %s)", it->rel, k, type,
                 request_keys_for_type(type));
        n++;
    }
    return n;
}

/* The entry the next snapshot holds for `it`, or NULL (gone). */
static struct script_src *outcome(struct scan *sc, struct item *it, int modules_changed)
{
    if (it->writing)
        return script_src_hold(it->old);
    if (!it->dirty) {
        if (!it->old)
            return NULL;
        int touched = it->st && !same_stat(it->old, it->st);
        int bump = it->affected;               /* serves its old text with new modules */
        int back = it->old->error && it->text; /* the disk is back to what is served */
        if (!touched && !bump && !back)
            return script_src_hold(it->old);
        struct script_src *e = script_src_copy(it->old);
        if (it->st) {
            set_stat(e, it->st);
            e->seen_hash = it->hash ? it->hash : e->seen_hash;
        }
        if (bump) {
            e->version = sc->hub->next_version++;
            set_deps(e, it->deps_seen);
            sc->changes++;
        }
        if (back) {
            free(e->error);
            e->error = NULL;
        }
        return e;
    }
    int taken = it->module ? !it->held : it->accepted || !it->st;
    if (taken && !it->st) {
        note(sc, LOG_INFO, "%s removed%s", it->rel, it->module ? "" : ": no longer served");
        sc->changes++;
        return NULL;
    }
    if (taken) {
        struct script_src *e = script_src_new(it->rel);
        e->src = it->text;
        e->len = it->len;
        it->text = NULL;
        e->version = sc->hub->next_version++;
        e->loaded_at = wall_ms();
        e->seen_hash = it->hash;
        set_stat(e, it->st);
        if (!it->module)
            set_deps(e, it->deps_seen);
        sc->changes++;
        if (!sc->initial)
            note(sc, LOG_INFO, "%s %s%s", it->rel, it->old && it->old->src ? "reloaded" : "loaded",
                 it->module && modules_changed ? "; scripts that require it are reloaded" : "");
        return e;
    }
    /* Not taken: what was served stays, with the reason. */
    struct script_src *e = it->old ? script_src_copy(it->old) : script_src_new(it->rel);
    const char *why = it->read_error ? it->read_error : it->why ? it->why : "did not load";
    int again = e->error && strcmp(e->error, why) == 0 && e->seen_hash == it->hash;
    free(e->error);
    e->error = xstrdup(why);
    if (!again)
        e->error_at = wall_ms();
    e->seen_hash = it->hash;
    if (it->st)
        set_stat(e, it->st);
    if (it->affected) {
        e->version = sc->hub->next_version++;
        set_deps(e, it->deps_seen);
        sc->changes++;
    }
    if (!again) {
        sc->failures++;
        if (it->module)
            note(sc, LOG_ERROR, "%s: %s; %s", it->rel, why,
                 e->src ? "the previous version keeps serving" : "no version of it is available");
        else if (e->src)
            note(sc, LOG_ERROR, "%s did not load; the previous version keeps serving: %s", it->rel,
                 why);
        else
            note(sc, LOG_ERROR, "%s did not load: %s", it->rel, why);
    }
    return e;
}

int reload_scan(struct scripts_hub *h, const struct luavm_options *lo, int initial, FILE *out,
                int *loaded)
{
    struct stat rootst;
    if (!initial && (stat(lo->scripts_dir, &rootst) < 0 || !S_ISDIR(rootst.st_mode))) {
        /* Mid-swap (rm -rf and copy, a release symlink moving) or gone:
         * keep serving what loaded; the watcher looks again when the
         * folder comes back. */
        log_msg(LOG_WARN, NULL, "scripts folder %s is not there; what loaded keeps serving",
                lo->scripts_dir);
        return 0;
    }
    pthread_mutex_lock(&h->scan_mu);
    struct scriptset *cur = scripts_hub_acquire(h, NULL);
    struct listing l = {0};
    list_scripts(&l, lo->scripts_dir);

    struct scan sc = {.hub = h, .lo = lo, .initial = initial, .quiet = out != NULL};
    sc.it = xcalloc(l.n + cur->n + 1, sizeof *sc.it);
    /* Merge what is served with what is on disk, both sorted. */
    size_t a = 0, b = 0;
    while (a < cur->n || b < l.n) {
        int c = a == cur->n ? 1 : b == l.n ? -1 : strcmp(cur->e[a]->rel, l.f[b].rel);
        struct item *it = &sc.it[sc.n++];
        if (c <= 0)
            it->old = cur->e[a++];
        if (c >= 0)
            it->st = &l.f[b++].st;
        it->rel = it->old ? it->old->rel : l.f[b - 1].rel;
        it->module = strncmp(it->rel, "lib/", 4) == 0;
    }

    /* What the disk holds: stat first, then the text. A file whose last
     * version was refused is read again, so it is tried again when
     * anything it depends on changes. */
    char err[1600];
    int moved = 0;
    for (size_t i = 0; i < sc.n; i++) {
        struct item *it = &sc.it[i];
        if (!it->st) {
            it->hash = GONE_HASH;
            it->dirty = 1;
            it->moved = it->old->seen_hash != GONE_HASH;
            moved |= it->moved;
            continue;
        }
        int same = it->old && same_stat(it->old, it->st);
        if (same && !it->old->error)
            continue;
        it->text =
            read_text(lo->scripts_dir, it->rel, lo->max_script_bytes, &it->len, err, sizeof err);
        if (it->text && !it->len && it->old && !out &&
            wall_ms() -
                    ((long long)it->st->st_mtim.tv_sec * 1000 + it->st->st_mtim.tv_nsec / 1000000) <
                2000) {
            /* Just truncated by a writer still at work (an editor saving in
             * place): look again shortly rather than report a script that
             * returns nothing. */
            free(it->text);
            it->text = NULL;
            it->writing = 1;
            sc.writing = 1;
            continue;
        }
        if (!it->text)
            it->read_error = xstrdup(err);
        it->hash = it->text ? fnv1a(it->text, it->len) : fnv1a(err, strlen(err));
        it->moved = !it->old || it->hash != it->old->seen_hash;
        moved |= it->moved;
        it->dirty = !(it->old && it->old->src && it->text && it->old->len == it->len &&
                      memcmp(it->old->src, it->text, it->len) == 0);
    }

    char e2[512];
    if (moved) {
        sc.vm = luavm_new(lo, e2, sizeof e2);
        if (!sc.vm)
            log_msg(LOG_ERROR, NULL, "cannot check scripts: %s", e2);
    }
    int modules_changed = 0;
    if (sc.vm) {
        /* Modules that cannot be read or do not compile are out at once. */
        for (size_t i = 0; i < sc.n; i++) {
            struct item *m = &sc.it[i];
            if (!m->module || !m->dirty)
                continue;
            if (m->read_error) {
                m->held = 1;
            } else if (m->st &&
                       loader_compile_only(sc.vm, m->rel, m->text, m->len, err, sizeof err) < 0) {
                set_why(m, err);
                m->held = 1;
            }
        }
        /* Each round holds back at least one module, or settles. */
        int rounds = 0;
        while (settle_round(&sc) > 0)
            if (++rounds > 64) {
                for (size_t i = 0; i < sc.n; i++)
                    if (changing(&sc.it[i])) {
                        set_why(&sc.it[i], "change not taken: the scripts that require it "
                                           "could not be settled");
                        sc.it[i].held = 1;
                    }
                settle_round(&sc);
                break;
            }
        for (size_t i = 0; i < sc.n; i++)
            modules_changed |= changing(&sc.it[i]);
        /* Unknown handler names, from each script now served anew. */
        char keys[512];
        for (size_t i = 0; i < sc.n; i++) {
            struct item *it = &sc.it[i];
            if (!it->accepted)
                continue;
            char *deps = it->deps_seen;
            it->deps_seen = NULL;
            if (check(&sc, it, it->text, it->len, keys, sizeof keys, err, sizeof err) == 0)
                sc.unknown += unknown_keys(&sc, it, keys, out);
            free(it->deps_seen);
            it->deps_seen = deps;
        }
        luavm_free(sc.vm);
    }

    struct scriptset *next = scriptset_new(sc.n);
    next->modules_gen = cur->modules_gen;
    int differs = 0, problems = 0, scripts = 0;
    for (size_t i = 0; i < sc.n; i++) {
        struct item *it = &sc.it[i];
        struct script_src *e;
        if (it->dirty && !sc.vm) /* nothing checked: keep what is served */
            e = it->old ? script_src_hold(it->old) : NULL;
        else
            e = outcome(&sc, it, modules_changed);
        differs |= e != it->old;
        if (e) {
            next->e[next->n++] = e;
            if (e->error) {
                problems++;
                if (out)
                    fprintf(out, "%s\n", e->error);
            }
            scripts += !it->module && e->src != NULL;
        }
        free(it->text);
        free(it->read_error);
        free(it->why);
        free(it->deps_seen);
    }
    if (modules_changed)
        next->modules_gen = ++h->next_version;
    if (out)
        ; /* `check` says it itself */
    else if (initial && problems)
        log_msg(LOG_WARN, NULL, "%d script%s loaded from %s; %d file%s did not load", scripts,
                scripts == 1 ? "" : "s", lo->scripts_dir, problems, problems == 1 ? "" : "s");
    else if (initial)
        log_msg(LOG_INFO, NULL, "%d script%s loaded from %s", scripts, scripts == 1 ? "" : "s",
                lo->scripts_dir);
    h->writing = sc.writing;
    if (differs || initial)
        scripts_hub_publish(h, next, sc.changes > 0 && !initial, sc.failures);
    else
        scriptset_release(next);
    free(sc.it);
    listing_free(&l);
    scriptset_release(cur);
    pthread_mutex_unlock(&h->scan_mu);
    if (loaded)
        *loaded = scripts;
    return problems + sc.unknown;
}

/* ---- the watcher -------------------------------------------------------- */

struct reloader {
    struct scripts_hub *hub;
    pthread_mutex_t mu; /* guards lo and rescan */
    struct luavm_options lo;
    int rescan; /* set_options asked for a rescan */
    long settle_ms;
    int ifd; /* inotify */
    /* The folders holding the scripts folder and each symlink on the way
     * to it, with the name watched in each. */
    int parent_wd[8];
    char parent_name[8][256];
    int nparents;
    int wakefd; /* eventfd: rescan or stop */
    int stop;
    pthread_t thread;
};

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB |            \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define PARENT_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR)

/* Watches the folder holding `path` for `path`'s name. */
static void watch_parent(struct reloader *r, const char *path)
{
    if (r->nparents == 8)
        return;
    char parent[1024];
    snprintf(parent, sizeof parent, "%s", path);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    char nm[256];
    snprintf(nm, sizeof nm, "%.255s", name);
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    int wd = inotify_add_watch(r->ifd, parent, PARENT_MASK);
    if (wd < 0)
        return;
    r->parent_wd[r->nparents] = wd;
    snprintf(r->parent_name[r->nparents], sizeof r->parent_name[0], "%s", nm);
    r->nparents++;
}

/* Watches every folder scripts may be in (again: inotify keeps one watch
 * per folder, and folders come and go), and the folders holding the scripts
 * folder and each symlink that leads to it, for the folder being replaced
 * (rm -rf and copy, or a release symlink moving). */
static void watch_folders(struct reloader *r, const char *root)
{
    r->nparents = 0;
    char path[1024];
    snprintf(path, sizeof path, "%s", root);
    for (int hop = 0; hop < 8; hop++) {
        watch_parent(r, path);
        char target[1024];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            break;
        target[n] = '\0';
        if (target[0] == '/') {
            snprintf(path, sizeof path, "%s", target);
        } else {
            char *slash = strrchr(path, '/');
            char next[2100];
            if (slash)
                snprintf(next, sizeof next, "%.*s/%s", (int)(slash - path), path, target);
            else
                snprintf(next, sizeof next, "%s", target);
            snprintf(path, sizeof path, "%.1023s", next);
        }
    }
    struct listing l = {0};
    list_scripts(&l, root);
    for (size_t i = 0; i < l.ndirs; i++)
        if (inotify_add_watch(r->ifd, l.dirs[i], WATCH_MASK) < 0 && errno != ENOENT)
            log_msg(LOG_WARN, NULL, "cannot watch %s: %s; edits there are not picked up", l.dirs[i],
                    strerror(errno));
    listing_free(&l);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what inotify has. Returns 1 when an event may change what is
 * served, 0 when none does, -1 when there was nothing to read. */
static int drain(struct reloader *r)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int got = -1, relevant = 0;
    for (;;) {
        ssize_t n = read(r->ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        got = 0;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF)) {
                relevant = 1;
                continue;
            }
            if (!ev->len)
                continue;
            int parent = 0;
            for (int i = 0; i < r->nparents; i++)
                if (ev->wd == r->parent_wd[i]) {
                    parent = 1;
                    relevant |= strcmp(ev->name, r->parent_name[i]) == 0;
                }
            if (parent)
                continue;
            if (ev->name[0] == '.')
                continue;
            if ((ev->mask & IN_ISDIR) || lua_file_name(ev->name))
                relevant = 1;
        }
    }
    return got < 0 ? -1 : relevant;
}

/* Returns 1 when a file was being written and should be looked at again. */
static int rescan(struct reloader *r)
{
    pthread_mutex_lock(&r->mu);
    struct luavm_options lo = r->lo;
    r->rescan = 0;
    pthread_mutex_unlock(&r->mu);
    watch_folders(r, lo.scripts_dir);
    reload_scan(r->hub, &lo, 0, NULL, NULL);
    pthread_mutex_lock(&r->hub->scan_mu);
    int writing = r->hub->writing;
    pthread_mutex_unlock(&r->hub->scan_mu);
    return writing;
}

static void *reloader_main(void *arg)
{
    struct reloader *r = arg;
    struct pollfd pf[2] = {{.fd = r->ifd, .events = POLLIN}, {.fd = r->wakefd, .events = POLLIN}};
    int again = 0; /* rescans left for a file being written */
    for (;;) {
        int n = poll(pf, 2, again ? (int)(5 * r->settle_ms) : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (n == 0) { /* look again at a file that was being written */
            again = rescan(r) ? again - 1 : 0;
            continue;
        }
        if (pf[1].revents) {
            uint64_t v;
            if (read(r->wakefd, &v, sizeof v) < 0 && errno != EAGAIN)
                break;
            pthread_mutex_lock(&r->mu);
            int stop = r->stop, asked = r->rescan;
            pthread_mutex_unlock(&r->mu);
            if (stop)
                break;
            if (asked)
                again = rescan(r) ? 40 : 0;
            continue;
        }
        if (drain(r) <= 0)
            continue;
        /* Let the burst settle: an editor's save, or a checkout of many
         * files, becomes one rescan. */
        long long first = mono_ms(), last = first;
        for (;;) {
            long long now = mono_ms();
            long long wait = last + r->settle_ms - now;
            if (first + 4 * r->settle_ms - now < wait)
                wait = first + 4 * r->settle_ms - now;
            if (wait <= 0)
                break;
            if (poll(pf, 1, (int)wait) > 0 && drain(r) >= 0)
                last = mono_ms();
        }
        again = rescan(r) ? 40 : 0;
    }
    return NULL;
}

static void wake(struct reloader *r)
{
    uint64_t one = 1;
    if (write(r->wakefd, &one, sizeof one) < 0)
        log_msg(LOG_WARN, NULL, "cannot wake the reloader: %s", strerror(errno));
}

/* The reloader's own copy: without the worker's parts. */
static void set_lo(struct reloader *r, const struct luavm_options *lo)
{
    r->lo = *lo;
    r->lo.scripts = NULL;
    r->lo.sched = NULL;
    r->lo.fetch = NULL;
    r->lo.responder = NULL;
    r->lo.outbox = NULL;
    r->lo.mailbox = NULL;
}

struct reloader *reloader_start(struct scripts_hub *h, const struct luavm_options *lo,
                                long settle_ms, char *err, size_t errlen)
{
    struct reloader *r = xcalloc(1, sizeof *r);
    r->hub = h;
    set_lo(r, lo);
    r->settle_ms = settle_ms > 0 ? settle_ms : 1;
    pthread_mutex_init(&r->mu, NULL);
    r->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->ifd < 0 || r->wakefd < 0) {
        snprintf(err, errlen, "cannot watch the scripts folder: %s", strerror(errno));
        goto fail;
    }
    /* The watches, then what changed between the first load and them. */
    rescan(r);
    int rc = pthread_create(&r->thread, NULL, reloader_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the reloader: %s", strerror(rc));
        goto fail;
    }
    return r;
fail:
    if (r->ifd >= 0)
        close(r->ifd);
    if (r->wakefd >= 0)
        close(r->wakefd);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
}

void reloader_set_options(struct reloader *r, const struct luavm_options *lo)
{
    pthread_mutex_lock(&r->mu);
    set_lo(r, lo);
    r->rescan = 1;
    pthread_mutex_unlock(&r->mu);
    wake(r);
}

void reloader_stop(struct reloader *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_mutex_unlock(&r->mu);
    wake(r);
    pthread_join(r->thread, NULL);
    close(r->ifd);
    close(r->wakefd);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
