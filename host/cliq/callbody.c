/* callbody: Cliq's request bodies for every handler (see callbody.h). */
#include "cliq/callbody.h"

#include "core/mem.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The common params objects (callbody_handler.common). environment and
 * access are in every body. */
#define USER     0x1u
#define CHAT     0x2u
#define LOCATION 0x4u

/* Cliq's sample user, organisation and channel (docs/cliq-formats.md
 * §2.1), used where the command line does not say. */
#define ORG_ID                "123456456"
#define SAMPLE_UID            "123456"
#define SAMPLE_ZUID           "130720038"
#define SAMPLE_FIRST          "Scott"
#define SAMPLE_LAST           "Fisher"
#define SAMPLE_EMAIL          "scott.fisher@zylcal.com"
#define SAMPLE_CHAT           "CT_2243226337559778047_661211447-B2"
#define SAMPLE_TITLE          "Catalyst"
#define SAMPLE_CHANNEL_UNIQUE "sample"
#define SAMPLE_MESSAGE        "ship the release notes today"
#define USER_AGENT                                                                                 \
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "     \
    "Safari/537.36"

#define PATH_DEPTH_MAX 16

/* One call as the builders see it: the command line's inputs, and the user
 * and chat they describe, with Cliq's samples filling the gaps. */
struct callbody_ctx {
    const struct callbody_input *in;
    const char *user_id, *zoho_user_id, *email;
    char *first, *last; /* owned */
    const char *chat_id, *chat_title, *channel_unique_name;
    long long now;
};

/* ---- values ------------------------------------------------------------ */

/* A --arg or --value: a JSON object or array is taken as is (a select's
 * {"label","value"}, a checkbox's list), anything else as a string, as
 * Cliq sends text inputs. Caller owns the result. */
static cJSON *loose_value(const char *s)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '{' || *p == '[') {
        cJSON *v = cJSON_ParseWithOpts(s, NULL, 1);
        if (v)
            return v;
    }
    return cJSON_CreateString(s);
}

/* Integers of more digits than a double holds exactly stay strings (ids). */
static int exact_number(const char *s)
{
    size_t digits = 0;
    for (const char *p = s; *p; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (*p != '-' && *p != '+' && !isspace((unsigned char)*p))
            return 1; /* a fraction or exponent: a float either way */
    }
    return digits <= 15;
}

/* A --param value: JSON when it is valid JSON, else a string. Caller owns
 * the result. */
static cJSON *json_or_string(const char *s)
{
    cJSON *v = cJSON_ParseWithOpts(s, NULL, 1);
    if (v && cJSON_IsNumber(v) && !exact_number(s)) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v ? v : cJSON_CreateString(s);
}

static cJSON *pairs_object(const struct callbody_pair *pairs, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, pairs[i].key); /* the last one wins */
        cJSON_AddItemToObject(o, pairs[i].key, loose_value(pairs[i].value));
    }
    return o;
}

static const char *text_or(const struct callbody_ctx *cx, const char *dflt)
{
    return cx->in->text ? cx->in->text : dflt;
}

/* ---- the common objects ------------------------------------------------ */

static cJSON *environment(void)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "tld", ".com");
    cJSON_AddStringToObject(e, "data_center", "US");
    cJSON_AddStringToObject(e, "base_url", "https://cliq.zoho.com/company/" ORG_ID);
    return e;
}

static cJSON *access_object(const struct callbody_ctx *cx)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "user_id", cx->zoho_user_id);
    cJSON_AddStringToObject(a, "zoho_user_id", cx->zoho_user_id);
    cJSON *org = cJSON_AddObjectToObject(a, "organization");
    cJSON_AddStringToObject(org, "type", "company");
    cJSON_AddStringToObject(org, "id", ORG_ID);
    cJSON_AddStringToObject(a, "user_agent", USER_AGENT);
    cJSON_AddStringToObject(a, "chat_id", cx->chat_id);
    return a;
}

static cJSON *user_object(const struct callbody_ctx *cx)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "id", cx->user_id);
    cJSON_AddStringToObject(u, "first_name", cx->first);
    cJSON_AddStringToObject(u, "last_name", cx->last);
    cJSON_AddStringToObject(u, "email", cx->email);
    cJSON_AddTrueToObject(u, "admin");
    cJSON_AddStringToObject(u, "organization_id", ORG_ID);
    cJSON_AddStringToObject(u, "timezone", "Asia/Calcutta");
    cJSON_AddStringToObject(u, "country", "us");
    cJSON_AddStringToObject(u, "language", "en");
    cJSON_AddStringToObject(u, "zoho_user_id", cx->zoho_user_id);
    return u;
}

static cJSON *chat_object(const struct callbody_ctx *cx)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "owner", cx->user_id);
    cJSON_AddStringToObject(c, "id", cx->chat_id);
    cJSON_AddStringToObject(c, "type", "channel");
    cJSON_AddStringToObject(c, "title", cx->chat_title);
    cJSON_AddStringToObject(c, "channel_unique_name", cx->channel_unique_name);
    cJSON *members = cJSON_AddArrayToObject(c, "members");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", cx->user_id);
    cJSON_AddStringToObject(m, "first_name", cx->first);
    cJSON_AddStringToObject(m, "last_name", cx->last);
    cJSON_AddStringToObject(m, "email", cx->email);
    cJSON_AddStringToObject(m, "status", "0");
    cJSON_AddItemToArray(members, m);
    cJSON_AddArrayToObject(c, "recent_messages");
    return c;
}

static cJSON *location_object(void)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddNumberToObject(l, "latitude", 12.8282472);
    cJSON_AddNumberToObject(l, "longitude", 80.0511901);
    cJSON_AddNumberToObject(l, "accuracy", 30);
    cJSON_AddStringToObject(l, "status", "granted");
    return l;
}

/* A message in a chat, as message actions, mentions and buttons get it:
 * sent by the user a minute ago. */
static cJSON *message_object(const struct callbody_ctx *cx, const char *text)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *sender = cJSON_AddObjectToObject(m, "sender");
    cJSON_AddStringToObject(sender, "id", cx->user_id);
    char name[512];
    snprintf(name, sizeof name, "%s%s%s", cx->first, cx->last[0] ? " " : "", cx->last);
    cJSON_AddStringToObject(sender, "name", name);
    cJSON_AddNumberToObject(m, "time", (double)(cx->now - 60000));
    cJSON_AddStringToObject(m, "text", text);
    cJSON_AddStringToObject(m, "type", "text");
    return m;
}

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".png", "image/png"},  {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},  {".pdf", "application/pdf"},   {".txt", "text/plain"},
        {".csv", "text/csv"},   {".json", "application/json"}, {".zip", "application/zip"},
        {".log", "text/plain"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* params.attachments: one {name, comment, id, url, contenttype} per
 * --attachment, named after the URL's last path segment. */
static cJSON *attachments(const struct callbody_ctx *cx)
{
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < cx->in->nattachments; i++) {
        const char *url = cx->in->attachments[i];
        const char *end = url + strcspn(url, "?#");
        const char *start = end;
        while (start > url && start[-1] != '/')
            start--;
        char name[256];
        if (end > start && !(start > url + 1 && start[-2] == '/' && start[-1] == '/'))
            snprintf(name, sizeof name, "%.*s", (int)(end - start), start);
        else
            snprintf(name, sizeof name, "attachment-%zu", i + 1);
        char id[64];
        snprintf(id, sizeof id, "%lld%03zu", cx->now, i + 1);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "name", name);
        cJSON_AddStringToObject(a, "comment", "");
        cJSON_AddStringToObject(a, "id", id);
        cJSON_AddStringToObject(a, "url", url);
        cJSON_AddStringToObject(a, "contenttype", content_type(name));
        cJSON_AddItemToArray(list, a);
    }
    return list;
}

/* ---- the handlers' own params ------------------------------------------ */
/* Each builder adds what Cliq sends for its handler (docs/cliq-formats.md
 * §2, from Zoho's samples) after the common objects. */

static int build_welcome(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)cx, (void)err, (void)errlen;
    cJSON_AddTrueToObject(p, "newuser");
    return 0;
}

static int build_message(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const char *text = text_or(cx, "Hi");
    cJSON *details = cJSON_AddObjectToObject(p, "message_details");
    cJSON *m = cJSON_AddObjectToObject(details, "message");
    cJSON_AddArrayToObject(m, "mentions");
    cJSON_AddStringToObject(m, "type", cx->in->nattachments ? "file" : "text");
    cJSON_AddStringToObject(m, "text", text);
    cJSON_AddNumberToObject(details, "time", (double)cx->now);
    cJSON_AddItemToObject(p, "attachments", attachments(cx));
    cJSON_AddArrayToObject(p, "mentions");
    cJSON_AddArrayToObject(p, "links");
    cJSON_AddStringToObject(p, "message", text);
    cJSON_AddStringToObject(p, "raw_message", text);
    cJSON_AddObjectToObject(p, "options");
    cJSON_AddArrayToObject(p, "selections");
    cJSON_AddStringToObject(p, "arguments", "");
    return 0;
}

/* TEXT is the context id the bot's reply started; each --value NAME=TEXT
 * an answer, as params.answers.NAME.text. */
static int build_context(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    if (!cx->in->text) {
        snprintf(err, errlen,
                 "bot context needs TEXT: the context id the bot's reply started, and "
                 "--value NAME=ANSWER for each answer");
        return -1;
    }
    cJSON_AddStringToObject(p, "context_id", cx->in->text);
    cJSON *answers = cJSON_AddObjectToObject(p, "answers");
    for (size_t i = 0; i < cx->in->nvalues; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(answers, cx->in->values[i].key);
        cJSON *a = cJSON_AddObjectToObject(answers, cx->in->values[i].key);
        cJSON_AddStringToObject(a, "text", cx->in->values[i].value);
    }
    cJSON_AddItemToObject(p, "attachments", attachments(cx));
    cJSON_AddArrayToObject(p, "mentions");
    cJSON_AddObjectToObject(p, "options");
    cJSON_AddArrayToObject(p, "selections");
    cJSON_AddStringToObject(p, "arguments", "");
    return 0;
}

static int build_mention(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    char text[256];
    snprintf(text, sizeof text, "@%.100s can you help?", cx->in->name);
    cJSON_AddItemToObject(p, "message", message_object(cx, text_or(cx, text)));
    cJSON *mentions = cJSON_AddArrayToObject(p, "mentions");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", cx->in->name);
    cJSON_AddStringToObject(m, "id", cx->in->name);
    cJSON_AddStringToObject(m, "type", "bot");
    cJSON_AddItemToArray(mentions, m);
    return 0;
}

/* The menu item is handler.name in the body (set by callbody_build). */
static int build_action(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)p;
    if (!cx->in->action) {
        snprintf(err, errlen, "bot action needs --action NAME: the menu item the user picked");
        return -1;
    }
    return 0;
}

static int build_incomingwebhook(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON *h = cJSON_AddObjectToObject(p, "headers");
    cJSON_AddStringToObject(h, "content-type", "application/json");
    cJSON_AddStringToObject(h, "user-agent", "curl/7.88.1");
    cJSON_AddItemToObject(p, "params", pairs_object(cx->in->args, cx->in->nargs));
    cJSON_AddStringToObject(p, "body", text_or(cx, "{}"));
    cJSON_AddStringToObject(p, "http_method", "POST");
    return 0;
}

static int build_participation(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const char *op = text_or(cx, "added");
    cJSON_AddStringToObject(p, "operation", op);
    cJSON *data = cJSON_AddObjectToObject(p, "data");
    if (strncmp(op, "message_", 8) == 0)
        cJSON_AddItemToObject(data, "message", message_object(cx, SAMPLE_MESSAGE));
    cJSON_AddNumberToObject(data, "time", (double)cx->now);
    return 0;
}

static int build_alert(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddStringToObject(p, "operation", text_or(cx, "missed"));
    cJSON *data = cJSON_AddObjectToObject(p, "data");
    char id[64];
    snprintf(id, sizeof id, "call_%lld", cx->now);
    cJSON_AddStringToObject(data, "call_id", id);
    cJSON_AddNumberToObject(data, "time", (double)cx->now);
    return 0;
}

static int build_execution(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddStringToObject(p, "arguments", text_or(cx, ""));
    cJSON_AddObjectToObject(p, "options");
    cJSON_AddArrayToObject(p, "selections");
    cJSON_AddArrayToObject(p, "mentions");
    cJSON_AddItemToObject(p, "attachments", attachments(cx));
    return 0;
}

static int build_suggestion(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddStringToObject(p, "arguments", text_or(cx, ""));
    cJSON_AddObjectToObject(p, "options");
    cJSON_AddArrayToObject(p, "selections");
    cJSON_AddArrayToObject(p, "mentions");
    return 0;
}

static int build_messageaction(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON *m = message_object(cx, text_or(cx, SAMPLE_MESSAGE));
    cJSON *messages = cJSON_CreateObject();
    cJSON_AddNumberToObject(messages, "count", 1);
    cJSON *list = cJSON_AddArrayToObject(messages, "list");
    cJSON_AddItemToArray(list, cJSON_Duplicate(m, 1));
    cJSON_AddItemToObject(p, "message", m);
    cJSON_AddItemToObject(p, "messages", messages);
    cJSON_AddItemToObject(p, "attachments", attachments(cx));
    cJSON_AddArrayToObject(p, "mentions");
    return 0;
}

/* TEXT is the clicked button's label; --arg KEY=VALUE its arguments (the
 * button's key arrives as arguments.key). */
static int build_button(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON *t = cJSON_AddObjectToObject(p, "target");
    cJSON_AddStringToObject(t, "name", text_or(cx, "Button"));
    cJSON_AddStringToObject(t, "hint", "");
    cJSON_AddStringToObject(p, "event", "click");
    cJSON_AddItemToObject(p, "arguments", pairs_object(cx->in->args, cx->in->nargs));
    cJSON_AddItemToObject(p, "message", message_object(cx, SAMPLE_MESSAGE));
    return 0;
}

/* A form's params.form: its name (TEXT, else the function's name), the
 * action, and the first `nvalues` values given with --value. */
static cJSON *form_object(const struct callbody_ctx *cx, const char *action, size_t nvalues)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "name", text_or(cx, cx->in->name));
    cJSON_AddStringToObject(f, "action", action);
    cJSON_AddItemToObject(f, "values", pairs_object(cx->in->values, nvalues));
    return f;
}

static int build_form(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddItemToObject(p, "form", form_object(cx, "submit", cx->in->nvalues));
    cJSON_AddItemToObject(p, "message", message_object(cx, SAMPLE_MESSAGE));
    return 0;
}

/* The last --value is the field that changed (it is in the values too, as
 * in Cliq's sample). */
static int build_form_change(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    size_t n = cx->in->nvalues;
    if (n == 0) {
        snprintf(err, errlen,
                 "function form_change needs --value NAME=VALUE: the last one is the field "
                 "that changed");
        return -1;
    }
    cJSON_AddItemToObject(p, "form", form_object(cx, "change", n));
    cJSON *t = cJSON_AddObjectToObject(p, "target");
    cJSON_AddStringToObject(t, "name", cx->in->values[n - 1].key);
    cJSON_AddItemToObject(t, "value", loose_value(cx->in->values[n - 1].value));
    return 0;
}

/* The last --value is the dynamic select being typed in and what was typed
 * (target.query); the others are the form's values so far. */
static int build_form_values(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    size_t n = cx->in->nvalues;
    if (n == 0) {
        snprintf(err, errlen,
                 "function form_values needs --value NAME=QUERY: the last one is the field "
                 "being typed in and what was typed");
        return -1;
    }
    cJSON_AddItemToObject(p, "form", form_object(cx, "input", n - 1));
    cJSON *t = cJSON_AddObjectToObject(p, "target");
    cJSON_AddStringToObject(t, "name", cx->in->values[n - 1].key);
    cJSON_AddStringToObject(t, "query", cx->in->values[n - 1].value);
    return 0;
}

static int build_form_view(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddItemToObject(p, "params", pairs_object(cx->in->args, cx->in->nargs));
    return 0;
}

static int build_applet_button(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const char *id = text_or(cx, "button");
    cJSON *t = cJSON_AddObjectToObject(p, "target");
    cJSON_AddStringToObject(t, "id", id);
    cJSON_AddStringToObject(t, "label", id);
    cJSON_AddStringToObject(t, "section_id", "1");
    cJSON_AddStringToObject(t, "tab_id", "tab1");
    return 0;
}

static int build_view(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddStringToObject(p, "event", text_or(cx, "load"));
    cJSON *t = cJSON_AddObjectToObject(p, "target");
    cJSON_AddStringToObject(t, "id", "tab1");
    return 0;
}

static cJSON *app_info(const char *type)
{
    cJSON *a = cJSON_CreateObject();
    if (strcmp(type, "uninstall") != 0)
        cJSON_AddStringToObject(a, "current_version", "1.0");
    if (strcmp(type, "upgrade") == 0)
        cJSON_AddStringToObject(a, "existing_version", "0.9");
    cJSON_AddStringToObject(a, "type", type);
    return a;
}

static int build_installation(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddItemToObject(p, "app_info", app_info(text_or(cx, "install")));
    cJSON_AddObjectToObject(p, "form");
    cJSON_AddStringToObject(p, "authtoken", "1000.cliqhost-invoke.not-a-real-token");
    return 0;
}

static int build_installation_validator(cJSON *p, const struct callbody_ctx *cx, char *err,
                                        size_t errlen)
{
    (void)err, (void)errlen;
    cJSON_AddItemToObject(p, "app_info", app_info(text_or(cx, "install")));
    return 0;
}

static int build_uninstallation(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)cx, (void)err, (void)errlen;
    cJSON_AddItemToObject(p, "app_info", app_info("uninstall"));
    return 0;
}

/* TEXT is the link; its host is params.domain. */
static void add_link(cJSON *p, const struct callbody_ctx *cx)
{
    const char *url = text_or(cx, "https://www.zoho.com/cliq/");
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t n = strcspn(host, "/?#:");
    const char *at = memchr(host, '@', n); /* user@host */
    if (at) {
        n -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    char domain[256];
    snprintf(domain, sizeof domain, "%.*s", (int)(n < 255 ? n : 255), host);
    cJSON_AddStringToObject(p, "url", url);
    cJSON_AddStringToObject(p, "domain", domain);
}

static int build_unfurl(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    add_link(p, cx);
    return 0;
}

static int build_unfurl_button(cJSON *p, const struct callbody_ctx *cx, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    add_link(p, cx);
    cJSON *t = cJSON_AddObjectToObject(p, "target");
    cJSON_AddStringToObject(t, "label", "Open");
    cJSON_AddItemToObject(t, "params", pairs_object(cx->in->args, cx->in->nargs));
    cJSON_AddStringToObject(t, "hint", "");
    return 0;
}

/* ---- the table --------------------------------------------------------- */

#define T  CALLBODY_TAKES_TEXT
#define AR CALLBODY_TAKES_ARG
#define V  CALLBODY_TAKES_VALUE
#define AC CALLBODY_TAKES_ACTION
#define AT CALLBODY_TAKES_ATTACHMENT

/* docs/cliq-formats.md §2, in DESIGN.md's order of types; the common
 * objects per §1's permissions. */
static const struct callbody_handler handlers[] = {
    {"command", "execution", "execution_handler", 1, USER | CHAT | LOCATION, T | AT,
     "TEXT the arguments; --attachment", build_execution},
    {"command", "suggestion", "suggestion_handler", 1, USER | CHAT | LOCATION, T,
     "TEXT the arguments typed so far", build_suggestion},
    {"bot", "welcome", "welcome_handler", 1, USER, 0, "no TEXT", build_welcome},
    {"bot", "message", "message_handler", 1, USER | CHAT | LOCATION, T | AT,
     "TEXT the message (default Hi); --attachment", build_message},
    {"bot", "context", "context_handler", 1, USER | CHAT, T | V | AT,
     "TEXT the context id; --value NAME=ANSWER per answer; --attachment", build_context},
    {"bot", "mention", "mention_handler", 1, USER | CHAT | LOCATION, T,
     "TEXT the message that mentions the bot", build_mention},
    {"bot", "action", "action_handler", 1, USER | CHAT | LOCATION, AC,
     "--action NAME: the menu item picked (no TEXT)", build_action},
    {"bot", "incomingwebhook", "incomingwebhook_handler", 1, USER, T | AR,
     "TEXT the raw body posted (default {}); --arg KEY=VALUE its query", build_incomingwebhook},
    {"bot", "participation", "participation_handler", 1, USER | CHAT, T,
     "TEXT the operation (default added; removed, message_sent, ...)", build_participation},
    {"bot", "alert", "alert_handler", 0, USER, T,
     "TEXT the operation (default missed; ringing, answered, ended, ...)", build_alert},
    {"messageaction", "execution", "execution_handler", 1, USER | CHAT | LOCATION, T | AT,
     "TEXT the message acted on; --attachment", build_messageaction},
    {"function", "button", "button_handler", 1, USER | CHAT, T | AR,
     "TEXT the button's label (default Button); --arg KEY=VALUE its arguments", build_button},
    {"function", "form", "form_handler", 1, USER | CHAT, T | V,
     "TEXT the form's name (default NAME); --value NAME=VALUE per field", build_form},
    {"function", "form_change", "form_change_handler", 0, USER | CHAT, T | V,
     "TEXT the form's name; --value per field, the last one the field that changed",
     build_form_change},
    {"function", "form_values", "form_values_handler", 0, USER | CHAT, T | V,
     "TEXT the form's name; --value per field, the last NAME=QUERY the field typed in",
     build_form_values},
    {"function", "form_view", "form_view_handler", 0, USER, AR,
     "--arg KEY=VALUE its permalink's params (no TEXT)", build_form_view},
    {"function", "applet_button", "applet_button_handler", 0, USER, T,
     "TEXT the widget button's id (default button)", build_applet_button},
    {"widget", "view", "view_handler", 0, USER | CHAT, T,
     "TEXT the event (default load; refresh, tab_click)", build_view},
    {"extension", "installation", "installation_handler", 0, USER, T,
     "TEXT install (default) or upgrade", build_installation},
    {"extension", "installation_validator", "installation_validator", 0, USER, T,
     "TEXT install (default) or upgrade", build_installation_validator},
    {"extension", "uninstallation", "uninstallation_handler", 0, USER, 0, "no TEXT",
     build_uninstallation},
    {"link_preview", "unfurl", "unfurl_handler", 0, CHAT, T,
     "TEXT the link (default https://www.zoho.com/cliq/)", build_unfurl},
    {"link_preview", "unfurl_button_action", "unfurl_button_action_handler", 0, CHAT, T | AR,
     "TEXT the link; --arg KEY=VALUE the button's params", build_unfurl_button},
    {"link_preview", "unfurl_dynamic_action", "unfurl_dynamic_action_handler", 0, CHAT, T,
     "TEXT the link", build_unfurl},
    {"link_preview", "unfurl_post_message", "unfurl_post_message_handler", 0, CHAT, T,
     "TEXT the link", build_unfurl},
};

#undef T
#undef AR
#undef V
#undef AC
#undef AT

#define NHANDLERS (sizeof handlers / sizeof handlers[0])

const struct callbody_handler *callbody_handlers(size_t *n)
{
    *n = NHANDLERS;
    return handlers;
}

const struct callbody_handler *callbody_find(const char *type, const char *word)
{
    for (size_t i = 0; i < NHANDLERS; i++)
        if (strcmp(handlers[i].type, type) == 0 &&
            (strcmp(handlers[i].key, word) == 0 || strcmp(handlers[i].wire, word) == 0))
            return &handlers[i];
    return NULL;
}

const struct callbody_handler *callbody_default(const char *type)
{
    static const char *const defaults[][2] = {
        {"command", "execution"},
        {"messageaction", "execution"},
        {"widget", "view"},
        {"link_preview", "unfurl"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (strcmp(defaults[i][0], type) == 0)
            return callbody_find(type, defaults[i][1]);
    return NULL;
}

/* ---- --param ----------------------------------------------------------- */

/* Parses a whole decimal index; -1 if `s` is not one. */
static long path_index(const char *s)
{
    if (!*s || strlen(s) > 6)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return strtol(s, NULL, 10);
}

int callbody_set_path(cJSON *root, const char *path, const char *value, char *err, size_t errlen)
{
    char *copy = xstrdup(path);
    char *seg[PATH_DEPTH_MAX];
    int nseg = 0, rc = -1;
    for (char *s = copy;; nseg++) {
        if (nseg == PATH_DEPTH_MAX) {
            snprintf(err, errlen, "--param %s: deeper than %d levels", path, PATH_DEPTH_MAX);
            goto done;
        }
        seg[nseg] = s;
        char *dot = strchr(s, '.');
        if (dot)
            *dot = '\0';
        if (!*s) {
            snprintf(err, errlen, "--param %s: empty name in the path", path);
            goto done;
        }
        if (!dot) {
            nseg++;
            break;
        }
        s = dot + 1;
    }
    cJSON *at = root;
    for (int i = 0; i < nseg; i++) {
        int last = i == nseg - 1;
        cJSON *child;
        if (cJSON_IsArray(at)) {
            long idx = path_index(seg[i]);
            long len = (long)cJSON_GetArraySize(at);
            if (idx < 0 || idx > len) {
                snprintf(err, errlen, "--param %s: '%s' is not an index of a list of %ld", path,
                         seg[i], len);
                goto done;
            }
            if (last) {
                cJSON *v = json_or_string(value);
                if (idx == len)
                    cJSON_AddItemToArray(at, v);
                else
                    cJSON_ReplaceItemInArray(at, (int)idx, v);
                break;
            }
            child = idx < len ? cJSON_GetArrayItem(at, (int)idx) : NULL;
            if (!child) {
                child = cJSON_CreateObject();
                cJSON_AddItemToArray(at, child);
            }
        } else if (cJSON_IsObject(at)) {
            if (last) {
                cJSON *v = json_or_string(value);
                if (cJSON_GetObjectItemCaseSensitive(at, seg[i]))
                    cJSON_ReplaceItemInObjectCaseSensitive(at, seg[i], v); /* in its place */
                else
                    cJSON_AddItemToObject(at, seg[i], v);
                break;
            }
            child = cJSON_GetObjectItemCaseSensitive(at, seg[i]);
            if (!child)
                child = cJSON_AddObjectToObject(at, seg[i]);
        } else {
            snprintf(err, errlen, "--param %s: '%s' is not an object or a list", path,
                     i ? seg[i - 1] : "params");
            goto done;
        }
        at = child;
    }
    rc = 0;
done:
    free(copy);
    return rc;
}

/* ---- the body ---------------------------------------------------------- */

/* Fills the user and chat the call comes from. Returns 0, or -1 if a
 * value is unusable. */
static int ctx_init(struct callbody_ctx *cx, const struct callbody_input *in, char *err,
                    size_t errlen)
{
    memset(cx, 0, sizeof *cx);
    cx->in = in;
    cx->now = in->now_ms;
    cx->user_id = in->user_id ? in->user_id : SAMPLE_UID;
    cx->zoho_user_id = in->user_id ? in->user_id : SAMPLE_ZUID;
    cx->email = in->user_email ? in->user_email : SAMPLE_EMAIL;
    if (in->user_name) {
        const char *sp = strchr(in->user_name, ' ');
        cx->first =
            sp ? xstrndup(in->user_name, (size_t)(sp - in->user_name)) : xstrdup(in->user_name);
        cx->last = xstrdup(sp ? sp + 1 : "");
    } else {
        cx->first = xstrdup(SAMPLE_FIRST);
        cx->last = xstrdup(SAMPLE_LAST);
    }
    cx->chat_id = in->chat_id ? in->chat_id : SAMPLE_CHAT;
    cx->chat_title = in->channel ? in->channel : SAMPLE_TITLE;
    cx->channel_unique_name = in->channel ? in->channel : SAMPLE_CHANNEL_UNIQUE;
    const char *checked[] = {in->name,      in->text,       in->action,  in->user_id,
                             in->user_name, in->user_email, in->chat_id, in->channel};
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
        if (checked[i] && strlen(checked[i]) > CALLBODY_TEXT_MAX) {
            snprintf(err, errlen, "a value is longer than %d bytes", CALLBODY_TEXT_MAX);
            return -1;
        }
    }
    return 0;
}

cJSON *callbody_build(const struct callbody_handler *h, const struct callbody_input *in, char *err,
                      size_t errlen)
{
    struct callbody_ctx cx;
    cJSON *body = NULL;
    if (ctx_init(&cx, in, err, errlen) < 0)
        goto cleanup;
    body = cJSON_CreateObject();
    if (in->name) {
        cJSON_AddStringToObject(body, "name", in->name);
        if (strcmp(h->type, "bot") == 0)
            cJSON_AddStringToObject(body, "unique_name", in->name);
    }
    cJSON *handler = cJSON_AddObjectToObject(body, "handler");
    cJSON_AddStringToObject(handler, "type", h->wire);
    if ((h->takes & CALLBODY_TAKES_ACTION) && in->action) {
        cJSON_AddStringToObject(handler, "name", in->action);
        cJSON_AddStringToObject(body, "sub_action", "");
    }
    if (h->response_url && in->response_url)
        cJSON_AddStringToObject(body, "response_url", in->response_url);
    cJSON_AddStringToObject(body, "type", h->type);
    cJSON_AddNumberToObject(body, "timestamp", (double)in->now_ms);

    cJSON *params = cJSON_AddObjectToObject(body, "params");
    cJSON_AddItemToObject(params, "environment", environment());
    cJSON_AddItemToObject(params, "access", access_object(&cx));
    if (h->common & USER)
        cJSON_AddItemToObject(params, "user", user_object(&cx));
    if (h->common & CHAT)
        cJSON_AddItemToObject(params, "chat", chat_object(&cx));
    if (h->common & LOCATION)
        cJSON_AddItemToObject(params, "location", location_object());
    if (h->build(params, &cx, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < in->nparams; i++)
        if (callbody_set_path(params, in->params[i].key, in->params[i].value, err, errlen) < 0)
            goto fail;
    goto cleanup;
fail:
    cJSON_Delete(body);
    body = NULL;
cleanup:
    free(cx.first);
    free(cx.last);
    return body;
}
