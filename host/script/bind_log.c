/* bind_log: the log module, print and warn for scripts (see bind_log.h). */
#include "script/bind_log.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/jsonw.h"
#include "script/bind_json.h"

#include <lauxlib.h>
#include <string.h>

/* Joins the arguments 1..n into b. [-0, +0] */
static void join_args(lua_State *L, int n, struct buf *b)
{
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            buf_addc(b, ' ');
        if (lua_type(L, i) == LUA_TTABLE) {
            size_t mark = b->len;
            char err[256];
            if (bind_json_encode(L, i, b, "value", err, sizeof err) == 0)
                continue;
            b->len = mark; /* not JSON: fall back to tostring */
        }
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        /* Past the line's cap the rest is cut, not the whole value lost. */
        size_t room = b->max > b->len ? b->max - b->len : 0;
        buf_add(b, s, len < room ? len : room);
        lua_pop(L, 1);
    }
}

/* The task's journal gets the line, whatever the log's level. */
static void note_line(const struct bind_log_ctx *ctx, enum log_level level, const struct buf *msg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    struct buf j;
    buf_init(&j, 6 * LOG_LINE_MAX + 64);
    buf_printf(&j, "{\"kind\":\"log\",\"level\":\"%s\",\"line\":",
               level >= LOG_DEBUG && level <= LOG_ERROR ? names[level - LOG_DEBUG] : "info");
    jsonw_string(&j, msg->data ? msg->data : "", msg->len, JSONW_REPLACE, NULL);
    buf_addc(&j, '}');
    if (j.data)
        ctx->note(ctx->note_ud, j.data, j.len);
    buf_free(&j);
}

static int emit(lua_State *L, enum log_level level)
{
    const struct bind_log_ctx *ctx = lua_touserdata(L, lua_upvalueindex(1));
    int noted = ctx->note != NULL;
    if (level < log_get_level() && !noted)
        return 0;
    /* An argument's __tostring may raise: the buffers belong to userdata,
     * so nothing leaks when it does. */
    int n = lua_gettop(L);
    struct buf *msg = bind_json_push_buf(L, LOG_LINE_MAX);
    join_args(L, n, msg);
    if (noted)
        note_line(ctx, level, msg);
    if (level < log_get_level()) {
        buf_free(msg);
        return 0;
    }
    /* Room for the message escaped (4 bytes a byte at worst): the log cuts
     * the line itself, after masking secrets. */
    struct buf *line = bind_json_push_buf(L, 4 * LOG_LINE_MAX + 512);
    if (ctx->script[0])
        log_kv(line, "script", ctx->script, strlen(ctx->script));
    log_kv(line, "msg", msg->data ? msg->data : "", msg->len);
    log_msg(level, ctx->req_id[0] ? ctx->req_id : NULL, "%s", line->data ? line->data + 1 : "");
    buf_free(line);
    buf_free(msg);
    return 0;
}

static int l_debug(lua_State *L)
{
    return emit(L, LOG_DEBUG);
}

static int l_info(lua_State *L)
{
    return emit(L, LOG_INFO);
}

static int l_warn(lua_State *L)
{
    return emit(L, LOG_WARN);
}

static int l_error(lua_State *L)
{
    return emit(L, LOG_ERROR);
}

/* Lua's warn(msg1, ...): the strings joined, as one log line at warn
 * level. A single message starting with '@' is a control message, as in
 * Lua, and writes nothing. */
static int l_lua_warn(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= (n ? n : 1); i++)
        luaL_checkstring(L, i);
    const char *first = lua_tostring(L, 1);
    if (n == 1 && first[0] == '@')
        return 0;
    lua_concat(L, n);
    return emit(L, LOG_WARN);
}

int bind_log_open(lua_State *L, struct bind_log_ctx *ctx, int env_idx)
{
    env_idx = lua_absindex(L, env_idx);
    static const luaL_Reg fns[] = {
        {"debug", l_debug}, {"info", l_info}, {"warn", l_warn}, {"error", l_error}, {NULL, NULL},
    };
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, ctx);
    luaL_setfuncs(L, fns, 1);
    lua_pushlightuserdata(L, ctx);
    lua_pushcclosure(L, l_info, 1);
    lua_setfield(L, env_idx, "print");
    lua_pushlightuserdata(L, ctx);
    lua_pushcclosure(L, l_lua_warn, 1);
    lua_setfield(L, env_idx, "warn");
    return 1;
}
