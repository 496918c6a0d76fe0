/*
 * shared: what several hosts on one Redis share, besides the store's keys
 * (store.c): which calls were accepted (replay protection) and how many
 * posts each webhook token sent in the last minute (pacing); and how the
 * host's link to that Redis is doing.
 *
 * One `struct shared` per host (the store owns it). Each worker loop has a
 * connection of its own (shared_connect), never blocking; the outbox's
 * thread has a blocking one (shared_pacer). All of them report to the
 * shared's health: the host logs once when Redis becomes unreachable and
 * once when every connection is up again, and /metrics and /status say
 * which it is now. While Redis is unreachable, replay checks and pacing use
 * this host's memory only (counted as fallbacks), and store calls fail at
 * once.
 *
 * Keys in Redis start with redis_prefix ("cliqhost:"): r:<digest> for an
 * accepted call (kept twice the replay window and a minute), pace:<token hash> for a
 * token's sends of the last minute (a sorted set by time; the hash is of
 * the token's secret, so hosts that call the same token by other names
 * still share its window and the secret never reaches Redis).
 */
#ifndef CLIQHOST_SHARED_H
#define CLIQHOST_SHARED_H

#include <stddef.h>

struct buf;
struct config;
struct redis_conn;
struct redis_req;
struct sched;
struct shared;

/* 1 when the config's store is a Redis (redis://..., unix:...). */
int shared_wanted(const struct config *cfg);

/* Parses the config's Redis address (names are resolved here, once).
 * Returns NULL with a message for a bad address. `cfg` must outlive it. */
struct shared *shared_new(const struct config *cfg, char *err, size_t errlen);
void shared_free(struct shared *sh);
void shared_set_config(struct shared *sh, const struct config *cfg);
/* The address with its password masked. */
const char *shared_shown(const struct shared *sh);
/* The keys' prefix (redis_prefix as at start). */
const char *shared_prefix(const struct shared *sh);

/* A connection for a worker's loop, counted in the health. Caller frees
 * with redis_conn_free. */
struct redis_conn *shared_connect(struct shared *sh, struct sched *s);

/* ---- replay protection --------------------------------------------------- */

enum shared_claim {
    SHARED_CLAIMED,     /* no host accepted this call before */
    SHARED_REPEAT,      /* a host accepted it *age_ms ago */
    SHARED_UNAVAILABLE, /* Redis did not answer: judge by this host's memory */
};
typedef void (*shared_claim_cb)(enum shared_claim r, long long age_ms, void *ud);

struct shared_claim_op;

/* Claims a call by its digest for `keep_ms`, atomically across hosts.
 * Returns the pending claim, whose callback runs once from the loop unless
 * shared_claim_cancel is called first; or NULL when Redis is unreachable
 * now (nothing will be called). */
struct shared_claim_op *shared_claim(struct shared *sh, struct redis_conn *rc,
                                     const unsigned char *digest, size_t len, long long keep_ms,
                                     shared_claim_cb cb, void *ud);
/* Forgets a pending claim; its callback will not run. */
void shared_claim_cancel(struct shared_claim_op *op);
/* Gives a claim back (the claimed call was not handled: its retry must
 * run): deletes it in Redis, without waiting for the answer. */
void shared_forget(struct shared *sh, struct redis_conn *rc, const unsigned char *digest,
                   size_t len);

/* ---- pacing (blocking: the outbox's thread) ------------------------------- */

struct shared_pacer;

/* NULL when the config's store is not a Redis, or its address is bad. */
struct shared_pacer *shared_pacer_new(struct shared *sh, const struct config *cfg);
void shared_pacer_free(struct shared_pacer *p);
/* Takes a send slot for the token whose secret is `secret`, in a window of
 * `per_min` sends in any minute shared by every host. Returns 0 with
 * *wait_ms = 0 (taken) or the ms until a slot frees; -1 when Redis is
 * unreachable (counted: pace by this host's memory alone). */
int shared_pace(struct shared_pacer *p, const char *secret, long per_min, long long *wait_ms);

/* ---- health --------------------------------------------------------------- */

/* Counts a fallback to this host's memory (what: 0 replay, 1 pacing). */
void shared_count_fallback(struct shared *sh, int what);
/* Appends "up" or "down", since when and why, as JSON members. */
void shared_status(struct shared *sh, struct buf *out);
/* Appends the link's figures in Prometheus text format. NULL: nothing. */
void shared_metrics(struct shared *sh, struct buf *out);

#endif
