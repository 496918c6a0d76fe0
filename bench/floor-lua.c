/*
 * floor-lua: Lua's share of a call, for bench/floor.c built as
 * cliqhost-bench-floor-lua (a measuring instrument for bench/run.sh).
 *
 * The part of cliqhost's work that its Lua contract makes necessary, done
 * with cliqhost's own code and nothing around it: request_decode (the body's
 * parse, in the parse arena, and the checks that pick a handler),
 * bind_json_push_tree (the body as Lua tables: integers, json.null, [] and
 * {} marked), a request object with DESIGN.md's fields, built in protected
 * mode, the handler the call names (the script is loaded once per thread,
 * with the standard libraries and lualib/ on package.path), and
 * bind_json_encode_output (its return value as {"output": ...}). No
 * sandbox, no coroutine per call, no CPU or memory limit, no log, no
 * journal, no metrics, no replay check, no libmicrohttpd: what the floor
 * plus Lua costs with the host's decoder, so that cliqhost / floor-lua is
 * what the rest of the host costs.
 */
#include "floor-lua.h"

#include "cliq/request.h"
#include "core/arena.h"
#include "core/buf.h"
#include "script/bind_json.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

/* One per thread, each on its own cache lines. */
struct state {
    _Alignas(64) lua_State *L;
    int module;               /* registry ref of the script's table */
    unsigned long long calls; /* for req.id */
    unsigned errors;          /* the first few are printed */
};

static struct state states[FLOOR_LUA_THREADS];

int floor_lua_init(const char *script, const char *lualib)
{
    arena_install_cjson_hooks(); /* the parse tree in a per-thread arena, as in the host */
    for (int i = 0; i < FLOOR_LUA_THREADS; i++) {
        lua_State *L = luaL_newstate();
        if (!L)
            return -1;
        luaL_openlibs(L);
        lua_gc(L, LUA_GCGEN, 0, 0); /* as the host's */
        luaL_requiref(L, "json", bind_json_open, 0);
        lua_getglobal(L, "package");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lualib, lualib);
        lua_setfield(L, -2, "path");
        lua_settop(L, 0);
        if (luaL_dofile(L, script) != LUA_OK || !lua_istable(L, -1)) {
            fprintf(stderr, "%s: %s\n", script,
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "does not return a table");
            return -1;
        }
        states[i].module = luaL_ref(L, LUA_REGISTRYINDEX);
        states[i].L = L;
    }
    return 0;
}

struct build {
    const cJSON *json;
    const struct request_dispatch *d;
    const char *body;
    size_t len;
    int thread;
};

/* Pushes the handler and the request object. Runs in protected mode, as
 * the host builds its request object. [-0, +2] */
static int build_call(lua_State *L)
{
    const struct build *b = lua_touserdata(L, 1);
    struct state *s = &states[b->thread];
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->module);
    lua_getfield(L, -1, b->d->key);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "the script has no %s handler", b->d->key);
    lua_createtable(L, 0, 10);
    int req = lua_gettop(L);
    bind_json_push_tree(L, b->json, b->body, b->len);
    lua_pushvalue(L, -1);
    lua_setfield(L, req, "body");
    if (lua_getfield(L, -1, "params") != LUA_TTABLE) {
        lua_pop(L, 1);
        bind_json_new_object(L, 0);
    }
    lua_setfield(L, req, "params");
    lua_getfield(L, -1, "response_url");
    lua_setfield(L, req, "response_url");
    lua_getfield(L, -1, "timestamp");
    lua_setfield(L, req, "timestamp");
    lua_pop(L, 1);
    lua_pushstring(L, b->d->type);
    lua_setfield(L, req, "type");
    lua_pushstring(L, b->d->name);
    lua_setfield(L, req, "name");
    lua_pushstring(L, b->d->key);
    lua_setfield(L, req, "handler");
    lua_pushfstring(L, "%d-%I", b->thread, (lua_Integer)++s->calls);
    lua_setfield(L, req, "id");
    return 2;
}

static size_t failed(struct state *s, const char *what)
{
    if (s->errors++ < 5)
        fprintf(stderr, "floor-lua: %s\n", what ? what : "an error that is not a string");
    lua_settop(s->L, 0);
    return 0;
}

size_t floor_lua_answer(int thread, const char *body, size_t len, char *out, size_t cap)
{
    struct state *s = &states[thread];
    lua_State *L = s->L;
    cJSON *json;
    struct request_dispatch d;
    char err[256];
    arena_open();
    if (request_decode(body, len, &json, &d, err, sizeof err) < 0) {
        arena_close();
        return failed(s, err);
    }
    struct build b = {json, &d, body, len, thread};
    lua_pushcfunction(L, build_call);
    lua_pushlightuserdata(L, &b);
    int rc = lua_pcall(L, 1, 2, 0);
    arena_close(); /* the tree is done with, as in the host: no cJSON_Delete */
    if (rc != LUA_OK || lua_pcall(L, 1, 1, 0) != LUA_OK)
        return failed(s, lua_tostring(L, -1));

    struct buf o;
    buf_init(&o, cap);
    size_t n = 0;
    if (bind_json_encode_output(L, -1, &o, err, sizeof err) == 0) {
        memcpy(out, o.data, o.len);
        n = o.len;
    }
    buf_free(&o);
    lua_settop(L, 0);
    return n ? n : failed(s, err);
}
