/* loader: a worker's loaded scripts (see loader.h). */
#include "script/loader.h"

#include "core/log.h"
#include "script/sandbox.h"
#include "script/schedspec.h"
#include "script/scriptset.h"
#include "script/source.h"
#include "script/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

/* Registry: handlers table -> its realm (weak keys). */
static const char realms_key = 'r';

/* Pushes that table, made on first use. [-0, +1] */
static void push_realms(lua_State *L)
{
    vm_push_weak_table(L, &realms_key);
}

/* Checks the value a script returned (at -1): a table whose values are all
 * functions. Returns 0, or -1 with the reason in err. [-0, +0] */
static int check_handlers(lua_State *L, const char *path, char *err, size_t errlen)
{
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: must return a table of handler functions (returned %s)", path,
                 luaL_typename(L, -1));
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isfunction(L, -1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            snprintf(err, errlen, "%s: handler '%s' must be a function (is a %s)", path, k,
                     luaL_typename(L, -1));
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Compiles `src` as the script `rel`, runs its top level and checks the
 * result. Returns 0 with the handlers table pushed, -1 with the error
 * message pushed, or -2 (message pushed) when a limit stopped its top
 * level. [-0, +1] */
static int load_script(struct luavm *vm, const char *rel, const char *src, size_t len)
{
    lua_State *L = vm->L;
    char path[SOURCE_PATH_MAX];
    char err[SOURCE_ERR_MAX];
    snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    snprintf(vm->logctx.script, sizeof vm->logctx.script, "%s", rel);
    /* Each script (version) is a realm of its own, with the modules it
     * requires: nothing it changes reaches another script. */
    sandbox_push_realm(L);
    int realm = lua_gettop(L);
    int rc = sandbox_compile(L, src, len, path, realm);
    if (rc != LUA_OK) {
        lua_remove(L, realm);
        return -1;
    }
    /* A script's top level is held to the limits like a handler. */
    int outer = vm->slice_start != 0;
    enum luavm_limit limit = LIMIT_NONE;
    if (!outer)
        vm_slice_begin(vm);
    sandbox_realm_strings(L, realm);
    vm_use_strings(vm, -1);
    lua_pop(L, 1);
    const char *was_loading = vm->loading;
    vm->loading = rel;
    rc = lua_pcall(L, 0, 1, 0);
    vm->loading = was_loading;
    if (!outer)
        limit = vm_slice_end(vm, rc != LUA_OK);
    else
        vm_use_strings(vm, 0);
    if (rc != LUA_OK) {
        /* What callers keep and print is a message, whatever was raised,
         * and a limit's own reason rather than the error it caused. */
        if (limit != LIMIT_NONE) {
            char why[160];
            lua_pop(L, 1);
            lua_pushfstring(L, "%s: stopped: %s", path,
                            vm_limit_reason(vm, limit, why, sizeof why));
        } else if (lua_type(L, -1) != LUA_TSTRING) {
            const char *what = luaL_typename(L, -1);
            lua_pop(L, 1);
            lua_pushfstring(L, "%s: (error object is a %s value)", path, what);
        }
        lua_remove(L, realm);
        return limit != LIMIT_NONE ? -2 : -1;
    }
    if ((schedspec_is_schedule(rel) ? schedspec_read(L, -1, path, NULL, err, sizeof err)
                                    : check_handlers(L, path, err, sizeof err)) < 0) {
        lua_settop(L, realm - 1);
        lua_pushstring(L, err);
        return -1;
    }
    /* The realm's memory entry (what its module state holds), and the
     * realm remembered for the script's handlers. */
    if (!outer) {
        unsigned gen = 0;
        unsigned owner = vm_realm_keep(vm, rel, &gen);
        lua_pushinteger(L, owner);
        lua_setfield(L, realm, "owner");
        lua_pushinteger(L, gen);
        lua_setfield(L, realm, "owner_gen");
    }
    push_realms(L);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, realm);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_remove(L, realm);
    return 0;
}

/* Ends the memory entry of the realm the handlers table at `handlers` was
 * loaded in: that version is no longer loaded here. [-0, +0] */
static void drop_realm(struct luavm *vm, int handlers)
{
    lua_State *L = vm->L;
    if (lua_type(L, handlers) != LUA_TTABLE)
        return;
    handlers = lua_absindex(L, handlers);
    push_realms(L);
    lua_pushvalue(L, handlers);
    if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_getfield(L, -1, "owner");
        lua_getfield(L, -2, "owner_gen");
        vm_realm_drop(vm, (unsigned)lua_tointeger(L, -2), (unsigned)lua_tointeger(L, -1));
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
}

void loader_forget(struct luavm *vm, const char *rel)
{
    lua_State *L = vm->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_scripts);
    lua_pushnil(L);
    lua_setfield(L, -2, rel);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_versions);
    lua_pushnil(L);
    lua_setfield(L, -2, rel);
    lua_pop(L, 1);
}

void loader_push_strings(struct luavm *vm, int handlers, unsigned *owner, unsigned *gen)
{
    lua_State *L = vm->L;
    handlers = lua_absindex(L, handlers);
    *owner = *gen = 0;
    push_realms(L);
    lua_pushvalue(L, handlers);
    if (lua_rawget(L, -2) != LUA_TTABLE) {
        lua_remove(L, -2);
        return; /* nil */
    }
    lua_getfield(L, -1, "owner");
    *owner = (unsigned)lua_tointeger(L, -1);
    lua_getfield(L, -2, "owner_gen");
    *gen = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 2);
    lua_getfield(L, -1, "strings");
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Takes the hub's newest snapshot when it changed. */
void loader_refresh(struct luavm *vm)
{
    if (vm->fixed_set || !vm->opt.scripts)
        return;
    if (vm->set && scripts_hub_generation(vm->opt.scripts) == vm->gen)
        return;
    /* Scripts loaded again are new realms with fresh modules; the ones
     * still loaded keep the modules they hold. */
    scriptset_release(vm->set);
    vm->set = scripts_hub_acquire(vm->opt.scripts, &vm->gen);
}

/* Pushes the handlers table for `rel`, loading the script when it is not
 * cached or the snapshot has a newer version. A version that fails to load
 * here (it passed the reloader's check, so only a limit can stop it) leaves
 * the version already loaded serving. A script that fails with nothing to
 * fall back on is cached as its error message, unless a limit stopped it
 * (that may pass: it is tried again next time). Returns 0 (table pushed),
 * -ENOENT (nothing pushed), -1 or -2 (message pushed). */
int loader_get(struct luavm *vm, const char *rel)
{
    lua_State *L = vm->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_scripts);
    int cache = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_versions);
    int versions = cache + 1;
    int t = lua_getfield(L, cache, rel);
    lua_getfield(L, versions, rel);
    unsigned long long have = (unsigned long long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    int cached = t == LUA_TTABLE || t == LUA_TSTRING;
    if (cached && !vm->set) /* read from disk: kept for good */
        goto hit;

    const char *src = NULL;
    size_t len = 0;
    char *owned;
    unsigned long long version;
    char err[SOURCE_ERR_MAX];
    int rc = source_find(vm, rel, &src, &len, &owned, &version, err, sizeof err);
    if (rc == -ENOENT) {
        drop_realm(vm, cache + 2);
        lua_pushnil(L);
        lua_setfield(L, cache, rel);
        lua_pushnil(L);
        lua_setfield(L, versions, rel);
        lua_settop(L, cache - 1);
        return -ENOENT;
    }
    if (cached && have == version)
        goto hit;
    if (rc < 0) {
        lua_settop(L, cache - 1);
        lua_pushstring(L, err);
        return -1;
    }
    rc = load_script(vm, rel, src, len);
    free(owned);
    if (rc < 0 && t == LUA_TTABLE) {
        /* A limit may pass: the next request tries again. */
        if (rc == -1) {
            lua_pushinteger(L, (lua_Integer)version);
            lua_setfield(L, versions, rel);
        }
        log_msg(LOG_WARN, NULL,
                "%s: version %llu did not load in this worker (%s); the previous one serves", rel,
                version, lua_tostring(L, -1));
        lua_pop(L, 1);
        goto hit;
    }
    if (rc == -2) {
        lua_replace(L, cache);
        lua_settop(L, cache);
        return rc;
    }
    if (rc == 0)
        drop_realm(vm, cache + 2); /* the version it replaces */
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, rel);
    lua_pushinteger(L, (lua_Integer)version);
    lua_setfield(L, versions, rel);
    lua_replace(L, cache);
    lua_settop(L, cache);
    return rc;
hit:
    lua_replace(L, cache);
    lua_settop(L, cache);
    return lua_type(L, -1) == LUA_TTABLE ? 0 : -1;
}

void loader_use_set(struct luavm *vm, struct scriptset *set)
{
    if (set)
        scriptset_hold(set);
    scriptset_release(vm->set);
    vm->set = set;
    vm->fixed_set = 1;
}

int loader_validate(struct luavm *vm, const char *rel, const char *src, size_t len,
                    luavm_require_cb cb, void *ud, char *keys, size_t keyslen, char *err,
                    size_t errlen)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    /* The script is a new realm: every module it needs runs (and is seen by
     * cb) with the snapshot's text. */
    vm->require_cb = cb;
    vm->require_ud = ud;
    int rc = load_script(vm, rel, src, len);
    vm->require_cb = NULL;
    vm->require_ud = NULL;
    vm->logctx.script[0] = '\0';
    if (rc < 0) {
        const char *msg = lua_tostring(L, -1);
        snprintf(err, errlen, "%s", msg ? msg : "failed to load");
        lua_settop(L, top);
        lua_gc(L, LUA_GCCOLLECT);
        return -1;
    }
    if (keys && keyslen) {
        keys[0] = '\0';
        size_t used = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            int w = snprintf(keys + used, keyslen - used, "%s%s", used ? ", " : "",
                             lua_tostring(L, -1));
            if (w > 0 && (size_t)w < keyslen - used)
                used += (size_t)w;
        }
    }
    lua_settop(L, top);
    return 0;
}

int loader_compile_only(struct luavm *vm, const char *rel, const char *src, size_t len, char *err,
                        size_t errlen)
{
    char path[SOURCE_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    sandbox_push_realm(vm->L);
    int rc = sandbox_compile(vm->L, src, len, path, -1);
    if (rc != LUA_OK)
        snprintf(err, errlen, "%s", lua_tostring(vm->L, -1));
    lua_pop(vm->L, 2);
    return rc == LUA_OK ? 0 : -1;
}
