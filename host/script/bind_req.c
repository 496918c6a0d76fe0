/* bind_req: req:respond() and attachment:download() (see bind_req.h). */
#include "script/bind_req.h"

#include "script/bind_json.h"
#include "core/buf.h"
#include "event/fetch.h"
#include "core/log.h"
#include "script/luavm.h"
#include "core/mem.h"
#include "cliq/respond.h"
#include "event/sched.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* Registry key of the weak table: attachment table -> downloaded bytes. */
static const char cache_key = 'd';

/* ---- req:respond ------------------------------------------------------- */

struct respond_wait {
    struct luavm_task *t;
    struct responder_job *job;
    int ok;
    const char *err;
};

static int push_outcome(lua_State *L, void *ud)
{
    struct respond_wait *w = ud;
    if (w->ok) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, w->err ? w->err : "failed");
    return 2;
}

static void respond_done(int ok, const char *err, void *ud)
{
    struct respond_wait *w = ud;
    struct luavm_task *t = w->t;
    w->ok = ok;
    w->err = err;
    luavm_wake_with(t, push_outcome, w);
    free(w);
}

static void respond_cancel(void *ud)
{
    struct respond_wait *w = ud;
    responder_detach(w->job);
    free(w);
}

static int fail(lua_State *L, const char *why)
{
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

/* req:respond() refused without trying: logged like a delivery. */
static int refuse(lua_State *L, struct luavm_task *t, const char *why)
{
    log_msg(LOG_WARN, luavm_task_id(t), "respond kind=respond outcome=%s attempts=0", why);
    return fail(L, why);
}

static int l_respond(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int mt = lua_type(L, 2);
    luaL_argexpected(L, mt == LUA_TSTRING || mt == LUA_TTABLE, 2, "a message (string or table)");
    lua_settop(L, 2);
    struct luavm_task *t = luavm_task_here(L, "req:respond");
    const struct luavm_options *o = luavm_options(luavm_of(t));
    const char *url = luavm_task_response_url(t);
    int *used = luavm_task_responded(t);
    if (!url)
        return refuse(L, t, "none");
    if (*used)
        return refuse(L, t, "used");
    long long expires = luavm_task_received(t) + o->response_url_ttl_ms;
    if (sched_clock_ms() >= expires)
        return refuse(L, t, "expired");

    struct buf out;
    buf_init(&out, o->max_reply_bytes);
    char err[512];
    if (bind_json_encode_output(L, 2, &out, err, sizeof err) < 0) {
        buf_free(&out);
        return luaL_error(L, "req:respond: %s", err);
    }
    *used = 1;
    size_t len;
    char *body = buf_take(&out, &len);
    struct respond_wait *w = xcalloc(1, sizeof *w);
    w->t = t;
    w->job = responder_post(o->responder, url, body, len, expires, luavm_task_id(t), "respond",
                            respond_done, w);
    return luavm_wait(L, t, respond_cancel, w);
}

void bind_req_push_request_methods(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_respond);
    lua_setfield(L, -2, "respond");
}

/* ---- attachment:download ----------------------------------------------- */

struct download {
    struct luavm_task *t;
    lua_State *L; /* any thread of the state, to drop the reference */
    int ref;      /* the attachment table */
    struct fetch *fetch;
    struct fetch_xfer *xfer;
    struct fetch_result *res;
};

/* Pushes the weak cache table. [-0, +1] */
static void push_cache(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
}

static int push_download(lua_State *L, void *ud)
{
    struct download *dl = ud;
    struct fetch_result *r = dl->res;
    if (!r->ok) {
        lua_pushnil(L);
        lua_pushstring(L, r->error);
        return 2;
    }
    if (r->status < 200 || r->status > 299) {
        lua_pushnil(L);
        lua_pushfstring(L, "HTTP %d", (int)r->status);
        return 2;
    }
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    push_cache(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, dl->ref);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
}

static void download_done(struct fetch_result *r, void *ud)
{
    struct download *dl = ud;
    dl->res = r;
    luavm_wake_with(dl->t, push_download, dl);
    luaL_unref(dl->L, LUA_REGISTRYINDEX, dl->ref);
    free(dl);
}

static void download_cancel(void *ud)
{
    struct download *dl = ud;
    fetch_cancel(dl->fetch, dl->xfer);
    luaL_unref(dl->L, LUA_REGISTRYINDEX, dl->ref);
    free(dl);
}

static int l_download(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_cache(L);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TSTRING)
        return 1;
    lua_settop(L, 1);
    if (lua_getfield(L, 1, "url") != LUA_TSTRING)
        return luaL_error(L, "attachment:download: the attachment has no url");
    const char *url = lua_tostring(L, -1);
    struct luavm_task *t = luavm_task_here(L, "attachment:download");
    const struct luavm_options *o = luavm_options(luavm_of(t));
    long long left = luavm_task_received(t) + o->attachment_ttl_ms - sched_clock_ms();
    if (left <= 0)
        return fail(L, "expired");

    lua_pushvalue(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* may raise: before anything is owned */
    struct download *dl = xcalloc(1, sizeof *dl);
    dl->t = t;
    dl->ref = ref;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    dl->L = lua_tothread(L, -1); /* outlives the task's own thread */
    lua_pop(L, 1);
    dl->fetch = o->fetch;
    long long timeout = o->http_timeout_ms;
    long long run_left = luavm_task_time_left(t);
    if (timeout > run_left)
        timeout = run_left > 1 ? run_left : 1;
    struct fetch_request rq = {
        .url = url,
        .timeout_ms = (long)timeout,
        .max_response = o->max_attachment,
        /* The script can change the attachment's url: guarded like
         * http.request. */
        .guard = 1,
        .allow = o->http_allow,
        .nallow = o->nhttp_allow,
    };
    dl->xfer = fetch_start(o->fetch, &rq, download_done, dl);
    return luavm_wait(L, t, download_cancel, dl);
}

void bind_req_push_attachment_methods(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_download);
    lua_setfield(L, -2, "download");
}
