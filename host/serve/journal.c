/* journal: the console's memory of the last calls (see journal.h). */
#include "serve/journal.h"

#include "core/buf.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    unsigned long long id; /* 0: an empty slot */
    unsigned long long seq;
    long long at_ms; /* wall clock, when it began */
    char kind[16];
    char request_id[48];
    char signature[96];
    int key;
    char type[32], name[64], handler[48];
    int status; /* the sync reply's; 0: none yet */
    long long reply_ms;
    int late;
    double cpu_ms;
    size_t peak_bytes;
    char *body, *reply; /* in `store`: the body, then the reply; NULL: none yet */
    size_t body_len, reply_len;
    /* Holds body and reply, NUL-terminated each; kept when the slot is
     * reused (never more than entry_bytes + 2), so a call's recording
     * allocates nothing once the ring has gone round. */
    char *store;
    size_t store_cap;
    struct buf events; /* JSON objects joined by commas */
    size_t nevents, dropped_events;
    size_t bytes; /* body, reply and events: against the cap */
    int truncated;
    int body_cut; /* the body passed the cap: it cannot be replayed */
};

struct journal {
    pthread_mutex_t mu;
    struct entry *ring;
    size_t n, entry_bytes;
    unsigned long long next_id, seq;
    size_t bytes;
    atomic_int watchers;
    journal_notify_fn notify;
    void *notify_ud;
};

struct journal *journal_new(size_t calls, size_t entry_bytes)
{
    if (calls == 0)
        return NULL;
    struct journal *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->ring = xcalloc(calls, sizeof *j->ring);
    j->n = calls;
    j->entry_bytes = entry_bytes;
    j->next_id = 1;
    return j;
}

/* Empties a slot, keeping its store for the next entry. */
static void entry_clear(struct journal *j, struct entry *e)
{
    j->bytes -= e->bytes;
    buf_free(&e->events);
    char *store = e->store;
    size_t cap = e->store_cap;
    memset(e, 0, sizeof *e);
    e->store = store;
    e->store_cap = cap;
}

void journal_free(struct journal *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        entry_clear(j, &j->ring[i]);
        free(j->ring[i].store);
    }
    free(j->ring);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void journal_set_notify(struct journal *j, journal_notify_fn fn, void *ud)
{
    if (!j)
        return;
    j->notify = fn;
    j->notify_ud = ud;
}

void journal_watch(struct journal *j, int delta)
{
    if (j)
        atomic_fetch_add(&j->watchers, delta);
}

int journal_watchers(const struct journal *j)
{
    return j ? atomic_load_explicit(&j->watchers, memory_order_relaxed) : 0;
}

/* The entry with this id, with the lock held; NULL when it is gone. */
static struct entry *find(struct journal *j, unsigned long long id)
{
    if (!id)
        return NULL;
    struct entry *e = &j->ring[id % j->n];
    return e->id == id ? e : NULL;
}

/* Copies up to what the entry's cap leaves of s into its store at `at`,
 * NUL-terminated, cutting with a note; *out_len its length. The store may
 * move: the caller sets body and reply from it again. Secrets are masked
 * when the entry is read (put_text), which keeps the calls' own path to a
 * copy. */
static void take_text(struct journal *j, struct entry *e, size_t at, const char *s, size_t len,
                      size_t *out_len)
{
    size_t room = e->bytes < j->entry_bytes ? j->entry_bytes - e->bytes : 0;
    if (len > room) {
        len = room;
        e->truncated = 1;
    }
    size_t need = at + len + 1; /* at most entry_bytes + 2: body and reply share the cap */
    if (need > e->store_cap) {
        size_t cap = need + need / 4; /* a little more: the next call's may be longer */
        if (cap > j->entry_bytes + 2)
            cap = j->entry_bytes + 2 > need ? j->entry_bytes + 2 : need;
        e->store = xrealloc(e->store, cap);
        e->store_cap = cap;
    }
    if (len)
        memcpy(e->store + at, s, len);
    e->store[at + len] = '\0';
    e->bytes += len;
    j->bytes += len;
    *out_len = len;
}

static void changed(struct journal *j, struct entry *e)
{
    e->seq = ++j->seq;
}

/* Unlocks, and tells the watchers (if any) that something changed. */
static void done(struct journal *j)
{
    pthread_mutex_unlock(&j->mu);
    if (j->notify && atomic_load_explicit(&j->watchers, memory_order_relaxed) > 0)
        j->notify(j->notify_ud);
}

/* Copies s (NULL: "") into dst of n bytes, cut to fit. Runs several times
 * per call: no printf. */
static void copy_field(char *dst, size_t n, const char *s)
{
    size_t len = s ? strnlen(s, n - 1) : 0;
    memcpy(dst, s ? s : "", len);
    dst[len] = '\0';
}

unsigned long long journal_begin(struct journal *j, const char *kind, const char *request_id,
                                 const char *body, size_t len)
{
    if (!j)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&j->mu);
    unsigned long long id = j->next_id++;
    struct entry *e = &j->ring[id % j->n];
    entry_clear(j, e);
    e->id = id;
    e->at_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    e->key = -1;
    copy_field(e->kind, sizeof e->kind, kind);
    copy_field(e->request_id, sizeof e->request_id, request_id);
    buf_init(&e->events, j->entry_bytes);
    take_text(j, e, 0, body ? body : "", body ? len : 0, &e->body_len);
    e->body = e->store;
    e->body_cut = e->truncated;
    changed(j, e);
    done(j);
    return id;
}

void journal_signature(struct journal *j, unsigned long long id, const char *result, int key)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    struct entry *e = find(j, id);
    if (e) {
        copy_field(e->signature, sizeof e->signature, result);
        e->key = key;
        changed(j, e);
    }
    done(j);
}

void journal_dispatch(struct journal *j, unsigned long long id, const char *type, const char *name,
                      const char *handler)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    struct entry *e = find(j, id);
    if (e) {
        copy_field(e->type, sizeof e->type, type);
        copy_field(e->name, sizeof e->name, name);
        copy_field(e->handler, sizeof e->handler, handler);
        changed(j, e);
    }
    done(j);
}

void journal_reply(struct journal *j, unsigned long long id, int status, const char *body,
                   size_t len, long long ms, int late)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    struct entry *e = find(j, id);
    if (e && !e->status) {
        e->status = status;
        e->reply_ms = ms;
        e->late = late;
        take_text(j, e, e->body_len + 1, body ? body : "", body ? len : 0, &e->reply_len);
        e->body = e->store;
        e->reply = e->store + e->body_len + 1;
        changed(j, e);
    }
    done(j);
}

void journal_event(struct journal *j, unsigned long long id, const char *json, size_t len)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    struct entry *e = find(j, id);
    if (e) {
        if (e->bytes + len + 1 > j->entry_bytes) {
            e->dropped_events++;
            e->truncated = 1;
        } else {
            size_t before = e->events.len;
            if (e->nevents)
                buf_addc(&e->events, ',');
            buf_add(&e->events, json, len);
            e->nevents++;
            e->bytes += e->events.len - before;
            j->bytes += e->events.len - before;
        }
        changed(j, e);
    }
    done(j);
}

void journal_usage(struct journal *j, unsigned long long id, double cpu_ms, size_t peak_bytes)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    struct entry *e = find(j, id);
    if (e) {
        e->cpu_ms = cpu_ms;
        e->peak_bytes = peak_bytes;
        changed(j, e);
    }
    done(j);
}

static void put_str(struct buf *b, const char *key, const char *v, size_t n)
{
    buf_printf(b, ",\"%s\":", key);
    if (v && (n || *v))
        jsonw_string(b, v, n, JSONW_REPLACE, NULL);
    else
        buf_adds(b, "null");
}

/* The summary: what the list and the event stream show. */
static void summary(const struct entry *e, struct buf *b)
{
    time_t t = (time_t)(e->at_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char at[40];
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "{\"id\":%llu,\"seq\":%llu,\"at\":\"%s.%03lldZ\"", e->id, e->seq, at,
               e->at_ms % 1000);
    put_str(b, "kind", e->kind, strlen(e->kind));
    put_str(b, "request_id", e->request_id, strlen(e->request_id));
    put_str(b, "type", e->type, strlen(e->type));
    put_str(b, "name", e->name, strlen(e->name));
    put_str(b, "handler", e->handler, strlen(e->handler));
    put_str(b, "signature", e->signature, strlen(e->signature));
    if (e->status)
        buf_printf(b, ",\"status\":%d,\"reply_ms\":%lld", e->status, e->reply_ms);
    else
        buf_adds(b, ",\"status\":null,\"reply_ms\":null");
    buf_printf(b, ",\"late\":%s,\"events\":%zu,\"bytes\":%zu,\"truncated\":%s}",
               e->late ? "true" : "false", e->nevents, e->bytes, e->truncated ? "true" : "false");
}

/* Appends text with its secrets masked (log_redact, on a copy). */
static void put_masked(struct buf *b, const char *v, size_t n, int as_string)
{
    char *copy = xmalloc(n + 1);
    memcpy(copy, v, n);
    copy[n] = '\0';
    log_redact(copy, n);
    if (as_string)
        jsonw_string(b, copy, n, JSONW_REPLACE, NULL);
    else
        buf_add(b, copy, n);
    free(copy);
}

static void put_text(struct buf *b, const char *key, const char *v, size_t n)
{
    buf_printf(b, ",\"%s\":", key);
    if (v && n)
        put_masked(b, v, n, 1);
    else
        buf_adds(b, "null");
}

void journal_list(struct journal *j, struct buf *out)
{
    buf_adds(out, "{\"calls\":[");
    if (!j) {
        buf_adds(out, "],\"kept\":0,\"max\":0,\"entry_bytes\":0,\"bytes\":0}");
        return;
    }
    pthread_mutex_lock(&j->mu);
    size_t kept = 0;
    for (unsigned long long id = j->next_id - 1; id > 0 && kept < j->n; id--) {
        const struct entry *e = find(j, id);
        if (!e)
            break;
        if (kept++)
            buf_addc(out, ',');
        summary(e, out);
    }
    buf_printf(out, "],\"kept\":%zu,\"max\":%zu,\"entry_bytes\":%zu,\"bytes\":%zu}", kept, j->n,
               j->entry_bytes, j->bytes);
    pthread_mutex_unlock(&j->mu);
}

int journal_get(struct journal *j, unsigned long long id, struct buf *out)
{
    if (!j)
        return -1;
    pthread_mutex_lock(&j->mu);
    const struct entry *e = find(j, id);
    if (!e) {
        pthread_mutex_unlock(&j->mu);
        return -1;
    }
    struct buf s;
    buf_init(&s, 4096);
    summary(e, &s);
    buf_add(out, s.data, s.len - 1); /* without its closing brace */
    buf_free(&s);
    buf_printf(out, ",\"key\":%d,\"cpu_ms\":%.3f,\"peak_bytes\":%zu,\"dropped_events\":%zu", e->key,
               e->cpu_ms, e->peak_bytes, e->dropped_events);
    put_text(out, "body", e->body, e->body_len);
    put_text(out, "reply", e->reply, e->reply_len);
    buf_adds(out, ",\"log\":[");
    if (e->events.len)
        put_masked(out, e->events.data, e->events.len, 0);
    buf_adds(out, "]}");
    pthread_mutex_unlock(&j->mu);
    return 0;
}

size_t journal_get_max(const struct journal *j)
{
    /* Body, reply and events fit entry_bytes together, each byte at most
     * six once escaped; the summary's fields are short and fixed. */
    return j ? j->entry_bytes * 6 + 8192 : 4096;
}

int journal_body(struct journal *j, unsigned long long id, char **body, size_t *len, int *cut)
{
    if (!j)
        return -1;
    pthread_mutex_lock(&j->mu);
    const struct entry *e = find(j, id);
    int rc = -1;
    if (e) {
        *body = xmalloc(e->body_len + 1);
        memcpy(*body, e->body, e->body_len + 1);
        *len = e->body_len;
        *cut = e->body_cut;
        rc = 0;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static int by_seq(const void *a, const void *b)
{
    unsigned long long x = (*(const struct entry *const *)a)->seq;
    unsigned long long y = (*(const struct entry *const *)b)->seq;
    return x < y ? -1 : x > y;
}

long journal_changes(struct journal *j, unsigned long long *seq, struct buf *out)
{
    if (!j)
        return 0;
    pthread_mutex_lock(&j->mu);
    long found = 0;
    size_t n = 0;
    /* Oldest change first. */
    const struct entry **list = xcalloc(j->n, sizeof *list);
    for (size_t i = 0; i < j->n; i++)
        if (j->ring[i].id && j->ring[i].seq > *seq)
            list[n++] = &j->ring[i];
    qsort(list, n, sizeof *list, by_seq);
    struct buf ev;
    buf_init(&ev, 64 * 1024);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&ev);
        buf_adds(&ev, "event: call\ndata: ");
        summary(list[i], &ev);
        buf_adds(&ev, "\n\n");
        if (buf_add(out, ev.data, ev.len) < 0) {
            found = -1; /* the watcher is too far behind */
            break;
        }
        *seq = list[i]->seq;
        found++;
    }
    buf_free(&ev);
    free(list);
    pthread_mutex_unlock(&j->mu);
    return found;
}

unsigned long long journal_seq(struct journal *j)
{
    if (!j)
        return 0;
    pthread_mutex_lock(&j->mu);
    unsigned long long s = j->seq;
    pthread_mutex_unlock(&j->mu);
    return s;
}

void journal_metrics(struct journal *j, struct buf *out)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    size_t kept = j->next_id - 1 < j->n ? (size_t)(j->next_id - 1) : j->n;
    size_t bytes = j->bytes;
    pthread_mutex_unlock(&j->mu);
    buf_printf(out,
               "# HELP cliqhost_journal_calls Calls the console's journal holds (at most "
               "journal_calls).\n# TYPE cliqhost_journal_calls gauge\ncliqhost_journal_calls "
               "%zu\n# HELP cliqhost_journal_bytes Bytes the journal's entries hold (at most "
               "journal_calls x journal_entry_bytes).\n# TYPE cliqhost_journal_bytes "
               "gauge\ncliqhost_journal_bytes %zu\n",
               kept, bytes);
}

size_t journal_bytes(struct journal *j)
{
    if (!j)
        return 0;
    pthread_mutex_lock(&j->mu);
    size_t n = j->bytes;
    pthread_mutex_unlock(&j->mu);
    return n;
}
