/* bind_store: store.* for scripts (see bind_store.h). */
#include "script/bind_store.h"

#include "cliq/store.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "script/bind_json.h"
#include "script/vm.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* store.update gives up after this many writes found the key changed. */
#define UPDATE_TRIES 16
/* The longest wait between two of its tries, in ms. */
#define UPDATE_WAIT_MAX_MS 64

/* The registry keys of json.decode, which turns stored values back, and
 * json.array, which marks store.list's items as an array (also when empty). */
static const char decode_key = 0;
static const char array_key = 0;

/* The store of the calling handler's worker, and the task; raises outside
 * a handler or where there is none. */
static struct store *store_here(lua_State *L, const char *what, const struct config **cfg,
                                struct luavm_task **task, struct redis_conn **rc)
{
    struct luavm_task *t = vm_task_here(L, what);
    const struct luavm_options *o = vm_options(vm_of(t));
    if (!o->store || !o->cfg)
        luaL_error(L, "%s is not available here (no store)", what);
    *cfg = o->cfg;
    *task = t;
    *rc = o->redis;
    return o->store;
}

/* The key at `arg`: a string of 1..STORE_MAX_KEY bytes, else raises. */
static const char *check_key(lua_State *L, int arg, size_t *len)
{
    if (lua_type(L, arg) != LUA_TSTRING)
        luaL_typeerror(L, arg, "string");
    const char *k = lua_tolstring(L, arg, len);
    luaL_argcheck(L, *len > 0 && *len <= STORE_MAX_KEY, arg,
                  "a key is a non-empty string of at most 512 bytes");
    return k;
}

/* Whether the options argument at `arg` is a table (nil or none: no
 * options); anything else raises. */
static int has_opts(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    return 1;
}

/* Pushes opts[name], read raw. [-0, +1] */
static int opt(lua_State *L, int arg, const char *name)
{
    lua_pushstring(L, name);
    return lua_rawget(L, arg);
}

/* opts.ttl: seconds > 0, or 0 when absent; anything else raises. */
static double opt_ttl(lua_State *L, int arg)
{
    if (!has_opts(L, arg))
        return 0;
    double ttl = 0;
    if (opt(L, arg, "ttl") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0) ||
            !isfinite(lua_tonumber(L, -1)))
            luaL_argerror(L, arg, "opts.ttl must be a number of seconds > 0");
        ttl = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return ttl;
}

/* Encodes the value at `idx` into a buffer the stack holds (+1). Returns
 * 0, or -1 with nil, err pushed instead (a value json cannot carry, or one
 * past store_max_value_bytes). A nil value raises. [-0, +1|+2] */
static int encode(lua_State *L, int idx, struct store *s, const struct config *cfg,
                  struct buf **out)
{
    *out = bind_json_push_buf(L, (size_t)cfg->store_max_value_bytes);
    char err[512];
    int rc = bind_json_encode(L, idx, *out, "value", err, sizeof err);
    if (rc == 0)
        return 0;
    buf_free(*out); /* now, not when the box is collected */
    lua_pop(L, 1);
    store_count_error(s);
    lua_pushnil(L);
    if (rc == BIND_JSON_FULL)
        lua_pushfstring(L, "value too large: its JSON is over store_max_value_bytes (%d)",
                        (int)cfg->store_max_value_bytes);
    else
        lua_pushstring(L, err);
    return -1;
}

/* Pushes the value of the JSON text. [-0, +1|+2]: on failure (out of
 * memory) nil, err and returns 2; else 1. */
static int push_value(lua_State *L, const char *text, size_t len)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &decode_key);
    lua_pushlstring(L, text, len);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2))
        return 2;
    lua_pop(L, 1);
    return 1;
}

/* Pushes an operation's answer, as the script sees it, and returns how
 * many values. Clears res. May raise (memory, the CPU check in decode):
 * push_result runs it protected. */
static int push_answer(lua_State *L, const struct store_op *op, struct store_result *res)
{
    int n = 1;
    if (res->status == STORE_FAIL) {
        lua_pushnil(L);
        lua_pushstring(L, res->err);
        n = 2;
    } else if (op->kind == STORE_GET) {
        if (res->value)
            n = push_value(L, res->value, res->vlen);
        else
            lua_pushnil(L);
    } else if (op->kind == STORE_INCR) {
        if (res->num_is_int)
            lua_pushinteger(L, (lua_Integer)res->num_int);
        else
            lua_pushnumber(L, (lua_Number)res->num);
    } else if (op->kind == STORE_LIST) {
        lua_createtable(L, (int)res->nitems, 0);
        for (size_t i = 0; i < res->nitems; i++) {
            lua_createtable(L, 0, 2);
            lua_pushlstring(L, res->items[i].key, res->items[i].klen);
            lua_setfield(L, -2, "key");
            if (push_value(L, res->items[i].value, res->items[i].vlen) == 2) {
                lua_remove(L, -3); /* the item */
                lua_remove(L, -3); /* the items */
                store_result_clear(res);
                return 2;
            }
            lua_setfield(L, -2, "value");
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
        lua_insert(L, -2);
        lua_call(L, 1, 1);
        if (res->more && res->next)
            lua_pushlstring(L, res->next, res->nlen);
        else if (res->more && res->nitems)
            lua_pushlstring(L, res->items[res->nitems - 1].key, res->items[res->nitems - 1].klen);
        else
            lua_pushnil(L);
        n = 2;
    } else {
        lua_pushboolean(L, res->status == STORE_OK);
    }
    store_result_clear(res);
    return n;
}

/* What push_guarded's protected call works on. */
struct push_args {
    const struct store_op *op;
    struct store_result *res;
    int (*push)(lua_State *L, const struct store_op *op, struct store_result *res);
    int n;
};

static int push_protected(lua_State *L)
{
    struct push_args *a = lua_touserdata(L, 1);
    lua_pop(L, 1);
    a->n = a->push(L, a->op, a->res);
    return a->n;
}

/* Runs push in protected mode: the result's memory (malloc'd by the
 * backend, up to a page of values) is freed whatever raises while the
 * answer is built, and the error goes on. This is also the part a backend
 * that answers later runs from its callback (vm_wake_with). */
static int push_guarded(lua_State *L, const struct store_op *op, struct store_result *res,
                        int (*push)(lua_State *, const struct store_op *, struct store_result *))
{
    struct push_args a = {op, res, push, 0};
    int top = lua_gettop(L);
    lua_pushcfunction(L, push_protected);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
        store_result_clear(res);
        return lua_error(L);
    }
    return lua_gettop(L) - top;
}

typedef int (*push_fn)(lua_State *L, const struct store_op *op, struct store_result *res);

/* An operation a networked store answers later. */
struct store_wait {
    struct luavm_task *t;
    enum store_kind kind;
    push_fn push;
    struct store_pending *pending;
    struct store_result res;
};

/* vm_wake_with's push: the answer, from the result the wait took. */
static int push_waited(lua_State *L, void *ud)
{
    struct store_wait *w = ud;
    struct store_op op = {.kind = w->kind};
    struct store_result res = w->res;
    push_fn push = w->push;
    free(w);
    return push_guarded(L, &op, &res, push);
}

static void on_done(struct store_result *res, void *ud)
{
    struct store_wait *w = ud;
    w->res = *res; /* takes its memory */
    vm_wake_with(w->t, push_waited, w);
}

/* The task stopped first (its run-time limit, shutdown). */
static void on_cancel(void *ud)
{
    struct store_wait *w = ud;
    store_cancel(w->pending);
    free(w);
}

/* Runs op on the handler's store and pushes its answer, with `push`; a
 * networked store's answer comes after a wait. The value at `vidx` (0 or
 * nil: none) is encoded into op first. */
static int run_with(lua_State *L, struct store_op *op, int vidx, const char *what, push_fn push)
{
    const struct config *cfg;
    struct luavm_task *t;
    struct redis_conn *rc;
    struct store *s = store_here(L, what, &cfg, &t, &rc);
    struct buf *b = NULL;
    if (vidx && !lua_isnil(L, vidx)) {
        if (encode(L, vidx, s, cfg, &b) < 0)
            return 2;
        op->value = b->data;
        op->vlen = b->len;
    }
    struct store_result res;
    struct store_wait *w = xcalloc(1, sizeof *w);
    int now = store_start(s, rc, op, &res, on_done, w, &w->pending);
    if (b)
        buf_free(b); /* written or copied: its JSON goes now, not at the next collection */
    if (now) {
        free(w);
        return push_guarded(L, op, &res, push);
    }
    w->t = t;
    w->kind = op->kind;
    w->push = push;
    return vm_wait(L, t, on_cancel, w);
}

static int run(lua_State *L, struct store_op *op, int vidx, const char *what)
{
    return run_with(L, op, vidx, what, push_answer);
}

/* An operation that takes only a key: store.get, store.delete. */
static int key_op(lua_State *L, enum store_kind kind, const char *what)
{
    struct store_op op = {.kind = kind};
    op.key = check_key(L, 1, &op.klen);
    return run(L, &op, 0, what);
}

static int l_get(lua_State *L)
{
    return key_op(L, STORE_GET, "store.get");
}

static int l_set(lua_State *L)
{
    struct store_op op = {.kind = STORE_SET};
    op.key = check_key(L, 1, &op.klen);
    if (lua_isnoneornil(L, 2))
        return luaL_argerror(L, 2, "a value is needed (store.delete removes a key)");
    op.ttl_s = opt_ttl(L, 3);
    if (has_opts(L, 3)) {
        opt(L, 3, "only_if_absent");
        op.only_if_absent = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return run(L, &op, 2, "store.set");
}

static int l_incr(lua_State *L)
{
    struct store_op op = {.kind = STORE_INCR, .by_is_int = 1, .by_int = 1};
    op.key = check_key(L, 1, &op.klen);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TNUMBER);
        if (lua_isinteger(L, 2)) {
            op.by_int = (long long)lua_tointeger(L, 2);
        } else {
            op.by_is_int = 0;
            op.by = (double)lua_tonumber(L, 2);
            luaL_argcheck(L, isfinite(op.by), 2, "by must be a finite number");
        }
    }
    op.ttl_s = opt_ttl(L, 3);
    return run(L, &op, 0, "store.incr");
}

static int l_delete(lua_State *L)
{
    return key_op(L, STORE_DELETE, "store.delete");
}

static int l_list(lua_State *L)
{
    struct store_op op = {.kind = STORE_LIST, .limit = STORE_DEFAULT_LIST};
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_typeerror(L, 1, "string");
    op.key = lua_tolstring(L, 1, &op.klen);
    luaL_argcheck(L, op.klen <= STORE_MAX_KEY, 1, "a prefix is at most 512 bytes");
    if (has_opts(L, 2)) {
        if (opt(L, 2, "limit") != LUA_TNIL) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
                lua_tointeger(L, -1) > STORE_MAX_LIST)
                luaL_argerror(L, 2, "opts.limit must be an integer from 1 to 1000");
            op.limit = (long)lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
        if (opt(L, 2, "after") != LUA_TNIL) {
            if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) > STORE_MAX_KEY)
                luaL_argerror(L, 2, "opts.after must be a key (a string of at most 512 bytes)");
            op.after = lua_tolstring(L, -1, &op.alen); /* stays on the stack */
        } else {
            lua_pop(L, 1);
        }
    }
    return run(L, &op, 0, "store.list");
}

/* getv's answer: true, value (nil when absent), version. */
static int push_versioned(lua_State *L, const struct store_op *op, struct store_result *res)
{
    if (res->status == STORE_FAIL)
        return push_answer(L, op, res);
    long long version = res->version;
    lua_pushboolean(L, 1);
    if (!res->value) {
        lua_pushnil(L);
    } else if (push_value(L, res->value, res->vlen) == 2) {
        lua_remove(L, -3); /* true */
        store_result_clear(res);
        return 2;
    }
    store_result_clear(res);
    lua_pushinteger(L, (lua_Integer)version);
    return 3;
}

/* getv(key) -> true, value | nil, version | nil, err: store.update's read. */
static int l_getv(lua_State *L)
{
    struct store_op op = {.kind = STORE_GET};
    op.key = check_key(L, 1, &op.klen);
    return run_with(L, &op, 0, "store.update", push_versioned);
}

/* cas(key, value, version, opts) -> true | false (changed) | nil, err:
 * store.update's write; a nil value deletes. */
static int l_cas(lua_State *L)
{
    struct store_op op = {.kind = STORE_CAS};
    op.key = check_key(L, 1, &op.klen);
    op.version = (long long)luaL_checkinteger(L, 3);
    op.ttl_s = opt_ttl(L, 4);
    luaL_checkany(L, 2);
    return run(L, &op, 2, "store.update");
}

/* A random number, from a generator of this thread's (seeded once). */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t x;
    if (x == 0 && (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x || x == 0))
        x = (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15ull; /* a per-thread fallback */
    x ^= x << 13;                                            /* xorshift64 */
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

/* backoff(try) -> seconds: how long store.update waits after its write
 * number `try` found the key changed, a random 0..min(2^try,
 * UPDATE_WAIT_MAX_MS) ms. Writers that collide on one key (handlers that
 * yield between their read and their write, on a networked store, or hosts
 * sharing it) would otherwise try again in step and collide again until
 * their tries run out. */
static int l_backoff(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    long long cap = n < 1 ? 1 : n >= 6 ? UPDATE_WAIT_MAX_MS : 1LL << n;
    lua_pushnumber(L, (lua_Number)(next_random() % (uint64_t)(cap + 1)) / 1000.0);
    return 1;
}

/* store.update, around getv and cas. `_ENV = nil`: it sees no globals. */
static const char update_code[] =
    "local getv, cas, backoff, sleep, type, error, tries = ...\n"
    "local _ENV = nil\n"
    "return function(key, fn, opts)\n"
    "  if type(fn) ~= 'function' then\n"
    "    error(\"bad argument #2 to 'update' (function expected, got \" .. type(fn) .. ')', 2)\n"
    "  end\n"
    "  if opts ~= nil and type(opts) ~= 'table' then\n"
    "    error(\"bad argument #3 to 'update' (table expected, got \" .. type(opts) .. ')', 2)\n"
    "  end\n"
    "  for try = 1, tries do\n"
    "    if try > 1 then sleep(backoff(try - 1)) end\n"
    "    local ok, old, version = getv(key)\n"
    "    if not ok then return nil, old end\n"
    "    local new = fn(old)\n"
    "    local done, err = cas(key, new, version, opts)\n"
    "    if done then return new end\n"
    "    if done == nil then return nil, err end\n"
    "  end\n"
    "  return nil, 'conflict: ' .. key .. ' changed ' .. tries .. ' times'\n"
    "end\n";

/* Pushes sb[name], read raw. [-0, +1] */
static void push_from(lua_State *L, int sb, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, sb);
}

void bind_store_open(lua_State *L, int sb)
{
    sb = lua_absindex(L, sb);
    /* json.decode, from the json module (libs.c opens it first). */
    push_from(L, sb, "json");
    lua_getfield(L, -1, "decode");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &decode_key);
    lua_getfield(L, -1, "array");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_key);
    lua_pop(L, 1);

    static const luaL_Reg fns[] = {
        {"get", l_get},       {"set", l_set},   {"incr", l_incr},
        {"delete", l_delete}, {"list", l_list}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    if (luaL_loadbufferx(L, update_code, sizeof update_code - 1, "=store.update", "t") != LUA_OK)
        lua_error(L);
    lua_pushcfunction(L, l_getv);
    lua_pushcfunction(L, l_cas);
    lua_pushcfunction(L, l_backoff);
    push_from(L, sb, "sleep"); /* bind_http's, opened before */
    push_from(L, sb, "type");
    push_from(L, sb, "error");
    lua_pushinteger(L, UPDATE_TRIES);
    lua_call(L, 7, 1);
    lua_setfield(L, -2, "update");
}
