/* luavm: one worker's Lua state, sandbox, script cache and handler runs (see luavm.h). */
#include "script/luavm.h"

#include "core/arena.h"
#include "script/bind_cliq.h"
#include "script/bind_http.h"
#include "script/bind_json.h"
#include "script/bind_log.h"
#include "script/bind_req.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "script/scriptset.h"
#include "cliq/request.h"
#include "event/sched.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* Paths are the scripts folder plus a short relative name; messages hold a
 * path and a sentence. */
#define PATH_BUF 1024
#define ERR_BUF  (PATH_BUF + 400)

struct luavm {
    lua_State *L;
    struct luavm_options opt;
    char *scripts_dir; /* without a trailing slash */
    size_t mem;        /* bytes held by the Lua heap */
    struct bind_log_ctx logctx;
    long long slice_start;      /* when the running script code was resumed; 0: none runs */
    enum luavm_limit kill;      /* a limit tripped in the running slice */
    struct luavm_task *current; /* the task whose code runs now */
    struct luavm_task *tasks;   /* every waiting task */
    size_t ntasks;
    void *refused_ptr; /* a refused allocation not yet retried (size 0: none) */
    size_t refused_size;
    int mem_exceeded; /* the running script holds more than the cap allows */

    /* Where scripts come from (see reload.h): a snapshot, held. NULL with
     * no hub: files are read from disk on first use. */
    struct scriptset *set;
    unsigned long long gen; /* the hub generation `set` came from */
    int fixed_set;          /* set by luavm_use_scriptset: never refreshed */
    luavm_require_cb require_cb;
    void *require_ud;
    const char *loading; /* the script or module whose top level runs, for require_cb */
};

/* One handler run (see luavm.h). */
struct luavm_task {
    struct luavm *vm;
    lua_State *co;
    int ref; /* registry reference that keeps co alive */
    struct request_dispatch d;
    char id[48];
    long long received_ms;
    char *response_url; /* NULL: the request has none */
    char api_base[64];  /* Cliq's API for the request's data centre */
    int responded;
    int waiting;              /* yielded inside a host binding */
    void (*cancel)(void *ud); /* stops what it waits for */
    void *cancel_ud;
    struct sched_timer *run_timer;
    luavm_done_cb done;
    void *done_ud;
    struct luavm_task *prev, *next; /* every waiting task */
};

/* Registry keys. */
static const char env_mt_key = 'e';   /* metatable of per-script environments */
static const char scripts_key = 'c';  /* path -> handlers table, or error string */
static const char modules_key = 'm';  /* module name -> value */
static const char versions_key = 'v'; /* script path or module name -> snapshot version */
static const char request_mt_key = 'r';
static const char attachment_mt_key = 'f';
static const char task_threads_key = 'h'; /* weak set of handler coroutines */

static void limit_hook(lua_State *L, lua_Debug *ar);

/* The least memory kept above the cap for the host's own use (see vm_alloc). */
#define MEMORY_RESERVE_MIN (4u << 20)

/* ---- the heap ---------------------------------------------------------- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct luavm *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->mem -= old;
        return NULL;
    }
    /* The cap holds while script code runs. The host's own bookkeeping
     * between slices (the script cache, a request object, a limit message)
     * may go into a reserve above it, so it never meets a memory error in a
     * place that cannot take one. */
    size_t cap = vm->opt.max_memory;
    if (cap && !vm->slice_start)
        cap += cap / 4 > MEMORY_RESERVE_MIN ? cap / 4 : MEMORY_RESERVE_MIN;
    if (nsize > old && cap && vm->mem - old + nsize > cap) {
        /* Refused. Lua's own allocations answer a refusal with an emergency
         * collection and ask again for the same block: if that retry
         * succeeds, the heap only held garbage and nothing happened. Any
         * other outcome (the retry refused too, or no retry: the refusal
         * raised a memory error in the script) means the script holds too
         * much, and the limit hook stops it at its next instruction
         * (lua_sethook only sets fields: safe from here). */
        if (vm->slice_start) {
            if (vm->refused_size && (vm->refused_ptr != ptr || vm->refused_size == nsize))
                vm->mem_exceeded = 1;
            vm->refused_ptr = ptr;
            vm->refused_size = nsize;
            lua_sethook(vm->current ? vm->current->co : vm->L, limit_hook, LUA_MASKCOUNT, 1);
        }
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    if (vm->refused_size && nsize > old) {
        if (vm->refused_ptr != ptr || vm->refused_size != nsize)
            vm->mem_exceeded = 1; /* not the retry: the refusal raised */
        vm->refused_size = 0;
        vm->refused_ptr = NULL;
    }
    vm->mem = vm->mem - old + nsize;
    return p;
}

size_t luavm_memory(const struct luavm *vm)
{
    return vm->mem;
}

/* ---- limits ------------------------------------------------------------ */

/* The count hook runs every HOOK_COUNT VM instructions of any coroutine of
 * the state. It measures the current slice (the time since the host last
 * resumed a task or started a script's top level) against max_cpu_ms. Once
 * a limit is tripped it re-arms itself to run on every instruction and
 * raises each time, so a pcall that catches the error cannot carry on:
 * the next instruction after it raises again, until the coroutine is dead. */
#define HOOK_COUNT 2000

static struct luavm *vm_of_state(lua_State *L)
{
    return *(struct luavm **)lua_getextraspace(L);
}

static const char *limit_reason(const struct luavm *vm, enum luavm_limit l, char *out, size_t n)
{
    switch (l) {
    case LIMIT_CPU:
        snprintf(out, n, "used more than %ld ms of CPU without pausing", vm->opt.max_cpu_ms);
        break;
    case LIMIT_MEMORY:
        snprintf(out, n, "used more memory than allowed (%zu MiB for the worker's scripts)",
                 vm->opt.max_memory >> 20);
        break;
    case LIMIT_TIME:
        snprintf(out, n, "ran longer than %ld ms", vm->opt.max_run_ms);
        break;
    default:
        snprintf(out, n, "broke a limit");
    }
    return out;
}

static const char *limit_name(enum luavm_limit l)
{
    return l == LIMIT_CPU ? "cpu" : l == LIMIT_MEMORY ? "memory" : l == LIMIT_TIME ? "time" : "";
}

static void limit_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct luavm *vm = vm_of_state(L);
    if (!vm->slice_start)
        return;
    if (vm->refused_size) {
        /* A refusal not retried by the time the script runs on: it raised. */
        vm->mem_exceeded = 1;
        vm->refused_size = 0;
        vm->refused_ptr = NULL;
    }
    if (vm->mem_exceeded && !vm->kill)
        vm->kill = LIMIT_MEMORY;
    if (!vm->kill)
        lua_sethook(L, limit_hook, LUA_MASKCOUNT, HOOK_COUNT); /* a retry succeeded */
    if (!vm->kill && vm->opt.max_cpu_ms > 0 &&
        sched_clock_ms() - vm->slice_start > vm->opt.max_cpu_ms)
        vm->kill = LIMIT_CPU;
    if (vm->kill) {
        /* Stop: yield straight back to the host, which drops the task.
         * A yield passes through pcall untouched, runs no more script code
         * and leaves the stack for the traceback. Where a yield is not
         * possible (inside a C call such as a gsub callback), raise instead,
         * on every instruction, until the code is back where it can yield. */
        lua_sethook(L, limit_hook, LUA_MASKCOUNT, 1);
        if (vm->current && L != vm->current->co)
            lua_sethook(vm->current->co, limit_hook, LUA_MASKCOUNT, 1);
        if (lua_isyieldable(L) && vm->current) {
            lua_yield(L, 0);
            return;
        }
        char why[160];
        luaL_error(L, "stopped: %s", limit_reason(vm, vm->kill, why, sizeof why));
    }
}

/* Starts a slice of script code: the CPU clock and the kill flag. */
static void slice_begin(struct luavm *vm)
{
    vm->kill = LIMIT_NONE;
    vm->mem_exceeded = 0;
    vm->refused_size = 0;
    vm->refused_ptr = NULL;
    vm->slice_start = sched_clock_ms();
    if (!vm->slice_start)
        vm->slice_start = 1;
}

/* Ends a slice. Returns the limit that stopped it, if any. */
static enum luavm_limit slice_end(struct luavm *vm, int failed)
{
    enum luavm_limit k = vm->kill;
    /* Code that died of a refused allocation before the hook could look
     * broke the memory limit. */
    if (k == LIMIT_NONE && (vm->mem_exceeded || (failed && vm->refused_size)))
        k = LIMIT_MEMORY;
    vm->mem_exceeded = 0;
    vm->refused_size = 0;
    vm->refused_ptr = NULL;
    vm->slice_start = 0;
    vm->kill = LIMIT_NONE;
    if (k != LIMIT_NONE) {
        /* The main thread may have been re-armed to every instruction. */
        lua_sethook(vm->L, limit_hook, LUA_MASKCOUNT, HOOK_COUNT);
        /* Give back what the stopped code held. */
        lua_gc(vm->L, LUA_GCCOLLECT);
    }
    return k;
}

/* ---- reading files ----------------------------------------------------- */

/* Reads a script or module file, up to the configured cap. Returns 0,
 * -ENOENT when there is no such file, or -1 with a message. Caller frees. */
static int read_file(struct luavm *vm, const char *path, char **out, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return -ENOENT;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    size_t cap = vm->opt.max_script_bytes;
    char *data = xmalloc(cap + 1);
    size_t n = fread(data, 1, cap + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    if (n > cap) {
        free(data);
        snprintf(err, errlen, "%s: larger than max_script_bytes (%zu)", path, cap);
        return -1;
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    return 0;
}

/* The text of `rel` (a script's path in the scripts folder, or a module's
 * "lib/<name>.lua"): from the snapshot, or from disk when there is none.
 * Returns 0 with *src (borrowed from the snapshot, or read into *owned,
 * which the caller frees) and its version (0 from disk); -ENOENT when there
 * is no such file; -1 with the message in err. */
static int find_source(struct luavm *vm, const char *rel, const char **src, size_t *len,
                       char **owned, unsigned long long *version, char *err, size_t errlen)
{
    *owned = NULL;
    *version = 0;
    if (vm->set) {
        const struct script_src *e = scriptset_find(vm->set, rel);
        if (!e)
            return -ENOENT;
        *version = e->version;
        if (!e->src) {
            snprintf(err, errlen, "%s", e->error ? e->error : "did not load");
            return -1;
        }
        *src = e->src;
        *len = e->len;
        return 0;
    }
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    int rc = read_file(vm, path, owned, len, err, errlen);
    if (rc < 0)
        return rc;
    *src = *owned;
    return 0;
}

/* ---- the sandbox ------------------------------------------------------- */

/* Pushes a new global table for one script or module: empty, falling back
 * to the sandbox, with its metatable hidden. [-0, +1] */
static void push_env(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_setmetatable(L, -2);
}

/* Compiles `data` as a text chunk named after `path` and sets a fresh
 * environment as its _ENV. Returns LUA_OK with the function pushed, or an
 * error status with the message pushed. [-0, +1] */
static int compile(lua_State *L, const char *data, size_t len, const char *path)
{
    char chunkname[512];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int rc = luaL_loadbufferx(L, data, len, chunkname, "t");
    if (rc != LUA_OK)
        return rc;
    push_env(L);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1); /* a chunk with no _ENV upvalue uses no globals */
    return LUA_OK;
}

/* load(chunk [, chunkname [, mode [, env]]]) for scripts: text only, and
 * without an env the chunk gets a fresh sandboxed global table instead of
 * the host's real one. */
static int sb_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b')) {
        lua_pushnil(L);
        lua_pushliteral(L, "load: binary chunks are not allowed");
        return 2;
    }
    int has_env = !lua_isnone(L, 4);
    size_t len;
    const char *s = NULL;
    if (lua_type(L, 1) == LUA_TSTRING) {
        s = lua_tolstring(L, 1, &len);
    } else {
        /* A reader function: collect its pieces (capped like a script). */
        luaL_checktype(L, 1, LUA_TFUNCTION);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == 0)) {
                lua_pop(L, 1);
                break;
            }
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "load: reader function must return a string");
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        lua_replace(L, 1);
        s = lua_tolstring(L, 1, &len);
    }
    const char *name = luaL_optstring(L, 2, s);
    int rc = luaL_loadbufferx(L, s, len, name, "t");
    if (rc != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env)
        lua_pushvalue(L, 4);
    else
        push_env(L);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

/* os.getenv(name) for scripts: only names in script_env (upvalue 1, a set);
 * others read as nil. */
static int sb_getenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL) {
        log_msg(LOG_DEBUG, NULL, "os.getenv(\"%.64s\") refused: not listed in script_env", name);
        lua_pushnil(L);
        return 1;
    }
    const char *v = getenv(name);
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* collectgarbage for scripts: only "count" (the state is shared by every
 * request on the worker, so scripts may not stop or tune its collector). */
static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "count");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed; only \"count\"", opt);
    int kb = lua_gc(L, LUA_GCCOUNT, 0);
    int b = lua_gc(L, LUA_GCCOUNTB, 0);
    lua_pushnumber(L, (lua_Number)kb + ((lua_Number)b / 1024));
    return 1;
}

/* A module name is dotted words: "cliq.message", "util". */
static int module_name_ok(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 128)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
        if (!word && !(c == '.' && p[1] && p[1] != '.'))
            return 0;
    }
    return 1;
}

/* require(name) for scripts: a Lua module under scripts/lib/ (first) or the
 * host's lualib/, loaded once per worker and sandboxed like a script. A
 * scripts/lib module is loaded again when the snapshot has a newer version;
 * lualib/ modules ship with the host and are read once. */
static int sb_require(lua_State *L)
{
    struct luavm *vm = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    if (!module_name_ok(name))
        return luaL_error(
            L, "require \"%s\": not a module name (dotted words, as in \"cliq.message\")", name);
    char rel[200];
    int n = snprintf(rel, sizeof rel, "lib/%s.lua", name);
    for (int i = 4; i < n - 4; i++)
        if (rel[i] == '.')
            rel[i] = '/';
    const struct script_src *e = vm->set ? scriptset_find(vm->set, rel) : NULL;
    if (e && vm->require_cb && vm->loading)
        vm->require_cb(vm->require_ud, vm->loading, rel);

    lua_rawgetp(L, LUA_REGISTRYINDEX, &modules_key);  /* 2 */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &versions_key); /* 3 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TLIGHTUSERDATA)
            return luaL_error(L, "require \"%s\": circular require", name);
        lua_getfield(L, 3, rel);
        unsigned long long have = (unsigned long long)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (!e || e->version == have)
            return 1;
    }
    lua_settop(L, 3);

    char path[PATH_BUF];
    char err[ERR_BUF];
    const char *src = NULL;
    size_t len = 0;
    char *owned = NULL;
    unsigned long long version = 0;
    int rc = -ENOENT;
    if (e || !vm->set) {
        rc = find_source(vm, rel, &src, &len, &owned, &version, err, sizeof err);
        snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    }
    if (rc == -ENOENT && vm->opt.lualib_dir) {
        snprintf(path, sizeof path, "%s/%s", vm->opt.lualib_dir, rel + 4);
        rc = read_file(vm, path, &owned, &len, err, sizeof err);
        src = owned;
    }
    if (rc == -ENOENT)
        return luaL_error(L, "require \"%s\": no %s/%s%s%s", name, vm->scripts_dir, rel,
                          vm->opt.lualib_dir ? " and none in " : "",
                          vm->opt.lualib_dir ? vm->opt.lualib_dir : "");
    if (rc < 0)
        return luaL_error(L, "require \"%s\": %s", name, err);

    rc = compile(L, src, len, path);
    free(owned);
    if (rc != LUA_OK)
        return lua_error(L);
    /* Mark it as loading so a cycle is reported rather than looping. */
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, vm);
    lua_rawset(L, 2);
    lua_pushvalue(L, 1);
    lua_pushstring(L, path);
    const char *was_loading = vm->loading;
    vm->loading = e ? e->rel : NULL;
    int ok = lua_pcall(L, 2, 1, 0);
    vm->loading = was_loading;
    if (ok != LUA_OK) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, 2);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, 2);
    lua_pushinteger(L, (lua_Integer)version);
    lua_setfield(L, 3, rel);
    return 1;
}

/* coroutine.resume and coroutine.close for scripts: a handler's own
 * coroutine belongs to the host (it resumes it when a wait is over), so a
 * script that got it from coroutine.running() cannot resume or close it.
 * Upvalue 1 is the real function, upvalue 2 the weak set of handler
 * coroutines. */
static int sb_coroutine_guard(lua_State *L)
{
    if (vm_of_state(L)->kill)
        return luaL_error(L, "stopped"); /* the handler is being stopped */
    if (lua_type(L, 1) == LUA_TTHREAD) {
        lua_pushvalue(L, 1);
        if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
            return luaL_error(L, "a handler's own coroutine is run by the host; it cannot be "
                                 "resumed or closed by a script");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* The function coroutine.wrap returns: resumes its coroutine (upvalue 1)
 * and passes errors on, like Lua's own, but without closing the dead
 * coroutine (a stopped coroutine runs no hooks, so its __close could not be
 * stopped). */
static int sb_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD)
        return luaL_error(L, "cannot resume dead coroutine");
    if (st == LUA_OK && lua_gettop(co) == 0)
        return luaL_error(L, "cannot resume dead coroutine");
    if (!lua_checkstack(co, n))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, n);
    int nres = 0;
    st = lua_resume(co, L, n, &nres);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1))
            return luaL_error(L, "too many results to resume");
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1); /* the error */
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int sb_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, sb_wrapped, 1);
    return 1;
}

/* setmetatable for scripts: no __gc, because a finalizer runs whenever the
 * collector gets to it, in the middle of another request or of the host's
 * own work, where no limit could stop it. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc finalizers are not allowed in scripts");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Copies field `name` from the table at `from` to the table at `to`. */
static void copy_field(lua_State *L, int from, int to, const char *name)
{
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
}

/* Builds the sandbox and the registry tables. Runs in protected mode. */
static int setup_state(lua_State *L)
{
    struct luavm *vm = lua_touserdata(L, 1);
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},
        {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},
        {LUA_OSLIBNAME, luaopen_os},
        {LUA_DBLIBNAME, luaopen_debug},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    int G = lua_gettop(L);

    /* string.dump would hand out bytecode; remove it from the real table,
     * which is also what ("").dump would reach through the metatable. */
    lua_getfield(L, G, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* Hide the string metatable so scripts cannot change string methods
     * for everyone. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_newtable(L);
    int sb = lua_gettop(L);
    static const char *const base_fns[] = {
        "assert",   "error",    "ipairs", "next",   "pairs",    "pcall",
        "rawequal", "rawget",   "rawlen", "rawset", "select",   "getmetatable",
        "tonumber", "tostring", "type",   "xpcall", "_VERSION", "table",
        "string",   "math",     "utf8",   NULL,
    };
    for (const char *const *f = base_fns; *f; f++)
        copy_field(L, G, sb, *f);
    lua_getfield(L, G, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, sb, "setmetatable");

    /* The weak set of handler coroutines, and a coroutine library that
     * keeps scripts' hands off them. */
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task_threads_key);
    int threads = lua_gettop(L);
    lua_newtable(L);
    lua_getfield(L, G, "coroutine");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    static const char *const guarded[] = {"resume", "close", NULL};
    for (const char *const *f = guarded; *f; f++) {
        lua_getfield(L, -1, *f);
        lua_pushvalue(L, threads);
        lua_pushcclosure(L, sb_coroutine_guard, 2);
        lua_setfield(L, -2, *f);
    }
    lua_pushcfunction(L, sb_wrap);
    lua_setfield(L, -2, "wrap");
    lua_setfield(L, sb, "coroutine");
    lua_pop(L, 1);

    lua_createtable(L, 0, 5);
    lua_getfield(L, G, "os");
    int os = lua_gettop(L);
    copy_field(L, os, os - 1, "time");
    copy_field(L, os, os - 1, "clock");
    copy_field(L, os, os - 1, "date");
    copy_field(L, os, os - 1, "difftime");
    lua_pop(L, 1);
    lua_newtable(L);
    for (size_t i = 0; i < vm->opt.nscript_env; i++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, vm->opt.script_env[i]);
    }
    lua_pushcclosure(L, sb_getenv, 1);
    lua_setfield(L, -2, "getenv");
    lua_setfield(L, sb, "os");

    lua_createtable(L, 0, 1);
    lua_getfield(L, G, "debug");
    lua_getfield(L, -1, "traceback");
    lua_setfield(L, -3, "traceback");
    lua_pop(L, 1);
    lua_setfield(L, sb, "debug");

    lua_pushcfunction(L, sb_load);
    lua_setfield(L, sb, "load");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, sb, "collectgarbage");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, sb_require, 1);
    lua_setfield(L, sb, "require");

    bind_json_open(L);
    lua_setfield(L, sb, "json");
    bind_log_open(L, &vm->logctx, sb);
    lua_setfield(L, sb, "log");
    bind_http_open(L, sb);
    bind_cliq_open(L);
    lua_setfield(L, sb, "cliq");

    /* Each script's globals: its own table, reading through to the
     * sandbox; the metatable is hidden so the sandbox cannot be reached. */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, sb);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &env_mt_key);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &scripts_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &versions_key);

    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "cliq.request");
    lua_setfield(L, -2, "__name");
    bind_req_push_request_methods(L);
    lua_setfield(L, -2, "__index");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &request_mt_key);

    /* Attachments stay plain JSON objects (string keys) with a method. */
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "cliq.attachment");
    lua_setfield(L, -2, "__name");
    bind_req_push_attachment_methods(L);
    lua_setfield(L, -2, "__index");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &attachment_mt_key);
    return 0;
}

struct luavm *luavm_new(const struct luavm_options *o, char *err, size_t errlen)
{
    struct luavm *vm = xcalloc(1, sizeof *vm);
    vm->opt = *o;
    size_t n = strlen(o->scripts_dir);
    while (n > 1 && o->scripts_dir[n - 1] == '/')
        n--;
    vm->scripts_dir = xstrndup(o->scripts_dir, n);
    vm->L = lua_newstate(vm_alloc, vm);
    if (!vm->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        luavm_free(vm);
        return NULL;
    }
    /* Every thread starts with a copy of the main thread's extra space and
     * hook, so bindings and the limit hook find the vm from any coroutine. */
    *(struct luavm **)lua_getextraspace(vm->L) = vm;
    lua_sethook(vm->L, limit_hook, LUA_MASKCOUNT, HOOK_COUNT);
    lua_pushcfunction(vm->L, setup_state);
    lua_pushlightuserdata(vm->L, vm);
    if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "cannot set up the Lua sandbox: %s", lua_tostring(vm->L, -1));
        luavm_free(vm);
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
}

static void unlink_task(struct luavm_task *t);
static void free_task(struct luavm_task *t);

void luavm_free(struct luavm *vm)
{
    if (!vm)
        return;
    /* Tasks still waiting are dropped without their callbacks. */
    while (vm->tasks) {
        struct luavm_task *t = vm->tasks;
        unlink_task(t);
        if (t->waiting && t->cancel)
            t->cancel(t->cancel_ud);
        free_task(t);
    }
    if (vm->L)
        lua_close(vm->L);
    scriptset_release(vm->set);
    free(vm->scripts_dir);
    free(vm);
}

/* ---- scripts ----------------------------------------------------------- */

/* Checks the value a script returned (at -1): a table whose values are all
 * functions. Returns 0, or -1 with the reason in err. [-0, +0] */
static int check_handlers(lua_State *L, const char *path, char *err, size_t errlen)
{
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: must return a table of handler functions (returned %s)", path,
                 luaL_typename(L, -1));
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isfunction(L, -1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            snprintf(err, errlen, "%s: handler '%s' must be a function (is a %s)", path, k,
                     luaL_typename(L, -1));
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Compiles `src` as the script `rel`, runs its top level and checks the
 * result. Returns 0 with the handlers table pushed, -1 with the error
 * message pushed, or -2 (message pushed) when a limit stopped its top
 * level. [-0, +1] */
static int load_script(struct luavm *vm, const char *rel, const char *src, size_t len)
{
    lua_State *L = vm->L;
    char path[PATH_BUF];
    char err[ERR_BUF];
    snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    snprintf(vm->logctx.script, sizeof vm->logctx.script, "%s", rel);
    int rc = compile(L, src, len, path);
    if (rc != LUA_OK)
        return -1;
    /* A script's top level is held to the limits like a handler. */
    int outer = vm->slice_start != 0;
    enum luavm_limit limit = LIMIT_NONE;
    if (!outer)
        slice_begin(vm);
    const char *was_loading = vm->loading;
    vm->loading = rel;
    rc = lua_pcall(L, 0, 1, 0);
    vm->loading = was_loading;
    if (!outer)
        limit = slice_end(vm, rc != LUA_OK);
    if (rc != LUA_OK)
        return limit != LIMIT_NONE ? -2 : -1;
    if (check_handlers(L, path, err, sizeof err) < 0) {
        lua_pop(L, 1);
        lua_pushstring(L, err);
        return -1;
    }
    return 0;
}

/* Takes the hub's newest snapshot when it changed. */
static void refresh_scripts(struct luavm *vm)
{
    if (vm->fixed_set || !vm->opt.scripts)
        return;
    if (vm->set && scripts_hub_generation(vm->opt.scripts) == vm->gen)
        return;
    unsigned long long had = scriptset_modules_gen(vm->set);
    scriptset_release(vm->set);
    vm->set = scripts_hub_acquire(vm->opt.scripts, &vm->gen);
    if (scriptset_modules_gen(vm->set) != had) {
        /* Scripts loaded again take fresh modules; the ones still loaded
         * keep the modules they hold. */
        lua_newtable(vm->L);
        lua_rawsetp(vm->L, LUA_REGISTRYINDEX, &modules_key);
    }
}

/* Pushes the handlers table for `rel`, loading the script when it is not
 * cached or the snapshot has a newer version. A version that fails to load
 * here (it passed the reloader's check, so only a limit can stop it) leaves
 * the version already loaded serving. A script that fails with nothing to
 * fall back on is cached as its error message, unless a limit stopped it
 * (that may pass: it is tried again next time). Returns 0 (table pushed),
 * -ENOENT (nothing pushed), -1 or -2 (message pushed). */
static int get_script(struct luavm *vm, const char *rel)
{
    lua_State *L = vm->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &scripts_key);
    int cache = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &versions_key);
    int versions = cache + 1;
    int t = lua_getfield(L, cache, rel);
    lua_getfield(L, versions, rel);
    unsigned long long have = (unsigned long long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    int cached = t == LUA_TTABLE || t == LUA_TSTRING;
    if (cached && !vm->set) /* read from disk: kept for good */
        goto hit;

    const char *src = NULL;
    size_t len = 0;
    char *owned;
    unsigned long long version;
    char err[ERR_BUF];
    int rc = find_source(vm, rel, &src, &len, &owned, &version, err, sizeof err);
    if (rc == -ENOENT) {
        lua_pushnil(L);
        lua_setfield(L, cache, rel);
        lua_pushnil(L);
        lua_setfield(L, versions, rel);
        lua_settop(L, cache - 1);
        return -ENOENT;
    }
    if (cached && have == version)
        goto hit;
    if (rc < 0) {
        lua_settop(L, cache - 1);
        lua_pushstring(L, err);
        return -1;
    }
    rc = load_script(vm, rel, src, len);
    free(owned);
    if (rc < 0 && t == LUA_TTABLE) {
        /* A limit may pass: the next request tries again. */
        if (rc == -1) {
            lua_pushinteger(L, (lua_Integer)version);
            lua_setfield(L, versions, rel);
        }
        log_msg(LOG_WARN, NULL,
                "%s: version %llu did not load in this worker (%s); the previous one serves", rel,
                version, lua_tostring(L, -1));
        lua_pop(L, 1);
        goto hit;
    }
    if (rc == -2) {
        lua_replace(L, cache);
        lua_settop(L, cache);
        return rc;
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, rel);
    lua_pushinteger(L, (lua_Integer)version);
    lua_setfield(L, versions, rel);
    lua_replace(L, cache);
    lua_settop(L, cache);
    return rc;
hit:
    lua_replace(L, cache);
    lua_settop(L, cache);
    return lua_type(L, -1) == LUA_TTABLE ? 0 : -1;
}

/* ---- running a handler ------------------------------------------------- */

struct build_args {
    const struct luavm_call *c;
    struct luavm_task *t;
};

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
static void build_request(lua_State *L, const struct luavm_call *c)
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

/* Makes the task's coroutine with the handler and request on it, in
 * protected mode (everything here allocates). The handler function is at
 * index 2 of L. [-0, +0] */
static int start_protected(lua_State *L)
{
    struct build_args *a = lua_touserdata(L, 1);
    lua_State *co = lua_newthread(L);
    a->t->co = co;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &task_threads_key);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    a->t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 2);
    build_request(L, a->c);
    lua_xmove(L, co, 2);
    return 0;
}

/* The text the chat user sees for a failure: error_reply, or limit_reply
 * when a limit stopped the handler; "{id}" and "{reason}" are replaced. */
static void failure_text(const struct luavm *vm, const char *req_id, enum luavm_limit limit,
                         struct buf *out)
{
    char reason[160];
    const char *t = limit != LIMIT_NONE ? vm->opt.limit_reply : vm->opt.error_reply;
    for (;;) {
        const char *id = strstr(t, "{id}");
        const char *rs = strstr(t, "{reason}");
        const char *p = id && (!rs || id < rs) ? id : rs;
        if (!p)
            break;
        buf_add(out, t, (size_t)(p - t));
        if (p == id) {
            buf_adds(out, req_id);
            t = p + 4;
        } else {
            buf_adds(out, limit_reason(vm, limit, reason, sizeof reason));
            t = p + 8;
        }
    }
    buf_adds(out, t);
}

/* Fills res with the reply the chat user sees when the handler failed. */
static void error_reply(struct luavm *vm, const struct request_dispatch *d, const char *req_id,
                        enum luavm_limit limit, struct luavm_result *res)
{
    struct buf msg;
    buf_init(&msg, 4096);
    failure_text(vm, req_id, limit, &msg);
    res->status = 200;
    res->failed = 1;
    res->limit = limit;
    free(res->body);
    res->body = request_text_reply(d, msg.data ? msg.data : "", 1, &res->len);
    buf_free(&msg);
}

/* Logs a script failure: the message and, when there is one, the Lua
 * traceback, on one escaped line. */
static void log_failure(const char *req_id, const struct request_dispatch *d, const char *what,
                        enum luavm_limit limit, const char *msg, const char *traceback)
{
    struct buf b;
    buf_init(&b, LOG_LINE_MAX);
    log_kv(&b, "script", d->script, strlen(d->script));
    log_kv(&b, "handler", d->key, strlen(d->key));
    log_kv(&b, "failure", what, strlen(what));
    if (limit != LIMIT_NONE)
        log_kv(&b, "limit", limit_name(limit), strlen(limit_name(limit)));
    log_kv(&b, "error", msg, strlen(msg));
    if (traceback)
        log_kv(&b, "traceback", traceback, strlen(traceback));
    log_msg(LOG_ERROR, req_id, "%s", b.data + 1);
    buf_free(&b);
}

/* Copies the first line of msg into the result's error field. */
static void set_error(struct luavm_result *res, const char *msg)
{
    size_t n = strcspn(msg, "\n");
    if (n >= sizeof res->error)
        n = sizeof res->error - 1;
    memcpy(res->error, msg, n);
    res->error[n] = '\0';
}

/* What finish_protected works on. */
struct finish_args {
    struct luavm_task *t;
    int status; /* lua_resume's */
    int nres;
    enum luavm_limit limit;
    const char *stopped; /* why the host stopped it; NULL: it ended by itself */
    struct luavm_result *res;
};

/* Turns the end of a task's coroutine into its result, in protected mode
 * (tracebacks and encoding allocate). [-0, +0] */
static int finish_protected(lua_State *L)
{
    struct finish_args *a = lua_touserdata(L, 1);
    struct luavm_task *t = a->t;
    struct luavm *vm = t->vm;
    struct luavm_result *res = a->res;
    lua_State *co = t->co;
    if (a->status == LUA_YIELD) {
        log_failure(t->id, &t->d, "yield", LIMIT_NONE,
                    "handler yielded outside a host call (coroutine.yield in the handler body)",
                    NULL);
        set_error(res, "handler yielded outside a host call");
        error_reply(vm, &t->d, t->id, LIMIT_NONE, res);
    } else if (a->status != LUA_OK || a->stopped) {
        /* The coroutine itself is only read, never changed: popping its
         * stack could run a pending __close. Not luaL_tolstring either: a
         * __tostring would run script code here, outside any limit. */
        const char *msg = a->stopped;
        if (!msg && (lua_type(co, -1) == LUA_TSTRING || lua_type(co, -1) == LUA_TNUMBER)) {
            lua_pushvalue(co, -1);
            lua_xmove(co, L, 1);
            msg = lua_tostring(L, -1);
        }
        if (!msg) {
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
            msg = lua_tostring(L, -1);
        }
        luaL_traceback(L, co, NULL, 0);
        log_failure(t->id, &t->d, a->limit ? "limit" : "error", a->limit, msg, lua_tostring(L, -1));
        set_error(res, msg);
        error_reply(vm, &t->d, t->id, a->limit, res);
    } else {
        struct buf out;
        buf_init(&out, vm->opt.max_reply_bytes);
        char err[512];
        /* Move the first result to L, where the encoder keeps its slots. */
        if (a->nres > 0) {
            lua_pop(co, a->nres - 1);
            lua_xmove(co, L, 1);
        } else {
            lua_pushnil(L);
        }
        int rc = bind_json_encode_output(L, -1, &out, err, sizeof err);
        if (rc == BIND_JSON_BAD && lua_type(L, -1) != LUA_TTABLE && lua_type(L, -1) != LUA_TSTRING)
            snprintf(err, sizeof err,
                     "handler returned a %s; return a table (a message), a string or nothing",
                     luaL_typename(L, -1));
        else if (rc == BIND_JSON_FULL)
            snprintf(err, sizeof err, "reply is longer than max_reply_bytes (%zu)", out.max);
        if (rc < 0) {
            buf_free(&out);
            log_failure(t->id, &t->d, "reply", LIMIT_NONE, err, NULL);
            set_error(res, err);
            error_reply(vm, &t->d, t->id, LIMIT_NONE, res);
        } else {
            res->status = 200;
            res->body = buf_take(&out, &res->len);
        }
    }
    return 0;
}

static void unlink_task(struct luavm_task *t)
{
    struct luavm *vm = t->vm;
    if (t->prev)
        t->prev->next = t->next;
    else if (vm->tasks == t)
        vm->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Frees a task and its coroutine. */
static void free_task(struct luavm_task *t)
{
    struct luavm *vm = t->vm;
    if (t->run_timer && vm->opt.sched)
        sched_timer_cancel(vm->opt.sched, t->run_timer);
    if (t->co) {
        /* The coroutine is left to the collector, not closed: closing would
         * run the __close of a failed handler's pending to-be-closed
         * variables, and after a limit stopped it Lua runs no hooks on that
         * thread any more, so nothing could stop a __close that loops.
         * Plain Lua does not close a dead coroutine either unless asked. */
        luaL_unref(vm->L, LUA_REGISTRYINDEX, t->ref);
    }
    free(t->response_url);
    free(t);
}

/* Fills res for a task that ended (status and nres as lua_resume gave), or
 * that the host stopped (`stopped` says why). */
static void task_result(struct luavm_task *t, int status, int nres, enum luavm_limit limit,
                        const char *stopped, struct luavm_result *res)
{
    struct luavm *vm = t->vm;
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    struct finish_args a = {t, status, nres, limit, stopped, res};
    if (!lua_checkstack(L, 4)) {
        set_error(res, "out of Lua stack");
        error_reply(vm, &t->d, t->id, limit, res);
        return;
    }
    lua_pushcfunction(L, finish_protected);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        /* Only memory can fail here; answer without Lua. */
        log_failure(t->id, &t->d, "error", limit, "out of memory while finishing the handler",
                    NULL);
        set_error(res, "out of memory");
        error_reply(vm, &t->d, t->id, limit != LIMIT_NONE ? limit : LIMIT_MEMORY, res);
    }
    lua_settop(L, top);
    res->responded = t->responded;
    res->response_url = t->response_url;
}

/* Resumes the task's coroutine with nargs values on it. Returns 1 when the
 * task ended (res filled), 0 when it waits again. */
static int run_slice(struct luavm_task *t, int nargs, struct luavm_result *res)
{
    struct luavm *vm = t->vm;
    snprintf(vm->logctx.req_id, sizeof vm->logctx.req_id, "%s", t->id);
    snprintf(vm->logctx.script, sizeof vm->logctx.script, "%s", t->d.script);
    vm->current = t;
    t->waiting = 0;
    slice_begin(vm);
    int nres = 0;
    int st = lua_resume(t->co, vm->L, nargs, &nres);
    enum luavm_limit limit = slice_end(vm, st != LUA_OK && st != LUA_YIELD);
    vm->current = NULL;
    vm->logctx.req_id[0] = '\0';
    vm->logctx.script[0] = '\0';
    if (st == LUA_YIELD && t->waiting && limit == LIMIT_NONE) {
        lua_pop(t->co, nres);
        return 0;
    }
    if (t->waiting) {
        /* A binding started work and then could not yield, or a limit
         * tripped as it yielded: stop the work before the task goes. */
        t->waiting = 0;
        if (t->cancel)
            t->cancel(t->cancel_ud);
    }
    char stopped[200];
    if (limit != LIMIT_NONE) {
        /* Stopped by a limit: the hook yielded (the stack is still there
         * for the traceback), or raised, or it tripped in the handler's
         * last instructions. */
        char why[160];
        snprintf(stopped, sizeof stopped, "stopped: %s", limit_reason(vm, limit, why, sizeof why));
        st = LUA_ERRRUN;
        nres = 0;
    }
    task_result(t, st, nres, limit, limit != LIMIT_NONE ? stopped : NULL, res);
    return 1;
}

/* Ends a waiting task: its done callback, then free. */
static void complete(struct luavm_task *t, struct luavm_result *res)
{
    unlink_task(t);
    t->vm->ntasks--;
    t->done(t, res, t->done_ud);
    free(res->body);
    free_task(t);
}

/* The run-time limit of a waiting task. */
static void on_run_timer(struct sched *s, void *ud)
{
    (void)s;
    struct luavm_task *t = ud;
    struct luavm *vm = t->vm;
    t->run_timer = NULL;
    if (t->waiting && t->cancel)
        t->cancel(t->cancel_ud);
    t->waiting = 0;
    char why[160], stopped[200];
    snprintf(stopped, sizeof stopped, "stopped: %s", limit_reason(vm, LIMIT_TIME, why, sizeof why));
    struct luavm_result res;
    memset(&res, 0, sizeof res);
    task_result(t, LUA_ERRRUN, 0, LIMIT_TIME, stopped, &res);
    complete(t, &res);
}

void luavm_wake(struct luavm_task *t, int nresults)
{
    struct luavm_result res;
    memset(&res, 0, sizeof res);
    if (!t->waiting || lua_status(t->co) != LUA_YIELD) {
        /* Cannot happen while scripts cannot touch a handler's coroutine
         * (see sb_coroutine_guard); if it does, stop the task rather than
         * resume something else. */
        task_result(t, LUA_ERRRUN, 0, LIMIT_NONE, "the handler's coroutine was disturbed", &res);
        complete(t, &res);
        return;
    }
    if (run_slice(t, nresults, &res))
        complete(t, &res);
}

struct wake_args {
    int (*push)(lua_State *L, void *ud);
    void *ud;
    int n;
};

static int wake_protected(lua_State *L)
{
    struct wake_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);
    a->n = a->push(L, a->ud);
    return a->n;
}

void luavm_wake_with(struct luavm_task *t, int (*push)(lua_State *L, void *ud), void *ud)
{
    lua_State *L = t->vm->L;
    int top = lua_gettop(L);
    struct wake_args a = {push, ud, 0};
    int n;
    lua_pushcfunction(L, wake_protected);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) == LUA_OK) {
        n = lua_gettop(L) - top;
    } else {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        n = 2;
    }
    if (!lua_checkstack(t->co, n + 1)) {
        lua_settop(L, top);
        n = 0;
    }
    lua_xmove(L, t->co, n);
    lua_settop(L, top);
    luavm_wake(t, n);
}

/* Cliq's data centres, by the tld that params.environment names. */
static const char *const cliq_tlds[] = {".com", ".eu",     ".in", ".com.au", ".jp",
                                        ".ca",  ".com.cn", ".sa", NULL};

/* Finds the API base for a request: params.environment.tld, else the host
 * of params.environment.base_url, when it is one of Cliq's own. */
static void api_base_of(const cJSON *json, char *out, size_t n)
{
    snprintf(out, n, "https://cliq.zoho.com");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(json, "params");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(params, "environment");
    const cJSON *tld = cJSON_GetObjectItemCaseSensitive(env, "tld");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(env, "base_url");
    for (const char *const *t = cliq_tlds; *t; t++) {
        if (cJSON_IsString(tld) && strcmp(tld->valuestring, *t) == 0) {
            snprintf(out, n, "https://cliq.zoho%s", *t);
            return;
        }
    }
    if (cJSON_IsString(base)) {
        for (const char *const *t = cliq_tlds; *t; t++) {
            char host[64];
            snprintf(host, sizeof host, "https://cliq.zoho%s", *t);
            size_t hl = strlen(host);
            if (strncmp(base->valuestring, host, hl) == 0 &&
                (base->valuestring[hl] == '/' || base->valuestring[hl] == '\0')) {
                snprintf(out, n, "%s", host);
                return;
            }
        }
    }
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

    refresh_scripts(vm);
    int rc = get_script(vm, d->script);
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
        log_failure(c->req_id, d, "load", limit, msg ? msg : "?", NULL);
        set_error(res, msg ? msg : "script failed to load");
        error_reply(vm, d, c->req_id, limit, res);
        goto done;
    }
    int handlers = lua_gettop(L);
    if (lua_getfield(L, handlers, d->key) != LUA_TFUNCTION) {
        res->status = 404;
        struct buf have;
        buf_init(&have, 200);
        lua_pushnil(L);
        while (lua_next(L, handlers)) {
            lua_pop(L, 1);
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
    t->ref = LUA_NOREF;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(c->json, "response_url");
    if (cJSON_IsString(url) && url->valuestring[0]) {
        int was = arena_suspend();
        t->response_url = xstrdup(url->valuestring);
        arena_resume(was);
    }
    api_base_of(c->json, t->api_base, sizeof t->api_base);
    struct build_args args = {c, t};
    lua_pushcfunction(L, start_protected);
    lua_insert(L, -2); /* the handler at top-1, so at index 2 of the call */
    lua_pushlightuserdata(L, &args);
    lua_insert(L, -2);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        log_failure(c->req_id, d, "request", LIMIT_NONE, msg ? msg : "?", NULL);
        set_error(res, msg ? msg : "could not build the request");
        error_reply(vm, d, c->req_id, LIMIT_NONE, res);
        free_task(t);
        goto done;
    }
    if (!run_slice(t, 1, res)) {
        /* It waits: the loop takes it from here. */
        vm->ntasks++;
        t->next = vm->tasks;
        if (vm->tasks)
            vm->tasks->prev = t;
        vm->tasks = t;
        if (vm->opt.max_run_ms > 0 && vm->opt.sched) {
            long long left = t->received_ms + vm->opt.max_run_ms - sched_clock_ms();
            t->run_timer = sched_timer_add(vm->opt.sched, left > 0 ? left : 0, on_run_timer, t);
        }
        *task = t;
        lua_settop(L, top);
        return 0;
    }
    res->response_url = NULL; /* it lives in the task */
    free_task(t);
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
    struct luavm_call c = {d, json, text, len, req_id, sched_clock_ms()};
    struct luavm_task *t;
    if (luavm_start(vm, &c, res, &t, run_done_unused, NULL))
        return;
    /* Without a loop nothing can wake it: stop it as a failure. */
    unlink_task(t);
    vm->ntasks--;
    if (t->cancel)
        t->cancel(t->cancel_ud);
    t->waiting = 0;
    task_result(t, LUA_ERRRUN, 0, LIMIT_NONE, "handler waited, and nothing here can wake it", res);
    free_task(t);
}

size_t luavm_tasks(const struct luavm *vm)
{
    return vm->ntasks;
}

/* ---- for bindings ------------------------------------------------------ */

struct luavm_task *luavm_task_here(lua_State *L, const char *what)
{
    struct luavm *vm = vm_of_state(L);
    struct luavm_task *t = vm->current;
    if (!t || t->co != L)
        luaL_error(L,
                   "%s can only wait in a handler's own code (not at a script's top level or in "
                   "a coroutine the script made)",
                   what);
    if (!vm->opt.sched)
        luaL_error(L, "%s is not available here (no event loop)", what);
    if (!lua_isyieldable(L))
        luaL_error(L,
                   "%s cannot wait here: it was called through a C function that cannot pause "
                   "(a string.gsub or table.sort callback, a metamethod, ...)",
                   what);
    return t;
}

struct luavm *luavm_of(const struct luavm_task *t)
{
    return t->vm;
}

const struct luavm_options *luavm_options(const struct luavm *vm)
{
    return &vm->opt;
}

const char *luavm_task_id(const struct luavm_task *t)
{
    return t->id;
}

long long luavm_task_received(const struct luavm_task *t)
{
    return t->received_ms;
}

long long luavm_task_time_left(const struct luavm_task *t)
{
    if (t->vm->opt.max_run_ms <= 0)
        return LLONG_MAX / 2;
    return t->received_ms + t->vm->opt.max_run_ms - sched_clock_ms();
}

const char *luavm_task_api_base(const struct luavm_task *t)
{
    return t->api_base;
}

const char *luavm_task_response_url(const struct luavm_task *t)
{
    return t->response_url;
}

int *luavm_task_responded(struct luavm_task *t)
{
    return &t->responded;
}

int luavm_wait(lua_State *L, struct luavm_task *t, void (*cancel)(void *), void *ud)
{
    t->waiting = 1;
    t->cancel = cancel;
    t->cancel_ud = ud;
    return lua_yield(L, 0);
}

lua_State *luavm_task_thread(struct luavm_task *t)
{
    return t->co;
}

/* ---- for the reloader -------------------------------------------------- */

void luavm_use_scriptset(struct luavm *vm, struct scriptset *set)
{
    if (set)
        scriptset_hold(set);
    scriptset_release(vm->set);
    vm->set = set;
    vm->fixed_set = 1;
}

int luavm_validate(struct luavm *vm, const char *rel, const char *src, size_t len,
                   luavm_require_cb cb, void *ud, char *keys, size_t keyslen, char *err,
                   size_t errlen)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    /* A fresh module cache, so every module the script needs runs (and is
     * seen by cb) with the snapshot's text. */
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
    vm->require_cb = cb;
    vm->require_ud = ud;
    int rc = load_script(vm, rel, src, len);
    vm->require_cb = NULL;
    vm->require_ud = NULL;
    vm->logctx.script[0] = '\0';
    if (rc < 0) {
        const char *msg = lua_tostring(L, -1);
        snprintf(err, errlen, "%s", msg ? msg : "failed to load");
        lua_settop(L, top);
        lua_gc(L, LUA_GCCOLLECT);
        return -1;
    }
    if (keys && keyslen) {
        keys[0] = '\0';
        size_t used = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            int w = snprintf(keys + used, keyslen - used, "%s%s", used ? ", " : "",
                             lua_tostring(L, -1));
            if (w > 0 && (size_t)w < keyslen - used)
                used += (size_t)w;
        }
    }
    lua_settop(L, top);
    return 0;
}

int luavm_compile_only(struct luavm *vm, const char *rel, const char *src, size_t len, char *err,
                       size_t errlen)
{
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%s", vm->scripts_dir, rel);
    int rc = compile(vm->L, src, len, path);
    if (rc != LUA_OK)
        snprintf(err, errlen, "%s", lua_tostring(vm->L, -1));
    lua_pop(vm->L, 1);
    return rc == LUA_OK ? 0 : -1;
}
