/* shared: replay claims, pacing and link health on a Redis (see shared.h). */
#include "cliq/shared.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/redis.h"
#include "event/sched.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum link_state { LINK_CONNECTING, LINK_UP, LINK_DOWN };

/* One connection's view, for the health (the shared owns it). */
struct link {
    struct shared *sh;
    int up;
    struct link *next;
};

struct shared {
    _Atomic(const struct config *) cfg;
    struct redis_target t;
    char prefix[128];
    pthread_mutex_t mu; /* guards the health below */
    struct link *links;
    int nlinks, nup;
    enum link_state state;
    long long since_ms; /* wall ms of the last change */
    char why[400];
    _Atomic long long fallbacks[2];      /* replay, pacing */
    _Atomic long long downs;             /* times the link went down */
    _Atomic long long refusal_logged_ms; /* when quiet_enough last said yes */
    char claim_sha[41];                  /* claim_script's SHA-1, in hex */
};

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int shared_wanted(const struct config *cfg)
{
    return strncmp(cfg->store, "redis://", 8) == 0 || strncmp(cfg->store, "unix:", 5) == 0;
}

/* A claim is a plain SET ... NX GET (the cheapest command for Redis); a
 * full Redis (maxmemory, noeviction) refuses that with OOM, and then the
 * claim is this script, which may run there (allow-oom): a script filling
 * the store must not turn the hosts' shared memory of calls off. The
 * script goes by its SHA-1, and as text when Redis does not have it
 * (restarted, SCRIPT FLUSH). */
static const char claim_script[] =
    "#!lua flags=allow-oom\n"
    "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'GET', 'PX', ARGV[2])\n";

struct shared *shared_new(const struct config *cfg, char *err, size_t errlen)
{
    struct redis_target t;
    if (redis_parse_url(cfg->store, &t, err, errlen) < 0)
        return NULL;
    struct shared *sh = xcalloc(1, sizeof *sh);
    sh->cfg = cfg;
    sh->t = t;
    snprintf(sh->prefix, sizeof sh->prefix, "%s", cfg->redis_prefix);
    pthread_mutex_init(&sh->mu, NULL);
    sh->since_ms = wall_ms();
    snprintf(sh->why, sizeof sh->why, "connecting");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(claim_script, strlen(claim_script), md, &mdlen, EVP_sha1(), NULL);
    for (unsigned i = 0; i < mdlen && i < 20; i++)
        snprintf(sh->claim_sha + 2 * i, 3, "%02x", md[i]);
    return sh;
}

void shared_free(struct shared *sh)
{
    if (!sh)
        return;
    while (sh->links) {
        struct link *l = sh->links;
        sh->links = l->next;
        free(l);
    }
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

void shared_set_config(struct shared *sh, const struct config *cfg)
{
    if (sh)
        sh->cfg = cfg;
}

const char *shared_shown(const struct shared *sh)
{
    return sh->t.shown;
}

const char *shared_prefix(const struct shared *sh)
{
    return sh->prefix;
}

/* A connection's state changed: the host's may too, and is logged when it
 * does. */
static void on_link_state(int up, const char *why, void *ud)
{
    struct link *l = ud;
    struct shared *sh = l->sh;
    pthread_mutex_lock(&sh->mu);
    if (up && !l->up)
        sh->nup++;
    else if (!up && l->up)
        sh->nup--;
    l->up = up;
    enum link_state was = sh->state;
    long long now = wall_ms();
    if (!up && was != LINK_DOWN) {
        sh->state = LINK_DOWN;
        sh->since_ms = now;
        snprintf(sh->why, sizeof sh->why, "%s", why);
        atomic_fetch_add(&sh->downs, 1);
        log_msg(LOG_WARN, NULL,
                "redis unreachable: %s; store calls fail, replay protection and webhook pacing "
                "use this host's memory until it is back",
                why);
    } else if (up && sh->nup == sh->nlinks && was != LINK_UP) {
        long long down_for = now - sh->since_ms;
        sh->state = LINK_UP;
        sh->since_ms = now;
        snprintf(sh->why, sizeof sh->why, "connected");
        if (was == LINK_DOWN)
            log_msg(LOG_INFO, NULL, "redis reachable again at %s after %lld.%lld s: shared again",
                    sh->t.shown, down_for / 1000, down_for % 1000 / 100);
        else
            log_msg(LOG_INFO, NULL, "redis: connected to %s (%d connection%s)", sh->t.shown,
                    sh->nlinks, sh->nlinks == 1 ? "" : "s");
    }
    pthread_mutex_unlock(&sh->mu);
}

struct redis_conn *shared_connect(struct shared *sh, struct sched *s)
{
    struct link *l = xcalloc(1, sizeof *l);
    l->sh = sh;
    pthread_mutex_lock(&sh->mu);
    l->next = sh->links;
    sh->links = l;
    sh->nlinks++;
    if (sh->state == LINK_UP)
        sh->state = LINK_CONNECTING; /* up again once this one is too */
    pthread_mutex_unlock(&sh->mu);
    return redis_conn_new(s, &sh->t, sh->cfg->redis_timeout_ms, NULL, NULL, 0, on_link_state, l);
}

/* Whether a refusal may be logged now: once a minute at most, since one
 * comes with every call while it lasts (a full Redis, say). */
static int quiet_enough(struct shared *sh)
{
    long long now = wall_ms(), last = atomic_load(&sh->refusal_logged_ms);
    return now - last >= 60000 &&
           atomic_compare_exchange_strong(&sh->refusal_logged_ms, &last, now);
}

/* ---- replay -------------------------------------------------------------- */

struct shared_claim_op {
    struct shared *sh;
    struct redis_conn *rc;
    struct redis_req *req;
    long long at_ms;
    int how; /* 0: SET; 1: the script by its SHA-1; 2: its text */
    char key[200], at[24], px[24];
    shared_claim_cb cb;
    void *ud;
};

static void on_claim(struct redisReply *r, const char *err, void *ud);

/* Sends the claim `how` (see struct shared_claim_op). Returns 0 or -1. */
static int claim_send(struct shared_claim_op *op, int how)
{
    const char *set[] = {"SET", op->key, op->at, "NX", "GET", "PX", op->px};
    const char *eval[] = {how == 2 ? "EVAL" : "EVALSHA",
                          how == 2 ? claim_script : op->sh->claim_sha,
                          "1",
                          op->key,
                          op->at,
                          op->px};
    char err[400];
    op->how = how;
    op->req = how ? redis_command(op->rc, 6, eval, NULL, on_claim, op, err, sizeof err)
                  : redis_command(op->rc, 7, set, NULL, on_claim, op, err, sizeof err);
    return op->req ? 0 : -1;
}

static void on_claim(struct redisReply *r, const char *err, void *ud)
{
    struct shared_claim_op *op = ud;
    (void)err;
    if (r && r->type == REDIS_REPLY_ERROR &&
        ((op->how == 0 && strncmp(r->str, "OOM", 3) == 0) ||
         (op->how == 1 && strncmp(r->str, "NOSCRIPT", 8) == 0)) &&
        claim_send(op, op->how + 1) == 0)
        return;
    shared_claim_cb cb = op->cb;
    void *cud = op->ud;
    long long at = op->at_ms;
    struct shared *sh = op->sh;
    free(op);
    if (r && r->type == REDIS_REPLY_NIL) {
        cb(SHARED_CLAIMED, 0, cud);
    } else if (r && r->type == REDIS_REPLY_STRING) {
        long long first = strtoll(r->str, NULL, 10);
        cb(SHARED_REPEAT, at - first > 0 ? at - first : 0, cud);
    } else {
        /* No answer, or one we cannot read (a Redis older than 7.0 refuses
         * SET ... NX GET): this host's memory decides. */
        if (r && r->type == REDIS_REPLY_ERROR && quiet_enough(sh))
            log_msg(LOG_WARN, NULL,
                    "redis refused a replay check: %s; this host's memory decides (once a "
                    "minute at most; `cliqhost check` says whether this Redis will do)",
                    r->str);
        atomic_fetch_add(&sh->fallbacks[0], 1);
        cb(SHARED_UNAVAILABLE, 0, cud);
    }
}

/* The claim's key: the prefix, "r:" and the digest in hex. */
static void claim_key(const struct shared *sh, const unsigned char *digest, size_t len, char *key,
                      size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)snprintf(key, cap, "%sr:", sh->prefix);
    for (size_t i = 0; i < len && n + 3 <= cap; i++) {
        key[n++] = hex[digest[i] >> 4];
        key[n++] = hex[digest[i] & 15];
    }
    key[n] = '\0';
}

struct shared_claim_op *shared_claim(struct shared *sh, struct redis_conn *rc,
                                     const unsigned char *digest, size_t len, long long keep_ms,
                                     shared_claim_cb cb, void *ud)
{
    struct shared_claim_op *op = xmalloc(sizeof *op);
    op->sh = sh;
    op->rc = rc;
    op->at_ms = wall_ms();
    op->cb = cb;
    op->ud = ud;
    claim_key(sh, digest, len, op->key, sizeof op->key);
    snprintf(op->at, sizeof op->at, "%lld", op->at_ms);
    snprintf(op->px, sizeof op->px, "%lld", keep_ms > 0 ? keep_ms : 1);
    if (claim_send(op, 0) < 0) {
        free(op);
        atomic_fetch_add(&sh->fallbacks[0], 1);
        return NULL;
    }
    return op;
}

static void on_forgot(struct redisReply *r, const char *err, void *ud)
{
    (void)r;
    (void)err;
    (void)ud;
}

void shared_forget(struct shared *sh, struct redis_conn *rc, const unsigned char *digest,
                   size_t len)
{
    char key[200], err[300];
    claim_key(sh, digest, len, key, sizeof key);
    const char *del[] = {"DEL", key};
    if (!redis_command(rc, 2, del, NULL, on_forgot, NULL, err, sizeof err))
        log_msg(LOG_WARN, NULL,
                "could not forget a claim in Redis (%s): a retry of it will be "
                "taken for a repeat until it expires",
                err);
}

void shared_claim_cancel(struct shared_claim_op *op)
{
    if (!op)
        return;
    redis_cancel(op->req);
    free(op);
}

/* ---- pacing -------------------------------------------------------------- */

/* A sliding window of a minute: drops what is older, then takes a slot if
 * fewer than the limit were taken, else says how long until the oldest
 * leaves. The time is Redis', so the hosts' clocks need not agree. */
static const char pace_script[] =
    "#!lua flags=allow-oom\n" /* a full Redis must not lift the pace */
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)\n"
    "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then\n"
    "  redis.call('ZADD', KEYS[1], now, ARGV[2])\n"
    "  redis.call('PEXPIRE', KEYS[1], 61000)\n"
    "  return 0\n"
    "end\n"
    "local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "return math.max(1, tonumber(oldest[2]) + 60000 - now)\n";

struct shared_pacer {
    struct shared *sh;
    struct redis_sync *sync;
    char member[96]; /* this host's prefix for the members it adds */
    unsigned long long n;
};

struct shared_pacer *shared_pacer_new(struct shared *sh, const struct config *cfg)
{
    if (!sh)
        return NULL;
    struct shared_pacer *p = xcalloc(1, sizeof *p);
    p->sh = sh;
    p->sync = redis_sync_new(&sh->t, cfg->redis_timeout_ms);
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(p->member, sizeof p->member, "%.60s:%ld:%lld", host, (long)getpid(), wall_ms());
    return p;
}

void shared_pacer_free(struct shared_pacer *p)
{
    if (!p)
        return;
    redis_sync_free(p->sync);
    free(p);
}

int shared_pace(struct shared_pacer *p, const char *secret, long per_min, long long *wait_ms)
{
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_Digest(secret, strlen(secret), md, &mdlen, EVP_sha256(), NULL);
    char key[200];
    int n = snprintf(key, sizeof key, "%space:", p->sh->prefix);
    for (unsigned i = 0; i < 16 && n + 2 < (int)sizeof key; i++)
        n += snprintf(key + n, sizeof key - (size_t)n, "%02x", md[i]);
    char cap[24], member[128];
    snprintf(cap, sizeof cap, "%ld", per_min);
    snprintf(member, sizeof member, "%s:%llu", p->member, ++p->n);
    const char *argv[] = {"EVAL", pace_script, "1", key, cap, member};
    char err[400];
    struct redisReply *r = redis_sync_command(p->sync, 6, argv, NULL, err, sizeof err);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r && quiet_enough(p->sh))
            log_msg(LOG_WARN, NULL,
                    "redis refused a pacing check: %s; this host paces alone (once a minute at "
                    "most)",
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        if (r)
            freeReplyObject(r);
        atomic_fetch_add(&p->sh->fallbacks[1], 1);
        return -1;
    }
    *wait_ms = r->integer;
    freeReplyObject(r);
    return 0;
}

/* ---- health -------------------------------------------------------------- */

void shared_count_fallback(struct shared *sh, int what)
{
    if (sh && (what == 0 || what == 1))
        atomic_fetch_add(&sh->fallbacks[what], 1);
}

static const char *state_name(enum link_state s)
{
    return s == LINK_UP ? "up" : s == LINK_DOWN ? "down" : "connecting";
}

void shared_status(struct shared *sh, struct buf *out)
{
    pthread_mutex_lock(&sh->mu);
    buf_printf(out, "\"redis\":{\"state\":\"%s\",\"since_ms\":%lld,\"connections\":%d,\"up\":%d,",
               state_name(sh->state), sh->since_ms, sh->nlinks, sh->nup);
    char why[400];
    snprintf(why, sizeof why, "%s", sh->why);
    pthread_mutex_unlock(&sh->mu);
    buf_adds(out, "\"why\":");
    jsonw_string(out, why, strlen(why), JSONW_REPLACE, NULL);
    buf_adds(out, ",\"address\":");
    jsonw_string(out, sh->t.shown, strlen(sh->t.shown), JSONW_REPLACE, NULL);
    buf_adds(out, "}");
}

void shared_metrics(struct shared *sh, struct buf *out)
{
    if (!sh)
        return;
    pthread_mutex_lock(&sh->mu);
    int up = sh->state == LINK_UP;
    int nup = sh->nup, n = sh->nlinks;
    pthread_mutex_unlock(&sh->mu);
    buf_printf(out,
               "# HELP cliqhost_redis_up 1 when every connection to the shared Redis is up.\n"
               "# TYPE cliqhost_redis_up gauge\ncliqhost_redis_up %d\n"
               "# HELP cliqhost_redis_connections Connections to Redis, and how many are up.\n"
               "# TYPE cliqhost_redis_connections gauge\n"
               "cliqhost_redis_connections{state=\"up\"} %d\n"
               "cliqhost_redis_connections{state=\"down\"} %d\n"
               "# HELP cliqhost_redis_down_total Times the link to Redis was lost.\n"
               "# TYPE cliqhost_redis_down_total counter\ncliqhost_redis_down_total %lld\n"
               "# HELP cliqhost_redis_fallbacks_total Checks decided by this host's memory "
               "alone because Redis did not answer.\n"
               "# TYPE cliqhost_redis_fallbacks_total counter\n"
               "cliqhost_redis_fallbacks_total{check=\"replay\"} %lld\n"
               "cliqhost_redis_fallbacks_total{check=\"pacing\"} %lld\n",
               up, nup, n - nup, atomic_load(&sh->downs), atomic_load(&sh->fallbacks[0]),
               atomic_load(&sh->fallbacks[1]));
}
