/*
 * loader: the scripts a worker has loaded, kept by path in its Lua state.
 *
 * A script is compiled once per version (text chunks only), its top level
 * run under the limits, and the handlers table it returns kept. With a hub
 * (luavm_options.scripts) the worker takes the hub's newest snapshot at
 * each request and loads again only the scripts whose version changed;
 * without one, files are read from disk on first use and kept. The
 * reloader uses the same loading, against a snapshot it has not published
 * yet, to check a change before workers see it.
 */
#ifndef CLIQHOST_LOADER_H
#define CLIQHOST_LOADER_H

#include <stddef.h>

#include "script/vm.h"

struct scriptset;

/* Takes the hub's newest snapshot when it changed. */
void loader_refresh(struct luavm *vm);

/* Pushes the handlers table for `rel` ("commands/deploy.lua"), loading the
 * script when it is not cached or the snapshot has a newer version.
 * Returns 0 (table pushed), -ENOENT (nothing pushed: no such script), -1
 * (error message pushed), or -2 (message pushed: a limit stopped its top
 * level). */
int loader_get(struct luavm *vm, const char *rel);

/* Pushes the string table of the realm the handlers table at `handlers`
 * (from loader_get) was loaded in, or nil, and gives its memory entry
 * (see vm_realm_keep; 0: none). [-0, +1] */
void loader_push_strings(struct luavm *vm, int handlers, unsigned *owner, unsigned *gen);

/* Forgets the loaded version of `rel` on this worker: its next call loads
 * it afresh (vm->unload). */
void loader_forget(struct luavm *vm, const char *rel);

/* ---- for the reloader -------------------------------------------------- */

/* Serves scripts and modules from this fixed snapshot (held until the next
 * call or the luavm is freed), instead of the options' hub. */
void loader_use_set(struct luavm *vm, struct scriptset *set);

/* Compiles `src` as the script `rel`, runs its top level (held to the
 * limits) and checks it returns a table of functions, in a fresh module
 * cache, as a worker would. `cb` hears of each scripts/lib module a top
 * level requires. Handler names are written to `keys` (joined by ", ", may
 * be NULL). Returns 0, or -1 with "file:line: message" in err. */
int loader_validate(struct luavm *vm, const char *rel, const char *src, size_t len,
                    luavm_require_cb cb, void *ud, char *keys, size_t keyslen, char *err,
                    size_t errlen);
/* Compiles a module's text without running it. Returns 0 or -1 with the
 * message in err. */
int loader_compile_only(struct luavm *vm, const char *rel, const char *src, size_t len, char *err,
                        size_t errlen);

#endif
