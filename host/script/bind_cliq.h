/*
 * bind_cliq: the `cliq` module, posts to Cliq's incoming-webhook endpoints.
 *
 *   cliq.post_channel(channel_unique_name, msg, opts)  opts.as_bot = "bot_unique_name"
 *   cliq.post_bot(bot_unique_name, msg, opts)          opts.userids = {...} | "1,2", opts.broadcast
 *   cliq.bot_incoming(bot_unique_name, payload, opts)
 *   cliq.app_incoming(app_id, payload, opts)           opts.appkey (required)
 *   every opts: token = "default" (a name from the config's tokens), wait = true
 *       -> true | the endpoint's JSON reply (a table) | nil, err
 *
 * A message is a string (sent as {"text": s}) or a table. Every post goes
 * through the outbox (see outbox.h); the call waits, yielding, until it is
 * delivered or failed for good, or with wait = false only until it is
 * durably queued. A token that is unknown, disabled or has no value fails
 * at once. Wrong argument types raise.
 */
#ifndef CLIQHOST_BIND_CLIQ_H
#define CLIQHOST_BIND_CLIQ_H

#include <lua.h>

/* Pushes the module table. [-0, +1] */
void bind_cliq_open(lua_State *L);

#endif
