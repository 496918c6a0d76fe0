/*
 * redis: a connection to a Redis server on a worker's loop (hiredis' async
 * API), and a blocking one for the outbox's thread.
 *
 * A redis_conn never blocks its loop: hiredis' socket is watched by the
 * sched. While commands are outstanding the server must send something at
 * least every timeout_ms; a server that does not
 * ("no answer from redis://... in 250 ms") is dropped, since a server that
 * stops answering one command answers none: every command still waiting
 * fails at once, and from then on new commands fail at once too
 * (redis_command returns NULL) until a new connection has been made and
 * has answered its setup. A server answering a queue of commands, or one
 * long answer, is making progress and is not dropped. Reconnection is
 * tried by itself, after 100 ms and then at most every second, so a server
 * that comes back is used again within about a second.
 *
 * The setup commands (AUTH, SELECT, then whatever the owner adds, such as
 * SCRIPT LOAD) go first on every new connection; the connection is up when
 * all of them answered without an error. Commands given while the first
 * connection is being made wait behind the setup (with their timeout);
 * after a failure they fail at once until a connection is up again.
 *
 * A host name in the address is resolved when the target is parsed (at
 * start), not on each reconnection: a worker never waits on DNS.
 */
#ifndef CLIQHOST_REDIS_H
#define CLIQHOST_REDIS_H

#include <stddef.h>

struct sched;
struct redis_conn;
struct redis_req;
struct redisReply;

/* Where a Redis server is, parsed from "redis://[[user]:password@]host[:port][/db]"
 * or "unix:/path/to/redis.sock[?db=N][&password=P]". */
struct redis_target {
    char host[256]; /* numeric address (resolved); "" for a unix socket */
    int port;
    char path[256]; /* unix socket; "" for TCP */
    char user[128];
    char password[256];
    int db;
    char shown[600]; /* the URL with the password masked, for logs */
};

/* Parses and resolves a Redis URL. Returns 0, or -1 with a message that
 * says what is wrong with it. */
int redis_parse_url(const char *url, struct redis_target *t, char *err, size_t errlen);

/* Told when the connection becomes usable (up = 1) or stops being (up = 0,
 * why says what happened: "connection refused", "no answer in 250 ms",
 * "AUTH: WRONGPASS ..."). Called from the loop. */
typedef void (*redis_state_cb)(int up, const char *why, void *ud);

/* A connection on loop `s` to `t` (copied). Setup commands: `nsetup`
 * commands, each an argv of `setup_argc[i]` NUL-terminated strings
 * (copied). Starts connecting at once. Returns NULL only if memory runs
 * out. Caller frees with redis_conn_free. */
struct redis_conn *redis_conn_new(struct sched *s, const struct redis_target *t, long timeout_ms,
                                  const char *const *const *setup, const int *setup_argc,
                                  size_t nsetup, redis_state_cb on_state, void *ud);
/* Drops the connection; commands still waiting are dropped without their
 * callbacks. NULL is fine. */
void redis_conn_free(struct redis_conn *c);
/* 1 while the connection is up. */
int redis_conn_up(const struct redis_conn *c);
/* A new timeout for later commands (SIGHUP). */
void redis_conn_set_timeout(struct redis_conn *c, long timeout_ms);

/* Called once with the reply (borrowed for the call; an error reply is a
 * reply too), or with reply NULL and `err` saying why there is none. Runs
 * from the loop, never from inside redis_command. */
typedef void (*redis_reply_cb)(struct redisReply *reply, const char *err, void *ud);

/* Sends a command (argv is copied). Returns a handle valid until the
 * callback has run or redis_cancel was called; or NULL, with `err` filled
 * ("redis is unreachable: connection refused"), when the connection is down
 * and the command was not sent. */
struct redis_req *redis_command(struct redis_conn *c, int argc, const char **argv,
                                const size_t *argvlen, redis_reply_cb cb, void *ud, char *err,
                                size_t errlen);
/* Forgets a command: its callback will not run. */
void redis_cancel(struct redis_req *r);

/* ---- blocking, for a thread of its own (the outbox's) -------------------- */

struct redis_sync;

/* Connects lazily, on the first command. Caller frees. */
struct redis_sync *redis_sync_new(const struct redis_target *t, long timeout_ms);
void redis_sync_free(struct redis_sync *s);
/* Runs one command, waiting at most the timeout (connecting included).
 * Returns the reply (caller frees with freeReplyObject; an error reply is
 * a reply), or NULL with `err` filled. After a failure the next tries wait
 * a second, so a server that is down costs one timeout a second at most. */
struct redisReply *redis_sync_command(struct redis_sync *s, int argc, const char **argv,
                                      const size_t *argvlen, char *err, size_t errlen);

#endif
