/*
 * journal: the console's memory of the last calls (issue 16).
 *
 * A ring of the last `journal_calls` calls (Cliq's calls, hooks, the
 * console's own), shared by the workers behind one mutex. Each entry holds
 * what the call brought and what came of it: the body as received, the
 * signature check, the dispatch, the sync reply, and the events that
 * followed (late replies, the script's posts, requests and log lines).
 * Every entry is capped at `journal_entry_bytes`: what would pass the cap
 * is cut or left out and the entry says so, so the journal's memory is
 * bounded by journal_calls x journal_entry_bytes. Nothing goes to disk.
 *
 * Secrets (webhook tokens, zapikey=...) are masked with log_redact when an
 * entry is read out (journal_get), so the calls' own path only copies;
 * journal_body gives the body as received, for a replay.
 *
 * Each change bumps the entry's sequence number; a watcher (the console's
 * event stream) asks for the entries changed since the last number it saw.
 */
#ifndef CLIQHOST_JOURNAL_H
#define CLIQHOST_JOURNAL_H

#include <stddef.h>

struct buf;
struct journal;

/* Called after each change while journal_watchers() > 0; from whichever
 * thread made the change, outside the journal's lock. */
typedef void (*journal_notify_fn)(void *ud);

/* A journal of `calls` entries of at most `entry_bytes` each. Returns NULL
 * for calls == 0 (no journal: every function below takes NULL and does
 * nothing). Caller frees with journal_free. */
struct journal *journal_new(size_t calls, size_t entry_bytes);
void journal_free(struct journal *j);
void journal_set_notify(struct journal *j, journal_notify_fn fn, void *ud);

/* Counts a watcher in or out: changes notify only while one is counted. */
void journal_watch(struct journal *j, int delta);
int journal_watchers(const struct journal *j);

/* Starts an entry for a call of `kind` ("call", "hook", "schedule",
 * "console", "replay") with its request id and body (copied, cut to the
 * cap). Returns its id (> 0), or 0 without a journal. The
 * oldest entry makes room. */
unsigned long long journal_begin(struct journal *j, const char *kind, const char *request_id,
                                 const char *body, size_t len);

/* Sets the signature check: "ok", "skipped" or what refused it, and the
 * key's index (-1: none). */
void journal_signature(struct journal *j, unsigned long long id, const char *result, int key);

/* Sets what was dispatched: type, name and handler (any may be NULL). */
void journal_dispatch(struct journal *j, unsigned long long id, const char *type, const char *name,
                      const char *handler);

/* Sets the sync reply: HTTP status, body (copied, cut), and the
 * ms since the call arrived; late: it was the interim reply at the
 * deadline (the handler's result goes later). */
void journal_reply(struct journal *j, unsigned long long id, int status, const char *body,
                   size_t len, long long ms, int late);

/* Appends an event: `json` is one JSON object (copied; left out with a
 * note when the entry is full). */
void journal_event(struct journal *j, unsigned long long id, const char *json, size_t len);

/* Sets the task's CPU time (ms) and peak memory (bytes). */
void journal_usage(struct journal *j, unsigned long long id, double cpu_ms, size_t peak_bytes);

/* Appends the list (newest first) as a JSON object {"calls":[summaries],
 * "kept":n,"max":n,"entry_bytes":n,"bytes":n} to out. */
void journal_list(struct journal *j, struct buf *out);

/* Appends the whole entry as JSON to out. Returns 0, or -1 when the id is
 * not (or no longer) in the journal. */
int journal_get(struct journal *j, unsigned long long id, struct buf *out);

/* The most bytes journal_get appends for any entry: the body and reply are
 * written as JSON strings, where a control byte takes six ("\u0001"), so
 * a buffer of this much always holds the whole entry. */
size_t journal_get_max(const struct journal *j);

/* Copies the entry's body (caller frees *body); *cut: it passed the cap
 * and is not whole. Returns 0, or -1 when the id is not in the journal. */
int journal_body(struct journal *j, unsigned long long id, char **body, size_t *len, int *cut);

/* Appends a Server-Sent Event ("event: call\ndata: {summary}\n\n") for
 * each entry changed after *seq, oldest change first, and sets *seq to the
 * newest change appended. Returns the number of events, or -1 when out's
 * maximum cannot hold them all (a watcher too far behind). */
long journal_changes(struct journal *j, unsigned long long *seq, struct buf *out);

/* The newest change's number (what a new watcher starts from). */
unsigned long long journal_seq(struct journal *j);

/* Bytes the entries hold now (bodies, replies, events). */
size_t journal_bytes(struct journal *j);

/* Appends the journal's gauges to a Prometheus text: the calls kept and
 * the bytes they hold. Nothing without a journal. */
void journal_metrics(struct journal *j, struct buf *out);

#endif
