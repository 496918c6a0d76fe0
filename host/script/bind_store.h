/*
 * bind_store: the `store` module scripts see, on the host's store
 * (cliq/store.h): one store per host, shared by all its scripts and
 * workers.
 *
 *   store.get(key)                 -> value | nil (absent) | nil, err
 *   store.set(key, value, opts)    -> true | false (opts.only_if_absent found
 *                                     the key) | nil, err; opts.ttl seconds
 *   store.incr(key, by, opts)      -> the new number | nil, err ("not a
 *                                     number: KEY"); opts.ttl when created
 *   store.update(key, fn, opts)    -> what fn(old) returned (nil: deleted) |
 *                                     nil, "conflict: KEY changed 16 times"
 *   store.delete(key)              -> true | nil, err
 *   store.list(prefix, opts)       -> items, next | nil, err
 *
 * Values are what json carries, encoded by bind_json (store_max_value_bytes
 * caps the text). Keys are non-empty strings of at most 512 bytes; other
 * keys, options of the wrong type and a nil value raise. The calls must
 * run in a handler's own code (as http.request): a networked backend waits
 * there. store.update is Lua code around two internal calls (read with the
 * version; write if the version is unchanged), so fn runs in the handler
 * under its limits and may itself call the store; an error fn raises goes
 * to the caller.
 */
#ifndef CLIQHOST_BIND_STORE_H
#define CLIQHOST_BIND_STORE_H

#include <lua.h>

/* Pushes the module table. Takes json.decode, type and error from the
 * sandbox table at `sb` (json is opened first). Run in protected mode.
 * [-0, +1] */
void bind_store_open(lua_State *L, int sb);

#endif
