/*
 * fuzz_json: JSON -> Lua -> JSON, the way request bodies reach scripts and
 * replies leave them.
 *
 * The input is JSON text (or not). Five passes:
 *  0. request_parse (the host's own parser of request bodies) gives what
 *     cJSON gives: the same tree node for node (types, numbers bit for
 *     bit, strings, keys, links), the same end, and NULL exactly where
 *     cJSON fails.
 *  1. cJSON parses it as request_decode does (one value, then whitespace);
 *     bind_json_push_tree makes the Lua value, which must match the tree
 *     (integers exact, [] and {} marked, strings byte-exact, the last of
 *     repeated keys). bind_json_encode writes it back: it must succeed
 *     exactly when the value holds no invalid UTF-8, no infinity and no more
 *     than BIND_JSON_MAX_DEPTH levels, and the text must be valid UTF-8 JSON
 *     that reads back as the same value, subtypes and marks included.
 *  2. The `json` module as scripts see it, in a bare state: json.decode
 *     accepts exactly what pass 1 parsed and gives the same value;
 *     json.encode writes the same text as pass 1 and fails where it does;
 *     a copy without the array/object marks still encodes (only an empty
 *     array may come back as {}).
 *  3. json.decode and json.encode again, in states whose heap runs out at
 *     some point along the way: a memory error or the result, and nothing
 *     leaks.
 *  4. For an object: a sandboxed luavm runs a handler that gets it as
 *     req.body, encodes and decodes it with json.*, and returns both; the
 *     reply {"output": ...} must carry the same value.
 */
#include "fuzz.h"
#include "../unit/cjson_same.h"

#include "cliq/request.h"
#include "core/arena.h"
#include "core/buf.h"
#include "script/bind_json.h"
#include "script/luavm.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TEXT_MAX (64 * 1024 * 1024)

/* ---- a Lua allocator with a cap ---------------------------------------- */

struct heap {
    size_t used, max;
    long allocs;    /* allocations that grew the heap */
    long fail_from; /* refuse every one from this count on; -1: none */
    int refused;    /* an allocation was refused */
};

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct heap *h = ud;
    if (!ptr)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        h->used -= osize;
        return NULL;
    }
    if (nsize > osize) {
        if (h->used + (nsize - osize) > h->max ||
            (h->fail_from >= 0 && h->allocs >= h->fail_from)) {
            h->refused = 1;
            return NULL;
        }
        h->allocs++;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    h->used = h->used - osize + nsize;
    return p;
}

/* ---- comparing values -------------------------------------------------- */

/* Stack slots of a state set up by open_state(). */
struct slots {
    int json, null, array_mt, object_mt;
};

static int has_mark(lua_State *L, int idx, int mark)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    int same = lua_rawequal(L, -1, mark);
    lua_pop(L, 1);
    return same;
}

/* 1 if the Lua value at idx is what the cJSON item says. An object's value
 * is the last of repeated keys. */
static int same_as_tree(lua_State *L, const struct slots *s, int idx, const cJSON *it)
{
    luaL_checkstack(L, 4, NULL);
    idx = lua_absindex(L, idx);
    switch (it->type & 0xff) {
    case cJSON_False:
    case cJSON_True:
        return lua_type(L, idx) == LUA_TBOOLEAN &&
               lua_toboolean(L, idx) == ((it->type & 0xff) == cJSON_True);
    case cJSON_NULL:
        return lua_rawequal(L, idx, s->null);
    case cJSON_Number:
        if (lua_type(L, idx) != LUA_TNUMBER)
            return 0;
        /* cJSON keeps a double: an integer matches its nearest double. */
        if (lua_isinteger(L, idx))
            return (double)lua_tointeger(L, idx) == it->valuedouble;
        return lua_tonumber(L, idx) == it->valuedouble;
    case cJSON_String: {
        size_t n;
        if (lua_type(L, idx) != LUA_TSTRING)
            return 0;
        const char *v = lua_tolstring(L, idx, &n);
        return n == strlen(it->valuestring) && memcmp(v, it->valuestring, n) == 0;
    }
    case cJSON_Array: {
        if (lua_type(L, idx) != LUA_TTABLE || !has_mark(L, idx, s->array_mt))
            return 0;
        lua_Integer i = 0;
        for (const cJSON *c = it->child; c; c = c->next) {
            lua_rawgeti(L, idx, ++i);
            int ok = same_as_tree(L, s, -1, c);
            lua_pop(L, 1);
            if (!ok)
                return 0;
        }
        return (lua_Integer)lua_rawlen(L, idx) == i;
    }
    case cJSON_Object: {
        if (lua_type(L, idx) != LUA_TTABLE || !has_mark(L, idx, s->object_mt))
            return 0;
        lua_Integer keys = 0;
        for (const cJSON *c = it->child; c; c = c->next) {
            int last = 1;
            for (const cJSON *later = c->next; later && last; later = later->next)
                last = strcmp(later->string, c->string) != 0;
            if (!last)
                continue;
            keys++;
            lua_pushstring(L, c->string);
            lua_rawget(L, idx);
            int ok = same_as_tree(L, s, -1, c);
            lua_pop(L, 1);
            if (!ok)
                return 0;
        }
        lua_Integer n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            n++;
        }
        return n == keys;
    }
    default:
        return 0;
    }
}

static lua_Integer table_size(lua_State *L, int idx)
{
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* 1 if the values at a and b are the same JSON value: same types, same
 * number subtypes, same marks (`relaxed`: two empty tables are the same
 * whatever their marks). */
static int same_value(lua_State *L, int a, int b, int relaxed)
{
    luaL_checkstack(L, 6, NULL);
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_type(L, a) != lua_type(L, b))
        return 0;
    switch (lua_type(L, a)) {
    case LUA_TNUMBER:
        return lua_isinteger(L, a) == lua_isinteger(L, b) && lua_rawequal(L, a, b);
    case LUA_TTABLE:
        break;
    default:
        return lua_rawequal(L, a, b);
    }
    lua_Integer na = table_size(L, a), nb = table_size(L, b);
    if (na != nb)
        return 0;
    int ma = lua_getmetatable(L, a), mb = lua_getmetatable(L, b);
    int marks = ma == mb && (!ma || lua_rawequal(L, -1, -2));
    lua_pop(L, ma + mb);
    if (!marks && !(relaxed && na == 0))
        return 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        int ok = same_value(L, -2, -1, relaxed);
        lua_pop(L, 2);
        if (!ok) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

/* 1 if bind_json_encode must take the value at idx: valid UTF-8 strings and
 * keys, finite numbers, and tables nested at most BIND_JSON_MAX_DEPTH deep
 * (`depth` is the value's own level). *deepest gets the deepest level. */
static int encodable(lua_State *L, const struct slots *s, int idx, int depth, int *deepest)
{
    luaL_checkstack(L, 4, NULL);
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *v = lua_tolstring(L, idx, &n);
        return fuzz_utf8_valid(v, n);
    }
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) || isfinite(lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return 1;
    case LUA_TUSERDATA:
        return lua_rawequal(L, idx, s->null);
    case LUA_TTABLE:
        break;
    default:
        return 0;
    }
    if (depth + 1 > *deepest)
        *deepest = depth + 1;
    int ok = depth + 1 <= BIND_JSON_MAX_DEPTH;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && !encodable(L, s, -2, depth, deepest))
            ok = 0;
        if (!encodable(L, s, -1, depth + 1, deepest))
            ok = 0;
        lua_pop(L, 1);
    }
    return ok;
}

/* ---- states ------------------------------------------------------------ */

/* A bare state with the json module in global `json` and its parts in
 * slots 1-4. */
static lua_State *open_state(struct heap *h, size_t max, struct slots *s, int libs)
{
    h->used = 0;
    h->max = max;
    h->allocs = 0;
    h->fail_from = -1;
    h->refused = 0;
    lua_State *L = lua_newstate(capped_alloc, h);
    FUZZ_CHECK(L != NULL);
    if (libs)
        luaL_openlibs(L);
    bind_json_open(L);
    s->json = lua_gettop(L);
    lua_pushvalue(L, s->json);
    lua_setglobal(L, "json");
    bind_json_push_null(L);
    s->null = lua_gettop(L);
    lua_getfield(L, s->json, "array");
    lua_call(L, 0, 1);
    FUZZ_CHECK(lua_getmetatable(L, -1));
    lua_replace(L, -2);
    s->array_mt = lua_gettop(L);
    lua_getfield(L, s->json, "object");
    lua_call(L, 0, 1);
    FUZZ_CHECK(lua_getmetatable(L, -1));
    lua_replace(L, -2);
    s->object_mt = lua_gettop(L);
    return L;
}

struct push_args {
    const cJSON *tree;
    const char *text;
    size_t len;
};

static int push_fn(lua_State *L)
{
    const struct push_args *a = lua_touserdata(L, 1);
    bind_json_push_tree(L, a->tree, a->text, a->len);
    return 1;
}

/* Pushes the value of tree (parsed from text) in protected mode. */
static void push_tree(lua_State *L, const cJSON *tree, const char *text, size_t len)
{
    struct push_args a = {tree, text, len};
    lua_pushcfunction(L, push_fn);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        fuzz_fail(__FILE__, __LINE__, "bind_json_push_tree: %s", lua_tostring(L, -1));
}

/* ---- pass 2: the module as scripts see it ------------------------------ */

static const char module_chunk[] =
    "local json, text = ...\n"
    "local v, err = json.decode(text)\n"
    "if v == nil then\n"
    "  assert(type(err) == 'string' and err ~= '', 'json.decode: no message')\n"
    "  return 'refused'\n"
    "end\n"
    "local ok, t = pcall(json.encode, v)\n"
    "if not ok then return 'unencodable', t, v end\n"
    "local v2, err2 = json.decode(t)\n"
    "if v2 == nil then error('json.decode refused what json.encode wrote: ' .. err2) end\n"
    "local function strip(x)\n"
    "  if type(x) ~= 'table' then return x end\n"
    "  local c = {}\n"
    "  for k, y in pairs(x) do c[k] = strip(y) end\n"
    "  return c\n"
    "end\n"
    "local ok3, t3 = pcall(json.encode, strip(v))\n"
    "if not ok3 then error('json.encode refused the value without its marks: ' .. t3) end\n"
    "local v3, err3 = json.decode(t3)\n"
    "if v3 == nil then error('json.decode refused what json.encode wrote: ' .. err3) end\n"
    "return 'ok', t, v, v2, v3\n";

/* ---- pass 3: out of memory ------------------------------------------- */

/* Runs json.decode(text), or with `encode` json.encode of its value, in a
 * fresh state whose heap refuses every allocation from the call's `n`th on
 * (n < 0: none). It must give its result (decode: the value when `parsed`,
 * or nil and a message), or fail for want of memory; closing the state and
 * LeakSanitizer see that nothing is left behind. Returns the allocations
 * the call made. */
static long run_failing_from(const char *text, size_t size, int encode, long n, int parsed)
{
    struct heap h;
    struct slots s;
    lua_State *T = open_state(&h, (size_t)1 << 30, &s, 0);
    if (encode) {
        lua_getfield(T, s.json, "encode");
        lua_getfield(T, s.json, "decode");
        lua_pushlstring(T, text, size);
        lua_call(T, 1, 1);
        FUZZ_CHECK(!lua_isnil(T, -1));
    } else {
        lua_getfield(T, s.json, "decode");
        lua_pushlstring(T, text, size);
    }
    h.allocs = 0;
    h.fail_from = n;
    int st = lua_pcall(T, 1, 2, 0);
    /* A stack that cannot grow for want of memory is reported as a stack
     * overflow; luavm counts any refused allocation as the memory limit. */
    if (!(st == LUA_OK || st == LUA_ERRMEM || (st == LUA_ERRRUN && h.refused)))
        fuzz_fail(__FILE__, __LINE__, "json.%s, out of memory at %ld: status %d: %s",
                  encode ? "encode" : "decode", n, st, lua_tostring(T, -1));
    if (n < 0)
        FUZZ_CHECK(st == LUA_OK);
    if (st == LUA_OK && encode)
        FUZZ_CHECK(lua_isstring(T, -2));
    else if (st == LUA_OK)
        FUZZ_CHECK(parsed ? !lua_isnil(T, -2) : lua_isnil(T, -2) && lua_isstring(T, -1));
    long made = h.allocs;
    lua_close(T);
    return made;
}

/* Runs the call above with the heap running out first or early on, half-
 * way, at the end, and at a point the input picks. */
static void run_out_of_memory(const char *text, size_t size, int encode, int parsed)
{
    long total = run_failing_from(text, size, encode, -1, parsed);
    size_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum += (unsigned char)text[i];
    const long points[] = {0, 1, 2, 3, total / 2, total - 1, (long)(sum % (size_t)(total + 1))};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
        if (points[i] >= 0 && points[i] < total)
            run_failing_from(text, size, encode, points[i], parsed);
}

/* ---- pass 4: a sandboxed luavm ----------------------------------------- */

static struct luavm_options vmopt;
static struct request_dispatch echo;

static const char echo_script[] =
    "return {\n"
    "  execution = function(req)\n"
    "    local ok, text = pcall(json.encode, req.body)\n"
    "    if not ok then return { encoded = false } end\n"
    "    return { encoded = true, body = req.body, again = json.decode(text) }\n"
    "  end,\n"
    "}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    arena_install_cjson_hooks(); /* as main() does */
    static char scripts[600], path[700];
    snprintf(scripts, sizeof scripts, "%s/scripts", fuzz_tmpdir("fuzz-json"));
    snprintf(path, sizeof path, "%s/commands", scripts);
    FUZZ_CHECK(mkdir(scripts, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/commands/echo.lua", scripts);
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f && fputs(echo_script, f) >= 0 && fclose(f) == 0);

    vmopt.scripts_dir = scripts;
    vmopt.max_script_bytes = 1 << 20;
    vmopt.max_reply_bytes = TEXT_MAX;
    vmopt.max_memory = 512 * 1024 * 1024;
    vmopt.error_reply = "Failed ({id}).";
    vmopt.limit_reply = "Stopped: {reason} ({id}).";
    char err[512];
    FUZZ_CHECK(request_map("command", "execution_handler", "echo", &echo, err, sizeof err) == 0);
    return 0;
}

static void run_in_luavm(lua_State *L, int value, const cJSON *tree, const char *text, size_t len,
                         int encode_ok, int deepest)
{
    /* A luavm of its own: one kept between inputs would free this input's
     * garbage during later ones, and libFuzzer would suspect a leak (and
     * run LeakSanitizer) after nearly every input. */
    char err[512];
    struct luavm *vm = luavm_new(&vmopt, err, sizeof err);
    if (!vm)
        fuzz_fail(__FILE__, __LINE__, "luavm_new: %s", err);
    struct luavm_result res;
    memset(&res, 0, sizeof res);
    luavm_run(vm, &echo, tree, text, len, "fuzz-1", &res);
    luavm_free(vm);
    if (res.status != 200 || !res.body)
        fuzz_fail(__FILE__, __LINE__, "luavm: status %d: %s", res.status, res.error);
    /* The handler's reply holds the body two levels down. */
    int reply_ok = encode_ok && deepest + 1 <= BIND_JSON_MAX_DEPTH;
    if (reply_ok && res.failed)
        fuzz_fail(__FILE__, __LINE__, "luavm: the handler failed: %s", res.error);
    FUZZ_CHECK(fuzz_utf8_valid(res.body, res.len));
    cJSON *reply = fuzz_json_parse(res.body, res.len);
    FUZZ_CHECK(reply != NULL);
    if (!res.failed) {
        int top = lua_gettop(L);
        push_tree(L, reply, res.body, res.len);
        FUZZ_CHECK(lua_getfield(L, -1, "output") == LUA_TTABLE);
        int out = lua_gettop(L);
        FUZZ_CHECK(lua_getfield(L, out, "encoded") == LUA_TBOOLEAN);
        FUZZ_CHECK(lua_toboolean(L, -1) == encode_ok);
        if (encode_ok) {
            lua_getfield(L, out, "body");
            FUZZ_CHECK(same_value(L, value, -1, 0));
            lua_getfield(L, out, "again");
            FUZZ_CHECK(same_value(L, value, -1, 0));
        }
        lua_settop(L, top);
    }
    cJSON_Delete(reply);
    free(res.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    /* Pass 0: request_parse is cJSON, faster. */
    const char *end_ours = NULL, *end_cjson = NULL;
    cJSON *ours = request_parse(text, size, &end_ours);
    cJSON *theirs = cJSON_ParseWithLengthOpts(text, size, &end_cjson, 0);
    if (!ours != !theirs || !cjson_same(ours, theirs) || (ours && end_ours != end_cjson))
        fuzz_fail(__FILE__, __LINE__, "request_parse differs from cJSON on %.200s", text);
    cJSON_Delete(ours);
    cJSON_Delete(theirs);

    cJSON *tree = fuzz_json_parse(text, size);

    /* Pass 1: the host's conversions. */
    struct heap heap;
    struct slots s;
    lua_State *L = open_state(&heap, (size_t)1 << 30, &s, 1);
    int value = 0, encode_ok = 0, deepest = 0;
    struct buf out;
    buf_init(&out, TEXT_MAX);
    if (tree) {
        push_tree(L, tree, text, size);
        value = lua_gettop(L);
        FUZZ_CHECK(same_as_tree(L, &s, value, tree));
        encode_ok = encodable(L, &s, value, 0, &deepest);
        char err[512];
        int rc = bind_json_encode(L, value, &out, "value", err, sizeof err);
        FUZZ_CHECK(lua_gettop(L) == value);
        if (encode_ok != (rc == 0))
            fuzz_fail(__FILE__, __LINE__, "bind_json_encode gave %d (%s); expected %s", rc, err,
                      encode_ok ? "success" : "failure");
        if (rc == 0) {
            FUZZ_CHECK(fuzz_utf8_valid(out.data, out.len));
            cJSON *back = fuzz_json_parse(out.data, out.len);
            if (!back)
                fuzz_fail(__FILE__, __LINE__, "bind_json_encode wrote bad JSON: %s", out.data);
            push_tree(L, back, out.data, out.len);
            FUZZ_CHECK(same_value(L, value, -1, 0));
            lua_pop(L, 1);
            cJSON_Delete(back);
        }
        /* A handler's reply: {"output": v} for a table or a string. */
        struct buf reply;
        buf_init(&reply, TEXT_MAX);
        rc = bind_json_encode_output(L, value, &reply, err, sizeof err);
        int shape = lua_type(L, value) == LUA_TTABLE || lua_type(L, value) == LUA_TSTRING;
        FUZZ_CHECK(rc == (shape && encode_ok ? 0 : BIND_JSON_BAD));
        if (rc == 0) {
            cJSON *back = fuzz_json_parse(reply.data, reply.len);
            FUZZ_CHECK(back && cJSON_GetObjectItemCaseSensitive(back, "output"));
            cJSON_Delete(back);
        }
        buf_free(&reply);
    }

    /* Pass 2: json.decode and json.encode as scripts call them. */
    int base = lua_gettop(L);
    if (luaL_loadbuffer(L, module_chunk, sizeof module_chunk - 1, "=fuzz_json") != LUA_OK)
        fuzz_fail(__FILE__, __LINE__, "chunk: %s", lua_tostring(L, -1));
    lua_pushvalue(L, s.json);
    lua_pushlstring(L, text, size);
    if (lua_pcall(L, 2, LUA_MULTRET, 0) != LUA_OK)
        fuzz_fail(__FILE__, __LINE__, "json module: %s", lua_tostring(L, -1));
    lua_settop(L, base + 5);
    const char *verdict = lua_tostring(L, base + 1);
    FUZZ_CHECK(verdict != NULL);
    if (!tree) {
        FUZZ_CHECK(strcmp(verdict, "refused") == 0);
    } else if (!encode_ok) {
        FUZZ_CHECK(strcmp(verdict, "unencodable") == 0);
        FUZZ_CHECK(same_value(L, value, base + 3, 0));
    } else {
        FUZZ_CHECK(strcmp(verdict, "ok") == 0);
        size_t n;
        const char *t = lua_tolstring(L, base + 2, &n);
        /* The same value built the same way iterates the same way. */
        FUZZ_CHECK(t && n == out.len && memcmp(t, out.data, n) == 0);
        FUZZ_CHECK(same_value(L, value, base + 3, 0));
        FUZZ_CHECK(same_value(L, value, base + 4, 0));
        FUZZ_CHECK(same_value(L, value, base + 5, 1));
    }
    lua_settop(L, base);
    buf_free(&out);

    /* Pass 3: json.decode, and json.encode of what it gave, when the heap
     * runs out on the way. */
    run_out_of_memory(text, size, 0, tree != NULL);
    if (tree && encode_ok)
        run_out_of_memory(text, size, 1, 1);

    /* Pass 4: an object as a handler's req.body, and back in its reply. */
    if (tree && cJSON_IsObject(tree))
        run_in_luavm(L, value, tree, text, size, encode_ok, deepest);

    lua_close(L);
    cJSON_Delete(tree);
    free(text);
    return 0;
}
