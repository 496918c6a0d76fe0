/* luavm: a worker's script runtime, put together (see luavm.h). */
#include "script/luavm.h"

#include "cliq/datacentre.h"
#include "cliq/request.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/mem.h"
#include "event/sched.h"
#include "script/bind_json.h"
#include "script/bind_req.h"
#include "script/libs.h"
#include "script/sandbox.h"
#include "script/loader.h"
#include "script/schedspec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

struct build_args {
    const struct luavm_call *c;
    struct luavm_task *t;
};

/* Makes the task's coroutine with the handler and request on it, in
 * protected mode (everything here allocates). The handler function is at
 * index 2 of L, its realm's string table at 3. [-0, +0] */
static int start_protected(lua_State *L)
{
    struct build_args *a = lua_touserdata(L, 1);
    lua_State *co = lua_newthread(L);
    a->t->co = co;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_task_threads);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    a->t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 3);
    a->t->strings = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 2);
    if (a->c->d->type == request_type_hook)
        bind_req_push_hook(L, a->c);
    else if (a->c->d->type == request_type_schedule)
        bind_req_push_job(L, a->c);
    else
        bind_req_push_request(L, a->c);
    lua_xmove(L, co, 2);
    return 0;
}

/* The CPU limit, for C code that loops over a script's data. */
static int check_cpu(lua_State *L)
{
    vm_check_cpu(L);
    return 0;
}

/* Builds the sandbox and adds the bindings to it. [-0, +0] */
static int setup_protected(lua_State *L)
{
    struct luavm *vm = lua_touserdata(L, 1);
    sandbox_open(L, vm);
    libs_open(L, vm, lua_gettop(L));
    bind_json_set_check(L, check_cpu);
    return 0;
}

struct luavm *luavm_new(const struct luavm_options *o, char *err, size_t errlen)
{
    struct luavm *vm = vm_new(o, err, errlen);
    if (!vm)
        return NULL;
    vm->unload = loader_forget;
    lua_pushcfunction(vm->L, setup_protected);
    lua_pushlightuserdata(vm->L, vm);
    if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "cannot set up the Lua sandbox: %s", lua_tostring(vm->L, -1));
        vm_free(vm);
        return NULL;
    }
    /* Most of a request's garbage dies young. */
    lua_gc(vm->L, LUA_GCGEN, 0, 0);
    return vm;
}

void luavm_set_options(struct luavm *vm, const struct luavm_options *o)
{
    struct luavm_options keep = vm->opt;
    vm->opt = *o;
    vm->opt.scripts_dir = keep.scripts_dir;
    vm->opt.scripts = keep.scripts;
    vm->opt.lualib_dir = keep.lualib_dir;
    vm->opt.script_env = keep.script_env;
    vm->opt.nscript_env = keep.nscript_env;
    vm->opt.sched = keep.sched;
    vm->opt.fetch = keep.fetch;
    vm->opt.responder = keep.responder;
    vm->opt.outbox = keep.outbox;
    vm->opt.mailbox = keep.mailbox;
    vm->opt.store = keep.store;
    vm->opt.redis = keep.redis;
}

void luavm_free(struct luavm *vm)
{
    vm_free(vm);
}

size_t luavm_memory(const struct luavm *vm)
{
    return vm->mem;
}

int luavm_start(struct luavm *vm, const struct luavm_call *c, struct luavm_result *res,
                struct luavm_task **task, luavm_done_cb done, void *ud)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    const struct request_dispatch *d = c->d;
    memset(res, 0, sizeof *res);
    *task = NULL;
    snprintf(vm->logctx.req_id, sizeof vm->logctx.req_id, "%s", c->req_id);
    snprintf(vm->logctx.script, sizeof vm->logctx.script, "%s", d->script);

    loader_refresh(vm);
    int rc = loader_get(vm, d->script);
    if (rc == -ENOENT) {
        res->status = 404;
        snprintf(res->error, sizeof res->error, "no script for %s%s%s: looked for %s/%s", d->type,
                 d->name[0] ? " " : "", d->name, vm->scripts_dir, d->script);
        goto done;
    }
    if (rc < 0) {
        const char *msg = lua_tostring(L, -1);
        enum luavm_limit limit = rc == -2 ? LIMIT_CPU : LIMIT_NONE;
        if (limit != LIMIT_NONE && msg && strstr(msg, "memory"))
            limit = LIMIT_MEMORY;
        vm_log_failure(c->req_id, d, "load", limit, msg ? msg : "?", NULL);
        vm_set_error(res, msg ? msg : "script failed to load");
        vm_error_reply(vm, d, c->req_id, limit, res);
        goto done;
    }
    int handlers = lua_gettop(L);
    /* Raw: the handler table is the script's, and a metamethod on it (a
     * strict module's __index) must not run here, outside every limit. */
    lua_pushstring(L, d->key);
    if (lua_rawget(L, handlers) != LUA_TFUNCTION) {
        res->status = 404;
        struct buf have;
        buf_init(&have, 200);
        /* The script may have added keys of any type since it loaded: only
         * names are listed, and none is converted (lua_next needs it as is). */
        lua_pushnil(L);
        while (lua_next(L, handlers)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                continue;
            buf_adds(&have, have.len ? ", " : "");
            buf_adds(&have, lua_tostring(L, -1));
        }
        snprintf(res->error, sizeof res->error, "%s/%s has no '%s' handler (it has: %s)",
                 vm->scripts_dir, d->script, d->key, have.len ? have.data : "none");
        buf_free(&have);
        goto done;
    }

    struct luavm_task *t = xcalloc(1, sizeof *t);
    t->vm = vm;
    t->d = *d;
    snprintf(t->id, sizeof t->id, "%s", c->req_id);
    t->received_ms = c->received_ms;
    t->done = done;
    t->done_ud = ud;
    t->note = c->note;
    t->note_ud = c->note_ud;
    t->note_id = c->note_id;
    t->ref = LUA_NOREF;
    t->strings = LUA_NOREF;
    /* A task's body is another tool's: nothing in it is Cliq's. */
    const cJSON *json = request_is_task(d->type) ? NULL : c->json;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(json, "response_url");
    if (cJSON_IsString(url) && url->valuestring[0]) {
        int was = arena_suspend();
        t->response_url = xstrdup(url->valuestring);
        arena_resume(was);
    }
    datacentre_api_base(json, t->api_base, sizeof t->api_base);
    struct build_args args = {c, t};
    lua_pushcfunction(L, start_protected);
    lua_insert(L, -2); /* the handler at top-1, so at index 2 of the call */
    lua_pushlightuserdata(L, &args);
    lua_insert(L, -2);
    unsigned realm, realm_gen;
    loader_push_strings(vm, handlers, &realm, &realm_gen); /* index 3 of the call */
    vm_task_realm(t, realm, realm_gen);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        vm_log_failure(c->req_id, d, "request", LIMIT_NONE, msg ? msg : "?", NULL);
        vm_set_error(res, msg ? msg : "could not build the request");
        vm_error_reply(vm, d, c->req_id, LIMIT_NONE, res);
        vm_task_free(t);
        goto done;
    }
    if (!vm_task_run(t, 1, res)) {
        /* It waits: the loop takes it from here. */
        vm_task_park(t);
        *task = t;
        lua_settop(L, top);
        return 0;
    }
    res->response_url = NULL; /* it lives in the task */
    vm_task_free(t);
done:
    lua_settop(L, top);
    vm->logctx.req_id[0] = '\0';
    vm->logctx.script[0] = '\0';
    return 1;
}

/* A task left waiting when luavm_run has no loop to wait on. */
static void run_done_unused(struct luavm_task *t, struct luavm_result *res, void *ud)
{
    (void)t;
    (void)res;
    (void)ud;
}

void luavm_run(struct luavm *vm, const struct request_dispatch *d, const cJSON *json,
               const char *text, size_t len, const char *req_id, struct luavm_result *res)
{
    struct luavm_call c = {d, json, text, len, req_id, sched_clock_ms(), NULL, NULL, NULL, NULL, 0};
    struct luavm_task *t;
    if (luavm_start(vm, &c, res, &t, run_done_unused, NULL))
        return;
    /* Without a loop nothing can wake it: stop it as a failure. */
    vm_task_abandon(t, "handler waited, and nothing here can wake it", res);
}

void luavm_stop_by(struct luavm *vm, long long at_ms)
{
    atomic_store_explicit(&vm->stop_at, at_ms > 0 ? at_ms : 1, memory_order_relaxed);
}

void luavm_watch(struct luavm *vm)
{
    vm_watch(vm);
}

void luavm_unwatch(struct luavm *vm)
{
    vm_unwatch(vm);
}

size_t luavm_tasks(const struct luavm *vm)
{
    return vm->ntasks;
}

int luavm_schedule_spec(struct luavm *vm, const char *rel, struct schedspec *out, char *err,
                        size_t errlen)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    loader_refresh(vm);
    int rc = loader_get(vm, rel);
    if (rc == -ENOENT) {
        snprintf(err, errlen, "no script %s/%s", vm->scripts_dir, rel);
        return -ENOENT;
    }
    if (rc == 0) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
        rc = schedspec_read(L, -1, path, out, err, errlen);
    } else {
        const char *msg = lua_tostring(L, -1);
        snprintf(err, errlen, "%s", msg ? msg : "failed to load");
        rc = -1;
    }
    lua_settop(L, top);
    vm->logctx.script[0] = '\0';
    return rc;
}
