/*
 * admin: what the host's own endpoints answer an operator, a load balancer
 * or Prometheus: /status (the scripts served, since when, what failed to
 * load), /metrics (Prometheus' text format) and who may ask for /status.
 * /healthz and the routing live in server.c; this module only says what
 * the answers hold.
 */
#ifndef CLIQHOST_ADMIN_H
#define CLIQHOST_ADMIN_H

#include <stddef.h>
#include <time.h>

struct MHD_Connection;
struct journal;
struct metrics;
struct outbox;
struct replay;
struct store;
struct scripts_hub;
struct schedules;

/* What /status reports besides the scripts. Borrowed for the call. */
struct admin_status {
    struct scripts_hub *hub;
    time_t started_at;
    int nworkers;
    const char *scripts_dir;
    int live_reload;
    const char *callback_path; /* where Cliq POSTs (callback_path) */
    struct store *store;       /* scripts' store: its backend and keys */
    struct schedules *schedules;
};

/* The JSON body of GET /status. Caller frees; *len gets its length. */
char *admin_status_body(const struct admin_status *s, size_t *len);

/* The Prometheus text of GET /metrics: every worker's counters summed,
 * the reloads, the replay memory, the outbox, the store, the console's
 * journal (NULL: none), and the bytes of
 * bodies received and not yet verified. Caller frees. */
char *admin_metrics_body(struct metrics *const *workers, int nworkers, struct scripts_hub *hub,
                         struct replay *replay, struct outbox *outbox, struct store *store,
                         struct schedules *schedules, struct journal *journal,
                         long long pending_body_bytes, size_t *len);

/* 1 when the client connected from loopback and no proxy forwarded the
 * request (a proxy on this machine connects from loopback for everyone). */
int admin_client_is_loopback(struct MHD_Connection *conn);

#endif
