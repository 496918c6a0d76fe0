/*
 * fetch: outbound HTTP on a worker's loop (libcurl's multi interface).
 *
 * Each worker owns one fetch, bound to its sched: curl tells us which
 * sockets to watch and when to wake it, and the loop drives the transfers.
 * Nothing here blocks. A transfer's callback runs from the loop, outside
 * any curl callback, so it may start or cancel other transfers.
 *
 * Every response body is collected up to the request's cap; past it the
 * transfer fails with a clear error instead of growing. TLS peers are
 * verified (curl's default); only http and https URLs are allowed, also
 * for redirects, which are off unless asked for.
 *
 * A guarded request (a script's) connects only to public addresses and to
 * those its allow-list names (ssrf.h), judged on each address a connection
 * is opened to, after name resolution, for every attempt and redirect;
 * a pooled connection is judged again before it is reused. It uses no proxy
 * from the environment (http_proxy, HTTPS_PROXY, ...), so the address
 * judged is the one the request goes to. The host's own calls to Cliq are
 * not guarded.
 *
 * Every request carries FETCH_MARK_HEADER, which scripts may not set: a
 * request that arrives at a cliqhost with it was sent by a cliqhost (the
 * console refuses such requests, whatever their User-Agent says).
 */
#ifndef CLIQHOST_FETCH_H
#define CLIQHOST_FETCH_H

#include "core/buf.h"

#include <stddef.h>

/* The header every outbound request carries, and its line. */
#define FETCH_MARK_HEADER "X-Cliqhost-Fetch"
#define FETCH_MARK_LINE   FETCH_MARK_HEADER ": 1"

struct sched;
struct fetch;
struct fetch_xfer;

/* Call once at start, before any thread uses fetch. Returns 0 or -1. */
int fetch_global_init(void);
void fetch_global_cleanup(void);

/* Returns NULL if curl cannot make a multi handle. Caller frees. */
struct fetch *fetch_new(struct sched *s);
/* Cancels every transfer still running (their callbacks are not called)
 * and frees the fetch. */
void fetch_free(struct fetch *f);
/* Transfers running now. */
size_t fetch_running(const struct fetch *f);
/* Keeps up to n idle connections open for reuse, whatever the number of
 * transfers running (curl's own default keeps 4 per transfer running, so
 * after a burst, connections are closed as the transfers end). */
void fetch_keep_connections(struct fetch *f, long n);

struct fetch_request {
    const char *method; /* NULL: GET, or POST when there is a body */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t nheaders;
    const char *body; /* copied; NULL: none */
    size_t body_len;
    long timeout_ms;     /* whole transfer */
    size_t max_response; /* body bytes kept at most */
    long max_redirects;  /* 0: redirects are not followed */
    /* 1 for requests a script controls: refuse loopback, private,
     * link-local and other internal addresses unless `allow` names them
     * (http_allow entries, already validated by config_validate). */
    int guard;
    char *const *allow;
    size_t nallow;
    const char *allow_setting; /* the list's name in messages; NULL: "http_allow" */
    /* Asked before each piece of the body is kept: 0 lets it in, -1 ends
     * the transfer ("response larger than the memory left..."). NULL: none. */
    int (*room)(void *ud, size_t more);
    void *room_ud;
};

struct fetch_result {
    int ok;             /* a response arrived (any status) */
    long status;        /* HTTP status when ok */
    char error[300];    /* why not, when !ok: "timeout after 2.0 s", "refused: ...", ... */
    int timed_out;      /* !ok because the timeout passed */
    struct buf headers; /* the final response's header lines, "Name: value\r\n" each */
    struct buf body;
};

/* Called once when the transfer ends. `r` and its buffers are borrowed for
 * the call; take them with buf_take() to keep them. */
typedef void (*fetch_done_cb)(struct fetch_result *r, void *ud);

/* Starts a transfer. Everything in `rq` is copied. Returns a handle that is
 * valid until the callback has run or fetch_cancel() was called. On a
 * request curl refuses at once (a malformed URL), the callback still runs,
 * from the loop's next turn, never from inside this call. */
struct fetch_xfer *fetch_start(struct fetch *f, const struct fetch_request *rq, fetch_done_cb cb,
                               void *ud);
/* Stops a transfer; its callback is not called. */
void fetch_cancel(struct fetch *f, struct fetch_xfer *x);

/* Splits `url` as fetch_start's transfer will read it (curl's own parser):
 * its scheme, lower-case ("https"), and its host as written there
 * ("cliq.zoho.com", "127.0.0.1", "[::1]"; "" when it has none). A URL
 * without a scheme is not guessed at. Returns 0, or -1 when curl cannot
 * parse it or a part does not fit. */
int fetch_url_parts(const char *url, char *scheme, size_t schemelen, char *host, size_t hostlen);

#endif
