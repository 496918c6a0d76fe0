/* Unit tests for the schedules' records in cliq/store (STORE_SCHED_*):
 * every case runs on both backends, SQLite in a temporary data_dir and a
 * real redis-server this test starts on a free loopback port, and both
 * must give the same answers: each backend's answers are written into a
 * transcript (with the backend's clock readings masked) and the two
 * transcripts are compared. Without redis-server installed, the Redis half
 * is skipped, saying so. */
#include "check.h"
#include "cliq/store.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "event/redis.h"
#include "event/sched.h"
#include "cliq/shared.h"

#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Ticks as a host computes them: Unix ms, a second apart. */
#define T0   1765000000000LL
#define T(k) (T0 + (k)*1000LL)

/* A long hold: a run that holds the schedule this long outlasts any case. */
#define HOLD 600000

struct backend {
    const char *name;
    struct config cfg;
    struct store *s;
    struct sched *loop;    /* Redis: the loop its connection runs on */
    struct redis_conn *rc; /* NULL for SQLite */
    struct buf log;        /* the transcript */
    char dir[64];
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- running one operation ------------------------------------------------ */

struct waiter {
    int done;
    struct store_result res;
};

static void on_done(struct store_result *res, void *ud)
{
    struct waiter *w = ud;
    w->res = *res; /* takes over its strings */
    w->done = 1;
}

/* Runs op on b through store_start, waiting for a later answer (10 s at
 * most); res is the caller's to clear. */
static void run(struct backend *b, const struct store_op *op, struct store_result *res)
{
    struct waiter w = {0};
    struct store_pending *p = NULL;
    if (store_start(b->s, b->rc, op, res, on_done, &w, &p))
        return;
    long long t0 = sched_clock_ms();
    while (!w.done && sched_clock_ms() - t0 < 10000)
        sched_run_once(b->loop, 50);
    if (!w.done) {
        store_cancel(p);
        memset(res, 0, sizeof *res);
        res->status = STORE_FAIL;
        snprintf(res->err, sizeof res->err, "test: no answer in 10 s");
        return;
    }
    *res = w.res;
}

static const char *answer_name(enum store_sched_answer a)
{
    return a == STORE_SCHED_RUN ? "RUN" : a == STORE_SCHED_TAKEN ? "TAKEN" : "BUSY";
}

/* Writes res's failure into the transcript; 1 when it failed. */
static int logged_failure(struct backend *b, const struct store_result *res)
{
    if (res->status != STORE_FAIL)
        return 0;
    buf_printf(&b->log, " -> FAIL %s\n", res->err);
    return 1;
}

static long long init(struct backend *b, const char *name, long long tick)
{
    struct store_op op = {
        .kind = STORE_SCHED_INIT, .key = name, .klen = strlen(name), .tick_ms = tick};
    struct store_result res;
    run(b, &op, &res);
    buf_printf(&b->log, "init %s %lld", name, tick);
    long long got = res.tick_ms;
    if (!logged_failure(b, &res))
        buf_printf(&b->log, " -> %lld\n", got);
    else
        got = -1;
    CHECK_INT(res.status, STORE_OK);
    store_result_clear(&res);
    return got;
}

/* A claim's answer (-1: failed); *record_tick and *run_tick (BUSY) as
 * answered. */
static int claim_full(struct backend *b, const char *name, long long tick, long long hold,
                      const char *host, long long *record_tick, long long *run_tick)
{
    struct store_op op = {.kind = STORE_SCHED_CLAIM,
                          .key = name,
                          .klen = strlen(name),
                          .tick_ms = tick,
                          .hold_ms = hold,
                          .value = host,
                          .vlen = strlen(host)};
    struct store_result res;
    run(b, &op, &res);
    buf_printf(&b->log, "claim %s %lld %s", name, tick, host);
    int got = res.sched;
    if (logged_failure(b, &res)) {
        got = -1;
    } else {
        buf_printf(&b->log, " -> %s %lld %lld\n", answer_name(res.sched), res.tick_ms,
                   res.run_tick_ms);
        *record_tick = res.tick_ms;
        *run_tick = res.run_tick_ms;
    }
    store_result_clear(&res);
    return got;
}

static int claim(struct backend *b, const char *name, long long tick, const char *host)
{
    long long rt, kt;
    return claim_full(b, name, tick, HOLD, host, &rt, &kt);
}

/* DONE with the outcome's JSON; returns the status. */
static int done(struct backend *b, const char *name, long long tick, const char *outcome)
{
    struct store_op op = {.kind = STORE_SCHED_DONE,
                          .key = name,
                          .klen = strlen(name),
                          .tick_ms = tick,
                          .value = outcome,
                          .vlen = outcome ? strlen(outcome) : 0};
    struct store_result res;
    run(b, &op, &res);
    buf_printf(&b->log, "done %s %lld", name, tick);
    int st = res.status;
    if (!logged_failure(b, &res))
        buf_printf(&b->log, " -> %lld\n", res.tick_ms);
    store_result_clear(&res);
    return st;
}

/* Copies text into out with the clock readings (the numbers after
 * "held_until", "started" and "finished") written as "T" when not 0: they
 * differ between backends and runs. */
static void mask_clock(const char *text, size_t len, struct buf *out)
{
    static const char *const keys[] = {"\"held_until\":", "\"started\":", "\"finished\":"};
    size_t i = 0;
    while (i < len) {
        int masked = 0;
        for (int k = 0; k < 3 && !masked; k++) {
            size_t kl = strlen(keys[k]);
            if (len - i > kl && memcmp(text + i, keys[k], kl) == 0) {
                buf_add(out, text + i, kl);
                i += kl;
                if (text[i] == '0' && (i + 1 == len || text[i + 1] < '0' || text[i + 1] > '9')) {
                    buf_addc(out, '0');
                    i++;
                } else {
                    buf_addc(out, 'T');
                    while (i < len && text[i] >= '0' && text[i] <= '9')
                        i++;
                }
                masked = 1;
            }
        }
        if (!masked)
            buf_addc(out, text[i++]);
    }
}

/* The schedules' LIST as "name=json\n" lines, clock readings masked
 * (caller frees); also into the transcript. *raw (when given) gets the
 * record of `name` unmasked (caller frees; NULL when absent). */
static char *list(struct backend *b, const char *name, char **raw)
{
    struct store_op op = {.kind = STORE_SCHED_LIST};
    struct store_result res;
    run(b, &op, &res);
    struct buf out;
    buf_init(&out, 1 << 20);
    if (raw)
        *raw = NULL;
    CHECK_INT(res.status, STORE_OK);
    CHECK_INT(res.more, 0);
    if (res.status == STORE_FAIL)
        buf_printf(&out, "FAIL %s\n", res.err);
    for (size_t i = 0; i < res.nitems; i++) {
        const struct store_item *it = &res.items[i];
        buf_add(&out, it->key, it->klen);
        buf_addc(&out, '=');
        mask_clock(it->value, it->vlen, &out);
        buf_addc(&out, '\n');
        if (raw && name && strlen(name) == it->klen && memcmp(name, it->key, it->klen) == 0)
            *raw = xstrdup(it->value);
    }
    size_t n;
    char *text = buf_take(&out, &n);
    buf_printf(&b->log, "list\n%s", text);
    store_result_clear(&res);
    return text;
}

/* The number after "field": in json (-1 when absent). */
static long long field(const char *json, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* The line of `name` in a list's text (a copy, caller frees). */
static char *line_of(const char *text, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "%s=", name);
    const char *p = strstr(text, pat);
    while (p && p != text && p[-1] != '\n')
        p = strstr(p + 1, pat);
    if (!p)
        return xstrdup("(absent)");
    size_t n = strcspn(p, "\n");
    char *l = xmalloc(n + 1);
    memcpy(l, p, n);
    l[n] = '\0';
    return l;
}

/* ---- the cases ------------------------------------------------------------ */

/* INIT creates the record once; later it answers the tick the record has. */
static void case_init(struct backend *b)
{
    CHECK_INT(init(b, "init", T(1)), T(1));
    CHECK_INT(init(b, "init", T(5)), T(1)); /* missed T(2) .. T(5): a catch-up would run */
    CHECK_INT(claim(b, "init", T(6), "host-a"), STORE_SCHED_RUN);
    CHECK_INT(init(b, "init", T(9)), T(6));
    CHECK_INT(done(b, "init", T(6), "{\"outcome\":\"ok\"}"), STORE_OK);
}

/* One host runs a tick; the others hear TAKEN. A run still going at the
 * next tick makes it BUSY for the one host that claims it first, TAKEN for
 * the rest; after DONE the next tick runs. */
static void case_claim(struct backend *b)
{
    long long rec, run_tick;
    CHECK_INT(claim_full(b, "c", T(1), HOLD, "host-a", &rec, &run_tick), STORE_SCHED_RUN);
    CHECK_INT(rec, 0);
    CHECK_INT(claim_full(b, "c", T(1), HOLD, "host-b", &rec, &run_tick), STORE_SCHED_TAKEN);
    CHECK_INT(rec, T(1));
    CHECK_INT(claim_full(b, "c", T(2), HOLD, "host-b", &rec, &run_tick), STORE_SCHED_BUSY);
    CHECK_INT(rec, T(1));
    CHECK_INT(run_tick, T(1));
    CHECK_INT(claim_full(b, "c", T(2), HOLD, "host-c", &rec, &run_tick), STORE_SCHED_TAKEN);
    CHECK_INT(rec, T(2));
    CHECK_INT(claim(b, "c", T(1), "host-c"), STORE_SCHED_TAKEN); /* an old tick */
    CHECK_INT(done(b, "c", T(1), "{\"outcome\":\"ok\",\"ms\":5,\"host\":\"host-a\"}"), STORE_OK);
    CHECK_INT(claim(b, "c", T(3), "host-b"), STORE_SCHED_RUN);
    CHECK_INT(claim(b, "c", T(3), "host-a"), STORE_SCHED_TAKEN);
    char *raw;
    char *text = list(b, "c", &raw);
    char *l = line_of(text, "c");
    CHECK_STR(l, "c={\"tick\":1765000003000,\"held_until\":T,\"run_tick\":1765000003000,"
                 "\"running_host\":\"host-b\",\"started\":T,\"skipped\":1,"
                 "\"last_skip_tick\":1765000002000,\"last\":{\"tick\":1765000001000,"
                 "\"finished\":T,\"outcome\":\"ok\",\"ms\":5,\"host\":\"host-a\"}}");
    CHECK_INT(field(raw, "held_until") - field(raw, "started"), HOLD);
    free(l);
    free(text);
    free(raw);
    CHECK_INT(
        done(b, "c", T(3),
             "{\"outcome\":\"failed\",\"error\":\"boom \\\"x\\\"\",\"ms\":7,\"host\":\"host-b\"}"),
        STORE_OK);
    CHECK_INT(claim(b, "c", T(4), "host-c"), STORE_SCHED_RUN);
    CHECK_INT(done(b, "c", T(4), "{ }"), STORE_OK);
    text = list(b, "c", NULL);
    l = line_of(text, "c");
    CHECK_STR(l, "c={\"tick\":1765000004000,\"held_until\":0,\"run_tick\":1765000004000,"
                 "\"running_host\":\"host-c\",\"started\":T,\"skipped\":1,"
                 "\"last_skip_tick\":1765000002000,\"last\":{\"tick\":1765000004000,"
                 "\"finished\":T}}");
    free(l);
    free(text);
}

/* A run whose host never finished holds the schedule for hold_ms only;
 * its late DONE keeps its outcome but does not release the new run. */
static void case_hold_expires(struct backend *b)
{
    CHECK_INT(claim_full(b, "h", T(1), 200, "host-a", &(long long){0}, &(long long){0}),
              STORE_SCHED_RUN);
    char *raw;
    free(list(b, "h", &raw));
    CHECK_INT(field(raw, "held_until") - field(raw, "started"), 200);
    free(raw);
    sleep_ms(500); /* host-a has crashed; its hold runs out */
    CHECK_INT(claim(b, "h", T(2), "host-b"), STORE_SCHED_RUN);
    CHECK_INT(done(b, "h", T(1), "{\"outcome\":\"failed\",\"host\":\"host-a\"}"), STORE_OK);
    CHECK_INT(claim(b, "h", T(3), "host-c"), STORE_SCHED_BUSY); /* host-b's run holds it */
    char *text = list(b, "h", NULL);
    char *l = line_of(text, "h");
    CHECK_HAS(l, "\"running_host\":\"host-b\"");
    CHECK_HAS(l, "\"last\":{\"tick\":1765000001000,\"finished\":T,\"outcome\":\"failed\"");
    free(l);
    free(text);
    CHECK_INT(done(b, "h", T(2), "{\"outcome\":\"ok\"}"), STORE_OK);
    CHECK_INT(claim(b, "h", T(4), "host-c"), STORE_SCHED_RUN);
    CHECK_INT(done(b, "h", T(4), "{\"outcome\":\"limit\"}"), STORE_OK);
}

/* An outcome is never lost: a DONE without a record makes one; an older
 * tick's outcome does not replace a newer one's. */
static void case_done_order(struct backend *b)
{
    CHECK_INT(done(b, "d", T(2), "{\"outcome\":\"ok\"}"), STORE_OK);
    CHECK_INT(done(b, "d", T(1), "{\"outcome\":\"stopped\"}"), STORE_OK);
    CHECK_INT(claim(b, "d", T(2), "host-a"), STORE_SCHED_TAKEN);
    char *text = list(b, "d", NULL);
    char *l = line_of(text, "d");
    CHECK_STR(l, "d={\"tick\":1765000002000,\"held_until\":0,\"skipped\":0,\"last\":{\"tick\":"
                 "1765000002000,\"finished\":T,\"outcome\":\"ok\"}}");
    free(l);
    free(text);
}

/* Wrong input is refused with a reason, before the backend is asked. */
static void case_bad_input(struct backend *b)
{
    CHECK_INT(claim(b, "", T(1), "host-a"), -1);
    long long rec, rt;
    CHECK_INT(claim_full(b, "bad", -5, HOLD, "host-a", &rec, &rt), -1);
    CHECK_INT(claim_full(b, "bad", T(1), -1, "host-a", &rec, &rt), -1);
    CHECK_INT(done(b, "bad", T(1), "[1]"), STORE_FAIL);
    CHECK_INT(done(b, "bad", T(1), "{\"outcome\":"), STORE_FAIL);
    CHECK_INT(done(b, "bad", T(1), NULL), STORE_FAIL);
    CHECK_HAS((const char *)b->log.data, "FAIL store: an outcome is a JSON object");
    CHECK_HAS((const char *)b->log.data, "FAIL store: a schedule's name is 1 to 512 bytes");
    char *text = list(b, NULL, NULL);
    CHECK(!strstr(text, "bad="));
    free(text);
}

/* The records are not script keys: store.get and store.list do not see
 * them, store_max_keys (2 here) does not count them, and sweeping
 * expired keys leaves them. */
static void case_not_script_keys(struct backend *b)
{
    struct store_result res;
    struct store_op set = {.kind = STORE_SET, .key = "a", .klen = 1, .value = "1", .vlen = 1};
    run(b, &set, &res);
    CHECK_INT(res.status, STORE_OK);
    store_result_clear(&res);
    struct store_op get = {.kind = STORE_GET, .key = "c", .klen = 1};
    run(b, &get, &res);
    CHECK_INT(res.status, STORE_OK);
    CHECK(res.value == NULL);
    store_result_clear(&res);
    struct store_op ls = {.kind = STORE_LIST, .key = "", .klen = 0, .limit = 100};
    run(b, &ls, &res);
    CHECK_INT(res.status, STORE_OK);
    CHECK_INT(res.nitems, 1);
    if (res.nitems)
        CHECK_STR(res.items[0].key, "a");
    store_result_clear(&res);
    CHECK_INT(store_keys(b->s), 1);
    /* A key with a short life: the second key allowed. */
    struct store_op brief = {
        .kind = STORE_SET, .key = "t", .klen = 1, .value = "2", .vlen = 1, .ttl_s = 0.05};
    run(b, &brief, &res);
    CHECK_INT(res.status, STORE_OK);
    store_result_clear(&res);
    struct store_op third = {.kind = STORE_SET, .key = "x", .klen = 1, .value = "3", .vlen = 1};
    run(b, &third, &res);
    CHECK_INT(res.status, STORE_FAIL);
    CHECK_HAS(res.err, "store full: 2 keys");
    store_result_clear(&res);
    sleep_ms(200); /* "t" expires; the full store sweeps it to take "x" */
    run(b, &third, &res);
    CHECK_INT(res.status, STORE_OK);
    store_result_clear(&res);
    CHECK_INT(store_keys(b->s), 2);
    buf_printf(&b->log, "script keys: %lld\n", store_keys(b->s));
    char *text = list(b, NULL, NULL);
    CHECK_HAS(text, "c={");
    CHECK_HAS(text, "d={");
    CHECK_HAS(text, "h={");
    CHECK_HAS(text, "init={");
    free(text);
}

/* LIST stops at STORE_MAX_LIST records, saying there are more. */
static void case_many(struct backend *b)
{
    int created = 0;
    for (int i = 0; i < STORE_MAX_LIST; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%04d", i);
        struct store_op op = {
            .kind = STORE_SCHED_INIT, .key = name, .klen = strlen(name), .tick_ms = T(1)};
        struct store_result res;
        run(b, &op, &res);
        created += res.status == STORE_OK;
        store_result_clear(&res);
    }
    CHECK_INT(created, STORE_MAX_LIST);
    struct store_op op = {.kind = STORE_SCHED_LIST};
    struct store_result res;
    run(b, &op, &res);
    CHECK_INT(res.status, STORE_OK);
    CHECK_INT(res.nitems, STORE_MAX_LIST);
    CHECK_INT(res.more, 1);
    /* c, d, h, init, then the first 996 of m0000 .. m0999. */
    if (res.nitems == STORE_MAX_LIST)
        CHECK_STR(res.items[STORE_MAX_LIST - 1].key, "m0995");
    buf_printf(&b->log, "list of many: %zu items, more %d, last %s\n", res.nitems, res.more,
               res.nitems ? res.items[res.nitems - 1].key : "");
    store_result_clear(&res);
}

static void run_cases(struct backend *b)
{
    case_init(b);
    case_claim(b);
    case_hold_expires(b);
    case_done_order(b);
    case_bad_input(b);
    case_not_script_keys(b);
    case_many(b);
}

/* ---- the backends --------------------------------------------------------- */

static int backend_open(struct backend *b, const char *name, const char *store_url)
{
    memset(b, 0, sizeof *b);
    b->name = name;
    buf_init(&b->log, 1 << 20);
    snprintf(b->dir, sizeof b->dir, "/tmp/test_schedstore.XXXXXX");
    if (!mkdtemp(b->dir))
        return -1;
    config_defaults(&b->cfg);
    free(b->cfg.data_dir);
    b->cfg.data_dir = xstrdup(b->dir);
    b->cfg.store_max_keys = 2;
    if (store_url) {
        free(b->cfg.store);
        b->cfg.store = xstrdup(store_url);
    }
    char err[512];
    b->s = store_open(&b->cfg, err, sizeof err);
    if (!b->s) {
        fprintf(stderr, "%s: store_open: %s\n", name, err);
        return -1;
    }
    if (!store_url)
        return 0;
    b->loop = sched_new(NULL, NULL, NULL);
    b->rc = shared_connect(store_shared(b->s), b->loop);
    long long t0 = sched_clock_ms();
    while (!redis_conn_up(b->rc) && sched_clock_ms() - t0 < 10000)
        sched_run_once(b->loop, 50);
    if (!redis_conn_up(b->rc)) {
        fprintf(stderr, "%s: no connection to %s in 10 s\n", name, store_url);
        return -1;
    }
    return 0;
}

static void backend_close(struct backend *b)
{
    redis_conn_free(b->rc);
    store_close(b->s);
    sched_free(b->loop);
    config_free(&b->cfg);
    buf_free(&b->log);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
    if (b->dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", b->dir);
}

/* A free loopback port (free when asked). */
static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts redis-server on a free loopback port. Returns its pid (0: not
 * installed; -1: it did not start). */
static pid_t redis_start(unsigned *port)
{
    *port = free_port();
    char p[16];
    snprintf(p, sizeof p, "%u", *port);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    long long t0 = sched_clock_ms();
    while (sched_clock_ms() - t0 < 10000) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) && WEXITSTATUS(st) == 127 ? 0 : -1;
        if (port_open(*port))
            return pid;
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* A store.db made before schedules had a table gets one when opened. */
static void test_old_database(void)
{
    char dir[] = "/tmp/test_schedstore_old.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/store.db", dir);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE kv(key BLOB PRIMARY KEY, version INTEGER NOT NULL,"
                           " expires_ms INTEGER NOT NULL DEFAULT 0, value BLOB NOT NULL)"
                           " WITHOUT ROWID;"
                           "INSERT INTO kv VALUES (CAST('k' AS BLOB), 1, 0, CAST('7' AS BLOB));",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    struct backend b;
    memset(&b, 0, sizeof b);
    buf_init(&b.log, 1 << 20);
    config_defaults(&b.cfg);
    free(b.cfg.data_dir);
    b.cfg.data_dir = xstrdup(dir);
    char err[512] = "";
    b.s = store_open(&b.cfg, err, sizeof err);
    CHECK_STR(err, "");
    if (b.s) {
        CHECK_INT(init(&b, "old", T(1)), T(1));
        CHECK_INT(claim(&b, "old", T(2), "host-a"), STORE_SCHED_RUN);
        struct store_op get = {.kind = STORE_GET, .key = "k", .klen = 1};
        struct store_result res;
        run(&b, &get, &res);
        CHECK_STR(res.value, "7");
        store_result_clear(&res);
        CHECK_INT(store_keys(b.s), 1);
    }
    snprintf(b.dir, sizeof b.dir, "%s", dir);
    backend_close(&b);
}

static void test_both_backends(void)
{
    struct backend lite;
    CHECK_INT(backend_open(&lite, "sqlite", NULL), 0);
    if (lite.s)
        run_cases(&lite);
    unsigned port;
    pid_t pid = redis_start(&port);
    if (pid == 0) {
        fprintf(stderr, "SKIP the Redis half: redis-server is not installed\n");
    } else {
        CHECK(pid > 0);
        struct backend red;
        char url[64];
        snprintf(url, sizeof url, "redis://127.0.0.1:%u/0", port);
        if (pid > 0 && backend_open(&red, "redis", url) == 0) {
            run_cases(&red);
            /* The same answers, one for one. */
            CHECK_STR((const char *)red.log.data, (const char *)lite.log.data);
            backend_close(&red);
        } else if (pid > 0) {
            CHECK(!"the redis backend did not open");
        }
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
    }
    backend_close(&lite);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_old_database);
    RUN(test_both_backends);
    return CHECK_DONE();
}
