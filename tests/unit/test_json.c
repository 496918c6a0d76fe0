/* Unit tests for bind_json: JSON -> Lua -> JSON keeps shapes, text, numbers
 * and escapes; values JSON cannot carry fail with their path. */
#include "check.h"
#include "core/buf.h"
#include "script/bind_json.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

static lua_State *L;

/* Parses text with cJSON and pushes its Lua value. */
static void push_decoded(const char *text)
{
    cJSON *root = cJSON_ParseWithLength(text, strlen(text));
    CHECK(root != NULL);
    bind_json_push_tree(L, root, text, strlen(text));
    cJSON_Delete(root);
}

/* Encodes the value on top (and pops it). Returns static text, or NULL
 * with the error in last_err. */
static char last_err[512];
static const char *encode_top(void)
{
    static char out[8192];
    struct buf b;
    buf_init(&b, sizeof out - 1);
    int rc = bind_json_encode(L, -1, &b, "value", last_err, sizeof last_err);
    lua_pop(L, 1);
    if (rc < 0) {
        buf_free(&b);
        return NULL;
    }
    snprintf(out, sizeof out, "%s", b.data ? b.data : "");
    buf_free(&b);
    return out;
}

static const char *roundtrip(const char *text)
{
    push_decoded(text);
    return encode_top();
}

/* Runs a Lua chunk with `json` as a global; fails the check on error. */
static void lua_ok(const char *chunk)
{
    if (luaL_dostring(L, chunk) != LUA_OK) {
        check_failures++;
        fprintf(stderr, "lua error: %s\n  in: %s\n", lua_tostring(L, -1), chunk);
        lua_pop(L, 1);
    }
    check_count++;
}

static void test_shapes_survive(void)
{
    /* Single keys per object, so the text comes back byte for byte. */
    static const char *const same[] = {
        "[]",
        "{}",
        "[[]]",
        "{\"a\":{}}",
        "{\"a\":[]}",
        "[{},[],{\"b\":[{}]}]",
        "{\"options\":{}}",
        "[1,null,3]",
        "{\"k\":null}",
        "[true,false]",
        "\"\"",
        "{\"\":\"empty key\"}",
        "{\"1\":\"a numeric string key\"}",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        CHECK_STR(roundtrip(same[i]), same[i]);
}

static void test_objects_with_many_keys(void)
{
    const char *text = "{\"mentions\":[],\"options\":{},\"selections\":[],\"arguments\":\"\","
                       "\"n\":3,\"nested\":{\"x\":[1,{\"y\":{}}]}}";
    const char *back = roundtrip(text);
    cJSON *a = cJSON_Parse(text), *b = cJSON_Parse(back);
    CHECK(b != NULL);
    CHECK(cJSON_Compare(a, b, 1));
    /* cJSON_Compare treats [] and {} alike, so check the shapes directly. */
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(b, "mentions")));
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(b, "options")));
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_unicode_and_escapes(void)
{
    CHECK_STR(roundtrip("\"caf\\u00e9 \\ud83d\\ude00\""), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    CHECK_STR(roundtrip("\"caf\xc3\xa9\""), "\"caf\xc3\xa9\"");
    CHECK_STR(roundtrip("\"\\\"q\\\" \\\\ \\/ \\n\\r\\t\\b\\f\""),
              "\"\\\"q\\\" \\\\ / \\n\\r\\t\\b\\f\"");
    CHECK_STR(roundtrip("\"\\u0001\\u001f\""), "\"\\u0001\\u001f\"");
    CHECK_STR(roundtrip("{\"k\\u00e9y\\n\":1}"), "{\"k\xc3\xa9y\\n\":1}");
    /* Decoded text is the UTF-8 bytes. */
    push_decoded("\"\\u20ac\"");
    CHECK_STR(lua_tostring(L, -1), "\xe2\x82\xac");
    lua_pop(L, 1);
}

static void test_numbers(void)
{
    /* Integers stay integers, exactly, even past 2^53. */
    static const char *const ints[] = {"0",
                                       "-1",
                                       "42",
                                       "1569520690703",
                                       "9007199254740993",
                                       "9223372036854775807",
                                       "-9223372036854775808"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        push_decoded(ints[i]);
        CHECK(lua_isinteger(L, -1));
        CHECK_STR(encode_top(), ints[i]);
    }
    push_decoded("9007199254740993");
    CHECK_INT(lua_tointeger(L, -1), 9007199254740993LL);
    lua_pop(L, 1);
    push_decoded("[12345678901234567,1]");
    lua_rawgeti(L, -1, 1);
    CHECK_INT(lua_tointeger(L, -1), 12345678901234567LL);
    lua_pop(L, 2);

    /* Floats stay floats. */
    static const char *const floats[][2] = {
        {"1.5", "1.5"}, {"1.0", "1.0"},      {"-0.25", "-0.25"},           {"1e3", "1000.0"},
        {"0.1", "0.1"}, {"1e300", "1e+300"}, {"12.8282472", "12.8282472"}, {"2.5e-5", "2.5e-05"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        push_decoded(floats[i][0]);
        CHECK(!lua_isinteger(L, -1));
        CHECK_STR(encode_top(), floats[i][1]);
    }
    /* Past 64 bits: a float, as close as a double gets. */
    push_decoded("18446744073709551616");
    CHECK(!lua_isinteger(L, -1));
    CHECK(lua_tonumber(L, -1) == 18446744073709551616.0);
    lua_pop(L, 1);

    /* Numbers inside strings do not confuse the number scan. */
    push_decoded("{\"s\":\"12 \\\" 34 -5e3\",\"n\":9007199254740993,\"t\":[\"7\",8.5,9]}");
    lua_getfield(L, -1, "n");
    CHECK_INT(lua_tointeger(L, -1), 9007199254740993LL);
    lua_pop(L, 1);
    lua_getfield(L, -1, "t");
    lua_rawgeti(L, -1, 2);
    CHECK(lua_tonumber(L, -1) == 8.5 && !lua_isinteger(L, -1));
    lua_rawgeti(L, -2, 3);
    CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 9);
    lua_pop(L, 4);

    /* Lua numbers out. */
    lua_pushinteger(L, INT64_MIN);
    CHECK_STR(encode_top(), "-9223372036854775808");
    lua_pushnumber(L, 3.0);
    CHECK_STR(encode_top(), "3.0");
    lua_pushnumber(L, 1.0 / 3.0);
    CHECK_STR(encode_top(), "0.3333333333333333");
    lua_pushnumber(L, 0.0 / 0.0);
    CHECK(encode_top() == NULL);
    CHECK_HAS(last_err, "NaN");
    lua_pushnumber(L, 1.0 / 0.0);
    CHECK(encode_top() == NULL);
    CHECK_HAS(last_err, "infinity");
}

static void test_nesting(void)
{
    /* Deep but legal. */
    char deep[1024];
    size_t n = 0;
    for (int i = 0; i < 150; i++)
        deep[n++] = '[';
    for (int i = 0; i < 150; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    CHECK_STR(roundtrip(deep), deep);
}

static void test_lua_tables_out(void)
{
    lua_ok("assert(json.encode({}) == '{}')");
    lua_ok("assert(json.encode(json.array()) == '[]')");
    lua_ok("assert(json.encode(json.array{}) == '[]')");
    lua_ok("assert(json.encode(json.object{}) == '{}')");
    lua_ok("assert(json.encode({1, 'two', true}) == '[1,\"two\",true]')");
    lua_ok("assert(json.encode({a = 1}) == '{\"a\":1}')");
    lua_ok("assert(json.encode(json.object{[200] = 'ok'}) == '{\"200\":\"ok\"}')");
    lua_ok("assert(json.encode({json.null, 2}) == '[null,2]')");
    lua_ok("assert(json.encode('x') == '\"x\"' and json.encode(7) == '7')");
    lua_ok("assert(tostring(json.null) == 'json.null')");
    /* Decoding gives marks that survive changes by the script. */
    lua_ok("local t = json.decode('[]'); t[1] = 'x'; assert(json.encode(t) == '[\"x\"]')");
    lua_ok("local t = json.decode('{}'); assert(json.encode(t) == '{}')");
    lua_ok("local v, err = json.decode('{nope'); assert(v == nil and err:find('invalid JSON'))");
    lua_ok("local v, err = json.decode('[] x'); assert(v == nil and err:find('after'))");
    lua_ok("assert(json.decode('null') == json.null)");
    lua_ok("local t = setmetatable({}, {}); assert(not pcall(json.array, t))");
}

static void test_what_json_cannot_carry(void)
{
    static const struct {
        const char *lua, *path, *why;
    } bad[] = {
        {"return {a = {1, print}}", "value.a[2]", "cannot encode a function"},
        {"return {buttons = {{label = 'x', action = coroutine.create(print)}}}",
         "value.buttons[1].action", "cannot encode a thread"},
        {"return {1, nil, 3}", "value", "holes"},
        {"return {1, 2, x = 3}", "value", "mixes"},
        {"return {[1.5] = 'x'}", "value", "mixes"},
        {"return {text = 'caf\\xe9'}", "value.text", "not valid UTF-8"},
        {"return {text = '\\xed\\xa0\\x80'}", "value.text", "not valid UTF-8"},
        {"return {text = '\\xc0\\xaf'}", "value.text", "not valid UTF-8"},
        {"local t = {}; t.self = t; return t", "value.self.self", "nested too deeply"},
        {"local t = json.array{1, 2}; t.x = 1; return t", "value", "other than 1..n"},
        {"return {n = 0/0}", "value.n", "NaN"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (luaL_dostring(L, bad[i].lua) != LUA_OK) {
            fprintf(stderr, "setup: %s\n", lua_tostring(L, -1));
            lua_pop(L, 1);
            check_failures++;
            continue;
        }
        CHECK(encode_top() == NULL);
        CHECK_HAS(last_err, bad[i].path);
        CHECK_HAS(last_err, bad[i].why);
    }
    /* json.encode raises with the same message. */
    lua_ok("local ok, err = pcall(json.encode, {f = print}); "
           "assert(not ok and err:find('value.f: cannot encode a function', 1, true))");
}

static void test_output_cap(void)
{
    lua_pushstring(L, "0123456789");
    struct buf b;
    buf_init(&b, 8);
    char err[256];
    CHECK_INT(bind_json_encode(L, -1, &b, "output", err, sizeof err), BIND_JSON_FULL);
    CHECK_HAS(err, "longer than 8 bytes");
    buf_free(&b);
    lua_pop(L, 1);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    bind_json_open(L);
    lua_setglobal(L, "json");
    RUN(test_shapes_survive);
    RUN(test_objects_with_many_keys);
    RUN(test_unicode_and_escapes);
    RUN(test_numbers);
    RUN(test_nesting);
    RUN(test_lua_tables_out);
    RUN(test_what_json_cannot_carry);
    RUN(test_output_cap);
    CHECK_INT(lua_gettop(L), 0);
    lua_close(L);
    return CHECK_DONE();
}
