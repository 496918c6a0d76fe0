/*
 * bind_http: `http.request` and `sleep` for scripts.
 *
 *   http.request{ url=, method="GET", headers={}, body=nil, timeout=10, redirects=0 }
 *       -> { status=, headers={<lower-case name>=value}, body= } | nil, err
 *   sleep(seconds)
 *
 * Both wait without blocking the worker: they start their work on the
 * worker's loop and yield the handler's coroutine (see vm_wait). A
 * request's timeout never reaches past the handler's run-time limit, and its
 * response is capped (max_http_response_bytes). TLS peers are verified;
 * redirects are followed only when `redirects` allows. Wrong argument
 * types raise; failures of the request itself return nil and a message.
 */
#ifndef CLIQHOST_BIND_HTTP_H
#define CLIQHOST_BIND_HTTP_H

#include <lua.h>

/* Sets `http` and `sleep` in the table at env_idx. [-0, +0] */
void bind_http_open(lua_State *L, int env_idx);

/* Pushes a table of response headers parsed from "Name: value\r\n" lines
 * (names lower-cased; repeated headers joined with ", "). [-0, +1] */
void bind_http_push_headers(lua_State *L, const char *lines, size_t len);

#endif
