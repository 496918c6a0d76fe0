/*
 * bind_req: the methods of the request object and of its attachments.
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

/* Push the method tables used as __index of the request and attachment
 * metatables. [-0, +1] each */
void bind_req_push_request_methods(lua_State *L);
void bind_req_push_attachment_methods(lua_State *L);

#endif
