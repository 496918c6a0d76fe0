/* outbox: durable, paced delivery of posts to Cliq's webhook endpoints (see outbox.h). */
#include "cliq/outbox.h"

#include "cliq/shared.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/fetch.h"
#include "event/mailbox.h"
#include "event/sched.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Backoff for network errors and 5xx: RETRY_FIRST_MS, doubling up to
 * RETRY_MAX_MS, plus up to a fifth of jitter. 429 without Retry-After waits
 * RETRY_429_MS. A post being sent is leased for its timeout plus LEASE_MS. */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS   (5 * 60 * 1000)
#define RETRY_429_MS   60000
#define LEASE_MS       30000
/* How often the database is looked at for posts other processes queued. */
#define POLL_MS 1000
/* Calls kept per token for `cliqhost tokens`. */
#define TOKEN_CALLS_KEPT 50
/* The most of an endpoint's reply kept or quoted. */
#define REPLY_MAX       (64 * 1024)
#define REASON_BODY_MAX 160

/* The posts table. Ids are AUTOINCREMENT, so an id is never given to a
 * second post once the first is gone (`outbox retry 12` cannot touch
 * another post). created_ms is when the post was made; since_ms, when
 * `outbox retry` made it start over (its age counts from the later of
 * the two). held says why a host left it to another (a token its config
 * does not name), NULL otherwise. */
#define POSTS_DEFINITION                                                                           \
    "(id INTEGER PRIMARY KEY AUTOINCREMENT, created_ms INTEGER NOT NULL, token TEXT NOT NULL,"     \
    " kind INTEGER NOT NULL, target TEXT NOT NULL, as_bot TEXT, appkey TEXT,"                      \
    " base TEXT NOT NULL, body BLOB NOT NULL, req_id TEXT NOT NULL DEFAULT '',"                    \
    " state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,"                  \
    " next_ms INTEGER NOT NULL DEFAULT 0, lease_ms INTEGER NOT NULL DEFAULT 0,"                    \
    " last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT,"                                    \
    " owner INTEGER NOT NULL DEFAULT 0, since_ms INTEGER NOT NULL DEFAULT 0, held TEXT);"
#define POSTS_COLUMNS                                                                              \
    "id,created_ms,token,kind,target,as_bot,appkey,base,body,req_id,state,attempts,next_ms,"       \
    "lease_ms,last_status,last_error,owner,since_ms,held"

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS posts" POSTS_DEFINITION
    "CREATE INDEX IF NOT EXISTS posts_due ON posts(state, next_ms);"
    "CREATE TABLE IF NOT EXISTS token_calls("
    " id INTEGER PRIMARY KEY, token TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " endpoint TEXT NOT NULL, status INTEGER NOT NULL, error TEXT);"
    "CREATE INDEX IF NOT EXISTS token_calls_token ON token_calls(token, id);"
    "CREATE TABLE IF NOT EXISTS token_stats("
    " token TEXT PRIMARY KEY, invocations INTEGER NOT NULL,"
    " failures INTEGER NOT NULL, last_ms INTEGER NOT NULL);";

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *outbox_kind_name(enum post_kind k)
{
    switch (k) {
    case POST_CHANNEL:
        return "channel";
    case POST_BOT_MESSAGE:
        return "bot message";
    case POST_BOT_INCOMING:
        return "bot incoming";
    case POST_APP_INCOMING:
        return "app incoming";
    }
    return "?";
}

void outbox_post_free(struct post *p)
{
    if (!p)
        return;
    free(p->token);
    free(p->target);
    free(p->as_bot);
    free(p->appkey);
    free(p->base);
    free(p->body);
    free(p);
}

/* ---- the database ------------------------------------------------------- */

/* "user nobody (uid 65534)": who this process runs as. */
static void who_am_i(char *out, size_t n)
{
    uid_t uid = geteuid();
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(out, n, "user %s (uid %u)", found->pw_name, (unsigned)uid);
    else
        snprintf(out, n, "uid %u", (unsigned)uid);
}

int outbox_check_data_dir(const char *dir, const char *db, char *err, size_t errlen)
{
    char who[160];
    const char *fix = "or set data_dir in the config (or --data-dir) to a folder it can write";
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        who_am_i(who, sizeof who);
        snprintf(err, errlen,
                 "data_dir %s does not exist and %s cannot create it (%s): create it owned by "
                 "that user (mkdir, chown), %s",
                 dir, who, strerror(e), fix);
        return -1;
    }
    /* The folder, then the database and its WAL files (a command run as
     * another user, root, in the same folder leaves them that user's). */
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char file[1100] = "";
    int e = 0;
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
        e = errno;
        snprintf(file, sizeof file, "%s", dir);
    }
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && !file[0]; i++) {
        snprintf(file, sizeof file, "%s%s", db, suffixes[i]);
        if (faccessat(AT_FDCWD, file, R_OK | W_OK, AT_EACCESS) == 0 || errno == ENOENT)
            file[0] = '\0';
        else
            e = errno;
    }
    if (!file[0])
        return 0;
    const char *what = strcmp(file, dir) ? "file " : "";
    if (e == EROFS) {
        snprintf(err, errlen,
                 "data_dir %s%s is on a read-only file system: mount it writable (under "
                 "systemd's ProtectSystem=, add it to ReadWritePaths= with `systemctl edit "
                 "cliqhost`), %s",
                 what, file, fix);
        return -1;
    }
    /* Another user's (the service's): handing it over would break that
     * user's host, so the way is to run as its owner. */
    struct stat st;
    struct passwd pw, *owner = NULL;
    char pwbuf[1024];
    if (stat(file, &st) == 0 && st.st_uid != 0 && st.st_uid != geteuid() &&
        getpwuid_r(st.st_uid, &pw, pwbuf, sizeof pwbuf, &owner) == 0 && owner) {
        snprintf(err, errlen,
                 "data_dir %s%s belongs to user %s: run this as that user (runuser -u %s -- "
                 "cliqhost ...), %s",
                 what, file, owner->pw_name, owner->pw_name, fix);
        return -1;
    }
    who_am_i(who, sizeof who);
    snprintf(err, errlen,
             "data_dir %s%s is not writable by %s: make the folder and its files owned by that "
             "user (chown -R), %s",
             what, file, who, fix);
    return -1;
}

/* Rebuilds a posts table of the first schema, whose ids were rowids that
 * SQLite gives again once the highest is deleted, as AUTOINCREMENT: the
 * posts and their ids stay, and new ids start above the highest. One
 * transaction, so a failure leaves the old table. Returns 0 or -1. */
static int migrate_ids(sqlite3 *db, char *err, size_t errlen)
{
    /* The check is inside the transaction: two processes that open an old
     * database at once rebuild it once, the second finding it done. */
    char *msg = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
    sqlite3_stmt *st = NULL;
    int old = 0;
    if (rc == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type='table' AND name='posts'",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(st, 0);
        old = sql && !strstr(sql, "AUTOINCREMENT");
    }
    sqlite3_finalize(st);
    static const char rebuild[] =
        "CREATE TABLE posts_v2" POSTS_DEFINITION "INSERT INTO posts_v2(" POSTS_COLUMNS
        ") SELECT " POSTS_COLUMNS " FROM posts;"
        "DROP TABLE posts;"
        "ALTER TABLE posts_v2 RENAME TO posts;"
        "CREATE INDEX posts_due ON posts(state, next_ms);";
    if (rc == SQLITE_OK && old)
        rc = sqlite3_exec(db, rebuild, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot give the outbox's posts ids that are never reused: %s",
                 msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* Opens data_dir/outbox.db with the schema. Returns NULL with a reason. */
static sqlite3 *db_open(const struct config *cfg, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/outbox.db", cfg->data_dir);
    if (outbox_check_data_dir(cfg->data_dir, path, err, errlen) < 0)
        return NULL;
    /* The database holds app keys of posts not yet sent: owner only. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    char *msg = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, schema, NULL, NULL, &msg);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    /* Columns added since the first schema; an error means it is there. */
    sqlite3_exec(db, "ALTER TABLE posts ADD COLUMN owner INTEGER NOT NULL DEFAULT 0", NULL, NULL,
                 NULL);
    sqlite3_exec(db, "ALTER TABLE posts ADD COLUMN since_ms INTEGER NOT NULL DEFAULT 0", NULL, NULL,
                 NULL);
    sqlite3_exec(db, "ALTER TABLE posts ADD COLUMN held TEXT", NULL, NULL, NULL);
    if (migrate_ids(db, err, errlen) < 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Runs one statement without results. Returns 0 or -1 (logged). */
static int db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_msg(LOG_ERROR, NULL, "outbox: %s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        log_msg(LOG_ERROR, NULL, "outbox: cannot prepare %s: %s", sql, sqlite3_errmsg(db));
    return st;
}

/* ---- the outbox thread's state ----------------------------------------- */

struct waiter {
    struct mailbox *mb;
    outbox_cb cb;
    void (*free_ud)(void *);
    void *ud;
};

struct submission {
    struct post *p;
    int64_t id; /* once written */
    int wait;
    struct waiter w;
    struct submission *next;
};

/* Waiters by post id (only posts someone waits for). */
struct waiting {
    int64_t id;
    struct waiter w;
    struct waiting *next;
};
#define WAIT_BUCKETS 1024

/* Per token: the send times of the last minute (pacing) and usage. */
struct token_state {
    char *name;
    long long *sent; /* ring of wall ms, `cap` long */
    size_t cap, n, head;
    /* Usage, as in the database; read by outbox_metrics under the lock. */
    long long invocations, failures, last_ms;
    long long blocked_until; /* after a 429: nothing goes out before (wall ms) */
    struct token_state *next;
};

/* A post being sent. */
struct sending {
    struct outbox *o;
    int64_t id;
    struct post *p;
    int attempts;
    long long created_ms;
    long long started_ms;
    long long reserved; /* its pacing slot */
    struct fetch_xfer *x;
    struct sending *prev, *next;
};

/* A finished attempt, written at the end of the turn. */
enum result_action { RESULT_DELIVERED, RESULT_RETRY, RESULT_FAILED, RESULT_HOLD };
struct result {
    int64_t id;
    enum result_action action;
    long long next_ms;
    long status;
    char *error;
    char *reply;
    size_t reply_len;
    char *token;
    size_t len; /* the post's body, for the counts */
    char endpoint[200];
    long long at_ms;
    int called; /* an HTTP attempt was made (counts as an invocation) */
    struct result *next;
};

/* Per token: the posts waiting for delivery and their bytes, for
 * outbox_max_queued_per_token and outbox_max_queued_bytes_per_token. Only
 * under the outbox's lock. */
struct quota {
    char *token;
    long long posts, bytes;
    struct quota *next;
};

struct outbox {
    /* Swapped by outbox_set_config (SIGHUP): every use loads it afresh. */
    _Atomic(const struct config *) cfg;
    /* Pacing shared with the other hosts on one Redis (outbox_share_pacing);
     * NULL: this host's memory alone. */
    _Atomic(struct shared_pacer *) pacer;
    sqlite3 *db;
    pthread_t thread;
    int started;
    struct sched *sched;
    struct fetch *fetch;
    struct mailbox *inbox;
    pthread_mutex_t lock; /* guards `incoming`, the token list's usage and the counts */
    /* Posts and bytes (of their bodies) by state: accepted and not yet
     * delivered or failed ("queued", being sent included), and failed.
     * Kept current as posts come and go, and recounted from the database
     * every 10 s (other processes queue, retry and drop posts too). */
    long long queued, queued_bytes, failed, failed_bytes;
    struct quota *quotas;                                   /* what is queued per token */
    long long refused_size, refused_full;                   /* posts refused since start */
    long long delivered_total, failed_total, retried_total; /* since start */
    struct submission *incoming, *incoming_tail;
    struct waiting *waiting[WAIT_BUCKETS];
    struct token_state *tokens;
    struct sending *sending;
    size_t nsending;
    struct result *results, *results_tail;
    struct sched_timer *kick;  /* a turn is due */
    struct sched_timer *timer; /* the next post due, or the poll */
    long long last_upkeep;     /* wall ms of the last lease pass */
    long long last_prune;      /* ... and of the last prune of the token history */
    atomic_int closing;        /* outbox_close was called: send nothing new */
    int own_only;              /* send only posts submitted here (`cliqhost post`) */
    int64_t own[64];
    size_t nown;
    uint64_t rng;
    /* The config temp.sendable was filled from (the tokens this host can
     * send with or fail for good: named, and disabled or with a value),
     * and the highest id of the posts it holds for another host that the
     * log has told of (ids are never reused, so each is told once). */
    const struct config *sendable_cfg;
    int64_t held_told;
    sqlite3_stmt *st_insert, *st_due, *st_claim, *st_delete, *st_retry, *st_fail, *st_defer,
        *st_call, *st_stats, *st_min_due, *st_due_one, *st_held, *st_hold, *st_unclaim;
};

static void turn(struct sched *s, void *ud);

static void kick(struct outbox *o)
{
    if (!o->kick)
        o->kick = sched_timer_add(o->sched, 0, turn, o);
}

/* The quota of `token`, made when it has none. Under the lock. */
static struct quota *quota_of(struct outbox *o, const char *token)
{
    for (struct quota *q = o->quotas; q; q = q->next)
        if (strcmp(q->token, token) == 0)
            return q;
    struct quota *q = xcalloc(1, sizeof *q);
    q->token = xstrdup(token);
    q->next = o->quotas;
    o->quotas = q;
    return q;
}

static void quotas_free(struct quota *q)
{
    while (q) {
        struct quota *next = q->next;
        free(q->token);
        free(q);
        q = next;
    }
}

/* Counts a post of `len` bytes with `token` as queued (n = 1) or as no
 * longer queued (n = -1). Under the lock. */
static void count_queued(struct outbox *o, const char *token, long long len, int n)
{
    struct quota *q = quota_of(o, token);
    o->queued += n;
    o->queued_bytes += n * len;
    q->posts += n;
    q->bytes += n * len;
    /* A post another process queued since the last recount may leave
     * before it was counted. */
    if (o->queued < 0 || o->queued_bytes < 0)
        o->queued = o->queued_bytes = 0;
    if (q->posts < 0 || q->bytes < 0)
        q->posts = q->bytes = 0;
}

/* Whether the outbox takes `p` under cfg's caps; counts it if so. Under
 * the lock. Returns 0, or -1 with the reason in err. Failed posts are not
 * counted here: they give way to new ones (prune_failed). */
static int admit(struct outbox *o, const struct config *cfg, const struct post *p, char *err,
                 size_t errlen)
{
    long long len = (long long)p->len;
    if (len > cfg->outbox_max_post_bytes) {
        o->refused_size++;
        snprintf(err, errlen, "outbox: the post is %lld bytes, over outbox_max_post_bytes (%ld)",
                 len, cfg->outbox_max_post_bytes);
        return -1;
    }
    const struct quota *q = quota_of(o, p->token);
    if (o->queued + 1 > cfg->outbox_max_queued)
        snprintf(err, errlen, "outbox full: %lld posts queued (outbox_max_queued: %ld)", o->queued,
                 cfg->outbox_max_queued);
    else if (o->queued_bytes + len > cfg->outbox_max_queued_bytes)
        snprintf(err, errlen, "outbox full: %lld bytes queued (outbox_max_queued_bytes: %ld)",
                 o->queued_bytes, cfg->outbox_max_queued_bytes);
    else if (q->posts + 1 > cfg->outbox_max_queued_per_token)
        snprintf(err, errlen,
                 "outbox full: token '%.100s' has %lld posts queued "
                 "(outbox_max_queued_per_token: %ld)",
                 p->token, q->posts, cfg->outbox_max_queued_per_token);
    else if (q->bytes + len > cfg->outbox_max_queued_bytes_per_token)
        snprintf(err, errlen,
                 "outbox full: token '%.100s' has %lld bytes queued "
                 "(outbox_max_queued_bytes_per_token: %ld)",
                 p->token, q->bytes, cfg->outbox_max_queued_bytes_per_token);
    else {
        count_queued(o, p->token, len, 1);
        return 0;
    }
    o->refused_full++;
    return -1;
}

static struct token_state *token_state(struct outbox *o, const char *name)
{
    for (struct token_state *t = o->tokens; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    struct token_state *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    t->cap = o->cfg->post_rate_per_min > 0 ? (size_t)o->cfg->post_rate_per_min : 1;
    t->sent = xcalloc(t->cap, sizeof *t->sent);
    sqlite3_stmt *us = NULL;
    if (sqlite3_prepare_v2(o->db,
                           "SELECT invocations,failures,last_ms FROM token_stats WHERE token=?1",
                           -1, &us, NULL) == SQLITE_OK) {
        sqlite3_bind_text(us, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(us) == SQLITE_ROW) {
            t->invocations = sqlite3_column_int64(us, 0);
            t->failures = sqlite3_column_int64(us, 1);
            t->last_ms = sqlite3_column_int64(us, 2);
        }
    }
    sqlite3_finalize(us);
    pthread_mutex_lock(&o->lock);
    t->next = o->tokens;
    o->tokens = t;
    pthread_mutex_unlock(&o->lock);
    /* Seed the window with what the database remembers, so a restart
     * does not double the rate. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(o->db,
                           "SELECT at_ms FROM token_calls WHERE token=?1 AND at_ms>?2 "
                           "ORDER BY id DESC LIMIT ?3",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, wall_ms() - 60000);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)t->cap);
        long long times[4096];
        size_t k = 0;
        while (sqlite3_step(st) == SQLITE_ROW && k < sizeof times / sizeof times[0])
            times[k++] = sqlite3_column_int64(st, 0);
        while (k > 0) { /* oldest first */
            t->sent[(t->head + t->n) % t->cap] = times[--k];
            if (t->n < t->cap)
                t->n++;
            else
                t->head = (t->head + 1) % t->cap;
        }
    }
    sqlite3_finalize(st);
    return t;
}

/* When `token` may send next (wall ms); now when it may send now. */
static long long token_free_at(struct outbox *o, struct token_state *t, long long now)
{
    if (o->cfg->post_rate_per_min <= 0 || t->n < t->cap)
        return now;
    /* Slots move when a send completes, so the oldest is looked for. */
    long long oldest = t->sent[t->head];
    for (size_t i = 0; i < t->n; i++)
        if (t->sent[i] < oldest)
            oldest = t->sent[i];
    return oldest + 60000 > now ? oldest + 60000 : now;
}

static int step(struct outbox *o, sqlite3_stmt *st);

/* Whether this host leaves posts with `token` to another: its config does
 * not name the token, or names it without a value (an unset environment
 * variable). Such a post is not this host's to send or to fail: another
 * host on the same data_dir (the production config beside a development
 * host) may have the token. Writes why to buf. A disabled token is the
 * operator's word: its posts fail. */
static int held_reason(const struct config *cfg, const char *token, char *buf, size_t n)
{
    const struct config_token *t = config_token(cfg, token);
    char host[300];
    snprintf(host, sizeof host, "host pid %ld (%s)", (long)getpid(),
             cfg->config_path ? cfg->config_path : "no --config");
    if (!t)
        snprintf(buf, n, "waits for token '%s', which the config of %s does not name", token, host);
    else if (!t->disabled && !t->secret && t->env)
        snprintf(buf, n, "waits for token '%s', whose variable %s is unset for %s", token, t->env,
                 host);
    else if (!t->disabled && !t->secret)
        snprintf(buf, n, "waits for token '%s', which has no value in the config of %s", token,
                 host);
    else
        return 0;
    return 1;
}

/* Fills temp.sendable from the current config when it changed (start,
 * SIGHUP); the posts held are then told of again. */
static void sendable_refresh(struct outbox *o)
{
    const struct config *cfg = o->cfg;
    if (cfg == o->sendable_cfg)
        return;
    char why[600];
    if (db_exec(o->db, "DELETE FROM temp.sendable") < 0)
        return;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(o->db, "INSERT OR IGNORE INTO temp.sendable(token) VALUES(?1)", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    for (size_t i = 0; i < cfg->ntokens; i++) {
        if (held_reason(cfg, cfg->tokens[i].name, why, sizeof why))
            continue;
        sqlite3_bind_text(st, 1, cfg->tokens[i].name, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    o->sendable_cfg = cfg;
    o->held_told = 0;
}

/* Tells the log, once per post, of the posts this host holds for another,
 * and writes why into each (for `cliqhost outbox`). Inside a transaction.
 * Returns 0 or -1. */
static int tell_held(struct outbox *o)
{
    int64_t ids[100];
    char *tokens[100];
    size_t n = 0;
    sqlite3_stmt *st = o->st_held;
    sqlite3_bind_int64(st, 1, o->held_told);
    while (n < sizeof ids / sizeof ids[0] && sqlite3_step(st) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(st, 0);
        tokens[n++] = xstrdup((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char why[600];
        if (rc == 0 && held_reason(o->cfg, tokens[i], why, sizeof why)) {
            log_msg(LOG_WARN, NULL,
                    "outbox: post %lld %s; it stays queued for a host whose config has the token",
                    (long long)ids[i], why);
            sqlite3_bind_int64(o->st_hold, 1, ids[i]);
            sqlite3_bind_text(o->st_hold, 2, why, -1, SQLITE_TRANSIENT);
            rc = step(o, o->st_hold);
        }
        if (rc == 0)
            o->held_told = ids[i];
        free(tokens[i]);
    }
    return rc;
}

static void own_add(struct outbox *o, int64_t id)
{
    if (o->nown < sizeof o->own / sizeof o->own[0])
        o->own[o->nown++] = id;
}

/* Moves the pacing slot taken at `reserved` to `at` (when the post left or
 * came back), so the window counts the real sends; at = 0 frees it. */
static void token_move(struct outbox *o, struct token_state *t, long long reserved, long long at)
{
    if (o->cfg->post_rate_per_min <= 0)
        return;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = (t->head + i) % t->cap;
        if (t->sent[k] == reserved) {
            t->sent[k] = at;
            return;
        }
    }
}

static void token_unsent(struct outbox *o, struct token_state *t, long long reserved)
{
    token_move(o, t, reserved, 0);
}

static void token_sent(struct outbox *o, struct token_state *t, long long now)
{
    if (o->cfg->post_rate_per_min <= 0)
        return;
    if (t->n < t->cap) {
        t->sent[(t->head + t->n) % t->cap] = now;
        t->n++;
        return;
    }
    /* Replace the oldest slot. */
    size_t oldest = 0;
    for (size_t i = 1; i < t->n; i++)
        if (t->sent[i] < t->sent[oldest])
            oldest = i;
    t->sent[oldest] = now;
}

/* ---- outcomes back to the submitter ------------------------------------- */

struct outcome_msg {
    struct outbox_outcome oc;
    struct waiter w;
};

static void outcome_run(void *arg)
{
    struct outcome_msg *m = arg;
    m->w.cb(&m->oc, m->w.ud);
    free(m->oc.error);
    free(m->oc.reply);
    free(m);
}

static void outcome_drop(void *arg)
{
    struct outcome_msg *m = arg;
    if (m->w.free_ud)
        m->w.free_ud(m->w.ud);
    free(m->oc.error);
    free(m->oc.reply);
    free(m);
}

static void tell(const struct waiter *w, int64_t id, enum outbox_state state, long status,
                 const char *error, const char *reply, size_t reply_len)
{
    struct outcome_msg *m = xcalloc(1, sizeof *m);
    m->w = *w;
    m->oc.id = id;
    m->oc.state = state;
    m->oc.status = status;
    m->oc.error = error ? xstrdup(error) : NULL;
    if (reply) {
        m->oc.reply = xmalloc(reply_len + 1);
        memcpy(m->oc.reply, reply, reply_len);
        m->oc.reply[reply_len] = '\0';
        m->oc.reply_len = reply_len;
    }
    mailbox_send(w->mb, outcome_run, outcome_drop, m);
}

static void waiting_add(struct outbox *o, int64_t id, const struct waiter *w)
{
    struct waiting *e = xmalloc(sizeof *e);
    e->id = id;
    e->w = *w;
    size_t b = (size_t)id % WAIT_BUCKETS;
    e->next = o->waiting[b];
    o->waiting[b] = e;
}

/* Takes the waiter of post `id` out of the table. Returns 1 if there was one. */
static int waiting_take(struct outbox *o, int64_t id, struct waiter *w)
{
    for (struct waiting **p = &o->waiting[(size_t)id % WAIT_BUCKETS]; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct waiting *e = *p;
            *w = e->w;
            *p = e->next;
            free(e);
            return 1;
        }
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

/* Appends `s` URL-encoded. */
static void add_escaped(struct buf *b, const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    buf_adds(b, e ? e : "");
    curl_free(e);
}

static void log_attempt(const struct sending *sd, const char *outcome, long status, const char *why)
{
    struct buf b;
    buf_init(&b, LOG_LINE_MAX);
    const char *kind = outbox_kind_name(sd->p->kind);
    log_kv(&b, "kind", kind, strlen(kind));
    log_kv(&b, "target", sd->p->target, strlen(sd->p->target));
    log_kv(&b, "token", sd->p->token, strlen(sd->p->token));
    buf_printf(&b, " id=%lld", (long long)sd->id);
    log_kv(&b, "outcome", outcome, strlen(outcome));
    buf_printf(&b, " attempts=%d", sd->attempts);
    if (status)
        buf_printf(&b, " status=%ld", status);
    buf_printf(&b, " ms=%lld", wall_ms() - sd->started_ms);
    if (why)
        log_kv(&b, "error", why, strlen(why));
    enum log_level lv = strcmp(outcome, "delivered") == 0 ? LOG_INFO
                        : strcmp(outcome, "failed") == 0  ? LOG_ERROR
                                                          : LOG_WARN;
    log_msg(lv, sd->p->req_id[0] ? sd->p->req_id : NULL, "post%s", b.data);
    buf_free(&b);
}

static void add_result(struct outbox *o, struct sending *sd, enum result_action a,
                       long long next_ms, long status, const char *error, const char *reply,
                       size_t reply_len, int called)
{
    struct result *r = xcalloc(1, sizeof *r);
    r->called = called;
    r->id = sd->id;
    r->action = a;
    r->next_ms = next_ms;
    r->status = status;
    if (error) {
        /* Reasons reach scripts and the database: no secrets in them. */
        r->error = xstrdup(error);
        log_redact(r->error, strlen(r->error));
    }
    if (reply) {
        r->reply = xmalloc(reply_len + 1);
        memcpy(r->reply, reply, reply_len);
        r->reply[reply_len] = '\0';
        r->reply_len = reply_len;
        log_redact(r->reply, reply_len);
    }
    r->token = xstrdup(sd->p->token);
    r->len = sd->p->len;
    snprintf(r->endpoint, sizeof r->endpoint, "%s %s", outbox_kind_name(sd->p->kind),
             sd->p->target);
    r->at_ms = sd->started_ms;
    if (o->results_tail)
        o->results_tail->next = r;
    else
        o->results = r;
    o->results_tail = r;
}

static void unlink_sending(struct outbox *o, struct sending *sd)
{
    if (sd->prev)
        sd->prev->next = sd->next;
    else
        o->sending = sd->next;
    if (sd->next)
        sd->next->prev = sd->prev;
    o->nsending--;
}

static void free_sending(struct sending *sd)
{
    outbox_post_free(sd->p);
    free(sd);
}

/* Cliq's error bodies are {"message": "..."}; quote that, or the body. */
static void reason_from(long status, const char *body, size_t len, char *out, size_t n)
{
    const char *msg = NULL;
    cJSON *j = len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *m = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
    if (cJSON_IsString(m))
        msg = m->valuestring;
    /* Masked before it is cut: a cut must not leave part of a token. */
    size_t ml = msg ? strlen(msg) : len;
    char *text = xmalloc(ml + 1);
    memcpy(text, msg ? msg : body ? body : "", ml);
    text[ml] = '\0';
    log_redact(text, ml);
    if (msg)
        snprintf(out, n, "HTTP %ld: %.200s", status, text);
    else if (len)
        snprintf(out, n, "HTTP %ld: %.*s", status,
                 (int)(len < REASON_BODY_MAX ? len : REASON_BODY_MAX), text);
    else
        snprintf(out, n, "HTTP %ld", status);
    free(text);
    cJSON_Delete(j);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* Seconds of a Retry-After header, or -1. (An HTTP date is not parsed.) */
static long retry_after(const struct fetch_result *r)
{
    const char *h = r->headers.data;
    for (const char *p = h; p && *p;) {
        if (strncasecmp(p, "retry-after:", 12) == 0) {
            char *end;
            long v = strtol(p + 12, &end, 10);
            return end != p + 12 && v >= 0 ? v : -1;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static long long backoff(struct outbox *o, int attempts)
{
    long long d = RETRY_FIRST_MS;
    for (int i = 1; i < attempts && d < RETRY_MAX_MS; i++)
        d *= 2;
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    o->rng = o->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return d + (long long)((o->rng >> 33) % (uint64_t)(d / 5 + 1));
}

static void on_sent(struct fetch_result *r, void *ud)
{
    struct sending *sd = ud;
    struct outbox *o = sd->o;
    sd->x = NULL;
    unlink_sending(o, sd);
    long long now = wall_ms();
    /* The post reached Cliq at the latest now: count it there. */
    struct token_state *ts = token_state(o, sd->p->token);
    token_move(o, ts, sd->reserved, now);
    char why[400];
    if (r->ok && r->status >= 200 && r->status < 300) {
        log_attempt(sd, "delivered", r->status, NULL);
        add_result(o, sd, RESULT_DELIVERED, 0, r->status, NULL, r->body.data ? r->body.data : "",
                   r->body.len, 1);
    } else {
        long status = r->ok ? r->status : 0;
        long long wait = -1;
        if (!r->ok) {
            snprintf(why, sizeof why, "%s", r->error);
            wait = backoff(o, sd->attempts);
        } else {
            reason_from(r->status, r->body.data, r->body.len, why, sizeof why);
            if (r->status == 429) {
                long ra = retry_after(r);
                if (ra > o->cfg->post_max_age_s)
                    ra = o->cfg->post_max_age_s;
                wait = ra >= 0 ? (long long)ra * 1000 : RETRY_429_MS;
                if (wait < 1000)
                    wait = 1000;
                /* Cliq is limiting this token: hold all its posts. */
                if (now + wait > ts->blocked_until)
                    ts->blocked_until = now + wait;
            } else if (r->status >= 500) {
                wait = backoff(o, sd->attempts);
            }
        }
        long long max_age = o->cfg->post_max_age_s * 1000;
        if (wait >= 0 && now - sd->created_ms < max_age && now + wait - sd->created_ms > max_age)
            wait = sd->created_ms + max_age - now; /* one last try as it comes of age */
        if (wait >= 0 && now - sd->created_ms >= max_age) {
            char gave[sizeof why];
            log_redact(why, strlen(why)); /* before the cut below */
            snprintf(gave, sizeof gave, "gave up after %d attempt%s in %lld s: %.300s",
                     sd->attempts, sd->attempts == 1 ? "" : "s", (now - sd->created_ms) / 1000,
                     why);
            memcpy(why, gave, sizeof why);
            wait = -1;
        }
        if (wait >= 0) {
            log_attempt(sd, "retry", status, why);
            add_result(o, sd, RESULT_RETRY, now + wait, status, why, NULL, 0, 1);
        } else {
            log_attempt(sd, "failed", status, why);
            add_result(o, sd, RESULT_FAILED, 0, status, why, NULL, 0, 1);
        }
    }
    free_sending(sd);
    kick(o);
}

/* Starts sending a claimed post. Takes ownership of p. */
static void start_send(struct outbox *o, int64_t id, struct post *p, int attempts,
                       long long created_ms, long long reserved)
{
    struct sending *sd = xcalloc(1, sizeof *sd);
    sd->o = o;
    sd->id = id;
    sd->p = p;
    sd->attempts = attempts;
    sd->created_ms = created_ms;
    sd->started_ms = wall_ms();
    sd->reserved = reserved;
    sd->next = o->sending;
    if (o->sending)
        o->sending->prev = sd;
    o->sending = sd;
    o->nsending++;

    const struct config_token *tok = config_token(o->cfg, p->token);
    const char *refuse = NULL;
    enum result_action instead = RESULT_FAILED;
    char why[600];
    if (held_reason(o->cfg, p->token, why, sizeof why)) {
        /* The config changed (SIGHUP) since the post was claimed: it goes
         * back, its attempt not counted, for a host with the token. */
        refuse = why;
        instead = RESULT_HOLD;
    } else if (outbox_name_problem(p->target)) {
        snprintf(why, sizeof why, "%s", outbox_name_problem(p->target));
        refuse = why;
    } else if (tok->disabled) {
        snprintf(why, sizeof why, "token '%s' is disabled in the config", p->token);
        refuse = why;
    }
    if (refuse) {
        token_unsent(o, token_state(o, p->token), reserved);
        unlink_sending(o, sd);
        log_attempt(sd, instead == RESULT_HOLD ? "held" : "failed", 0, refuse);
        add_result(o, sd, instead, 0, 0, refuse, NULL, 0, 0);
        free_sending(sd);
        kick(o);
        return;
    }

    struct buf url;
    buf_init(&url, 8192);
    buf_adds(&url, p->base);
    while (url.len && url.data[url.len - 1] == '/')
        url.data[--url.len] = '\0';
    switch (p->kind) {
    case POST_CHANNEL:
        buf_adds(&url, "/api/v2/channelsbyname/");
        add_escaped(&url, p->target);
        buf_adds(&url, "/message");
        break;
    case POST_BOT_MESSAGE:
    case POST_BOT_INCOMING:
        buf_adds(&url, "/api/v2/bots/");
        add_escaped(&url, p->target);
        buf_adds(&url, p->kind == POST_BOT_MESSAGE ? "/message" : "/incoming");
        break;
    case POST_APP_INCOMING:
        buf_adds(&url, "/api/v2/applications/");
        add_escaped(&url, p->target);
        buf_adds(&url, "/incoming");
        break;
    }
    buf_adds(&url, "?zapikey=");
    add_escaped(&url, tok->secret);
    if (p->as_bot) {
        buf_adds(&url, "&bot_unique_name=");
        add_escaped(&url, p->as_bot);
    }
    if (p->appkey) {
        buf_adds(&url, "&appkey=");
        add_escaped(&url, p->appkey);
    }
    static const char *const headers[] = {"Content-Type: application/json; charset=utf-8"};
    struct fetch_request rq = {
        .method = "POST",
        .url = url.data,
        .headers = headers,
        .nheaders = 1,
        .body = p->body,
        .body_len = p->len,
        .timeout_ms = o->cfg->http_timeout_ms,
        .max_response = REPLY_MAX,
    };
    sd->x = fetch_start(o->fetch, &rq, on_sent, sd);
    buf_free(&url); /* fetch copied it */
}

/* ---- a turn: write what happened, then start what is due ---------------- */

static void finish_results(struct outbox *o, struct result *r)
{
    while (r) {
        struct result *next = r->next;
        struct waiter w;
        if ((r->action == RESULT_DELIVERED || r->action == RESULT_FAILED) &&
            waiting_take(o, r->id, &w))
            tell(&w, r->id, r->action == RESULT_DELIVERED ? OUTBOX_DELIVERED : OUTBOX_FAILED,
                 r->status, r->error, r->reply, r->reply_len);
        free(r->error);
        free(r->reply);
        free(r->token);
        free(r);
        r = next;
    }
}
/* Steps a bound statement and resets it. Returns 0, or -1 (logged). */
static int step(struct outbox *o, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_msg(LOG_ERROR, NULL, "outbox: %s", sqlite3_errmsg(o->db));
        return -1;
    }
    return 0;
}

/* Writes the finished attempts in `list` and token usage. Inside a
 * transaction. Returns 0, or -1 if the database refused (the caller rolls
 * back and keeps the list for the next turn). */
static int write_results(struct outbox *o, struct result *list)
{
    int rc = 0;
    for (struct result *r = list; r && rc == 0; r = r->next) {
        sqlite3_stmt *st;
        if (r->action == RESULT_DELIVERED) {
            st = o->st_delete;
            sqlite3_bind_int64(st, 1, r->id);
        } else if (r->action == RESULT_HOLD) {
            st = o->st_unclaim;
            sqlite3_bind_int64(st, 1, r->id);
            sqlite3_bind_text(st, 2, r->error, -1, SQLITE_STATIC);
        } else if (r->action == RESULT_RETRY) {
            st = o->st_retry;
            sqlite3_bind_int64(st, 1, r->id);
            sqlite3_bind_int64(st, 2, r->next_ms);
            sqlite3_bind_int64(st, 3, r->status);
            sqlite3_bind_text(st, 4, r->error, -1, SQLITE_STATIC);
        } else {
            st = o->st_fail;
            sqlite3_bind_int64(st, 1, r->id);
            sqlite3_bind_int64(st, 2, r->status);
            sqlite3_bind_text(st, 3, r->error, -1, SQLITE_STATIC);
        }
        rc = step(o, st);
        if (rc < 0 || !r->called)
            continue; /* refused before any call: not an invocation */
        st = o->st_call;
        sqlite3_bind_text(st, 1, r->token, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->at_ms);
        sqlite3_bind_text(st, 3, r->endpoint, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, r->status);
        sqlite3_bind_text(st, 5, r->action == RESULT_DELIVERED ? NULL : r->error, -1,
                          SQLITE_STATIC);
        rc = step(o, st);
        if (rc < 0)
            continue;
        st = o->st_stats;
        sqlite3_bind_text(st, 1, r->token, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, r->action == RESULT_DELIVERED ? 0 : 1);
        sqlite3_bind_int64(st, 3, r->at_ms);
        rc = step(o, st);
    }
    return rc;
}

/* Counts what was written, for the metrics and token usage; after the
 * commit. */
static void count_results(struct outbox *o, struct result *list)
{
    for (struct result *r = list; r; r = r->next) {
        struct token_state *ts = r->called ? token_state(o, r->token) : NULL;
        pthread_mutex_lock(&o->lock);
        if (r->action == RESULT_DELIVERED) {
            o->delivered_total++;
            count_queued(o, r->token, (long long)r->len, -1);
        } else if (r->action == RESULT_FAILED) {
            o->failed_total++;
            count_queued(o, r->token, (long long)r->len, -1);
            o->failed++;
            o->failed_bytes += (long long)r->len;
        } else if (r->action == RESULT_RETRY) {
            o->retried_total++;
        }
        if (ts) {
            ts->invocations++;
            ts->failures += r->action != RESULT_DELIVERED;
            if (r->at_ms > ts->last_ms)
                ts->last_ms = r->at_ms;
        }
        pthread_mutex_unlock(&o->lock);
    }
}
/* Takes the submissions handed over since the last turn. */
static struct submission *take_submissions(struct outbox *o)
{
    pthread_mutex_lock(&o->lock);
    struct submission *list = o->incoming;
    o->incoming = o->incoming_tail = NULL;
    pthread_mutex_unlock(&o->lock);
    return list;
}

/* Puts submissions back in front of any that came meanwhile (the turn that
 * took them could not write them). */
static void untake_submissions(struct outbox *o, struct submission *list)
{
    if (!list)
        return;
    struct submission *last = list;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&o->lock);
    last->next = o->incoming;
    if (!o->incoming)
        o->incoming_tail = last;
    o->incoming = list;
    pthread_mutex_unlock(&o->lock);
}

/* Writes submissions, setting each one's id. Inside a transaction. Returns
 * 0, or -1 if the database refused. */
static int write_submissions(struct outbox *o, struct submission *list)
{
    long long now = wall_ms();
    for (struct submission *s = list; s; s = s->next) {
        struct post *p = s->p;
        sqlite3_stmt *st = o->st_insert;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, p->token, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)p->kind);
        sqlite3_bind_text(st, 4, p->target, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, p->as_bot, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, p->appkey, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, p->base, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 8, p->body, (int)p->len, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, p->req_id, -1, SQLITE_STATIC);
        if (step(o, st) < 0)
            return -1;
        s->id = sqlite3_last_insert_rowid(o->db);
    }
    return 0;
}
/* After the commit: accepted posts are told, waiters registered. */
static void tell_submissions(struct outbox *o, struct submission *list)
{
    while (list) {
        struct submission *next = list->next;
        if (list->wait)
            waiting_add(o, list->id, &list->w);
        else
            tell(&list->w, list->id, OUTBOX_ACCEPTED, 0, NULL, NULL, 0);
        if (list->wait && o->own_only)
            own_add(o, list->id);
        outbox_post_free(list->p);
        free(list);
        list = next;
    }
}
/* Reads a post row (from st_due) into a new post. */
static struct post *row_post(sqlite3_stmt *st)
{
    struct post *p = xcalloc(1, sizeof *p);
    const char *s;
    p->token = xstrdup((const char *)sqlite3_column_text(st, 2));
    p->kind = (enum post_kind)sqlite3_column_int(st, 3);
    p->target = xstrdup((const char *)sqlite3_column_text(st, 4));
    if ((s = (const char *)sqlite3_column_text(st, 5)))
        p->as_bot = xstrdup(s);
    if ((s = (const char *)sqlite3_column_text(st, 6)))
        p->appkey = xstrdup(s);
    p->base = xstrdup((const char *)sqlite3_column_text(st, 7));
    int n = sqlite3_column_bytes(st, 8);
    p->body = xmalloc((size_t)n + 1);
    memcpy(p->body, sqlite3_column_blob(st, 8), (size_t)n);
    p->body[n] = '\0';
    p->len = (size_t)n;
    snprintf(p->req_id, sizeof p->req_id, "%s", (const char *)sqlite3_column_text(st, 9));
    return p;
}

/* A post claimed in this turn, started once the turn commits. */
struct claim {
    int64_t id;
    struct post *p;
    int attempts;
    long long created;
    long long reserved; /* the pacing slot taken for it */
};

/* Looks at one due row (from st_due or st_due_one): too old, paced or
 * blocked, or claimed into *claims. Inside a transaction. */
static int consider_row(struct outbox *o, sqlite3_stmt *st, long long now, struct claim **claims,
                        size_t *nclaims, size_t *alloc)
{
    int64_t id = sqlite3_column_int64(st, 0);
    long long created = sqlite3_column_int64(st, 1);
    if (now - created >= o->cfg->post_max_age_s * 1000) {
        /* Waited too long (the host was down, or a long paced backlog). */
        struct post *p = row_post(st);
        struct sending tmp = {
            .o = o, .id = id, .p = p, .started_ms = now, .attempts = sqlite3_column_int(st, 10)};
        char why[160];
        snprintf(why, sizeof why, "expired: not sent within post_max_age_s (%ld s)",
                 o->cfg->post_max_age_s);
        log_attempt(&tmp, "failed", 0, why);
        add_result(o, &tmp, RESULT_FAILED, 0, 0, why, NULL, 0, 0);
        outbox_post_free(p);
        return 0;
    }
    struct token_state *t = token_state(o, (const char *)sqlite3_column_text(st, 2));
    long long free_at = token_free_at(o, t, now);
    if (t->blocked_until > free_at)
        free_at = t->blocked_until;
    /* Free by this host's count: with hosts sharing a Redis, the token's
     * window across all of them decides; without an answer from Redis,
     * this host's count alone does. */
    struct shared_pacer *pacer = atomic_load(&o->pacer);
    const struct config_token *tok = config_token(o->cfg, t->name);
    long long wait = 0;
    if (free_at <= now && pacer && o->cfg->post_rate_per_min > 0 && tok && tok->secret &&
        shared_pace(pacer, tok->secret, o->cfg->post_rate_per_min, &wait) == 0 && wait > 0)
        free_at = now + wait;
    if (free_at > now) {
        sqlite3_bind_int64(o->st_defer, 1, id);
        sqlite3_bind_int64(o->st_defer, 2, free_at);
        return step(o, o->st_defer);
    }
    if (*nclaims == *alloc) {
        *alloc = *alloc ? *alloc * 2 : 16;
        *claims = xrealloc(*claims, *alloc * sizeof **claims);
    }
    struct claim *c = &(*claims)[(*nclaims)++];
    c->id = id;
    c->p = row_post(st);
    c->attempts = sqlite3_column_int(st, 10) + 1;
    c->created = created;
    c->reserved = now;
    token_sent(o, t, now);
    sqlite3_bind_int64(o->st_claim, 1, id);
    sqlite3_bind_int64(o->st_claim, 2, now + o->cfg->http_timeout_ms + LEASE_MS);
    sqlite3_bind_int64(o->st_claim, 3, (sqlite3_int64)getpid());
    return step(o, o->st_claim);
}

/* Claims due posts up to the concurrency limit. Inside a transaction; the
 * claims start only once it commits. Returns 0 or -1. */
static int claim_due(struct outbox *o, struct claim **claims, size_t *nclaims)
{
    *claims = NULL;
    *nclaims = 0;
    if (o->closing)
        return 0;
    long long now = wall_ms();
    long max = o->cfg->post_concurrency;
    size_t alloc = 0;
    int rc = 0;
    if (o->own_only) {
        /* `cliqhost post` sends only its own posts; the host sends the rest. */
        for (size_t i = 0; i < o->nown && rc == 0; i++) {
            sqlite3_stmt *st = o->st_due_one;
            sqlite3_bind_int64(st, 1, o->own[i]);
            sqlite3_bind_int64(st, 2, now);
            if (sqlite3_step(st) == SQLITE_ROW)
                rc = consider_row(o, st, now, claims, nclaims, &alloc);
            sqlite3_reset(st);
        }
        return rc;
    }
    if ((long)o->nsending >= max)
        return 0;
    sqlite3_stmt *st = o->st_due;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (max - (long)o->nsending) * 4);
    /* Rows are read first and changed after, so the scan never sees its
     * own updates. */
    int64_t ids[4096];
    size_t n = 0;
    while (n < sizeof ids / sizeof ids[0] && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    for (size_t i = 0; i < n && rc == 0 && (long)(o->nsending + *nclaims) < max; i++) {
        sqlite3_stmt *one = o->st_due_one;
        sqlite3_bind_int64(one, 1, ids[i]);
        sqlite3_bind_int64(one, 2, now);
        if (sqlite3_step(one) == SQLITE_ROW)
            rc = consider_row(o, one, now, claims, nclaims, &alloc);
        sqlite3_reset(one);
    }
    return rc;
}
static void on_timer(struct sched *s, void *ud)
{
    (void)s;
    struct outbox *o = ud;
    o->timer = NULL;
    kick(o);
}

/* Sets the timer for the next post due (or the poll, whichever is first). */
static void arm_timer(struct outbox *o)
{
    sched_timer_cancel(o->sched, o->timer);
    long long wait = POLL_MS;
    sqlite3_stmt *st = o->st_min_due;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        long long due = sqlite3_column_int64(st, 0) - wall_ms();
        if (due < wait)
            wait = due > 0 ? due : 0;
    }
    sqlite3_reset(st);
    if ((long)o->nsending >= o->cfg->post_concurrency && wait < POLL_MS)
        wait = POLL_MS; /* a finished send kicks a turn anyway */
    o->timer = sched_timer_add(o->sched, wait, on_timer, o);
}

/* Prunes token_calls to the last TOKEN_CALLS_KEPT per token. */
static void prune_calls(sqlite3 *db)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "DELETE FROM token_calls WHERE id IN (SELECT id FROM (SELECT id, row_number() "
             "OVER (PARTITION BY token ORDER BY id DESC) AS k FROM token_calls) WHERE k>%d)",
             TOKEN_CALLS_KEPT);
    db_exec(db, sql);
}

/* Recounts the posts from the database: by state, and per token what is
 * queued. Posts handed over but not yet written are added, so the counts
 * stay what admit() has let in. */
static void recount(struct outbox *o)
{
    sqlite3_stmt *st = NULL;
    long long queued = 0, queued_bytes = 0, failed = 0, failed_bytes = 0;
    struct quota *quotas = NULL;
    if (sqlite3_prepare_v2(o->db,
                           "SELECT token, state='failed', count(*), total(length(body)) FROM posts "
                           "GROUP BY token, state='failed'",
                           -1, &st, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, NULL, "outbox: cannot count the posts: %s", sqlite3_errmsg(o->db));
        return;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long n = sqlite3_column_int64(st, 2), bytes = sqlite3_column_int64(st, 3);
        if (sqlite3_column_int(st, 1)) {
            failed += n;
            failed_bytes += bytes;
            continue;
        }
        queued += n;
        queued_bytes += bytes;
        struct quota *q = xcalloc(1, sizeof *q);
        q->token = xstrdup((const char *)sqlite3_column_text(st, 0));
        q->posts = n;
        q->bytes = bytes;
        q->next = quotas;
        quotas = q;
    }
    sqlite3_finalize(st);
    pthread_mutex_lock(&o->lock);
    struct quota *old = o->quotas;
    o->quotas = quotas;
    o->queued = queued;
    o->queued_bytes = queued_bytes;
    o->failed = failed;
    o->failed_bytes = failed_bytes;
    for (struct submission *sub = o->incoming; sub; sub = sub->next)
        count_queued(o, sub->p->token, (long long)sub->p->len, 1);
    pthread_mutex_unlock(&o->lock);
    quotas_free(old);
}

/* Failed posts are kept for the operator while new posts do not need
 * their room: when the outbox holds more than outbox_max_queued posts or
 * outbox_max_queued_bytes in all, the oldest failed ones are deleted, and
 * the log says which. */
static void prune_failed(struct outbox *o)
{
    const struct config *cfg = o->cfg;
    pthread_mutex_lock(&o->lock);
    long long over_posts = o->queued + o->failed - cfg->outbox_max_queued;
    long long over_bytes = o->queued_bytes + o->failed_bytes - cfg->outbox_max_queued_bytes;
    int prune = o->failed > 0 && (over_posts > 0 || over_bytes > 0);
    pthread_mutex_unlock(&o->lock);
    if (!prune || db_exec(o->db, "BEGIN IMMEDIATE") < 0)
        return;
    sqlite3_stmt *st = NULL;
    long long n = 0, bytes = 0, first = 0, last = 0;
    if (sqlite3_prepare_v2(o->db,
                           "SELECT id, length(body) FROM posts WHERE state='failed' ORDER BY id",
                           -1, &st, NULL) == SQLITE_OK) {
        while ((over_posts > 0 || over_bytes > 0) && sqlite3_step(st) == SQLITE_ROW) {
            last = sqlite3_column_int64(st, 0);
            if (!n)
                first = last;
            long long len = sqlite3_column_int64(st, 1);
            n++;
            bytes += len;
            over_posts--;
            over_bytes -= len;
        }
    }
    sqlite3_finalize(st);
    char sql[120];
    snprintf(sql, sizeof sql, "DELETE FROM posts WHERE state='failed' AND id<=%lld", last);
    if (!n || db_exec(o->db, sql) < 0 || db_exec(o->db, "COMMIT") < 0) {
        db_exec(o->db, "ROLLBACK");
        return;
    }
    pthread_mutex_lock(&o->lock);
    o->failed -= n;
    o->failed_bytes -= bytes;
    if (o->failed < 0 || o->failed_bytes < 0)
        o->failed = o->failed_bytes = 0;
    pthread_mutex_unlock(&o->lock);
    log_msg(LOG_WARN, NULL,
            "outbox: deleted %lld failed post%s (ids %lld to %lld, the oldest) to make room for "
            "new posts (outbox_max_queued: %ld, outbox_max_queued_bytes: %ld)",
            n, n == 1 ? "" : "s", first, last, cfg->outbox_max_queued,
            cfg->outbox_max_queued_bytes);
}

/* Appends `name{token="label"} value` with the label escaped. */
static void metric_line(struct buf *out, const char *name, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void metric_line(struct buf *out, const char *name, const char *label, const char *fmt, ...)
{
    buf_adds(out, name);
    buf_adds(out, "{token=\"");
    log_escape(out, label, strlen(label));
    buf_adds(out, "\"} ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(out, fmt, ap);
    va_end(ap);
    buf_addc(out, '\n');
}

void outbox_metrics(struct outbox *o, struct buf *out)
{
    pthread_mutex_lock(&o->lock);
    buf_printf(out,
               "# HELP cliqhost_outbox_posts Posts in the outbox by state (queued includes "
               "being sent).\n"
               "# TYPE cliqhost_outbox_posts gauge\n"
               "cliqhost_outbox_posts{state=\"queued\"} %lld\n"
               "cliqhost_outbox_posts{state=\"failed\"} %lld\n"
               "# HELP cliqhost_outbox_bytes Bytes of the posts' bodies in the outbox by state.\n"
               "# TYPE cliqhost_outbox_bytes gauge\n"
               "cliqhost_outbox_bytes{state=\"queued\"} %lld\n"
               "cliqhost_outbox_bytes{state=\"failed\"} %lld\n"
               "# HELP cliqhost_outbox_refused_total Posts refused since start: over "
               "outbox_max_post_bytes (too_big), or the outbox or their token's share full "
               "(full).\n"
               "# TYPE cliqhost_outbox_refused_total counter\n"
               "cliqhost_outbox_refused_total{reason=\"too_big\"} %lld\n"
               "cliqhost_outbox_refused_total{reason=\"full\"} %lld\n"
               "# HELP cliqhost_outbox_attempts_total Delivery attempts since start, by outcome.\n"
               "# TYPE cliqhost_outbox_attempts_total counter\n"
               "cliqhost_outbox_attempts_total{outcome=\"delivered\"} %lld\n"
               "cliqhost_outbox_attempts_total{outcome=\"retry\"} %lld\n"
               "cliqhost_outbox_attempts_total{outcome=\"failed\"} %lld\n",
               o->queued, o->failed, o->queued_bytes, o->failed_bytes, o->refused_size,
               o->refused_full, o->delivered_total, o->retried_total, o->failed_total);
    buf_adds(out, "# HELP cliqhost_token_invocations_total Calls made with a webhook token "
                  "(never the token itself).\n"
                  "# TYPE cliqhost_token_invocations_total counter\n");
    for (struct token_state *t = o->tokens; t; t = t->next)
        metric_line(out, "cliqhost_token_invocations_total", t->name, "%lld", t->invocations);
    buf_adds(out, "# HELP cliqhost_token_failures_total Calls with a webhook token that failed.\n"
                  "# TYPE cliqhost_token_failures_total counter\n");
    for (struct token_state *t = o->tokens; t; t = t->next)
        metric_line(out, "cliqhost_token_failures_total", t->name, "%lld", t->failures);
    buf_adds(out, "# HELP cliqhost_token_last_invoked_seconds When a webhook token was last "
                  "used (Unix time).\n"
                  "# TYPE cliqhost_token_last_invoked_seconds gauge\n");
    for (struct token_state *t = o->tokens; t; t = t->next)
        metric_line(out, "cliqhost_token_last_invoked_seconds", t->name, "%.3f",
                    (double)t->last_ms / 1000.0);
    pthread_mutex_unlock(&o->lock);
}

/* A turn: in one transaction, write what was handed over and what
 * happened, then claim what is due. Only after it commits are submitters
 * told and claimed posts sent; if it does not commit, everything stays for
 * the next turn, so nothing is told or sent that the database lacks. */
static void turn(struct sched *s, void *ud)
{
    (void)s;
    struct outbox *o = ud;
    o->kick = NULL;
    struct submission *subs = take_submissions(o);
    struct result *results = o->results;
    o->results = o->results_tail = NULL;
    struct claim *claims = NULL;
    size_t nclaims = 0;
    sendable_refresh(o);
    int ok = db_exec(o->db, "BEGIN IMMEDIATE") == 0;
    ok = ok && write_submissions(o, subs) == 0;
    ok = ok && write_results(o, results) == 0;
    long long now = wall_ms();
    if (ok && now - o->last_upkeep >= POLL_MS) {
        /* Leases of deliverers that died (a crashed `cliqhost post`); this
         * process's own sends are never taken back. */
        o->last_upkeep = now;
        char sql[200];
        snprintf(sql, sizeof sql,
                 "UPDATE posts SET state='queued' WHERE state='sending' AND lease_ms<%lld AND "
                 "owner!=%lld",
                 now, (long long)getpid());
        ok = db_exec(o->db, sql) == 0;
        /* `cliqhost post` sends only its own posts and holds none. */
        ok = ok && (o->own_only || tell_held(o) == 0);
    }
    ok = ok && claim_due(o, &claims, &nclaims) == 0;
    ok = ok && db_exec(o->db, "COMMIT") == 0;
    if (!ok) {
        db_exec(o->db, "ROLLBACK");
        untake_submissions(o, subs);
        /* The results go back in front of any that came since. */
        struct result *last = results;
        while (last && last->next)
            last = last->next;
        if (last) {
            last->next = o->results;
            if (!o->results)
                o->results_tail = last;
            o->results = results;
        }
        for (size_t i = 0; i < nclaims; i++) {
            token_unsent(o, token_state(o, claims[i].p->token), claims[i].reserved);
            outbox_post_free(claims[i].p);
        }
        free(claims);
        log_msg(LOG_ERROR, NULL, "outbox: the database refused a write; trying again in 1 s");
        sched_timer_cancel(o->sched, o->timer);
        o->timer = sched_timer_add(o->sched, 1000, on_timer, o);
        return;
    }
    tell_submissions(o, subs);
    count_results(o, results);
    finish_results(o, results);
    for (size_t i = 0; i < nclaims; i++)
        start_send(o, claims[i].id, claims[i].p, claims[i].attempts, claims[i].created,
                   claims[i].reserved);
    free(claims);
    if (now - o->last_prune >= 10 * POLL_MS) {
        o->last_prune = now;
        prune_calls(o->db);
        recount(o);
    }
    prune_failed(o);
    arm_timer(o);
}

/* ---- the thread and its mailbox ----------------------------------------- */

static void on_submission(void *arg)
{
    struct outbox *o = arg;
    kick(o);
}

/* The outbox's thread. Once closing, it sends nothing new, lets the sends
 * in flight finish (up to their timeout: cancelling one that Cliq may
 * already have would send it twice next time), and writes the outcomes. */
static void *outbox_main(void *arg)
{
    struct outbox *o = arg;
    log_thread_buffered(1);
    kick(o);
    long long close_by = 0;
    for (;;) {
        sched_run_once(o->sched, o->closing ? 100 : -1);
        log_flush();
        if (!o->closing)
            continue;
        if (!close_by)
            close_by = sched_clock_ms() + o->cfg->http_timeout_ms + 1000;
        if (o->nsending == 0 || sched_clock_ms() > close_by)
            break;
    }
    turn(o->sched, o); /* the last outcomes and submissions */
    log_flush();
    log_thread_buffered(0);
    return NULL;
}
static void finalize_all(struct outbox *o)
{
    sqlite3_stmt **all[] = {&o->st_insert, &o->st_due,     &o->st_claim,   &o->st_delete,
                            &o->st_retry,  &o->st_fail,    &o->st_defer,   &o->st_call,
                            &o->st_stats,  &o->st_min_due, &o->st_due_one, &o->st_held,
                            &o->st_hold,   &o->st_unclaim};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

/* Posts left 'sending' by a process that is gone (killed, or this host
 * before a restart) go back to the queue at once, not when their lease
 * ends. A live process's posts are left alone. */
static void requeue_orphans(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT owner FROM posts WHERE state='sending'", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    long long dead[256];
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < sizeof dead / sizeof dead[0]) {
        long long pid = sqlite3_column_int64(st, 0);
        if (pid <= 0 || pid == (long long)getpid() || (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
            dead[n++] = pid;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        char sql[120];
        snprintf(sql, sizeof sql,
                 "UPDATE posts SET state='queued' WHERE state='sending' AND owner=%lld", dead[i]);
        db_exec(db, sql);
    }
}

void outbox_share_pacing(struct outbox *o, struct shared_pacer *p)
{
    atomic_store(&o->pacer, p);
}

void outbox_set_config(struct outbox *o, const struct config *cfg)
{
    if (o)
        atomic_store(&o->cfg, cfg);
}

struct outbox *outbox_open(const struct config *cfg, int own_only, char *err, size_t errlen)
{
    struct outbox *o = xcalloc(1, sizeof *o);
    o->cfg = cfg;
    o->own_only = own_only;
    pthread_mutex_init(&o->lock, NULL);
    o->rng = (uint64_t)wall_ms() * 2654435761u + 1;
    o->db = db_open(cfg, err, errlen);
    if (!o->db)
        goto fail;
    o->st_insert = prepare(o->db, "INSERT INTO posts(created_ms,token,kind,target,as_bot,"
                                  "appkey,base,body,req_id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    /* Posts whose token this host cannot use are left to another host
     * (held_reason): never due here. A post's age counts from its
     * creation, or from `outbox retry`. */
    db_exec(o->db, "CREATE TEMP TABLE IF NOT EXISTS sendable(token TEXT PRIMARY KEY)");
    sendable_refresh(o);
#define DUE_POSTS                                                                                  \
    "SELECT id,max(created_ms,since_ms),token,kind,target,as_bot,appkey,base,body,req_id,"         \
    "attempts FROM posts WHERE state='queued' AND token IN (SELECT token FROM temp.sendable) "
    o->st_due = prepare(o->db, DUE_POSTS "AND next_ms<=?1 ORDER BY next_ms,id LIMIT ?2");
    o->st_due_one = prepare(o->db, DUE_POSTS "AND id=?1 AND next_ms<=?2");
#undef DUE_POSTS
    o->st_held = prepare(o->db, "SELECT id,token FROM posts WHERE state='queued' AND id>?1 AND "
                                "token NOT IN (SELECT token FROM temp.sendable) ORDER BY id "
                                "LIMIT 100");
    o->st_hold = prepare(o->db, "UPDATE posts SET held=?2 WHERE id=?1");
    o->st_unclaim = prepare(o->db, "UPDATE posts SET state='queued',attempts=max(attempts-1,0),"
                                   "held=?2 WHERE id=?1");
    o->st_claim = prepare(o->db, "UPDATE posts SET state='sending',lease_ms=?2,owner=?3,"
                                 "attempts=attempts+1,held=NULL WHERE id=?1 AND state='queued'");
    o->st_delete = prepare(o->db, "DELETE FROM posts WHERE id=?1");
    o->st_retry = prepare(o->db, "UPDATE posts SET state='queued',next_ms=?2,last_status=?3,"
                                 "last_error=?4 WHERE id=?1");
    o->st_fail = prepare(o->db, "UPDATE posts SET state='failed',last_status=?2,last_error=?3 "
                                "WHERE id=?1");
    o->st_defer = prepare(o->db, "UPDATE posts SET next_ms=?2,held=NULL WHERE id=?1");
    o->st_call = prepare(o->db, "INSERT INTO token_calls(token,at_ms,endpoint,status,error) "
                                "VALUES(?1,?2,?3,?4,?5)");
    o->st_stats = prepare(o->db, "INSERT INTO token_stats(token,invocations,failures,last_ms) "
                                 "VALUES(?1,1,?2,?3) ON CONFLICT(token) DO UPDATE SET "
                                 "invocations=invocations+1,failures=failures+excluded.failures,"
                                 "last_ms=max(last_ms,excluded.last_ms)");
    o->st_min_due = prepare(o->db, "SELECT min(next_ms) FROM posts WHERE state='queued' AND "
                                   "token IN (SELECT token FROM temp.sendable)");
    if (!o->st_insert || !o->st_due || !o->st_claim || !o->st_delete || !o->st_retry ||
        !o->st_fail || !o->st_defer || !o->st_call || !o->st_stats || !o->st_min_due ||
        !o->st_due_one || !o->st_held || !o->st_hold || !o->st_unclaim) {
        snprintf(err, errlen, "cannot prepare the outbox's statements: %s", sqlite3_errmsg(o->db));
        goto fail;
    }
    if (!own_only)
        requeue_orphans(o->db);
    for (size_t i = 0; i < cfg->ntokens; i++)
        token_state(o, cfg->tokens[i].name); /* so /metrics lists every token */
    recount(o);
    o->sched = sched_new(NULL, NULL, NULL);
    o->fetch = o->sched ? fetch_new(o->sched) : NULL;
    o->inbox = o->sched ? mailbox_new(o->sched) : NULL;
    if (!o->sched || !o->fetch || !o->inbox) {
        snprintf(err, errlen, "cannot set up the outbox's loop");
        goto fail;
    }
    fetch_keep_connections(o->fetch, cfg->post_concurrency);
    int e = pthread_create(&o->thread, NULL, outbox_main, o);
    if (e) {
        snprintf(err, errlen, "cannot start the outbox thread: %s", strerror(e));
        goto fail;
    }
    o->started = 1;
    return o;
fail:
    outbox_close(o);
    return NULL;
}

void outbox_close(struct outbox *o)
{
    if (!o)
        return;
    if (o->started) {
        o->closing = 1;
        mailbox_send(o->inbox, on_submission, NULL, o); /* wake it */
        pthread_join(o->thread, NULL);
    }
    /* Sends still in flight after their timeout go back to the queue. */
    if (o->db && o->sending) {
        db_exec(o->db, "BEGIN IMMEDIATE");
        for (struct sending *sd = o->sending; sd; sd = sd->next) {
            char sql[120];
            snprintf(sql, sizeof sql, "UPDATE posts SET state='queued' WHERE id=%lld",
                     (long long)sd->id);
            db_exec(o->db, sql);
        }
        db_exec(o->db, "COMMIT");
    }
    /* Submissions that could not be written (the database refused) are
     * dropped with a log line each. */
    for (struct submission *sub = o->incoming; sub;) {
        struct submission *next = sub->next;
        log_msg(LOG_ERROR, sub->p->req_id[0] ? sub->p->req_id : NULL,
                "outbox: a post could not be written before the host stopped");
        if (sub->w.free_ud)
            sub->w.free_ud(sub->w.ud);
        outbox_post_free(sub->p);
        free(sub);
        sub = next;
    }
    o->incoming = o->incoming_tail = NULL;
    while (o->sending) {
        struct sending *sd = o->sending;
        if (sd->x)
            fetch_cancel(o->fetch, sd->x);
        unlink_sending(o, sd);
        free_sending(sd);
    }
    while (o->results) {
        struct result *r = o->results;
        o->results = r->next;
        free(r->error);
        free(r->reply);
        free(r->token);
        free(r);
    }
    for (size_t b = 0; b < WAIT_BUCKETS; b++) {
        while (o->waiting[b]) {
            struct waiting *e = o->waiting[b];
            o->waiting[b] = e->next;
            if (e->w.free_ud)
                e->w.free_ud(e->w.ud);
            free(e);
        }
    }
    while (o->tokens) {
        struct token_state *t = o->tokens;
        o->tokens = t->next;
        free(t->name);
        free(t->sent);
        free(t);
    }
    quotas_free(o->quotas);
    mailbox_free(o->inbox);
    fetch_free(o->fetch);
    if (o->sched) {
        sched_timer_cancel(o->sched, o->kick);
        sched_timer_cancel(o->sched, o->timer);
    }
    sched_free(o->sched);
    finalize_all(o);
    sqlite3_close(o->db);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

const char *outbox_name_problem(const char *name)
{
    if (!*name)
        return "not a name: it is empty";
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return "not a name: '.' and '..' are path steps";
    return NULL;
}

int outbox_submit(struct outbox *o, struct post *p, int wait, struct mailbox *reply_to,
                  outbox_cb cb, void (*free_ud)(void *), void *ud, char *err, size_t errlen)
{
    const struct config *cfg = o->cfg;
    struct submission *s = xcalloc(1, sizeof *s);
    s->p = p;
    s->wait = wait;
    s->w = (struct waiter){reply_to, cb, free_ud, ud};
    pthread_mutex_lock(&o->lock);
    int rc = admit(o, cfg, p, err, errlen);
    if (rc == 0) {
        if (o->incoming_tail)
            o->incoming_tail->next = s;
        else
            o->incoming = s;
        o->incoming_tail = s;
    }
    pthread_mutex_unlock(&o->lock);
    if (rc < 0) {
        outbox_post_free(p);
        free(s);
        return -1;
    }
    mailbox_send(o->inbox, on_submission, NULL, o);
    return 0;
}

/* ---- the command line's view -------------------------------------------- */

static void format_time(long long ms, char *out, size_t n)
{
    if (!ms) {
        snprintf(out, n, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int outbox_list(const struct config *cfg, FILE *out, char *err, size_t errlen)
{
    sqlite3 *db = db_open(cfg, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id,created_ms,token,kind,target,state,attempts,next_ms,"
                           "last_status,last_error,held FROM posts ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        char created[32], next[32];
        format_time(sqlite3_column_int64(st, 1), created, sizeof created);
        format_time(sqlite3_column_int64(st, 7), next, sizeof next);
        const char *state = (const char *)sqlite3_column_text(st, 5);
        const char *error = (const char *)sqlite3_column_text(st, 9);
        const char *held = (const char *)sqlite3_column_text(st, 10);
        int is_held = held && strcmp(state, "queued") == 0;
        fprintf(out, "%lld  %-7s  %s %s  token=%s  created=%s  attempts=%d",
                (long long)sqlite3_column_int64(st, 0), is_held ? "held" : state,
                outbox_kind_name((enum post_kind)sqlite3_column_int(st, 3)),
                (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 2),
                created, sqlite3_column_int(st, 6));
        if (is_held)
            fprintf(out, "  waiting=\"%s\"", held);
        else if (strcmp(state, "queued") == 0)
            fprintf(out, "  next=%s", sqlite3_column_int64(st, 7) ? next : "now");
        if (sqlite3_column_int(st, 8))
            fprintf(out, "  status=%d", sqlite3_column_int(st, 8));
        if (error)
            fprintf(out, "  error=\"%s\"", error);
        fputc('\n', out);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (n == 0)
        fprintf(out, "the outbox is empty: no post is waiting or failed\n");
    return n;
}

/* Runs an UPDATE/DELETE on one post. Returns 0, 1 (no such post) or -1. */
static int change_one(const struct config *cfg, const char *sql, int64_t id, char *err,
                      size_t errlen)
{
    sqlite3 *db = db_open(cfg, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_DONE)
            rc = sqlite3_changes(db) ? 0 : 1;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int outbox_retry(const struct config *cfg, int64_t id, char *err, size_t errlen)
{
    /* A retried post starts over: its age (since_ms) and attempts count
     * from now; created_ms stays when it was made. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE posts SET state='queued',next_ms=0,attempts=0,since_ms=%lld WHERE id=?1 "
             "AND state IN ('failed','queued')",
             wall_ms());
    return change_one(cfg, sql, id, err, errlen);
}

int outbox_drop(const struct config *cfg, int64_t id, char *err, size_t errlen)
{
    return change_one(cfg, "DELETE FROM posts WHERE id=?1 AND state!='sending'", id, err, errlen);
}

int outbox_tokens_report(const struct config *cfg, FILE *out, char *err, size_t errlen)
{
    sqlite3 *db = db_open(cfg, err, errlen);
    if (!db)
        return -1;
    /* Every configured token. */
    size_t n = cfg->ntokens;
    for (size_t i = 0; i <= n; i++) {
        const struct config_token *t = i < n ? &cfg->tokens[i] : NULL;
        if (!t)
            break;
        char unset[300];
        snprintf(unset, sizeof unset, "not configured: %s is unset", t->env ? t->env : "");
        const char *status = t->disabled ? "disabled"
                             : t->secret ? "active"
                             : t->env    ? unset
                                         : "not configured";
        long long inv = 0, fails = 0, last = 0;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT invocations,failures,last_ms FROM token_stats WHERE "
                               "token=?1",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                inv = sqlite3_column_int64(st, 0);
                fails = sqlite3_column_int64(st, 1);
                last = sqlite3_column_int64(st, 2);
            }
        }
        sqlite3_finalize(st);
        char when[32];
        format_time(last, when, sizeof when);
        fprintf(out, "%s  %s  invocations=%lld  failures=%lld  last_invoked=%s\n", t->name, status,
                inv, fails, when);
        if (sqlite3_prepare_v2(db,
                               "SELECT at_ms,endpoint,status,error FROM token_calls WHERE "
                               "token=?1 ORDER BY id DESC LIMIT 50",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
            while (sqlite3_step(st) == SQLITE_ROW) {
                format_time(sqlite3_column_int64(st, 0), when, sizeof when);
                const char *e = (const char *)sqlite3_column_text(st, 3);
                int code = sqlite3_column_int(st, 2);
                char st_text[24] = "no answer";
                if (code)
                    snprintf(st_text, sizeof st_text, "status=%d", code);
                fprintf(out, "    %s  %-40s  %s%s%s%s\n", when,
                        (const char *)sqlite3_column_text(st, 1), st_text, e ? "  error=\"" : "",
                        e ? e : "", e ? "\"" : "");
            }
        }
        sqlite3_finalize(st);
    }
    if (n == 0)
        fprintf(out, "no tokens in the config (set `tokens` in the file given with --config)\n");
    sqlite3_close(db);
    return 0;
}
