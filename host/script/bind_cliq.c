/* bind_cliq: cliq.post_* for scripts, through the outbox (see bind_cliq.h). */
#include "script/bind_cliq.h"

#include "cliq/outbox.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/jsonw.h"
#include "core/mem.h"
#include "script/bind_json.h"
#include "script/vm.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* The longest component name or app id accepted. */
#define TARGET_MAX 200
/* Room for the JSON of a post past outbox_max_post_bytes, so that the
 * outbox can say how large one a bit over the cap is; beyond this room the
 * message says "more than". */
#define BODY_ROOM(max) (2 * (size_t)(max) + 64)

/* A handler waiting for its post. Two owners: the task (until it is woken
 * or stopped) and the outcome on its way back (until it arrives or is
 * dropped); the last one frees it. */
struct post_wait {
    struct luavm_task *t;
    int refs;
    int task_gone;
    struct outbox_outcome *oc; /* while pushing */
    /* For the task's journal: which binding posted where, and when. */
    char what[256];
    struct timespec t0;
};

static void release(struct post_wait *w)
{
    if (--w->refs == 0)
        free(w);
}

static void wait_cancel(void *ud)
{
    struct post_wait *w = ud;
    w->task_gone = 1;
    release(w);
}

static void wait_drop(void *ud)
{
    release(ud);
}

/* Pushes what the script gets back. */
static int push_outcome(lua_State *L, void *ud)
{
    struct post_wait *w = ud;
    const struct outbox_outcome *oc = w->oc;
    if (oc->state == OUTBOX_FAILED) {
        lua_pushnil(L);
        lua_pushstring(L, oc->error ? oc->error : "failed");
        return 2;
    }
    if (oc->state == OUTBOX_DELIVERED && oc->reply_len) {
        cJSON *tree = cJSON_ParseWithLength(oc->reply, oc->reply_len);
        if (tree && (cJSON_IsObject(tree) || cJSON_IsArray(tree))) {
            bind_json_push_tree(L, tree, oc->reply, oc->reply_len);
            cJSON_Delete(tree);
            return 1;
        }
        cJSON_Delete(tree);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static void post_done(const struct outbox_outcome *oc, void *ud)
{
    struct post_wait *w = ud;
    if (w->task_gone) {
        release(w);
        return;
    }
    struct luavm_task *t = w->t;
    if (vm_task_noted(t))
        vm_task_note_request(t, "post", "POST", w->what, oc->status,
                             oc->state == OUTBOX_FAILED ? (oc->error ? oc->error : "failed") : NULL,
                             vm_ms_since(&w->t0));
    w->oc = (struct outbox_outcome *)oc;
    w->refs = 1; /* both owners end here; the last release below frees it */
    vm_wake_with(t, push_outcome, w);
    release(w);
}

/* Pushes opts field `k` (raw: none of the script's code runs while the
 * host reads it; nil without opts). [-0, +1] */
static int opt_raw(lua_State *L, int opts, const char *k)
{
    if (opts == 0) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_pushstring(L, k);
    return lua_rawget(L, opts);
}

/* Reads opts field `k` as an optional string. The value stays on the
 * stack, so the string lives until the call returns. [-0, +1] */
static const char *opt_string(lua_State *L, int opts, const char *k)
{
    int t = opt_raw(L, opts, k);
    if (t == LUA_TSTRING)
        return lua_tostring(L, -1);
    if (t != LUA_TNIL)
        luaL_error(L, "opts.%s must be a string (got %s)", k, lua_typename(L, t));
    return NULL;
}

static int opt_bool(lua_State *L, int opts, const char *k, int def)
{
    int t = opt_raw(L, opts, k);
    int v = def;
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "opts.%s must be true or false (got %s)", k, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

/* Pushes opts.userids (a list of ids, or a comma-separated string) as one
 * comma-separated string, or nothing when absent. Raises on a wrong type;
 * builds in Lua, so nothing of the host's leaks when it does. [-0, +(0|1)] */
static int push_userids(lua_State *L, int opts)
{
    int t = opt_raw(L, opts, "userids");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t == LUA_TSTRING)
        return 1;
    if (t != LUA_TTABLE)
        return luaL_error(L, "opts.userids must be a list of user ids or a comma-separated string");
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    if (n > 100)
        return luaL_error(L, "opts.userids: Cliq takes at most 100 user ids (got %d)", (int)n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "opts.userids[%d] must be a user id (string or number)", (int)i);
        if (i > 1)
            luaL_addchar(&b, ',');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_remove(L, -2);
    return 1;
}

static int fail(lua_State *L, const char *fmt, const char *arg)
{
    lua_pushnil(L);
    lua_pushfstring(L, fmt, arg);
    return 2;
}

static int post_common(lua_State *L, enum post_kind kind, const char *fname)
{
    size_t tlen;
    const char *target = luaL_checklstring(L, 1, &tlen);
    luaL_argcheck(L, tlen > 0 && tlen <= TARGET_MAX, 1, "must be a name of 1 to 200 characters");
    if (outbox_name_problem(target))
        return luaL_argerror(L, 1, outbox_name_problem(target));
    int mt = lua_type(L, 2);
    luaL_argexpected(L, mt == LUA_TSTRING || mt == LUA_TTABLE, 2, "a message (string or table)");
    int opts = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        opts = 3;
    }
    lua_settop(L, 3);
    const char *token = opt_string(L, opts, "token");
    if (!token)
        token = "default";
    const char *as_bot = kind == POST_CHANNEL ? opt_string(L, opts, "as_bot") : NULL;
    const char *appkey = kind == POST_APP_INCOMING ? opt_string(L, opts, "appkey") : NULL;
    int wait = opt_bool(L, opts, "wait", 1);
    int broadcast = kind == POST_BOT_MESSAGE ? opt_bool(L, opts, "broadcast", 0) : 0;
    if (kind == POST_APP_INCOMING && !appkey)
        return luaL_error(L, "cliq.app_incoming: opts.appkey is required (the app's key)");
    /* Everything that can raise comes before the host allocates. */
    const char *userids = NULL;
    if (kind == POST_BOT_MESSAGE && opts && push_userids(L, opts))
        userids = lua_tostring(L, -1); /* stays on the stack */
    if (kind == POST_BOT_MESSAGE && !broadcast && (!userids || !*userids))
        return luaL_error(L, "%s: give opts.userids or opts.broadcast = true", fname);

    struct luavm_task *t = vm_task_here(L, fname);
    const struct luavm_options *o = vm_options(vm_of(t));
    if (!o->outbox || !o->cfg)
        return luaL_error(L, "%s is not available here (no outbox)", fname);

    /* A token that cannot work fails now, not after a trip through the
     * outbox. */
    char why[512];
    if (config_token_problem(o->cfg, token, why, sizeof why))
        return fail(L, "%s", why);

    struct buf body;
    buf_init(&body, BODY_ROOM(o->cfg->outbox_max_post_bytes));
    char err[512];
    int full = 0;
    if (mt == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, 2, &n);
        full = buf_adds(&body, "{\"text\":") < 0 ||
               jsonw_string(&body, s, n, JSONW_REPLACE, NULL) || buf_addc(&body, '}') < 0;
    } else {
        int rc = bind_json_encode(L, 2, &body, "message", err, sizeof err);
        if (rc == BIND_JSON_BAD) {
            buf_free(&body);
            return luaL_error(L, "%s: %s", fname, err);
        }
        full = rc == BIND_JSON_FULL;
    }
    if (kind == POST_BOT_MESSAGE && (body.len < 2 || body.data[0] != '{')) {
        buf_free(&body);
        return luaL_error(L, "%s: the message must be an object (text, card, ...)", fname);
    }
    if (kind == POST_BOT_MESSAGE && !full) {
        body.data[--body.len] = '\0'; /* reopen the object */
        size_t mark = body.len;
        if (userids && *userids)
            full = buf_adds(&body, ",\"userids\":") < 0 ||
                   jsonw_string(&body, userids, strlen(userids), JSONW_REPLACE, NULL);
        if (broadcast)
            full = full || buf_adds(&body, ",\"broadcast\":true") < 0;
        if (!full && body.len > mark && body.data[1] == ',') {
            /* The message was {}: no comma before the first field. */
            memmove(body.data + 1, body.data + 2, body.len - 1);
            body.len--;
        }
        full = full || buf_addc(&body, '}') < 0;
    }
    if (full) {
        buf_free(&body);
        lua_pushnil(L);
        lua_pushfstring(
            L, "outbox: the post is more than %d bytes, over outbox_max_post_bytes (%d)",
            (int)BODY_ROOM(o->cfg->outbox_max_post_bytes), (int)o->cfg->outbox_max_post_bytes);
        return 2;
    }

    struct post *p = xcalloc(1, sizeof *p);
    p->kind = kind;
    p->token = xstrdup(token);
    p->target = xstrndup(target, tlen);
    p->as_bot = as_bot ? xstrdup(as_bot) : NULL;
    p->appkey = appkey ? xstrdup(appkey) : NULL;
    p->base = xstrdup(o->cfg->cliq_api ? o->cfg->cliq_api : vm_task_api_base(t));
    p->body = buf_take(&body, &p->len);
    snprintf(p->req_id, sizeof p->req_id, "%s", vm_task_id(t));

    struct post_wait *w = xcalloc(1, sizeof *w);
    w->t = t;
    w->refs = 2;
    snprintf(w->what, sizeof w->what, "%s %s", fname, p->target);
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    if (outbox_submit(o->outbox, p, wait, o->mailbox, post_done, wait_drop, w, err, sizeof err) <
        0) {
        free(w);
        return fail(L, "%s", err);
    }
    return vm_wait(L, t, wait_cancel, w);
}

static int l_post_channel(lua_State *L)
{
    return post_common(L, POST_CHANNEL, "cliq.post_channel");
}

static int l_post_bot(lua_State *L)
{
    return post_common(L, POST_BOT_MESSAGE, "cliq.post_bot");
}

static int l_bot_incoming(lua_State *L)
{
    return post_common(L, POST_BOT_INCOMING, "cliq.bot_incoming");
}

static int l_app_incoming(lua_State *L)
{
    return post_common(L, POST_APP_INCOMING, "cliq.app_incoming");
}

void bind_cliq_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"post_channel", l_post_channel},
        {"post_bot", l_post_bot},
        {"bot_incoming", l_bot_incoming},
        {"app_incoming", l_app_incoming},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
}
