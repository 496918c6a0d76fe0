/* reload: snapshots of the scripts folder and the watcher (see reload.h). */
#include "reload.h"

#include "log.h"
#include "luavm.h"
#include "mem.h"
#include "request.h"

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

/* ---- entries and snapshots --------------------------------------------- */

struct scriptset {
    atomic_int refs;
    size_t n;
    struct script_src **e; /* sorted by rel */
};

static struct script_src *entry_new(const char *rel)
{
    struct script_src *e = xcalloc(1, sizeof *e);
    atomic_init(&e->refs, 1);
    e->rel = xstrdup(rel);
    return e;
}

static void entry_free_deps(struct script_src *e)
{
    for (size_t i = 0; i < e->ndeps; i++)
        free(e->deps[i]);
    free(e->deps);
    e->deps = NULL;
    e->ndeps = 0;
}

static void entry_release(struct script_src *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    free(e->rel);
    free(e->src);
    free(e->error);
    entry_free_deps(e);
    free(e);
}

static struct script_src *entry_hold(struct script_src *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

/* A private copy of e to change before it is published. */
static struct script_src *entry_copy(const struct script_src *e)
{
    struct script_src *c = entry_new(e->rel);
    if (e->src) {
        c->src = xmalloc(e->len + 1);
        memcpy(c->src, e->src, e->len);
        c->src[e->len] = '\0';
        c->len = e->len;
    }
    c->version = e->version;
    c->loaded_at = e->loaded_at;
    c->error = e->error ? xstrdup(e->error) : NULL;
    c->error_at = e->error_at;
    if (e->ndeps) {
        c->deps = xcalloc(e->ndeps, sizeof *c->deps);
        for (size_t i = 0; i < e->ndeps; i++)
            c->deps[i] = xstrdup(e->deps[i]);
        c->ndeps = e->ndeps;
    }
    c->dev = e->dev;
    c->ino = e->ino;
    c->size = e->size;
    c->mtime = e->mtime;
    c->ctime = e->ctime;
    c->seen_hash = e->seen_hash;
    return c;
}

static int entry_has_dep(const struct script_src *e, const char *module)
{
    for (size_t i = 0; i < e->ndeps; i++)
        if (strcmp(e->deps[i], module) == 0)
            return 1;
    return 0;
}

const struct script_src *scriptset_find(const struct scriptset *s, const char *rel)
{
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->e[mid]->rel, rel);
        if (c == 0)
            return s->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t scriptset_count(const struct scriptset *s)
{
    return s ? s->n : 0;
}

const struct script_src *scriptset_at(const struct scriptset *s, size_t i)
{
    return s->e[i];
}

void scriptset_hold(struct scriptset *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void scriptset_release(struct scriptset *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_release(s->e[i]);
    free(s->e);
    free(s);
}

static struct scriptset *set_new(size_t cap)
{
    struct scriptset *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->e = xcalloc(cap ? cap : 1, sizeof *s->e);
    return s;
}

/* ---- the hub ------------------------------------------------------------ */

struct scripts_hub {
    pthread_mutex_t mu; /* guards cur and stats */
    struct scriptset *cur;
    atomic_ullong gen;
    struct reload_stats stats;
    pthread_mutex_t scan_mu; /* one rescan at a time */
    unsigned long long next_version;
};

struct scripts_hub *scripts_hub_new(void)
{
    struct scripts_hub *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->scan_mu, NULL);
    h->cur = set_new(0);
    atomic_init(&h->gen, 1);
    h->next_version = 1;
    return h;
}

void scripts_hub_free(struct scripts_hub *h)
{
    if (!h)
        return;
    scriptset_release(h->cur);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->scan_mu);
    free(h);
}

unsigned long long scripts_hub_generation(const struct scripts_hub *h)
{
    return atomic_load_explicit(&((struct scripts_hub *)h)->gen, memory_order_acquire);
}

struct scriptset *scripts_hub_acquire(struct scripts_hub *h, unsigned long long *gen)
{
    pthread_mutex_lock(&h->mu);
    struct scriptset *s = h->cur;
    scriptset_hold(s);
    if (gen)
        *gen = atomic_load(&h->gen);
    pthread_mutex_unlock(&h->mu);
    return s;
}

void scripts_hub_stats(struct scripts_hub *h, struct reload_stats *out)
{
    pthread_mutex_lock(&h->mu);
    *out = h->stats;
    pthread_mutex_unlock(&h->mu);
}

static void publish(struct scripts_hub *h, struct scriptset *next, int changed, int failures)
{
    pthread_mutex_lock(&h->mu);
    struct scriptset *old = h->cur;
    h->cur = next;
    if (changed) {
        h->stats.reloads++;
        h->stats.last_reload_at = wall_ms();
    }
    h->stats.failures += (unsigned long long)failures;
    atomic_fetch_add_explicit(&h->gen, 1, memory_order_release);
    pthread_mutex_unlock(&h->mu);
    scriptset_release(old);
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
    struct script_src *old; /* served now, or NULL */
    const struct stat *st;  /* on disk now, or NULL: gone */
    char *text;             /* read from disk when it may have changed */
    size_t len;
    uint64_t hash;          /* of text; GONE_HASH when gone */
    char *read_error;       /* could not read it */
    int changed;            /* differs from what is served */
    int affected;           /* requires (transitively) a module that changed */
    struct script_src *res; /* what the next snapshot holds; NULL: nothing */
    char *deps_seen;        /* modules its top level required, "\n"-joined */
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
    struct luavm *vm; /* scratch state */
    struct scriptset *cand;
    int quiet; /* `check`: problems go to its output, not the log */
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

static unsigned long long new_version(struct scan *sc)
{
    return sc->hub->next_version++;
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

/* Whether `it` requires `module`, directly or through other modules, as
 * last published or as seen in this rescan. */
static int reaches(struct scan *sc, const struct item *it, const char *module, int depth)
{
    if (depth > 32)
        return 0;
    if (seen_has(it->deps_seen, module) || (it->old && entry_has_dep(it->old, module)))
        return 1;
    for (size_t d = 0; it->old && d < it->old->ndeps; d++) {
        const struct item *m = find_item(sc, it->old->deps[d]);
        if (m && m != it && reaches(sc, m, module, depth + 1))
            return 1;
    }
    for (const char *q = it->deps_seen; q && *q;) {
        const char *nl = strchr(q, '\n');
        size_t l = nl ? (size_t)(nl - q) : strlen(q);
        char rel[1024];
        snprintf(rel, sizeof rel, "%.*s", (int)l, q);
        const struct item *m = find_item(sc, rel);
        if (m && m != it && reaches(sc, m, module, depth + 1))
            return 1;
        q += l + (nl ? 1 : 0);
    }
    return 0;
}

/* Records "parent requires module" seen while a top level ran. */
static void on_require(void *ud, const char *parent, const char *module)
{
    struct scan *sc = ud;
    struct item *p = find_item(sc, parent);
    if (!p || seen_has(p->deps_seen, module))
        return;
    size_t ml = strlen(module);
    if (p->deps_seen) {
        size_t have = strlen(p->deps_seen);
        p->deps_seen = xrealloc(p->deps_seen, have + ml + 2);
        p->deps_seen[have] = '\n';
        memcpy(p->deps_seen + have + 1, module, ml + 1);
    } else {
        p->deps_seen = xstrdup(module);
    }
}

static void set_deps(struct script_src *e, const char *seen)
{
    entry_free_deps(e);
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

/* The snapshot a validation runs against: every item's `res` when set,
 * else what is served. `module_text` puts the disk text of changed modules
 * still in play in place of theirs. */
static struct scriptset *build_candidate(struct scan *sc, int module_text)
{
    struct scriptset *s = set_new(sc->n);
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        struct script_src *e = NULL;
        if (module_text && it->module && it->changed && !it->res) {
            if (!it->st)
                continue; /* deleted: try without it */
            e = entry_new(it->rel);
            e->src = xmalloc(it->len + 1);
            memcpy(e->src, it->text, it->len + 1);
            e->len = it->len;
            e->version = new_version(sc);
        } else if (it->res) {
            e = entry_hold(it->res);
        } else if (it->old) {
            e = entry_hold(it->old);
        } else {
            continue;
        }
        s->e[s->n++] = e;
    }
    return s;
}

static void use_candidate(struct scan *sc, struct scriptset *s)
{
    scriptset_release(sc->cand);
    sc->cand = s;
    luavm_use_scriptset(sc->vm, s);
}

static int validate(struct scan *sc, struct item *it, const char *src, size_t len, char *keys,
                    size_t keyslen, char *err, size_t errlen)
{
    free(it->deps_seen);
    it->deps_seen = NULL;
    return luavm_validate(sc->vm, it->rel, src, len, on_require, sc, keys, keyslen, err, errlen);
}

/* Takes what the file on disk holds as rejected: the served version stays,
 * with the problem noted. */
static void reject(struct scan *sc, struct item *it, const char *why)
{
    struct script_src *e = it->res ? it->res : it->old ? entry_copy(it->old) : entry_new(it->rel);
    if (it->res == NULL && it->old)
        e->version = it->old->version;
    free(e->error);
    e->error = xstrdup(why);
    e->error_at = wall_ms();
    e->seen_hash = it->hash;
    if (it->st)
        set_stat(e, it->st);
    it->res = e;
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

/* A new entry serving the text read from disk, with a new version. */
static struct script_src *accept_text(struct scan *sc, struct item *it)
{
    struct script_src *e = entry_new(it->rel);
    e->src = it->text;
    e->len = it->len;
    it->text = NULL;
    e->version = new_version(sc);
    e->loaded_at = wall_ms();
    e->seen_hash = it->hash;
    set_stat(e, it->st);
    sc->changes++;
    return e;
}

/* Marks items that require, directly or through other modules, a module
 * still changing. */
static void mark_affected(struct scan *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        sc->it[i].affected = 0;
    int more = 1;
    while (more) {
        more = 0;
        for (size_t i = 0; i < sc->n; i++) {
            struct item *it = &sc->it[i];
            if (it->affected || !it->old)
                continue;
            for (size_t d = 0; d < it->old->ndeps && !it->affected; d++) {
                struct item *m = find_item(sc, it->old->deps[d]);
                if (m && ((m->changed && !m->res) || m->affected))
                    it->affected = more = 1;
            }
        }
    }
}

/* Phase one: module changes. A module change is taken only when every
 * script that requires it (and is served now) still loads with it. */
static void settle_modules(struct scan *sc)
{
    char err[1600];
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        if (!it->module || !it->changed)
            continue;
        if (it->read_error)
            reject(sc, it, it->read_error);
        else if (it->st &&
                 luavm_compile_only(sc->vm, it->rel, it->text, it->len, err, sizeof err) < 0)
            reject(sc, it, err);
    }
    for (int round = 0; round < 64; round++) {
        mark_affected(sc);
        use_candidate(sc, build_candidate(sc, 1));
        int rejected = 0;
        for (size_t i = 0; i < sc->n && !rejected; i++) {
            struct item *it = &sc->it[i];
            if (it->module || !it->affected || !it->old || !it->old->src)
                continue;
            if (validate(sc, it, it->old->src, it->old->len, NULL, 0, err, sizeof err) == 0)
                continue;
            /* Every changed module it loaded is held back. */
            for (size_t j = 0; j < sc->n; j++) {
                struct item *m = &sc->it[j];
                if (!m->module || !m->changed || m->res)
                    continue;
                if (!reaches(sc, it, m->rel, 0))
                    continue;
                char why[1800];
                snprintf(why, sizeof why, "%s; %s does not load with it: %s",
                         m->st ? "change not taken" : "deleted but still required", it->rel, err);
                reject(sc, m, why);
                rejected = 1;
            }
        }
        if (!rejected)
            break;
    }
    /* The module changes that stand, and versions for what requires them. */
    mark_affected(sc);
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        if (it->module && it->changed && !it->res) {
            if (!it->st) {
                note(sc, LOG_INFO, "%s removed", it->rel);
                sc->changes++;
                continue; /* res stays NULL: gone */
            }
            it->res = accept_text(sc, it);
            if (!sc->initial) {
                note(sc, LOG_INFO, "%s %s", it->rel, it->old ? "changed" : "added");
            }
        } else if (it->affected && !it->res && it->old) {
            struct script_src *e = entry_copy(it->old);
            e->version = new_version(sc);
            it->res = e;
            sc->changes++;
        }
    }
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

/* Phase two: each changed script, from its text on disk, against the
 * modules phase one settled. */
static void settle_scripts(struct scan *sc, FILE *out)
{
    char err[1600];
    char keys[512];
    use_candidate(sc, build_candidate(sc, 0));
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        if (it->module)
            continue;
        if (!it->changed) {
            /* Reached by a module change: what its top level required then. */
            if (it->res && it->res != it->old)
                set_deps(it->res, it->deps_seen);
            continue;
        }
        if (!it->st) {
            if (it->res)
                entry_release(it->res);
            it->res = NULL;
            note(sc, LOG_INFO, "%s removed: no longer served", it->rel);
            sc->changes++;
            continue;
        }
        if (it->read_error) {
            reject(sc, it, it->read_error);
            continue;
        }
        if (validate(sc, it, it->text, it->len, keys, sizeof keys, err, sizeof err) < 0) {
            reject(sc, it, err);
            continue;
        }
        sc->unknown += unknown_keys(sc, it, keys, out);
        struct script_src *e = accept_text(sc, it);
        set_deps(e, it->deps_seen);
        if (it->res)
            entry_release(it->res);
        it->res = e;
        if (!sc->initial) {
            note(sc, LOG_INFO, "%s %s (version %llu)", it->rel, it->old ? "reloaded" : "loaded",
                 e->version);
        }
    }
    /* Module dependencies seen while scripts ran. */
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = &sc->it[i];
        if (it->module && it->deps_seen && it->res && it->res != it->old)
            set_deps(it->res, it->deps_seen);
    }
}

int reload_scan(struct scripts_hub *h, const struct luavm_options *lo, int initial, FILE *out,
                int *loaded)
{
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

    /* What changed: stat first, then the text. */
    char err[1600];
    for (size_t i = 0; i < sc.n; i++) {
        struct item *it = &sc.it[i];
        if (!it->st) {
            it->hash = GONE_HASH;
            it->changed = it->old->seen_hash != GONE_HASH;
            continue;
        }
        if (it->old && same_stat(it->old, it->st))
            continue;
        it->text =
            read_text(lo->scripts_dir, it->rel, lo->max_script_bytes, &it->len, err, sizeof err);
        if (!it->text) {
            it->read_error = xstrdup(err);
            it->hash = fnv1a(err, strlen(err));
        } else {
            it->hash = fnv1a(it->text, it->len);
        }
        if (it->old && (it->hash == it->old->seen_hash ||
                        (it->old->src && !it->old->error && it->old->len == it->len &&
                         memcmp(it->old->src, it->text, it->len) == 0))) {
            /* Touched, or the same text again: note the new stat only. */
            it->res = entry_copy(it->old);
            set_stat(it->res, it->st);
            continue;
        }
        it->changed = 1;
    }

    char e2[512];
    sc.vm = luavm_new(lo, e2, sizeof e2);
    if (!sc.vm) {
        log_msg(LOG_ERROR, NULL, "cannot check scripts: %s", e2);
    } else {
        settle_modules(&sc);
        settle_scripts(&sc, out);
        luavm_free(sc.vm);
    }
    scriptset_release(sc.cand);

    struct scriptset *next = set_new(sc.n);
    int differs = 0, problems = 0, scripts = 0;
    for (size_t i = 0; i < sc.n; i++) {
        struct item *it = &sc.it[i];
        struct script_src *e = it->res                     ? it->res
                               : (it->old && !it->changed) ? entry_hold(it->old)
                                                           : NULL;
        if (!sc.vm && it->changed && !e && it->old)
            e = entry_hold(it->old);
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
        free(it->deps_seen);
    }
    if (out)
        ; /* `check` says it itself */
    else if (initial && problems)
        log_msg(LOG_WARN, NULL, "%d script%s loaded from %s; %d file%s did not load", scripts,
                scripts == 1 ? "" : "s", lo->scripts_dir, problems, problems == 1 ? "" : "s");
    else if (initial)
        log_msg(LOG_INFO, NULL, "%d script%s loaded from %s", scripts, scripts == 1 ? "" : "s",
                lo->scripts_dir);
    if (differs || initial)
        publish(h, next, sc.changes > 0 && !initial, sc.failures);
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
    pthread_mutex_t mu; /* guards lo */
    struct luavm_options lo;
    long settle_ms;
    int ifd;    /* inotify */
    int stopfd; /* eventfd: stop */
    pthread_t thread;
};

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |       \
     IN_MOVE_SELF | IN_ONLYDIR)

/* Watches every folder scripts may be in (again: inotify keeps one watch
 * per folder, and folders come and go). */
static void watch_folders(struct reloader *r)
{
    struct listing l = {0};
    list_scripts(&l, r->lo.scripts_dir);
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
            if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                relevant = 1;
                continue;
            }
            if (!ev->len || ev->name[0] == '.')
                continue;
            if (ev->mask & IN_ISDIR) {
                relevant = 1;
                continue;
            }
            /* A file just created is picked up when its writer closes it. */
            if ((ev->mask & IN_CREATE) && !(ev->mask & ~(IN_CREATE)))
                continue;
            if (lua_file_name(ev->name))
                relevant = 1;
        }
    }
    return got < 0 ? -1 : relevant;
}

static void *reloader_main(void *arg)
{
    struct reloader *r = arg;
    struct pollfd pf[2] = {{.fd = r->ifd, .events = POLLIN}, {.fd = r->stopfd, .events = POLLIN}};
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents)
            break;
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
            if (poll(pf, 2, (int)wait) > 0) {
                if (pf[1].revents)
                    goto out;
                if (drain(r) >= 0)
                    last = mono_ms();
            }
        }
        pthread_mutex_lock(&r->mu);
        watch_folders(r);
        reload_scan(r->hub, &r->lo, 0, NULL, NULL);
        pthread_mutex_unlock(&r->mu);
    }
out:
    return NULL;
}

struct reloader *reloader_start(struct scripts_hub *h, const struct luavm_options *lo,
                                long settle_ms, char *err, size_t errlen)
{
    struct reloader *r = xcalloc(1, sizeof *r);
    r->hub = h;
    r->lo = *lo;
    r->lo.scripts = NULL;
    r->lo.sched = NULL;
    r->lo.fetch = NULL;
    r->lo.responder = NULL;
    r->lo.outbox = NULL;
    r->lo.mailbox = NULL;
    r->settle_ms = settle_ms > 0 ? settle_ms : 1;
    pthread_mutex_init(&r->mu, NULL);
    r->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    r->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->ifd < 0 || r->stopfd < 0) {
        snprintf(err, errlen, "cannot watch the scripts folder: %s", strerror(errno));
        goto fail;
    }
    watch_folders(r);
    /* What changed between the first load and the watches. */
    reload_scan(h, &r->lo, 0, NULL, NULL);
    int rc = pthread_create(&r->thread, NULL, reloader_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the reloader: %s", strerror(rc));
        goto fail;
    }
    return r;
fail:
    if (r->ifd >= 0)
        close(r->ifd);
    if (r->stopfd >= 0)
        close(r->stopfd);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
}

void reloader_set_options(struct reloader *r, const struct luavm_options *lo)
{
    pthread_mutex_lock(&r->mu);
    struct scripts_hub *h = r->hub;
    r->lo = *lo;
    r->lo.scripts = NULL;
    r->lo.sched = NULL;
    r->lo.fetch = NULL;
    r->lo.responder = NULL;
    r->lo.outbox = NULL;
    r->lo.mailbox = NULL;
    (void)h;
    pthread_mutex_unlock(&r->mu);
}

void reloader_stop(struct reloader *r)
{
    if (!r)
        return;
    uint64_t one = 1;
    if (write(r->stopfd, &one, sizeof one) < 0)
        log_msg(LOG_WARN, NULL, "cannot stop the reloader: %s", strerror(errno));
    pthread_join(r->thread, NULL);
    close(r->ifd);
    close(r->stopfd);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
