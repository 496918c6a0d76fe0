/* scriptset: snapshots of the scripts folder and the hub (see scriptset.h). */
#include "script/scriptset.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- entries and snapshots --------------------------------------------- */

struct script_src *script_src_new(const char *rel)
{
    struct script_src *e = xcalloc(1, sizeof *e);
    atomic_init(&e->refs, 1);
    e->rel = xstrdup(rel);
    return e;
}

void script_src_free_deps(struct script_src *e)
{
    for (size_t i = 0; i < e->ndeps; i++)
        free(e->deps[i]);
    free(e->deps);
    e->deps = NULL;
    e->ndeps = 0;
}

void script_src_release(struct script_src *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    free(e->rel);
    free(e->src);
    free(e->error);
    script_src_free_deps(e);
    free(e);
}

struct script_src *script_src_hold(struct script_src *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

/* A private copy of e to change before it is published. */
struct script_src *script_src_copy(const struct script_src *e)
{
    struct script_src *c = script_src_new(e->rel);
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

unsigned long long scriptset_modules_gen(const struct scriptset *s)
{
    return s ? s->modules_gen : 0;
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
        script_src_release(s->e[i]);
    free(s->e);
    free(s);
}

struct scriptset *scriptset_new(size_t cap)
{
    struct scriptset *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->e = xcalloc(cap ? cap : 1, sizeof *s->e);
    return s;
}

/* ---- the hub ------------------------------------------------------------ */

struct scripts_hub *scripts_hub_new(void)
{
    struct scripts_hub *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->scan_mu, NULL);
    h->cur = scriptset_new(0);
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

void scripts_hub_publish(struct scripts_hub *h, struct scriptset *next, int changed, int failures)
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
