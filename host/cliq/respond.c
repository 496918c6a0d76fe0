/* respond: replies to response_url with retries while it is valid (see respond.h). */
#include "cliq/respond.h"

#include "cliq/datacentre.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ssrf.h"
#include "event/fetch.h"
#include "event/sched.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Backoff: the first retry after RETRY_FIRST_MS, doubling up to RETRY_MAX_MS,
 * each with up to a fifth of jitter. One attempt waits at most
 * ATTEMPT_TIMEOUT_MS (less when the URL expires sooner). */
#define RETRY_FIRST_MS     250
#define RETRY_MAX_MS       10000
#define ATTEMPT_TIMEOUT_MS 10000
/* The most of an error body quoted in a reason. */
#define REASON_BODY_MAX 120
/* The longest URL host a check looks at (DNS names are 253 at most). */
#define HOST_MAX 256

struct responder_job {
    struct responder *r;
    char *url;
    char *body;
    size_t len;
    char *header; /* one more request header, "Name: value"; NULL: none */
    long long expires_ms;
    long long started_ms;
    char id[48];
    char kind[16];
    int attempts;
    long last_status;
    char last_error[300];
    char refused[HOST_MAX + 100]; /* why respond_url_check refused the URL; "" when it did not */
    responder_cb cb;
    void *ud;
    struct fetch_xfer *xfer;
    struct sched_timer *retry;
    struct responder_job *prev, *next;
};

struct responder {
    struct sched *sched;
    struct fetch *fetch;
    struct responder_job *jobs;
    size_t pending;
    uint64_t rng;
};

int respond_url_check(const char *url, char *const *allow, size_t nallow, char *why, size_t whylen)
{
    char scheme[16], host[HOST_MAX];
    if (fetch_url_parts(url, scheme, sizeof scheme, host, sizeof host) < 0) {
        snprintf(why, whylen, "refused: not a URL");
        return -1;
    }
    int https = strcmp(scheme, "https") == 0;
    if (!https && strcmp(scheme, "http") != 0) {
        snprintf(why, whylen, "refused: only http and https URLs are allowed, not %s", scheme);
        return -1;
    }
    if (!host[0]) {
        snprintf(why, whylen, "refused: the URL has no host");
        return -1;
    }
    char err[256];
    struct ssrf_allow *a = ssrf_allow_new("response_url_allow", allow, nallow, err, sizeof err);
    int named = a && ssrf_allow_names_host(a, host);
    ssrf_allow_free(a);
    if (named)
        return 0;
    if (datacentre_is_cliq_host(host)) {
        if (https)
            return 0;
        snprintf(why, whylen, "refused: Cliq's hosts take https only, not %s", scheme);
        return -1;
    }
    snprintf(why, whylen,
             "refused: %s is not one of Cliq's hosts (allow it with response_url_allow)", host);
    return -1;
}

struct responder *responder_new(struct sched *s, struct fetch *f)
{
    struct responder *r = xcalloc(1, sizeof *r);
    r->sched = s;
    r->fetch = f;
    r->rng = (uint64_t)sched_clock_ms() * 6364136223846793005ULL + 1442695040888963407ULL;
    return r;
}

size_t responder_pending(const struct responder *r)
{
    return r->pending;
}

static void log_outcome(struct responder_job *j, const char *outcome, const char *why)
{
    struct buf b;
    buf_init(&b, LOG_LINE_MAX);
    log_kv(&b, "kind", j->kind, strlen(j->kind));
    log_kv(&b, "outcome", outcome, strlen(outcome));
    buf_printf(&b, " attempts=%d", j->attempts);
    if (j->last_status)
        buf_printf(&b, " status=%ld", j->last_status);
    buf_printf(&b, " ms=%lld", sched_clock_ms() - j->started_ms);
    if (why)
        log_kv(&b, "error", why, strlen(why));
    log_msg(strcmp(outcome, "delivered") == 0 ? LOG_INFO : LOG_WARN, j->id, "respond%s", b.data);
    buf_free(&b);
}

/* Ends a job: logs, tells its waiter, frees it. */
static void end_job(struct responder_job *j, enum responder_outcome o, const char *outcome,
                    const char *why)
{
    struct responder *r = j->r;
    log_outcome(j, outcome, why);
    if (j->prev)
        j->prev->next = j->next;
    else
        r->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    r->pending--;
    if (j->cb)
        j->cb(o, why, j->ud);
    free(j->url);
    free(j->body);
    free(j->header);
    free(j);
}

static void attempt(struct responder_job *j);

static void on_retry(struct sched *s, void *ud)
{
    (void)s;
    struct responder_job *j = ud;
    j->retry = NULL;
    attempt(j);
}

/* "HTTP 404: <excerpt>" into j->last_error: at most REASON_BODY_MAX bytes
 * of the answer, each byte that is not printable ASCII shown as '?', so
 * that what an endpoint says reaches the script and the log only as a
 * short line of text. */
static void quote_answer(struct responder_job *j, const struct fetch_result *res)
{
    size_t len = res->body.data ? res->body.len : 0;
    size_t n = len < REASON_BODY_MAX ? len : REASON_BODY_MAX;
    char excerpt[REASON_BODY_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)res->body.data[i];
        excerpt[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    excerpt[n] = '\0';
    snprintf(j->last_error, sizeof j->last_error, "HTTP %ld%s%s%s", res->status, n ? ": " : "",
             excerpt, len > n ? "..." : "");
}

static void on_posted(struct fetch_result *res, void *ud)
{
    struct responder_job *j = ud;
    struct responder *r = j->r;
    j->xfer = NULL;
    if (res->ok) {
        j->last_status = res->status;
        if (res->status >= 200 && res->status < 300) {
            end_job(j, RESPONDER_DELIVERED, "delivered", NULL);
            return;
        }
        quote_answer(j, res);
        if (res->status < 500 && res->status != 429) {
            end_job(j, RESPONDER_FAILED, "failed", j->last_error);
            return;
        }
    } else {
        snprintf(j->last_error, sizeof j->last_error, "%s", res->error);
    }
    /* Retry while the URL is valid. */
    long long backoff = RETRY_FIRST_MS;
    for (int i = 1; i < j->attempts && backoff < RETRY_MAX_MS; i++)
        backoff *= 2;
    if (backoff > RETRY_MAX_MS)
        backoff = RETRY_MAX_MS;
    r->rng = r->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    backoff += (long long)((r->rng >> 33) % (uint64_t)(backoff / 5 + 1));
    if (sched_clock_ms() + backoff >= j->expires_ms) {
        char why[400];
        snprintf(why, sizeof why, "gave up after %d attempt%s (the response_url expires): %s",
                 j->attempts, j->attempts == 1 ? "" : "s", j->last_error);
        end_job(j, RESPONDER_FAILED, "failed", why);
        return;
    }
    j->retry = sched_timer_add(r->sched, backoff, on_retry, j);
}

static void attempt(struct responder_job *j)
{
    if (j->refused[0]) {
        end_job(j, RESPONDER_REFUSED, "refused", j->refused);
        return;
    }
    long long left = j->expires_ms - sched_clock_ms();
    if (left <= 0) {
        end_job(j, RESPONDER_FAILED, "expired", "expired");
        return;
    }
    j->attempts++;
    const char *headers[] = {"Content-Type: application/json; charset=utf-8", j->header};
    struct fetch_request rq = {
        .method = "POST",
        .url = j->url,
        .headers = headers,
        .nheaders = j->header ? 2 : 1,
        .body = j->body,
        .body_len = j->len,
        .timeout_ms = left < ATTEMPT_TIMEOUT_MS ? left : ATTEMPT_TIMEOUT_MS,
        .max_response = 64 * 1024,
    };
    j->xfer = fetch_start(j->r->fetch, &rq, on_posted, j);
}

struct responder_job *responder_post(struct responder *r, const char *url, char *const *allow,
                                     size_t nallow, char *body, size_t len, long long expires_ms,
                                     const char *req_id, const char *kind, responder_cb cb,
                                     void *ud)
{
    struct responder_job *j = xcalloc(1, sizeof *j);
    j->r = r;
    /* Judged now, while `allow` is valid; the refusal is told from the loop
     * like any other outcome. */
    if (respond_url_check(url, allow, nallow, j->refused, sizeof j->refused) == 0)
        j->refused[0] = '\0';
    j->url = xstrdup(url);
    j->body = body;
    j->len = len;
    j->expires_ms = expires_ms;
    j->started_ms = sched_clock_ms();
    snprintf(j->id, sizeof j->id, "%s", req_id);
    snprintf(j->kind, sizeof j->kind, "%s", kind);
    j->cb = cb;
    j->ud = ud;
    j->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = j;
    r->jobs = j;
    r->pending++;
    /* The first attempt starts from the loop, so a caller never sees its
     * callback run inside this call. */
    j->retry = sched_timer_add(r->sched, 0, on_retry, j);
    return j;
}

void responder_job_header(struct responder_job *j, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    free(j->header);
    j->header = xmalloc(n);
    snprintf(j->header, n, "%s: %s", name, value);
}

void responder_detach(struct responder_job *j)
{
    j->cb = NULL;
    j->ud = NULL;
}

void responder_free(struct responder *r)
{
    if (!r)
        return;
    while (r->jobs) {
        struct responder_job *j = r->jobs;
        if (j->xfer)
            fetch_cancel(r->fetch, j->xfer);
        j->xfer = NULL;
        sched_timer_cancel(r->sched, j->retry);
        j->retry = NULL;
        /* Its callback is told, so what it holds is freed. */
        end_job(j, RESPONDER_FAILED, "failed", "the host stopped before it was delivered");
    }
    free(r);
}
