/* store: scripts' keys and values, and schedules' records, in SQLite or
 * Redis (see store.h). */
#include "cliq/store.h"

#include "cliq/outbox.h"
#include "cliq/shared.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/redis.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
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

/* The largest tick and hold a schedule operation takes (Lua on Redis
 * counts in doubles: exact well past these), and the largest outcome. */
#define SCHED_MAX_TICK    1000000000000000LL
#define SCHED_MAX_HOLD    1000000000000LL
#define SCHED_MAX_OUTCOME (64u * 1024)

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS kv("
    " key BLOB PRIMARY KEY,"
    " version INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL DEFAULT 0,"
    " value BLOB NOT NULL" /* last: reading the others never walks its pages */
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires_ms) WHERE expires_ms > 0;"
    /* Schedules' records (STORE_SCHED_*), apart from the scripts' keys;
     * IF NOT EXISTS also gives it to a database made before it. NULL
     * running_host: never ran; NULL last_outcome: no run finished. */
    "CREATE TABLE IF NOT EXISTS sched("
    " name BLOB PRIMARY KEY,"
    " tick INTEGER NOT NULL,"
    " held_until INTEGER NOT NULL DEFAULT 0,"
    " run_tick INTEGER NOT NULL DEFAULT 0,"
    " started INTEGER NOT NULL DEFAULT 0,"
    " skipped INTEGER NOT NULL DEFAULT 0,"
    " last_skip_tick INTEGER NOT NULL DEFAULT 0,"
    " last_tick INTEGER NOT NULL DEFAULT 0,"
    " last_finished INTEGER NOT NULL DEFAULT 0,"
    " running_host BLOB,"
    " last_outcome BLOB"
    ") WITHOUT ROWID;";

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
    Q_SCHED_GET,
    Q_SCHED_PUT,
    Q_SCHED_LIST,
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
#define SCHED_COLUMNS                                                                              \
    "tick, held_until, run_tick, started, skipped, last_skip_tick, last_tick, last_finished, "     \
    "running_host, last_outcome"
    [Q_SCHED_GET] = "SELECT " SCHED_COLUMNS " FROM sched WHERE name = ?1",
    [Q_SCHED_PUT] = "INSERT OR REPLACE INTO sched(name, " SCHED_COLUMNS
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [Q_SCHED_LIST] = "SELECT " SCHED_COLUMNS ", name FROM sched ORDER BY name LIMIT ?1",
};

static const char *const kind_names[STORE_NKINDS] = {
    [STORE_GET] = "get",
    [STORE_SET] = "set",
    [STORE_INCR] = "incr",
    [STORE_CAS] = "update",
    [STORE_DELETE] = "delete",
    [STORE_LIST] = "list",
    [STORE_SCHED_INIT] = "sched_init",
    [STORE_SCHED_CLAIM] = "sched_claim",
    [STORE_SCHED_DONE] = "sched_done",
    [STORE_SCHED_LIST] = "sched_list",
};

enum redis_script {
    RS_SET,
    RS_INCR,
    RS_CAS,
    RS_DELETE,
    RS_LIST,
    RS_COUNT,
    RS_SCHED_INIT,
    RS_SCHED_CLAIM,
    RS_SCHED_DONE,
    RS_SCHED_LIST,
    NRS
};

/* Whether an operation is a schedule's (not counted in the scripts'
 * metrics). */
static int is_sched(enum store_kind k)
{
    return k >= STORE_SCHED_INIT;
}

struct store {
    /* A Redis store: the link (NULL for SQLite), each script's SHA-1 and
     * the key count the last write saw. */
    struct shared *sh;
    char sha[NRS][41];
    _Atomic long long redis_keys;
    _Atomic long long counted_ms;     /* when a count was last asked for */
    _Atomic long long writes_counted; /* writes whose answer set redis_keys */
    _Atomic long long count_after;    /* writes_counted when that count was asked */
    pthread_mutex_t lock;             /* one operation at a time; guards everything below */
    sqlite3 *db;
    sqlite3_stmt *q[NQ];
    char path[1024];
    _Atomic(const struct config *) cfg; /* SIGHUP swaps it; the Redis path reads it unlocked */
    long long nkeys;                    /* rows in kv, expired ones included until swept */
    long long version;                  /* the last version given */
    long long swept_ms;                 /* when expired keys were last deleted */
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

static void redis_prepare(struct store *s);

struct store *store_open(const struct config *cfg, char *err, size_t errlen)
{
    struct store *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->cfg = cfg;
    if (shared_wanted(cfg)) {
        s->sh = shared_new(cfg, err, errlen);
        if (!s->sh)
            goto fail;
        redis_prepare(s);
        return s;
    }
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
    shared_set_config(s->sh, cfg);
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
    shared_free(s->sh);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void store_result_clear(struct store_result *res)
{
    free(res->value);
    free(res->next);
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

/* Writes a finite float as json.encode does: the shortest text that reads
 * back as the same double, with ".0" when it would read as an integer, so
 * that a float stays a float (1e16 + 1 is 1e+16, not 10000000000000000).
 * rs_incr writes it the same way. */
static void float_text(double v, char *out, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".eE")) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, ".0");
    }
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
    else
        float_text(res->num, text, sizeof text);
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

/* ---- schedules ----------------------------------------------------------- */

/* A schedule's record, as either backend keeps it. */
struct sched_rec {
    long long tick;       /* the last tick claimed (run or skipped) */
    long long held_until; /* wall ms; 0: not held */
    long long run_tick, started, skipped, last_skip_tick, last_tick, last_finished;
    char *host; /* the last run's host; NULL: never ran */
    size_t hlen;
    char *outcome; /* the last outcome's JSON object; NULL: none yet */
    size_t olen;
};

static void sched_rec_clear(struct sched_rec *r)
{
    free(r->host);
    free(r->outcome);
    memset(r, 0, sizeof *r);
}

/* Checks a schedule operation before either backend runs it. Returns 0, or
 * -1 with res failed. */
static int sched_check(const struct store_op *op, struct store_result *res)
{
    const char *why = NULL;
    if (op->kind != STORE_SCHED_LIST && (op->klen == 0 || op->klen > STORE_MAX_KEY))
        why = "a schedule's name is 1 to 512 bytes";
    else if (op->kind != STORE_SCHED_LIST && (op->tick_ms < 0 || op->tick_ms > SCHED_MAX_TICK))
        why = "a tick is 0 to 1e15 ms";
    else if (op->kind == STORE_SCHED_CLAIM && (op->hold_ms < 0 || op->hold_ms > SCHED_MAX_HOLD))
        why = "a hold is 0 to 1e12 ms";
    else if (op->kind == STORE_SCHED_CLAIM && op->vlen > STORE_MAX_KEY)
        why = "a host's id is at most 512 bytes";
    else if (op->kind == STORE_SCHED_DONE) {
        const char *end = NULL;
        cJSON *j = op->value && op->vlen <= SCHED_MAX_OUTCOME
                       ? cJSON_ParseWithLengthOpts(op->value, op->vlen, &end, 0)
                       : NULL;
        while (j && end < op->value + op->vlen && *end && strchr(" \t\r\n", *end))
            end++;
        if (!cJSON_IsObject(j) || end != op->value + op->vlen)
            why = "an outcome is a JSON object of at most 64 KiB";
        cJSON_Delete(j);
    }
    if (!why)
        return 0;
    snprintf(res->err, sizeof res->err, "store: %s", why);
    res->status = STORE_FAIL;
    return -1;
}

/* Appends r as LIST shows it (see STORE_SCHED_LIST); `now` is the
 * backend's clock. The outcome's members follow the last run's own: it
 * was checked to be an object when it was written. */
static void sched_json(const struct sched_rec *r, long long now, struct buf *b)
{
    buf_printf(b, "{\"tick\":%lld,\"held_until\":%lld", r->tick,
               r->held_until > now ? r->held_until : 0);
    if (r->host) {
        buf_printf(b, ",\"run_tick\":%lld,\"running_host\":", r->run_tick);
        jsonw_string(b, r->host, r->hlen, JSONW_REPLACE, NULL);
        buf_printf(b, ",\"started\":%lld", r->started);
    }
    buf_printf(b, ",\"skipped\":%lld", r->skipped);
    if (r->skipped)
        buf_printf(b, ",\"last_skip_tick\":%lld", r->last_skip_tick);
    if (r->outcome) {
        const char *o = memchr(r->outcome, '{', r->olen);
        const char *end = r->outcome + r->olen;
        while (end > r->outcome && end[-1] != '}')
            end--;
        buf_printf(b, ",\"last\":{\"tick\":%lld,\"finished\":%lld", r->last_tick, r->last_finished);
        if (o && end > o + 1) {
            const char *in = o + 1, *in_end = end - 1;
            while (in < in_end && *in && strchr(" \t\r\n", *in))
                in++;
            if (in < in_end) {
                buf_addc(b, ',');
                buf_add(b, in, (size_t)(in_end - in));
            }
        }
        buf_addc(b, '}');
    }
    buf_addc(b, '}');
}

/* Adds one LIST item: name and r's JSON. */
static void sched_item(struct store_result *res, const char *name, size_t nlen,
                       const struct sched_rec *r, long long now)
{
    struct buf b;
    buf_init(&b, 2 * SCHED_MAX_OUTCOME);
    sched_json(r, now, &b);
    struct store_item *it = &res->items[res->nitems++];
    it->key = copy_blob(name, nlen);
    it->klen = nlen;
    it->value = buf_take(&b, &it->vlen);
}

static char *column_copy(sqlite3_stmt *st, int i, size_t *len)
{
    *len = 0;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    *len = (size_t)sqlite3_column_bytes(st, i);
    return copy_blob(sqlite3_column_blob(st, i), *len);
}

/* Reads a row of SCHED_COLUMNS. */
static void sched_columns(sqlite3_stmt *st, struct sched_rec *r)
{
    long long *n[] = {&r->tick,    &r->held_until,     &r->run_tick,  &r->started,
                      &r->skipped, &r->last_skip_tick, &r->last_tick, &r->last_finished};
    for (int i = 0; i < 8; i++)
        *n[i] = sqlite3_column_int64(st, i);
    r->host = column_copy(st, 8, &r->hlen);
    r->outcome = column_copy(st, 9, &r->olen);
}

/* The record of op->key: 1, 0 when there is none, -1 on a database error. */
static int sched_read(struct store *s, const struct store_op *op, struct sched_rec *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = s->q[Q_SCHED_GET];
    sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        sched_columns(st, r);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int sched_write(struct store *s, const struct store_op *op, const struct sched_rec *r)
{
    sqlite3_stmt *st = s->q[Q_SCHED_PUT];
    sqlite3_bind_blob(st, 1, op->key, (int)op->klen, SQLITE_STATIC);
    const long long n[] = {r->tick,    r->held_until,     r->run_tick,  r->started,
                           r->skipped, r->last_skip_tick, r->last_tick, r->last_finished};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_int64(st, i + 2, n[i]);
    if (r->host)
        sqlite3_bind_blob(st, 10, r->host, (int)r->hlen, SQLITE_STATIC);
    if (r->outcome)
        sqlite3_bind_blob(st, 11, r->outcome, (int)r->olen, SQLITE_STATIC);
    int rc = step_once(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void sched_list(struct store *s, long long now, struct store_result *res)
{
    sqlite3_stmt *st = s->q[Q_SCHED_LIST];
    sqlite3_bind_int64(st, 1, STORE_MAX_LIST + 1);
    res->items = xcalloc(STORE_MAX_LIST + 1, sizeof *res->items);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (res->nitems == STORE_MAX_LIST) {
            res->more = 1;
            break;
        }
        struct sched_rec r;
        memset(&r, 0, sizeof r);
        sched_columns(st, &r);
        sched_item(res, sqlite3_column_blob(st, 10), (size_t)sqlite3_column_bytes(st, 10), &r, now);
        sched_rec_clear(&r);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        db_failed(s, res);
    sqlite3_reset(st);
}

/* INIT, CLAIM or DONE on the record, as the Redis scripts do (rs_sched_*).
 * Under the lock, in a transaction. */
static void sched_change(struct store *s, const struct store_op *op, long long now,
                         struct store_result *res)
{
    struct sched_rec r;
    int found = sched_read(s, op, &r), write = 1;
    if (found < 0) {
        db_failed(s, res);
        return;
    }
    if (!found)
        r.tick = op->tick_ms;
    if (op->kind == STORE_SCHED_INIT) {
        res->tick_ms = r.tick;
        write = !found;
    } else if (op->kind == STORE_SCHED_CLAIM) {
        res->tick_ms = found ? r.tick : 0;
        if (found && r.tick >= op->tick_ms) {
            res->sched = STORE_SCHED_TAKEN;
            write = 0;
        } else if (r.held_until > now) {
            res->sched = STORE_SCHED_BUSY;
            res->run_tick_ms = r.run_tick;
            r.tick = r.last_skip_tick = op->tick_ms;
            r.skipped++;
        } else {
            res->sched = STORE_SCHED_RUN;
            r.tick = r.run_tick = op->tick_ms;
            r.held_until = now + op->hold_ms;
            r.started = now;
            free(r.host);
            r.host = copy_blob(op->value ? op->value : "", op->value ? op->vlen : 0);
            r.hlen = op->value ? op->vlen : 0;
        }
    } else {
        if (r.run_tick == op->tick_ms || r.tick == op->tick_ms)
            r.held_until = 0;
        if (!r.outcome || op->tick_ms >= r.last_tick) {
            r.last_tick = op->tick_ms;
            r.last_finished = now;
            free(r.outcome);
            r.outcome = copy_blob(op->value, op->vlen);
            r.olen = op->vlen;
        }
        res->tick_ms = r.tick;
    }
    if (write && sched_write(s, op, &r) < 0)
        db_failed(s, res);
    sched_rec_clear(&r);
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
    if (op->kind == STORE_SCHED_LIST) {
        sched_list(s, now, res);
        return;
    }
    if (step_once(s->q[Q_BEGIN]) != SQLITE_DONE) {
        db_failed(s, res);
        return;
    }
    long long nkeys = s->nkeys; /* put back if the transaction is */
    struct row cur = {0};
    int found = op->kind == STORE_DELETE || is_sched(op->kind) ? 0 : read_row(s, op, now, 0, &cur);
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
    } else if (is_sched(op->kind)) {
        sched_change(s, op, now, res);
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

/* Counts an operation's failure in the scripts' figures. */
static void count_failure(struct store *s, enum store_kind kind)
{
    if (!is_sched(kind))
        atomic_fetch_add(&s->errors, 1);
}

int store_run(struct store *s, const struct store_op *op, struct store_result *res)
{
    memset(res, 0, sizeof *res);
    if (is_sched(op->kind) && sched_check(op, res) < 0)
        return 1;
    if (s->sh) {
        snprintf(res->err, sizeof res->err, "store unavailable: a Redis store needs a loop");
        res->status = STORE_FAIL;
        return 1;
    }
    pthread_mutex_lock(&s->lock);
    run_locked(s, op, res);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->ops[op->kind], 1);
    if (res->status == STORE_FAIL)
        count_failure(s, op->kind);
    return 1;
}

void store_count_error(struct store *s)
{
    atomic_fetch_add(&s->errors, 1);
}

const char *store_backend(const struct store *s)
{
    return s->sh ? "redis" : "sqlite";
}

struct shared *store_shared(struct store *s)
{
    return s ? s->sh : NULL;
}

long long store_keys(struct store *s)
{
    if (s->sh) {
        long long n = atomic_load(&s->redis_keys);
        return n > 0 ? n : 0;
    }
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
    for (int k = 0; k < STORE_NKINDS && !is_sched((enum store_kind)k); k++)
        buf_printf(out, "cliqhost_store_ops_total{op=\"%s\"} %lld\n", kind_names[k],
                   atomic_load(&s->ops[k]));
    buf_printf(out,
               "# HELP cliqhost_store_errors_total Store operations that answered nil, err.\n"
               "# TYPE cliqhost_store_errors_total counter\ncliqhost_store_errors_total %lld\n"
               "# HELP cliqhost_store_keys Keys in the store (at most store_max_keys).\n"
               "# TYPE cliqhost_store_keys gauge\ncliqhost_store_keys %lld\n",
               atomic_load(&s->errors), store_keys(s));
    shared_metrics(s->sh, out);
}

/* ---- Redis --------------------------------------------------------------- */

/* The keys, under redis_prefix P: P.."k:"..key, a hash of the value's JSON
 * (v) and its version (n); P.."keys", a sorted set of every key (all
 * scores 0, so it is in byte order, for store.list); P.."exp", the keys
 * with a time to live, scored by when it ends; P.."ver", the last version
 * given. A key with a ttl also expires in Redis itself, so a read never
 * sees it late; the sweep takes it out of the two sets. Each write is one
 * script, so it is atomic across every host. Redis' clock (TIME) times
 * expiry, so the hosts' clocks need not agree. */
static const char rs_common[] =
    "local P = ARGV[1]\n"
    "local K, E = P .. 'keys', P .. 'exp'\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local function sweep(n)\n"
    "  local gone = redis.call('ZRANGEBYSCORE', E, '-inf', now, 'LIMIT', 0, n)\n"
    "  for _, k in ipairs(gone) do\n"
    "    redis.call('DEL', P .. 'k:' .. k)\n"
    "    redis.call('ZREM', K, k)\n"
    "    redis.call('ZREM', E, k)\n"
    "  end\n"
    "end\n"
    "local function full(max)\n"
    "  if redis.call('ZCARD', K) < max then return nil end\n"
    "  sweep(256)\n"
    "  local n = redis.call('ZCARD', K)\n"
    "  if n < max then return nil end\n"
    "  return n\n"
    "end\n"
    /* A new key (or a set, which replaces) gets the ttl given or none; an
     * existing key keeps its expiry unless a ttl is given. */
    "local function expire(key, dk, ttl, fresh)\n"
    "  if ttl > 0 then\n"
    "    redis.call('PEXPIRE', dk, ttl)\n"
    "    redis.call('ZADD', E, now + ttl, key)\n"
    "  elseif fresh then\n"
    "    redis.call('PERSIST', dk)\n"
    "    redis.call('ZREM', E, key)\n"
    "  end\n"
    "end\n"
    "sweep(16)\n"
    "local key = ARGV[2]\n"
    "local dk = P .. 'k:' .. key\n";

/* ARGV: P, key, value, ttl_ms, only_if_absent, max_keys -> {1|0, keys} */
static const char rs_set[] =
    "local exists = redis.call('EXISTS', dk) == 1\n"
    "if exists and ARGV[5] == '1' then return {0, redis.call('ZCARD', K)} end\n"
    "if not exists then\n"
    "  local n = full(tonumber(ARGV[6]))\n"
    "  if n then return redis.error_reply('FULL ' .. n) end\n"
    "end\n"
    "redis.call('HSET', dk, 'v', ARGV[3], 'n', redis.call('INCR', P .. 'ver'))\n"
    "redis.call('ZADD', K, 0, key)\n"
    "expire(key, dk, tonumber(ARGV[4]), true)\n"
    "return {1, redis.call('ZCARD', K)}\n";

/* ARGV: P, key, by, by_is_int, ttl_ms, max_keys -> {new value's text, keys}.
 * Integers add exactly (HINCRBY, 64 bits); past them, or with a float, the
 * sum is a float, written as the SQLite backend writes it. */
static const char rs_incr[] =
    "local old = redis.call('HGET', dk, 'v')\n"
    "if not old then\n"
    "  local n = full(tonumber(ARGV[6]))\n"
    "  if n then return redis.error_reply('FULL ' .. n) end\n"
    "end\n"
    "local text\n"
    "if ARGV[4] == '1' and (not old or string.match(old, '^%-?%d+$')) then\n"
    "  if pcall(redis.call, 'HINCRBY', dk, 'v', ARGV[3]) then\n"
    "    text = redis.call('HGET', dk, 'v')\n"
    "  end\n"
    "end\n"
    "if not text then\n"
    "  local a = 0\n"
    "  if old then\n"
    "    if not string.match(old, '^%-?%d') or string.find(old, '[^%d%.eE%+%-]') then\n"
    "      return redis.error_reply('NAN not a number')\n"
    "    end\n"
    "    a = tonumber(old)\n"
    "    if not a then return redis.error_reply('NAN not a number') end\n"
    "  end\n"
    "  local sum = a + tonumber(ARGV[3])\n"
    "  if sum ~= sum or sum == math.huge or sum == -math.huge then\n"
    "    return redis.error_reply('INF not finite')\n"
    "  end\n"
    "  for p = 15, 17 do\n" /* as float_text writes it */
    "    text = string.format('%.' .. p .. 'g', sum)\n"
    "    if tonumber(text) == sum then break end\n"
    "  end\n"
    "  if not string.find(text, '[%.eE]') then text = text .. '.0' end\n"
    "  redis.call('HSET', dk, 'v', text)\n"
    "end\n"
    "redis.call('HSET', dk, 'n', redis.call('INCR', P .. 'ver'))\n"
    "if not old then\n"
    "  redis.call('ZADD', K, 0, key)\n"
    "  expire(key, dk, tonumber(ARGV[5]), true)\n"
    "end\n"
    "return {text, redis.call('ZCARD', K)}\n";

/* ARGV: P, key, has_value, value, version, ttl_ms, max_keys -> {1|0, keys} */
static const char rs_cas[] =
    "local cur = redis.call('HGET', dk, 'n')\n"
    "if (cur or '0') ~= ARGV[5] then return {0, redis.call('ZCARD', K)} end\n"
    "if ARGV[3] == '0' then\n"
    "  redis.call('DEL', dk)\n"
    "  redis.call('ZREM', K, key)\n"
    "  redis.call('ZREM', E, key)\n"
    "  return {1, redis.call('ZCARD', K)}\n"
    "end\n"
    "if not cur then\n"
    "  local n = full(tonumber(ARGV[7]))\n"
    "  if n then return redis.error_reply('FULL ' .. n) end\n"
    "end\n"
    "redis.call('HSET', dk, 'v', ARGV[4], 'n', redis.call('INCR', P .. 'ver'))\n"
    "redis.call('ZADD', K, 0, key)\n"
    "expire(key, dk, tonumber(ARGV[6]), not cur)\n"
    "return {1, redis.call('ZCARD', K)}\n";

/* ARGV: P, key -> {1, keys} */
static const char rs_delete[] = "redis.call('DEL', dk)\n"
                                "redis.call('ZREM', K, key)\n"
                                "redis.call('ZREM', E, key)\n"
                                "return {1, redis.call('ZCARD', K)}\n";

/* ARGV: P, "" -> {1, keys}: the count, expired keys swept first. */
static const char rs_count[] = "sweep(256)\n"
                               "return {1, redis.call('ZCARD', K)}\n";

/* ARGV: P, prefix, start ("[prefix" or "(after"), limit, max_bytes ->
 * {more, next, key, value, key, value, ...}. Reads only; keys whose value
 * has expired but which the sweep has not taken yet are skipped, and a page
 * looks at no more than limit + 1024 keys, so a prefix full of expired keys
 * cannot hold Redis (and every host) for long: such a page may come back
 * short, even empty, with `next` (the last key looked at) to go on from. */
static const char rs_list[] =
    "local P = ARGV[1]\n"
    "local prefix, cursor = ARGV[2], ARGV[3]\n"
    "local limit, maxb = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local out, n, bytes, more, next = {0, ''}, 0, 0, 0, ''\n"
    "local budget = limit + 1024\n"
    "while true do\n"
    "  local want = math.min(limit + 1, budget)\n"
    "  local ks = redis.call('ZRANGEBYLEX', P .. 'keys', cursor, '+', 'LIMIT', 0, want)\n"
    "  budget = budget - #ks\n"
    "  local stop = #ks < want\n"
    "  for _, k in ipairs(ks) do\n"
    "    if string.sub(k, 1, #prefix) ~= prefix then stop = true break end\n"
    "    local v = redis.call('HGET', P .. 'k:' .. k, 'v')\n"
    "    if v then\n"
    "      if n == limit or (n > 0 and bytes + #v > maxb) then more = 1 stop = true break end\n"
    "      n, bytes = n + 1, bytes + #v\n"
    "      out[#out + 1] = k\n"
    "      out[#out + 1] = v\n"
    "    end\n"
    "    cursor = '(' .. k\n"
    "    next = k\n"
    "  end\n"
    "  if stop then break end\n"
    "  if budget <= 0 then more = 1 out[2] = next break end\n"
    "end\n"
    "out[1] = more\n"
    "return out\n";

/* Schedules' records (STORE_SCHED_*), apart from the scripts' keys:
 * P.."sch:"..name, a hash of the record (t tick, hu held until, rt run
 * tick, st started, rh running host, sk skipped, lst last skipped tick, lt
 * lf lo the last outcome's tick, finish and JSON), and P.."schs", the
 * names (a sorted set, all scores 0: byte order, as SQLite lists them).
 * Every write keeps both 30 days more, so a deleted schedule's record goes
 * in time. Numbers are written with %d: Lua's tostring would print a
 * large one as 1.7e+12. The logic is sched_change's. */
static const char rs_sched_common[] =
    "local P = ARGV[1]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local name, tick = ARGV[2], tonumber(ARGV[3])\n"
    "local h, S = P .. 'sch:' .. name, P .. 'schs'\n"
    "local function ms(x) return string.format('%d', x) end\n"
    "local function keep()\n"
    "  redis.call('ZADD', S, 0, name)\n"
    "  redis.call('PEXPIRE', h, 2592000000)\n"
    "  redis.call('PEXPIRE', S, 2592000000)\n"
    "end\n"
    "local cur = redis.call('HGET', h, 't')\n";

/* ARGV: P, name, tick -> {the record's tick} */
static const char rs_sched_init[] = "if not cur then\n"
                                    "  cur = ARGV[3]\n"
                                    "  redis.call('HSET', h, 't', cur)\n"
                                    "end\n"
                                    "keep()\n"
                                    "return {cur}\n";

/* ARGV: P, name, tick, hold_ms, host -> {0 run | 1 taken | 2 busy, the
 * record's tick before ('0': none), the run's tick} */
static const char rs_sched_claim[] =
    "local rt = redis.call('HGET', h, 'rt') or '0'\n"
    "if cur and tonumber(cur) >= tick then return {1, cur, rt} end\n"
    "if tonumber(redis.call('HGET', h, 'hu') or '0') > now then\n"
    "  redis.call('HSET', h, 't', ARGV[3], 'lst', ARGV[3])\n"
    "  redis.call('HINCRBY', h, 'sk', 1)\n"
    "  keep()\n"
    "  return {2, cur or '0', rt}\n"
    "end\n"
    "redis.call('HSET', h, 't', ARGV[3], 'rt', ARGV[3], 'hu', ms(now + tonumber(ARGV[4])),\n"
    "           'st', ms(now), 'rh', ARGV[5])\n"
    "keep()\n"
    "return {0, cur or '0', rt}\n";

/* ARGV: P, name, tick, outcome -> {the record's tick} */
static const char rs_sched_done[] =
    "if not cur then\n"
    "  cur = ARGV[3]\n"
    "  redis.call('HSET', h, 't', cur)\n"
    "end\n"
    "if tonumber(redis.call('HGET', h, 'rt') or '0') == tick or tonumber(cur) == tick then\n"
    "  redis.call('HSET', h, 'hu', '0')\n"
    "end\n"
    "local lt = redis.call('HGET', h, 'lt')\n"
    "if not lt or tick >= tonumber(lt) then\n"
    "  redis.call('HSET', h, 'lt', ARGV[3], 'lf', ms(now), 'lo', ARGV[4])\n"
    "end\n"
    "keep()\n"
    "return {cur}\n";

/* ARGV: P, max -> {more, now, {name, t, hu, rt, st, sk, lst, lt, lf, rh,
 * lo}, ...} (a field never written: nil). Names whose record has expired
 * leave the set here. */
static const char rs_sched_list[] =
    "local P, max = ARGV[1], tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local out = {0, now}\n"
    "for i, name in ipairs(redis.call('ZRANGE', P .. 'schs', 0, max)) do\n"
    "  if i > max then out[1] = 1 break end\n"
    "  local f = redis.call('HMGET', P .. 'sch:' .. name, 't', 'hu', 'rt', 'st', 'sk', 'lst',\n"
    "                       'lt', 'lf', 'rh', 'lo')\n"
    "  if f[1] then\n"
    "    out[#out + 1] = {name, unpack(f)}\n"
    "  else\n"
    "    redis.call('ZREM', P .. 'schs', name)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Script i's text (the common head included for writes). Caller frees. */
static char *script_text(enum redis_script i)
{
    static const char *const bodies[NRS] = {
        rs_set,   rs_incr,       rs_cas,         rs_delete,     rs_list,
        rs_count, rs_sched_init, rs_sched_claim, rs_sched_done, rs_sched_list,
    };
    struct buf b;
    buf_init(&b, 64 * 1024);
    /* Each script declares what it does (Redis 7): a full Redis (maxmemory)
     * refuses a write before it runs, however much its sweep would free
     * first; a delete, which frees, and a list, which only reads, still
     * run there. So do a schedule's DONE, which must not leave it held,
     * and its LIST, which only deletes. */
    int frees = i == RS_DELETE || i == RS_SCHED_DONE || i == RS_SCHED_LIST;
    buf_adds(&b, i == RS_LIST ? "#!lua flags=no-writes\n"
                 : frees      ? "#!lua flags=allow-oom\n"
                              : "#!lua\n");
    if (i == RS_SCHED_INIT || i == RS_SCHED_CLAIM || i == RS_SCHED_DONE)
        buf_adds(&b, rs_sched_common);
    else if (i != RS_LIST && i != RS_SCHED_LIST)
        buf_adds(&b, rs_common);
    buf_adds(&b, bodies[i]);
    size_t len;
    return buf_take(&b, &len);
}

static void redis_prepare(struct store *s)
{
    for (int i = 0; i < NRS; i++) {
        char *text = script_text((enum redis_script)i);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL);
        for (unsigned k = 0; k < mdlen && k < 20; k++)
            snprintf(s->sha[i] + 2 * k, 3, "%02x", md[k]);
        free(text);
    }
}

/* A Redis operation on its way: its arguments are kept for a second try
 * with EVAL when the server does not have the script (restarted, or
 * SCRIPT FLUSH). */
struct store_pending {
    struct store *s;
    struct redis_conn *rc;
    struct redis_req *req;
    enum store_kind kind;
    enum redis_script script; /* NRS: a plain command (GET) */
    int tried_eval;
    int argc;
    char **argv;
    size_t *lens;
    char key[STORE_MAX_KEY + 1];
    size_t klen;
    store_done_cb cb;
    void *ud;
};

static void pending_free(struct store_pending *p)
{
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    free(p->lens);
    free(p);
}

static void add_arg(struct store_pending *p, const char *v, size_t len)
{
    p->argv[p->argc] = xmalloc(len + 1);
    if (len)
        memcpy(p->argv[p->argc], v, len);
    p->argv[p->argc][len] = '\0';
    p->lens[p->argc++] = len;
}

static void add_argf(struct store_pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_argf(struct store_pending *p, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    add_arg(p, tmp, strlen(tmp));
}

static long long ttl_ms(const struct store_op *op)
{
    if (op->ttl_s <= 0)
        return 0;
    double ms = ceil(op->ttl_s * 1000.0);
    return ms > 1e15 ? (long long)1e15 : (long long)ms;
}

/* Fills p's arguments for op: EVALSHA sha 0 ARGV... (or HMGET for a get). */
static void redis_args(struct store *s, struct store_pending *p, const struct store_op *op)
{
    const struct config *cfg = s->cfg;
    p->argv = xcalloc(12, sizeof *p->argv);
    p->lens = xcalloc(12, sizeof *p->lens);
    const char *P = shared_prefix(s->sh);
    if (op->kind == STORE_GET) {
        p->script = NRS;
        add_arg(p, "HMGET", 5);
        char *k = xmalloc(strlen(P) + 2 + op->klen + 1);
        int n = snprintf(k, strlen(P) + 3, "%sk:", P);
        memcpy(k + n, op->key, op->klen);
        add_arg(p, k, (size_t)n + op->klen);
        free(k);
        add_arg(p, "v", 1);
        add_arg(p, "n", 1);
        return;
    }
    static const enum redis_script scripts[STORE_NKINDS] = {
        [STORE_SET] = RS_SET,
        [STORE_INCR] = RS_INCR,
        [STORE_CAS] = RS_CAS,
        [STORE_DELETE] = RS_DELETE,
        [STORE_LIST] = RS_LIST,
        [STORE_SCHED_INIT] = RS_SCHED_INIT,
        [STORE_SCHED_CLAIM] = RS_SCHED_CLAIM,
        [STORE_SCHED_DONE] = RS_SCHED_DONE,
        [STORE_SCHED_LIST] = RS_SCHED_LIST,
    };
    p->script = scripts[op->kind];
    add_arg(p, "EVALSHA", 7);
    add_arg(p, s->sha[p->script], 40);
    add_arg(p, "0", 1);
    add_arg(p, P, strlen(P));
    if (op->kind == STORE_LIST) {
        int from_after = op->after && !blob_less(op->after, op->alen, op->key, op->klen);
        const char *from = from_after ? op->after : op->key;
        size_t flen = from_after ? op->alen : op->klen;
        add_arg(p, op->key, op->klen);
        char *bound = xmalloc(flen + 2);
        bound[0] = from_after ? '(' : '[';
        memcpy(bound + 1, from, flen);
        add_arg(p, bound, flen + 1);
        free(bound);
        add_argf(p, "%ld", op->limit);
        add_argf(p, "%u", LIST_MAX_BYTES);
        return;
    }
    if (op->kind == STORE_SCHED_LIST) {
        add_argf(p, "%d", STORE_MAX_LIST);
        return;
    }
    add_arg(p, op->key, op->klen);
    switch (op->kind) {
    case STORE_SET:
        add_arg(p, op->value, op->vlen);
        add_argf(p, "%lld", ttl_ms(op));
        add_arg(p, op->only_if_absent ? "1" : "0", 1);
        add_argf(p, "%ld", cfg->store_max_keys);
        break;
    case STORE_INCR:
        if (op->by_is_int)
            add_argf(p, "%lld", op->by_int);
        else
            add_argf(p, "%.17g", op->by);
        add_arg(p, op->by_is_int ? "1" : "0", 1);
        add_argf(p, "%lld", ttl_ms(op));
        add_argf(p, "%ld", cfg->store_max_keys);
        break;
    case STORE_CAS:
        add_arg(p, op->value ? "1" : "0", 1);
        add_arg(p, op->value ? op->value : "", op->value ? op->vlen : 0);
        add_argf(p, "%lld", op->version);
        add_argf(p, "%lld", ttl_ms(op));
        add_argf(p, "%ld", cfg->store_max_keys);
        break;
    case STORE_SCHED_INIT:
        add_argf(p, "%lld", op->tick_ms);
        break;
    case STORE_SCHED_CLAIM:
        add_argf(p, "%lld", op->tick_ms);
        add_argf(p, "%lld", op->hold_ms);
        add_arg(p, op->value ? op->value : "", op->value ? op->vlen : 0);
        break;
    case STORE_SCHED_DONE:
        add_argf(p, "%lld", op->tick_ms);
        add_arg(p, op->value, op->vlen);
        break;
    default:
        break;
    }
}

static void fail(struct store_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct store_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->err, sizeof res->err, fmt, ap);
    va_end(ap);
    res->status = STORE_FAIL;
}

/* Copies a bulk string reply (NULL for nil). */
static char *reply_copy(const redisReply *r, size_t *len)
{
    if (!r || r->type != REDIS_REPLY_STRING) {
        *len = 0;
        return NULL;
    }
    *len = r->len;
    return copy_blob(r->str, r->len);
}

/* Reads a write script's {result, keys} into res; returns the result
 * element, or NULL when the reply is not of that shape. */
static const redisReply *write_reply(struct store *s, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return NULL;
    atomic_store(&s->redis_keys, r->element[1]->integer);
    atomic_fetch_add(&s->writes_counted, 1);
    return r->element[0];
}

/* An integer reply, or a string of one: 0, or -1 when it is neither. A nil
 * reads as `dflt`. */
static int reply_ll(const redisReply *e, long long dflt, long long *out)
{
    if (e->type == REDIS_REPLY_NIL) {
        *out = dflt;
        return 0;
    }
    if (e->type == REDIS_REPLY_INTEGER) {
        *out = e->integer;
        return 0;
    }
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 20)
        return -1;
    char *end;
    errno = 0;
    *out = strtoll(e->str, &end, 10);
    return *end || errno ? -1 : 0;
}

/* Reads rs_sched_list's record {name, t, hu, rt, st, sk, lst, lt, lf, rh,
 * lo} into an item of res. Returns 0, or -1 when it is not of that shape. */
static int sched_list_item(const redisReply *e, long long now, struct store_result *res)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 11 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    struct sched_rec r;
    memset(&r, 0, sizeof r);
    long long *n[] = {&r.tick,    &r.held_until,     &r.run_tick,  &r.started,
                      &r.skipped, &r.last_skip_tick, &r.last_tick, &r.last_finished};
    int bad = 0;
    for (int i = 0; i < 8; i++)
        bad |= reply_ll(e->element[1 + i], 0, n[i]);
    r.host = reply_copy(e->element[9], &r.hlen);
    r.outcome = reply_copy(e->element[10], &r.olen);
    if (!bad)
        sched_item(res, e->element[0]->str, e->element[0]->len, &r, now);
    sched_rec_clear(&r);
    return bad ? -1 : 0;
}

/* Reads a schedule script's answer into res. Returns 0, or -1 when it is
 * not of the shape the script gives. */
static int sched_answer(enum store_kind kind, const redisReply *r, struct store_result *res)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return -1;
    if (kind == STORE_SCHED_LIST) {
        long long more, now;
        if (r->elements < 2 || reply_ll(r->element[0], 0, &more) < 0 ||
            reply_ll(r->element[1], 0, &now) < 0)
            return -1;
        res->more = more != 0;
        res->items = xcalloc(r->elements - 1, sizeof *res->items);
        for (size_t i = 2; i < r->elements; i++)
            if (sched_list_item(r->element[i], now, res) < 0)
                return -1;
        return 0;
    }
    if (kind != STORE_SCHED_CLAIM)
        return r->elements == 1 ? reply_ll(r->element[0], 0, &res->tick_ms) : -1;
    long long answer, run_tick;
    if (r->elements != 3 || reply_ll(r->element[0], -1, &answer) < 0 || answer < 0 || answer > 2 ||
        reply_ll(r->element[1], 0, &res->tick_ms) < 0 || reply_ll(r->element[2], 0, &run_tick) < 0)
        return -1;
    static const enum store_sched_answer answers[] = {STORE_SCHED_RUN, STORE_SCHED_TAKEN,
                                                      STORE_SCHED_BUSY};
    res->sched = answers[answer];
    if (res->sched == STORE_SCHED_BUSY)
        res->run_tick_ms = run_tick;
    return 0;
}

static void redis_answer(struct store_pending *p, const redisReply *r, struct store_result *res)
{
    struct store *s = p->s;
    if (r->type == REDIS_REPLY_ERROR) {
        /* The scripts' errors are a code, a space, then more: Redis 7
         * turns an error_reply without a space into "ERR <text>". */
        if (strncmp(r->str, "FULL ", 5) == 0)
            fail(res, "store full: %s keys, store_max_keys (%ld); delete keys or raise the setting",
                 r->str + 5, s->cfg->store_max_keys);
        else if (strncmp(r->str, "NAN ", 4) == 0)
            fail(res, "not a number: %.*s", (int)p->klen, p->key);
        else if (strncmp(r->str, "INF ", 4) == 0)
            fail(res, "not a number: %.*s would not be finite", (int)p->klen, p->key);
        else
            fail(res, "store: redis: %s", r->str);
        return;
    }
    if (p->kind == STORE_GET) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            goto odd;
        res->value = reply_copy(r->element[0], &res->vlen);
        if (res->value && r->element[1]->type == REDIS_REPLY_STRING)
            res->version = strtoll(r->element[1]->str, NULL, 10);
        return;
    }
    if (p->kind == STORE_LIST) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements % 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING)
            goto odd;
        res->more = r->element[0]->integer != 0;
        if (res->more && r->element[1]->len > 0)
            res->next = reply_copy(r->element[1], &res->nlen);
        size_t n = (r->elements - 2) / 2;
        res->items = xcalloc(n + 1, sizeof *res->items);
        for (size_t i = 0; i < n; i++) {
            struct store_item *it = &res->items[res->nitems++];
            it->key = reply_copy(r->element[2 + 2 * i], &it->klen);
            it->value = reply_copy(r->element[3 + 2 * i], &it->vlen);
            if (!it->key || !it->value)
                goto odd;
        }
        if (res->more && !res->next && !res->nitems)
            goto odd; /* more, but from where? */
        return;
    }
    if (is_sched(p->kind)) {
        if (sched_answer(p->kind, r, res) < 0)
            goto odd;
        return;
    }
    const redisReply *e = write_reply(s, r);
    if (!e)
        goto odd;
    if (p->kind == STORE_INCR) {
        long long i;
        double d;
        int kind = e->type == REDIS_REPLY_STRING ? parse_number(e->str, e->len, &i, &d) : 0;
        if (!kind)
            goto odd;
        res->num_is_int = kind == 1;
        res->num_int = i;
        res->num = d;
        return;
    }
    if (e->type != REDIS_REPLY_INTEGER)
        goto odd;
    res->status = e->integer ? STORE_OK : STORE_NO;
    return;
odd:
    store_result_clear(res);
    memset(res, 0, sizeof *res);
    fail(res, "store: redis answered in a shape this host does not expect");
}

static void on_redis_reply(struct redisReply *r, const char *err, void *ud);

static int redis_send(struct store_pending *p, char *err, size_t errlen)
{
    p->req = redis_command(p->rc, p->argc, (const char **)p->argv, p->lens, on_redis_reply, p, err,
                           errlen);
    return p->req ? 0 : -1;
}

static void on_redis_reply(struct redisReply *r, const char *err, void *ud)
{
    struct store_pending *p = ud;
    struct store *s = p->s;
    p->req = NULL;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 &&
        !p->tried_eval && p->script != NRS) {
        /* The server lost its scripts: send this one's text (it is kept
         * from then on). */
        p->tried_eval = 1;
        free(p->argv[0]);
        free(p->argv[1]);
        p->argv[0] = xstrdup("EVAL");
        p->lens[0] = 4;
        p->argv[1] = script_text(p->script);
        p->lens[1] = strlen(p->argv[1]);
        char e[400];
        if (redis_send(p, e, sizeof e) == 0)
            return;
        r = NULL;
        err = e;
    }
    struct store_result res;
    memset(&res, 0, sizeof res);
    if (r)
        redis_answer(p, r, &res);
    else
        fail(&res, "store unavailable: %s", err ? err : "no answer");
    if (res.status == STORE_FAIL)
        count_failure(s, p->kind);
    store_done_cb cb = p->cb;
    void *cud = p->ud;
    pending_free(p);
    cb(&res, cud);
}

/* A count's answer, unless a write's answer came meanwhile (from another
 * worker's connection it may be the newer). */
static void on_counted(struct redisReply *r, const char *err, void *ud)
{
    struct store *s = ud;
    (void)err;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER &&
        atomic_load(&s->writes_counted) == atomic_load(&s->count_after))
        atomic_store(&s->redis_keys, r->element[1]->integer);
}

/* Keeps cliqhost_store_keys near the truth on Redis, where only a write's
 * answer brings the count: at most once a second, a read also asks for it
 * (rs_count, which sweeps expired keys first, as the SQLite store does
 * when counted). The answer goes to the counter alone; a connection that
 * closes first drops it. */
static void count_soon(struct store *s, struct redis_conn *rc)
{
    long long now = wall_ms(), last = atomic_load(&s->counted_ms);
    if (now - last < SWEEP_MS || !atomic_compare_exchange_strong(&s->counted_ms, &last, now))
        return;
    atomic_store(&s->count_after, atomic_load(&s->writes_counted));
    char *text = script_text(RS_COUNT);
    const char *argv[5] = {"EVAL", text, "0", shared_prefix(s->sh), ""};
    char err[400];
    redis_command(rc, 5, argv, NULL, on_counted, s, err, sizeof err); /* down: next time */
    free(text);
}

int store_start(struct store *s, struct redis_conn *rc, const struct store_op *op,
                struct store_result *res, store_done_cb cb, void *ud,
                struct store_pending **pending)
{
    *pending = NULL;
    if (!s->sh)
        return store_run(s, op, res);
    memset(res, 0, sizeof *res);
    if (is_sched(op->kind) && sched_check(op, res) < 0)
        return 1;
    atomic_fetch_add(&s->ops[op->kind], 1);
    if (!rc) {
        fail(res, "store unavailable: no connection to redis here");
        count_failure(s, op->kind);
        return 1;
    }
    struct store_pending *p = xcalloc(1, sizeof *p);
    p->s = s;
    p->rc = rc;
    p->kind = op->kind;
    p->klen = op->klen < STORE_MAX_KEY ? op->klen : STORE_MAX_KEY;
    if (p->klen)
        memcpy(p->key, op->key, p->klen);
    p->cb = cb;
    p->ud = ud;
    redis_args(s, p, op);
    char err[400];
    if (redis_send(p, err, sizeof err) < 0) {
        pending_free(p);
        fail(res, "store unavailable: %s", err);
        count_failure(s, op->kind);
        return 1;
    }
    *pending = p;
    if (op->kind == STORE_GET || op->kind == STORE_LIST)
        count_soon(s, rc);
    return 0;
}

void store_cancel(struct store_pending *p)
{
    if (!p)
        return;
    redis_cancel(p->req);
    pending_free(p);
}
