/* sandbox: the globals scripts see, and require (see sandbox.h). */
#include "script/sandbox.h"

#include "core/log.h"
#include "script/bind_json.h"
#include "script/bounded.h"
#include "script/scriptset.h"
#include "script/source.h"
#include "script/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* The sandbox's prototype: every name scripts see, with the libraries as
 * the host built them. No script ever holds it: each realm gets copies. */
static const char proto_key = 'p';

/*
 * A realm is what one script and the modules it requires share: their own
 * copies of the library tables (string, table, os, json, cliq, ...), their
 * module cache and their `package`. Nothing in one realm is reachable from
 * another, so a change a script makes to `string.upper`, `json` or a module
 * stays in that script. The realm is the metatable of every environment in
 * it (hidden by __metatable), with these private fields:
 *
 *   __index   the realm's globals (copies of the prototype's)
 *   modules   module name -> value (a light userdata while it loads)
 *   versions  scripts/lib entry -> snapshot version of the module loaded
 *   std       the standard library names require answers from modules
 *   strings   the realm's string table, which string methods use while
 *             the realm's code runs (vm_use_strings)
 */

/* Pushes a new global table for a script or module of the realm at `realm`:
 * empty, falling back to the realm's globals. [-0, +1] */
static void push_env(lua_State *L, int realm)
{
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_pushvalue(L, realm);
    lua_setmetatable(L, -2);
}

/* Lua's parser checks each new label against every earlier one of its
 * function, in C, where no limit can stop it: a chunk with tens of
 * thousands of labels takes seconds. A chunk may hold at most this many
 * `::` (two a label); real code has a handful. */
#define MAX_LABEL_MARKS 4096

/* Whether the text has more label marks than a chunk may. */
static int too_many_labels(const char *s, size_t len)
{
    size_t n = 0;
    const char *end = s + len;
    for (const char *p = s; (p = memmem(p, (size_t)(end - p), "::", 2)); p += 2)
        if (++n > MAX_LABEL_MARKS)
            return 1;
    return 0;
}

/* Loads a text chunk, refusing one with too many labels. Returns Lua's
 * status with the function or the message pushed. [-0, +1] */
static int load_text(lua_State *L, const char *s, size_t len, const char *name)
{
    if (too_many_labels(s, len)) {
        lua_pushfstring(L, "%s: more than %d labels in one chunk", name, MAX_LABEL_MARKS / 2);
        return LUA_ERRSYNTAX;
    }
    return luaL_loadbufferx(L, s, len, name, "t");
}

/* Compiles `data` as a text chunk named after `path` and sets a fresh
 * environment in the realm at `realm` as its _ENV. Returns LUA_OK with the
 * function pushed, or an error status with the message pushed. [-0, +1] */
int sandbox_compile(lua_State *L, const char *data, size_t len, const char *path, int realm)
{
    realm = lua_absindex(L, realm);
    /* Room for any path the runtime builds (SOURCE_PATH_MAX); a longer
     * one would only shorten the name in messages. */
    char chunkname[SOURCE_PATH_MAX + 2];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int rc = load_text(L, data, len, chunkname);
    if (rc != LUA_OK)
        return rc;
    push_env(L, realm);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1); /* a chunk with no _ENV upvalue uses no globals */
    return LUA_OK;
}

void sandbox_realm_strings(lua_State *L, int realm)
{
    lua_getfield(L, realm, "strings");
}

/* load(chunk [, chunkname [, mode [, env]]]) for scripts: text only, and
 * without an env the chunk gets a fresh global table in the caller's realm
 * (upvalue 1) instead of the host's real one. */
static int sb_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b')) {
        lua_pushnil(L);
        lua_pushliteral(L, "load: binary chunks are not allowed");
        return 2;
    }
    int has_env = !lua_isnone(L, 4);
    size_t len;
    const char *s = NULL;
    if (lua_type(L, 1) == LUA_TSTRING) {
        s = lua_tolstring(L, 1, &len);
    } else {
        /* A reader function: collect its pieces (capped like a script). */
        luaL_checktype(L, 1, LUA_TFUNCTION);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == 0)) {
                lua_pop(L, 1);
                break;
            }
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "load: reader function must return a string");
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        lua_replace(L, 1);
        s = lua_tolstring(L, 1, &len);
    }
    const char *name = luaL_optstring(L, 2, s);
    /* A chunk is held to a script's size: the parser runs in C. */
    size_t max = vm_of_state(L)->opt.max_script_bytes;
    if (max && len > max) {
        lua_pushnil(L);
        lua_pushfstring(L, "load: the chunk is %I bytes, over max_script_bytes (%I)",
                        (lua_Integer)len, (lua_Integer)max);
        return 2;
    }
    int rc = load_text(L, s, len, name);
    if (rc != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env)
        lua_pushvalue(L, 4);
    else
        push_env(L, lua_upvalueindex(1));
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

/* os.date for scripts: Lua's (upvalue 1), with a format of at most
 * MAX_DATE_FORMAT bytes (each conversion is a strftime call, in C). */
#define MAX_DATE_FORMAT 4096

static int sb_date(lua_State *L)
{
    size_t n = 0;
    if (lua_type(L, 1) == LUA_TSTRING && (lua_tolstring(L, 1, &n), n > MAX_DATE_FORMAT))
        return luaL_error(L, "os.date: the format is %I bytes, over %d", (lua_Integer)n,
                          MAX_DATE_FORMAT);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* os.getenv(name) for scripts: only names in script_env (upvalue 1, a set);
 * others read as nil. */
static int sb_getenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL) {
        log_msg(LOG_DEBUG, NULL, "os.getenv(\"%.64s\") refused: not listed in script_env", name);
        lua_pushnil(L);
        return 1;
    }
    const char *v = getenv(name);
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* collectgarbage for scripts: only "count" (the state is shared by every
 * request on the worker, so scripts may not stop or tune its collector),
 * in KiB, of what the running handler holds. */
static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "count");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed; only \"count\"", opt);
    /* A handler sees what it holds (the heap is shared by the worker's
     * handlers, whose use is theirs to know); a top level, the heap. */
    struct luavm *vm = vm_of_state(L);
    if (vm->current && vm->slice_start) {
        lua_pushnumber(L, (lua_Number)vm_task_memory(vm->current) / 1024);
        return 1;
    }
    int kb = lua_gc(L, LUA_GCCOUNT, 0);
    int b = lua_gc(L, LUA_GCCOUNTB, 0);
    lua_pushnumber(L, (lua_Number)kb + ((lua_Number)b / 1024));
    return 1;
}

/* A module name is dotted words: "cliq.message", "util". */
static int module_name_ok(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 128)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
        if (!word && !(c == '.' && p[1] && p[1] != '.'))
            return 0;
    }
    return 1;
}

/* Raises the error on top (status from compiling or running module
 * `name`), prefixed with where require was called and the module's name,
 * so a check or a log names the script that required it and each require
 * on the way: `commands/deploy.lua:1: require "pl.compat": lib/pl/
 * compat.lua:29: ...`. Out of memory, or an error that is not a string,
 * goes on as it is. [-1, +0] */
static int require_failed(lua_State *L, const char *name, int status)
{
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_pushfstring(L, "require \"%s\": ", name);
        lua_rotate(L, -3, 2);
        lua_concat(L, 3);
    }
    return lua_error(L);
}

/* require(name) for scripts: the realm's (upvalue 1) copy of a standard
 * library ("string", "math", ...), or a Lua module under scripts/lib/
 * (first) or the host's lualib/, loaded once per realm and sandboxed like a
 * script. A scripts/lib module is loaded again when the snapshot has a
 * newer version; lualib/ modules ship with the host and are read once. */
static int sb_require(lua_State *L)
{
    struct luavm *vm = vm_of_state(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "std");
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    lua_settop(L, 1);
    if (!module_name_ok(name))
        return luaL_error(
            L, "require \"%s\": not a module name (dotted words, as in \"cliq.message\")", name);
    /* Where Lua's own path would look: scripts/lib/?.lua, scripts/lib/?/init.lua,
     * then the same in lualib/. `rel` is the snapshot's name of the one
     * found ("lib/pkg/init.lua"). */
    char rels[2][200];
    int n = snprintf(rels[0], sizeof rels[0], "lib/%s.lua", name);
    for (int i = 4; i < n - 4; i++)
        if (rels[0][i] == '.')
            rels[0][i] = '/';
    snprintf(rels[1], sizeof rels[1], "%.*s/init.lua", n - 4, rels[0]);
    const struct script_src *e = NULL;
    const char *rel = rels[0];
    for (int k = 0; k < 2 && vm->set && !e; k++) {
        e = scriptset_find(vm->set, rels[k]);
        if (e)
            rel = rels[k];
    }
    /* The reloader hears of every file whose appearance would change what
     * this require finds: ?.lua always, and ?/init.lua unless ?.lua is the
     * one found (a lualib/ module is shadowed by either appearing). */
    if (vm->require_cb && vm->loading) {
        vm->require_cb(vm->require_ud, vm->loading, rels[0]);
        if (!e || rel != rels[0])
            vm->require_cb(vm->require_ud, vm->loading, rels[1]);
    }

    lua_getfield(L, lua_upvalueindex(1), "modules");  /* 2 */
    lua_getfield(L, lua_upvalueindex(1), "versions"); /* 3 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TLIGHTUSERDATA)
            return luaL_error(L, "require \"%s\": circular require", name);
        lua_getfield(L, 3, rel);
        unsigned long long have = (unsigned long long)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (!e || e->version == have)
            return 1;
    }
    lua_settop(L, 3);

    char path[SOURCE_PATH_MAX];
    char err[SOURCE_ERR_MAX];
    const char *src = NULL;
    size_t len = 0;
    char *owned = NULL;
    unsigned long long version = 0;
    int rc = -ENOENT;
    if (e) {
        rc = source_find(vm, rel, &src, &len, &owned, &version, err, sizeof err);
        snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    }
    for (int k = 0; k < 2 && !vm->set && rc == -ENOENT; k++) {
        rel = rels[k];
        rc = source_find(vm, rel, &src, &len, &owned, &version, err, sizeof err);
        snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    }
    for (int k = 0; k < 2 && vm->opt.lualib_dir && rc == -ENOENT; k++) {
        snprintf(path, sizeof path, "%s/%s", vm->opt.lualib_dir, rels[k] + 4);
        rc = source_read(vm, path, &owned, &len, err, sizeof err);
        src = owned;
    }
    if (rc == -ENOENT) {
        /* A module on disk that is not in the snapshot failed to load
         * (its own error is reported with it): not "missing". */
        for (int k = 0; k < 2 && vm->set; k++) {
            snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rels[k]);
            if (access(path, F_OK) == 0)
                return luaL_error(L, "require \"%s\": %s does not load (see its own error)", name,
                                  path);
        }
        if (vm->opt.lualib_dir)
            return luaL_error(L, "require \"%s\": none of %s/%s, %s/%s, %s/%s, %s/%s", name,
                              vm->scripts_dir, rels[0], vm->scripts_dir, rels[1],
                              vm->opt.lualib_dir, rels[0] + 4, vm->opt.lualib_dir, rels[1] + 4);
        return luaL_error(L, "require \"%s\": none of %s/%s, %s/%s", name, vm->scripts_dir, rels[0],
                          vm->scripts_dir, rels[1]);
    }
    if (rc < 0)
        return luaL_error(L, "require \"%s\": %s", name, err);

    rc = sandbox_compile(L, src, len, path, lua_upvalueindex(1));
    free(owned);
    if (rc != LUA_OK)
        return require_failed(L, name, rc);
    /* Mark it as loading so a cycle is reported rather than looping. */
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, vm);
    lua_rawset(L, 2);
    lua_pushvalue(L, 1);
    lua_pushstring(L, path);
    const char *was_loading = vm->loading;
    vm->loading = e ? e->rel : NULL;
    int ok = lua_pcall(L, 2, 1, 0);
    vm->loading = was_loading;
    if (ok != LUA_OK) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, 2);
        return require_failed(L, name, ok);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, 2);
    lua_pushinteger(L, (lua_Integer)version);
    lua_setfield(L, 3, rel);
    return 1;
}

/* coroutine.resume and coroutine.close for scripts: a handler's own
 * coroutine belongs to the host (it resumes it when a wait is over), so a
 * script that got it from coroutine.running() cannot resume or close it.
 * Upvalue 1 is the real function, upvalue 2 the weak set of handler
 * coroutines. */
static int sb_coroutine_guard(lua_State *L)
{
    if (vm_of_state(L)->kill)
        return luaL_error(L, "stopped"); /* the handler is being stopped */
    if (lua_type(L, 1) == LUA_TTHREAD) {
        lua_pushvalue(L, 1);
        if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
            return luaL_error(L, "a handler's own coroutine is run by the host; it cannot be "
                                 "resumed or closed by a script");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* The function coroutine.wrap returns: resumes its coroutine (upvalue 1)
 * and passes errors on, like Lua's own, but without closing the dead
 * coroutine (a stopped coroutine runs no hooks, so its __close could not be
 * stopped). */
static int sb_wrapped(lua_State *L)
{
    if (vm_of_state(L)->kill)
        return luaL_error(L, "stopped"); /* the handler is being stopped */
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD)
        return luaL_error(L, "cannot resume dead coroutine");
    if (st == LUA_OK && lua_gettop(co) == 0)
        return luaL_error(L, "cannot resume dead coroutine");
    if (!lua_checkstack(co, n))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, n);
    int nres = 0;
    st = vm_resume(co, L, n, &nres);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1))
            return luaL_error(L, "too many results to resume");
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1); /* the error */
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int sb_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, sb_wrapped, 1);
    return 1;
}

/* setmetatable for scripts: no __gc, because a finalizer runs whenever the
 * collector gets to it, in the middle of another request or of the host's
 * own work, where no limit could stop it. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc finalizers are not allowed in scripts");
        lua_pop(L, 1);
    }
    /* A table from json.decode or json.array/object is the script's own:
     * its marker metatable (protected, shared by every script) may be
     * replaced, as on any plain table, but never changed. */
    if (lua_type(L, 1) == LUA_TTABLE && bind_json_marked(L, 1)) {
        luaL_argexpected(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2, "nil or table");
        lua_settop(L, 2);
        lua_setmetatable(L, 1);
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* ---- C functions that loop ------------------------------------------------
 *
 * The instruction hook never runs inside a C function, so the library
 * functions whose loops a script can make long without allocating (nothing
 * else bounds them) are replaced by versions that count their steps
 * against max_cpu_ms. Semantics are Lua 5.4's. */

#define CPU_CHECK_EVERY 4096

/* string.rep(s, n [, sep]): Lua's own allocates the result first, which the
 * memory cap bounds; only an empty result loops without allocating, so
 * that is answered here. Upvalue 1: the original. */
static int sb_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* #t as table.insert and table.remove see it (may call __len). */
static lua_Integer len_of(lua_State *L, int i)
{
    luaL_checktype(L, i, LUA_TTABLE);
    return luaL_len(L, i);
}

static int sb_tinsert(lua_State *L)
{
    lua_Integer e = len_of(L, 1) + 1; /* first empty slot */
    lua_Integer pos;
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) {
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
            if ((i & (CPU_CHECK_EVERY - 1)) == 0)
                vm_check_cpu(L);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int sb_tremove(lua_State *L)
{
    lua_Integer size = len_of(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    lua_geti(L, 1, pos);
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
        if ((pos & (CPU_CHECK_EVERY - 1)) == 0)
            vm_check_cpu(L);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int sb_tmove(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, tt, LUA_TTABLE);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
                if ((i & (CPU_CHECK_EVERY - 1)) == CPU_CHECK_EVERY - 1)
                    vm_check_cpu(L);
            }
        } else {
            for (lua_Integer i = n - 1; i >= 0; i--) {
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
                if ((i & (CPU_CHECK_EVERY - 1)) == 0)
                    vm_check_cpu(L);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* Puts the bounded versions into the real string and table libraries (the
 * string metatable reaches the real one). The table at `G` is _G. */
static void bound_loops(lua_State *L, int G)
{
    lua_getfield(L, G, "string");
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, sb_rep, 1);
    lua_setfield(L, -2, "rep");
    lua_pop(L, 1);
    lua_getfield(L, G, "table");
    lua_pushcfunction(L, sb_tinsert);
    lua_setfield(L, -2, "insert");
    lua_pushcfunction(L, sb_tremove);
    lua_setfield(L, -2, "remove");
    lua_pushcfunction(L, sb_tmove);
    lua_setfield(L, -2, "move");
    lua_pop(L, 1);
    bounded_open(L, G); /* patterns, concat, unpack, sort, utf8, resume, ... */
}

/* Copies field `name` from the table at `from` to the table at `to`. */
static void copy_field(lua_State *L, int from, int to, const char *name)
{
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
}

/* ---- read-only views (package, package.loaded) ---------------------------- */

/* __index of a read-only view: the table in upvalue 1, raw; a module still
 * loading (a light userdata mark) reads as nil, as in Lua's own loaded. */
static int ro_index(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TLIGHTUSERDATA)
        lua_pushnil(L);
    return 1;
}

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "%s is read-only", lua_tostring(L, lua_upvalueindex(1)));
}

/* The iterator __pairs gives: next over the table in upvalue 1 (which the
 * script never gets), skipping marks; the state is the view itself. */
static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    while (lua_next(L, lua_upvalueindex(1))) {
        if (lua_type(L, -1) != LUA_TLIGHTUSERDATA)
            return 2;
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, ro_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Pushes a view of the table at `t` that reads it (and pairs() over it) but
 * cannot write it or reach it; `name` is for the error. [-0, +1] */
static void push_readonly(lua_State *L, int t, const char *name)
{
    t = lua_absindex(L, t);
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, t);
    lua_pushcclosure(L, ro_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, t);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* Whether `file` is one require could load: under the scripts folder (in
 * the snapshot served) or under lualib/, with no ".." in the way. Nothing
 * else is looked at, so package.searchpath cannot probe the file system. */
static int module_file_exists(struct luavm *vm, const char *file)
{
    if (strstr(file, "/../") || strncmp(file, "../", 3) == 0)
        return 0;
    size_t n = strlen(vm->scripts_dir);
    if (strncmp(file, vm->scripts_dir, n) == 0 && file[n] == '/') {
        if (vm->set)
            return scriptset_find(vm->set, file + n + 1) != NULL;
        return access(file, R_OK) == 0;
    }
    const char *ll = vm->opt.lualib_dir;
    n = ll ? strlen(ll) : 0;
    if (ll && strncmp(file, ll, n) == 0 && file[n] == '/')
        return access(file, R_OK) == 0;
    return 0;
}

/* package.searchpath(name, path [, sep [, rep]]), as Lua's, over the files
 * require may load (see module_file_exists). */
static int sb_searchpath(lua_State *L)
{
    struct luavm *vm = vm_of_state(L);
    const char *name = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char *sep = luaL_optstring(L, 3, ".");
    const char *rep = luaL_optstring(L, 4, "/");
    if (*sep)
        name = luaL_gsub(L, name, sep, rep);
    luaL_Buffer miss;
    luaL_buffinit(L, &miss);
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            lua_pushlstring(L, p, len);
            const char *file = luaL_gsub(L, lua_tostring(L, -1), "?", name);
            lua_remove(L, -2);
            if (module_file_exists(vm, file))
                return 1;
            lua_pushfstring(L, "\n\tno file '%s'", file);
            lua_remove(L, -2);
            luaL_addvalue(&miss);
        }
        p += len + (end != NULL);
    }
    luaL_pushresult(&miss);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* Pushes the realm's `package`: a read-only view of loaded (its modules),
 * config, path (where require looks) and searchpath. [-0, +1] */
static void push_package(lua_State *L, struct luavm *vm, int modules)
{
    modules = lua_absindex(L, modules);
    lua_createtable(L, 0, 4);
    push_readonly(L, modules, "package.loaded");
    lua_setfield(L, -2, "loaded");
    lua_pushliteral(L, "/\n;\n?\n!\n-\n"); /* Lua's own, on this system */
    lua_setfield(L, -2, "config");
    const char *ll = vm->opt.lualib_dir;
    lua_pushfstring(L, "%s/lib/?.lua;%s/lib/?/init.lua", vm->scripts_dir, vm->scripts_dir);
    if (ll)
        lua_pushfstring(L, ";%s/?.lua;%s/?/init.lua", ll, ll);
    else
        lua_pushliteral(L, "");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pushcfunction(L, sb_searchpath);
    lua_setfield(L, -2, "searchpath");
    push_readonly(L, -1, "package");
    lua_remove(L, -2);
}

/* ---- realms -------------------------------------------------------------- */

/* The names require answers from the realm's own copies, as Lua's
 * package.loaded has them. */
static const char *const std_names[] = {
    "string", "table", "math", "utf8", "coroutine", "os", "debug", NULL,
};

/* Pushes a copy of the table at `t`: its fields and its metatable. [-0, +1] */
static void push_copy(lua_State *L, int t)
{
    t = lua_absindex(L, t);
    lua_createtable(L, 0, (int)lua_rawlen(L, t) + 16);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    if (lua_getmetatable(L, t))
        lua_setmetatable(L, -2);
}

void sandbox_push_realm(lua_State *L)
{
    struct luavm *vm = vm_of_state(L);
    lua_createtable(L, 0, 8);
    int realm = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &proto_key);
    int proto = realm + 1;
    lua_createtable(L, 0, 48);
    int G = realm + 2;
    lua_pushnil(L);
    while (lua_next(L, proto)) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            push_copy(L, -1);
            lua_remove(L, -2);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, G);
    }
    /* math.random's state lives in the library's closures: a realm opens
     * its own, so a script's math.randomseed chooses no one else's draws. */
    lua_pushcfunction(L, luaopen_math);
    lua_call(L, 0, 1);
    lua_setfield(L, G, "math");
    lua_pushvalue(L, realm);
    lua_pushcclosure(L, sb_require, 1);
    lua_setfield(L, G, "require");
    lua_pushvalue(L, realm);
    lua_pushcclosure(L, sb_load, 1);
    lua_setfield(L, G, "load");

    lua_newtable(L); /* std */
    lua_newtable(L); /* modules */
    for (const char *const *n = std_names; *n; n++) {
        lua_getfield(L, G, *n);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, *n);
        lua_setfield(L, -3, *n);
    }
    push_package(L, vm, -1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "package");
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "package");
    lua_setfield(L, G, "package");
    lua_setfield(L, realm, "modules");
    lua_setfield(L, realm, "std");
    lua_newtable(L);
    lua_setfield(L, realm, "versions");
    lua_getfield(L, G, "string");
    lua_setfield(L, realm, "strings");
    lua_pushvalue(L, G);
    lua_setfield(L, realm, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, realm, "__metatable");
    lua_settop(L, realm);
}

void sandbox_open(lua_State *L, struct luavm *vm)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},
        {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},
        {LUA_OSLIBNAME, luaopen_os},
        {LUA_DBLIBNAME, luaopen_debug},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    int G = lua_gettop(L);

    bound_loops(L, G);
    /* string.dump would hand out bytecode. */
    lua_getfield(L, G, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    /* The strings' metatable is hidden; while no realm's code runs, string
     * methods are the pristine library's (see vm_use_strings). */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &vm_key_string_mt);
    lua_pop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &vm_key_strings);

    lua_newtable(L);
    int sb = lua_gettop(L);
    static const char *const base_fns[] = {
        "assert",   "error",    "ipairs", "next",   "pairs",    "pcall",
        "rawequal", "rawget",   "rawlen", "rawset", "select",   "getmetatable",
        "tonumber", "tostring", "type",   "xpcall", "_VERSION", "table",
        "string",   "math",     "utf8",   NULL,
    };
    for (const char *const *f = base_fns; *f; f++)
        copy_field(L, G, sb, *f);
    lua_getfield(L, G, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, sb, "setmetatable");

    /* The weak set of handler coroutines, and a coroutine library that
     * keeps scripts' hands off them. */
    vm_push_weak_table(L, &vm_key_task_threads);
    int threads = lua_gettop(L);
    lua_newtable(L);
    lua_getfield(L, G, "coroutine");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    static const char *const guarded[] = {"resume", "close", NULL};
    for (const char *const *f = guarded; *f; f++) {
        lua_getfield(L, -1, *f);
        lua_pushvalue(L, threads);
        lua_pushcclosure(L, sb_coroutine_guard, 2);
        lua_setfield(L, -2, *f);
    }
    lua_pushcfunction(L, sb_wrap);
    lua_setfield(L, -2, "wrap");
    lua_setfield(L, sb, "coroutine");
    lua_pop(L, 1);

    lua_createtable(L, 0, 5);
    lua_getfield(L, G, "os");
    int os = lua_gettop(L);
    copy_field(L, os, os - 1, "time");
    copy_field(L, os, os - 1, "clock");
    lua_getfield(L, os, "date");
    lua_pushcclosure(L, sb_date, 1);
    lua_setfield(L, os - 1, "date");
    copy_field(L, os, os - 1, "difftime");
    lua_pop(L, 1);
    lua_newtable(L);
    for (size_t i = 0; i < vm->opt.nscript_env; i++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, vm->opt.script_env[i]);
    }
    lua_pushcclosure(L, sb_getenv, 1);
    lua_setfield(L, -2, "getenv");
    lua_setfield(L, sb, "os");

    lua_createtable(L, 0, 1);
    lua_getfield(L, G, "debug");
    lua_getfield(L, -1, "traceback");
    lua_setfield(L, -3, "traceback");
    lua_pop(L, 1);
    lua_setfield(L, sb, "debug");

    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, sb, "collectgarbage");

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &vm_key_scripts);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &vm_key_versions);

    /* The prototype of every realm; libs.c adds the host's modules to it. */
    lua_pushvalue(L, sb);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &proto_key);
    lua_pushvalue(L, sb);
    lua_replace(L, G);
    lua_settop(L, G);
}
