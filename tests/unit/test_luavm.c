/* Unit tests for luavm: the request object, replies, failures as the chat
 * user sees them, the sandbox allow-list, require, caching and check. The
 * scripts are written into a temporary folder. */
#include "check.h"
#include "cliq/request.h"
#include "script/luavm.h"
#include "script/reload.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>

static char root[] = "/tmp/cliqhost-test-luavm-XXXXXX";
static char scripts[600], lualib[600];

static void put(const char *base, const char *rel, const char *text)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    /* Make the parent folders. */
    for (char *p = path + strlen(base) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static struct luavm *vm;

/* Runs body through decode and the vm. Returns the reply body (static) or
 * NULL for a non-200 status; res is kept for inspection. */
static struct luavm_result res;
static const char *run(const char *body)
{
    static char out[65536];
    struct request_dispatch d;
    cJSON *json;
    char err[256];
    free(res.body);
    memset(&res, 0, sizeof res);
    if (request_decode(body, strlen(body), &json, &d, err, sizeof err) < 0) {
        fprintf(stderr, "decode: %s\n", err);
        return NULL;
    }
    luavm_run(vm, &d, json, body, strlen(body), "req-1", &res);
    cJSON_Delete(json);
    if (res.status != 200)
        return NULL;
    snprintf(out, sizeof out, "%.*s", (int)res.len, res.body);
    return out;
}

static const char *command(const char *name, const char *handler, const char *params)
{
    static char body[4096];
    snprintf(body, sizeof body,
             "{\"type\":\"command\",\"name\":\"%s\",\"handler\":{\"type\":\"%s\"},"
             "\"response_url\":\"https://cliq.zoho.com/v2/extensions/1/responses/2\","
             "\"timestamp\":1569520690703,\"params\":%s}",
             name, handler, params);
    return run(body);
}

static void write_scripts(void)
{
    /* log.info with an argument whose __tostring raises: the raise must
     * not leak the message being built (found by fuzzing's review; the
     * ASan pass reports the leak at exit). */
    put(scripts, "commands/logerr.lua",
        "return {\n"
        "  execution = function(req)\n"
        "    local bad = setmetatable({ f = print }, { __tostring = function() error('no') end })\n"
        "    local fails = 0\n"
        "    for i = 1, 50 do\n"
        "      if not pcall(log.info, 'x', bad) then fails = fails + 1 end\n"
        "    end\n"
        "    return tostring(fails)\n"
        "  end,\n"
        "}\n");
    put(scripts, "commands/echo.lua",
        "return {\n"
        "  execution = function(req)\n"
        "    return { text = req.params.arguments, type = req.type, name = req.name,\n"
        "             handler = req.handler, id = req.id, url = req.response_url,\n"
        "             ts = req.timestamp, same = req.body.params == req.params }\n"
        "  end,\n"
        "  suggestion = function(req) return { { title = 'a' }, { title = 'b' } } end,\n"
        "}\n");
    put(scripts, "commands/shapes.lua",
        "return {\n"
        "  execution = function(req)\n"
        "    local a = req.params.arguments\n"
        "    if a == 'string' then return 'plain text' end\n"
        "    if a == 'nothing' then return end\n"
        "    if a == 'number' then return 42 end\n"
        "    if a == 'function' then return { text = 'x', f = print } end\n"
        "    if a == 'raise' then error('boom') end\n"
        "    if a == 'raise-table' then error({ code = 7 }) end\n"
        "    if a == 'nil-index' then local t = nil; return t.x end\n"
        "    if a == 'yield' then coroutine.yield() end\n"
        "    if a == 'big' then return { text = string.rep('x', 5000) } end\n"
        "    if a == 'inner-coroutine' then\n"
        "      local co = coroutine.wrap(function() coroutine.yield(1); return 2 end)\n"
        "      return { text = tostring(co() + co()) }\n"
        "    end\n"
        "  end,\n"
        "}\n");
    put(scripts, "commands/sandbox.lua",
        "local checks = {\n"
        "  { 'io', io == nil }, { 'package.loadlib', package.loadlib == nil },\n"
        "  { 'package.cpath', package.cpath == nil },\n"
        "  { 'package read-only', not pcall(function() package.path = '/?' end) },\n"
        "  { 'os.execute', os.execute == nil }, { 'os.exit', os.exit == nil },\n"
        "  { 'os.remove', os.remove == nil }, { 'os.rename', os.rename == nil },\n"
        "  { 'os.tmpname', os.tmpname == nil }, { 'os.time', type(os.time()) == 'number' },\n"
        "  { 'os.date', type(os.date('!%Y')) == 'string' },\n"
        "  { 'dofile', dofile == nil }, { 'loadfile', loadfile == nil },\n"
        "  { 'string.dump', string.dump == nil }, { 'method dump', ('').dump == nil },\n"
        "  { 'debug.getinfo', debug.getinfo == nil }, { 'debug.sethook', debug.sethook == nil },\n"
        "  { 'debug.traceback', type(debug.traceback) == 'function' },\n"
        "  { 'string metatable hidden', getmetatable('') == false },\n"
        "  { 'env metatable hidden', getmetatable(_ENV) == false },\n"
        "  { 'getenv listed', os.getenv('CLIQHOST_TEST_ALLOWED') == 'yes' },\n"
        "  { 'getenv unlisted', os.getenv('CLIQHOST_TEST_SECRET') == nil },\n"
        "  { 'getenv HOME', os.getenv('HOME') == nil },\n"
        "  { 'load binary', select(2, load('return 1', 'x', 'b')) ~= nil },\n"
        "  { 'load bytecode', (function() local f = load('\\27Lua') return f == nil end)() },\n"
        "  { 'load text', load('return 1 + 1')() == 2 },\n"
        "  { 'load env', load('x = 5; return x')() == 5 and x == nil },\n"
        "  { 'load no io', load('return io')() == nil },\n"
        "  { 'collectgarbage count', type(collectgarbage('count')) == 'number' },\n"
        "  { 'collectgarbage stop', not pcall(collectgarbage, 'stop') },\n"
        "  { 'require lib', require('util').double(21) == 42 },\n"
        "  { 'require nested', require('deep.mod').name == 'deep.mod' },\n"
        "  { 'require lualib', require('shipped').from == 'lualib' },\n"
        "  { 'scripts/lib wins', require('both').from == 'scripts/lib' },\n"
        "  { 'require once', require('util') == require('util') },\n"
        "  { 'require os', require('os') == os and require('os').execute == nil },\n"
        "  { 'require io', not pcall(require, 'io') },\n"
        "  { 'require escape', not pcall(require, '../commands/echo') },\n"
        "  { 'require slash', not pcall(require, 'a/b') },\n"
        "  { 'require missing', not pcall(require, 'nope') },\n"
        "  { 'json', json.encode(json.decode('[]')) == '[]' },\n"
        "}\n"
        "leaked_global = 'from sandbox.lua'\n"
        "return {\n"
        "  execution = function(req)\n"
        "    local failed = {}\n"
        "    for _, c in ipairs(checks) do if not c[2] then failed[#failed + 1] = c[1] end end\n"
        "    if #failed > 0 then error('sandbox checks failed: ' .. table.concat(failed, ', ')) "
        "end\n"
        "    return 'ok'\n"
        "  end,\n"
        "}\n");
    put(scripts, "commands/other.lua",
        "local loads = 0\n"
        "loads = loads + 1\n"
        "return { execution = function(req)\n"
        "  return { leaked = leaked_global == nil, loads = loads }\n"
        "end }\n");
    put(scripts, "commands/broken.lua", "return {\n  execution = function(req)\n    x = = 1\n");
    put(scripts, "commands/notable.lua", "return 'hello'\n");
    put(scripts, "commands/badvalue.lua", "return { execution = 'not a function' }\n");
    put(scripts, "commands/toplevel.lua", "local x = nil\nreturn x.y\n");
    put(scripts, "commands/typo.lua", "return { exection = function() end }\n");
    put(scripts, "lib/util.lua", "return { double = function(n) return n * 2 end }\n");
    put(scripts, "lib/deep/mod.lua", "local name = ...\nreturn { name = name }\n");
    put(scripts, "lib/both.lua", "return { from = 'scripts/lib' }\n");
    put(lualib, "shipped.lua", "return { from = 'lualib' }\n");
    put(lualib, "both.lua", "return { from = 'lualib' }\n");
    put(scripts, "functions/approve.lua",
        "return { button = function() error('nope') end, form = function() error('x') end }\n");
    put(scripts, "extension.lua", "return { installation = function() error('nope') end }\n");
}

static void test_request_object(void)
{
    const char *r = command("echo", "execution_handler", "{\"arguments\":\"prod\"}");
    CHECK(r != NULL);
    cJSON *j = cJSON_Parse(r);
    cJSON *o = cJSON_GetObjectItem(j, "output");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "text")), "prod");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "type")), "command");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "name")), "echo");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "handler")), "execution");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")), "req-1");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "url")),
              "https://cliq.zoho.com/v2/extensions/1/responses/2");
    CHECK(cJSON_GetObjectItem(o, "ts")->valuedouble == 1569520690703.0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "same")));
    cJSON_Delete(j);
    /* A bare array reply (suggestions). */
    CHECK_STR(command("echo", "suggestion_handler", "{}"),
              "{\"output\":[{\"title\":\"a\"},{\"title\":\"b\"}]}");
}

static void test_reply_shapes(void)
{
    CHECK_STR(command("shapes", "execution_handler", "{\"arguments\":\"string\"}"),
              "{\"output\":{\"text\":\"plain text\"}}");
    CHECK_STR(command("shapes", "execution_handler", "{\"arguments\":\"nothing\"}"),
              "{\"output\":\"\"}");
    CHECK_STR(command("shapes", "execution_handler", "{\"arguments\":\"inner-coroutine\"}"),
              "{\"output\":{\"text\":\"3\"}}");
}

static void test_failures_reach_the_user(void)
{
    static const struct {
        const char *arg, *why;
    } cases[] = {
        {"number", "returned a number"},
        {"function", "output.f: cannot encode a function"},
        {"raise", "commands/shapes.lua:8: boom"},
        {"raise-table", "table"},
        {"nil-index", "attempt to index a nil value"},
        {"yield", "yielded outside a host call"},
        {"big", "longer than max_reply_bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char params[128];
        snprintf(params, sizeof params, "{\"arguments\":\"%s\"}", cases[i].arg);
        const char *r = command("shapes", "execution_handler", params);
        CHECK(r != NULL);
        CHECK(res.failed);
        CHECK_HAS(res.error, cases[i].why);
        /* The user sees a short message with the request id. */
        CHECK_STR(r, "{\"output\":{\"text\":\"Failed (req-1).\"}}");
    }
    /* A failure does not stick: the next call works. */
    CHECK_STR(command("shapes", "execution_handler", "{\"arguments\":\"string\"}"),
              "{\"output\":{\"text\":\"plain text\"}}");
    CHECK(!res.failed);
}

static void test_failure_reply_fits_the_handler(void)
{
    const char *r = run("{\"type\":\"function\",\"name\":\"approve\","
                        "\"handler\":{\"type\":\"button_handler\"},\"params\":{}}");
    cJSON *j = cJSON_Parse(r);
    cJSON *o = cJSON_GetObjectItem(j, "output");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "type")), "banner");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")), "failure");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "text")), "Failed (req-1).");
    cJSON_Delete(j);
    r = run("{\"type\":\"extension\",\"handler\":{\"type\":\"installation_handler\"}}");
    CHECK_HAS(r, "\"status\":500");
    CHECK_HAS(r, "\"message\":\"Failed (req-1).\"");
}

static void test_missing_script_and_handler(void)
{
    CHECK(command("nosuch", "execution_handler", "{}") == NULL);
    CHECK_INT(res.status, 404);
    CHECK_HAS(res.error, "looked for");
    CHECK_HAS(res.error, "/commands/nosuch.lua");
    CHECK(run("{\"type\":\"messageaction\",\"name\":\"echo\",\"handler\":\"execution_handler\"}") ==
          NULL);
    CHECK_HAS(res.error, "messageactions/echo.lua");
    CHECK(command("sandbox", "suggestion_handler", "{}") == NULL);
    CHECK_INT(res.status, 404);
    CHECK_HAS(res.error, "has no 'suggestion' handler (it has: execution)");
}

static void test_sandbox(void)
{
    CHECK_STR(command("sandbox", "execution_handler", "{}"), "{\"output\":{\"text\":\"ok\"}}");
    if (res.failed)
        fprintf(stderr, "  %s\n", res.error);
    /* Globals do not leak between scripts, and a script loads once. */
    command("sandbox", "execution_handler", "{}");
    for (int i = 0; i < 2; i++) {
        cJSON *j = cJSON_Parse(command("other", "execution_handler", "{}"));
        cJSON *o = cJSON_GetObjectItem(j, "output");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "leaked")));
        CHECK_INT(cJSON_GetObjectItem(o, "loads")->valueint, 1);
        cJSON_Delete(j);
    }
}

static void test_scripts_that_do_not_load(void)
{
    static const struct {
        const char *name, *why;
    } cases[] = {
        {"broken", "commands/broken.lua:3:"},
        {"notable", "must return a table of handler functions (returned string)"},
        {"badvalue", "handler 'execution' must be a function"},
        {"toplevel", "commands/toplevel.lua:2: attempt to index a nil value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *r = command(cases[i].name, "execution_handler", "{}");
        CHECK_STR(r, "{\"output\":{\"text\":\"Failed (req-1).\"}}");
        CHECK(res.failed);
        CHECK_HAS(res.error, cases[i].why);
    }
}

static void test_log_argument_that_raises(void)
{
    const char *r = command("logerr", "execution_handler", "{}");
    CHECK_STR(r, "{\"output\":{\"text\":\"50\"}}");
}

static void test_check_reports_each_problem(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int loaded = 0;
    struct scripts_hub *hub = scripts_hub_new();
    int problems = reload_scan(hub, vm_options(vm), 1, out, &loaded);
    scripts_hub_free(hub);
    fclose(out);
    CHECK_INT(problems, 5);
    CHECK_HAS(text, "/commands/broken.lua:3:");
    CHECK_HAS(text, "/commands/toplevel.lua:2:");
    CHECK_HAS(text, "/commands/typo.lua:1: unknown handler 'exection'");
    CHECK_HAS(text, "must return a table");
    CHECK_HAS(text, "must be a function");
    /* echo shapes sandbox other approve extension, and typo (which loads
     * but names a handler no command has) */
    CHECK_INT(loaded, 8);
    free(text);
}

int main(void)
{
    if (!mkdtemp(root))
        return 1;
    snprintf(scripts, sizeof scripts, "%s/scripts", root);
    snprintf(lualib, sizeof lualib, "%s/lualib", root);
    mkdir(scripts, 0755);
    mkdir(lualib, 0755);
    write_scripts();
    setenv("CLIQHOST_TEST_ALLOWED", "yes", 1);
    setenv("CLIQHOST_TEST_SECRET", "no", 1);
    char *env[] = {"CLIQHOST_TEST_ALLOWED", "CLIQHOST_TEST_SECRET_NOT"};
    struct luavm_options o = {
        .scripts_dir = scripts,
        .lualib_dir = lualib,
        .script_env = env,
        .nscript_env = 2,
        .max_script_bytes = 1 << 20,
        .max_reply_bytes = 4096,
        .error_reply = "Failed ({id}).",
    };
    char err[256];
    vm = luavm_new(&o, err, sizeof err);
    if (!vm) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    RUN(test_request_object);
    RUN(test_reply_shapes);
    RUN(test_failures_reach_the_user);
    RUN(test_failure_reply_fits_the_handler);
    RUN(test_missing_script_and_handler);
    RUN(test_sandbox);
    RUN(test_scripts_that_do_not_load);
    RUN(test_log_argument_that_raises);
    RUN(test_check_reports_each_problem);
    free(res.body);
    luavm_free(vm);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return CHECK_DONE();
}
