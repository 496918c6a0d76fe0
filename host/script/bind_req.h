/*
 * bind_req: the request object a handler gets, and its methods and those of
 * its attachments.
 *
 *   req:respond(msg)   -> true | nil, err
 *       POSTs {"output": msg} to the request's response_url once, while it
 *       is valid, and waits for the outcome (see respond.h for retries).
 *       err: "none" (no response_url), "used" (called before), "expired",
 *       or why the delivery failed.
 *   attachment:download() -> bytes | nil, err
 *       Fetches params.attachments[i].url (Cliq allows one GET within a
 *       minute of the request); the bytes are kept for the rest of the
 *       request, so a second call returns them without fetching. After
 *       attachment_ttl_s: nil, "expired", without trying.
 */
#ifndef CLIQHOST_BIND_REQ_H
#define CLIQHOST_BIND_REQ_H

#include <lua.h>

struct luavm_call;

/* Makes the metatables of the request object and its attachments (in the
 * registry). [-0, +0] */
void bind_req_open(lua_State *L);

/* Builds the request object a handler gets from the call's parsed body:
 * body, params (attachments get their download() method), type, name,
 * handler, action, id, response_url, timestamp. Needs the metatables of
 * bind_req_open. Allocates: call in protected mode. [-0, +1] */
void bind_req_push_request(lua_State *L, const struct luavm_call *c);

/* Builds what a hook's receive(req) gets: name, id, method, body (the
 * decoded JSON, or the text when the body is not JSON), text (the raw
 * body), headers (lower-case name -> value), query (name -> value). No
 * methods. Allocates: call in protected mode. [-0, +1] */
void bind_req_push_hook(lua_State *L, const struct luavm_call *c);

/* Builds what a schedule's run(job) gets: name, id, scheduled_at (the
 * tick, Unix seconds), catch_up. Allocates: protected mode. [-0, +1] */
void bind_req_push_job(lua_State *L, const struct luavm_call *c);

#endif
