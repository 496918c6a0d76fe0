/*
 * sandbox: the globals a script sees (DESIGN.md "Sandboxed by allow-list"
 * and "Isolated scripts").
 *
 * Scripts see a base environment built from an allow-list (string, table,
 * math, utf8, coroutine, safe parts of os) plus the host's modules, which
 * libs.c adds: the prototype. Each script is a realm: it and the modules it
 * requires get their own copies of the prototype's library tables, their
 * own module cache and a read-only `package`, so what a script changes in
 * `string`, `json` or a module is seen by no other script. Within a realm,
 * each script and module still runs in its own global table. String
 * methods are the running realm's (vm_use_strings). `require` finds Lua
 * modules only under scripts/lib/ and the host's lualib/ (and answers the
 * standard library's names with the realm's copies); load() takes text
 * only; os.getenv reads only the names in script_env; setmetatable refuses
 * __gc; a handler's own coroutine cannot be resumed or closed by the script.
 */
#ifndef CLIQHOST_SANDBOX_H
#define CLIQHOST_SANDBOX_H

#include <stddef.h>

#include <lua.h>

struct luavm;

/* Opens Lua's own libraries, builds the sandbox table from the allow-list
 * and the registry tables the runtime uses, and pushes the sandbox table,
 * for libs.c to add the host's modules to. Run in protected mode (it
 * allocates). [-0, +1] */
void sandbox_open(lua_State *L, struct luavm *vm);

/* Pushes a new realm (see above): the metatable of its environments,
 * which nothing in a script can reach. Run in protected mode. [-0, +1] */
void sandbox_push_realm(lua_State *L);

/* Pushes the string table of the realm at `realm`. [-0, +1] */
void sandbox_realm_strings(lua_State *L, int realm);

/* Compiles `data` as a text chunk named after `path` and sets a fresh
 * environment (its own globals over the realm's at `realm`) as its _ENV.
 * Returns LUA_OK with the function pushed, or an error status with the
 * message pushed. [-0, +1] */
int sandbox_compile(lua_State *L, const char *data, size_t len, const char *path, int realm);

#endif
