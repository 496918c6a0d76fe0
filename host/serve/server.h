/*
 * server: the HTTP surface and the share-nothing workers.
 *
 * Each worker thread owns a listening socket on the shared port
 * (SO_REUSEPORT, so the kernel spreads connections), a libmicrohttpd daemon
 * in external-polling epoll mode driven by the worker's own sched loop, a
 * verifier and a luavm. A request is read, verified, dispatched, run and
 * answered on one thread (DESIGN.md "Share-nothing workers").
 *
 *   POST /          the callback URL Cliq calls
 *   GET  /healthz   200 while serving
 *   GET  /status    the scripts served and what failed to load (admin.h)
 *   GET  /metrics   Prometheus' text (admin.h)
 * Everything else gets a JSON error (DESIGN.md "HTTP surface").
 */
#ifndef CLIQHOST_SERVER_H
#define CLIQHOST_SERVER_H

#include <stddef.h>

struct config;
struct luavm_options;
struct scripts_hub;
struct verify_keyset;
struct server;

/* Binds the sockets and builds every worker (daemon, verifier, Lua state);
 * no thread runs yet. `ks` may be NULL only when checks are off. Both must
 * outlive the server. Returns NULL with a reason in err. */
struct server *server_new(const struct config *c, const char *lualib_dir,
                          const struct verify_keyset *ks, struct scripts_hub *hub, char *err,
                          size_t errlen);
/* New settings and keys (SIGHUP): each worker takes them before its next
 * request; handlers in flight finish under the old ones. Both must outlive
 * the server. The settings a running host cannot change (listen, workers,
 * scripts, data_dir, lualib) must be the same as before. */
void server_reconfigure(struct server *s, const struct config *c, const struct verify_keyset *ks);
/* Starts the worker threads. Returns 0 or -1 with a reason. */
int server_start(struct server *s, char *err, size_t errlen);
/* Stops accepting, finishes what is in flight, and joins the workers. */
void server_stop(struct server *s);
void server_free(struct server *s);

/* Fills the luavm options the settings call for (without the worker's
 * loop, fetch and responder). Borrows the settings' strings. */
void server_luavm_options(const struct config *cfg, const char *lualib_dir,
                          struct luavm_options *lo);

/* The port actually bound (useful with port 0). */
unsigned server_port(const struct server *s);
int server_workers(const struct server *s);

#endif
