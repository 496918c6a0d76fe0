/* floor-lua: the Lua share of a call, for cliqhost-bench-floor-lua (see floor-lua.c). */
#ifndef CLIQHOST_BENCH_FLOOR_LUA_H
#define CLIQHOST_BENCH_FLOOR_LUA_H

#include <stddef.h>

#define FLOOR_LUA_THREADS 2

/* Loads script (a module returning {execution = function(req) ... end}) in
 * one Lua state per thread, with lualib on package.path. Returns -1 with a
 * message on stderr when it cannot. */
int floor_lua_init(const char *script, const char *lualib);

/* Runs the handler of `thread`'s state on the JSON body and writes
 * {"output": <its return value>} into out. Returns the reply's length, or 0
 * when the body is not a JSON object, the handler raised or the reply does
 * not fit in cap bytes. */
size_t floor_lua_answer(int thread, const char *body, size_t len, char *out, size_t cap);

#endif
