/*
 * outbox: every post to Cliq's incoming-webhook endpoints, kept in SQLite
 * until it is delivered or fails for good.
 *
 * One outbox per process, with its own thread, loop, HTTP client and
 * SQLite connection (data_dir/outbox.db, WAL). Workers hand it posts
 * through its mailbox; it writes them to the database in one transaction
 * per loop turn (so a post that was accepted survives a crash of the
 * process), sends them with at most `post_concurrency` in flight, paces
 * each webhook token below `post_rate_per_min`, retries network errors and
 * 5xx with exponential backoff and jitter, honours 429's Retry-After, and
 * keeps final failures (other 4xx, or too old) with their reason. Outcomes
 * go back to the submitting thread's mailbox.
 *
 * Caps keep the disk bounded: a post's size, and what waits per token and
 * in all, in posts and bytes, are checked when a post is handed over,
 * against counts kept in memory (and recounted from the database every
 * 10 s, since other processes queue posts too). Failed posts are kept
 * within the total only while new posts do not need their room: the
 * oldest give way first.
 *
 * A post names its token; the secret is looked up in the configuration
 * only when the post is sent, so no token is ever written to the database
 * or to a log line. Delivered posts are deleted; per token, the counts and
 * the last 50 calls are kept for `cliqhost tokens`.
 *
 * Other processes (`cliqhost post`, `cliqhost outbox retry`, another host)
 * may use the same database: a post being sent is leased, so two
 * deliverers never send the same post at once. A host never sends or fails
 * a post whose token its config does not name or gives no value: it
 * leaves it queued for a host that has the token, says why once in the
 * log and in the post's row (`cliqhost outbox` shows it as held), and
 * counts no attempt. Post ids are never reused.
 */
#ifndef CLIQHOST_OUTBOX_H
#define CLIQHOST_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct mailbox;
struct outbox;

enum post_kind { POST_CHANNEL, POST_BOT_MESSAGE, POST_BOT_INCOMING, POST_APP_INCOMING };

/* What to post. All strings are owned by the post (outbox_post_free). */
struct post {
    enum post_kind kind;
    char *token;  /* the token's name in the config */
    char *target; /* channel unique name, bot unique name or app id */
    char *as_bot; /* channel posts as this bot (bot_unique_name), or NULL */
    char *appkey; /* application incoming: the app key (kept in the database) */
    char *base;   /* API base URL, "https://cliq.zoho.eu" */
    char *body;   /* JSON */
    size_t len;
    char req_id[48]; /* the request that made it, for the log; "" for none */
};

void outbox_post_free(struct post *p);
/* "channel", "bot message", ... Static storage. */
const char *outbox_kind_name(enum post_kind k);

/* How a post ended, as told to its submitter. */
enum outbox_state { OUTBOX_ACCEPTED, OUTBOX_DELIVERED, OUTBOX_FAILED };

struct outbox_outcome {
    int64_t id; /* the post's id in the outbox */
    enum outbox_state state;
    long status; /* last HTTP status, 0 if none */
    char *error; /* for FAILED: why; else NULL */
    char *reply; /* for DELIVERED: the endpoint's body (may be empty) */
    size_t reply_len;
};

/* Called in the submitter's thread (through its mailbox). Owns nothing of
 * the outcome after it returns. */
typedef void (*outbox_cb)(const struct outbox_outcome *o, void *ud);

/* Opens (creating) data_dir/outbox.db and starts the outbox thread. A
 * data_dir this process cannot write (or create) is refused, naming the
 * user and what to do; so do the command-line functions below. `cfg`
 * is borrowed (tokens, rates) and must outlive the outbox. With own_only
 * (`cliqhost post`) it sends only the posts submitted to it, and leaves
 * the rest to the host. Returns NULL with a reason. */
struct outbox *outbox_open(const struct config *cfg, int own_only, char *err, size_t errlen);
/* New settings (SIGHUP): tokens, pacing, limits. `cfg` must outlive the
 * outbox. */
void outbox_set_config(struct outbox *o, const struct config *cfg);
/* Paces posts with the other hosts on one Redis from now on: `p` (borrowed;
 * it must outlive the outbox) takes a slot in each token's shared window
 * before a post leaves. Thread-safe. */
struct shared_pacer;
void outbox_share_pacing(struct outbox *o, struct shared_pacer *p);
/* Stops sending anything new, lets the sends in flight finish (up to their
 * timeout), writes every outcome, and frees the outbox. Posts not sent stay
 * queued in the database for next time. */
void outbox_close(struct outbox *o);

/* What the channel, bot or app name of a post may not be, or NULL when it
 * is fine: it is one path segment of Cliq's API URL, so "." and ".." (which
 * would step out of /channelsbyname/, /bots/ or /applications/) are
 * refused, like an empty name. Every other byte is percent-encoded. */
const char *outbox_name_problem(const char *name);

/* Whether this process may create and write files in data_dir and write
 * the database `db` there (with its -wal and -shm files); creates data_dir
 * when it is missing. Returns 0, or -1 with what is wrong and what to do,
 * the user named. The store's database (store.h) is checked with it too. */
int outbox_check_data_dir(const char *dir, const char *db, char *err, size_t errlen);

/* Hands a post (taken) to the outbox. Thread-safe. `cb(ud)` is called
 * through `reply_to` once the post is durably queued (wait = 0), or once
 * it is delivered or failed for good (wait = 1). If the mailbox is freed
 * first, `free_ud(ud)` is called instead (may be NULL).
 *
 * Returns 0, or -1 with the reason in err when the caps refuse the post:
 * "outbox: the post is N bytes, over outbox_max_post_bytes (M)", or
 * "outbox full: ..." naming the setting (and the token's name, never its
 * value) when it would take the queue past outbox_max_queued[_bytes] or
 * its token's past outbox_max_queued[_bytes]_per_token. The post is freed
 * then, and neither cb nor free_ud is called: ud stays the caller's. */
int outbox_submit(struct outbox *o, struct post *p, int wait, struct mailbox *reply_to,
                  outbox_cb cb, void (*free_ud)(void *), void *ud, char *err, size_t errlen);

struct buf;
/* Appends the outbox's and the tokens' figures in Prometheus text format
 * (token names only, never secrets). Thread-safe. */
void outbox_metrics(struct outbox *o, struct buf *out);

/* ---- for the command line (no thread needed) ------------------------- */

/* Lists posts waiting or failed (all = include delivered-but-kept: none
 * are kept, so it only adds counts). Returns the number listed. */
int outbox_list(const struct config *cfg, FILE *out, char *err, size_t errlen);
/* Re-queues a failed post (its attempts and age start over; its creation
 * time stays), or drops one. Returns 0, 1 (no such post), or -1 with a
 * reason. */
int outbox_retry(const struct config *cfg, int64_t id, char *err, size_t errlen);
int outbox_drop(const struct config *cfg, int64_t id, char *err, size_t errlen);
/* Writes per-token usage (never the secret). Returns 0 or -1. */
int outbox_tokens_report(const struct config *cfg, FILE *out, char *err, size_t errlen);

#endif
