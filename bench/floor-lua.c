/*
 * floor-lua: Lua's share of a call, for bench/floor.c built as
 * cliqhost-bench-floor-lua (a measuring instrument for bench/run.sh).
 *
 * The part of cliqhost's work that its Lua contract makes necessary, done
 * with cliqhost's own code and nothing around it: request_decode (the body's
 * parse and the checks that pick a handler), bind_json_push_tree (the body
 * as Lua tables: integers, json.null, [] and {} marked), a request object
 * with DESIGN.md's fields, the handler (loaded once per thread, with the
 * standard libraries and lualib/ on package.path), and
 * bind_json_encode_output (its return value as {"output": ...}). No
 * sandbox, no CPU or memory limit, no log, no journal, no metrics, no
 * replay check, no libmicrohttpd: what the floor plus Lua costs, so that
 * cliqhost / floor-lua is what everything else the host promises costs.
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

static lua_State *states[FLOOR_LUA_THREADS];
static int handlers[FLOOR_LUA_THREADS];
static unsigned long long calls[FLOOR_LUA_THREADS];

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
        lua_getfield(L, -1, "execution");
        if (!lua_isfunction(L, -1)) {
            fprintf(stderr, "%s: no execution function\n", script);
            return -1;
        }
        handlers[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_settop(L, 0);
        states[i] = L;
    }
    return 0;
}

size_t floor_lua_answer(int thread, const char *body, size_t len, char *out, size_t cap)
{
    lua_State *L = states[thread];
    cJSON *json;
    struct request_dispatch d;
    char err[256];
    arena_open();
    if (request_decode(body, len, &json, &d, err, sizeof err) < 0) {
        arena_close();
        return 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, handlers[thread]);
    lua_createtable(L, 0, 10);
    int req = lua_gettop(L);
    bind_json_push_tree(L, json, body, len);
    cJSON_Delete(json);
    arena_close();
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
    lua_pushstring(L, d.type);
    lua_setfield(L, req, "type");
    lua_pushstring(L, d.name);
    lua_setfield(L, req, "name");
    lua_pushstring(L, d.key);
    lua_setfield(L, req, "handler");
    lua_pushfstring(L, "%d-%I", thread, (lua_Integer)++calls[thread]);
    lua_setfield(L, req, "id");

    size_t n = 0;
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
        struct buf b;
        buf_init(&b, cap);
        if (bind_json_encode_output(L, -1, &b, err, sizeof err) == 0) {
            memcpy(out, b.data, b.len);
            n = b.len;
        }
        buf_free(&b);
    }
    lua_settop(L, 0);
    return n;
}
