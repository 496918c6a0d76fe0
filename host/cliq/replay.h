/*
 * replay: refusing replayed and stale calls.
 *
 * A signed call stays valid for anyone who captured it, so the host also
 * checks the body's `timestamp` (epoch ms, which Cliq signs with the body):
 * a call more than the window older or newer than the host's clock is
 * refused, and so is a second call whose body was already accepted within
 * the window. The key is the body, what the signature covers, not the
 * header's text: the same call with its signature spelt otherwise is still
 * a repeat. Accepted bodies are remembered by a 64-bit hash,
 * in buckets by timestamp, so whole buckets expire at once; the memory is
 * capped (the oldest bucket goes early when the cap is reached, and the log
 * says so). One replay guard is shared by every worker, behind a mutex held
 * for a hash lookup.
 */
#ifndef CLIQHOST_REPLAY_H
#define CLIQHOST_REPLAY_H

#include <stddef.h>

struct replay;

/* window_ms: how far a timestamp may be from the clock (> 0).
 * max_entries: calls remembered at most; 0: repeats are not
 * checked, only timestamps. Returns NULL on allocation failure. */
struct replay *replay_new(long long window_ms, size_t max_entries);
void replay_free(struct replay *r);

enum replay_result {
    REPLAY_OK,
    REPLAY_STALE,  /* older than the window */
    REPLAY_FUTURE, /* newer than the window */
    REPLAY_REPEAT, /* this body was accepted already */
};

/* Checks a verified call's timestamp and body, given as its digest (what
 * its signature covers), and remembers the body when accepted. *age_ms gets now -
 * timestamp, or for a repeat how long ago the first was accepted. */
enum replay_result replay_check(struct replay *r, long long timestamp_ms, long long now_ms,
                                const unsigned char *digest, size_t len, long long *age_ms);

/* replay_check without remembering the call: what it would answer. */
enum replay_result replay_peek(struct replay *r, long long timestamp_ms, long long now_ms,
                               const unsigned char *digest, size_t len, long long *age_ms);

/* For names that come back with a new timestamp each time (a webhook's
 * delivery id, resent later): REPLAY_REPEAT when `digest` was seen within
 * the window before now_ms (whatever bucket it went to), else remembers it
 * as seen now and answers REPLAY_OK. */
enum replay_result replay_seen(struct replay *r, long long now_ms, const unsigned char *digest,
                               size_t len, long long *age_ms);

/* Forgets a call replay_check (or replay_seen, with its now_ms) remembered
 * with this timestamp and digest
 * (it was not handled after all: a retry must not be a repeat). */
void replay_forget(struct replay *r, long long timestamp_ms, const unsigned char *digest,
                   size_t len);

/* Calls remembered now. */
size_t replay_entries(struct replay *r);

#endif
