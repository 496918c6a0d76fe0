/* replay: refusing replayed and stale calls (see replay.h). */
#include "cliq/replay.h"

#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Buckets cover [now - window, now + window] with room to spare. */
#define NBUCKETS 18

struct slot {
    uint64_t key; /* 0: empty */
    long long seen_ms;
};

struct bucket {
    long long epoch; /* timestamp / width of what it holds; -1: empty */
    struct slot *slots;
    size_t cap, n;
};

struct replay {
    pthread_mutex_t mu;
    long long window_ms, width_ms;
    size_t max_entries, entries;
    struct bucket b[NBUCKETS];
    long long warned_ms;
};

struct replay *replay_new(long long window_ms, size_t max_entries)
{
    struct replay *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->window_ms = window_ms > 0 ? window_ms : 1;
    r->width_ms = (2 * r->window_ms) / (NBUCKETS - 2) + 1;
    r->max_entries = max_entries;
    for (int i = 0; i < NBUCKETS; i++)
        r->b[i].epoch = -1;
    return r;
}

void replay_free(struct replay *r)
{
    if (!r)
        return;
    for (int i = 0; i < NBUCKETS; i++)
        free(r->b[i].slots);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void bucket_clear(struct replay *r, struct bucket *b)
{
    r->entries -= b->n;
    free(b->slots);
    b->slots = NULL;
    b->cap = b->n = 0;
    b->epoch = -1;
}

static uint64_t body_hash(const unsigned char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33; /* spread FNV's high bits into the low ones the table uses */
    return h ? h : 1;
}

/* The slot for key: where it is, or the empty one where it would go. */
static struct slot *find(struct bucket *b, uint64_t key)
{
    size_t mask = b->cap - 1;
    for (size_t i = (size_t)key & mask;; i = (i + 1) & mask)
        if (b->slots[i].key == key || b->slots[i].key == 0)
            return &b->slots[i];
}

static void grow(struct bucket *b)
{
    size_t cap = b->cap ? 2 * b->cap : 64;
    struct slot *old = b->slots;
    size_t oldcap = b->cap;
    b->slots = xcalloc(cap, sizeof *b->slots);
    b->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            *find(b, old[i].key) = old[i];
    free(old);
}

/* Frees the bucket holding the oldest timestamps (cap reached). */
static void evict_oldest(struct replay *r, long long now_ms)
{
    struct bucket *oldest = NULL;
    for (int i = 0; i < NBUCKETS; i++)
        if (r->b[i].epoch >= 0 && r->b[i].n && (!oldest || r->b[i].epoch < oldest->epoch))
            oldest = &r->b[i];
    if (!oldest)
        return;
    if (now_ms - r->warned_ms >= 60000) {
        r->warned_ms = now_ms;
        log_msg(LOG_WARN, NULL,
                "replay_memory (%zu calls) is full: calls are coming faster than it can "
                "remember for the whole window; the oldest are forgotten early",
                r->max_entries);
    }
    bucket_clear(r, oldest);
}

/* replay_check and replay_peek: `remember` says whether an accepted call
 * is remembered. */
static enum replay_result check(struct replay *r, long long timestamp_ms, long long now_ms,
                                const unsigned char *digest, size_t len, long long *age_ms,
                                int remember, int anywhere)
{
    *age_ms = now_ms - timestamp_ms;
    if (timestamp_ms < now_ms - r->window_ms)
        return REPLAY_STALE;
    if (timestamp_ms > now_ms + r->window_ms)
        return REPLAY_FUTURE;
    if (!r->max_entries || !digest)
        return REPLAY_OK;
    uint64_t key = body_hash(digest, len);
    long long epoch = timestamp_ms / r->width_ms;
    pthread_mutex_lock(&r->mu);
    struct bucket *b = &r->b[epoch % NBUCKETS];
    if (b->epoch != epoch) {
        bucket_clear(r, b); /* it held timestamps long out of the window */
        b->epoch = epoch;
    }
    enum replay_result res = REPLAY_OK;
    /* replay_seen: the key may be in any bucket still in the window. */
    for (int i = 0; i < NBUCKETS && res == REPLAY_OK; i++) {
        struct bucket *o = &r->b[i];
        if (!o->cap || (!anywhere && o != b) || o->epoch < 0 ||
            (o->epoch + 1) * r->width_ms < now_ms - r->window_ms)
            continue;
        struct slot *s = find(o, key);
        if (s->key == key && (o == b || now_ms - s->seen_ms <= r->window_ms)) {
            *age_ms = now_ms - s->seen_ms;
            res = REPLAY_REPEAT;
        }
    }
    if (res == REPLAY_OK && remember) {
        while (r->entries >= r->max_entries && r->entries)
            evict_oldest(r, now_ms);
        if (b->epoch != epoch) { /* the eviction took this very bucket */
            b->epoch = epoch;
        }
        if (2 * (b->n + 1) > b->cap)
            grow(b);
        struct slot *s = find(b, key);
        s->key = key;
        s->seen_ms = now_ms;
        b->n++;
        r->entries++;
    }
    pthread_mutex_unlock(&r->mu);
    return res;
}

enum replay_result replay_check(struct replay *r, long long timestamp_ms, long long now_ms,
                                const unsigned char *digest, size_t len, long long *age_ms)
{
    return check(r, timestamp_ms, now_ms, digest, len, age_ms, 1, 0);
}

enum replay_result replay_peek(struct replay *r, long long timestamp_ms, long long now_ms,
                               const unsigned char *digest, size_t len, long long *age_ms)
{
    return check(r, timestamp_ms, now_ms, digest, len, age_ms, 0, 0);
}

enum replay_result replay_seen(struct replay *r, long long now_ms, const unsigned char *digest,
                               size_t len, long long *age_ms)
{
    return check(r, now_ms, now_ms, digest, len, age_ms, 1, 1);
}

void replay_forget(struct replay *r, long long timestamp_ms, const unsigned char *digest,
                   size_t len)
{
    if (!r || !r->max_entries || !digest)
        return;
    uint64_t key = body_hash(digest, len);
    long long epoch = timestamp_ms / r->width_ms;
    pthread_mutex_lock(&r->mu);
    struct bucket *b = &r->b[epoch % NBUCKETS];
    if (b->epoch == epoch && b->cap) {
        struct slot *s = find(b, key);
        if (s->key == key) {
            /* Linear probing: the entries after the hole that would no
             * longer be found from their home slot move back into it. */
            size_t mask = b->cap - 1, hole = (size_t)(s - b->slots);
            for (size_t j = (hole + 1) & mask; b->slots[j].key; j = (j + 1) & mask) {
                size_t home = (size_t)b->slots[j].key & mask;
                int reachable = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
                if (!reachable) {
                    b->slots[hole] = b->slots[j];
                    hole = j;
                }
            }
            b->slots[hole].key = 0;
            b->n--;
            r->entries--;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

size_t replay_entries(struct replay *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->entries;
    pthread_mutex_unlock(&r->mu);
    return n;
}
