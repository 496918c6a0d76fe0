/* bind_json: the json module and Lua <-> JSON conversion (see bind_json.h). */
#include "script/bind_json.h"

#include "cliq/request.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/jsonw.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Registry keys: the addresses of these statics are unique. */
static const char array_mt_key = 'a';
static const char object_mt_key = 'o';
static const char null_key = 'n';
static const char tree_box_key = 't';
static const char buf_box_key = 'b';

/* ---- decoding ---------------------------------------------------------- */

/* Walks the JSON text to each number token in turn. */
struct numscan {
    const char *p, *end;
};

/* Finds the next number token. Returns its start and sets *n, or NULL. */
static const char *next_number(struct numscan *s, size_t *n)
{
    const char *p = s->p, *end = s->end;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            /* Skip the string: find a quote not preceded by an odd number of
             * backslashes. */
            p++;
            for (;;) {
                const char *q = memchr(p, '"', (size_t)(end - p));
                if (!q) {
                    s->p = end;
                    return NULL;
                }
                size_t bs = 0;
                while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
                    bs++;
                p = q + 1;
                if (bs % 2 == 0)
                    break;
            }
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            const char *start = p;
            /* The same characters cJSON's parse_number takes. */
            while (p < end && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' ||
                               *p == 'e' || *p == 'E'))
                p++;
            s->p = p;
            *n = (size_t)(p - start);
            return start;
        }
        p++;
    }
    s->p = end;
    return NULL;
}

/* Parses an integer token exactly. Returns 0, or -1 if it is not an integer
 * form or does not fit in 64 bits. */
static int token_integer(const char *t, size_t n, lua_Integer *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && t[i] == '-') {
        neg = 1;
        i++;
    }
    if (i == n)
        return -1;
    uint64_t v = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return -1;
        unsigned d = (unsigned)(t[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (lua_Integer)(0 - v) : (lua_Integer)v;
    return 0;
}

struct decoder {
    lua_State *L;
    struct numscan scan;
    unsigned long numbers, scanned;    /* numbers met in the tree, and in the text */
    int array_mt, object_mt, null_idx; /* stack slots */
    unsigned long items;               /* values built, for the CPU check */
};

/* Registry: the C function json.decode calls every few thousand values
 * (bind_json_set_check). */
static const char check_key = 'k';

void bind_json_set_check(lua_State *L, lua_CFunction check)
{
    lua_pushcfunction(L, check);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &check_key);
}

/* Runs the CPU check, if one is set (it raises when the limit passed). */
static void run_check(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &check_key) == LUA_TFUNCTION)
        lua_call(L, 0, 0);
    else
        lua_pop(L, 1);
}

static void push_number(struct decoder *d, const cJSON *item)
{
    d->numbers++;
    /* request_parse says what the token was: no need to find it. */
    if (item->type & REQUEST_NUMBER_INTEGER) {
        lua_pushinteger(d->L, (lua_Integer)item->valuedouble); /* exact: 15 digits */
        return;
    }
    if (item->type & REQUEST_NUMBER_FLOAT) {
        lua_pushnumber(d->L, item->valuedouble);
        return;
    }
    size_t n = 0;
    const char *t = NULL;
    while (d->scanned < d->numbers) { /* past the tokens not read, to this one */
        t = next_number(&d->scan, &n);
        d->scanned++;
    }
    lua_Integer iv;
    /* A fraction, an exponent, or more than 64 bits: a float, as cJSON read
     * it. */
    if (t && token_integer(t, n, &iv) == 0)
        lua_pushinteger(d->L, iv);
    else
        lua_pushnumber(d->L, item->valuedouble);
}

static void push_item(struct decoder *d, const cJSON *item, int depth)
{
    lua_State *L = d->L;
    if (depth > CJSON_NESTING_LIMIT + 1)
        luaL_error(L, "JSON nested too deeply");
    if ((++d->items & 4095) == 0)
        run_check(L);
    switch (item->type & 0xff) {
    case cJSON_False:
        lua_pushboolean(L, 0);
        break;
    case cJSON_True:
        lua_pushboolean(L, 1);
        break;
    case cJSON_NULL:
        lua_pushvalue(L, d->null_idx);
        break;
    case cJSON_Number:
        push_number(d, item);
        break;
    case cJSON_String:
    case cJSON_Raw: {
        /* lua_pushlstring, not lua_pushstring: the latter first searches
         * Lua's cache of C-string addresses, which never hits for a tree
         * that was just parsed. */
        const char *v = item->valuestring ? item->valuestring : "";
        lua_pushlstring(L, v, strlen(v));
        break;
    }
    case cJSON_Array: {
        /* A container holds its table, a key and the value being built;
         * scalars take one slot, checked here once for all its children. */
        luaL_checkstack(L, 4, "JSON nested too deeply");
        int n = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            n++;
        lua_createtable(L, n, 0);
        lua_Integer i = 1;
        for (const cJSON *c = item->child; c; c = c->next) {
            push_item(d, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
        lua_pushvalue(L, d->array_mt);
        lua_setmetatable(L, -2);
        break;
    }
    case cJSON_Object: {
        luaL_checkstack(L, 4, "JSON nested too deeply");
        int n = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            n++;
        lua_createtable(L, 0, n);
        for (const cJSON *c = item->child; c; c = c->next) {
            /* Every child is visited, even a repeated key, so the number
             * scan stays in step with the tree. The last one wins. */
            const char *k = c->string ? c->string : "";
            lua_pushlstring(L, k, strlen(k));
            push_item(d, c, depth + 1);
            lua_rawset(L, -3);
        }
        lua_pushvalue(L, d->object_mt);
        lua_setmetatable(L, -2);
        break;
    }
    default:
        lua_pushnil(L);
        break;
    }
}

void bind_json_push_tree(lua_State *L, const cJSON *item, const char *text, size_t len)
{
    struct decoder d;
    d.L = L;
    d.scan.p = text;
    d.scan.end = text + len;
    luaL_checkstack(L, 8, NULL);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    d.array_mt = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    d.object_mt = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
    d.null_idx = lua_gettop(L);
    d.items = 0;
    d.numbers = d.scanned = 0;
    push_item(&d, item, 0);
    lua_replace(L, d.array_mt);
    lua_settop(L, d.array_mt);
}

void bind_json_push_null(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
}

int bind_json_marked(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    int ours = lua_rawequal(L, -1, -3) || lua_rawequal(L, -2, -3);
    lua_pop(L, 3);
    return ours;
}

void bind_json_new_object(lua_State *L, int nrec)
{
    lua_createtable(L, 0, nrec);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    lua_setmetatable(L, -2);
}

/* ---- encoding ---------------------------------------------------------- */

/* path[d] is the key of the child being encoded inside the container at
 * depth d; key NULL and index 0 until the first child. */
struct path_seg {
    const char *key; /* string key (borrowed from the Lua stack), or NULL */
    size_t keylen;
    lua_Integer index; /* array index when key is NULL */
};

struct encoder {
    lua_State *L;
    struct buf *out;
    const char *root;
    char *err;
    size_t errlen;
    int depth;
    int full;                          /* failed because the buffer reached its cap */
    int array_mt, object_mt, null_idx; /* stack slots */
    unsigned long steps;               /* values and keys looked at, for the CPU check */
    struct path_seg path[BIND_JSON_MAX_DEPTH + 1];
};

/* Counts a step of encoding work (a value, a key looked at): every 4096
 * the CPU check runs, and raises when the limit passed. The text being
 * built belongs to a userdata, so nothing leaks when it does. */
static void encoder_step(struct encoder *e)
{
    if ((++e->steps & 4095) == 0)
        run_check(e->L);
}

/* Writes "<path>: <message>" into err. Returns -1 for convenience. */
static int fail(struct encoder *e, const char *fmt, const char *arg)
{
    char where[256];
    size_t n = (size_t)snprintf(where, sizeof where, "%s", e->root);
    for (int i = 1; i <= e->depth && n < sizeof where; i++) {
        const struct path_seg *s = &e->path[i];
        if (!s->key && s->index == 0)
            break; /* the failure is the container at this level itself */
        if (s->key)
            n += (size_t)snprintf(where + n, sizeof where - n, ".%.*s",
                                  (int)(s->keylen > 40 ? 40 : s->keylen), s->key);
        else
            n += (size_t)snprintf(where + n, sizeof where - n, "[%lld]", (long long)s->index);
    }
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    snprintf(e->err, e->errlen, "%s: %s", where, msg);
    return -1;
}

static int out_full(struct encoder *e)
{
    char size[32];
    snprintf(size, sizeof size, "%zu", e->out->max);
    fail(e, "JSON text would be longer than %s bytes", size);
    e->full = 1;
    return -1;
}

static int encode_string(struct encoder *e, const char *s, size_t n)
{
    size_t bad = 0;
    int rc = jsonw_string(e->out, s, n, JSONW_STRICT, &bad);
    if (rc == JSONW_FULL)
        return out_full(e);
    if (rc == JSONW_BAD_UTF8) {
        char at[32];
        snprintf(at, sizeof at, "%zu", bad + 1);
        return fail(e, "string is not valid UTF-8 (at byte %s)", at);
    }
    return 0;
}

static int encode_number(struct encoder *e, int idx)
{
    lua_State *L = e->L;
    char tmp[40];
    int n;
    if (lua_isinteger(L, idx)) {
        n = snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
    } else {
        double v = lua_tonumber(L, idx);
        if (isnan(v) || isinf(v))
            return fail(e, "%s cannot be represented in JSON", isnan(v) ? "NaN" : "infinity");
        /* The shortest text that reads back as the same double. */
        n = 0;
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        /* Keep it a float when read back: 1.0, not 1. */
        if (!strpbrk(tmp, ".eE"))
            n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".0");
    }
    if (buf_add(e->out, tmp, (size_t)n) < 0)
        return out_full(e);
    return 0;
}

static int encode_value(struct encoder *e, int idx);

/* Encodes the table at idx (absolute) as an array of 1..n. */
static int encode_array(struct encoder *e, int idx, lua_Integer n)
{
    lua_State *L = e->L;
    if (buf_addc(e->out, '[') < 0)
        return out_full(e);
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1 && buf_addc(e->out, ',') < 0)
            return out_full(e);
        e->path[e->depth].key = NULL;
        e->path[e->depth].index = i;
        lua_rawgeti(L, idx, i);
        int rc = encode_value(e, lua_gettop(L));
        lua_pop(L, 1);
        if (rc < 0)
            return -1;
    }
    if (buf_addc(e->out, ']') < 0)
        return out_full(e);
    return 0;
}

/* Encodes the table at idx (absolute) as an object. Integer keys are
 * written as decimal strings only when `int_keys_ok` (marked objects). */
static int encode_object(struct encoder *e, int idx, int int_keys_ok)
{
    lua_State *L = e->L;
    if (buf_addc(e->out, '{') < 0)
        return out_full(e);
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2);
        const char *k;
        size_t klen;
        char tmp[32];
        if (kt == LUA_TSTRING) {
            k = lua_tolstring(L, -2, &klen);
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && int_keys_ok) {
            klen = (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, -2));
            k = tmp;
        } else {
            lua_pop(L, 2);
            return fail(e, "object keys must be strings (found a %s key)", lua_typename(L, kt));
        }
        if (!first && buf_addc(e->out, ',') < 0) {
            lua_pop(L, 2);
            return out_full(e);
        }
        first = 0;
        e->path[e->depth].key = k;
        e->path[e->depth].keylen = klen;
        if (encode_string(e, k, klen) < 0) {
            lua_pop(L, 2);
            return -1;
        }
        if (buf_addc(e->out, ':') < 0) {
            lua_pop(L, 2);
            return out_full(e);
        }
        int rc = encode_value(e, lua_gettop(L));
        if (rc < 0) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    if (buf_addc(e->out, '}') < 0)
        return out_full(e);
    return 0;
}

/* Sorts an unmarked table: 'a' array (of *n items), 'o' object, or -1 with
 * the reason in err. */
static int classify(struct encoder *e, int idx, lua_Integer *n)
{
    lua_State *L = e->L;
    lua_Integer count = 0, ints = 0, strs = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        encoder_step(e);
        count++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            strs++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
            ints++;
            if (lua_tointeger(L, -1) > max)
                max = lua_tointeger(L, -1);
        }
    }
    if (count == 0 || strs == count)
        return 'o';
    if (ints == count && max == count) {
        *n = count;
        return 'a';
    }
    if (ints == count)
        return fail(e, "%s", "array has holes (nil between items); use json.null for a null");
    return fail(e, "%s",
                "table mixes list items and named keys; JSON needs one or the other "
                "(use json.object() to write numbers as keys)");
}

static int encode_table(struct encoder *e, int idx)
{
    lua_State *L = e->L;
    if (e->depth >= BIND_JSON_MAX_DEPTH)
        return fail(e, "%s", "nested too deeply (or a table contains itself)");
    luaL_checkstack(L, 6, NULL);
    e->depth++;
    e->path[e->depth].key = NULL; /* no child yet */
    e->path[e->depth].index = 0;
    int rc;
    int mark = 0;
    if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, e->array_mt))
            mark = 'a';
        else if (lua_rawequal(L, -1, e->object_mt))
            mark = 'o';
        lua_pop(L, 1);
    }
    if (mark == 'a') {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        lua_Integer count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            count++;
        }
        if (count != n) {
            e->depth--;
            return fail(e, "%s", "json.array has keys other than 1..n (holes, or named keys)");
        }
        rc = encode_array(e, idx, n);
    } else if (mark == 'o') {
        rc = encode_object(e, idx, 1);
    } else {
        lua_Integer n = 0;
        int kind = classify(e, idx, &n);
        if (kind == 'a')
            rc = encode_array(e, idx, n);
        else if (kind == 'o')
            rc = encode_object(e, idx, 0);
        else
            rc = kind;
    }
    e->depth--;
    return rc;
}

static int encode_value(struct encoder *e, int idx)
{
    lua_State *L = e->L;
    encoder_step(e);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return buf_adds(e->out, "null") < 0 ? out_full(e) : 0;
    case LUA_TBOOLEAN:
        return buf_adds(e->out, lua_toboolean(L, idx) ? "true" : "false") < 0 ? out_full(e) : 0;
    case LUA_TNUMBER:
        return encode_number(e, idx);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return encode_string(e, s, n);
    }
    case LUA_TTABLE:
        return encode_table(e, idx);
    case LUA_TUSERDATA:
        if (lua_rawequal(L, idx, e->null_idx))
            return buf_adds(e->out, "null") < 0 ? out_full(e) : 0;
        return fail(e, "%s", "cannot encode a userdata");
    default:
        return fail(e, "cannot encode a %s", lua_typename(L, lua_type(L, idx)));
    }
}

int bind_json_encode(lua_State *L, int idx, struct buf *out, const char *root, char *err,
                     size_t errlen)
{
    struct encoder enc; /* about 5 KB: fine on a thread's stack, no heap per reply */
    struct encoder *e = &enc;
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    luaL_checkstack(L, 6, NULL);
    e->L = L;
    e->out = out;
    e->root = root;
    e->err = err;
    e->errlen = errlen;
    err[0] = '\0';
    e->depth = 0;
    e->full = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    e->array_mt = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    e->object_mt = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
    e->null_idx = lua_gettop(L);
    e->steps = 0;
    int rc = encode_value(e, idx);
    lua_settop(L, top);
    return rc < 0 ? (e->full ? BIND_JSON_FULL : BIND_JSON_BAD) : 0;
}

/* ---- the module -------------------------------------------------------- */

/* json.encode(value) -> string. Raises with the path of a value JSON cannot
 * carry: that is a programming error, not an expected failure. The text is
 * built in malloc'd memory owned by a userdata, so that a memory error
 * while encoding or pushing the result cannot leak it. */
struct buf *bind_json_push_buf(lua_State *L, size_t cap)
{
    struct buf *b = lua_newuserdatauv(L, sizeof *b, 0);
    buf_init(b, cap);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &buf_box_key);
    lua_setmetatable(L, -2);
    return b;
}

static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    struct buf *b = bind_json_push_buf(L, 64 * 1024 * 1024);
    char err[512];
    if (bind_json_encode(L, 1, b, "value", err, sizeof err) < 0) {
        buf_free(b);
        return luaL_error(L, "json.encode: %s", err);
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    buf_free(b);
    return 1;
}

/* json.decode's parse trees live in the Lua heap, so a tree counts against
 * the memory cap (and the handler's budget) like the value built from it:
 * a text of a few MB can make a tree thirty times its size. Each block
 * starts with its size, which Lua's allocator needs to free it. */
struct lua_heap {
    lua_State *L;
    lua_Alloc f;
    void *ud;
    int refused;
};

static void *tree_alloc(void *ud, void *p, size_t n)
{
    struct lua_heap *h = ud;
    if (p) {
        size_t *b = (size_t *)p - 1;
        h->f(h->ud, b, *b + sizeof *b, 0);
        return NULL;
    }
    if (!n)
        return NULL;
    size_t *b = h->f(h->ud, NULL, 0, n + sizeof *b);
    if (!b && !h->refused) {
        /* As Lua does before it gives up: collect, and ask once more. */
        lua_gc(h->L, LUA_GCCOLLECT);
        b = h->f(h->ud, NULL, 0, n + sizeof *b);
    }
    if (!b) {
        h->refused = 1;
        return NULL;
    }
    *b = n;
    return b + 1;
}

/* Runs cJSON on L's heap (see above) until heap_end, even while the
 * request's arena is open. */
static void heap_begin(lua_State *L, struct lua_heap *h, int *arena, void **fn, void **ud)
{
    h->L = L;
    h->f = lua_getallocf(L, &h->ud);
    h->refused = 0;
    *arena = arena_suspend();
    arena_redirect(tree_alloc, h, fn, ud);
}

static void heap_end(int arena, void *fn, void *ud)
{
    arena_redirect((void *(*)(void *, void *, size_t))fn, ud, NULL, NULL);
    arena_resume(arena);
}

/* Frees a tree json.decode parsed. */
static void free_heap_tree(lua_State *L, cJSON *root)
{
    struct lua_heap h;
    int arena;
    void *fn, *ud;
    heap_begin(L, &h, &arena, &fn, &ud);
    cJSON_Delete(root);
    heap_end(arena, fn, ud);
}

/* json.decode(text) -> value | nil, message */
static int l_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    /* The tree must be freed even if building the value raises (the Lua
     * heap is capped), so a userdata owns it until then. The box is made
     * before the tree: making it can fail too, and the tree would leak. */
    cJSON **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tree_box_key);
    lua_setmetatable(L, -2);
    const char *end = NULL;
    /* This tree may outlive the request's arena (its box is collected
     * later if building the value raises), so it comes from the Lua heap. */
    struct lua_heap h;
    int arena;
    void *fn, *ud;
    heap_begin(L, &h, &arena, &fn, &ud);
    cJSON *root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    heap_end(arena, fn, ud);
    if (h.refused) {
        if (root)
            free_heap_tree(L, root);
        lua_pushnil(L);
        lua_pushliteral(L, "not enough memory for the JSON text's tree");
        return 2;
    }
    if (root) {
        for (const char *p = end; p < s + n; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                free_heap_tree(L, root);
                lua_pushnil(L);
                lua_pushfstring(L, "data after the JSON value at byte %d", (int)(p - s) + 1);
                return 2;
            }
        }
    }
    if (!root) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON near byte %d", end && end >= s ? (int)(end - s) + 1 : 1);
        return 2;
    }
    *box = root;
    bind_json_push_tree(L, root, s, n);
    free_heap_tree(L, root);
    *box = NULL;
    return 1;
}

int bind_json_encode_output(lua_State *L, int idx, struct buf *out, char *err, size_t errlen)
{
    int rc = 0;
    if (buf_adds(out, "{\"output\":") < 0)
        goto full;
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
        if (buf_adds(out, "\"\"") < 0)
            goto full;
        break;
    case LUA_TSTRING:
        if (buf_adds(out, "{\"text\":") < 0)
            goto full;
        rc = bind_json_encode(L, idx, out, "output.text", err, errlen);
        if (rc == 0 && buf_addc(out, '}') < 0)
            goto full;
        break;
    case LUA_TTABLE:
        rc = bind_json_encode(L, idx, out, "output", err, errlen);
        break;
    default:
        snprintf(err, errlen, "a reply must be a table (a message), a string or nothing, not a %s",
                 luaL_typename(L, idx));
        return BIND_JSON_BAD;
    }
    if (rc == BIND_JSON_FULL || (rc == 0 && buf_addc(out, '}') < 0))
        goto full;
    return rc;
full:
    snprintf(err, errlen, "reply is longer than the limit of %zu bytes", out->max);
    return BIND_JSON_FULL;
}

/* Marks t (or a new table) with the metatable at upvalue 1. */
static int mark(lua_State *L, const char *what)
{
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
        if (lua_getmetatable(L, 1)) {
            int ours = lua_rawequal(L, -1, lua_upvalueindex(1)) ||
                       lua_rawequal(L, -1, lua_upvalueindex(2));
            lua_pop(L, 1);
            if (!ours)
                return luaL_error(L, "json.%s: the table already has a metatable", what);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    return 1;
}

static int l_array(lua_State *L)
{
    return mark(L, "array");
}

static int l_object(lua_State *L)
{
    return mark(L, "object");
}

static int tree_box_gc(lua_State *L)
{
    cJSON **box = lua_touserdata(L, 1);
    if (box && *box) {
        free_heap_tree(L, *box);
        *box = NULL;
    }
    return 0;
}

static int buf_box_gc(lua_State *L)
{
    struct buf *b = lua_touserdata(L, 1);
    if (b)
        buf_free(b);
    return 0;
}

static int null_tostring(lua_State *L)
{
    lua_pushliteral(L, "json.null");
    return 1;
}

int bind_json_open(lua_State *L)
{
    luaL_checkstack(L, 6, NULL);
    lua_newtable(L);
    lua_pushliteral(L, "json.array");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0); /* shared by every script: out of their reach */
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    lua_newtable(L);
    lua_pushliteral(L, "json.object");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0); /* shared by every script: out of their reach */
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    lua_newuserdatauv(L, 0, 0);
    lua_newtable(L);
    lua_pushcfunction(L, null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "json.null");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &null_key);
    lua_newtable(L);
    lua_pushcfunction(L, tree_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tree_box_key);
    lua_newtable(L);
    lua_pushcfunction(L, buf_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &buf_box_key);

    lua_createtable(L, 0, 5);
    lua_pushcfunction(L, l_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, l_decode);
    lua_setfield(L, -2, "decode");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    lua_pushcclosure(L, l_array, 2);
    lua_setfield(L, -2, "array");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    lua_pushcclosure(L, l_object, 2);
    lua_setfield(L, -2, "object");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
    lua_setfield(L, -2, "null");
    return 1;
}
