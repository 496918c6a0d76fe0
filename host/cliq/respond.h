/*
 * respond: delivers replies to a request's response_url.
 *
 * Cliq gives each request a one-time URL that takes one reply, POSTed as
 * {"output": ...}, for two minutes. A responder (one per worker) posts such
 * a reply through the worker's fetch, retries network errors, 5xx and 429
 * (too many requests) with exponential backoff while the URL is still
 * valid, treats any other 4xx as final, and logs one line per delivery with the request id and
 * outcome (delivered, failed, expired). It is used by req:respond() (the handler waits for the
 * outcome) and for late results after the deadline hand-off (nobody waits). The URL itself is never
 * logged: it is a capability.
 */
#ifndef CLIQHOST_RESPOND_H
#define CLIQHOST_RESPOND_H

#include <stddef.h>

struct fetch;
struct sched;
struct responder;
struct responder_job;

/* Whether a URL that Cliq hands over (a response_url, an attachment's
 * url) may be fetched: only http and https, and then https to one of
 * Cliq's hosts (datacentre.h) or any of the two to a host that `allow`
 * (`nallow` response_url_allow entries, validated by config_validate)
 * names itself (ssrf_allow_names_host). Nothing is resolved or sent.
 * Returns 0, or -1 with the reason the script and the log see in `why`:
 * "refused: 127.0.0.1 is not one of Cliq's hosts (allow it with
 * response_url_allow)". */
int respond_url_check(const char *url, char *const *allow, size_t nallow, char *why, size_t whylen);

/* Both must outlive the responder. Can't fail. Caller frees. */
struct responder *responder_new(struct sched *s, struct fetch *f);
/* Drops deliveries still pending (each is logged as failed, and its
 * callback is called with RESPONDER_FAILED) and frees. */
void responder_free(struct responder *r);
/* Deliveries in progress. */
size_t responder_pending(const struct responder *r);

enum responder_outcome {
    RESPONDER_DELIVERED,
    RESPONDER_FAILED,  /* tried, or expired */
    RESPONDER_REFUSED, /* respond_url_check said no: nothing was sent */
};

/* The outcome, with a short reason unless delivered ("expired", "HTTP 404:
 * ...", "gave up after 5 attempts: timeout after 10.0 s", "refused: ...").
 * `err` is borrowed. */
typedef void (*responder_cb)(enum responder_outcome outcome, const char *err, void *ud);

/* Posts `body` (len bytes of JSON; taken: freed by the responder) to `url`
 * until it is delivered, fails finally, or `expires_ms` (monotonic) passes;
 * a URL that respond_url_check refuses under `allow` (borrowed for the
 * call) is not tried at all. `kind` names the delivery in the log
 * ("respond", "late"). `cb` (may be NULL) is called once with the outcome,
 * from the loop. Returns a handle valid until then. */
struct responder_job *responder_post(struct responder *r, const char *url, char *const *allow,
                                     size_t nallow, char *body, size_t len, long long expires_ms,
                                     const char *req_id, const char *kind, responder_cb cb,
                                     void *ud);
/* Adds one request header to each attempt of a job that was just posted
 * (before the loop runs again): `name` and `value` are copied, and must be
 * one line each of printable ASCII (the caller encodes). */
void responder_job_header(struct responder_job *j, const char *name, const char *value);
/* Forgets the callback of a job (its waiter is gone); delivery goes on. */
void responder_detach(struct responder_job *j);

#endif
