/* store: scripts' keys and values in SQLite (see store.h). */
#include "cliq/store.h"

#include "cliq/outbox.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The values one store.list page may carry, in bytes: a page stops early
 * (with `more`) past it, so a page of large values stays bounded. */
#define LIST_MAX_BYTES (8u * 1024 * 1024)

/* How often expired keys are deleted, at most. */
#define SWEEP_MS 1000

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS kv("
    " key BLOB PRIMARY KEY,"
    " version INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL DEFAULT 0,"
    " value BLOB NOT NULL" /* last: reading the others never walks its pages */
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires_ms) WHERE expires_ms > 0;";

/* The statements, prepared once. */
enum {
    Q_GET,
    Q_EXISTS,
    Q_PUT,
    Q_DELETE,
    Q_LIST_FROM,
    Q_LIST_AFTER,
    Q_SWEEP,
    Q_COUNT,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    NQ
};

static const char *const sql[NQ] = {
    [Q_GET] = "SELECT value, version, expires_ms FROM kv WHERE key = ?1",
    [Q_EXISTS] = "SELECT 1 FROM kv WHERE key = ?1",
    [Q_PUT] = "INSERT OR REPLACE INTO kv(key, value, version, expires_ms) VALUES (?1, ?2, ?3, ?4)",
    [Q_DELETE] = "DELETE FROM kv WHERE key = ?1",
    /* One lower bound each, so SQLite seeks straight to it: a page deep in
     * a long list costs what the first does. */
    [Q_LIST_FROM] = "SELECT key, value FROM kv WHERE key >= ?1 AND (expires_ms = 0 OR "
                    "expires_ms > ?2) ORDER BY key LIMIT ?3",
    [Q_LIST_AFTER] = "SELECT key, value FROM kv WHERE key > ?1 AND (expires_ms = 0 OR "
                     "expires_ms > ?2) ORDER BY key LIMIT ?3",
    /* A batch at a time: a sweep never holds the store for long. */
    [Q_SWEEP] = "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_ms > 0 AND "
                "expires_ms <= ?1 LIMIT 256)",
    [Q_COUNT] = "SELECT count(*), coalesce(max(version), 0) FROM kv",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

static const char *const kind_names[STORE_NKINDS] = {
    [STORE_GET] = "get",    [STORE_SET] = "set",       [STORE_INCR] = "incr",
    [STORE_CAS] = "update", [STORE_DELETE] = "delete", [STORE_LIST] = "list",
};

struct store {
    pthread_mutex_t lock; /* one operation at a time; guards everything below */
    sqlite3 *db;
    sqlite3_stmt *q[NQ];
    char path[1024];
    const struct config *cfg;
    long long nkeys;    /* rows in kv, expired ones included until swept */
    long long version;  /* the last version given */
    long long swept_ms; /* when expired keys were last deleted */
    _Atomic long long ops[STORE_NKINDS];
    _Atomic long long errors;
};

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Steps a statement without rows (or the first row) and resets it.
 * Returns the sqlite3_step code. */
/* Fails res with the database's last error. */
static void db_failed(struct store *s, struct store_result *res)
{
    snprintf(res->err, sizeof res->err, "store: %s", sqlite3_errmsg(s->db));
    res->status = STORE_FAIL;
}

static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

/* Recounts the keys and the highest version. Under the lock. */
static int recount(struct store *s)
{
    sqlite3_stmt *st = s->q[Q_COUNT];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->nkeys = sqlite3_column_int64(st, 0);
        long long v = sqlite3_column_int64(st, 1);
        if (v > s->version)
            s->version = v;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Deletes expired keys when the last sweep is older than SWEEP_MS (or
 * always, with force). Under the lock. */
static void sweep(struct store *s, long long now, int force)
{
    if (!force && now - s->swept_ms < SWEEP_MS)
        return;
    s->swept_ms = now;
    sqlite3_stmt *st = s->q[Q_SWEEP];
    sqlite3_bind_int64(st, 1, now);
    if (step_once(st) != SQLITE_DONE) {
        log_msg(LOG_WARN, NULL, "store: cannot delete expired keys: %s", sqlite3_errmsg(s->db));
        return;
    }
    s->nkeys -= sqlite3_changes(s->db);
}

struct store *store_open(const struct config *cfg, char *err, size_t errlen)
{
    if (strcmp(cfg->store, "sqlite")) {
        snprintf(err, errlen, "store '%s' is not built (only sqlite is)", cfg->store);
        return NULL;
    }
    struct store *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->cfg = cfg;
    snprintf(s->path, sizeof s->path, "%s/store.db", cfg->data_dir);
    if (outbox_check_data_dir(cfg->data_dir, s->path, err, errlen) < 0)
        goto fail;
    /* Scripts' state may be private: owner only. */
    int fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        fchmod(fd, 0600); /* also one made before with looser bits: -wal and -shm copy them */
        close(fd);
    }
    char *msg = NULL;
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s->db, 5000);
        rc = sqlite3_exec(s->db, schema, NULL, NULL, &msg);
    }
    for (int i = 0; i < NQ && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
    if (rc == SQLITE_OK && recount(s) < 0)
        rc = SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        goto fail;
    }
    sweep(s, wall_ms(), 1);
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_set_config(struct store *s, const struct config *cfg)
{
    pthread_mutex_lock(&s->lock);
    s->cfg = cfg;
    pthread_mutex_unlock(&s->lock);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < NQ; i++)
        sqlite3_finalize(s->q[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void store_result_clear(struct store_result *res)
{
    free(res->value);
    for (size_t i = 0; i < res->nitems; i++) {
        free(res->items[i].key);
        free(res->items[i].value);
    }
    free(res->items);
    memset(res, 0, sizeof *res);
}

static char *copy_blob(const void *p, size_t n)
{
    char *c = xmalloc(n + 1);
    if (n)
        memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

/* A key's row as read. */
struct row {
    char *value; /* when asked for: copied, the caller frees */
    size_t vlen;
    long long version;
    long long exp; /* wall ms; 0: never */
};

/* The live row of op->key (the value copied when `value` is set): 1, or 0
 * when absent or expired (at `now`), -1 on a database error. */
static int read_row(struct store *s, const struct store_op *op, long long now, int value,
                    struct row *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = s->q[Q_GET];
    sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        r->exp = sqlite3_column_int64(st, 2);
        if (r->exp == 0 || r->exp > now) {
            found = 1;
            r->vlen = (size_t)sqlite3_column_bytes(st, 0);
            if (value)
                r->value = copy_blob(sqlite3_column_blob(st, 0), r->vlen);
            r->version = sqlite3_column_int64(st, 1);
            r->version = r->version ? r->version : 1;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!found)
        r->exp = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    return found;
}

/* Whether op->key is a row at all (live or expired, not yet swept). */
static int row_exists(struct store *s, const struct store_op *op)
{
    sqlite3_stmt *st = s->q[Q_EXISTS];
    sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    int rc = step_once(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW;
}

/* Writes key = value with a new version, expiring at `exp` (wall ms; 0:
 * never). Refuses a key that has no row yet past store_max_keys (after
 * sweeping expired ones). Under the lock, in a transaction.
 * Returns 0, or -1 with res filled. */
static int put(struct store *s, const struct store_op *op, const char *value, size_t vlen,
               long long exp, long long now, struct store_result *res)
{
    int is_row = row_exists(s, op);
    if (!is_row && s->nkeys >= s->cfg->store_max_keys) {
        sweep(s, now, 1);
        if (s->nkeys >= s->cfg->store_max_keys) {
            snprintf(res->err, sizeof res->err,
                     "store full: %lld keys, store_max_keys (%ld); delete keys or raise the "
                     "setting",
                     s->nkeys, s->cfg->store_max_keys);
            res->status = STORE_FAIL;
            return -1;
        }
    }
    sqlite3_stmt *st = s->q[Q_PUT];
    sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, value, (int)vlen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ++s->version);
    sqlite3_bind_int64(st, 4, exp);
    int rc = step_once(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        db_failed(s, res);
        return -1;
    }
    s->nkeys += !is_row;
    return 0;
}

static int del(struct store *s, const struct store_op *op, struct store_result *res)
{
    sqlite3_stmt *st = s->q[Q_DELETE];
    sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    int rc = step_once(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        db_failed(s, res);
        return -1;
    }
    s->nkeys -= sqlite3_changes(s->db);
    return 0;
}

/* The expiry of a write with op->ttl_s (0: none). */
static long long expiry(const struct store_op *op, long long now)
{
    if (op->ttl_s <= 0)
        return 0;
    double ms = op->ttl_s * 1000.0;
    return now + (ms > 1e15 ? (long long)1e15 : (long long)ceil(ms));
}

/* Reads a JSON number: 1 integer (*i), 2 float (*d), 0 not a number. */
static int parse_number(const char *text, size_t len, long long *i, double *d)
{
    if (len == 0 || len > 64)
        return 0;
    char tmp[72];
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    char *end;
    if (!strpbrk(tmp, ".eE")) {
        errno = 0;
        *i = strtoll(tmp, &end, 10);
        if (!*end && end != tmp && !errno)
            return 1;
    }
    errno = 0;
    *d = strtod(tmp, &end);
    if (*end || end == tmp || !isfinite(*d) || !strpbrk(tmp, "0123456789") || tmp[0] == '+' ||
        strpbrk(tmp, "xXnN"))
        return 0;
    return 2;
}

static void incr(struct store *s, const struct store_op *op, long long now,
                 struct store_result *res)
{
    struct row old;
    long long oi = 0;
    double od = 0;
    int found = read_row(s, op, now, 1, &old);
    if (found < 0) {
        db_failed(s, res);
        return;
    }
    int kind = found ? parse_number(old.value, old.vlen, &oi, &od) : 1;
    if (!kind) {
        snprintf(res->err, sizeof res->err, "not a number: %.*s", (int)op->klen, op->key);
        res->status = STORE_FAIL;
        goto cleanup;
    }
    long long sum;
    if (kind == 1 && op->by_is_int && !__builtin_add_overflow(oi, op->by_int, &sum)) {
        res->num_is_int = 1;
        res->num_int = sum;
    } else {
        double a = kind == 1 ? (double)oi : od;
        double b = op->by_is_int ? (double)op->by_int : op->by;
        res->num = a + b;
        if (!isfinite(res->num)) {
            snprintf(res->err, sizeof res->err, "not a number: %.*s would not be finite",
                     (int)op->klen, op->key);
            res->status = STORE_FAIL;
            goto cleanup;
        }
    }
    char text[64];
    if (res->num_is_int)
        snprintf(text, sizeof text, "%lld", res->num_int);
    else if (res->num == floor(res->num) && fabs(res->num) < 1e15)
        snprintf(text, sizeof text, "%.1f", res->num);
    else
        snprintf(text, sizeof text, "%.17g", res->num);
    /* The time to live counts from the key's creation: a counter with a
     * ttl is a window that an incr does not extend. */
    put(s, op, text, strlen(text), found ? old.exp : expiry(op, now), now, res);
cleanup:
    free(old.value);
}

/* Whether key a (alen bytes) sorts before b, as SQLite orders blobs. */
static int blob_less(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c < 0 || (c == 0 && alen < blen);
}

static void list(struct store *s, const struct store_op *op, long long now,
                 struct store_result *res)
{
    /* Start after `after` when that is at or past the prefix, else at the
     * prefix. */
    int from_after = op->after && !blob_less(op->after, op->alen, op->key, op->klen);
    sqlite3_stmt *st = s->q[from_after ? Q_LIST_AFTER : Q_LIST_FROM];
    if (from_after)
        sqlite3_bind_blob(st, 1, op->after, (int)op->alen, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, op->limit + 1);
    res->items = xcalloc((size_t)op->limit + 1, sizeof *res->items);
    size_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t kl = (size_t)sqlite3_column_bytes(st, 0);
        const void *k = sqlite3_column_blob(st, 0);
        if (kl < op->klen || (op->klen && memcmp(k, op->key, op->klen)))
            break; /* past the prefix */
        size_t vl = (size_t)sqlite3_column_bytes(st, 1);
        if (res->nitems == (size_t)op->limit || (res->nitems && bytes + vl > LIST_MAX_BYTES)) {
            res->more = 1;
            break;
        }
        bytes += vl;
        struct store_item *it = &res->items[res->nitems++];
        it->klen = kl;
        it->key = copy_blob(k, kl);
        it->vlen = vl;
        it->value = copy_blob(sqlite3_column_blob(st, 1), it->vlen);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_failed(s, res);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs op in its transaction. Under the lock. */
static void run_locked(struct store *s, const struct store_op *op, struct store_result *res)
{
    long long now = wall_ms();
    sweep(s, now, 0);
    if (op->kind == STORE_GET) {
        struct row r;
        if (read_row(s, op, now, 1, &r) < 0)
            db_failed(s, res);
        res->value = r.value;
        res->vlen = r.vlen;
        res->version = r.version;
        return;
    }
    if (op->kind == STORE_LIST) {
        list(s, op, now, res);
        return;
    }
    if (step_once(s->q[Q_BEGIN]) != SQLITE_DONE) {
        db_failed(s, res);
        return;
    }
    long long nkeys = s->nkeys; /* put back if the transaction is */
    struct row cur = {0};
    int found = op->kind == STORE_DELETE ? 0 : read_row(s, op, now, 0, &cur);
    if (found < 0) {
        db_failed(s, res);
    } else if (op->kind == STORE_SET) {
        if (op->only_if_absent && found)
            res->status = STORE_NO;
        else
            put(s, op, op->value, op->vlen, expiry(op, now), now, res);
    } else if (op->kind == STORE_CAS) {
        if (cur.version != op->version) {
            res->status = STORE_NO;
        } else if (!op->value) {
            del(s, op, res);
        } else {
            /* Without a ttl of its own, an update keeps the key's expiry. */
            long long exp = expiry(op, now);
            put(s, op, op->value, op->vlen, exp ? exp : cur.exp, now, res);
        }
    } else if (op->kind == STORE_INCR) {
        incr(s, op, now, res);
    } else {
        del(s, op, res);
    }
    if (res->status == STORE_FAIL) {
        step_once(s->q[Q_ROLLBACK]);
        s->nkeys = nkeys;
    } else if (step_once(s->q[Q_COMMIT]) != SQLITE_DONE) {
        db_failed(s, res);
        step_once(s->q[Q_ROLLBACK]);
        s->nkeys = nkeys;
    }
}

int store_run(struct store *s, const struct store_op *op, struct store_result *res)
{
    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&s->lock);
    run_locked(s, op, res);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->ops[op->kind], 1);
    if (res->status == STORE_FAIL)
        atomic_fetch_add(&s->errors, 1);
    return 1;
}

void store_count_error(struct store *s)
{
    atomic_fetch_add(&s->errors, 1);
}

const char *store_backend(const struct store *s)
{
    (void)s;
    return "sqlite";
}

long long store_keys(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    sweep(s, wall_ms(), 0);
    long long n = s->nkeys;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void store_metrics(struct store *s, struct buf *out)
{
    if (!s)
        return;
    buf_adds(out, "# HELP cliqhost_store_ops_total Store operations scripts ran, by operation "
                  "(update: each write attempt).\n# TYPE cliqhost_store_ops_total counter\n");
    for (int k = 0; k < STORE_NKINDS; k++)
        buf_printf(out, "cliqhost_store_ops_total{op=\"%s\"} %lld\n", kind_names[k],
                   atomic_load(&s->ops[k]));
    buf_printf(out,
               "# HELP cliqhost_store_errors_total Store operations that answered nil, err.\n"
               "# TYPE cliqhost_store_errors_total counter\ncliqhost_store_errors_total %lld\n"
               "# HELP cliqhost_store_keys Keys in the store (at most store_max_keys).\n"
               "# TYPE cliqhost_store_keys gauge\ncliqhost_store_keys %lld\n",
               atomic_load(&s->errors), store_keys(s));
}
