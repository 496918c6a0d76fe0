/*
 * sandbox: the globals a script sees (DESIGN.md "Sandboxed by allow-list"
 * and "Isolated scripts").
 *
 * Scripts see a base environment built from an allow-list (string, table,
 * math, utf8, coroutine, safe parts of os) plus the host's modules, which
 * libs.c adds. Each script and module runs in its own global table that
 * falls back to that shared sandbox, so a global set by one script is not
 * seen by another. `require` finds Lua modules only under scripts/lib/ and
 * the host's lualib/; load() takes text only; os.getenv reads only the
 * names in script_env; setmetatable refuses __gc; a handler's own
 * coroutine cannot be resumed or closed by the script.
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

/* Compiles `data` as a text chunk named after `path` and sets a fresh
 * environment (its own globals over the sandbox) as its _ENV. Returns
 * LUA_OK with the function pushed, or an error status with the message
 * pushed. [-0, +1] */
int sandbox_compile(lua_State *L, const char *data, size_t len, const char *path);

#endif
