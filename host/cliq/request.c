/* request: decode a Cliq call and map it to a script and handler (see request.h). */
#include "cliq/request.h"

#include "core/buf.h"
#include "core/jsonw.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* docs/cliq-formats.md §2.3, `response_url` per that table (from Zoho's
 * page on webhook-based extensions). */
static const struct request_catalogue_entry catalogue[] = {
    {"bot", "welcome_handler", "welcome", 1, ERROR_REPLY_TEXT},
    {"bot", "message_handler", "message", 1, ERROR_REPLY_TEXT},
    {"bot", "context_handler", "context", 1, ERROR_REPLY_TEXT},
    {"bot", "mention_handler", "mention", 1, ERROR_REPLY_TEXT},
    {"bot", "action_handler", "action", 1, ERROR_REPLY_TEXT},
    {"bot", "menu_handler", "action", 1, ERROR_REPLY_TEXT}, /* the v3 API's name for it */
    {"bot", "incomingwebhook_handler", "incomingwebhook", 1, ERROR_REPLY_TEXT},
    {"bot", "incoming_webhook_handler", "incomingwebhook", 1, ERROR_REPLY_TEXT},
    {"bot", "participation_handler", "participation", 1, ERROR_REPLY_TEXT},
    {"bot", "alert_handler", "alert", 0, ERROR_REPLY_EMPTY},
    {"bot", "call_handler", "alert", 0, ERROR_REPLY_EMPTY}, /* its sample's file name */
    {"command", "execution_handler", "execution", 1, ERROR_REPLY_TEXT},
    {"command", "suggestion_handler", "suggestion", 1, ERROR_REPLY_EMPTY},
    {"messageaction", "execution_handler", "execution", 1, ERROR_REPLY_TEXT},
    {"function", "button_handler", "button", 1, ERROR_REPLY_BANNER},
    {"function", "form_handler", "form", 1, ERROR_REPLY_BANNER},
    {"function", "form_submit_handler", "form", 1, ERROR_REPLY_BANNER},
    {"function", "form_change_handler", "form_change", 0, ERROR_REPLY_EMPTY},
    {"function", "form_values_handler", "form_values", 0, ERROR_REPLY_EMPTY},
    {"function", "form_dynamic_select_handler", "form_values", 0, ERROR_REPLY_EMPTY},
    {"function", "form_view_handler", "form_view", 0, ERROR_REPLY_BANNER},
    {"function", "applet_button_handler", "applet_button", 0, ERROR_REPLY_BANNER},
    {"function", "widget_button_handler", "applet_button", 0, ERROR_REPLY_BANNER},
    {"widget", "view_handler", "view", 0, ERROR_REPLY_BANNER},
    {"extension", "installation_handler", "installation", 0, ERROR_REPLY_STATUS},
    {"extension", "installation_validator", "installation_validator", 0, ERROR_REPLY_STATUS},
    {"extension", "uninstallation_handler", "uninstallation", 0, ERROR_REPLY_STATUS},
    {"link_preview", "unfurl_handler", "unfurl", 0, ERROR_REPLY_EMPTY},
    {"link_preview", "unfurl_button_action_handler", "unfurl_button_action", 0, ERROR_REPLY_BANNER},
    {"link_preview", "unfurl_dynamic_action_handler", "unfurl_dynamic_action", 0,
     ERROR_REPLY_EMPTY},
    {"link_preview", "unfurl_post_message_handler", "unfurl_post_message", 0, ERROR_REPLY_EMPTY},
    /* The host's own tasks: no Cliq call names them (request_map refuses
     * their types), and nobody sees an error reply. */
    {"schedule", "run", "run", 0, ERROR_REPLY_EMPTY},
    {"hook", "receive", "receive", 0, ERROR_REPLY_EMPTY},
};

#define NCATALOGUE (sizeof catalogue / sizeof catalogue[0])

const char request_type_schedule[] = "schedule";
const char request_type_hook[] = "hook";

const char *const request_types[] = {
    "command",   "bot",          "messageaction",       "function",        "widget",
    "extension", "link_preview", request_type_schedule, request_type_hook, NULL,
};

static const struct {
    const char *type;
    const char *path;
    int per_component;
    const char *keys;
} type_paths[] = {
    {"command", "commands/", 1, "execution, suggestion"},
    {"bot", "bots/", 1,
     "welcome, message, context, mention, action, incomingwebhook, participation, alert"},
    {"messageaction", "messageactions/", 1, "execution"},
    {"function", "functions/", 1,
     "button, form, form_change, form_values, form_view, applet_button"},
    {"widget", "widgets/", 1, "view"},
    {"extension", "extension.lua", 0, "installation, installation_validator, uninstallation"},
    {"link_preview", "link_preview.lua", 0,
     "unfurl, unfurl_button_action, unfurl_dynamic_action, unfurl_post_message"},
    {request_type_schedule, "schedules/", 1, "run"},
    {request_type_hook, "hooks/", 1, "receive"},
};

const struct request_catalogue_entry *request_catalogue(size_t *n)
{
    *n = NCATALOGUE;
    return catalogue;
}

int request_is_task(const char *type)
{
    return type == request_type_schedule || type == request_type_hook;
}

static int type_index(const char *type)
{
    for (size_t i = 0; i < sizeof type_paths / sizeof type_paths[0]; i++)
        if (strcmp(type_paths[i].type, type) == 0)
            return (int)i;
    return -1;
}

const char *request_type_path(const char *type, int *per_component)
{
    int i = type_index(type);
    if (i < 0)
        return NULL;
    if (per_component)
        *per_component = type_paths[i].per_component;
    return type_paths[i].path;
}

const char *request_keys_for_type(const char *type)
{
    int i = type_index(type);
    return i < 0 ? "" : type_paths[i].keys;
}

int request_key_known(const char *type, const char *key)
{
    for (size_t i = 0; i < NCATALOGUE; i++)
        if (strcmp(catalogue[i].type, type) == 0 && strcmp(catalogue[i].key, key) == 0)
            return 1;
    return 0;
}

/* A component name becomes a file name: it must not be able to leave the
 * folder or hide as a dot file. Anything else (spaces, unicode) is fine. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REQUEST_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return 0;
    }
    return 1;
}

/* Wire handler names are lower-case words joined by underscores. */
static int wire_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REQUEST_HANDLER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

int request_map(const char *type, const char *wire, const char *name, struct request_dispatch *d,
                char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    int ti = type_index(type);
    if (ti < 0 || request_is_task(type_paths[ti].type)) {
        snprintf(err, errlen,
                 "unknown request type \"%.40s\" (expected command, bot, messageaction, "
                 "function, widget, extension or link_preview)",
                 type);
        return -1;
    }
    d->type = type_paths[ti].type;
    if (!wire_ok(wire)) {
        snprintf(err, errlen, "handler \"%.40s\" is not a handler name", wire);
        return -1;
    }
    snprintf(d->wire, sizeof d->wire, "%s", wire);

    for (size_t i = 0; i < NCATALOGUE; i++) {
        if (strcmp(catalogue[i].type, d->type) == 0 && strcmp(catalogue[i].wire, wire) == 0) {
            d->entry = &catalogue[i];
            break;
        }
    }
    if (d->entry) {
        snprintf(d->key, sizeof d->key, "%s", d->entry->key);
    } else {
        size_t n = strlen(wire);
        static const char suffix[] = "_handler";
        if (n > sizeof suffix - 1 && strcmp(wire + n - (sizeof suffix - 1), suffix) == 0)
            n -= sizeof suffix - 1;
        memcpy(d->key, wire, n);
        d->key[n] = '\0';
    }

    if (type_paths[ti].per_component) {
        if (!name || !*name) {
            snprintf(err, errlen, "a %s request needs a component name (\"%s\")", d->type,
                     strcmp(d->type, "bot") == 0 ? "unique_name" : "name");
            return -1;
        }
        if (!name_ok(name)) {
            snprintf(err, errlen,
                     "component name is not usable as a script name (empty, too long, "
                     "starts with '.', or has '/', '\\\\' or control characters)");
            return -1;
        }
        snprintf(d->name, sizeof d->name, "%s", name);
        snprintf(d->script, sizeof d->script, "%s%s.lua", type_paths[ti].path, name);
    } else {
        snprintf(d->script, sizeof d->script, "%s", type_paths[ti].path);
    }
    return 0;
}

int request_map_task(const char *type, const char *name, struct request_dispatch *d, char *err,
                     size_t errlen)
{
    memset(d, 0, sizeof *d);
    int ti = type_index(type);
    if (ti < 0 || !request_is_task(type_paths[ti].type)) {
        snprintf(err, errlen, "unknown task type \"%.40s\" (expected schedule or hook)", type);
        return -1;
    }
    d->type = type_paths[ti].type;
    size_t n = strlen(name);
    int ok = n > 0 && n <= REQUEST_TASK_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    }
    if (!ok) {
        snprintf(err, errlen,
                 "%s name \"%.80s\" is not usable: 1 to %d letters, digits, '_' or '-'", d->type,
                 name, REQUEST_TASK_NAME_MAX);
        return -1;
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    for (size_t i = 0; i < NCATALOGUE; i++)
        if (strcmp(catalogue[i].type, d->type) == 0)
            d->entry = &catalogue[i];
    snprintf(d->key, sizeof d->key, "%s", request_keys_for_type(d->type));
    snprintf(d->wire, sizeof d->wire, "%s", d->key);
    snprintf(d->script, sizeof d->script, "%s%s.lua", type_paths[ti].path, name);
    return 0;
}

static const char *get_string(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Objects with at most this many keys (all of Cliq's) are checked pair by
 * pair, with no allocation; larger ones are sorted. */
#define KEYS_PAIRWISE 32

/* The key an object holds twice, or NULL. */
static const char *object_repeats(const cJSON *obj)
{
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n <= KEYS_PAIRWISE) {
        /* Most keys differ in their first byte: that is compared inline
         * before strcmp is called. */
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (a->string && b->string && a->string[0] == b->string[0] &&
                    strcmp(a->string, b->string) == 0)
                    return a->string;
        return NULL;
    }
    const char **keys = xmalloc(n * sizeof *keys);
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        keys[i++] = c->string ? c->string : "";
    qsort(keys, n, sizeof *keys, cmp_keys);
    const char *dup = NULL;
    for (i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            dup = keys[i];
    free(keys);
    return dup;
}

/* The first key that an object anywhere in the tree holds twice, or NULL.
 * cJSON keeps both and looks up the first, while a handler's Lua table
 * keeps the last: what is dispatched would not be what the handler sees.
 * O(n log n) for any body; the depth is cJSON's nesting limit. */
static const char *repeated_key(const cJSON *node)
{
    if (cJSON_IsObject(node)) {
        const char *dup = object_repeats(node);
        if (dup)
            return dup;
    }
    if (cJSON_IsObject(node) || cJSON_IsArray(node))
        for (const cJSON *c = node->child; c; c = c->next) {
            const char *dup = repeated_key(c);
            if (dup)
                return dup;
        }
    return NULL;
}

/* ---- parsing -----------------------------------------------------------
 *
 * request_parse builds the tree cJSON_ParseWithLengthOpts would, node for
 * node, for the JSON Cliq sends: strict JSON numbers, valid escapes. It
 * reads each string once, tells literals and numbers apart by their first
 * byte and makes integers without strtod; cJSON tries three strncmp's per
 * value and reads each string twice. Anything it does not take (cJSON's
 * leniencies, and every error) goes to cJSON itself, so the answer (the
 * tree, the end, the error position) is always cJSON's. Nodes and strings
 * come from cJSON_malloc, so cJSON_Delete frees them (the arena's, inside
 * one). */

struct jparse {
    const char *p, *end;
    int depth;
};

static void jspace(struct jparse *j)
{
    /* cJSON's whitespace: every byte up to and including ' '. */
    while (j->p < j->end && (unsigned char)*j->p <= 32)
        j->p++;
}

static int jdigit(char c)
{
    return c >= '0' && c <= '9';
}

/* One \\u escape's four hex digits; -1 if one is not (cJSON would read it as
 * 0: that is left to cJSON). */
static long jhex4(const char *h)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = h[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Decodes the escaped text s..e (e: the closing quote) into out, as
 * cJSON's parse_string does. Returns the length, or -1 for what cJSON
 * would refuse or read its own way. */
static long junescape(const char *s, const char *e, char *out)
{
    char *o = out;
    while (s < e) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        if (e - s < 2)
            return -1;
        char c = s[1];
        switch (c) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case '"':
        case '\\':
        case '/':
            *o++ = c;
            break;
        case 'u': {
            if (e - s < 6)
                return -1;
            long cp = jhex4(s + 2);
            if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - s < 12 || s[6] != '\\' || s[7] != 'u')
                    return -1;
                long lo = jhex4(s + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
                s += 6;
            }
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            s += 4; /* and the 2 below */
            break;
        }
        default:
            return -1;
        }
        s += 2;
    }
    return o - out;
}

/* Reads the string whose quote is at j->p. Returns it (cJSON_malloc'd,
 * NUL-terminated, the decoded bytes as cJSON keeps them), or NULL. */
static char *jstring(struct jparse *j)
{
    if (j->p >= j->end || *j->p != '"')
        return NULL;
    const char *s = j->p + 1;
    const char *q = memchr(s, '"', (size_t)(j->end - s));
    if (!q)
        return NULL;
    const char *e = memchr(s, '\\', (size_t)(q - s));
    if (!e) {
        size_t n = (size_t)(q - s);
        char *out = cJSON_malloc(n + 1);
        if (!out)
            return NULL;
        memcpy(out, s, n);
        out[n] = '\0';
        j->p = q + 1;
        return out;
    }
    /* The closing quote is the first no backslash escapes. */
    while (e < j->end && *e != '"')
        e += *e == '\\' ? 2 : 1;
    if (e >= j->end)
        return NULL;
    char *out = cJSON_malloc((size_t)(e - s) + 1);
    if (!out)
        return NULL;
    long n = junescape(s, e, out);
    if (n < 0) {
        cJSON_free(out);
        return NULL;
    }
    out[n] = '\0';
    j->p = e + 1;
    return out;
}

/* Reads a number in JSON's own grammar, as cJSON's parse_number does
 * (strtod of the characters, the locale's decimal point in place of '.').
 * Returns 0, or -1 for any other spelling (cJSON decides). */
static int jnumber(struct jparse *j, cJSON *item)
{
    const char *s = j->p, *p = s, *e = j->end;
    int neg = p < e && *p == '-';
    p += neg;
    if (p >= e || !jdigit(*p))
        return -1;
    if (*p == '0')
        p++;
    else
        while (p < e && jdigit(*p))
            p++;
    int integer = 1;
    if (p < e && *p == '.') {
        if (++p >= e || !jdigit(*p))
            return -1;
        while (p < e && jdigit(*p))
            p++;
        integer = 0;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !jdigit(*p))
            return -1;
        while (p < e && jdigit(*p))
            p++;
        integer = 0;
    }
    /* cJSON takes every number character that follows (and at most 63). */
    if (p < e && (jdigit(*p) || *p == '+' || *p == '-' || *p == '.' || *p == 'e' || *p == 'E'))
        return -1;
    size_t n = (size_t)(p - s);
    if (n > 63)
        return -1;
    double v;
    if (integer && n - (size_t)neg <= 15) {
        long long m = 0;
        for (const char *d = s + neg; d < p; d++)
            m = m * 10 + (*d - '0');
        v = neg ? -(double)m : (double)m; /* exact below 2^53, as strtod; "-0" is -0.0 */
    } else {
        char tmp[64];
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *dot = memchr(tmp, '.', n);
        if (dot) {
            const struct lconv *lc = localeconv();
            if (lc && lc->decimal_point && lc->decimal_point[0])
                *dot = lc->decimal_point[0];
        }
        v = strtod(tmp, NULL);
    }
    item->valuedouble = v;
    if (v >= INT_MAX)
        item->valueint = INT_MAX;
    else if (v <= (double)INT_MIN)
        item->valueint = INT_MIN;
    else
        item->valueint = (int)v;
    item->type = cJSON_Number;
    if (!integer)
        item->type |= REQUEST_NUMBER_FLOAT;
    else if (n - (size_t)neg <= 15)
        item->type |= REQUEST_NUMBER_INTEGER;
    j->p = p;
    return 0;
}

static cJSON *jnode(void)
{
    cJSON *n = cJSON_malloc(sizeof *n);
    if (n)
        memset(n, 0, sizeof *n);
    return n;
}

static int jvalue(struct jparse *j, cJSON *item);

/* Reads the array or object at j->p into item. Each child is linked in
 * before it is read, so that item owns whatever was made when it fails. */
static int jcontainer(struct jparse *j, cJSON *item, int object)
{
    if (j->depth >= CJSON_NESTING_LIMIT)
        return -1;
    j->depth++;
    char close = object ? '}' : ']';
    item->type = object ? cJSON_Object : cJSON_Array;
    j->p++;
    jspace(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    cJSON *last = NULL;
    for (;;) {
        cJSON *c = jnode();
        if (!c)
            return -1;
        if (last) {
            last->next = c;
            c->prev = last;
        } else {
            item->child = c;
        }
        last = c;
        item->child->prev = c; /* as cJSON: the head's prev is the tail */
        jspace(j);
        if (object) {
            c->string = jstring(j);
            if (!c->string)
                return -1;
            jspace(j);
            if (j->p >= j->end || *j->p != ':')
                return -1;
            j->p++;
            jspace(j);
        }
        if (jvalue(j, c) < 0)
            return -1;
        jspace(j);
        if (j->p >= j->end)
            return -1;
        char ch = *j->p++;
        if (ch == close)
            break;
        if (ch != ',')
            return -1;
    }
    j->depth--;
    return 0;
}

static int jliteral(struct jparse *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static int jvalue(struct jparse *j, cJSON *item)
{
    if (j->p >= j->end)
        return -1;
    switch (*j->p) {
    case '"':
        item->valuestring = jstring(j);
        item->type = cJSON_String;
        return item->valuestring ? 0 : -1;
    case '{':
        return jcontainer(j, item, 1);
    case '[':
        return jcontainer(j, item, 0);
    case 'n':
        item->type = cJSON_NULL;
        return jliteral(j, "null", 4);
    case 't':
        item->type = cJSON_True;
        item->valueint = 1;
        return jliteral(j, "true", 4);
    case 'f':
        item->type = cJSON_False;
        return jliteral(j, "false", 5);
    default:
        return jnumber(j, item);
    }
}

cJSON *request_parse(const char *body, size_t len, const char **end)
{
    if (body && len > 0) {
        struct jparse j = {body, body + len, 0};
        /* A UTF-8 BOM is skipped as cJSON skips it: only when two bytes or
         * more follow it (a BOM and one digit is not JSON to cJSON). */
        if (len >= 5 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
            j.p += 3;
        jspace(&j);
        cJSON *root = jnode();
        if (root && jvalue(&j, root) == 0) {
            if (end)
                *end = j.p;
            return root;
        }
        cJSON_Delete(root);
    }
    return cJSON_ParseWithLengthOpts(body, len, end, 0);
}

int request_decode(const char *body, size_t len, cJSON **json, struct request_dispatch *d,
                   char *err, size_t errlen)
{
    *json = NULL;
    const char *end = NULL;
    cJSON *root = request_parse(body, len, &end);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        snprintf(err, errlen, "body is not valid JSON (error near byte %zu)", at);
        return -1;
    }
    /* Only whitespace may follow the value. */
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            snprintf(err, errlen, "body has data after the JSON value (at byte %zu)",
                     (size_t)(p - body));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "body must be a JSON object");
        goto fail;
    }
    const char *dup = repeated_key(root);
    if (dup) {
        snprintf(err, errlen, "body has a duplicate key \"%.64s\" (Cliq never sends one)", dup);
        goto fail;
    }

    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!type) {
        snprintf(err, errlen, "body has no \"type\"");
        goto fail;
    }
    if (!cJSON_IsString(type) || !type->valuestring[0]) {
        snprintf(err, errlen, "\"type\" must be a non-empty string");
        goto fail;
    }

    const cJSON *handler = cJSON_GetObjectItemCaseSensitive(root, "handler");
    const char *wire = NULL;
    const char *action = NULL;
    if (!handler) {
        snprintf(err, errlen, "body has no \"handler\"");
        goto fail;
    }
    if (cJSON_IsString(handler)) {
        /* 2019 format: "handler": "execution_handler", "handler_name": "help" */
        wire = handler->valuestring;
        action = get_string(root, "handler_name");
    } else if (cJSON_IsObject(handler)) {
        wire = get_string(handler, "type");
        action = get_string(handler, "name");
        if (!action)
            action = get_string(root, "handler_name");
    }
    if (!wire) {
        snprintf(err, errlen, "\"handler\" must be an object with a \"type\" string, or a string");
        goto fail;
    }

    const char *name = NULL;
    if (strcmp(type->valuestring, "bot") == 0) {
        name = get_string(root, "unique_name");
        if (!name || !*name)
            name = get_string(root, "name");
    } else {
        name = get_string(root, "name");
    }

    if (request_map(type->valuestring, wire, name, d, err, errlen) < 0)
        goto fail;
    if (action && strcmp(d->type, "bot") == 0)
        snprintf(d->action, sizeof d->action, "%s", action);

    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (params && !cJSON_IsObject(params) && !cJSON_IsNull(params)) {
        snprintf(err, errlen, "\"params\" must be an object");
        goto fail;
    }
    *json = root;
    return 0;
fail:
    cJSON_Delete(root);
    return -1;
}

char *request_text_reply(const struct request_dispatch *d, const char *text, int failure,
                         size_t *len)
{
    enum request_error_reply kind = d && d->entry ? d->entry->error_reply : ERROR_REPLY_TEXT;
    struct buf b;
    buf_init(&b, 1024 * 1024); /* text is an error message or a setting */
    size_t n = strlen(text);
    if (kind == ERROR_REPLY_EMPTY || n == 0) {
        buf_adds(&b, "{\"output\":\"\"}");
        return buf_take(&b, len);
    }
    if (kind == ERROR_REPLY_BANNER) {
        buf_adds(&b, "{\"output\":{\"type\":\"banner\",\"status\":");
        buf_adds(&b, failure ? "\"failure\"" : "\"success\"");
        buf_adds(&b, ",\"text\":");
    } else if (kind == ERROR_REPLY_STATUS) {
        buf_adds(&b, failure ? "{\"output\":{\"status\":500,\"title\":\"Error\",\"message\":"
                             : "{\"output\":{\"status\":200,\"title\":\"Working\",\"message\":");
    } else {
        buf_adds(&b, "{\"output\":{\"text\":");
    }
    jsonw_string(&b, text, n, JSONW_REPLACE, NULL);
    buf_adds(&b, "}}");
    return buf_take(&b, len);
}
