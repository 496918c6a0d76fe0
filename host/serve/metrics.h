/*
 * metrics: the host's counters, for GET /metrics (Prometheus text format).
 *
 * Each worker owns one `struct metrics` and is the only writer of it
 * (relaxed atomic adds: no lock, no shared cache line between workers); a
 * scrape, on whichever worker serves it, sums every worker's.
 */
#ifndef CLIQHOST_METRICS_H
#define CLIQHOST_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

struct buf;
struct request_dispatch;

/* Handlers in the request catalogue, plus one row for calls that reached
 * no handler (refused before dispatch). */
#define METRICS_ROWS     40
#define METRICS_STATUSES 12 /* see metrics.c: 200 202 400 401 403 404 405 413 431 500 503 other */
#define METRICS_BUCKETS  14 /* latency histogram buckets, +Inf included */
#define METRICS_TYPES    10 /* request types (hook among them), plus "none" */

enum metrics_late {
    LATE_DELIVERED,
    LATE_FAILED,
    LATE_DROPPED,
    LATE_SKIPPED,
    LATE_REFUSED,
    LATE_KINDS
};
enum metrics_console { CONSOLE_CALL, CONSOLE_REPLAY, METRICS_CONSOLE_KINDS };
enum metrics_fail { FAIL_ERROR, FAIL_CPU, FAIL_MEMORY, FAIL_TIME, FAIL_KINDS };

struct metrics {
    atomic_ullong requests[METRICS_ROWS][METRICS_STATUSES];
    atomic_ullong latency[METRICS_TYPES][METRICS_BUCKETS]; /* cumulative at scrape, not here */
    atomic_ullong latency_sum_us[METRICS_TYPES];
    atomic_ullong latency_count[METRICS_TYPES];
    atomic_ullong handoffs;
    atomic_ullong late[LATE_KINDS];
    atomic_ullong failures[FAIL_KINDS];
    atomic_ullong refused[5]; /* signature, stale, future, replayed, no_timestamp */
    atomic_ullong lua_memory; /* bytes, a gauge */
    atomic_ullong handlers_waiting;
    /* Handler runs the console asked for (not Cliq's: kept out of the
     * request counters), by kind. */
    atomic_ullong console_calls[METRICS_CONSOLE_KINDS];
};

/* A finished callback request: its dispatch (NULL when it reached none),
 * HTTP status and time to the sync reply. */
void metrics_request(struct metrics *m, const struct request_dispatch *d, int status, double ms);
void metrics_add(atomic_ullong *counter, unsigned long long n);
void metrics_set(atomic_ullong *gauge, unsigned long long v);

struct metrics_extra {
    unsigned long long reloads, reload_failures;
    size_t replay_entries;
};

/* Appends the workers' counters, summed, in Prometheus text format. */
void metrics_write(struct metrics *const *workers, int n, const struct metrics_extra *x,
                   struct buf *out);

#endif
