/* Unit tests for request: every (type, wire handler) of
 * docs/cliq-formats.md §2 maps to the script and key of DESIGN.md's
 * table, both body formats decode, and bad bodies are refused with a reason.
 * The expected mapping is written out here by hand, not read from the
 * catalogue under test. */
#include "check.h"
#include "cjson_same.h"
#include "cliq/request.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
    const char *type, *wire, *name, *script, *key;
} expected[] = {
    {"bot", "welcome_handler", "helper", "bots/helper.lua", "welcome"},
    {"bot", "message_handler", "helper", "bots/helper.lua", "message"},
    {"bot", "context_handler", "helper", "bots/helper.lua", "context"},
    {"bot", "mention_handler", "helper", "bots/helper.lua", "mention"},
    {"bot", "action_handler", "helper", "bots/helper.lua", "action"},
    {"bot", "incomingwebhook_handler", "helper", "bots/helper.lua", "incomingwebhook"},
    {"bot", "participation_handler", "helper", "bots/helper.lua", "participation"},
    {"bot", "alert_handler", "helper", "bots/helper.lua", "alert"},
    {"command", "execution_handler", "deploy", "commands/deploy.lua", "execution"},
    {"command", "suggestion_handler", "deploy", "commands/deploy.lua", "suggestion"},
    {"messageaction", "execution_handler", "stats", "messageactions/stats.lua", "execution"},
    {"function", "button_handler", "approve", "functions/approve.lua", "button"},
    {"function", "form_handler", "approve", "functions/approve.lua", "form"},
    {"function", "form_change_handler", "approve", "functions/approve.lua", "form_change"},
    {"function", "form_values_handler", "approve", "functions/approve.lua", "form_values"},
    {"function", "form_view_handler", "approve", "functions/approve.lua", "form_view"},
    {"function", "applet_button_handler", "approve", "functions/approve.lua", "applet_button"},
    {"widget", "view_handler", "board", "widgets/board.lua", "view"},
    {"extension", "installation_handler", NULL, "extension.lua", "installation"},
    {"extension", "installation_validator", NULL, "extension.lua", "installation_validator"},
    {"extension", "uninstallation_handler", NULL, "extension.lua", "uninstallation"},
    {"link_preview", "unfurl_handler", NULL, "link_preview.lua", "unfurl"},
    {"link_preview", "unfurl_button_action_handler", NULL, "link_preview.lua",
     "unfurl_button_action"},
    {"link_preview", "unfurl_dynamic_action_handler", NULL, "link_preview.lua",
     "unfurl_dynamic_action"},
    {"link_preview", "unfurl_post_message_handler", NULL, "link_preview.lua",
     "unfurl_post_message"},
    /* Other names the same handlers go by (v3 API, sample file names). */
    {"bot", "menu_handler", "helper", "bots/helper.lua", "action"},
    {"bot", "incoming_webhook_handler", "helper", "bots/helper.lua", "incomingwebhook"},
    {"bot", "call_handler", "helper", "bots/helper.lua", "alert"},
    {"function", "form_submit_handler", "approve", "functions/approve.lua", "form"},
    {"function", "form_dynamic_select_handler", "approve", "functions/approve.lua", "form_values"},
    {"function", "widget_button_handler", "approve", "functions/approve.lua", "applet_button"},
};

#define NEXPECTED (sizeof expected / sizeof expected[0])

static void test_every_catalogue_entry_maps(void)
{
    for (size_t i = 0; i < NEXPECTED; i++) {
        struct request_dispatch d;
        char err[256];
        int rc =
            request_map(expected[i].type, expected[i].wire, expected[i].name, &d, err, sizeof err);
        CHECK_INT(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "  %s/%s: %s\n", expected[i].type, expected[i].wire, err);
            continue;
        }
        CHECK_STR(d.script, expected[i].script);
        CHECK_STR(d.key, expected[i].key);
        CHECK(d.entry != NULL);
    }
    /* And the catalogue holds nothing this table does not expect, besides
     * the host's own tasks (test_tasks). */
    size_t n;
    const struct request_catalogue_entry *cat = request_catalogue(&n);
    CHECK_INT(n, NEXPECTED + 2);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(cat[i].type, "schedule") || !strcmp(cat[i].type, "hook"))
            continue;
        int found = 0;
        for (size_t j = 0; j < NEXPECTED; j++)
            if (!strcmp(cat[i].type, expected[j].type) && !strcmp(cat[i].wire, expected[j].wire))
                found = 1;
        CHECK(found);
    }
}

/* Schedules and hooks are the host's own tasks: no Cliq call can name
 * them, and their names are plain file names. */
static void test_tasks(void)
{
    struct request_dispatch d;
    char err[256];
    CHECK_INT(request_map("schedule", "run", "standup", &d, err, sizeof err), -1);
    CHECK(strstr(err, "unknown request type") != NULL);
    CHECK_INT(request_map("hook", "receive", "github", &d, err, sizeof err), -1);
    CHECK_INT(request_map_task("schedule", "standup", &d, err, sizeof err), 0);
    CHECK_STR(d.script, "schedules/standup.lua");
    CHECK_STR(d.key, "run");
    CHECK(d.type == request_type_schedule && request_is_task(d.type));
    CHECK(d.entry != NULL);
    CHECK_INT(request_map_task("hook", "alert-manager_2", &d, err, sizeof err), 0);
    CHECK_STR(d.script, "hooks/alert-manager_2.lua");
    CHECK_STR(d.key, "receive");
    CHECK(d.type == request_type_hook);
    static const char *const bad[] = {
        "",
        "../x",
        "a/b",
        "a b",
        ".x",
        "x.lua",
        "caf\xc3\xa9",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(request_map_task("hook", bad[i], &d, err, sizeof err), -1);
        CHECK(strstr(err, "not usable") != NULL);
    }
    CHECK_INT(request_map_task("command", "deploy", &d, err, sizeof err), -1);
    CHECK(strstr(err, "unknown task type") != NULL);
}

static void test_response_url_handlers(void)
{
    /* Zoho's page on webhook-based extensions (docs/cliq-formats.md §6) lists the handlers with a
     * response_url. */
    static const char *const with[][2] = {
        {"command", "execution_handler"}, {"messageaction", "execution_handler"},
        {"bot", "welcome_handler"},       {"bot", "message_handler"},
        {"bot", "context_handler"},       {"function", "button_handler"},
        {"function", "form_handler"},
    };
    for (size_t i = 0; i < sizeof with / sizeof with[0]; i++) {
        struct request_dispatch d;
        char err[256];
        CHECK_INT(request_map(with[i][0], with[i][1], "x", &d, err, sizeof err), 0);
        CHECK(d.entry && d.entry->response_url);
    }
    struct request_dispatch d;
    char err[256];
    CHECK_INT(request_map("widget", "view_handler", "x", &d, err, sizeof err), 0);
    CHECK(d.entry && !d.entry->response_url);
}

static void test_uncatalogued_handler_still_dispatches(void)
{
    struct request_dispatch d;
    char err[256];
    CHECK_INT(request_map("bot", "reaction_handler", "helper", &d, err, sizeof err), 0);
    CHECK_STR(d.key, "reaction");
    CHECK(d.entry == NULL);
    CHECK_INT(request_map("command", "preview", "deploy", &d, err, sizeof err), 0);
    CHECK_STR(d.key, "preview");
}

static void test_names_cannot_leave_the_folder(void)
{
    static const char *const bad[] = {"../etc/passwd", "a/b", ".hidden", "", "a\\b", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct request_dispatch d;
        char err[256];
        CHECK_INT(request_map("command", "execution_handler", bad[i], &d, err, sizeof err), -1);
    }
    struct request_dispatch d;
    char err[256];
    CHECK_INT(request_map("bot", "message_handler", "Sample Bot", &d, err, sizeof err), 0);
    CHECK_STR(d.script, "bots/Sample Bot.lua");
    char longname[200];
    memset(longname, 'a', 150);
    longname[150] = '\0';
    CHECK_INT(request_map("command", "execution_handler", longname, &d, err, sizeof err), -1);
    CHECK_INT(request_map("command", "Execution_Handler", "x", &d, err, sizeof err), -1);
    CHECK_INT(request_map("nonsense", "execution_handler", "x", &d, err, sizeof err), -1);
    CHECK_HAS(err, "unknown request type");
}

/* Decodes body and returns 0/-1, leaving the dispatch and error. */
static int decode(const char *body, struct request_dispatch *d, char *err, size_t errlen)
{
    cJSON *json = NULL;
    int rc = request_decode(body, strlen(body), &json, d, err, errlen);
    CHECK(rc == 0 ? json != NULL : json == NULL);
    cJSON_Delete(json);
    return rc;
}

static void test_body_formats(void)
{
    struct request_dispatch d;
    char err[256];
    /* Today's format. */
    CHECK_INT(decode("{\"type\":\"bot\",\"name\":\"Helper\",\"unique_name\":\"helper\","
                     "\"handler\":{\"type\":\"action_handler\",\"name\":\"Help\"},\"params\":{}}",
                     &d, err, sizeof err),
              0);
    CHECK_STR(d.script, "bots/helper.lua");
    CHECK_STR(d.key, "action");
    CHECK_STR(d.action, "Help");
    /* The 2019 format: handler is a string, the menu item in handler_name. */
    CHECK_INT(decode("{\"type\":\"bot\",\"name\":\"helper\",\"handler\":\"action_handler\","
                     "\"handler_name\":\"help\"}",
                     &d, err, sizeof err),
              0);
    CHECK_STR(d.script, "bots/helper.lua");
    CHECK_STR(d.key, "action");
    CHECK_STR(d.action, "help");
    /* Bots fall back to name when unique_name is absent or empty. */
    CHECK_INT(decode("{\"type\":\"bot\",\"name\":\"helper\",\"unique_name\":\"\","
                     "\"handler\":{\"type\":\"message_handler\"}}",
                     &d, err, sizeof err),
              0);
    CHECK_STR(d.script, "bots/helper.lua");
    /* Extension handlers have no component name. */
    CHECK_INT(decode("{\"type\":\"extension\",\"handler\":{\"type\":\"installation_handler\"}}", &d,
                     err, sizeof err),
              0);
    CHECK_STR(d.script, "extension.lua");
    /* Surrounding whitespace is fine. */
    CHECK_INT(
        decode(" \n{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\"}\r\n", &d,
               err, sizeof err),
        0);
}

/* An object larger than the pair-by-pair check still has its repeat found. */
static void test_a_repeat_among_many_keys(void)
{
    char body[2048];
    int n = snprintf(body, sizeof body,
                     "{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\","
                     "\"params\":{");
    for (int i = 0; i < 40; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "\"k%d\":%d,", i, i);
    snprintf(body + n, sizeof body - (size_t)n, "\"k7\":0}}");
    struct request_dispatch d;
    char err[256] = "";
    CHECK_INT(decode(body, &d, err, sizeof err), -1);
    CHECK_HAS(err, "duplicate key \"k7\"");
    body[n - 1] = '}'; /* without the repeat */
    body[n] = '}';
    body[n + 1] = '\0';
    CHECK_INT(decode(body, &d, err, sizeof err), 0);
}

/* The same key in different objects, or differing only in case, is fine. */
static void test_keys_repeated_across_objects(void)
{
    struct request_dispatch d;
    char err[256] = "";
    CHECK_INT(decode("{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\","
                     "\"params\":{\"name\":1,\"Name\":2,\"l\":[{\"name\":1},{\"name\":2}]}}",
                     &d, err, sizeof err),
              0);
}

static void test_bad_bodies(void)
{
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"", "not valid JSON"},
        {"not json", "not valid JSON"},
        {"{\"type\":\"command\"", "not valid JSON"},
        {"[1,2]", "must be a JSON object"},
        {"\"text\"", "must be a JSON object"},
        {"{}", "no \"type\""},
        {"{\"type\":1,\"handler\":\"x_handler\"}", "\"type\" must be"},
        {"{\"type\":\"command\",\"name\":\"x\"}", "no \"handler\""},
        {"{\"type\":\"command\",\"name\":\"x\",\"handler\":{}}", "\"handler\" must be"},
        {"{\"type\":\"command\",\"name\":\"x\",\"handler\":7}", "\"handler\" must be"},
        {"{\"type\":\"command\",\"handler\":\"execution_handler\"}", "needs a component name"},
        {"{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\"} x", "data after"},
        {"{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\",\"params\":[]}",
         "\"params\" must be an object"},
        {"{\"type\":\"robot\",\"name\":\"x\",\"handler\":\"execution_handler\"}",
         "unknown request type"},
        /* What is dispatched must be what the handler sees: Cliq never
         * repeats a key, so a body that does is refused, at any depth. */
        {"{\"type\":\"command\",\"name\":\"dup\",\"name\":\"x\",\"handler\":\"execution_handler\"}",
         "duplicate key \"name\""},
        {"{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\",\"params\":"
         "{\"user\":{\"id\":1,\"a\":2,\"id\":3}}}",
         "duplicate key \"id\""},
        {"{\"type\":\"command\",\"name\":\"x\",\"handler\":\"execution_handler\",\"params\":"
         "{\"l\":[{\"k\":1},{\"k\":1,\"k\":2}]}}",
         "duplicate key \"k\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct request_dispatch d;
        char err[256] = "";
        CHECK_INT(decode(bad[i].body, &d, err, sizeof err), -1);
        CHECK_HAS(err, bad[i].why);
    }
}

/* ---- request_parse against cJSON ----------------------------------------- */

static int parse_mismatches;

/* Parses text both ways and checks the answers are the same. */
static void same_parse(const char *text, size_t len)
{
    const char *end_a = NULL, *end_b = NULL;
    cJSON *a = request_parse(text, len, &end_a);
    cJSON *b = cJSON_ParseWithLengthOpts(text, len, &end_b, 0);
    int same = cjson_same(a, b) && (!a || end_a == end_b);
    if (!same && parse_mismatches++ < 5)
        fprintf(stderr, "request_parse differs from cJSON on (%zu bytes): %.*s\n", len,
                (int)(len > 300 ? 300 : len), text);
    CHECK(same);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static const char *const parse_seeds[] = {
    "{\"name\":\"bench\",\"handler\":{\"type\":\"execution_handler\"},\"response_url\":"
    "\"https://cliq.zoho.com/v2/extensions/2980/responses/1720\",\"type\":\"command\","
    "\"timestamp\":1796608725707,\"params\":{\"environment\":{\"tld\":\".com\",\"data_center\":"
    "\"US\"},\"access\":{\"user_id\":\"100000000\",\"organization\":{\"type\":\"company\",\"id\":"
    "\"123456456\"}},\"user\":{\"id\":\"100000000\",\"first_name\":\"User\",\"admin\":false,"
    "\"language\":\"en\"},\"location\":{\"latitude\":12.9716,\"longitude\":-77.5946,"
    "\"accuracy\":1e2,\"status\":\"granted\"},\"arguments\":\"api prod\",\"attachments\":[],"
    "\"options\":{},\"mentions\":[null,true,{\"a\":[1,2.5,-0,-0.0,0.1e-3]}]}}",
    "{\"s\":[\"\",\"caf\\u00e9\",\"\\ud83d\\ude00\",\"t\\tq\\\"b\\\\s\\/"
    "\",\"\\u0041\\u00DF\\u4e2d\","
    "\"cut\\u0000here\",\"\\b\\f\\n\\r\",\"raw \xc3\xa9\"],\"k\\u00e9y\":1,\"\":{},"
    "\"n\":[0,-1,9007199254740993,9223372036854775807,-9223372036854775808,"
    "9223372036854775808,123456789012345678901234567890,1.7976931348623157e308,5e-324,"
    "1E+2,2.5e-3,123456789012345,1234567890123456,-999999999999999],\"d\":[[[[[]]]]]}",
    " \t\r\n[1 , {\"a\" : null } ,\"x\" ]\n ",
    "\xEF\xBB\xBF{\"bom\":true}",
    /* cJSON skips a BOM only when two bytes or more follow it: a BOM and one
     * digit is not JSON to it (found by fuzz_json). */
    "\xEF\xBB\xBF"
    "7",
    "\xEF\xBB\xBF"
    "12",
    /* cJSON's leniencies: request_parse leaves them to cJSON. */
    "[01, -01, 1., .5, -.5, +1, 1e, 1e+, 0x10, 1.5.5, 1-2, --1]",
    "[\"\\uZZZZ\", \"\\x\", \"\\ud800\", \"\\udc00\", \"\\ud800\\u0041\", \"\\u12\"]",
    "{\"a\":1,}",
    "[1,]",
    "{\"a\" 1}",
    "[nul, tru, fals, nulll, truex]",
    "\x01\x02[\x1f"
    "1\x7f]",
    "{\"dup\":1,\"dup\":2}",
};

/* A small PRNG, so a failure can be run again. */
static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_parse_is_cjsons(void)
{
    static const char alphabet[] = "\"\\{}[],:0123456789.eE+-u tnfal \t\n\x01\x7f\xef\xc3/";
    char buf[2048];
    for (size_t i = 0; i < sizeof parse_seeds / sizeof parse_seeds[0]; i++) {
        const char *seed = parse_seeds[i];
        size_t n = strlen(seed);
        same_parse(seed, n);
        for (size_t cut = 0; cut < n; cut++)
            same_parse(seed, cut); /* every prefix */
        for (int round = 0; round < 4000; round++) {
            size_t len = n;
            memcpy(buf, seed, n);
            int edits = 1 + (int)(rng() % 3);
            for (int e = 0; e < edits && len > 0; e++) {
                size_t at = rng() % len;
                char c = alphabet[rng() % (sizeof alphabet - 1)];
                switch (rng() % 3) {
                case 0:
                    buf[at] = c;
                    break;
                case 1:
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                    break;
                default:
                    if (len + 1 < sizeof buf) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = c;
                        len++;
                    }
                    break;
                }
            }
            buf[len] = '\0';
            same_parse(buf, len);
        }
    }
    /* Nesting at and past cJSON's limit. */
    static char deep[2 * (CJSON_NESTING_LIMIT + 2) + 1];
    for (int depth = CJSON_NESTING_LIMIT - 1; depth <= CJSON_NESTING_LIMIT + 1; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        same_parse(deep, 2 * (size_t)depth);
    }
    /* Cliq's own sample body. */
    const char *dir = getenv("CLIQHOST_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/e2e/zoho_sample.json", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) {
        static char sample[1 << 16];
        size_t len = fread(sample, 1, sizeof sample - 1, f);
        fclose(f);
        sample[len] = '\0';
        same_parse(sample, len);
        cJSON *t = request_parse(sample, len, NULL);
        CHECK(t != NULL);
        cJSON_Delete(t);
    }
}

/* The marks request_parse leaves on numbers say what each token was. */
static void test_number_marks(void)
{
    static const struct {
        const char *token;
        int mark;
    } cases[] = {
        {"0", REQUEST_NUMBER_INTEGER},
        {"-0", REQUEST_NUMBER_INTEGER},
        {"42", REQUEST_NUMBER_INTEGER},
        {"-999999999999999", REQUEST_NUMBER_INTEGER}, /* 15 digits */
        {"1720282390061", REQUEST_NUMBER_INTEGER},    /* a timestamp */
        {"1000000000000000", 0},                      /* 16 digits: read again */
        {"-9223372036854775808", 0},
        {"123456789012345678901234567890", 0},
        {"1.0", REQUEST_NUMBER_FLOAT},
        {"-0.0", REQUEST_NUMBER_FLOAT},
        {"1e3", REQUEST_NUMBER_FLOAT},
        {"1E2", REQUEST_NUMBER_FLOAT},
        {"2.5e-3", REQUEST_NUMBER_FLOAT},
        {"12.8282472", REQUEST_NUMBER_FLOAT},
    };
    const int marks = REQUEST_NUMBER_INTEGER | REQUEST_NUMBER_FLOAT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[64];
        int n = snprintf(text, sizeof text, "[%s]", cases[i].token);
        cJSON *t = request_parse(text, (size_t)n, NULL);
        CHECK(t != NULL && t->child && cJSON_IsNumber(t->child));
        if (t && t->child && (t->child->type & marks) != cases[i].mark) {
            fprintf(stderr, "number %s: mark %d, expected %d\n", cases[i].token,
                    t->child->type & marks, cases[i].mark);
            CHECK(0);
        }
        cJSON_Delete(t);
    }
    /* cJSON's own numbers (what request_parse leaves to it) have none. */
    cJSON *t = request_parse("[1, 01]", 7, NULL); /* 01: not JSON, but cJSON's */
    CHECK(t && t->child && t->child->next);
    if (t && t->child && t->child->next)
        CHECK((t->child->type & marks) == 0 && (t->child->next->type & marks) == 0);
    cJSON_Delete(t);
    t = request_parse("[1.5, 2]\n", 9, NULL);
    CHECK(t && (t->child->type & marks) == REQUEST_NUMBER_FLOAT);
    cJSON_Delete(t);
}

int main(void)
{
    RUN(test_every_catalogue_entry_maps);
    RUN(test_tasks);
    RUN(test_response_url_handlers);
    RUN(test_uncatalogued_handler_still_dispatches);
    RUN(test_names_cannot_leave_the_folder);
    RUN(test_body_formats);
    RUN(test_bad_bodies);
    RUN(test_keys_repeated_across_objects);
    RUN(test_a_repeat_among_many_keys);
    RUN(test_parse_is_cjsons);
    RUN(test_number_marks);
    return CHECK_DONE();
}
