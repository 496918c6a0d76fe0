/*
 * store: the keys and values scripts keep between calls (the `store`
 * global, script/bind_store.c), one store per host, shared by all its
 * scripts and all its workers.
 *
 * A backend runs operations; the only one built is SQLite in
 * data_dir/store.db (WAL), which survives restarts. Its operations take
 * microseconds, so they run inline on the calling worker's thread, one at a
 * time under the store's lock, each in one short transaction: that is what
 * makes incr and compare-and-swap atomic across workers (measured roughly
 * on the 2-core development machine: a get takes about 4 us of CPU, a
 * write about 16 us, its commit included). synchronous=NORMAL: a write
 * survives a crash of the process, not necessarily a power cut. A busy
 * timeout covers another process holding the database.
 *
 * Values are JSON text (the binding encodes and decodes them). Every key
 * has a version, new on every write; a compare-and-swap (STORE_CAS) writes
 * only when the key still has the version read, which is how store.update
 * retries. Keys with a time to live are absent as soon as it passes and are
 * deleted by a sweep at most once a second (on the next operation, and
 * whenever the key count is read), or at once when the store is full.
 *
 * Schedules (serve/schedules.c) keep their locks and records here too, as
 * the STORE_SCHED_* operations: one record per schedule, shared by every
 * host on the store, so each tick runs once. The records are not script
 * keys: store.get and store.list do not see them, store_max_keys and the
 * key count leave them out, and the sweep never deletes them (SQLite: a
 * table of their own; Redis: P.."sch:"..name, a hash that lives 30 days
 * past its last write, and P.."schs", the set of names).
 *
 * The interface is the one a networked backend (Redis, next) keeps: an
 * operation is described by a struct store_op and answered in a struct
 * store_result that owns its data, so the binding can push the answer
 * from a later callback as well as at once.
 */
#ifndef CLIQHOST_STORE_H
#define CLIQHOST_STORE_H

#include <stddef.h>

struct buf;
struct config;
struct redis_conn;
struct shared;
struct store;
struct store_pending;

/* The longest key, in bytes. */
#define STORE_MAX_KEY 512
/* The most items store.list returns at once, and its default. */
#define STORE_MAX_LIST     1000
#define STORE_DEFAULT_LIST 100

enum store_kind {
    STORE_GET,    /* value and version of key */
    STORE_SET,    /* key = value (only_if_absent: only when absent) */
    STORE_INCR,   /* key += by */
    STORE_CAS,    /* key = value (NULL: delete) when its version is still `version` */
    STORE_DELETE, /* removes key */
    STORE_LIST,   /* keys starting with key, after `after`, at most `limit`
                   * and 8 MiB of values (at least one item) */
    /* Schedules (key = the schedule's name; each atomic across hosts):
     * INIT creates the record with tick = tick_ms and no run, only when
     * there is none, and answers the record's tick (res->tick_ms) either
     * way: older than the latest due tick means every host missed it. */
    STORE_SCHED_INIT,
    /* CLAIM (tick_ms, hold_ms, value = the host's id): res->sched is
     * TAKEN when the record's tick is at or past tick_ms (nothing
     * changes); else BUSY when a run still holds the schedule (the tick
     * is taken, counted as skipped, and only this host hears BUSY); else
     * RUN: this host runs the tick and holds the schedule for hold_ms
     * (after that a crashed host's run no longer makes ticks BUSY).
     * res->tick_ms is the record's tick before the claim (0: no record);
     * res->run_tick_ms the tick of the run that holds it (BUSY). */
    STORE_SCHED_CLAIM,
    /* DONE (tick_ms, value = the outcome, a JSON object
     * {"outcome":"ok"|"failed"|"limit"|"stopped","error":..,"ms":..,"host":..}):
     * releases the hold when that run holds it (or tick_ms is the record's
     * tick) and keeps the outcome as the last run unless a later tick's
     * outcome is there already. Never fails for a lost hold. */
    STORE_SCHED_DONE,
    /* LIST: every record, at most STORE_MAX_LIST (more names is not a case
     * we support: `more` says some were left out), in byte order of names,
     * as items {key = name, value = JSON text {"tick":ms,"held_until":ms
     * (0 when not held),"run_tick":ms,"running_host":"..","started":ms,
     * "skipped":n,"last_skip_tick":ms,"last":{"tick":ms,"finished":ms,
     * ...the DONE outcome's members}}}; run_tick, running_host and started
     * are absent before a first run, last_skip_tick before a first skip,
     * last before a first outcome. */
    STORE_SCHED_LIST,
    STORE_NKINDS
};

/* One operation. The strings are borrowed for the store_run call. */
struct store_op {
    enum store_kind kind;
    const char *key;
    size_t klen;
    const char *value; /* JSON text (SET, CAS; NULL for a CAS that deletes) */
    size_t vlen;
    double ttl_s; /* > 0: the key expires that many seconds after the write */
    int only_if_absent;
    long long by_int; /* INCR: by_is_int ? by_int : by */
    double by;
    int by_is_int;
    long long version; /* CAS: the version read (0: the key was absent) */
    const char *after; /* LIST: start after this key (NULL: at the start) */
    size_t alen;
    long limit;        /* LIST */
    long long tick_ms; /* SCHED_INIT, _CLAIM, _DONE: the tick, Unix ms (0 .. 1e15) */
    long long hold_ms; /* SCHED_CLAIM: how long a run may hold the schedule (0 .. 1e12) */
};

struct store_item {
    char *key;
    size_t klen;
    char *value;
    size_t vlen;
};

enum store_status {
    STORE_OK,
    STORE_NO,   /* SET only_if_absent found the key; CAS found another version */
    STORE_FAIL, /* err says why: "store full: ...", "not a number: KEY", ... */
};

/* A CLAIM's answer (see STORE_SCHED_CLAIM). */
enum store_sched_answer { STORE_SCHED_RUN, STORE_SCHED_TAKEN, STORE_SCHED_BUSY };

/* An operation's answer. Owns its strings: free with store_result_clear. */
struct store_result {
    enum store_status status;
    char err[600];
    char *value; /* GET: the JSON text, NULL when absent */
    size_t vlen;
    long long version; /* GET: the key's version, 0 when absent */
    long long num_int; /* INCR: the new value, num_is_int ? num_int : num */
    double num;
    int num_is_int;
    struct store_item *items; /* LIST */
    size_t nitems;
    int more; /* LIST: more keys with the prefix follow the last item */
    /* LIST with more: where the next page starts after, when that is not
     * the last item's key (a page that stopped at its bound on keys looked
     * at); NULL: the last item's. */
    char *next;
    size_t nlen;
    enum store_sched_answer sched; /* SCHED_CLAIM */
    long long tick_ms;             /* SCHED_*: the record's tick (see the kinds) */
    long long run_tick_ms;         /* SCHED_CLAIM BUSY: the tick of the run holding it */
};

/* Opens the store the config names (store = "sqlite": data_dir/store.db,
 * created, checked writable as the outbox checks its database). `cfg` is
 * borrowed (limits) and must outlive the store. Returns NULL with a reason
 * that names the file and what to do. */
struct store *store_open(const struct config *cfg, char *err, size_t errlen);
/* New settings (SIGHUP): the limits. `cfg` must outlive the store. */
void store_set_config(struct store *s, const struct config *cfg);
/* NULL is fine. */
void store_close(struct store *s);

/* Runs one operation and fills `res` (which the caller clears with
 * store_result_clear). Thread-safe. Returns 1: the answer is there (the
 * SQLite backend always answers at once). */
int store_run(struct store *s, const struct store_op *op, struct store_result *res);
void store_result_clear(struct store_result *res);

/* Called once with an operation's answer, which the callee clears with
 * store_result_clear. */
typedef void (*store_done_cb)(struct store_result *res, void *ud);

/* Starts an operation on either backend. Returns 1 when the answer is in
 * *res already (SQLite; or a Redis that is unreachable now: "store
 * unavailable: ..."), which the caller clears; 0 when it comes later:
 * cb(res, ud) then runs once from rc's loop, unless store_cancel(*pending)
 * is called first. `rc` is the calling loop's Redis connection (NULL for
 * SQLite). The op's strings are copied. */
int store_start(struct store *s, struct redis_conn *rc, const struct store_op *op,
                struct store_result *res, store_done_cb cb, void *ud,
                struct store_pending **pending);
/* Forgets a pending operation: its callback will not run. */
void store_cancel(struct store_pending *p);
/* The link to Redis of a Redis store; NULL for SQLite. */
struct shared *store_shared(struct store *s);

/* Counts a failure found before the backend was asked (a value too large). */
void store_count_error(struct store *s);
/* "sqlite" or "redis". Static storage. */
const char *store_backend(const struct store *s);
/* Keys held now (expired ones swept first). Thread-safe. */
long long store_keys(struct store *s);
/* Appends the store's figures in Prometheus text format. NULL: nothing. */
void store_metrics(struct store *s, struct buf *out);

#endif
