/* server: HTTP surface and share-nothing workers (see server.h). */
#include "serve/server.h"

#include "cliq/callbody.h"
#include "cliq/hooksig.h"
#include "cliq/outbox.h"
#include "cliq/store.h"
#include "cliq/replay.h"
#include "cliq/request.h"
#include "cliq/respond.h"
#include "cliq/shared.h"
#include "cliq/verify.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/fetch.h"
#include "event/mailbox.h"
#include "event/redis.h"
#include "event/sched.h"
#include "script/luavm.h"
#include "serve/admin.h"
#include "serve/console_assets.h"
#include "serve/journal.h"
#include "serve/metrics.h"
#include "serve/schedules.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REQ_ID_MAX 40
/* Each worker's listening socket queues this many completed connections. */
#define LISTEN_BACKLOG 4096
/* Body bytes allocated when the headers announce them; a longer body grows
 * as it arrives, so an announced length alone costs at most this. */
#define BODY_PREALLOC (16 * 1024)
/* Freed calls a worker keeps for the next requests (call_new). None under
 * AddressSanitizer, which then still catches a call used after it is
 * freed. */
#if defined(__SANITIZE_ADDRESS__)
#define CALL_SPARES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CALL_SPARES 0
#endif
#endif
#ifndef CALL_SPARES
#define CALL_SPARES 64
#endif
/* The longest X-Cliqhost-Error value; less when the request's own headers
 * leave less room in the connection's buffer (debug_room). */
#define DEBUG_ERROR_MAX 2048

/* Why a handler was stopped or failed, and what ran: for the log line. */
struct outcome {
    const struct request_dispatch *d; /* NULL before dispatch */
    const char *error;                /* why, for an error status or a failed handler */
    int failed;                       /* a handler ran and failed */
    int key;                          /* which key verified, -1 if none */
    int late;                         /* the deadline passed; the result goes later */
};

/* One HTTP request, from its headers to its answer; with a handler that
 * waits, until the handler is done (which may be after the answer). */
struct call {
    char id[REQ_ID_MAX + 1];
    struct timespec t0;
    long long t0_ms; /* monotonic ms when the headers arrived */
    struct buf body;
    int responded;    /* a response is queued */
    int too_large;    /* the body passed the cap: its bytes are dropped */
    size_t reserved;  /* bytes of the pending-body budget this call holds */
    int close;        /* close the connection after the answer (body unread) */
    int admin;        /* a GET to an admin endpoint, answered when complete */
    size_t discarded; /* bytes dropped since */

    /* While a handler waits (see handle_callback). */
    struct worker *w;
    struct MHD_Connection *conn;             /* NULL once libmicrohttpd is done with it */
    struct luavm_task *task;                 /* the running handler, or NULL */
    struct shared_claim_op *claim;           /* waiting for Redis' replay check, or NULL */
    unsigned char digest[VERIFY_DIGEST_LEN]; /* what the signature covers */
    long long claim_age_ms;                  /* a shared repeat: how long ago it was claimed */
    struct request_dispatch d;
    struct outcome o;
    int suspended; /* the connection is suspended */
    int hangup_fd; /* watched for the client going away; -1: not */
    struct sched_timer *deadline;
    int late;              /* the sync reply went out before the handler finished */
    unsigned reply_status; /* the reply to queue when the connection resumes */
    char *reply_body;
    size_t reply_len;
    /* A development call (X-Cliqhost-Debug: 1, verified): the failed
     * handler's error for X-Cliqhost-Error, encoded; NULL: none. */
    size_t debug_room; /* a development call: its error may take this many bytes */
    char *debug_error;
    /* A POST to the callback: its path (callback_path as it was then; the
     * settings outlive every call), for the log lines after the answer and
     * the request metrics. NULL for any other request. */
    const char *callback;
    /* A POST to /hooks/<name>: its path (callback points here), and the
     * scheme's webhook id when it has one (for the log). */
    int hook;
    char hook_path[80];
    /* Its webhook id was taken (standard-webhooks), at this wall-clock ms
     * in this host's memory, and in Redis; 0: not taken. */
    long long hook_taken_ms;
    int hook_shared;
    /* A POST to /schedules/<name>/run: the run waits (task or its end). */
    int run_now;
    /* Its entry in the console's journal; 0: none. */
    unsigned long long jid;
    /* A request under /console that passed the guard. */
    int console;
    /* A handler run the console asked for (POST call or replay): its
     * answer is wrapped with the journal id (console_wrap), and with the
     * replayed entry as it was (replay_old, malloc'd JSON) for a replay. */
    int console_run;
    unsigned long long replay_of;
    char *replay_old;
    /* X-Cliq-Signature and X-Cliqhost-Debug (NULL: none), libmicrohttpd's
     * strings: valid until the request completes (on_completed). */
    const char *hdr_signature;
    const char *hdr_debug;
    struct call *prev, *next; /* the worker's calls with a running handler */
};

/* A console page's event stream (GET /console/api/events). */
struct sse {
    struct worker *w;
    struct MHD_Connection *conn;
    unsigned long long seq; /* the newest change sent */
    struct buf out;         /* bytes not yet sent */
    size_t off;
    int suspended;
    int hangup_fd; /* watched for the page going away, or -1 */
    int gone;      /* the page went away: the stream ends */
    struct sse *prev, *next;
};

/* One connection, from accept to close: the slow-client guard's view. */
struct conn_state {
    long long since; /* monotonic ms it started waiting for a whole request */
    int busy;        /* a request is complete and being handled or answered */
    int started;     /* a request line has arrived, and no answer was sent yet */
    int nul_in_path; /* the request line's path holds %00 */
    int cut;         /* shut down by the guard, or closed idle at shutdown */
    int fd;
    struct conn_state *prev, *next;
};

struct worker {
    int index;
    struct server *srv;
    /* The settings and keys this worker uses; swapped between requests
     * when SIGHUP brought new ones (see server_reconfigure). */
    const struct config *cfg;
    const struct verify_keyset *ks;
    unsigned long long conf_gen;
    const char *lualib_dir;
    pthread_t thread;
    int started;
    int listen_fd;
    struct MHD_Daemon *mhd;
    int mhd_fd;             /* libmicrohttpd's own epoll set */
    long long mhd_deadline; /* monotonic ms when MHD must run again; 0: none */
    struct sched *sched;
    struct luavm *vm;
    struct verifier *verifier;
    struct fetch *fetch;
    struct responder *responder;
    struct mailbox *mailbox;  /* answers from the outbox */
    struct call *running;     /* calls whose handler (or replay check) is still running */
    struct call *spare_calls; /* freed calls kept for reuse (call_new), CALL_SPARES at most */
    int nspare_calls;
    struct redis_conn *redis;        /* to the shared Redis (store = redis://...); NULL: none */
    struct schedules_runner *runner; /* runs schedules (the first worker drives them) */
    int mhd_kick;                    /* a connection was resumed: run MHD after this turn */
    uint64_t rng;
    struct metrics metrics;   /* written by this worker only */
    struct conn_state *conns; /* every open connection */
    struct sched_timer *sweep;
    struct sse *sses;    /* the console's event streams on this worker */
    atomic_int nsses;    /* how many (read by other threads' notify) */
    atomic_int sse_wake; /* a wake-up is in the mailbox */
    int sse_closing;     /* shutting down: streams end */
};

struct server {
    const struct config *cfg; /* as at start */
    const struct verify_keyset *ks;
    pthread_mutex_t conf_mu; /* guards the two below */
    const struct config *conf_cfg;
    const struct verify_keyset *conf_ks;
    atomic_ullong conf_gen; /* 0 until the first reconfigure */
    struct scripts_hub *hub;
    struct replay *replay; /* NULL: replay checks are off */
    /* Bytes of bodies being received and not yet verified, every worker's
     * (pending_body_bytes caps it; see reserve_body). */
    atomic_llong pending_bytes;
    time_t started_at;
    struct outbox *outbox;
    struct store *store;        /* scripts' store, shared by the workers */
    struct shared_pacer *pacer; /* the outbox's pacing on Redis; NULL: none */
    struct schedules *schedules;
    struct replay *hook_ids; /* webhook ids taken (standard-webhooks); NULL: none */
    struct journal *journal; /* the console's journal; NULL: journal_calls = 0 */
    char console_secret[65]; /* random at start: what the console's page carries */
    int nworkers;
    struct worker *workers;
    unsigned port;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)(ts.tv_sec - t0->tv_sec) * 1e3 + (double)(ts.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- request ids ------------------------------------------------------- */

static uint64_t next_random(struct worker *w)
{
    /* xorshift64*: ids only need to be unique, not secret. */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A proxy's X-Request-Id is kept when it is short and plain, so one id
 * follows the request through both logs. */
static int request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REQ_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

/* Sets the call's id: the proxy's `given` X-Request-Id (NULL: none), or a
 * new one. */
static void assign_id(struct worker *w, const char *given, struct call *c)
{
    if (given && request_id_ok(given)) {
        memcpy(c->id, given, strlen(given) + 1); /* request_id_ok: it fits */
        return;
    }
    /* "%016llx", without printf: this runs for every request. */
    static const char hex[] = "0123456789abcdef";
    uint64_t x = next_random(w);
    for (int i = 15; i >= 0; i--, x >>= 4)
        c->id[i] = hex[x & 15];
    c->id[16] = '\0';
}

/* ---- answering --------------------------------------------------------- */

/* Writes the request's one log line. A run the console asked for says so,
 * and is counted apart from Cliq's calls. */
static void log_request(struct worker *w, struct call *c, const char *method, const char *url,
                        int status, const struct outcome *o)
{
    double ms = ms_since(&c->t0);
    if (c->console_run)
        metrics_add(&w->metrics.console_calls[c->replay_of ? CONSOLE_REPLAY : CONSOLE_CALL], 1);
    else if (c->callback)
        metrics_request(&w->metrics, o ? o->d : NULL, status, ms);
    enum log_level level = status >= 400 ? LOG_WARN : LOG_INFO;
    if ((!strcmp(url, "/healthz") || !strcmp(url, "/metrics") || !strcmp(url, "/status")) &&
        status == 200)
        level = LOG_DEBUG;
    /* Built in place in the thread's line, in one pass: no printf, no
     * allocation. */
    struct buf *b = log_begin(level, c->id);
    if (!b)
        return;
    log_kv(b, "method", method, strlen(method));
    log_kv(b, "path", url, strlen(url));
    if (c->console_run)
        buf_adds(b, " from=console");
    if (o && o->d) {
        log_kv(b, "type", o->d->type, strlen(o->d->type));
        if (o->d->name[0])
            log_kv(b, "name", o->d->name, strlen(o->d->name));
        log_kv(b, "handler", o->d->key, strlen(o->d->key));
    }
    buf_adds(b, " status=");
    buf_addu(b, (unsigned)status, 1);
    /* ms=%.3f: microseconds, rounded, as ms with three decimals. */
    unsigned long long us = (unsigned long long)(ms * 1000.0 + 0.5);
    buf_adds(b, " ms=");
    buf_addu(b, us / 1000, 1);
    buf_addc(b, '.');
    buf_addu(b, us % 1000, 3);
    if (o && o->key >= 0 && verify_keyset_count(w->ks) > 1) {
        buf_adds(b, " key=");
        buf_addu(b, (unsigned)(o->key + 1), 1);
    }
    if (o && o->late)
        buf_adds(b, " late=1");
    if (o && o->failed)
        buf_adds(b, " failed=1");
    if (o && o->error)
        log_kv(b, "error", o->error, strlen(o->error));
    log_end(b);
}

/* What one pass over a request's headers gathers (read_headers): the
 * body's framing, and the first value of each header the host reads. The
 * strings are libmicrohttpd's, valid until the request completes. */
struct headers {
    const char *length; /* the first Content-Length */
    int lengths_differ;
    int chunked;
    const char *request_id; /* X-Request-Id */
    const char *signature;  /* X-Cliq-Signature */
    const char *debug;      /* X-Cliqhost-Debug */
};

/* Whether key is the header name `name` (lowercase or not) of length n. */
static int header_is(const char *key, size_t klen, const char *name, size_t n)
{
    return klen == n && !strcasecmp(key, name);
}

static enum MHD_Result read_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct headers *h = cls;
    size_t kl = strlen(key);
    if (header_is(key, kl, MHD_HTTP_HEADER_CONTENT_LENGTH, 14)) {
        if (!h->length)
            h->length = value ? value : "";
        else if (strcmp(h->length, value ? value : ""))
            h->lengths_differ = 1;
    } else if (header_is(key, kl, MHD_HTTP_HEADER_TRANSFER_ENCODING, 17)) {
        h->chunked = 1;
    } else if (!h->request_id && header_is(key, kl, "X-Request-Id", 12)) {
        h->request_id = value;
    } else if (!h->signature && header_is(key, kl, "X-Cliq-Signature", 16)) {
        h->signature = value;
    } else if (!h->debug && header_is(key, kl, "X-Cliqhost-Debug", 16)) {
        h->debug = value;
    }
    return MHD_YES;
}

/* Reads the request's headers once, for what the call needs of them
 * (MHD_lookup_connection_value would walk them once per name). */
static void read_headers(struct MHD_Connection *conn, struct headers *h)
{
    memset(h, 0, sizeof *h);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, read_header, h);
}

/* Whether the request's headers say its body's length two ways: two
 * Content-Length headers that differ, or one with Transfer-Encoding. */
static int framing_conflict(const struct headers *h)
{
    return h->lengths_differ || (h->length && h->chunked);
}

static struct conn_state *conn_state_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The request on conn is complete: the slow-client clock stops. */
static void conn_busy(struct MHD_Connection *conn)
{
    struct conn_state *cs = conn_state_of(conn);
    if (cs)
        cs->busy = 1;
}

/* Queues a reply. Takes ownership of body (malloc'd). */
static char *console_wrap(struct call *c, unsigned status, char *body, size_t *len);

static void respond(struct MHD_Connection *conn, struct call *c, unsigned status, char *body,
                    size_t len, const char *allow)
{
    if (c->jid && c->w)
        journal_reply(c->w->srv->journal, c->jid, (int)status, body, len, ms_since(&c->t0),
                      c->late);
    if (c->console_run)
        body = console_wrap(c, status, body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    /* JSON is never read as anything else (a page, a script, a style),
     * whatever text from a request it echoes. */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (c->console) /* the journal holds what users sent: kept by no cache */
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Request-Id", c->id);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    /* Tells `cliqhost invoke` (and anyone curious) that this was the
     * interim reply and the handler's result goes to response_url. */
    if (c->late)
        MHD_add_response_header(r, "X-Cliqhost-Late", "response_url");
    if (c->debug_error && status == 200)
        MHD_add_response_header(r, "X-Cliqhost-Error", c->debug_error);
    if (status == MHD_HTTP_CONTENT_TOO_LARGE || c->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    /* Stopping: the client's next request should go to another host. */
    if (c->w && sched_stopping(c->w->sched))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) /* busy or stopping: try again soon */
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (MHD_queue_response(conn, status, r) == MHD_YES)
        c->responded = 1;
    else
        log_msg(LOG_ERROR, c->id, "could not queue the %u reply", status);
    conn_busy(conn);
    MHD_destroy_response(r);
}

static void respond_error(struct worker *w, struct MHD_Connection *conn, struct call *c,
                          const char *method, const char *url, unsigned status, const char *msg,
                          const char *allow, struct outcome *o)
{
    size_t len;
    char *body = jsonw_error_body(msg, c->id, &len);
    respond(conn, c, status, body, len, allow);
    struct outcome none = {NULL, NULL, 0, -1, 0};
    if (!o)
        o = &none;
    o->error = msg;
    log_request(w, c, method, url, (int)status, o);
}

/* 503: the bodies not yet verified fill their budget. The body was not
 * read, so the connection closes after the answer. */
static void respond_busy(struct worker *w, struct MHD_Connection *conn, struct call *c,
                         const char *method, const char *url)
{
    char msg[200];
    snprintf(msg, sizeof msg,
             "busy: request bodies not yet verified fill pending_body_bytes (%ld); try again",
             w->cfg->pending_body_bytes);
    c->close = 1;
    respond_error(w, conn, c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, msg, NULL, NULL);
}

/* ---- development calls ------------------------------------------------- */

/* Whether the call asked for a failed handler's error (X-Cliqhost-Debug: 1,
 * as `cliqhost invoke` sends) and may have it: its signature verified, or
 * checks are off (--no-verify, loopback only) and the client is on this
 * machine. Cliq never sends the header, so its calls are answered as ever. */
static int debug_allowed(struct MHD_Connection *conn, const char *v, enum verify_result vr)
{
    if (!v || strcmp(v, "1") != 0)
        return 0;
    return vr == VERIFY_OK || (vr == VERIFY_SKIPPED && admin_client_is_loopback(conn));
}

static enum MHD_Result add_value_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    size_t *n = cls;
    *n += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

/* How long an X-Cliqhost-Error value the answer may carry: the request's
 * line and headers still hold their part of the connection's buffer
 * (connection_memory_bytes) when the answer's headers are written there,
 * and libmicrohttpd drops an answer whose headers do not fit. Half of what
 * is left, less room for the answer's other headers; 0: none. */
static size_t debug_room(const struct worker *w, struct MHD_Connection *conn, const char *url)
{
    size_t used = strlen(url) + 32; /* method, version, spaces */
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_value_len, &used);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_value_len, &used);
    size_t cap = (size_t)w->cfg->connection_memory_bytes;
    size_t room = used < cap ? (cap - used) / 2 : 0;
    room = room > 512 + 16 ? room - 512 : 0;
    return room < DEBUG_ERROR_MAX ? room : DEBUG_ERROR_MAX;
}

/* The X-Cliqhost-Error value for a failed handler: its error and traceback
 * with secrets masked as the log masks them (log_redact), on one line of
 * printable ASCII (\n, \r, \t, \\ and \xNN escapes: no CR or LF can end the
 * header early), cut with "..." to `max` bytes. Caller frees. */
static char *debug_error_value(const struct luavm_result *res, size_t max)
{
    struct buf text;
    buf_init(&text, sizeof res->error + sizeof res->traceback + 2);
    buf_adds(&text, res->error);
    if (res->traceback[0]) {
        buf_addc(&text, '\n');
        buf_adds(&text, res->traceback);
    }
    if (!text.data) {
        buf_free(&text);
        return xstrdup("(no message)");
    }
    log_redact(text.data, text.len);
    static const char hex[] = "0123456789abcdef";
    struct buf b;
    buf_init(&b, max + 1);
    for (size_t i = 0; i < text.len; i++) {
        unsigned char ch = (unsigned char)text.data[i];
        char esc[5] = {(char)ch, 0};
        if (ch == '\n' || ch == '\r' || ch == '\t' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : ch == '\t' ? 't' : '\\';
        } else if (ch < 0x20 || ch >= 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
        }
        if (b.len + strlen(esc) + 3 > max) {
            buf_adds(&b, "...");
            break;
        }
        buf_adds(&b, esc);
    }
    buf_free(&text);
    size_t len;
    char *out = buf_take(&b, &len);
    return out ? out : xstrdup("");
}

/* Keeps a failed handler's error for a development call's answer. */
static void debug_keep(struct call *c, const struct luavm_result *res)
{
    if (!c->debug_room || !res->failed)
        return;
    free(c->debug_error);
    c->debug_error = debug_error_value(res, c->debug_room);
}

/* ---- handlers that wait ------------------------------------------------ */

/* Takes n more bytes of the budget for bodies not yet verified, shared by
 * every connection of every worker, as they arrive: an unauthenticated
 * client holds at most that much memory however many connections it
 * opens, and one that only announces a length holds none of it. Returns 0, or -1
 * (nothing taken) when the budget cannot hold them. */
static int reserve_body(struct worker *w, struct call *c, size_t n)
{
    long long cap = w->cfg->pending_body_bytes; /* as SIGHUP last set it */
    long long was = atomic_fetch_add(&w->srv->pending_bytes, (long long)n);
    if (was + (long long)n > cap) {
        atomic_fetch_sub(&w->srv->pending_bytes, (long long)n);
        return -1;
    }
    c->reserved += n;
    return 0;
}

/* Gives back what the call holds of that budget (once verified, or gone). */
static void release_body(struct call *c)
{
    if (c->reserved) {
        atomic_fetch_sub(&c->w->srv->pending_bytes, (long long)c->reserved);
        c->reserved = 0;
    }
}

/* A call for a new request: a spare one of the worker's (its body
 * buffer's allocation kept, emptied) or a new one; all else zero. Runs on
 * the worker's thread. */
static struct call *call_new(struct worker *w, size_t max_body)
{
    struct call *c = w->spare_calls;
    struct buf body;
    if (c) {
        w->spare_calls = c->next;
        w->nspare_calls--;
        body = c->body;
        body.len = 0;
        body.max = max_body;
        memset(c, 0, sizeof *c);
    } else {
        c = xcalloc(1, sizeof *c);
        buf_init(&body, max_body);
    }
    c->body = body;
    return c;
}

/* Frees a call, or keeps it among its worker's spares (on the worker's
 * thread, or once the workers have stopped) with a body buffer no larger
 * than a usual body. */
static void free_call(struct call *c)
{
    release_body(c);
    free(c->replay_old);
    free(c->reply_body);
    free(c->debug_error);
    struct worker *w = c->w;
    if (w && w->nspare_calls < CALL_SPARES && c->body.alloc <= BODY_PREALLOC + 1) {
        c->next = w->spare_calls;
        w->spare_calls = c;
        w->nspare_calls++;
        return;
    }
    buf_free(&c->body);
    free(c);
}

/* Frees the worker's spare calls (once its daemon is stopped). */
static void free_spare_calls(struct worker *w)
{
    while (w->spare_calls) {
        struct call *c = w->spare_calls;
        w->spare_calls = c->next;
        buf_free(&c->body);
        free(c);
    }
    w->nspare_calls = 0;
}

static void unlink_running(struct call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->w->running == c)
        c->w->running = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void stop_watching_hangup(struct call *c)
{
    if (c->hangup_fd >= 0) {
        sched_unwatch(c->w->sched, c->hangup_fd);
        c->hangup_fd = -1;
    }
}

/* Sets the reply a suspended connection sends when it resumes, and
 * resumes it. Takes ownership of body. */
static void resume_with(struct call *c, unsigned status, char *body, size_t len)
{
    free(c->reply_body);
    c->reply_status = status;
    c->reply_body = body;
    c->reply_len = len;
    stop_watching_hangup(c);
    if (c->suspended && c->conn) {
        c->suspended = 0;
        MHD_resume_connection(c->conn);
        c->w->mhd_kick = 1;
    }
}

/* Answers Cliq now with the interim reply; the handler's result will go to
 * response_url. */
static void hand_off(struct call *c, const char *why)
{
    struct worker *w = c->w;
    sched_timer_cancel(w->sched, c->deadline);
    c->deadline = NULL;
    c->late = 1;
    c->o.late = 1;
    size_t len;
    char *body;
    unsigned status = 200;
    if (c->hook) {
        /* The tool that called is told it was taken; the script's outcome
         * goes to the log. */
        struct buf b;
        buf_init(&b, 512);
        buf_printf(&b,
                   "{\"ok\":true,\"accepted\":true,\"request_id\":\"%s\",\"note\":\"the hook's "
                   "script is still running; its outcome goes to the host's log\"}",
                   c->id);
        body = buf_take(&b, &len);
        status = 202;
    } else {
        if (!c->console_run) /* the console's calls are not Cliq's */
            metrics_add(&w->metrics.handoffs, 1);
        body = request_text_reply(&c->d, w->cfg->interim_reply, 0, &len);
    }
    resume_with(c, status, body, len);
    c->o.d = &c->d;
    c->o.error = why;
    log_request(w, c, "POST", c->callback, (int)status, &c->o);
    c->o.error = NULL;
}

static void on_deadline(struct sched *s, void *ud)
{
    (void)s;
    struct call *c = ud;
    c->deadline = NULL;
    hand_off(c, NULL);
}

/* The client closed its connection while the handler runs: the result
 * will go to response_url, as after the deadline. */
static void on_hangup(struct sched *s, int fd, uint32_t events, void *ud)
{
    (void)s;
    (void)fd;
    (void)events;
    struct call *c = ud;
    stop_watching_hangup(c);
    if (!c->late)
        hand_off(c, "client closed the connection before the reply");
}

/* A late reply on its way: what its outcome is recorded against. */
struct late_note {
    struct worker *w;
    unsigned long long jid;
    int console; /* a run the console asked for: not counted among Cliq's */
};

/* Records an event of a call in the journal: {"kind": kind, "outcome":
 * outcome, "reason": reason (may be NULL)}. */
static void journal_note(struct worker *w, unsigned long long jid, const char *kind,
                         const char *outcome, const char *reason)
{
    if (!jid || !w->srv->journal)
        return;
    struct buf b;
    buf_init(&b, 2048);
    buf_adds(&b, "{\"kind\":");
    jsonw_string(&b, kind, strlen(kind), JSONW_REPLACE, NULL);
    buf_adds(&b, ",\"outcome\":");
    jsonw_string(&b, outcome, strlen(outcome), JSONW_REPLACE, NULL);
    if (reason) {
        buf_adds(&b, ",\"reason\":");
        jsonw_string(&b, reason, strlen(reason), JSONW_REPLACE, NULL);
    }
    buf_addc(&b, '}');
    if (b.data)
        journal_event(w->srv->journal, jid, b.data, b.len);
    buf_free(&b);
}

/* Sends a handler's result that came after the sync reply. */
static void on_late_outcome(enum responder_outcome o, const char *err, void *ud)
{
    struct late_note *n = ud;
    struct worker *w = n->w;
    journal_note(w, n->jid, "late_reply",
                 o == RESPONDER_DELIVERED ? "delivered"
                 : o == RESPONDER_REFUSED ? "refused"
                                          : "failed",
                 err);
    int console = n->console;
    free(n);
    if (!console)
        metrics_add(&w->metrics.late[o == RESPONDER_DELIVERED ? LATE_DELIVERED
                                     : o == RESPONDER_REFUSED ? LATE_REFUSED
                                                              : LATE_FAILED],
                    1);
}

/* Counts a handler that failed, by why. */
static void count_failure(struct worker *w, const struct luavm_result *res)
{
    if (!res->failed)
        return;
    enum metrics_fail k = res->limit == LIMIT_CPU      ? FAIL_CPU
                          : res->limit == LIMIT_MEMORY ? FAIL_MEMORY
                          : res->limit == LIMIT_TIME   ? FAIL_TIME
                                                       : FAIL_ERROR;
    metrics_add(&w->metrics.failures[k], 1);
}

/* Logs what became of a late result that is not posted: its outcome and why. */
static void log_late(struct call *c, enum log_level level, const char *outcome, const char *why)
{
    struct buf b;
    buf_init(&b, LOG_LINE_MAX);
    log_kv(&b, "reason", why, strlen(why));
    log_msg(level, c->id, "respond kind=late outcome=%s%s", outcome, b.data ? b.data : "");
    buf_free(&b);
}

static void deliver_late(struct call *c, struct luavm_result *res)
{
    struct worker *w = c->w;
    const char *why = NULL;
    if (res->status != 200)
        why = "the handler was not found";
    else if (res->responded)
        why = "the handler already used req:respond()";
    else if (!res->response_url && !c->console_run)
        why = "the request has no response_url";
    if (why) {
        log_late(c, res->responded ? LOG_INFO : LOG_WARN, res->responded ? "skipped" : "dropped",
                 why);
        journal_note(w, c->jid, "late_reply", res->responded ? "skipped" : "dropped", why);
        if (!c->console_run)
            metrics_add(&w->metrics.late[res->responded ? LATE_SKIPPED : LATE_DROPPED], 1);
        return;
    }
    long long expires = c->t0_ms + w->cfg->response_url_ttl_s * 1000;
    if (c->jid && w->srv->journal) {
        struct buf b;
        buf_init(&b, (size_t)w->cfg->journal_entry_bytes);
        buf_adds(&b, "{\"kind\":\"late_result\",\"body\":");
        jsonw_string(&b, res->body ? res->body : "", res->len, JSONW_REPLACE, NULL);
        buf_addc(&b, '}');
        if (b.data)
            journal_event(w->srv->journal, c->jid, b.data, b.len);
        buf_free(&b);
    }
    if (!res->response_url) {
        /* A console call: the console's answer was the interim reply, and
         * its page shows the result as it comes into the entry. */
        log_late(c, LOG_INFO, "kept", "a console call: the result is in its journal entry");
        return;
    }
    struct late_note *note = xcalloc(1, sizeof *note);
    note->w = w;
    note->jid = c->jid;
    note->console = c->console_run;
    struct responder_job *j = responder_post(
        w->responder, res->response_url, w->cfg->response_url_allow, w->cfg->nresponse_url_allow,
        res->body, res->len, expires, c->id, "late", on_late_outcome, note);
    res->body = NULL; /* the responder took it */
    /* A development call: its catcher is told why the handler failed too. */
    if (c->debug_error)
        responder_job_header(j, "X-Cliqhost-Error", c->debug_error);
}

/* A hook answered with a 5xx (its script failed, or asked for a retry, or
 * the host was too busy) or a 404 (no script yet): the webhook id it took
 * is given back, so the sender's retry runs instead of being called a
 * duplicate. */
static void hook_give_back(struct worker *w, struct call *c, int status)
{
    if (status < 500 && status != 404)
        return;
    if (c->hook_taken_ms)
        replay_forget(w->srv->hook_ids, c->hook_taken_ms, c->digest, sizeof c->digest);
    struct shared *sh = store_shared(w->srv->store);
    if (c->hook_shared && sh && redis_conn_up(w->redis))
        shared_forget(sh, w->redis, c->digest, sizeof c->digest);
    c->hook_taken_ms = 0;
    c->hook_shared = 0;
}

/* the runtime (vm.c) calls this when a handler that waited is done. */
static void on_task_done(struct luavm_task *t, struct luavm_result *res, void *ud)
{
    (void)t;
    struct call *c = ud;
    struct worker *w = c->w;
    c->task = NULL;
    unlink_running(c);
    sched_timer_cancel(w->sched, c->deadline);
    c->deadline = NULL;
    c->o.failed = res->failed;
    count_failure(w, res);
    debug_keep(c, res);
    journal_usage(w->srv->journal, c->jid, res->cpu_ms, res->peak_bytes);
    if (c->late && c->hook) {
        if (res->failed)
            log_msg(LOG_WARN, c->id, "hook %s: the script failed after the reply: %s", c->d.name,
                    res->error);
        else
            log_msg(LOG_INFO, c->id, "hook %s: the script finished after the reply (status %d)",
                    c->d.name, res->status);
    } else if (c->late) {
        if (res->failed)
            log_msg(LOG_WARN, c->id, "late result: the handler failed (%s)", res->error);
        deliver_late(c, res);
    } else if (c->hook) {
        c->o.error = res->failed || res->status >= 400 ? res->error : NULL;
        hook_give_back(w, c, res->status);
        resume_with(c, (unsigned)res->status, res->body, res->len);
        res->body = NULL;
        log_request(w, c, "POST", c->callback, res->status, &c->o);
    } else if (res->status != 200) {
        size_t len;
        char *body = jsonw_error_body(res->error, c->id, &len);
        c->o.error = res->error;
        resume_with(c, (unsigned)res->status, body, len);
        log_request(w, c, "POST", c->callback, res->status, &c->o);
    } else {
        c->o.error = res->failed ? res->error : NULL;
        resume_with(c, 200, res->body, res->len);
        res->body = NULL;
        log_request(w, c, "POST", c->callback, 200, &c->o);
    }
    c->o.error = NULL;
    if (!c->conn)
        free_call(c); /* libmicrohttpd was done with it already */
}

/* A verified call whose timestamp is out of the window, or whose signature
 * was accepted before: -1 with the 401's message. */
static int replay_refused(struct worker *w, const cJSON *json,
                          const unsigned char digest[VERIFY_DIGEST_LEN], int remember, char *err,
                          size_t errlen)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(json, "timestamp");
    long window = w->cfg->replay_window_s;
    if (!cJSON_IsNumber(ts)) {
        metrics_add(&w->metrics.refused[4], 1);
        snprintf(err, errlen,
                 "no timestamp in the body: replay protection needs the timestamp Cliq sends "
                 "(replay_window_s = 0 turns it off)");
        return -1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    double t = ts->valuedouble;
    long long tms = t > 9e15 ? 9000000000000000LL : t < -9e15 ? -9000000000000000LL : (long long)t;
    long long age;
    switch ((remember ? replay_check : replay_peek)(w->srv->replay, tms, now_ms, digest,
                                                    VERIFY_DIGEST_LEN, &age)) {
    case REPLAY_OK:
        return 0;
    case REPLAY_STALE:
        metrics_add(&w->metrics.refused[1], 1);
        snprintf(err, errlen,
                 "stale request: its timestamp is %lld s old, more than replay_window_s (%ld s)",
                 age / 1000, window);
        return -1;
    case REPLAY_FUTURE:
        metrics_add(&w->metrics.refused[2], 1);
        snprintf(err, errlen,
                 "request from the future: its timestamp is %lld s ahead of this host's clock, "
                 "more than replay_window_s (%ld s); check the clock",
                 -age / 1000, window);
        return -1;
    case REPLAY_REPEAT:
        metrics_add(&w->metrics.refused[3], 1);
        snprintf(err, errlen,
                 "replayed request: this signature was already accepted %lld.%03lld s ago",
                 age / 1000, age % 1000);
        return -1;
    }
    return 0;
}

/* Answers a call with an error: at once, or, for a call whose connection
 * is suspended (it waited for Redis), when it resumes. */
static void answer_error(struct worker *w, struct MHD_Connection *conn, struct call *c,
                         const char *method, const char *url, unsigned status, const char *msg,
                         struct outcome *o)
{
    if (!c->suspended) {
        respond_error(w, conn, c, method, url, status, msg, NULL, o);
        return;
    }
    size_t len;
    char *body = jsonw_error_body(msg, c->id, &len);
    resume_with(c, status, body, len);
    o->error = msg;
    log_request(w, c, method, url, (int)status, o);
    o->error = NULL;
}

/* Holds a call that waits (for its handler, or its replay claim): keeps
 * its connection and outcome, lists it among the worker's running calls,
 * and arms `at_deadline` for its deadline_ms. */
static void hold_call(struct worker *w, struct MHD_Connection *conn, struct call *c,
                      const struct outcome *o, sched_timer_cb at_deadline)
{
    c->conn = conn;
    c->o = *o;
    c->next = w->running;
    if (w->running)
        w->running->prev = c;
    w->running = c;
    /* The console too is answered at the deadline, as Cliq is: the late
     * result goes into the call's journal entry (deliver_late). */
    long long left = c->t0_ms + w->cfg->deadline_ms - sched_clock_ms();
    c->deadline = sched_timer_add(w->sched, left > 0 ? left : 0, at_deadline, c);
}

/* A call whose handler waits no longer needs its body's text: the handler
 * has its request object and the journal its own copy. The buffer goes back
 * now rather than when the call ends, so that thousands of waiting handlers
 * do not each hold a body nobody reads. */
static void drop_body(struct call *c)
{
    buf_free(&c->body);
}

/* From the runtime: an event of a task (a request, a post, a log line),
 * for the journal. */
static void on_task_note(void *ud, unsigned long long id, const char *json, size_t len)
{
    journal_event(ud, id, json, len);
}

/* Lets a call's task report its events to the journal. */
static void task_notes(struct worker *w, struct call *c, struct luavm_call *lc)
{
    if (!c->jid || !w->srv->journal)
        return;
    lc->note = on_task_note;
    lc->note_ud = w->srv->journal;
    lc->note_id = c->jid;
}

/* Starts the handler of a verified, decoded call that passed the replay
 * checks (json is in the thread's open arena, which the caller closes). A
 * suspended connection (the call waited for Redis) stays suspended while
 * the handler waits, and is resumed with the answer. */
static void run_handler(struct worker *w, struct MHD_Connection *conn, struct call *c,
                        const char *method, const char *url, cJSON *json, struct outcome *o)
{
    const char *body = c->body.data ? c->body.data : "";
    size_t len = c->body.len;
    if (luavm_tasks(w->vm) >= (size_t)w->cfg->max_handlers) {
        char msg[160];
        snprintf(msg, sizeof msg, "too many handlers are running (max_handlers %ld); try again",
                 w->cfg->max_handlers);
        answer_error(w, conn, c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, msg, o);
        return;
    }
    struct luavm_result res;
    struct luavm_call lc = {&c->d, json, body, len, c->id, c->t0_ms, NULL, NULL, NULL, NULL, 0};
    task_notes(w, c, &lc);
    struct luavm_task *task;
    int finished = luavm_start(w->vm, &lc, &res, &task, on_task_done, c);
    if (finished)
        journal_usage(w->srv->journal, c->jid, res.cpu_ms, res.peak_bytes);
    if (!finished) {
        /* The handler waits: hold the connection until it is done or the
         * deadline passes, whichever is first. */
        c->task = task;
        hold_call(w, conn, c, o, on_deadline);
        drop_body(c);
        c->o.d = &c->d;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && sched_watch(w->sched, ci->connect_fd, EPOLLRDHUP, on_hangup, c) == 0)
            c->hangup_fd = ci->connect_fd;
        if (!c->suspended) {
            MHD_suspend_connection(conn);
            c->suspended = 1;
        }
        return;
    }
    if (res.status != 200) {
        answer_error(w, conn, c, method, url, (unsigned)res.status, res.error, o);
        return;
    }
    count_failure(w, &res);
    debug_keep(c, &res);
    o->failed = res.failed;
    o->error = res.failed ? res.error : NULL;
    if (c->suspended) {
        resume_with(c, 200, res.body, res.len);
        res.body = NULL;
    } else {
        respond(conn, c, 200, res.body, res.len, NULL);
    }
    log_request(w, c, method, url, 200, o);
    o->error = NULL;
}

/* What the hosts' shared memory said of a call. */
enum shared_answer { SHARED_ANSWER_NONE, SHARED_ANSWER_CLAIMED, SHARED_ANSWER_REPEAT };

static void decode_and_run(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *method, const char *url, enum verify_result vr,
                           struct outcome *o, enum shared_answer shared);

static void hook_after_claim(struct worker *w, struct MHD_Connection *conn, struct call *c,
                             struct outcome *o, int shared_repeat);

/* The hosts' shared memory of calls answered (shared.h) answered: the call
 * goes on (a repeat another host accepted is refused there, after this
 * host's own checks, which say more when they refuse it too); without an
 * answer from Redis, this host's own memory decides. */
static void on_claimed(enum shared_claim r, long long age_ms, void *ud)
{
    struct call *c = ud;
    struct worker *w = c->w;
    c->claim = NULL;
    sched_timer_cancel(w->sched, c->deadline);
    c->deadline = NULL;
    unlink_running(c);
    c->claim_age_ms = age_ms;
    struct outcome o = c->o;
    if (c->hook) {
        hook_after_claim(w, c->conn, c, &o, r == SHARED_REPEAT);
        return;
    }
    decode_and_run(w, c->conn, c, "POST", c->callback, VERIFY_OK, &o,
                   r == SHARED_REPEAT    ? SHARED_ANSWER_REPEAT
                   : r == SHARED_CLAIMED ? SHARED_ANSWER_CLAIMED
                                         : SHARED_ANSWER_NONE);
}

/* The call's deadline came while Redis had not answered its replay claim
 * (a redis_timeout_ms above deadline_ms): this host's memory decides, and
 * the handler starts with its time already up, so Cliq gets the interim
 * reply now and the result goes to response_url. */
static void on_claim_deadline(struct sched *s, void *ud)
{
    (void)s;
    struct call *c = ud;
    c->deadline = NULL;
    shared_claim_cancel(c->claim);
    c->claim = NULL;
    shared_count_fallback(store_shared(c->w->srv->store), 0);
    on_claimed(SHARED_UNAVAILABLE, 0, c);
}

/* Verifies, decodes, dispatches and runs a complete callback body. */
static void handle_callback(struct worker *w, struct MHD_Connection *conn, struct call *c,
                            const char *method, const char *url)
{
    const char *body = c->body.data ? c->body.data : "";
    size_t len = c->body.len;
    struct outcome o = {NULL, NULL, 0, -1, 0};
    conn_busy(conn);

    const char *sig = c->hdr_signature;
    unsigned char digest[VERIFY_DIGEST_LEN];
    enum verify_result vr = verifier_check_digest(w->verifier, body, len, sig, &o.key, digest);
    release_body(c); /* verified (or refused): no longer the budget's concern */
    if (w->srv->journal) {
        c->jid = journal_begin(w->srv->journal, "call", c->id, body, len);
        journal_signature(w->srv->journal, c->jid,
                          vr == VERIFY_OK        ? "ok"
                          : vr == VERIFY_SKIPPED ? "skipped"
                                                 : verify_result_text(vr),
                          o.key);
    }
    c->debug_room = debug_allowed(conn, c->hdr_debug, vr) ? debug_room(w, conn, url) : 0;
    if (vr != VERIFY_OK && vr != VERIFY_SKIPPED) {
        metrics_add(&w->metrics.refused[0], 1);
        respond_error(w, conn, c, method, url, MHD_HTTP_UNAUTHORIZED, verify_result_text(vr), NULL,
                      &o);
        return;
    }

    /* With hosts on one Redis, the call is claimed there first (by its
     * digest, before it is even decoded), and the connection waits for
     * that answer; this host's own checks follow, when the body is
     * decoded, so it is decoded once, in the arena. */
    memcpy(c->digest, digest, sizeof c->digest);
    struct shared *sh = store_shared(w->srv->store);
    if (vr == VERIFY_OK && w->srv->replay && sh) {
        /* A call is acceptable for the window either side of its
         * timestamp, by each host's clock: the claim is kept for both
         * sides, and a minute more for clocks that differ. */
        long long keep = 2 * w->cfg->replay_window_s * 1000LL + 60000;
        if (redis_conn_up(w->redis) &&
            (c->claim =
                 shared_claim(sh, w->redis, digest, VERIFY_DIGEST_LEN, keep, on_claimed, c))) {
            hold_call(w, conn, c, &o, on_claim_deadline);
            MHD_suspend_connection(conn);
            c->suspended = 1;
            return;
        }
        if (!redis_conn_up(w->redis))
            shared_count_fallback(sh, 0); /* the link is down: this memory alone */
    }
    decode_and_run(w, conn, c, method, url, vr, &o, SHARED_ANSWER_NONE);
}

/* Decodes a verified call's body, checks it against this host's replay
 * memory and what the shared one said, and runs its handler. */
static void decode_and_run(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *method, const char *url, enum verify_result vr,
                           struct outcome *o, enum shared_answer shared)
{
    /* The parse tree lives in the thread's arena until the handler has its
     * request object. */
    cJSON *json = NULL;
    char err[512];
    arena_open();
    if (request_decode(c->body.data ? c->body.data : "", c->body.len, &json, &c->d, err,
                       sizeof err) < 0) {
        arena_close();
        answer_error(w, conn, c, method, url, MHD_HTTP_BAD_REQUEST, err, o);
        return;
    }
    o->d = &c->d;
    journal_dispatch(w->srv->journal, c->jid, c->d.type, c->d.name, c->d.wire);
    if (vr == VERIFY_OK && w->srv->replay) {
        /* A repeat the shared memory reported is not remembered here (a
         * copy raced to another worker must not refuse the one Redis let
         * through); this memory only says whether it was this host's. */
        int refused =
            replay_refused(w, json, c->digest, shared != SHARED_ANSWER_REPEAT, err, sizeof err) < 0;
        if (!refused && shared == SHARED_ANSWER_REPEAT) {
            metrics_add(&w->metrics.refused[3], 1);
            snprintf(err, sizeof err,
                     "replayed request: this signature was already accepted %lld.%03lld s ago "
                     "(by a host sharing this Redis)",
                     c->claim_age_ms / 1000, c->claim_age_ms % 1000);
            refused = 1;
        }
        if (refused) {
            arena_close();
            answer_error(w, conn, c, method, url, MHD_HTTP_UNAUTHORIZED, err, o);
            return;
        }
    }
    run_handler(w, conn, c, method, url, json, o);
    arena_close();
}

/* ---- other tools' webhooks: POST /hooks/<name> --------------------------- */

static const char *hook_header(void *ud, const char *name)
{
    return MHD_lookup_connection_value(ud, MHD_HEADER_KIND, name);
}

/* What MHD lists of a connection's headers or query, as pairs; the names
 * are lower-cased copies (freed with pairs_free), the values MHD's. */
struct pairs {
    struct luavm_pair *p;
    size_t n, cap;
    const char *secret_header; /* left out: it carries the hook's credential */
};

static enum MHD_Result add_pair(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct pairs *ps = cls;
    if (ps->n == ps->cap || !key || (ps->secret_header && !strcasecmp(key, ps->secret_header)))
        return MHD_YES;
    size_t n = strlen(key);
    char *k = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        k[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] - 'A' + 'a' : key[i]);
    k[n] = '\0';
    ps->p[ps->n].name = k;
    ps->p[ps->n].value = value ? value : "";
    ps->n++;
    return MHD_YES;
}

static void pairs_free(struct pairs *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free((char *)ps->p[i].name);
    free(ps->p);
}

/* The most headers and query parameters a hook's script is given. */
#define HOOK_MAX_PAIRS 200

/* Runs a verified hook's script: its body decoded when it is JSON, its
 * headers and query, and its reply (or, past deadline_ms, 202 now and the
 * outcome in the log). */
static void run_hook(struct worker *w, struct MHD_Connection *conn, struct call *c,
                     struct outcome *o)
{
    const char *body = c->body.data ? c->body.data : "";
    size_t len = c->body.len;
    const char *method = "POST", *url = c->hook_path;
    if (luavm_tasks(w->vm) >= (size_t)w->cfg->max_handlers) {
        char msg[160];
        snprintf(msg, sizeof msg, "too many handlers are running (max_handlers %ld); try again",
                 w->cfg->max_handlers);
        hook_give_back(w, c, MHD_HTTP_SERVICE_UNAVAILABLE);
        answer_error(w, conn, c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, msg, o);
        return;
    }
    arena_open();
    cJSON *json = NULL;
    size_t skip = strspn(body, " \t\r\n");
    if (skip < len && (body[skip] == '{' || body[skip] == '[')) {
        const char *end = NULL;
        json = cJSON_ParseWithLengthOpts(body, len, &end, 0);
        if (json && end && (size_t)(end - body) + strspn(end, " \t\r\n") < len) {
            json = NULL; /* trailing bytes: not JSON; the script gets the text */
        }
    }
    /* A bearer hook's token is the hook's secret: the script does not get
     * it (the other schemes' headers hold signatures, no secret). */
    const struct config_hook *h = config_hook(w->cfg, c->d.name);
    const char *secret_header = NULL;
    if (h && h->scheme == CONFIG_HOOK_BEARER)
        secret_header = h->header ? h->header : "Authorization";
    struct pairs hs = {xcalloc(HOOK_MAX_PAIRS, sizeof *hs.p), 0, HOOK_MAX_PAIRS, secret_header};
    struct pairs qs = {xcalloc(HOOK_MAX_PAIRS, sizeof *qs.p), 0, HOOK_MAX_PAIRS, NULL};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_pair, &hs);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_pair, &qs);
    struct luavm_hook hk = {"POST", hs.p, hs.n, qs.p, qs.n};
    struct luavm_call lc = {&c->d, json, body, len, c->id, c->t0_ms, &hk, NULL, NULL, NULL, 0};
    task_notes(w, c, &lc);
    struct luavm_result res;
    struct luavm_task *task;
    int finished = luavm_start(w->vm, &lc, &res, &task, on_task_done, c);
    if (finished)
        journal_usage(w->srv->journal, c->jid, res.cpu_ms, res.peak_bytes);
    arena_close();
    pairs_free(&hs);
    pairs_free(&qs);
    if (!finished) {
        c->task = task;
        hold_call(w, conn, c, o, on_deadline);
        drop_body(c);
        c->o.d = &c->d;
        if (!c->suspended) {
            MHD_suspend_connection(conn);
            c->suspended = 1;
        }
        return;
    }
    count_failure(w, &res);
    o->failed = res.failed;
    if (res.status == 404 || !res.body) {
        /* A missing script or receive: the tool that called (verified, yet
         * not this machine's operator) is told the script's path under the
         * scripts folder, not where that folder is. The runtime's message
         * names "<folder>/<script>" after "looked for ", or first. */
        char msg[sizeof res.error];
        const char *at = res.status == 404 ? strstr(res.error, c->d.script) : NULL;
        const char *look = strstr(res.error, "looked for ");
        const char *from = at && look && look < at ? look + strlen("looked for ") : res.error;
        if (at && from <= at)
            snprintf(msg, sizeof msg, "%.*s%s", (int)(from - res.error), res.error, at);
        else
            snprintf(msg, sizeof msg, "%s", res.error);
        hook_give_back(w, c, res.status);
        answer_error(w, conn, c, method, url, (unsigned)res.status, msg, o);
        free(res.body);
        return;
    }
    o->error = res.failed || res.status >= 400 ? res.error : NULL;
    hook_give_back(w, c, res.status);
    if (c->suspended) {
        resume_with(c, (unsigned)res.status, res.body, res.len);
        res.body = NULL;
    } else {
        respond(conn, c, (unsigned)res.status, res.body, res.len, NULL);
    }
    log_request(w, c, method, url, res.status, o);
    o->error = NULL;
}

/* A hook whose webhook id was checked (shared_repeat: another host, or
 * this one, took it already): a repeat is answered 200 without running
 * the script again, since a sender retries what did not get a 2xx. */
static void hook_after_claim(struct worker *w, struct MHD_Connection *conn, struct call *c,
                             struct outcome *o, int shared_repeat)
{
    long long age = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long wall = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int repeat = shared_repeat;
    if (w->srv->hook_ids && !repeat) {
        repeat =
            replay_seen(w->srv->hook_ids, wall, c->digest, sizeof c->digest, &age) == REPLAY_REPEAT;
        if (!repeat)
            c->hook_taken_ms = wall;
    }
    if (shared_repeat)
        c->hook_shared = 0; /* another's claim: not this call's to give back */
    if (repeat) {
        struct buf b;
        buf_init(&b, 256);
        buf_printf(&b, "{\"ok\":true,\"duplicate\":true,\"request_id\":\"%s\"}", c->id);
        size_t len;
        char *body = buf_take(&b, &len);
        o->error = "duplicate webhook id: already received; the script did not run again";
        if (c->suspended)
            resume_with(c, 200, body, len);
        else
            respond(conn, c, 200, body, len, NULL);
        log_request(w, c, "POST", c->hook_path, 200, o);
        o->error = NULL;
        return;
    }
    run_hook(w, conn, c, o);
}

/* Verifies a complete POST /hooks/<name> by the scheme its config gives,
 * drops a repeated webhook id, and runs the hook's script. */
static void handle_hook(struct worker *w, struct MHD_Connection *conn, struct call *c)
{
    const char *url = c->hook_path, *method = "POST";
    struct outcome o = {NULL, NULL, 0, -1, 0};
    conn_busy(conn);
    char err[400];
    if (request_map_task(request_type_hook, url + strlen("/hooks/"), &c->d, err, sizeof err) < 0) {
        release_body(c);
        char msg[500];
        snprintf(msg, sizeof msg, "no such hook: %s", err);
        respond_error(w, conn, c, method, url, MHD_HTTP_NOT_FOUND, msg, NULL, &o);
        return;
    }
    o.d = &c->d;
    const struct config_hook *h = config_hook(w->cfg, c->d.name);
    if (!h) {
        release_body(c);
        metrics_add(&w->metrics.refused[0], 1);
        char msg[500];
        snprintf(msg, sizeof msg,
                 "hook '%s' is refused: the config gives it no verification (hooks = { %s = { "
                 "scheme = ..., secret = ... } })",
                 c->d.name, c->d.name);
        respond_error(w, conn, c, method, url, MHD_HTTP_UNAUTHORIZED, msg, NULL, &o);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct hooksig_result hr;
    int rc = hooksig_check(h, hook_header, conn, c->body.data ? c->body.data : "", c->body.len,
                           (long long)ts.tv_sec, &hr);
    release_body(c);
    if (w->srv->journal) {
        c->jid = journal_begin(w->srv->journal, "hook", c->id, c->body.data, c->body.len);
        journal_signature(w->srv->journal, c->jid, rc < 0 ? hr.err : "ok", -1);
        journal_dispatch(w->srv->journal, c->jid, c->d.type, c->d.name, "receive");
    }
    if (rc < 0) {
        metrics_add(&w->metrics.refused[0], 1);
        respond_error(w, conn, c, method, url, MHD_HTTP_UNAUTHORIZED, hr.err, NULL, &o);
        return;
    }
    if (!hr.id[0]) {
        run_hook(w, conn, c, &o);
        return;
    }
    /* The scheme names each delivery (standard-webhooks' webhook-id): a
     * delivery is taken once, here and on every host sharing the Redis. */
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, "hook\0", 5) &&
             EVP_DigestUpdate(md, c->d.name, strlen(c->d.name) + 1) &&
             EVP_DigestUpdate(md, hr.id, strlen(hr.id)) && EVP_DigestFinal_ex(md, c->digest, &dlen);
    EVP_MD_CTX_free(md);
    if (!ok) {
        respond_error(w, conn, c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                      "cannot hash the webhook id (OpenSSL)", NULL, &o);
        return;
    }
    struct shared *sh = store_shared(w->srv->store);
    if (sh && redis_conn_up(w->redis)) {
        /* A day, as this host's own memory of ids (hook_ids): a sender
         * resends a delivery (same id, new timestamp) for hours when it
         * did not get the answer, so the timestamp's tolerance is no
         * measure of how long an id must be remembered. */
        long long keep = 86400LL * 1000;
        c->claim = shared_claim(sh, w->redis, c->digest, sizeof c->digest, keep, on_claimed, c);
        if (c->claim) {
            c->hook_shared = 1;
            hold_call(w, conn, c, &o, on_claim_deadline);
            MHD_suspend_connection(conn);
            c->suspended = 1;
            return;
        }
    } else if (sh) {
        shared_count_fallback(sh, 0);
    }
    hook_after_claim(w, conn, c, &o, 0);
}

/* ---- running a schedule now: POST /schedules/<name>/run ------------------ */

/* A run now ended: its outcome is the answer. */
static void on_run_now_done(char *json, size_t len, void *ud)
{
    struct call *c = ud;
    struct worker *w = c->w;
    int answered = c->run_now == 3; /* at its deadline, with a 504 */
    c->run_now = 1;
    unlink_running(c);
    sched_timer_cancel(w->sched, c->deadline);
    c->deadline = NULL;
    if (answered || !c->conn) {
        free(json);
        free_call(c);
        return;
    }
    if (c->suspended) {
        resume_with(c, 200, json, len);
    } else {
        respond(c->conn, c, 200, json, len, NULL);
    }
    log_request(w, c, "POST", c->hook_path, 200, NULL);
}

/* The run took longer than its run-time limit allows plus a margin. */
static void on_run_now_deadline(struct sched *s, void *ud)
{
    (void)s;
    struct call *c = ud;
    c->deadline = NULL;
    unlink_running(c);
    c->run_now = 3; /* the call stays until the run calls back */
    size_t len;
    char *body =
        jsonw_error_body("the run is still going; its outcome goes to the log", c->id, &len);
    resume_with(c, 504, body, len);
    log_request(c->w, c, "POST", c->hook_path, 504, NULL);
}

/* Runs a schedule now for `cliqhost invoke schedule NAME`; loopback only
 * (as /status: status_access). Answers when the run ends. */
static void handle_run_now(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *url)
{
    const char *access = w->cfg->status_access;
    snprintf(c->hook_path, sizeof c->hook_path, "%.79s", url);
    /* Loopback only, even when status_access opens /status to all (for a
     * remote Prometheus): running scripts is not reading figures. */
    if (!strcmp(access, "off") || !admin_client_is_loopback(conn)) {
        respond_error(w, conn, c, "POST", url, MHD_HTTP_FORBIDDEN,
                      !strcmp(access, "off")
                          ? "running a schedule now is turned off (status_access = \"off\")"
                          : "running a schedule now answers loopback clients only",
                      NULL, NULL);
        return;
    }
    char name[REQUEST_TASK_NAME_MAX + 2];
    const char *p = url + strlen("/schedules/");
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : 0;
    if (!slash || strcmp(slash, "/run") || n == 0 || n >= sizeof name) {
        respond_error(w, conn, c, "POST", url, MHD_HTTP_NOT_FOUND,
                      "no such path: POST /schedules/<name>/run runs a schedule now", NULL, NULL);
        return;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    char err[600];
    c->run_now = 2;
    c->conn = conn;
    int rc = schedules_run_now(w->runner, name, c->id, on_run_now_done, c, err, sizeof err);
    if (rc < 0) {
        c->run_now = 1;
        respond_error(w, conn, c, "POST", url,
                      rc == SCHEDULES_BUSY   ? MHD_HTTP_CONFLICT
                      : rc == SCHEDULES_FULL ? MHD_HTTP_SERVICE_UNAVAILABLE
                                             : MHD_HTTP_NOT_FOUND,
                      err, NULL, NULL);
        return;
    }
    if (rc == 1)
        return; /* answered by on_run_now_done */
    c->next = w->running;
    if (w->running)
        w->running->prev = c;
    w->running = c;
    c->deadline = sched_timer_add(w->sched, w->cfg->max_run_ms + 5000, on_run_now_deadline, c);
    MHD_suspend_connection(conn);
    c->suspended = 1;
}

/* Takes the settings and keys SIGHUP brought, between requests. Calls in
 * flight keep pointers into the old settings, which stay alive. */
static void adopt_config(struct worker *w)
{
    struct server *s = w->srv;
    if (atomic_load_explicit(&s->conf_gen, memory_order_acquire) == w->conf_gen)
        return;
    pthread_mutex_lock(&s->conf_mu);
    const struct config *cfg = s->conf_cfg;
    const struct verify_keyset *ks = s->conf_ks;
    unsigned long long gen = atomic_load(&s->conf_gen);
    pthread_mutex_unlock(&s->conf_mu);
    if (ks != w->ks) {
        struct verifier *v = verifier_new(ks);
        if (!v) {
            log_msg(LOG_ERROR, NULL,
                    "worker %d: cannot set up the new keys (OpenSSL); keeping the "
                    "old ones",
                    w->index);
            return;
        }
        verifier_free(w->verifier);
        w->verifier = v;
        w->ks = ks;
    }
    w->cfg = cfg;
    redis_conn_set_timeout(w->redis, cfg->redis_timeout_ms);
    struct luavm_options lo;
    server_luavm_options(cfg, w->lualib_dir, &lo);
    luavm_set_options(w->vm, &lo);
    redis_conn_set_timeout(w->redis, cfg->redis_timeout_ms);
    w->conf_gen = gen;
}

void server_reconfigure(struct server *s, const struct config *c, const struct verify_keyset *ks)
{
    pthread_mutex_lock(&s->conf_mu);
    s->conf_cfg = c;
    s->conf_ks = ks;
    atomic_fetch_add_explicit(&s->conf_gen, 1, memory_order_release);
    pthread_mutex_unlock(&s->conf_mu);
    outbox_set_config(s->outbox, c);
    store_set_config(s->store, c);
}

/* libmicrohttpd calls this for the headers, for each piece of the body, and
 * once more when the body is complete. */
/* Answers the admin endpoints (/healthz, /status, /metrics). Returns 1 if
 * `url` was one of them and an answer is queued, else 0. */
static int answer_admin(struct worker *w, struct MHD_Connection *conn, struct call *c,
                        const char *method, const char *url)
{
    if (strcmp(url, "/healthz") == 0) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            respond_error(w, conn, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed: /healthz answers GET", "GET, HEAD", NULL);
            return 1;
        }
        if (sched_stopping(w->sched)) { /* a load balancer should look elsewhere */
            respond_error(w, conn, c, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down",
                          NULL, NULL);
            return 1;
        }
        static const char ok[] = "{\"status\":\"ok\"}";
        respond(conn, c, 200, xstrdup(ok), sizeof ok - 1, NULL);
        log_request(w, c, method, url, 200, NULL);
        return 1;
    }
    if (strcmp(url, "/status") == 0) {
        const char *access = w->cfg->status_access;
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            respond_error(w, conn, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed: /status answers GET", "GET, HEAD", NULL);
        } else if (!strcmp(access, "off") ||
                   (!strcmp(access, "loopback") && !admin_client_is_loopback(conn))) {
            respond_error(w, conn, c, method, url, MHD_HTTP_FORBIDDEN,
                          !strcmp(access, "off")
                              ? "/status is turned off (status_access = \"off\")"
                              : "/status answers loopback clients only (status_access)",
                          NULL, NULL);
        } else {
            struct admin_status st = {w->srv->hub,
                                      w->srv->started_at,
                                      w->srv->nworkers,
                                      w->cfg->scripts,
                                      w->cfg->reload_settle_ms > 0,
                                      w->cfg->callback_path,
                                      w->srv->store,
                                      w->srv->schedules};
            size_t len;
            char *body = admin_status_body(&st, &len);
            respond(conn, c, 200, body, len, NULL);
            log_request(w, c, method, url, 200, NULL);
        }
        return 1;
    }
    if (strcmp(url, "/metrics") == 0 && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        struct metrics *all[256];
        int nw = w->srv->nworkers < 256 ? w->srv->nworkers : 256;
        for (int i = 0; i < nw; i++)
            all[i] = &w->srv->workers[i].metrics;
        size_t len;
        char *text = admin_metrics_body(all, nw, w->srv->hub, w->srv->replay, w->srv->outbox,
                                        w->srv->store, w->srv->schedules, w->srv->journal,
                                        atomic_load(&w->srv->pending_bytes), &len);
        struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (r) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    "text/plain; version=0.0.4; charset=utf-8");
            if (MHD_queue_response(conn, 200, r) == MHD_YES)
                c->responded = 1;
            MHD_destroy_response(r);
        } else {
            free(text);
        }
        log_request(w, c, method, url, 200, NULL);
        return 1;
    }
    return 0;
}

/* ---- the console: /console and /console/api/... ------------------------- */

/* The longest body the console's event stream holds for one page: a page
 * that reads slower than the journal changes is dropped past it. */
#define SSE_MAX_PENDING (1024 * 1024)

/* Whether `host` (the Host header) names this host on loopback, as the
 * console's page was loaded from: a name that resolves here by other DNS
 * (rebinding) is refused. */
static int console_host_ok(const char *host, unsigned port)
{
    if (!host)
        return 0;
    char want[40];
    static const char *const names[] = {"127.0.0.1", "[::1]", "localhost"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(want, sizeof want, "%s:%u", names[i], port);
        if (!strcasecmp(host, want))
            return 1;
    }
    return 0;
}

/* Whether a proxy on this machine passed the request on, as far as it
 * shows, beyond the headers admin_client_is_loopback knows: the other
 * headers proxies and tunnels add, and HTTP/1.0, which nginx's proxy_pass
 * speaks by default (with Host set to the upstream's 127.0.0.1:<port> and
 * no forwarding header) and no browser does. */
static int console_proxied(struct MHD_Connection *conn, const char *version)
{
    static const char *const headers[] = {"Via",         "X-Forwarded-Host", "X-Forwarded-Proto",
                                          "X-Client-IP", "True-Client-IP",   "CF-Connecting-IP"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, headers[i]))
            return 1;
    return !version || strcmp(version, MHD_HTTP_VERSION_1_1) != 0;
}

/* Compares the secret in constant time. */
static int console_secret_ok(const struct server *s, const char *given)
{
    if (!given)
        return 0;
    size_t n = strlen(s->console_secret);
    if (strlen(given) != n)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(given[i] ^ s->console_secret[i]);
    return diff == 0;
}

/* A file of the page (/console/console.js, ...), or NULL: only under
 * /console/, and never the page itself (it is served with its secret). */
static const char *console_static(const char *url, size_t *len, const char **type)
{
    static const char prefix[] = "/console/";
    if (strncmp(url, prefix, sizeof prefix - 1) || !strcmp(url + sizeof prefix - 1, "console.html"))
        return NULL;
    size_t n;
    const char *t;
    const char *file = console_asset(url + sizeof prefix - 1, &n, &t);
    if (file && len)
        *len = n;
    if (file && type)
        *type = t;
    return file;
}

/* The guard in front of every /console request: console = "off", a client
 * not on loopback or forwarded by a proxy, a Host that is not this host on
 * loopback, a foreign Origin, a wrong method, and for the API a missing or
 * wrong secret. Returns 1 to go on, or 0 with the refusal queued. */
static int console_guard(struct worker *w, struct MHD_Connection *conn, struct call *c,
                         const char *method, const char *url, const char *version)
{
    const char *why = NULL;
    unsigned status = MHD_HTTP_FORBIDDEN;
    const char *allow = NULL;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
    int api = !strncmp(url, "/console/api/", 13);
    char msg[300];
    if (!strcmp(w->cfg->console, "off")) {
        why = "the console is turned off (console = \"off\")";
    } else if (!admin_client_is_loopback(conn) || console_proxied(conn, version)) {
        why = "the console answers loopback clients only, and no request a proxy forwarded "
              "(nor HTTP/1.0, as a proxy sends)";
    } else if ((ua && !strncmp(ua, "cliqhost/", 9)) ||
               MHD_lookup_connection_value(conn, MHD_HEADER_KIND, FETCH_MARK_HEADER)) {
        /* A script's http.request (on a host whose http_allow reaches
         * loopback), sent to a URL it was given: not the operator. Scripts
         * may set their User-Agent, not the mark (fetch.h). */
        why = "the console refuses requests a cliqhost sent (a script's http.request)";
    } else if (!console_host_ok(host, w->srv->port)) {
        snprintf(msg, sizeof msg,
                 "the console answers only Host 127.0.0.1:%u, [::1]:%u or localhost:%u (a "
                 "guard against DNS rebinding)",
                 w->srv->port, w->srv->port, w->srv->port);
        why = msg;
    } else if (origin && (strncmp(origin, "http://", 7) || strcasecmp(origin + 7, host))) {
        why = "the console refuses requests from another origin (Origin)";
    } else if (!api && strcmp(url, "/console") && strcmp(url, "/console/") &&
               !console_static(url, NULL, NULL)) {
        status = MHD_HTTP_NOT_FOUND;
        why = "no such console path: GET /console, or /console/api/...";
    } else if (!api && strcmp(method, "GET") && strcmp(method, "HEAD")) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        allow = "GET, HEAD";
        why = "method not allowed: /console answers GET";
    } else if (api) {
        int post = !strcmp(url, "/console/api/call") ||
                   (!strncmp(url, "/console/api/calls/", 19) && strstr(url, "/replay"));
        const char *given =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Cliqhost-Console");
        if (!given && !strcmp(url, "/console/api/events"))
            given = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "secret");
        if (strcmp(method, post ? "POST" : "GET")) {
            status = MHD_HTTP_METHOD_NOT_ALLOWED;
            allow = post ? "POST" : "GET";
            why = post ? "method not allowed: this console call changes things and takes POST"
                       : "method not allowed: this console path answers GET";
        } else if (!console_secret_ok(w->srv, given)) {
            status = MHD_HTTP_UNAUTHORIZED;
            why = given ? "wrong console secret (X-Cliqhost-Console): reload the console's page"
                        : "missing console secret: send the page's secret in X-Cliqhost-Console "
                          "(or ?secret= for the event stream)";
        }
    }
    if (!why)
        return 1;
    c->close = 1; /* a POST body is not read */
    respond_error(w, conn, c, method, url, status, why, allow, NULL);
    return 0;
}

/* The console's answer to a handler run it asked for: {"id": the journal
 * entry, "status": the reply's HTTP status, "late": ..., "reply": the reply
 * (JSON as it is, else as a string)}, and for a replay "replay_of" and
 * "old" (the replayed entry as it was). Takes body; returns a new one. */
static char *console_wrap(struct call *c, unsigned status, char *body, size_t *len)
{
    struct buf b;
    buf_init(&b, *len * 2 + 4096 + (c->replay_old ? strlen(c->replay_old) : 0));
    buf_printf(&b,
               "{\"id\":%llu,\"request_id\":\"%s\",\"status\":%u,\"late\":%s,\"reply\":", c->jid,
               c->id, status, c->late ? "true" : "false");
    cJSON *parsed = body ? cJSON_ParseWithLength(body, *len) : NULL;
    if (parsed)
        buf_add(&b, body, *len);
    else
        jsonw_string(&b, body ? body : "", *len, JSONW_REPLACE, NULL);
    cJSON_Delete(parsed);
    if (c->replay_of)
        buf_printf(&b, ",\"replay_of\":%llu,\"old\":%s", c->replay_of,
                   c->replay_old ? c->replay_old : "null");
    buf_adds(&b, "}");
    free(body);
    return buf_take(&b, len);
}

/* Answers a console API call with JSON it built (takes body). */
static void console_answer(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *method, const char *url, unsigned status, char *body,
                           size_t len)
{
    respond(conn, c, status, body, len, NULL);
    log_request(w, c, method, url, (int)status, NULL);
}

/* Runs `body` (a Cliq request body; takes it) as a call the console made:
 * no signature, no replay check, recorded in the journal as `kind`. */
static void console_run(struct worker *w, struct MHD_Connection *conn, struct call *c,
                        const char *url, char *body, size_t len, const char *kind)
{
    buf_free(&c->body);
    buf_init(&c->body, len + 1);
    buf_add(&c->body, body, len);
    free(body);
    c->console_run = 1;
    c->callback = kind[0] == 'r' ? "/console/api/replay" : "/console/api/call";
    c->jid = journal_begin(w->srv->journal, kind, c->id, c->body.data, c->body.len);
    journal_signature(w->srv->journal, c->jid, "none (made by the console)", -1);
    struct outcome o = {NULL, NULL, 0, -1, 0};
    decode_and_run(w, conn, c, "POST", url, VERIFY_SKIPPED, &o, SHARED_ANSWER_NONE);
}

/* A JSON value as the string callbody takes: a string as it is, anything
 * else as its JSON text (kept in `keep`, freed by the caller). */
static const char *callbody_text(const cJSON *v, char **keep)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    *keep = cJSON_PrintUnformatted(v);
    return *keep;
}

/* POST /console/api/call: {"type", "name", "handler", "text", "action",
 * "args": {}, "values": {}, "params": {path: value}} builds the body as
 * `cliqhost invoke` does (callbody), or {"body": {...}} sends one as it
 * is; the handler runs and the answer is its reply. */
static void console_call(struct worker *w, struct MHD_Connection *conn, struct call *c,
                         const char *url)
{
    char err[600];
    cJSON *in = cJSON_ParseWithLength(c->body.data ? c->body.data : "", c->body.len);
    char *body = NULL;
    size_t nkeep = 0;
    char *keep[3 * 64 + 8];
    struct callbody_pair pairs[3][64];
    size_t counts[3] = {0, 0, 0};
    if (!cJSON_IsObject(in)) {
        snprintf(err, sizeof err,
                 "the body is not a JSON object: POST {\"type\": ..., \"name\": "
                 "..., \"handler\": ...} or {\"body\": {...}}");
        goto refuse;
    }
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(in, "body");
    if (cJSON_IsObject(raw)) {
        body = cJSON_PrintUnformatted(raw);
        cJSON_Delete(in);
        console_run(w, conn, c, url, body, strlen(body), "console");
        return;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(in, "type");
    const cJSON *hname = cJSON_GetObjectItemCaseSensitive(in, "handler");
    if (!cJSON_IsString(type)) {
        snprintf(err, sizeof err,
                 "\"type\" is missing: command, bot, messageaction, function, "
                 "widget, extension or link_preview");
        goto refuse;
    }
    const struct callbody_handler *h = cJSON_IsString(hname)
                                           ? callbody_find(type->valuestring, hname->valuestring)
                                           : callbody_default(type->valuestring);
    if (!h) {
        snprintf(err, sizeof err, "no handler %s of type %s (see cliqhost invoke --help)",
                 cJSON_IsString(hname) ? hname->valuestring : "(default)", type->valuestring);
        goto refuse;
    }
    struct callbody_input bi;
    memset(&bi, 0, sizeof bi);
    static const char *const lists[3] = {"args", "values", "params"};
    for (int k = 0; k < 3; k++) {
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(in, lists[k]);
        const cJSON *v;
        cJSON_ArrayForEach(v, obj)
        {
            if (!v->string || counts[k] >= 64)
                continue;
            keep[nkeep] = NULL;
            pairs[k][counts[k]].key = v->string;
            pairs[k][counts[k]].value = callbody_text(v, &keep[nkeep]);
            if (keep[nkeep])
                nkeep++;
            counts[k]++;
        }
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(in, "text");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(in, "action");
    bi.name = cJSON_IsString(name) ? name->valuestring : NULL;
    bi.text = cJSON_IsString(text) ? text->valuestring : NULL;
    bi.action = cJSON_IsString(action) ? action->valuestring : NULL;
    bi.args = pairs[0];
    bi.nargs = counts[0];
    bi.values = pairs[1];
    bi.nvalues = counts[1];
    bi.params = pairs[2];
    bi.nparams = counts[2];
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    bi.now_ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    cJSON *tree = callbody_build(h, &bi, err, sizeof err);
    for (size_t i = 0; i < nkeep; i++)
        cJSON_free(keep[i]);
    nkeep = 0;
    if (!tree)
        goto refuse;
    body = cJSON_PrintUnformatted(tree);
    cJSON_Delete(tree);
    cJSON_Delete(in);
    console_run(w, conn, c, url, body, strlen(body), "console");
    return;
refuse:
    for (size_t i = 0; i < nkeep; i++)
        cJSON_free(keep[i]);
    cJSON_Delete(in);
    respond_error(w, conn, c, "POST", url, MHD_HTTP_BAD_REQUEST, err, NULL, NULL);
}

/* POST /console/api/calls/<id>/replay: the recorded body again, against
 * the scripts as they are now (without its response_url, long spent). */
static void console_replay(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *url, unsigned long long id)
{
    char *body = NULL;
    size_t len = 0;
    int cut = 0;
    if (journal_body(w->srv->journal, id, &body, &len, &cut) < 0) {
        respond_error(w, conn, c, "POST", url, MHD_HTTP_NOT_FOUND,
                      "no such call in the journal (it keeps the last journal_calls)", NULL, NULL);
        return;
    }
    if (cut) {
        free(body);
        respond_error(w, conn, c, "POST", url, MHD_HTTP_CONFLICT,
                      "the recorded body passed journal_entry_bytes and was cut: it cannot be "
                      "sent again",
                      NULL, NULL);
        return;
    }
    cJSON *tree = cJSON_ParseWithLength(body, len);
    if (tree) {
        /* Every one: a body that names it twice (recorded as a network
         * client sent it) would keep the second. */
        while (cJSON_GetObjectItemCaseSensitive(tree, "response_url"))
            cJSON_DeleteItemFromObjectCaseSensitive(tree, "response_url");
        free(body);
        body = cJSON_PrintUnformatted(tree);
        len = strlen(body);
        cJSON_Delete(tree);
    }
    struct buf old;
    buf_init(&old, journal_get_max(w->srv->journal));
    if (journal_get(w->srv->journal, id, &old) == 0)
        c->replay_old = buf_take(&old, NULL);
    buf_free(&old);
    c->replay_of = id;
    console_run(w, conn, c, url, body, len, "replay");
}

/* Ends a stream's part in the worker's list. */
static void sse_free(void *cls)
{
    struct sse *st = cls;
    struct worker *w = st->w;
    if (st->prev)
        st->prev->next = st->next;
    else if (w->sses == st)
        w->sses = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (st->hangup_fd >= 0)
        sched_unwatch(w->sched, st->hangup_fd);
    atomic_fetch_sub(&w->nsses, 1);
    journal_watch(w->srv->journal, -1);
    buf_free(&st->out);
    free(st);
}

/* libmicrohttpd asks for the stream's next bytes: what is pending, else
 * the journal's changes since the last sent, else nothing yet (the
 * connection waits, suspended, until the journal changes). */
static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct sse *st = cls;
    if (st->off == st->out.len) {
        buf_reset(&st->out);
        st->off = 0;
        /* console = "off" by SIGHUP ends the pages already watching. */
        adopt_config(st->w);
        if (st->w->sse_closing || st->gone || !strcmp(st->w->cfg->console, "off"))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (journal_changes(st->w->srv->journal, &st->seq, &st->out) < 0) {
            /* A page that reads slower than the journal changes is
             * dropped; it reconnects and starts from the list. */
            log_msg(LOG_WARN, NULL,
                    "console: an event stream fell %d KiB behind the journal; dropped",
                    SSE_MAX_PENDING / 1024);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (st->out.len == 0) {
            if (!st->suspended) {
                st->suspended = 1;
                MHD_suspend_connection(st->conn);
            }
            return 0;
        }
    }
    size_t n = st->out.len - st->off;
    if (n > max)
        n = max;
    memcpy(out, st->out.data + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

/* A stream waiting for the journal goes on (its sse_read is asked again). */
static void sse_resume(struct sse *st)
{
    if (st->suspended) {
        st->suspended = 0;
        MHD_resume_connection(st->conn);
        st->w->mhd_kick = 1;
    }
}

/* In the worker's thread: the journal changed; its streams go on. */
static void sse_wake(void *arg)
{
    struct worker *w = arg;
    atomic_store(&w->sse_wake, 0);
    for (struct sse *st = w->sses; st; st = st->next)
        sse_resume(st);
}

static void sse_wake_none(void *arg)
{
    (void)arg;
}

/* From any thread, after the journal changed while a page watches. */
static void on_journal_change(void *ud)
{
    struct server *s = ud;
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        if (atomic_load_explicit(&w->nsses, memory_order_relaxed) > 0 && w->mailbox &&
            !atomic_exchange(&w->sse_wake, 1))
            mailbox_send(w->mailbox, sse_wake, sse_wake_none, w);
    }
}

/* A page closed its stream while it waited for the journal (a closed
 * tab): it ends now, quietly, not at the next change, when writing into
 * the dead connection would make libmicrohttpd warn. */
static void on_sse_hangup(struct sched *s, int fd, uint32_t events, void *ud)
{
    (void)events;
    struct sse *st = ud;
    sched_unwatch(s, fd);
    st->hangup_fd = -1;
    st->gone = 1;
    sse_resume(st);
}

/* GET /console/api/events: one Server-Sent Event per new or changed
 * journal entry, while the page is open. */
static void console_events(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *url)
{
    struct sse *st = xcalloc(1, sizeof *st);
    st->w = w;
    st->conn = conn;
    st->seq = journal_seq(w->srv->journal);
    st->hangup_fd = -1;
    buf_init(&st->out, SSE_MAX_PENDING);
    buf_adds(&st->out, "retry: 2000\n: the journal's changes follow\n\n");
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, st, sse_free);
    if (!r) {
        buf_free(&st->out);
        free(st);
        respond_error(w, conn, c, "GET", url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                      "cannot start the event stream", NULL, NULL);
        return;
    }
    st->next = w->sses;
    if (w->sses)
        w->sses->prev = st;
    w->sses = st;
    atomic_fetch_add(&w->nsses, 1);
    journal_watch(w->srv->journal, 1);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Request-Id", c->id);
    if (MHD_queue_response(conn, 200, r) == MHD_YES)
        c->responded = 1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci && sched_watch(w->sched, ci->connect_fd, EPOLLRDHUP, on_sse_hangup, st) == 0)
        st->hangup_fd = ci->connect_fd;
    conn_busy(conn);
    MHD_destroy_response(r);
    log_request(w, c, "GET", url, 200, NULL);
}

/* What the page may do: its own scripts, styles and API only; images
 * from the web (a reply's cards and previews, as Cliq shows them); never
 * framed, never an inline script, never a form sent by the browser (the
 * page sends them itself), no <base> or plugin. */
#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; " \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "            \
    "object-src 'none'"

/* GET /console: the page, with the secret where it says so. */
static void console_serve_page(struct worker *w, struct MHD_Connection *conn, struct call *c,
                               const char *method, const char *url)
{
    size_t n;
    const char *type = NULL;
    const char *file = console_static(url, &n, &type);
    if (file) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(n, (void *)file, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (MHD_queue_response(conn, 200, r) == MHD_YES)
            c->responded = 1;
        MHD_destroy_response(r);
        log_request(w, c, method, url, 200, NULL);
        return;
    }
    const char *page = console_page(&n);
    static const char marker[] = "{{CONSOLE_SECRET}}";
    struct buf b;
    buf_init(&b, n + 4096);
    for (size_t i = 0; i < n;) {
        const char *at = memmem(page + i, n - i, marker, sizeof marker - 1);
        size_t until = at ? (size_t)(at - page) : n;
        buf_add(&b, page + i, until - i);
        if (!at)
            break;
        buf_adds(&b, w->srv->console_secret);
        i = until + sizeof marker - 1;
    }
    size_t len;
    char *body = buf_take(&b, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy", CONSOLE_CSP);
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Request-Id", c->id);
    if (MHD_queue_response(conn, 200, r) == MHD_YES)
        c->responded = 1;
    conn_busy(conn);
    MHD_destroy_response(r);
    log_request(w, c, method, url, 200, NULL);
}

/* A whole request under /console that passed the guard. */
static void handle_console(struct worker *w, struct MHD_Connection *conn, struct call *c,
                           const char *method, const char *url)
{
    release_body(c);
    conn_busy(conn);
    if (strncmp(url, "/console/api/", 13)) {
        console_serve_page(w, conn, c, method, url);
        return;
    }
    const char *api = url + 13;
    if (!w->srv->journal && strcmp(api, "call")) {
        respond_error(w, conn, c, method, url, MHD_HTTP_NOT_FOUND,
                      "the journal is off (journal_calls = 0)", NULL, NULL);
        return;
    }
    if (!strcmp(api, "calls")) {
        struct buf b;
        buf_init(&b, (size_t)w->cfg->journal_calls * 1024 + 4096);
        journal_list(w->srv->journal, &b);
        size_t len;
        char *body = buf_take(&b, &len);
        console_answer(w, conn, c, method, url, 200, body, len);
        return;
    }
    if (!strcmp(api, "events")) {
        console_events(w, conn, c, url);
        return;
    }
    if (!strcmp(api, "call")) {
        console_call(w, conn, c, url);
        return;
    }
    if (!strncmp(api, "calls/", 6)) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(api + 6, &end, 10);
        if (!errno && end != api + 6 && !strcmp(end, "/replay")) {
            console_replay(w, conn, c, url, id);
            return;
        }
        if (!errno && end != api + 6 && !*end) {
            struct buf b;
            buf_init(&b, journal_get_max(w->srv->journal));
            if (journal_get(w->srv->journal, id, &b) == 0) {
                size_t len;
                char *body = buf_take(&b, &len);
                console_answer(w, conn, c, method, url, 200, body, len);
                return;
            }
            buf_free(&b);
            respond_error(w, conn, c, method, url, MHD_HTTP_NOT_FOUND,
                          "no such call in the journal (it keeps the last journal_calls)", NULL,
                          NULL);
            return;
        }
    }
    respond_error(w, conn, c, method, url, MHD_HTTP_NOT_FOUND,
                  "no such console API path: calls, calls/<id>, calls/<id>/replay, call, events",
                  NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct worker *w = cls;
    struct call *c = *con_cls;
    if (!c)
        adopt_config(w);
    const struct config *cfg = w->cfg;

    if (!c) {
        c = call_new(w, (size_t)cfg->max_body_bytes);
        clock_gettime(CLOCK_MONOTONIC, &c->t0);
        c->t0_ms = (long long)c->t0.tv_sec * 1000 + c->t0.tv_nsec / 1000000;
        c->w = w;
        c->hangup_fd = -1;
        struct headers h;
        read_headers(conn, &h);
        assign_id(w, h.request_id, c);
        c->hdr_signature = h.signature;
        c->hdr_debug = h.debug;
        *con_cls = c;
        if (!strcmp(url, cfg->callback_path) && !strcmp(method, "POST"))
            c->callback = cfg->callback_path;

        struct conn_state *cs = conn_state_of(conn);
        if (cs && cs->nul_in_path) {
            c->close = 1;
            respond_error(w, conn, c, method, url, MHD_HTTP_BAD_REQUEST,
                          "the path holds %00 (a NUL byte), which no path of this host has", NULL,
                          NULL);
            return MHD_YES;
        }
        if (framing_conflict(&h)) {
            /* A proxy in front that reads the other length (or the
             * chunks) could be smuggled past: refuse, and close. */
            c->close = 1;
            respond_error(w, conn, c, method, url, MHD_HTTP_BAD_REQUEST,
                          "two different Content-Length headers, or Content-Length with "
                          "Transfer-Encoding: the body's length is ambiguous",
                          NULL, NULL);
            return MHD_YES;
        }
        /* A GET or HEAD to an admin endpoint is answered once the request
         * is complete, so its connection stays open for the next. */
        if ((!strcmp(url, "/healthz") || !strcmp(url, "/status") || !strcmp(url, "/metrics")) &&
            (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
            c->admin = 1;
            return MHD_YES;
        }
        if (answer_admin(w, conn, c, method, url))
            return MHD_YES;
        if (!strncmp(url, "/console", 8) && (url[8] == '\0' || url[8] == '/')) {
            if (!console_guard(w, conn, c, method, url, version))
                return MHD_YES;
            c->console = 1;
            if (strcmp(method, "POST"))
                return MHD_YES; /* answered once the request is complete */
        } else if (!strncmp(url, "/schedules/", 11)) {
            if (strcmp(method, "POST")) {
                respond_error(w, conn, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "method not allowed: POST /schedules/<name>/run runs one now", "POST",
                              NULL);
                return MHD_YES;
            }
            c->run_now = 1;
            return MHD_YES;
        }
        if (c->console) {
            /* a console POST: its body is read, and capped, as a call's */
        } else if (!strncmp(url, "/hooks/", 7)) {
            if (strcmp(method, "POST")) {
                respond_error(w, conn, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "method not allowed: a hook takes POST", "POST", NULL);
                return MHD_YES;
            }
            if (strlen(url) >= sizeof c->hook_path) {
                respond_error(w, conn, c, method, url, MHD_HTTP_NOT_FOUND,
                              "no such hook: the name is too long", NULL, NULL);
                return MHD_YES;
            }
            c->hook = 1;
            snprintf(c->hook_path, sizeof c->hook_path, "%s", url);
            c->callback = c->hook_path;
        } else if (strcmp(url, cfg->callback_path) != 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "no such path: %.200s (Cliq's callback is POST %s)", url,
                     cfg->callback_path);
            respond_error(w, conn, c, method, url, MHD_HTTP_NOT_FOUND, msg, NULL, NULL);
            return MHD_YES;
        }
        if (!c->hook && !c->console && strcmp(method, "POST") != 0) {
            char msg[400];
            snprintf(msg, sizeof msg, "method not allowed: %.20s (Cliq's callback is POST %s)",
                     method, cfg->callback_path);
            respond_error(w, conn, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, msg, "POST", NULL);
            return MHD_YES;
        }
        const char *cl = h.length;
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (!errno && end != cl && n > (unsigned long long)cfg->max_body_bytes) {
                char msg[160];
                snprintf(msg, sizeof msg, "body of %llu bytes is over the limit of %ld bytes", n,
                         cfg->max_body_bytes);
                respond_error(w, conn, c, method, url, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL, NULL);
                return MHD_YES;
            }
            if (!errno && end != cl && n > 0) {
                /* Bytes are charged as they arrive (a header that only
                 * announces a length holds nothing); a body that cannot
                 * fit in what is free now is told so at once. */
                long long free_now =
                    w->cfg->pending_body_bytes -
                    atomic_load_explicit(&w->srv->pending_bytes, memory_order_relaxed);
                if ((long long)n > free_now) {
                    respond_busy(w, conn, c, method, url);
                    return MHD_YES;
                }
                buf_reserve(&c->body, n < BODY_PREALLOC ? (size_t)n : BODY_PREALLOC);
            }
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->too_large) {
            /* libmicrohttpd cannot answer in the middle of a body, so a
             * chunked body that passed the cap is read and dropped; if it
             * goes on for another cap's worth, the connection is cut. */
            c->discarded += n;
            if (c->discarded > (size_t)cfg->max_body_bytes) {
                log_msg(LOG_WARN, c->id,
                        "status=413 error=\"body far over the limit; connection closed\"");
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (c->body.len + n > c->reserved &&
            reserve_body(w, c, c->body.len + n - c->reserved) < 0) {
            /* A body longer than it said, or chunked: libmicrohttpd cannot
             * answer in the middle of it, so the connection is cut. */
            log_msg(LOG_WARN, c->id,
                    "status=503 error=\"bodies not yet verified fill pending_body_bytes (%ld); "
                    "connection closed\"",
                    cfg->pending_body_bytes);
            return MHD_NO;
        }
        if (buf_add(&c->body, upload_data, n) < 0) {
            c->too_large = 1;
            c->discarded = n;
            buf_free(&c->body);
        }
        return MHD_YES;
    }
    if (c->responded)
        return MHD_YES;
    if (c->admin) {
        answer_admin(w, conn, c, method, url);
        return MHD_YES;
    }
    if (c->reply_body) {
        /* Resumed after a handler that waited, or at its deadline. */
        char *b = c->reply_body;
        c->reply_body = NULL;
        respond(conn, c, c->reply_status, b, c->reply_len, NULL);
        return MHD_YES;
    }
    if (c->task || c->run_now >= 2)
        return MHD_YES; /* resumed spuriously, or answered; the handler still runs */
    if (c->too_large) {
        char msg[160];
        snprintf(msg, sizeof msg, "body is over the limit of %ld bytes", cfg->max_body_bytes);
        respond_error(w, conn, c, method, url, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL, NULL);
        return MHD_YES;
    }
    if (c->run_now) {
        handle_run_now(w, conn, c, url);
        return MHD_YES;
    }
    if (c->console) {
        handle_console(w, conn, c, method, url);
        return MHD_YES;
    }
    if (c->hook)
        handle_hook(w, conn, c);
    else
        handle_callback(w, conn, c, method, url);
    return MHD_YES;
}

/* Keeps the list of open connections for the slow-client guard. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct worker *w = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *cs = xcalloc(1, sizeof *cs);
        cs->since = sched_clock_ms();
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cs->fd = ci ? ci->connect_fd : -1;
        cs->next = w->conns;
        if (w->conns)
            w->conns->prev = cs;
        w->conns = cs;
        *socket_context = cs;
        return;
    }
    struct conn_state *cs = *socket_context;
    if (!cs)
        return;
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        w->conns = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    free(cs);
    *socket_context = NULL;
}

/* Every second: cuts connections that took more than request_timeout_s to
 * send a whole request (a slowloris client trickling headers or a body
 * resets libmicrohttpd's idle timer with each byte). */
static void on_sweep(struct sched *s, void *ud)
{
    struct worker *w = ud;
    long long now = sched_clock_ms(), limit = w->cfg->request_timeout_s * 1000;
    for (struct conn_state *cs = w->conns; cs; cs = cs->next) {
        if (cs->busy || cs->cut || now - cs->since <= limit || cs->fd < 0)
            continue;
        cs->cut = 1;
        shutdown(cs->fd, SHUT_RDWR);
        log_msg(LOG_WARN, NULL, "connection cut: no whole request within request_timeout_s (%ld s)",
                w->cfg->request_timeout_s);
        w->mhd_kick = 1;
    }
    w->sweep = sched_timer_add(s, 1000, on_sweep, w);
}

/* A request line has arrived: at shutdown this connection waits for its
 * answer, where an idle one is closed. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    struct conn_state *cs = conn_state_of(conn);
    if (cs) {
        cs->started = 1;
        /* libmicrohttpd hands the path over decoded, as a C string: a %00
         * would end it early ("/%00x" would read as "/"). The query is
         * not a path, and is left to whoever reads it. */
        size_t n = strcspn(uri, "?");
        cs->nul_in_path = 0;
        for (size_t i = 0; i + 2 < n; i++)
            if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
                cs->nul_in_path = 1;
    }
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    struct conn_state *cs = conn_state_of(conn);
    if (cs) { /* waiting for the next request on this connection */
        cs->busy = 0;
        cs->started = 0;
        cs->since = sched_clock_ms();
    }
    struct call *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    c->conn = NULL;
    if (c->task || c->run_now >= 2) {
        /* The handler still runs; it frees the call when it is done. */
        stop_watching_hangup(c);
        return;
    }
    free_call(c);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_msg(LOG_WARN, NULL, "http: %s", msg);
}

/* ---- the worker loop --------------------------------------------------- */

static void on_mhd_ready(struct sched *s, int fd, uint32_t events, void *ud)
{
    (void)s;
    (void)fd;
    (void)events;
    struct worker *w = ud;
    MHD_run(w->mhd);
}

static int worker_prepare(void *ud)
{
    struct worker *w = ud;
    adopt_config(w);
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(w->mhd, &t) == MHD_YES) {
        if (t > 60000)
            t = 60000;
        w->mhd_deadline = now_ms() + (long long)t;
        return (int)t;
    }
    w->mhd_deadline = 0;
    return -1;
}

static void worker_after(void *ud)
{
    struct worker *w = ud;
    metrics_set(&w->metrics.lua_memory, luavm_memory(w->vm));
    metrics_set(&w->metrics.handlers_waiting, luavm_tasks(w->vm));
    if (w->mhd_kick || (w->mhd_deadline && now_ms() >= w->mhd_deadline)) {
        w->mhd_kick = 0;
        MHD_run(w->mhd);
    }
    log_flush();
}

/* At shutdown: handlers still running are dropped, and their connections
 * answered 503. */
static void drop_running(struct worker *w)
{
    while (w->running) {
        struct call *c = w->running;
        unlink_running(c);
        shared_claim_cancel(c->claim);
        c->claim = NULL;
        sched_timer_cancel(w->sched, c->deadline);
        c->deadline = NULL;
        c->task = NULL;                  /* luavm_free drops it without a callback */
        c->run_now = c->run_now ? 1 : 0; /* and the runner its run */
        log_msg(LOG_WARN, c->id, "handler still running at shutdown; dropped");
        if (!c->conn) {
            free_call(c);
            continue;
        }
        if (!c->late) {
            size_t len;
            char *body = jsonw_error_body("the host is shutting down", c->id, &len);
            resume_with(c, 503, body, len);
        }
    }
}

/* At shutdown, a connection that was accepted (or answered) this long ago
 * and has not begun a request is closed: a client that just connected gets
 * this long to send its request. */
#define IDLE_LINGER_MS 1000

/* Connections the kernel completed but the worker had not accepted yet are
 * taken in, so they are answered rather than reset with the listener: at
 * most a full backlog's worth, since clients keep arriving while it runs. */
static void take_backlog(struct worker *w, int lfd)
{
    size_t refused = 0;
    for (int i = 0; i < LISTEN_BACKLOG; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        /* On failure libmicrohttpd closes it (over max_connections, say). */
        if (MHD_add_connection(w->mhd, fd, (const struct sockaddr *)&ss, len) != MHD_YES)
            refused++;
    }
    if (refused)
        log_msg(LOG_WARN, NULL,
                "worker %d: %zu connection%s waiting at shutdown could not be taken in", w->index,
                refused, refused == 1 ? "" : "s");
}

/* At shutdown: closes the connections that are not in the middle of a
 * request, and counts those that are (or may still send one). A request's
 * bytes may wait unread in the socket (they came while the worker ran a
 * handler): such a connection is not idle. */
static size_t settle_connections(struct worker *w)
{
    size_t open = 0;
    long long now = sched_clock_ms();
    for (struct conn_state *cs = w->conns; cs; cs = cs->next) {
        if (cs->cut || cs->fd < 0)
            continue;
        char byte;
        if (cs->busy || cs->started || now - cs->since < IDLE_LINGER_MS ||
            recv(cs->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
            open++;
            continue;
        }
        cs->cut = 1;
        shutdown(cs->fd, SHUT_RDWR);
        w->mhd_kick = 1;
    }
    return open;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    log_thread_buffered(1);
    luavm_watch(w->vm);
    sched_run(w->sched);
    /* Shutting down: stop taking connections, and let the handlers running
     * finish and their late replies reach response_url, for up to
     * shutdown_grace_s. Every connection open now gets its answer (503 for
     * a new call or /healthz, with Connection: close); idle ones are
     * closed. */
    /* The console's streams end: their pages reconnect to another host. */
    w->sse_closing = 1;
    sse_wake(w);
    int lfd = MHD_quiesce_daemon(w->mhd);
    if (lfd >= 0) {
        take_backlog(w, lfd);
        close(lfd);
    }
    w->listen_fd = -1;
    long long until = sched_clock_ms() + w->cfg->shutdown_grace_s * 1000;
    if (w->running || responder_pending(w->responder) || schedules_runner_busy(w->runner))
        log_msg(LOG_INFO, NULL,
                "worker %d: waiting up to %ld s for %zu handler%s and %zu late "
                "repl%s",
                w->index, w->cfg->shutdown_grace_s, luavm_tasks(w->vm),
                luavm_tasks(w->vm) == 1 ? "" : "s", responder_pending(w->responder),
                responder_pending(w->responder) == 1 ? "y" : "ies");
    for (;;) {
        size_t open = settle_connections(w);
        if (!(w->running || responder_pending(w->responder) || open ||
              schedules_runner_busy(w->runner)) ||
            sched_clock_ms() >= until)
            break;
        sched_run_once(w->sched, 100);
    }
    /* Schedules' runs still going are recorded as dropped, so their locks
     * do not hold the schedules after this host (the writes to Redis need
     * the loop: up to redis_timeout_ms for them, and never more than half
     * a second, as calls still wait for their answer). */
    long long flush_until =
        sched_clock_ms() + (w->cfg->redis_timeout_ms < 500 ? w->cfg->redis_timeout_ms : 500);
    while (schedules_runner_stop(w->runner) && sched_clock_ms() < flush_until)
        sched_run_once(w->sched, 20);
    drop_running(w);
    MHD_run(w->mhd);
    luavm_unwatch(w->vm);
    arena_release();
    log_thread_buffered(0);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

static int open_listener(const struct sockaddr_storage *ss, unsigned sslen, char *err,
                         size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        snprintf(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, sslen) < 0) {
        snprintf(err, errlen, "cannot listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT lets the host's own workers share the port, and would let
 * another process join them just as quietly (another cliqhost, with other
 * scripts and keys, taking a share of the calls). So the address is first
 * bound without it: that fails while anyone listens there. With port 0 it
 * also picks the free port the workers then share, written back to ss.
 * The claim is released before the workers bind, so two hosts started at
 * the same moment could both pass it: sharers_found closes that gap.
 * Returns 0, or -1 with a reason in err. */
static int claim_port(struct sockaddr_storage *ss, unsigned sslen, char *err, size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* not past a listener */
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, sslen) < 0) {
        if (errno == EADDRINUSE)
            snprintf(err, errlen,
                     "address already in use: another process (another cliqhost?) listens "
                     "there; stop it or choose another --listen");
        else
            snprintf(err, errlen, "cannot listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0) {
        if (ss->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)ss)->sin6_port = ((struct sockaddr_in6 *)&got)->sin6_port;
        else
            ((struct sockaddr_in *)ss)->sin_port = ((struct sockaddr_in *)&got)->sin_port;
    }
    close(fd);
    return 0;
}

/* After the workers listen: 1 when a socket that is not one of theirs
 * listens on the same address and port (another process joined the
 * SO_REUSEPORT group), from the kernel's table of this network namespace,
 * /proc/net/tcp or tcp6. Each of two hosts started together sees the
 * other, so both stop. 0 when alone, or when the table cannot be read. */
static int sharers_found(const struct server *s, const struct sockaddr_storage *ss)
{
    char want[80];
    if (ss->ss_family == AF_INET6) {
        const uint32_t *a = (const uint32_t *)((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        snprintf(want, sizeof want, "%08X%08X%08X%08X:%04X", a[0], a[1], a[2], a[3],
                 ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
    } else {
        snprintf(want, sizeof want, "%08X:%04X", ((const struct sockaddr_in *)ss)->sin_addr.s_addr,
                 ntohs(((const struct sockaddr_in *)ss)->sin_port));
    }
    FILE *f = fopen(ss->ss_family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp", "r");
    if (!f)
        return 0;
    char line[512];
    int foreign = 0;
    while (!foreign && fgets(line, sizeof line, f)) {
        char local[80], state[8];
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*s %79s %*s %7s %*s %*s %*s %*s %*s %lu", local, state, &inode) != 3)
            continue;
        if (strcmp(state, "0A") != 0 || strcmp(local, want) != 0)
            continue;
        int ours = 0;
        for (int i = 0; i < s->nworkers && !ours; i++) {
            struct stat st;
            ours = s->workers[i].listen_fd >= 0 && fstat(s->workers[i].listen_fd, &st) == 0 &&
                   (unsigned long)st.st_ino == inode;
        }
        foreign = !ours;
    }
    fclose(f);
    return foreign;
}

/* The settings a worker's schedules use: the newest (schedules.h). */
static const struct config *worker_config(void *ud)
{
    struct worker *w = ud;
    adopt_config(w);
    return w->cfg;
}

static int worker_init(struct server *s, struct worker *w, const struct sockaddr_storage *ss,
                       unsigned sslen, const char *lualib_dir, char *err, size_t errlen)
{
    const struct config *cfg = s->cfg;
    w->srv = s;
    w->cfg = s->cfg;
    w->ks = s->ks;
    w->conf_gen = 0;
    w->listen_fd = open_listener(ss, sslen, err, errlen);
    if (w->listen_fd < 0)
        return -1;
    if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng || w->rng == 0)
        w->rng = (uint64_t)now_ms() * 2654435761u + (uint64_t)w->index + 1;

    w->sched = sched_new(worker_prepare, worker_after, w);
    if (!w->sched) {
        snprintf(err, errlen, "cannot set up the worker's event loop: %s", strerror(errno));
        return -1;
    }
    w->fetch = fetch_new(w->sched);
    if (!w->fetch) {
        snprintf(err, errlen, "cannot set up outbound HTTP (libcurl)");
        return -1;
    }
    w->responder = responder_new(w->sched, w->fetch);
    w->mailbox = mailbox_new(w->sched);
    if (!w->mailbox) {
        snprintf(err, errlen, "cannot set up the worker's mailbox: %s", strerror(errno));
        return -1;
    }
    struct luavm_options lo;
    server_luavm_options(cfg, lualib_dir, &lo);
    lo.sched = w->sched;
    lo.fetch = w->fetch;
    lo.responder = w->responder;
    lo.outbox = s->outbox;
    lo.mailbox = w->mailbox;
    lo.store = s->store;
    if (store_shared(s->store))
        w->redis = shared_connect(store_shared(s->store), w->sched);
    lo.redis = w->redis;
    lo.scripts = s->hub;
    w->vm = luavm_new(&lo, err, errlen);
    if (!w->vm)
        return -1;
    w->verifier = verifier_new(s->ks);
    w->lualib_dir = lualib_dir;
    if (!w->verifier) {
        snprintf(err, errlen, "cannot set up signature checks (OpenSSL)");
        return -1;
    }
    w->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, w, MHD_OPTION_LISTEN_SOCKET,
        w->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, w, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, w,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_bytes,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_END);
    if (!w->mhd) {
        snprintf(err, errlen, "cannot start the HTTP daemon (libmicrohttpd)");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    w->mhd_fd = info ? info->epoll_fd : -1;
    if (w->mhd_fd < 0 || sched_watch(w->sched, w->mhd_fd, EPOLLIN, on_mhd_ready, w) < 0) {
        snprintf(err, errlen, "cannot set up the worker's event loop: %s", strerror(errno));
        return -1;
    }
    w->sweep = sched_timer_add(w->sched, 1000, on_sweep, w);
    w->runner = schedules_runner_new(s->schedules, w->sched, w->vm, w->redis, w->index == 0,
                                     worker_config, w);
    schedules_runner_journal(w->runner, s->journal);
    return 0;
}

struct server *server_new(const struct config *c, const char *lualib_dir,
                          const struct verify_keyset *ks, struct scripts_hub *hub, char *err,
                          size_t errlen)
{
    struct sockaddr_storage ss;
    unsigned sslen;
    int loopback;
    if (config_parse_listen(c->listen, &ss, &sslen, &loopback, err, errlen) < 0)
        return NULL;
    struct server *s = xcalloc(1, sizeof *s);
    s->cfg = c;
    s->ks = ks;
    pthread_mutex_init(&s->conf_mu, NULL);
    s->conf_cfg = c;
    s->conf_ks = ks;
    s->hub = hub;
    s->started_at = time(NULL);
    if (c->replay_window_s > 0)
        s->replay = replay_new(c->replay_window_s * 1000LL, (size_t)c->replay_memory);
    s->nworkers = (int)c->workers;
    if (s->nworkers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->nworkers = n > 0 ? (int)n : 1;
    }
    s->workers = xcalloc((size_t)s->nworkers, sizeof *s->workers);
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].index = i;
        s->workers[i].listen_fd = -1;
    }
    char why[512];
    if (claim_port(&ss, sslen, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s", c->listen, why);
        server_free(s);
        return NULL;
    }
    char obox_err[512];
    s->outbox = outbox_open(c, 0, obox_err, sizeof obox_err);
    if (!s->outbox) {
        snprintf(err, errlen, "outbox: %s", obox_err);
        server_free(s);
        return NULL;
    }
    s->store = store_open(c, obox_err, sizeof obox_err);
    if (!s->store) {
        snprintf(err, errlen, "store: %s", obox_err);
        server_free(s);
        return NULL;
    }
    char host_id[200], hn[128] = "";
    gethostname(hn, sizeof hn - 1);
    snprintf(host_id, sizeof host_id, "%s:%ld", hn[0] ? hn : "host", (long)getpid());
    s->schedules = schedules_new(s->store, hub, host_id);
    /* Its own memory: replay_memory = 0 (Cliq calls by timestamp only)
     * must not let a sender's retry run a delivery twice. */
    s->hook_ids = replay_new(86400LL * 1000, (size_t)c->hook_id_memory);
    s->pacer = shared_pacer_new(store_shared(s->store), c);
    /* The journal's size is set at start (SIGHUP does not change it). */
    s->journal = journal_new((size_t)c->journal_calls, (size_t)c->journal_entry_bytes);
    journal_set_notify(s->journal, on_journal_change, s);
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errlen, "cannot make the console's secret: getrandom: %s", strerror(errno));
        server_free(s);
        return NULL;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(s->console_secret + 2 * i, 3, "%02x", rnd[i]);
    outbox_share_pacing(s->outbox, s->pacer);
    for (int i = 0; i < s->nworkers; i++) {
        if (worker_init(s, &s->workers[i], &ss, sslen, lualib_dir, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: %s", c->listen, why);
            server_free(s);
            return NULL;
        }
    }
    if (sharers_found(s, &ss)) {
        snprintf(err, errlen,
                 "%s: address already in use: another process (another cliqhost?) started "
                 "listening there at the same moment; stop it or choose another --listen",
                 c->listen);
        server_free(s);
        return NULL;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

int server_start(struct server *s, char *err, size_t errlen)
{
    /* Workers leave signals to the main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e) {
            snprintf(err, errlen, "cannot start worker %d: %s", i, strerror(e));
            rc = -1;
            break;
        }
        w->started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void server_stop(struct server *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        if (!w->started)
            continue;
        /* Script code that never pauses is stopped when the grace ends,
         * whatever its own limits. */
        luavm_stop_by(w->vm, sched_clock_ms() + w->cfg->shutdown_grace_s * 1000);
        sched_stop(w->sched);
    }
    for (int i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started) {
            pthread_join(s->workers[i].thread, NULL);
            s->workers[i].started = 0;
        }
    }
}

void server_free(struct server *s)
{
    if (!s)
        return;
    server_stop(s);
    /* The outbox goes first: with the workers stopped nothing submits, and
     * once it is closed nothing writes to their mailboxes. */
    outbox_close(s->outbox);
    shared_pacer_free(s->pacer);
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        /* A running daemon owns its listening socket (and closes it); a
         * worker that ran has already closed it after quiescing. */
        /* Handlers first (their waits use the loop and outbound HTTP),
         * then deliveries, then the connections. */
        schedules_runner_free(w->runner); /* its runs' tasks go with the runtime */
        luavm_free(w->vm);
        redis_conn_free(w->redis); /* after the handlers, whose waits it answers */
        mailbox_free(w->mailbox);
        responder_free(w->responder); /* tells the late replies' notes */
        if (w->mhd)
            MHD_stop_daemon(w->mhd);
        else if (w->listen_fd >= 0)
            close(w->listen_fd);
        free_spare_calls(w); /* after the daemon, whose last calls end there */
        fetch_free(w->fetch);
        sched_free(w->sched);
        verifier_free(w->verifier);
    }
    free(s->workers);
    /* After the workers' states: nothing runs a store call any more. */
    schedules_free(s->schedules);
    store_close(s->store);
    replay_free(s->replay);
    replay_free(s->hook_ids);
    journal_free(s->journal);
    pthread_mutex_destroy(&s->conf_mu);
    free(s);
}

void server_luavm_options(const struct config *cfg, const char *lualib_dir,
                          struct luavm_options *lo)
{
    *lo = (struct luavm_options){
        .scripts_dir = cfg->scripts,
        .lualib_dir = lualib_dir,
        .script_env = cfg->script_env,
        .nscript_env = cfg->nscript_env,
        .max_script_bytes = (size_t)cfg->max_script_bytes,
        .max_reply_bytes = (size_t)cfg->max_reply_bytes,
        .error_reply = cfg->error_reply,
        .limit_reply = cfg->limit_reply,
        .max_run_ms = cfg->max_run_ms,
        .max_cpu_ms = cfg->max_cpu_ms,
        .max_memory = (size_t)cfg->max_memory_bytes,
        .max_task_memory = (size_t)cfg->max_handler_memory_bytes,
        .response_url_ttl_ms = cfg->response_url_ttl_s * 1000,
        .http_timeout_ms = cfg->http_timeout_ms,
        .max_http_response = (size_t)cfg->max_http_response_bytes,
        .http_allow = cfg->http_allow,
        .nhttp_allow = cfg->nhttp_allow,
        .response_url_allow = cfg->response_url_allow,
        .nresponse_url_allow = cfg->nresponse_url_allow,
        .attachment_ttl_ms = cfg->attachment_ttl_s * 1000,
        .max_attachment = (size_t)cfg->max_attachment_bytes,
        .cfg = cfg,
    };
}

unsigned server_port(const struct server *s)
{
    return s->port;
}

int server_workers(const struct server *s)
{
    return s->nworkers;
}
