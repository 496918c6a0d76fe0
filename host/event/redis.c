/* redis: Redis connections, on a worker's loop and blocking (see redis.h). */
#include "event/redis.h"

#include "core/mem.h"
#include "event/sched.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* Reconnection: the first try after this long, then at most every second. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   1000

/* ---- the URL ------------------------------------------------------------ */

/* Copies s[0..n) into out (cap bytes) with %XX decoded. Returns 0 or -1. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            char hex[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v == 0 || hex[0] == '-' || hex[0] == '+' || hex[0] == ' ')
                return -1; /* %00 would end the string early */
            ch = (char)v;
            i += 2;
        }
        if (k + 1 >= cap)
            return -1;
        out[k++] = ch;
    }
    out[k] = '\0';
    return 0;
}

/* Reads a db number 0..1000000 from s. Returns 0 or -1. */
static int parse_db(const char *s, int *db)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > 1000000)
        return -1;
    *db = (int)v;
    return 0;
}

/* Resolves `name` to a numeric address in t->host. Returns 0 or -1. */
static int resolve(const char *name, struct redis_target *t, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "redis host '%s' does not resolve: %s", name, gai_strerror(rc));
        return -1;
    }
    const void *addr = ai->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, addr, t->host, sizeof t->host);
    freeaddrinfo(ai);
    return 0;
}

/* Copies url into out with its password masked (the part between the
 * user's ':' and the last '@', and a password= parameter's value), for
 * messages about a URL the host refuses. */
static void mask_url(const char *url, char *out, size_t n)
{
    const char *sch = strstr(url, "://");
    const char *at = strrchr(url, '@');
    if (sch && at && at > sch) {
        const char *user = sch + 3;
        const char *colon = memchr(user, ':', (size_t)(at - user));
        size_t keep = (size_t)((colon ? colon + 1 : user) - url);
        snprintf(out, n, "%.*s***%s", (int)keep, url, at);
    } else {
        snprintf(out, n, "%s", url);
    }
    /* Every parameter's value but db's: a misspelt "pasword=" too. */
    char *q = strchr(out, '?');
    if (!q)
        return;
    char tail[1100];
    size_t k = 0;
    const char *x = q + 1;
    while (*x && k + 8 < sizeof tail) {
        size_t name = strcspn(x, "=&");
        size_t len = strcspn(x, "&");
        int keep = x[name] != '=' || (name == 2 && strncmp(x, "db", 2) == 0);
        int w = snprintf(tail + k, sizeof tail - k, "%s%.*s%s", k ? "&" : "",
                         (int)(keep ? len : name), x, keep ? "" : "=***");
        k += w > 0 && (size_t)w < sizeof tail - k ? (size_t)w : 0;
        x += len + (x[len] == '&');
    }
    tail[k] = '\0';
    snprintf(q + 1, n - (size_t)(q + 1 - out), "%s", tail);
}

static int parse_unix(const char *url, struct redis_target *t, char *err, size_t errlen)
{
    char masked[1100];
    mask_url(url, masked, sizeof masked);
    const char *p = url + 5;
    if (strncmp(p, "//", 2) == 0)
        p += 2;
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (plen == 0 || p[0] != '/' || plen >= sizeof t->path) {
        snprintf(err, errlen,
                 "redis unix socket: '%s' needs an absolute path (unix:/run/redis.sock)", masked);
        return -1;
    }
    memcpy(t->path, p, plen);
    t->path[plen] = '\0';
    while (q && *q) {
        q++;
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        char part[400];
        if (n >= sizeof part) {
            snprintf(err, errlen, "redis URL '%s': a parameter is too long", masked);
            return -1;
        }
        memcpy(part, q, n);
        part[n] = '\0';
        if (strncmp(part, "db=", 3) == 0) {
            if (parse_db(part + 3, &t->db) < 0) {
                snprintf(err, errlen, "redis URL: db must be a number (got '%s')", part + 3);
                return -1;
            }
        } else if (strncmp(part, "password=", 9) == 0) {
            if (unescape(part + 9, strlen(part + 9), t->password, sizeof t->password) < 0) {
                snprintf(err, errlen, "redis URL: the password is malformed or too long");
                return -1;
            }
        } else {
            snprintf(err, errlen, "redis URL '%s': unknown parameter '%.*s' (db=, password=)",
                     masked, (int)strcspn(part, "="), part);
            return -1;
        }
        q = amp;
    }
    snprintf(t->shown, sizeof t->shown, "unix:%s?db=%d%s", t->path, t->db,
             t->password[0] ? "&password=***" : "");
    return 0;
}

int redis_parse_url(const char *url, struct redis_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (strncmp(url, "unix:", 5) == 0)
        return parse_unix(url, t, err, errlen);
    char masked[1100];
    mask_url(url, masked, sizeof masked);
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "'%s' is not a Redis URL (redis://host:port/db or unix:/path)",
                 masked);
        return -1;
    }
    const char *p = url + 8;
    /* The host part has no '@', a password may have anything: the last
     * '@' ends the password. */
    const char *at = strrchr(p, '@');
    const char *slash = strchr(at ? at : p, '/');
    const char *end = slash ? slash : p + strlen(p);
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon ? colon : at;
        if (unescape(p, (size_t)(user_end - p), t->user, sizeof t->user) < 0 ||
            (colon &&
             unescape(colon + 1, (size_t)(at - colon - 1), t->password, sizeof t->password) < 0)) {
            snprintf(err, errlen, "redis URL: the user or password is malformed or too long");
            return -1;
        }
        if (!colon) { /* redis://password@host, as some clients take it */
            memcpy(t->password, t->user,
                   sizeof t->password < sizeof t->user ? sizeof t->password : sizeof t->user);
            t->user[0] = '\0';
        }
        p = at + 1;
    }
    char name[256];
    const char *port = NULL;
    size_t nlen;
    if (*p == '[') { /* [v6]:port */
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close) {
            snprintf(err, errlen, "redis URL '%s': unclosed '[' in the host", masked);
            return -1;
        }
        nlen = (size_t)(close - p - 1);
        if (nlen >= sizeof name) {
            snprintf(err, errlen, "redis URL: the host is too long");
            return -1;
        }
        memcpy(name, p + 1, nlen);
        if (close + 1 < end && close[1] != ':') {
            snprintf(err, errlen, "redis URL '%s': after ']' comes ':port' or nothing", masked);
            return -1;
        }
        port = close + 1 < end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        nlen = (size_t)((colon ? colon : end) - p);
        if (nlen >= sizeof name) {
            snprintf(err, errlen, "redis URL: the host is too long");
            return -1;
        }
        memcpy(name, p, nlen);
        port = colon ? colon + 1 : NULL;
    }
    name[nlen] = '\0';
    if (!name[0]) {
        snprintf(err, errlen, "redis URL '%s' names no host (redis://127.0.0.1:6379/0)", masked);
        return -1;
    }
    t->port = 6379;
    if (port) {
        char digits[16];
        size_t n = (size_t)(end - port);
        char *e;
        long v = 0;
        if (n > 0 && n < sizeof digits) {
            memcpy(digits, port, n);
            digits[n] = '\0';
            v = strtol(digits, &e, 10);
        }
        if (n == 0 || n >= sizeof digits || *e || v < 1 || v > 65535) {
            snprintf(err, errlen, "redis URL '%s': the port must be 1 to 65535", masked);
            return -1;
        }
        t->port = (int)v;
    }
    if (slash && slash[1] && parse_db(slash + 1, &t->db) < 0) {
        snprintf(err, errlen, "redis URL '%s': the database after '/' must be a number", masked);
        return -1;
    }
    if (resolve(name, t, err, errlen) < 0)
        return -1;
    snprintf(t->shown, sizeof t->shown, "redis://%s%s%s%s%s:%d/%d", t->user,
             t->password[0] ? ":***" : "", t->user[0] || t->password[0] ? "@" : "",
             strchr(name, ':') ? "[" : "", name, t->port, t->db);
    if (strchr(name, ':')) { /* close the bracket around an IPv6 literal */
        char *c = strrchr(t->shown, ':');
        memmove(c + 1, c, strlen(c) + 1);
        *c = ']';
    }
    return 0;
}

/* ---- answers of a bounded shape ------------------------------------------ */

/* The most elements an array in an answer may have (a store.list page has
 * 2 + 2 x 1000). hiredis reserves room for every element an array header
 * announces before reading one: a server that is not Redis, or a broken
 * one, announcing 2^31 would have it reserve 16 GiB and the worker spend
 * seconds freeing it. Past the cap the answer is an error and the
 * connection is dropped. */
#define MAX_ARRAY 65536

static redisReplyObjectFunctions capped_fns;
static void *(*plain_array)(const redisReadTask *, int);
static pthread_once_t capped_once = PTHREAD_ONCE_INIT;

static void *capped_array(const redisReadTask *task, int elements)
{
    if (elements > MAX_ARRAY)
        return NULL; /* the reader fails: "Out of memory" */
    return plain_array(task, elements);
}

static void capped_init(void)
{
    redisReader *r = redisReaderCreate();
    capped_fns = *r->fn;
    plain_array = capped_fns.createArray;
    capped_fns.createArray = capped_array;
    redisReaderFree(r);
}

/* Makes the reader refuse arrays past MAX_ARRAY. */
static void cap_reader(redisReader *r)
{
    pthread_once(&capped_once, capped_init);
    r->fn = &capped_fns;
}

/* ---- the async connection ----------------------------------------------- */

/* Commands sent and not answered at most, per connection; more wait here,
 * in order. Redis runs a connection's pipelined commands back to back, so
 * a script's burst of costly ones (pages of large values) would keep it
 * from every other connection, the other workers' and hosts', for their
 * whole run: long enough for those to see no answer in redis_timeout_ms. */
#define IN_FLIGHT 8

struct redis_req {
    struct redis_conn *c;
    redis_reply_cb cb; /* NULL: cancelled */
    void *ud;
    int setup; /* one of the connection's setup commands */
    /* Waiting its turn (see IN_FLIGHT): the command, formatted. */
    char *cmd;
    size_t cmdlen;
    struct redis_req *next;
};

struct redis_conn {
    struct sched *sched;
    struct redis_target t;
    long timeout_ms;
    char ***setup;
    int *setup_argc;
    size_t nsetup;
    redis_state_cb on_state;
    void *ud;

    redisAsyncContext *ac; /* NULL while there is no connection */
    int fd;                /* watched; -1 when not */
    uint32_t events;
    size_t setup_left; /* setup replies still awaited */
    int up;
    int reported;    /* the state on_state was last told: -1 none yet */
    int failed_once; /* a connection failed since the start: fail fast while down */
    int freeing;
    int ac_dying; /* hiredis frees ac itself once the current callback returns */
    int dropped;  /* conn_drop freed ac: its disconnect is ours, already told */
    long retry_ms;
    struct sched_timer *retry;
    struct sched_timer *connect_timer;
    /* The watchdog: while the server owes answers to commands it has been
     * sent, it must send something every timeout_ms. owed_ms: since when
     * it has sent nothing while owing (0: it owes nothing sent). */
    size_t outstanding;
    struct redis_req *queue, *queue_tail; /* past IN_FLIGHT, not sent yet */
    long long owed_ms;
    struct sched_timer *watchdog;
    char why[1024];
};

static void conn_start(struct redis_conn *c);

static void set_state(struct redis_conn *c, int up, const char *why)
{
    if (!up) {
        c->failed_once = 1;
        snprintf(c->why, sizeof c->why, "%s", why);
    }
    c->up = up;
    if (c->reported == up)
        return;
    c->reported = up;
    if (c->on_state)
        c->on_state(up, why, c->ud);
}

static void on_retry(struct sched *s, void *ud)
{
    (void)s;
    struct redis_conn *c = ud;
    c->retry = NULL;
    conn_start(c);
}

/* Drops the current connection (if any): its waiting commands fail with
 * `why`; a new one is tried later. */
static void fail_queue(struct redis_conn *c, const char *why, int tell);

static void conn_drop(struct redis_conn *c, const char *why)
{
    set_state(c, 0, why);
    fail_queue(c, why, !c->freeing);
    if (c->ac && !c->ac_dying) {
        c->dropped = 1;        /* on_disconnect must not replace `why` */
        redisAsyncFree(c->ac); /* pending callbacks run with NULL; ev_cleanup clears c->ac */
    }
    if (!c->freeing && !c->retry) {
        c->retry = sched_timer_add(c->sched, c->retry_ms, on_retry, c);
        c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
    }
}

static void watch_update(struct redis_conn *c, uint32_t events);

static void on_io(struct sched *s, int fd, uint32_t events, void *ud)
{
    (void)s;
    (void)fd;
    struct redis_conn *c = ud;
    /* What the server sends restarts its time; a write starts it only if
     * it was not running (writes succeed into the kernel's buffer whether
     * the server answers or not). */
    if (c->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        redisAsyncHandleRead(c->ac);
        /* After the answers' callbacks, which may have run a handler for
         * a while (a page of values decoded): that time was ours. */
        c->owed_ms = sched_clock_ms();
    }
    if (c->ac && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        redisAsyncHandleWrite(c->ac);
        if (!c->owed_ms)
            c->owed_ms = sched_clock_ms();
    }
    if (c->outstanding == 0)
        c->owed_ms = 0;
}

static void watch_update(struct redis_conn *c, uint32_t events)
{
    if (!c->ac)
        return;
    int fd = c->ac->c.fd;
    if (events == c->events && fd == c->fd)
        return;
    if (c->fd < 0)
        sched_watch(c->sched, fd, events, on_io, c);
    else
        sched_modify(c->sched, fd, events, on_io, c);
    c->fd = fd;
    c->events = events;
}

static void ev_add_read(void *p)
{
    struct redis_conn *c = p;
    watch_update(c, c->events | EPOLLIN);
}
static void ev_del_read(void *p)
{
    struct redis_conn *c = p;
    watch_update(c, c->events & ~(uint32_t)EPOLLIN);
}
static void ev_add_write(void *p)
{
    struct redis_conn *c = p;
    watch_update(c, c->events | EPOLLOUT);
}
static void ev_del_write(void *p)
{
    struct redis_conn *c = p;
    watch_update(c, c->events & ~(uint32_t)EPOLLOUT);
}
/* hiredis is freeing the context (an error, or redisAsyncFree): the fd
 * closes after this. */
static void ev_cleanup(void *p)
{
    struct redis_conn *c = p;
    if (c->fd >= 0)
        sched_unwatch(c->sched, c->fd);
    c->fd = -1;
    c->events = 0;
    c->ac = NULL;
    c->ac_dying = 0;
    c->outstanding = 0;
    c->owed_ms = 0;
    sched_timer_cancel(c->sched, c->connect_timer);
    c->connect_timer = NULL;
    sched_timer_cancel(c->sched, c->watchdog);
    c->watchdog = NULL;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->data;
    if (status != REDIS_OK) {
        char why[1024];
        snprintf(why, sizeof why, "cannot connect to %s: %s", c->t.shown,
                 ac->errstr ? ac->errstr : "error");
        /* hiredis frees the context after this returns (ev_cleanup). */
        c->ac_dying = 1;
        conn_drop(c, why);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->data;
    /* A connection this host dropped (a refused setup, no answer in time)
     * keeps the reason it was dropped for: hiredis tells its end here too,
     * after the commands still waiting have failed with that reason. */
    if (c->freeing || c->dropped)
        return;
    if (status != REDIS_OK || c->up || c->setup_left) {
        char why[1024];
        snprintf(why, sizeof why, "connection to %s lost: %s", c->t.shown,
                 ac->errstr && ac->errstr[0] ? ac->errstr : "closed by the server");
        conn_drop(c, why);
    }
}

/* Fires timeout_ms after the last progress while commands are
 * outstanding. A connection that read and wrote nothing for that long is
 * dropped (every command on it fails); one still receiving a long answer,
 * or answering a queue of commands one after the other, is not. */
static void on_watchdog(struct sched *s, void *ud)
{
    struct redis_conn *c = ud;
    c->watchdog = NULL;
    if (!c->ac || c->outstanding == 0)
        return;
    long long now = sched_clock_ms();
    if (!c->owed_ms || now - c->owed_ms < c->timeout_ms) {
        /* Nothing sent yet (the loop has not turned since: connect_timer
         * bounds a connection that is not made), or still in time. */
        c->watchdog = sched_timer_add(
            s, c->owed_ms ? c->owed_ms + c->timeout_ms - now : c->timeout_ms, on_watchdog, c);
        return;
    }
    /* The loop may have been busy (a handler's long computation) while the
     * answer waited in the socket: that is no fault of the server's. */
    struct pollfd p = {.fd = c->ac->c.fd, .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
        c->owed_ms = now;
        c->watchdog = sched_timer_add(s, c->timeout_ms, on_watchdog, c);
        redisAsyncHandleRead(c->ac);
        return;
    }
    char why[1024];
    snprintf(why, sizeof why, "no answer from %s in %ld ms", c->t.shown, c->timeout_ms);
    conn_drop(c, why);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends what waits its turn while there is room in flight. */
static void pump(struct redis_conn *c)
{
    while (c->queue && c->ac && !c->ac_dying && c->outstanding < IN_FLIGHT) {
        struct redis_req *r = c->queue;
        c->queue = r->next;
        if (!c->queue)
            c->queue_tail = NULL;
        char *cmd = r->cmd;
        r->cmd = NULL;
        if (!r->cb) { /* cancelled while it waited */
            free(r);
        } else if (redisAsyncFormattedCommand(c->ac, on_reply, r, cmd, r->cmdlen) == REDIS_OK) {
            c->outstanding++;
        } else {
            redis_reply_cb cb = r->cb;
            void *ud = r->ud;
            free(r);
            cb(NULL, "redis is unreachable: the connection is closing", ud);
        }
        redisFreeCommand(cmd);
    }
}

/* Fails (tell = 1) or drops every command still waiting its turn. */
static void fail_queue(struct redis_conn *c, const char *why, int tell)
{
    struct redis_req *r = c->queue;
    c->queue = c->queue_tail = NULL;
    while (r) {
        struct redis_req *next = r->next;
        redis_reply_cb cb = r->cb;
        void *ud = r->ud;
        redisFreeCommand(r->cmd);
        free(r);
        if (cb && tell) {
            char msg[1100];
            snprintf(msg, sizeof msg, "redis is unreachable: %.1000s", why);
            cb(NULL, msg, ud);
        }
        r = next;
    }
}

/* hiredis' callback for every command: reply NULL when the connection went
 * before the answer came. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct redis_req *r = privdata;
    struct redis_conn *c = r->c;
    if (c->outstanding)
        c->outstanding--;
    if (reply && c->queue && !c->freeing)
        pump(c); /* a lost connection fails the queue instead (conn_drop) */
    redisReply *rep = reply;
    if (r->setup && !c->freeing) {
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            char why[1024];
            snprintf(why, sizeof why, "%s refused the setup: %.300s", c->t.shown,
                     rep         ? rep->str
                     : c->why[0] ? c->why
                                 : "connection lost");
            free(r);
            if (rep)
                conn_drop(c, why);
            return;
        }
        if (--c->setup_left == 0) {
            c->retry_ms = RETRY_FIRST_MS;
            sched_timer_cancel(c->sched, c->connect_timer);
            c->connect_timer = NULL;
            set_state(c, 1, "connected");
        }
        free(r);
        return;
    }
    if (r->cb && !c->freeing) {
        redis_reply_cb cb = r->cb;
        r->cb = NULL;
        if (rep)
            cb(rep, NULL, r->ud);
        else if (c->up) {
            /* The server went while the connection was up: c->why is
             * still what ended an earlier outage. */
            char why[1024];
            snprintf(why, sizeof why, "redis is unreachable: connection to %s lost: %.300s",
                     c->t.shown, ac->errstr[0] ? ac->errstr : "closed by the server");
            cb(NULL, why, r->ud);
        } else {
            char why[1024];
            snprintf(why, sizeof why, "redis is unreachable: %.300s",
                     c->why[0] ? c->why : "connection lost");
            cb(NULL, why, r->ud);
        }
    }
    free(r);
}

static void on_connect_timeout(struct sched *s, void *ud)
{
    (void)s;
    struct redis_conn *c = ud;
    c->connect_timer = NULL;
    char why[1024];
    /* The words of a command's timeout: to the user it is the same. */
    snprintf(why, sizeof why, "no answer from %s in %ld ms", c->t.shown, c->timeout_ms);
    conn_drop(c, why);
}

/* The setup's time runs from the loop's next turn, not from now: a worker
 * makes its connection before its loop first runs (the host makes every
 * worker before it starts any), and the answer cannot be read until then. */
static void on_connect_turn(struct sched *s, void *ud)
{
    struct redis_conn *c = ud;
    c->connect_timer = sched_timer_add(s, c->timeout_ms, on_connect_timeout, c);
}

static struct redis_req *send_argv(struct redis_conn *c, int argc, const char **argv,
                                   const size_t *lens, int setup)
{
    struct redis_req *r = xcalloc(1, sizeof *r);
    r->c = c;
    r->setup = setup;
    if (redisAsyncCommandArgv(c->ac, on_reply, r, argc, argv, lens) != REDIS_OK) {
        free(r);
        return NULL;
    }
    c->outstanding++;
    if (!c->watchdog)
        c->watchdog = sched_timer_add(c->sched, c->timeout_ms, on_watchdog, c);
    return r;
}

static void conn_start(struct redis_conn *c)
{
    redisAsyncContext *ac =
        c->t.path[0] ? redisAsyncConnectUnix(c->t.path) : redisAsyncConnect(c->t.host, c->t.port);
    if (!ac) {
        conn_drop(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[1024];
        snprintf(why, sizeof why, "cannot connect to %s: %s", c->t.shown, ac->errstr);
        redisAsyncFree(ac);
        conn_drop(c, why);
        return;
    }
    cap_reader(ac->c.reader);
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    c->ac = ac;
    c->fd = -1;
    c->events = 0;
    c->dropped = 0;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->setup_left = 0;
    /* AUTH, SELECT, the owner's setup, or a PING: something must answer
     * before the connection counts as up. */
    if (c->t.password[0]) {
        const char *argv[3] = {"AUTH", c->t.user[0] ? c->t.user : c->t.password, c->t.password};
        if (send_argv(c, c->t.user[0] ? 3 : 2, argv, NULL, 1))
            c->setup_left++;
    }
    if (c->t.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", c->t.db);
        const char *argv[2] = {"SELECT", db};
        if (send_argv(c, 2, argv, NULL, 1))
            c->setup_left++;
    }
    for (size_t i = 0; i < c->nsetup; i++)
        if (send_argv(c, c->setup_argc[i], (const char **)c->setup[i], NULL, 1))
            c->setup_left++;
    if (c->setup_left == 0) {
        const char *argv[1] = {"PING"};
        if (send_argv(c, 1, argv, NULL, 1))
            c->setup_left++;
    }
    if (c->ac)
        c->connect_timer = sched_timer_add(c->sched, 0, on_connect_turn, c);
}

struct redis_conn *redis_conn_new(struct sched *s, const struct redis_target *t, long timeout_ms,
                                  const char *const *const *setup, const int *setup_argc,
                                  size_t nsetup, redis_state_cb on_state, void *ud)
{
    struct redis_conn *c = xcalloc(1, sizeof *c);
    c->sched = s;
    c->t = *t;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    c->on_state = on_state;
    c->ud = ud;
    c->fd = -1;
    c->reported = -1;
    c->retry_ms = RETRY_FIRST_MS;
    c->nsetup = nsetup;
    if (nsetup) {
        c->setup = xcalloc(nsetup, sizeof *c->setup);
        c->setup_argc = xcalloc(nsetup, sizeof *c->setup_argc);
        for (size_t i = 0; i < nsetup; i++) {
            c->setup_argc[i] = setup_argc[i];
            c->setup[i] = xcalloc((size_t)setup_argc[i] + 1, sizeof(char *));
            for (int k = 0; k < setup_argc[i]; k++)
                c->setup[i][k] = xstrdup(setup[i][k]);
        }
    }
    conn_start(c);
    return c;
}

void redis_conn_free(struct redis_conn *c)
{
    if (!c)
        return;
    c->freeing = 1;
    fail_queue(c, "", 0);
    if (c->ac && !c->ac_dying)
        redisAsyncFree(c->ac);
    sched_timer_cancel(c->sched, c->retry);
    sched_timer_cancel(c->sched, c->connect_timer);
    sched_timer_cancel(c->sched, c->watchdog);
    for (size_t i = 0; i < c->nsetup; i++) {
        for (int k = 0; k < c->setup_argc[i]; k++)
            free(c->setup[i][k]);
        free(c->setup[i]);
    }
    free(c->setup);
    free(c->setup_argc);
    free(c);
}

int redis_conn_up(const struct redis_conn *c)
{
    return c && c->up;
}

void redis_conn_set_timeout(struct redis_conn *c, long timeout_ms)
{
    if (c && timeout_ms > 0)
        c->timeout_ms = timeout_ms;
}

struct redis_req *redis_command(struct redis_conn *c, int argc, const char **argv,
                                const size_t *argvlen, redis_reply_cb cb, void *ud, char *err,
                                size_t errlen)
{
    if (!c->ac || c->ac_dying || (!c->up && c->failed_once)) {
        snprintf(err, errlen, "redis is unreachable: %.300s",
                 c->why[0] ? c->why : "not connected yet");
        return NULL;
    }
    if (c->outstanding >= IN_FLIGHT || c->queue) {
        struct redis_req *q = xcalloc(1, sizeof *q);
        int len = redisFormatCommandArgv(&q->cmd, argc, argv, argvlen);
        if (len < 0)
            abort(); /* out of memory: the host's policy (core/mem.h) */
        q->cmdlen = (size_t)len;
        q->c = c;
        q->cb = cb;
        q->ud = ud;
        if (c->queue_tail)
            c->queue_tail->next = q;
        else
            c->queue = q;
        c->queue_tail = q;
        return q;
    }
    struct redis_req *r = send_argv(c, argc, argv, argvlen, 0);
    if (!r) {
        snprintf(err, errlen, "redis is unreachable: %.300s",
                 c->ac && c->ac->errstr[0] ? c->ac->errstr : "the connection is closing");
        return NULL;
    }
    r->cb = cb;
    r->ud = ud;
    return r;
}

void redis_cancel(struct redis_req *r)
{
    if (r)
        r->cb = NULL; /* still outstanding: its answer is read and dropped */
}

/* ---- blocking ------------------------------------------------------------ */

struct redis_sync {
    struct redis_target t;
    long timeout_ms;
    redisContext *ctx;
    long long retry_at; /* monotonic ms: no new connection before */
    char why[1024];
};

struct redis_sync *redis_sync_new(const struct redis_target *t, long timeout_ms)
{
    struct redis_sync *s = xcalloc(1, sizeof *s);
    s->t = *t;
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    return s;
}

void redis_sync_free(struct redis_sync *s)
{
    if (!s)
        return;
    if (s->ctx)
        redisFree(s->ctx);
    free(s);
}

/* Waits until fd is ready for `events` or the deadline (monotonic ms)
 * passes. Returns 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - sched_clock_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Sends one command and reads its reply by `deadline`, whatever the server
 * does meanwhile (an answer trickled a byte at a time included: a socket
 * timeout alone restarts with each byte). Returns the reply, or NULL with
 * s->why filled. */
static redisReply *sync_run(struct redis_sync *s, int argc, const char **argv,
                            const size_t *argvlen, long long deadline)
{
    redisContext *c = s->ctx;
    if (redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK)
        goto io;
    int done = 0;
    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            goto io;
        if (!done && wait_fd(c->fd, POLLOUT, deadline) <= 0)
            goto late;
    }
    void *reply = NULL;
    for (;;) {
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
            goto io;
        if (reply)
            return reply;
        int w = wait_fd(c->fd, POLLIN, deadline);
        if (w == 0)
            goto late;
        if (w < 0 || redisBufferRead(c) != REDIS_OK)
            goto io;
    }
late:
    snprintf(s->why, sizeof s->why, "no answer from %s in %ld ms", s->t.shown, s->timeout_ms);
    return NULL;
io:
    snprintf(s->why, sizeof s->why, "%s: %s", s->t.shown,
             c->errstr[0] ? c->errstr : "connection lost");
    return NULL;
}

/* Runs a setup command on a fresh connection. Returns 0 or -1 (why set). */
static int sync_setup(struct redis_sync *s, int argc, const char **argv, long long deadline)
{
    redisReply *r = sync_run(s, argc, argv, NULL, deadline);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->why, sizeof s->why, "%s refused the setup: %.300s", s->t.shown, r->str);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static void sync_drop(struct redis_sync *s)
{
    if (s->ctx)
        redisFree(s->ctx);
    s->ctx = NULL;
    s->retry_at = sched_clock_ms() + RETRY_MAX_MS;
}

static int sync_connect(struct redis_sync *s, long long deadline)
{
    long long left = deadline - sched_clock_ms();
    if (left < 1)
        left = 1;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    s->ctx = s->t.path[0] ? redisConnectUnixWithTimeout(s->t.path, tv)
                          : redisConnectWithTimeout(s->t.host, s->t.port, tv);
    if (!s->ctx || s->ctx->err) {
        snprintf(s->why, sizeof s->why, "cannot connect to %s: %s", s->t.shown,
                 s->ctx ? s->ctx->errstr : "out of memory");
        goto fail;
    }
    cap_reader(s->ctx->reader);
    if (s->t.password[0]) {
        const char *argv[3] = {"AUTH", s->t.user[0] ? s->t.user : s->t.password, s->t.password};
        if (sync_setup(s, s->t.user[0] ? 3 : 2, argv, deadline) < 0)
            goto fail;
    }
    if (s->t.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->t.db);
        const char *argv[2] = {"SELECT", db};
        if (sync_setup(s, 2, argv, deadline) < 0)
            goto fail;
    }
    return 0;
fail:
    sync_drop(s);
    return -1;
}

struct redisReply *redis_sync_command(struct redis_sync *s, int argc, const char **argv,
                                      const size_t *argvlen, char *err, size_t errlen)
{
    long long deadline = sched_clock_ms() + s->timeout_ms;
    if (!s->ctx) {
        if (sched_clock_ms() < s->retry_at || sync_connect(s, deadline) < 0) {
            snprintf(err, errlen, "redis is unreachable: %.900s", s->why);
            return NULL;
        }
    }
    redisReply *r = sync_run(s, argc, argv, argvlen, deadline);
    if (!r) {
        snprintf(err, errlen, "redis is unreachable: %.900s", s->why);
        sync_drop(s); /* a half-read reply would be the next command's */
    }
    return r;
}
