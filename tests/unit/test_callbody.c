/* Unit tests for callbody: the bodies `cliqhost invoke` builds are the ones
 * the host dispatches (every handler decodes to its own script key, with
 * the response_url the host expects), and --param paths set what they say
 * or refuse with a reason. */
#include "check.h"
#include "cliq/callbody.h"
#include "cliq/request.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static struct callbody_input input(void)
{
    static const struct callbody_pair values[] = {{"reason", "holiday"}};
    struct callbody_input in = {0};
    in.name = "probe";
    in.text = "some text";
    in.action = "help";
    in.values = values;
    in.nvalues = 1;
    in.response_url = "http://127.0.0.1:1/r";
    in.now_ms = 1700000000123LL;
    return in;
}

static void test_every_handler_decodes_to_its_own_key(void)
{
    size_t n;
    const struct callbody_handler *hs = callbody_handlers(&n);
    CHECK_INT(n, 25); /* docs/cliq-formats.md §2 */
    for (size_t i = 0; i < n; i++) {
        struct callbody_input in = input();
        int per_component = 0;
        request_type_path(hs[i].type, &per_component);
        if (!per_component)
            in.name = NULL;
        char err[256] = "";
        cJSON *body = callbody_build(&hs[i], &in, err, sizeof err);
        CHECK(body != NULL);
        if (!body) {
            fprintf(stderr, "  %s %s: %s\n", hs[i].type, hs[i].key, err);
            continue;
        }
        char *text = cJSON_PrintUnformatted(body);
        cJSON *json = NULL;
        struct request_dispatch d;
        CHECK_INT(request_decode(text, strlen(text), &json, &d, err, sizeof err), 0);
        CHECK_STR(d.type, hs[i].type);
        CHECK_STR(d.key, hs[i].key);
        CHECK_STR(d.wire, hs[i].wire);
        /* The host and invoke agree on which handlers have a response_url. */
        CHECK(d.entry != NULL);
        if (d.entry)
            CHECK_INT(d.entry->response_url, hs[i].response_url);
        CHECK_INT(cJSON_HasObjectItem(body, "response_url"), hs[i].response_url);
        const cJSON *params = cJSON_GetObjectItem(body, "params");
        CHECK(cJSON_HasObjectItem(params, "environment"));
        CHECK(cJSON_HasObjectItem(params, "access"));
        CHECK_INT(cJSON_GetObjectItem(body, "timestamp")->valuedouble, 1700000000123LL);
        cJSON_Delete(json);
        cJSON_free(text);
        cJSON_Delete(body);
    }
}

static void test_find_and_defaults(void)
{
    CHECK_STR(callbody_find("bot", "message")->wire, "message_handler");
    CHECK_STR(callbody_find("bot", "message_handler")->key, "message");
    CHECK_STR(callbody_find("extension", "installation_validator")->wire, "installation_validator");
    CHECK(callbody_find("messageaction", "execution") != callbody_find("command", "execution"));
    CHECK(callbody_find("bot", "execution") == NULL);
    CHECK_STR(callbody_default("command")->key, "execution");
    CHECK_STR(callbody_default("link_preview")->key, "unfurl");
    CHECK(callbody_default("bot") == NULL);
    CHECK(callbody_default("function") == NULL);
}

static char *set(const char *start, const char *path, const char *value, int *rc)
{
    cJSON *root = cJSON_Parse(start);
    char err[256] = "";
    *rc = callbody_set_path(root, path, value, err, sizeof err);
    char *out = *rc == 0 ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (*rc != 0)
        return strdup(err);
    char *copy = strdup(out);
    cJSON_free(out);
    return copy;
}

static void test_param_paths(void)
{
    static const struct {
        const char *start, *path, *value, *want;
        int rc;
    } cases[] = {
        {"{\"user\":{\"a\":1,\"b\":2}}", "user.a", "x", "{\"user\":{\"a\":\"x\",\"b\":2}}", 0},
        {"{}", "a.b.c", "true", "{\"a\":{\"b\":{\"c\":true}}}", 0},
        {"{}", "n", "42", "{\"n\":42}", 0},
        {"{}", "s", "\"42\"", "{\"s\":\"42\"}", 0},
        {"{}", "id", "123456789012345678", "{\"id\":\"123456789012345678\"}", 0},
        {"{}", "o", "{\"k\":[1]}", "{\"o\":{\"k\":[1]}}", 0},
        {"{}", "t", "not json", "{\"t\":\"not json\"}", 0},
        {"{\"l\":[1,2]}", "l.1", "9", "{\"l\":[1,9]}", 0},
        {"{\"l\":[1,2]}", "l.2", "3", "{\"l\":[1,2,3]}", 0},
        {"{\"l\":[{}]}", "l.0.x", "y", "{\"l\":[{\"x\":\"y\"}]}", 0},
        {"{\"l\":[1,2]}", "l.5", "3", "'5' is not an index of a list of 2", -1},
        {"{\"s\":\"str\"}", "s.x", "1", "'s' is not an object or a list", -1},
        {"{}", "a..b", "1", "empty name", -1},
        {"{}", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", "1", "deeper than 16", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char *got = set(cases[i].start, cases[i].path, cases[i].value, &rc);
        CHECK_INT(rc, cases[i].rc);
        if (cases[i].rc == 0)
            CHECK_STR(got, cases[i].want);
        else
            CHECK_HAS(got, cases[i].want);
        free(got);
    }
}

static void test_missing_inputs_are_named(void)
{
    struct callbody_input in = input();
    in.action = NULL;
    char err[256] = "";
    CHECK(callbody_build(callbody_find("bot", "action"), &in, err, sizeof err) == NULL);
    CHECK_HAS(err, "--action NAME");
    in.nvalues = 0;
    CHECK(callbody_build(callbody_find("function", "form_change"), &in, err, sizeof err) == NULL);
    CHECK_HAS(err, "--value NAME=VALUE");
    in.text = NULL;
    CHECK(callbody_build(callbody_find("bot", "context"), &in, err, sizeof err) == NULL);
    CHECK_HAS(err, "context id");
}

int main(void)
{
    RUN(test_every_handler_decodes_to_its_own_key);
    RUN(test_find_and_defaults);
    RUN(test_param_paths);
    RUN(test_missing_inputs_are_named);
    return CHECK_DONE();
}
