/*
 * libs: the host's modules that scripts see as globals, in one list (as
 * Lua's linit.c lists its libraries): json, log, http, cliq, store, and the
 * request object's metatables. Adding a binding means adding it here; the
 * sandbox and the VM know none of them.
 */
#ifndef CLIQHOST_LIBS_H
#define CLIQHOST_LIBS_H

#include <lua.h>

struct luavm;

/* Adds every binding to the sandbox table at index `sb`. Run in protected
 * mode (it allocates). [-0, +0] */
void libs_open(lua_State *L, struct luavm *vm, int sb);

#endif
