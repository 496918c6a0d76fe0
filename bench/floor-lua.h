/* floor-lua: the Lua share of a call, for cliqhost-bench-floor-lua (see floor-lua.c). */
#ifndef CLIQHOST_BENCH_FLOOR_LUA_H
#define CLIQHOST_BENCH_FLOOR_LUA_H

#include <stddef.h>

#define FLOOR_LUA_THREADS 2

/* Loads script (a module returning its handlers by key, as the host's
 * scripts do) in one Lua state per thread, with lualib on package.path.
 * Returns -1 with a message on stderr when it cannot. */
int floor_lua_init(const char *script, const char *lualib);

/* Runs the handler the body names, in `thread`'s state, and writes
 * {"output": <its return value>} into out. body[len] must be '\0'. Returns
 * the reply's length, or 0 (the first few reasons printed on stderr) when
 * request_decode refuses the body, the script has no such handler, the
 * handler raised or the reply does not fit in cap bytes. */
size_t floor_lua_answer(int thread, const char *body, size_t len, char *out, size_t cap);

#endif
