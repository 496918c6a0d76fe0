/* bind_http: http.request and sleep for scripts (see bind_http.h). */
#include "script/bind_http.h"

#include "core/buf.h"
#include "core/mem.h"
#include "event/fetch.h"
#include "event/sched.h"
#include "script/vm.h"

#include <ctype.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

/* Request headers a script may send at most. */
#define MAX_HEADERS 64

/* ---- sleep ------------------------------------------------------------- */

struct sleeper {
    struct luavm_task *t;
    struct sched *sched;
    struct sched_timer *timer;
};

static void sleep_done(struct sched *s, void *ud)
{
    (void)s;
    struct sleeper *z = ud;
    struct luavm_task *t = z->t;
    free(z);
    vm_wake(t, 0);
}

static void sleep_cancel(void *ud)
{
    struct sleeper *z = ud;
    sched_timer_cancel(z->sched, z->timer);
    free(z);
}

static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && isfinite(s), 1, "seconds must be a number >= 0");
    struct luavm_task *t = vm_task_here(L, "sleep");
    const struct luavm_options *o = vm_options(vm_of(t));
    struct sleeper *z = xmalloc(sizeof *z);
    z->t = t;
    z->sched = o->sched;
    double ms = s * 1000.0;
    long long wait = ms > 1e12 ? (long long)1e12 : (long long)ms;
    z->timer = sched_timer_add(o->sched, wait, sleep_done, z);
    return vm_wait(L, t, sleep_cancel, z);
}

/* ---- http.request ------------------------------------------------------ */

struct http_call {
    struct luavm_task *t;
    struct fetch *fetch;
    struct fetch_xfer *xfer;
    size_t held; /* vm_hold's, for the transfer and its response */
    /* For the task's journal (when it has one): what was asked, and when. */
    char *method, *url;
    struct timespec t0;
};

void bind_http_push_headers(lua_State *L, const char *lines, size_t len)
{
    lua_createtable(L, 0, 8);
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && colon > p) {
            char name[128];
            size_t n = (size_t)(colon - p);
            if (n < sizeof name) {
                for (size_t i = 0; i < n; i++)
                    name[i] = (char)tolower((unsigned char)p[i]);
                const char *v = colon + 1;
                const char *ve = eol;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                lua_pushlstring(L, name, n);
                if (lua_rawget(L, -2) == LUA_TSTRING) {
                    lua_pushliteral(L, ", ");
                    lua_pushlstring(L, v, (size_t)(ve - v));
                    lua_concat(L, 3);
                } else {
                    lua_pop(L, 1);
                    lua_pushlstring(L, v, (size_t)(ve - v));
                }
                lua_pushlstring(L, name, n);
                lua_insert(L, -2);
                lua_rawset(L, -3);
            }
        }
        p = next;
    }
}

/* Pushes nil, err or the response table. [-0, +(1|2)] */
static int push_response(lua_State *L, void *ud)
{
    struct fetch_result *r = ud;
    if (!r->ok) {
        lua_pushnil(L);
        lua_pushstring(L, r->error);
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
    bind_http_push_headers(L, r->headers.data ? r->headers.data : "", r->headers.len);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");
    return 1;
}

/* fetch's room callback: each piece of the response is held as it comes. */
static int http_room(void *ud, size_t more)
{
    struct http_call *hc = ud;
    if (vm_hold(hc->t, more) < 0)
        return -1;
    hc->held += more;
    return 0;
}

static void http_done(struct fetch_result *r, void *ud)
{
    struct http_call *hc = ud;
    struct luavm_task *t = hc->t;
    vm_release(t, hc->held); /* the body is about to be in the heap */
    if (hc->url)
        vm_task_note_request(t, "http", hc->method, hc->url, r->ok ? r->status : 0,
                             r->ok ? NULL : r->error, vm_ms_since(&hc->t0));
    free(hc->method);
    free(hc->url);
    free(hc);
    vm_wake_with(t, push_response, r);
}

static void http_cancel(void *ud)
{
    struct http_call *hc = ud;
    fetch_cancel(hc->fetch, hc->xfer);
    vm_release(hc->t, hc->held);
    free(hc->method);
    free(hc->url);
    free(hc);
}

/* Pushes field `k` of the options table (raw: none of the script's code
 * runs while the host reads it) and returns it as an optional string. The
 * value stays on the stack, so the string lives until the call returns,
 * whatever happens to the table. [-0, +1] */
static int opt_raw(lua_State *L, int opts, const char *k)
{
    lua_pushstring(L, k);
    return lua_rawget(L, opts);
}

static const char *opt_string(lua_State *L, const char *k, size_t *len)
{
    int t = opt_raw(L, 1, k);
    if (t == LUA_TSTRING)
        return lua_tolstring(L, -1, len);
    if (t != LUA_TNIL)
        luaL_error(L, "http.request: '%s' must be a string (got %s)", k, lua_typename(L, t));
    return NULL;
}

static int header_text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    return 1;
}

static int l_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    size_t urllen = 0, bodylen = 0;
    const char *url = opt_string(L, "url", &urllen);
    if (!url)
        return luaL_error(L, "http.request: 'url' is required");
    const char *method = opt_string(L, "method", NULL);
    const char *body = opt_string(L, "body", &bodylen);
    if (method) {
        for (const char *p = method; *p; p++)
            if (!isupper((unsigned char)*p))
                return luaL_error(L, "http.request: method '%s' is not an HTTP method", method);
    }

    struct luavm_task *t = vm_task_here(L, "http.request");
    const struct luavm_options *o = vm_options(vm_of(t));

    double timeout_ms = (double)o->http_timeout_ms;
    int tt = opt_raw(L, 1, "timeout");
    if (tt == LUA_TNUMBER) {
        double s = lua_tonumber(L, -1);
        if (!(s > 0) || !isfinite(s))
            return luaL_error(L, "http.request: 'timeout' must be a number of seconds > 0");
        timeout_ms = s * 1000.0;
    } else if (tt != LUA_TNIL) {
        return luaL_error(L, "http.request: 'timeout' must be a number of seconds");
    }
    lua_pop(L, 1);
    long long left = vm_task_time_left(t);
    if (timeout_ms > (double)left)
        timeout_ms = (double)(left > 1 ? left : 1);
    if (timeout_ms < 1)
        timeout_ms = 1;

    long redirects = 0;
    int rt = opt_raw(L, 1, "redirects");
    if (rt == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 &&
        lua_tointeger(L, -1) <= 20)
        redirects = (long)lua_tointeger(L, -1);
    else if (rt != LUA_TNIL)
        return luaL_error(L, "http.request: 'redirects' must be an integer from 0 to 20");
    lua_pop(L, 1);

    /* Headers become "Name: value" lines, kept alive on the stack. */
    const char *lines[MAX_HEADERS];
    size_t nlines = 0;
    int ht = opt_raw(L, 1, "headers");
    if (ht == LUA_TTABLE) {
        int h = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, h)) {
            if (lua_type(L, -2) != LUA_TSTRING ||
                (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
                return luaL_error(L, "http.request: headers must map names to strings");
            if (nlines == MAX_HEADERS)
                return luaL_error(L, "http.request: more than %d headers", MAX_HEADERS);
            size_t kn, vn;
            const char *k = lua_tolstring(L, -2, &kn);
            const char *v = lua_tolstring(L, -1, &vn);
            if (!kn || !header_text_ok(k, kn) || !header_text_ok(v, vn) || memchr(k, ':', kn))
                return luaL_error(L, "http.request: header '%s' has a bad name or value", k);
            if (!strncasecmp(k, "X-Cliqhost-", 11))
                return luaL_error(
                    L, "http.request: header '%s': X-Cliqhost-* headers are the host's own", k);
            lua_pushfstring(L, "%s: %s", k, v);
            lines[nlines++] = lua_tostring(L, -1);
            lua_insert(L, h); /* keep the line below the iteration */
            h++;
            lua_pop(L, 1);
        }
    } else if (ht != LUA_TNIL) {
        return luaL_error(L, "http.request: 'headers' must be a table");
    }

    /* The transfer, and the response as it arrives, count against the
     * handler's memory while they are outside the heap. */
    if (vm_hold(t, VM_TRANSFER_COST) < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "not enough memory left to receive a response");
        return 2;
    }
    struct http_call *hc = xmalloc(sizeof *hc);
    hc->t = t;
    hc->fetch = o->fetch;
    hc->held = VM_TRANSFER_COST;
    hc->method = vm_task_noted(t) ? xstrdup(method ? method : (body ? "POST" : "GET")) : NULL;
    hc->url = vm_task_noted(t) ? xstrdup(url) : NULL;
    clock_gettime(CLOCK_MONOTONIC, &hc->t0);
    struct fetch_request rq = {
        .method = method,
        .url = url,
        .headers = lines,
        .nheaders = nlines,
        .body = body,
        .body_len = bodylen,
        .timeout_ms = (long)timeout_ms,
        .max_response = o->max_http_response,
        .room = http_room,
        .room_ud = hc,
        .max_redirects = redirects,
        .guard = 1,
        .allow = o->http_allow,
        .nallow = o->nhttp_allow,
    };
    hc->xfer = fetch_start(o->fetch, &rq, http_done, hc);
    return vm_wait(L, t, http_cancel, hc);
}

void bind_http_open(lua_State *L, int env_idx)
{
    env_idx = lua_absindex(L, env_idx);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_request);
    lua_setfield(L, -2, "request");
    lua_setfield(L, env_idx, "http");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, env_idx, "sleep");
}
