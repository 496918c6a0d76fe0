/*
 * schedules: runs scripts/schedules/<name>.lua at their ticks.
 *
 * The first worker drives them: it follows the scripts snapshot (a saved
 * schedule takes effect from its next tick, a deleted one stops, a broken
 * one keeps its previous version, as the reloader decides), keeps one timer
 * for the nearest tick, and at each tick asks the store for the schedule's
 * lock for that tick (store.h, STORE_SCHED_CLAIM). Every host sharing the
 * store asks; one gets to run it, the others skip it; a run still going
 * makes the tick skipped, and logged once. The run is a task on the
 * worker's runtime like a handler's: same limits, same bindings, its own
 * id in every log line; its outcome goes back to the store, where any host
 * can show it.
 *
 * Ticks missed while no host ran are not run later, unless the schedule
 * says catch_up = true: then, at start, the latest missed one runs once.
 * Without a store that answers (Redis down) a tick is skipped rather than
 * risk running it on every host, and the log says so.
 *
 * Any worker can run a schedule at once for `cliqhost invoke schedule`
 * (schedules_run_now); /status and /metrics read what the driver keeps,
 * under a lock.
 */
#ifndef CLIQHOST_SCHEDULES_H
#define CLIQHOST_SCHEDULES_H

#include <stddef.h>

struct buf;
struct config;
struct journal;
struct luavm;
struct redis_conn;
struct sched;
struct scripts_hub;
struct store;
struct schedules;
struct schedules_runner;

/* What every host's schedules share: the store, the snapshot, this host's
 * name for the records. Borrowed; they outlive it. */
struct schedules *schedules_new(struct store *store, struct scripts_hub *hub, const char *host_id);
/* After every runner is freed. NULL is fine. */
void schedules_free(struct schedules *s);

/* The current settings, for a runner: the worker adopts any new ones. */
typedef const struct config *(*schedules_config_fn)(void *ud);

/* A worker's part: `drive` for the one that keeps the timer (the first
 * worker); the others only run schedules now. Borrowed: the worker's loop,
 * runtime and Redis link (NULL for SQLite). Call on the worker's thread,
 * once its loop runs. */
/* Records the runner's runs in the console's journal (NULL: none); set
 * before the runner starts. */
void schedules_runner_journal(struct schedules_runner *r, struct journal *j);

struct schedules_runner *schedules_runner_new(struct schedules *s, struct sched *sched,
                                              struct luavm *vm, struct redis_conn *rc, int drive,
                                              schedules_config_fn cfg, void *cfg_ud);
/* At shutdown, once the grace is over and while the loop still runs:
 * stops the timer and records the runs at their ticks still going as
 * failed ("dropped at shutdown"), so that their locks do not outlive the
 * host. Returns 1 while those records are still on their way: run the
 * loop a little for them. NULL is fine. */
int schedules_runner_stop(struct schedules_runner *r);
/* Cancels its timer and what it waits for. A runner not stopped first
 * records its dropped runs now, which only SQLite can take without the
 * loop (on Redis the write is cancelled with the rest). NULL is fine. */
void schedules_runner_free(struct schedules_runner *r);

/* Called once when a run started by schedules_run_now ends: the outcome
 * as JSON ({"schedule", "id", "outcome", "ms", "error"?}; caller frees). */
typedef void (*schedules_done_cb)(char *json, size_t len, void *ud);
/* schedules_run_now's refusals besides -1 (no such schedule). */
#define SCHEDULES_BUSY (-2) /* a run of it is going */
#define SCHEDULES_FULL (-3) /* max_handlers are running */

/* Runs schedule `name` now on this worker (not a tick: no lock is taken,
 * and the run is recorded as the schedule's last). `id` is the run's id.
 * Returns 1 when it ended at once (cb already called), 0 when it runs (cb
 * comes later, unless the runner is freed first), or -1 with the reason
 * in err (no such schedule), SCHEDULES_BUSY or SCHEDULES_FULL. */
int schedules_run_now(struct schedules_runner *r, const char *name, const char *id,
                      schedules_done_cb cb, void *ud, char *err, size_t errlen);
/* 1 when a run of this runner is still going. */
size_t schedules_runner_busy(const struct schedules_runner *r);

/* /status's "schedules": a JSON array, each schedule with when it runs,
 * its next tick, whether it runs now and its last run as the store knows
 * it (refreshed at each tick and every few seconds). Thread-safe. */
void schedules_status(struct schedules *s, struct buf *out);
/* /metrics: runs by schedule and outcome. Thread-safe. */
void schedules_metrics(struct schedules *s, struct buf *out);

#endif
