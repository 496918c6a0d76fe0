/* bind_req: the request object, req:respond() and attachment:download() (see bind_req.h). */
#include "script/bind_req.h"

#include "cliq/request.h"
#include "cliq/respond.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/fetch.h"
#include "event/sched.h"
#include "script/bind_json.h"
#include "script/vm.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* Registry keys: the weak table attachment table -> downloaded bytes, and
 * the metatables of the request object and of its attachments. */
static const char cache_key = 'd';
static const char request_mt_key = 'r';
static const char attachment_mt_key = 'f';

/* ---- req:respond ------------------------------------------------------- */

struct respond_wait {
    struct luavm_task *t;
    struct responder_job *job;
    enum responder_outcome outcome;
    const char *err;
    struct timespec t0; /* for the task's journal */
};

static int push_outcome(lua_State *L, void *ud)
{
    struct respond_wait *w = ud;
    if (w->outcome == RESPONDER_DELIVERED) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, w->err ? w->err : "failed");
    return 2;
}

static void respond_done(enum responder_outcome outcome, const char *err, void *ud)
{
    struct respond_wait *w = ud;
    struct luavm_task *t = w->t;
    w->outcome = outcome;
    w->err = err;
    if (vm_task_noted(t))
        vm_task_note_request(
            t, "respond", "POST", vm_task_response_url(t), outcome == RESPONDER_DELIVERED ? 200 : 0,
            outcome == RESPONDER_DELIVERED ? NULL : (err ? err : "failed"), vm_ms_since(&w->t0));
    vm_wake_with(t, push_outcome, w);
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
    if (vm_task_noted(t))
        vm_task_note_request(t, "respond", "POST", vm_task_response_url(t), 0, why, 0);
    log_msg(LOG_WARN, vm_task_id(t), "respond kind=respond outcome=%s attempts=0", why);
    return fail(L, why);
}

static int l_respond(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int mt = lua_type(L, 2);
    luaL_argexpected(L, mt == LUA_TSTRING || mt == LUA_TTABLE, 2, "a message (string or table)");
    lua_settop(L, 2);
    struct luavm_task *t = vm_task_here(L, "req:respond");
    const struct luavm_options *o = vm_options(vm_of(t));
    const char *url = vm_task_response_url(t);
    int *used = vm_task_responded(t);
    if (!url)
        return refuse(L, t, "none");
    if (*used)
        return refuse(L, t, "used");
    long long expires = vm_task_received(t) + o->response_url_ttl_ms;
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
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    w->job = responder_post(o->responder, url, o->response_url_allow, o->nresponse_url_allow, body,
                            len, expires, vm_task_id(t), "respond", respond_done, w);
    return vm_wait(L, t, respond_cancel, w);
}

static void push_request_methods(lua_State *L)
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
    size_t held; /* vm_hold's, for the transfer and the file */
};

/* Pushes the weak cache table. [-0, +1] */
static void push_cache(lua_State *L)
{
    vm_push_weak_table(L, &cache_key);
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

/* fetch's room callback: each piece of the file is held as it comes. */
static int download_room(void *ud, size_t more)
{
    struct download *dl = ud;
    if (vm_hold(dl->t, more) < 0)
        return -1;
    dl->held += more;
    return 0;
}

static void download_done(struct fetch_result *r, void *ud)
{
    struct download *dl = ud;
    vm_release(dl->t, dl->held); /* the body is about to be in the heap */
    dl->res = r;
    vm_wake_with(dl->t, push_download, dl);
    luaL_unref(dl->L, LUA_REGISTRYINDEX, dl->ref);
    free(dl);
}

static void download_cancel(void *ud)
{
    struct download *dl = ud;
    fetch_cancel(dl->fetch, dl->xfer);
    vm_release(dl->t, dl->held);
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
    lua_pushliteral(L, "url"); /* raw, and kept on the stack while used */
    if (lua_rawget(L, 1) != LUA_TSTRING)
        return luaL_error(L, "attachment:download: the attachment has no url");
    const char *url = lua_tostring(L, -1);
    struct luavm_task *t = vm_task_here(L, "attachment:download");
    const struct luavm_options *o = vm_options(vm_of(t));
    long long left = vm_task_received(t) + o->attachment_ttl_ms - sched_clock_ms();
    if (left <= 0)
        return fail(L, "expired");
    /* The url is Cliq's to give (and the script's to change): it is held
     * to the same hosts as response_url before anything is sent. */
    char why[512];
    if (respond_url_check(url, o->response_url_allow, o->nresponse_url_allow, why, sizeof why) < 0)
        return fail(L, why);

    lua_pushvalue(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* may raise: before anything is owned */
    /* The transfer, and the file as it arrives, count against the
     * handler's memory while they are outside the heap. */
    if (vm_hold(t, VM_TRANSFER_COST) < 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return fail(L, "not enough memory left to receive the file");
    }
    struct download *dl = xcalloc(1, sizeof *dl);
    dl->held = VM_TRANSFER_COST;
    dl->t = t;
    dl->ref = ref;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    dl->L = lua_tothread(L, -1); /* outlives the task's own thread */
    lua_pop(L, 1);
    dl->fetch = o->fetch;
    long long timeout = o->http_timeout_ms;
    long long run_left = vm_task_time_left(t);
    if (timeout > run_left)
        timeout = run_left > 1 ? run_left : 1;
    struct fetch_request rq = {
        .url = url,
        .timeout_ms = (long)timeout,
        .max_response = o->max_attachment,
        .room = download_room,
        .room_ud = dl,
        /* The script can change the attachment's url: each connection is
         * also judged like http.request's, against the same list. No
         * redirects are followed. */
        .guard = 1,
        .allow = o->response_url_allow,
        .nallow = o->nresponse_url_allow,
        .allow_setting = "response_url_allow",
    };
    dl->xfer = fetch_start(o->fetch, &rq, download_done, dl);
    return vm_wait(L, t, download_cancel, dl);
}

static void push_attachment_methods(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_download);
    lua_setfield(L, -2, "download");
}

/* ---- the request object ------------------------------------------------- */

void bind_req_open(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "cliq.request");
    lua_setfield(L, -2, "__name");
    push_request_methods(L);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0); /* shared by every script: out of their reach */
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &request_mt_key);

    /* Attachments stay plain JSON objects (string keys) with a method. */
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "cliq.attachment");
    lua_setfield(L, -2, "__name");
    push_attachment_methods(L);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0); /* shared by every script: out of their reach */
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &attachment_mt_key);
}

/* Gives every attachment in params.attachments its download() method. */
static void mark_attachments(lua_State *L, int params)
{
    if (lua_getfield(L, params, "attachments") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
            if (lua_getfield(L, -1, "url") == LUA_TSTRING) {
                lua_rawgetp(L, LUA_REGISTRYINDEX, &attachment_mt_key);
                lua_setmetatable(L, -3);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Builds the request object from the parsed body. [-0, +1] */
void bind_req_push_request(lua_State *L, const struct luavm_call *c)
{
    const struct request_dispatch *d = c->d;
    lua_createtable(L, 0, 10);
    int req = lua_gettop(L);
    bind_json_push_tree(L, c->json, c->text, c->len);
    int body = req + 1;
    lua_pushvalue(L, body);
    lua_setfield(L, req, "body");

    if (lua_getfield(L, body, "params") != LUA_TTABLE) {
        lua_pop(L, 1);
        bind_json_new_object(L, 0); /* so handlers can always index params */
    } else {
        mark_attachments(L, lua_gettop(L));
    }
    lua_setfield(L, req, "params");

    lua_pushstring(L, d->type);
    lua_setfield(L, req, "type");
    if (d->name[0]) {
        lua_pushstring(L, d->name);
        lua_setfield(L, req, "name");
    }
    lua_pushstring(L, d->key);
    lua_setfield(L, req, "handler");
    if (d->action[0]) {
        lua_pushstring(L, d->action);
        lua_setfield(L, req, "action");
    }
    lua_pushstring(L, c->req_id);
    lua_setfield(L, req, "id");
    if (lua_getfield(L, body, "response_url") == LUA_TSTRING)
        lua_setfield(L, req, "response_url");
    else
        lua_pop(L, 1);
    if (lua_getfield(L, body, "timestamp") == LUA_TNUMBER)
        lua_setfield(L, req, "timestamp");
    else
        lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &request_mt_key);
    lua_setmetatable(L, req);
    lua_settop(L, req);
}

/* Pushes a table of name -> value from n pairs. [-0, +1] */
static void push_pairs(lua_State *L, const struct luavm_pair *p, size_t n)
{
    lua_createtable(L, 0, n < 64 ? (int)n : 64);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, p[i].value);
        lua_setfield(L, -2, p[i].name);
    }
}

void bind_req_push_hook(lua_State *L, const struct luavm_call *c)
{
    lua_createtable(L, 0, 7);
    int req = lua_gettop(L);
    lua_pushlstring(L, c->text, c->len);
    lua_setfield(L, req, "text");
    if (c->json)
        bind_json_push_tree(L, c->json, c->text, c->len);
    else
        lua_pushlstring(L, c->text, c->len);
    lua_setfield(L, req, "body");
    lua_pushstring(L, c->d->name);
    lua_setfield(L, req, "name");
    lua_pushstring(L, c->req_id);
    lua_setfield(L, req, "id");
    lua_pushstring(L, c->hook && c->hook->method ? c->hook->method : "POST");
    lua_setfield(L, req, "method");
    push_pairs(L, c->hook ? c->hook->headers : NULL, c->hook ? c->hook->nheaders : 0);
    lua_setfield(L, req, "headers");
    push_pairs(L, c->hook ? c->hook->query : NULL, c->hook ? c->hook->nquery : 0);
    lua_setfield(L, req, "query");
}

void bind_req_push_job(lua_State *L, const struct luavm_call *c)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, c->d->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, c->req_id);
    lua_setfield(L, -2, "id");
    long long ms = c->job ? c->job->scheduled_ms : 0;
    if (ms % 1000 == 0)
        lua_pushinteger(L, ms / 1000);
    else
        lua_pushnumber(L, (double)ms / 1000.0);
    lua_setfield(L, -2, "scheduled_at");
    lua_pushboolean(L, c->job && c->job->catch_up);
    lua_setfield(L, -2, "catch_up");
}
