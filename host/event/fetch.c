/* fetch: outbound HTTP through a curl multi handle on the worker's loop (see fetch.h). */
#include "event/fetch.h"

#include "core/mem.h"
#include "core/ssrf.h"
#include "event/sched.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#ifndef CLIQHOST_VERSION
#define CLIQHOST_VERSION "0"
#endif

/* Most header bytes kept from one response. */
#define HEADERS_MAX (64 * 1024)
/* curl's receive buffer per transfer (its least). */
#define FETCH_READ_BYTES 1024L

struct fetch_xfer {
    struct fetch *f;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    long timeout_ms;
    size_t max_response;
    int too_large;
    int no_room; /* rq->room refused a piece */
    int (*room)(void *ud, size_t more);
    void *room_ud;
    fetch_done_cb cb;
    void *ud;
    struct fetch_result res;
    char errbuf[CURL_ERROR_SIZE];
    struct fetch_xfer *prev, *next; /* every live transfer, for fetch_free */
    struct sched_timer *failed;     /* set when curl refused it at once */
    struct ssrf_allow *guard;       /* a guarded request's allow-list; NULL: not guarded */
    char refused[300];              /* why a connection was refused, for the error */
};

struct fetch {
    struct sched *sched;
    CURLM *multi;
    struct sched_timer *timer;
    struct fetch_xfer *live;
    size_t running;
};

int fetch_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void fetch_global_cleanup(void)
{
    curl_global_cleanup();
}

size_t fetch_running(const struct fetch *f)
{
    return f->running;
}

/* ---- finishing --------------------------------------------------------- */

static void unlink_xfer(struct fetch_xfer *x)
{
    struct fetch *f = x->f;
    if (x->prev)
        x->prev->next = x->next;
    else
        f->live = x->next;
    if (x->next)
        x->next->prev = x->prev;
    f->running--;
}

/* Frees a transfer that is no longer in the multi handle. */
static void free_xfer(struct fetch_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    ssrf_allow_free(x->guard);
    buf_free(&x->res.headers);
    buf_free(&x->res.body);
    free(x);
}

static void describe_error(struct fetch_xfer *x, CURLcode code)
{
    struct fetch_result *r = &x->res;
    if (x->refused[0] && (code == CURLE_COULDNT_CONNECT || code == CURLE_ABORTED_BY_CALLBACK)) {
        snprintf(r->error, sizeof r->error, "%s", x->refused);
    } else if (x->no_room) {
        snprintf(r->error, sizeof r->error,
                 "response larger than the memory left to the handler (%zu bytes received)",
                 x->res.body.len);
    } else if (x->too_large || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(r->error, sizeof r->error, "response larger than %zu bytes", x->max_response);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        r->timed_out = 1;
        snprintf(r->error, sizeof r->error, "timeout after %.1f s", (double)x->timeout_ms / 1000);
    } else {
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
        const char *kind = "network";
        if (code == CURLE_COULDNT_CONNECT)
            kind = "connect";
        else if (code == CURLE_COULDNT_RESOLVE_HOST)
            kind = "resolve";
        else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CONNECT_ERROR ||
                 code == CURLE_SSL_CACERT_BADFILE)
            kind = "tls";
        else if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL)
            kind = "bad url";
        else if (code == CURLE_TOO_MANY_REDIRECTS)
            kind = "redirects";
        snprintf(r->error, sizeof r->error, "%s: %s", kind, detail);
        size_t n = strlen(r->error);
        while (n && (r->error[n - 1] == '\n' || r->error[n - 1] == ' '))
            r->error[--n] = '\0';
    }
}

/* Hands a finished transfer to its owner and frees it. */
static void finish(struct fetch_xfer *x, CURLcode code)
{
    struct fetch_result *r = &x->res;
    if (code == CURLE_OK) {
        r->ok = 1;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        describe_error(x, code);
    }
    unlink_xfer(x);
    x->cb(r, x->ud);
    free_xfer(x);
}

/* Takes finished transfers out of the multi handle and reports them. */
static void check_done(struct fetch *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct fetch_xfer *x = NULL;
        CURL *easy = m->easy_handle;
        CURLcode code = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(f->multi, easy);
        finish(x, code);
    }
}

/* ---- curl's callbacks -------------------------------------------------- */

static void on_socket_ready(struct sched *s, int fd, uint32_t events, void *ud)
{
    (void)s;
    struct fetch *f = ud;
    int flags = 0;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(f->multi, fd, flags, &running);
    check_done(f);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct fetch *f = userp;
    if (what == CURL_POLL_REMOVE) {
        if (socketp) {
            sched_unwatch(f->sched, fd);
            curl_multi_assign(f->multi, fd, NULL);
        }
        return 0;
    }
    uint32_t ev = 0;
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    if (socketp)
        return sched_modify(f->sched, fd, ev, on_socket_ready, f) < 0 ? -1 : 0;
    if (sched_watch(f->sched, fd, ev, on_socket_ready, f) < 0)
        return -1;
    curl_multi_assign(f->multi, fd, f); /* marks the socket as watched */
    return 0;
}

static void on_timer(struct sched *s, void *ud)
{
    (void)s;
    struct fetch *f = ud;
    f->timer = NULL;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct fetch *f = userp;
    sched_timer_cancel(f->sched, f->timer);
    f->timer = NULL;
    if (timeout_ms >= 0)
        f->timer = sched_timer_add(f->sched, timeout_ms, on_timer, f);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct fetch_xfer *x = ud;
    size_t len = size * n;
    if (x->res.body.len + len <= x->max_response && x->room && x->room(x->room_ud, len) < 0) {
        x->no_room = 1;
        return 0;
    }
    if (x->res.body.len + len > x->max_response || buf_add(&x->res.body, data, len) < 0) {
        x->too_large = 1;
        return 0; /* makes curl stop with a write error */
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct fetch_xfer *x = ud;
    size_t len = size * n;
    /* A new status line starts a new response (after a redirect or a
     * 100 Continue): keep only the last one's headers. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        buf_reset(&x->res.headers);
        return len;
    }
    if (len <= 2)
        return len;                      /* the blank line */
    buf_add(&x->res.headers, data, len); /* past the cap, headers are dropped */
    return len;
}

/* ---- the guard (ssrf.h) ------------------------------------------------ */

int fetch_url_parts(const char *url, char *scheme, size_t schemelen, char *host, size_t hostlen)
{
    int rc = -1;
    char *s = NULL, *h = NULL;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK)
        goto cleanup;
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
        h = NULL; /* file:///path has none */
    size_t sl = strlen(s), hl = h ? strlen(h) : 0;
    if (sl >= schemelen || hl >= hostlen)
        goto cleanup;
    for (size_t i = 0; i < sl; i++)
        scheme[i] = (char)tolower((unsigned char)s[i]);
    scheme[sl] = '\0';
    memcpy(host, h ? h : "", hl + 1);
    rc = 0;
cleanup:
    curl_free(h);
    curl_free(s);
    curl_url_cleanup(u);
    return rc;
}

/* Whether the guarded transfer x may use a connection to sa, judged with
 * the host of the URL it is on now (after any redirect). Records why not
 * in x->refused, unless an earlier address was refused already (a name
 * with several addresses is reported by the first one curl tried). Called
 * from curl's callbacks. */
static int judge(struct fetch_xfer *x, const struct sockaddr *sa)
{
    if (ssrf_classify(sa) == SSRF_PUBLIC)
        return 1;
    char *url = NULL, *host = NULL;
    long redirects = 0;
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    CURLU *u = curl_url();
    if (u && url &&
        curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
            CURLUE_OK)
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    char why[sizeof x->refused];
    int ok = ssrf_check(x->guard, sa, host, redirects > 0, why, sizeof why) == 0;
    if (!ok && !x->refused[0])
        memcpy(x->refused, why, sizeof why);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Every new connection of a guarded transfer (each address tried, each
 * redirect) is judged here, before a packet is sent to the address. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    struct fetch_xfer *x = ud;
    struct sockaddr_storage ss;
    if (a->addrlen > sizeof ss)
        return CURL_SOCKET_BAD;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, &a->addr, a->addrlen);
    if (!judge(x, (const struct sockaddr *)&ss))
        return CURL_SOCKET_BAD; /* curl tries the next address, or fails: COULDNT_CONNECT */
    return socket(a->family, a->socktype, a->protocol);
}

/* Before each request is sent, on a new connection or on one from the
 * pool: a pooled connection may have been opened by an unguarded request
 * (a post to Cliq) or under an allow-list that has since changed. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    struct fetch_xfer *x = ud;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, primary_ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, primary_ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
    } else {
        snprintf(x->refused, sizeof x->refused,
                 "refused: cannot tell which address the connection goes to");
        return CURL_PREREQFUNC_ABORT;
    }
    if (!judge(x, (const struct sockaddr *)&ss))
        return CURL_PREREQFUNC_ABORT; /* the transfer fails: ABORTED_BY_CALLBACK */
    x->refused[0] = '\0';             /* an address refused before this one no longer matters */
    return CURL_PREREQFUNC_OK;
}

/* ---- the fetch --------------------------------------------------------- */

void fetch_keep_connections(struct fetch *f, long n)
{
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, n);
}

struct fetch *fetch_new(struct sched *s)
{
    struct fetch *f = xcalloc(1, sizeof *f);
    f->sched = s;
    f->multi = curl_multi_init();
    if (!f->multi) {
        free(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    return f;
}

void fetch_free(struct fetch *f)
{
    if (!f)
        return;
    while (f->live)
        fetch_cancel(f, f->live);
    sched_timer_cancel(f->sched, f->timer);
    curl_multi_cleanup(f->multi);
    free(f);
}

/* A transfer curl refused at once reports from the loop, as promised. */
static void on_failed_start(struct sched *s, void *ud)
{
    (void)s;
    struct fetch_xfer *x = ud;
    x->failed = NULL;
    CURLcode code = CURLE_FAILED_INIT;
    if (x->errbuf[0] == '\0')
        snprintf(x->errbuf, sizeof x->errbuf, "could not start the request");
    finish(x, code);
}

struct fetch_xfer *fetch_start(struct fetch *f, const struct fetch_request *rq, fetch_done_cb cb,
                               void *ud)
{
    struct fetch_xfer *x = xcalloc(1, sizeof *x);
    x->f = f;
    x->cb = cb;
    x->ud = ud;
    x->timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms : 1;
    x->max_response = rq->max_response;
    x->room = rq->room;
    x->room_ud = rq->room_ud;
    buf_init(&x->res.headers, HEADERS_MAX);
    buf_init(&x->res.body, rq->max_response);
    x->next = f->live;
    if (f->live)
        f->live->prev = x;
    f->live = x;
    f->running++;

    CURL *e = curl_easy_init();
    x->easy = e;
    CURLcode rc = e ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    if (e) {
        curl_easy_setopt(e, CURLOPT_PRIVATE, x);
        /* curl's receive buffer is its own per transfer, held for the whole
         * wait: 1 KiB instead of 16 takes about 3 KB off every waiting
         * handler (bench/inflight.sh), at about 1.5 ms more CPU per MiB of
         * a large download (more, smaller reads). */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, FETCH_READ_BYTES);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_USERAGENT, "cliqhost/" CLIQHOST_VERSION);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_response);
        if (rq->guard) {
            char err[256];
            const char *setting = rq->allow_setting ? rq->allow_setting : "http_allow";
            x->guard = ssrf_allow_new(setting, rq->allow, rq->nallow, err, sizeof err);
            if (!x->guard) /* validated with the config: cannot happen; allow nothing */
                x->guard = ssrf_allow_new(setting, NULL, 0, err, sizeof err);
            curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
            curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
            curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
            curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
            curl_easy_setopt(e, CURLOPT_PROXY, ""); /* not even from the environment */
        }
        if (rq->max_redirects > 0) {
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(e, CURLOPT_MAXREDIRS, rq->max_redirects);
        }
        x->headers = curl_slist_append(x->headers, FETCH_MARK_LINE);
        for (size_t i = 0; i < rq->nheaders; i++)
            x->headers = curl_slist_append(x->headers, rq->headers[i]);
        /* curl adds "Expect: 100-continue" to larger POSTs, which costs a
         * round trip for nothing here. */
        if (rq->body)
            x->headers = curl_slist_append(x->headers, "Expect:");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
        if (rq->body) {
            x->body = xmalloc(rq->body_len + 1);
            memcpy(x->body, rq->body, rq->body_len);
            x->body[rq->body_len] = '\0';
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        }
        const char *method = rq->method ? rq->method : rq->body ? "POST" : "GET";
        if (strcmp(method, "GET") == 0 && !rq->body)
            curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        else if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "POST") != 0 || !rq->body)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        rc = curl_easy_setopt(e, CURLOPT_URL, rq->url);
    }
    if (rc == CURLE_OK && curl_multi_add_handle(f->multi, e) == CURLM_OK)
        return x;
    snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_easy_strerror(rc));
    x->failed = sched_timer_add(f->sched, 0, on_failed_start, x);
    return x;
}

void fetch_cancel(struct fetch *f, struct fetch_xfer *x)
{
    if (x->failed) {
        sched_timer_cancel(f->sched, x->failed);
    } else if (x->easy) {
        curl_multi_remove_handle(f->multi, x->easy);
    }
    unlink_xfer(x);
    free_xfer(x);
}
