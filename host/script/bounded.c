/* bounded: library functions held to the CPU limit (see bounded.h). */
#include "script/bounded.h"

#include "script/pattern.h"
#include "script/vm.h"

#include <limits.h>

#include <lauxlib.h>
#include <lua.h>

/* Work units charged for each item fetched or compared: about what a
 * fetch through a C __index costs, in bytes copied. */
#define ITEM_UNITS 32

/* table.concat and table.unpack accept, besides tables, values whose
 * metatable has __index and __len (Lua's rule). */
static void check_readable(lua_State *L, int arg)
{
    if (lua_type(L, arg) == LUA_TTABLE)
        return;
    int ok = 0;
    if (lua_getmetatable(L, arg)) {
        ok = lua_getfield(L, -1, "__index") != LUA_TNIL;
        lua_pop(L, 1);
        ok = ok && lua_getfield(L, -1, "__len") != LUA_TNIL;
        lua_pop(L, 2);
    }
    if (!ok)
        luaL_checktype(L, arg, LUA_TTABLE); /* raises */
}

/* Appends t[i] (a string or a number) to b. */
static void concat_item(lua_State *L, luaL_Buffer *b, lua_Integer i)
{
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (%s) at index %I in table for 'concat'", luaL_typename(L, -1),
                   (LUAI_UACINT)i);
    luaL_addvalue(b);
}

/* table.concat(list [, sep [, i [, j]]]) */
static int bd_concat(lua_State *L)
{
    check_readable(L, 1);
    lua_Integer last = luaL_len(L, 1);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (; i < last; i++) { /* not i <= last: last may be the largest integer */
        vm_charge(L, ITEM_UNITS + lsep);
        concat_item(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
    }
    if (i == last)
        concat_item(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

/* table.unpack(list [, i [, j]]): at most the stack's size of items, but
 * each may be fetched by a C __index. */
static int bd_unpack(lua_State *L)
{
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer e = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
    if (i > e)
        return 0;
    lua_Unsigned n = (lua_Unsigned)e - (lua_Unsigned)i; /* items minus one */
    if (n >= (lua_Unsigned)INT_MAX || !lua_checkstack(L, (int)++n))
        return luaL_error(L, "too many results to unpack");
    for (; i < e; i++) {
        vm_charge(L, ITEM_UNITS);
        lua_geti(L, 1, i);
    }
    lua_geti(L, 1, e);
    return (int)n;
}

/* Charges what comparing the values at a and b may cost: a comparison of
 * two long strings reads them both. */
static void charge_compare(lua_State *L, int a, int b)
{
    size_t units = ITEM_UNITS;
    if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING)
        units += lua_rawlen(L, a) + lua_rawlen(L, b);
    vm_charge(L, units);
}

/* The comparison table.sort uses when given none: a < b, as Lua's. */
static int bd_less(lua_State *L)
{
    charge_compare(L, 1, 2);
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

/* A script's own comparison that is a C function (a Lua one runs under
 * the hook): counted, then called. Upvalue 1: the function. */
static int bd_less_by(lua_State *L)
{
    charge_compare(L, 1, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* table.sort(list [, comp]): Lua's own sort (upvalue 1) with a counted
 * comparison, so the order it gives, ties included, is Lua's. */
static int bd_sort(lua_State *L)
{
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushcfunction(L, bd_less);
    } else if (lua_iscfunction(L, 2)) {
        lua_settop(L, 2);
        lua_pushcclosure(L, bd_less_by, 1);
    }
    lua_CFunction sort = lua_tocfunction(L, lua_upvalueindex(1));
    return sort(L);
}

/* A library function whose work grows with its string arguments (1 and
 * 2) without allocating: charged with their lengths, then run. Upvalue 1:
 * the function, a plain C function, called in this call's own frame so
 * its argument errors name it as before. */
static int bd_charged(lua_State *L)
{
    size_t units = ITEM_UNITS;
    for (int i = 1; i <= 2; i++)
        if (lua_type(L, i) == LUA_TSTRING)
            units += lua_rawlen(L, i);
    vm_charge(L, units);
    lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
    return f(L);
}

/* coroutine.resume(co, ...), as Lua's, through vm_resume. */
static int bd_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    int nargs = lua_gettop(L) - 1;
    if (!lua_checkstack(co, nargs)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many arguments to resume");
        return 2;
    }
    lua_xmove(L, co, nargs);
    int nres = 0;
    int st = vm_resume(co, L, nargs, &nres);
    if (st != LUA_OK && st != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_xmove(co, L, 1); /* the error */
        return 2;
    }
    if (!lua_checkstack(L, nres + 1)) {
        lua_pop(co, nres);
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many results to resume");
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
}

/* coroutine.close(co), as Lua's, through vm_close. */
static int bd_close(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    lua_Debug ar;
    int st = lua_status(co);
    /* Suspended (yielded, or not started) or dead; not running or normal. */
    if (co == L || (st == LUA_OK && lua_getstack(co, 0, &ar)))
        return luaL_error(L, "cannot close a %s coroutine", co == L ? "running" : "normal");
    st = vm_close(co, L);
    if (st == LUA_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1); /* the error */
    return 2;
}

/* The message handler xpcall is given: the script's (upvalue 1), unless the
 * code is being stopped. An error raised by the limit hook reaches the
 * handler while Lua runs no hooks (the hook has not returned), so a
 * handler that ran then could loop for ever. */
static int bd_msgh(lua_State *L)
{
    if (vm_of_state(L)->kill)
        return 1; /* the error as it is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall(f, msgh, ...), Lua's (upvalue 1) with msgh wrapped, called in this
 * call's own frame (its continuation and argument errors are as before). */
static int bd_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, bd_msgh, 1);
    lua_replace(L, 2);
    lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
    return f(L);
}

/* Replaces field `name` of the table at t with f, which gets the old
 * value as upvalue 1 when `wrap` is set. [-0, +0] */
static void replace(lua_State *L, int t, const char *name, lua_CFunction f, int wrap)
{
    if (wrap) {
        lua_getfield(L, t, name);
        lua_pushcclosure(L, f, 1);
    } else {
        lua_pushcfunction(L, f);
    }
    lua_setfield(L, t, name);
}

void bounded_open(lua_State *L, int G)
{
    G = lua_absindex(L, G);
    lua_getfield(L, G, "string");
    int t = lua_gettop(L);
    pattern_open(L, t);
    replace(L, t, "byte", bd_charged, 1);
    lua_getfield(L, G, "utf8");
    t = lua_gettop(L);
    static const char *const utf8_fns[] = {"len", "offset", "codes", "codepoint", NULL};
    for (const char *const *f = utf8_fns; *f; f++)
        replace(L, t, *f, bd_charged, 1);
    lua_getfield(L, G, "table");
    t = lua_gettop(L);
    replace(L, t, "concat", bd_concat, 0);
    replace(L, t, "unpack", bd_unpack, 0);
    replace(L, t, "sort", bd_sort, 1);
    lua_getfield(L, G, "coroutine");
    replace(L, lua_gettop(L), "resume", bd_resume, 0);
    replace(L, lua_gettop(L), "close", bd_close, 0);
    replace(L, G, "xpcall", bd_xpcall, 1);
    replace(L, G, "tonumber", bd_charged, 1);
    replace(L, G, "rawequal", bd_charged, 1);
    lua_pop(L, 4);
}
