/* render: replies as terminal text (see render.h). */
#include "cliq/render.h"

#include "core/mem.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Table columns wider than this are not padded further. */
#define COLUMN_MAX  40
#define COLUMNS_MAX 32

/* ---- small helpers ----------------------------------------------------- */

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int is_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(get(o, key));
}

static void indent(FILE *out, int n)
{
    fprintf(out, "%*s", n, "");
}

/* Display width of one line of UTF-8: its code points. */
static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Writes `s` with every line indented by `n`, and a newline. */
static void block(FILE *out, int n, const char *s)
{
    indent(out, n);
    for (; *s; s++) {
        fputc(*s, out);
        if (*s == '\n' && s[1])
            indent(out, n);
    }
    fputc('\n', out);
}

static void compact(FILE *out, const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    fputs(s ? s : "?", out);
    cJSON_free(s);
}

/* A value as a cell or inline text: strings as they are, the rest as JSON.
 * Caller frees. */
static char *text_of(const cJSON *v)
{
    if (cJSON_IsString(v))
        return xstrdup(v->valuestring);
    if (!v)
        return xstrdup("");
    char *s = cJSON_PrintUnformatted(v);
    char *copy = xstrdup(s ? s : "?");
    cJSON_free(s);
    return copy;
}

static void scalar(FILE *out, const cJSON *v)
{
    if (cJSON_IsString(v))
        fputs(v->valuestring, out);
    else
        compact(out, v);
}

static int in_list(const char *key, const char *const *known)
{
    for (; *known; known++)
        if (strcmp(key, *known) == 0)
            return 1;
    return 0;
}

/* The keys of `o` a renderer does not know, one per line as compact JSON. */
static void rest(FILE *out, int n, const cJSON *o, const char *const *known)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        if (!it->string || in_list(it->string, known))
            continue;
        indent(out, n);
        fprintf(out, "%s: ", it->string);
        compact(out, it);
        fputc('\n', out);
    }
}

/* ---- buttons ----------------------------------------------------------- */

/* What an action points at: a function's name, a URL, text to copy. */
static void action_target(FILE *out, const char *type, const cJSON *data)
{
    static const struct {
        const char *type, *key;
    } targets[] = {
        {"invoke.function", "name"}, {"open.url", "web"}, {"preview.url", "url"}, {"copy", "text"},
        {"system.api", "api"},
    };
    if (!data)
        return;
    for (size_t i = 0; type && i < sizeof targets / sizeof targets[0]; i++) {
        const char *t = strcmp(type, targets[i].type) == 0 ? str(data, targets[i].key) : NULL;
        if (t) {
            fprintf(out, " %s", t);
            return;
        }
    }
    fputc(' ', out);
    compact(out, data);
}

/* A message button {label, type +/-, key, hint, action{type, data,
 * confirm}}, or a widget's flat {label, type, name, id, url, api}. */
static void button(FILE *out, int n, const cJSON *b)
{
    indent(out, n);
    fprintf(out, "[%s]", str(b, "label") ? str(b, "label") : "?");
    const char *type = str(b, "type");
    const cJSON *action = get(b, "action");
    if (cJSON_IsObject(action)) {
        if (type)
            fprintf(out, " (%s)", type);
        const char *atype = str(action, "type");
        fprintf(out, " -> %s", atype ? atype : "?");
        action_target(out, atype, get(action, "data"));
        const cJSON *confirm = get(action, "confirm");
        if (cJSON_IsObject(confirm))
            fprintf(out, ", confirm \"%s\"", str(confirm, "title") ? str(confirm, "title") : "");
    } else if (type) {
        fprintf(out, " -> %s", type);
        const char *t = str(b, "name")  ? str(b, "name")
                        : str(b, "url") ? str(b, "url")
                                        : str(b, "api");
        if (t)
            fprintf(out, " %s", t);
        if (str(b, "id"))
            fprintf(out, " (id %s)", str(b, "id"));
    }
    if (str(b, "key"))
        fprintf(out, ", key %s", str(b, "key"));
    if (str(b, "hint") && *str(b, "hint"))
        fprintf(out, ", hint \"%s\"", str(b, "hint"));
    if (is_true(b, "disabled"))
        fputs(", disabled", out);
    fputc('\n', out);
}

static void buttons(FILE *out, int n, const cJSON *list)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, list)
    {
        if (cJSON_IsObject(b))
            button(out, n, b);
    }
}

/* ---- slides ------------------------------------------------------------ */

/* A table {headers: [...], rows: [{header: value} | [value, ...]]}, with
 * each column as wide as its widest cell (up to COLUMN_MAX). */
static void table(FILE *out, int n, const cJSON *headers, const cJSON *rows)
{
    int ncol = cJSON_GetArraySize(headers);
    int nrow = cJSON_GetArraySize(rows);
    if (ncol <= 0 || ncol > COLUMNS_MAX) {
        indent(out, n);
        compact(out, rows);
        fputc('\n', out);
        return;
    }
    /* cells[r][c], row 0 being the headers. */
    char **cells = xcalloc((size_t)(nrow + 1) * (size_t)ncol, sizeof *cells);
    size_t w[COLUMNS_MAX] = {0};
    for (int c = 0; c < ncol; c++)
        cells[c] = text_of(cJSON_GetArrayItem(headers, c));
    int r = 1;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        for (int c = 0; c < ncol; c++) {
            const cJSON *v = cJSON_IsArray(row)    ? cJSON_GetArrayItem(row, c)
                             : cJSON_IsObject(row) ? get(row, cells[c])
                                                   : NULL;
            cells[r * ncol + c] = text_of(v);
        }
        r++;
    }
    for (int i = 0; i < (nrow + 1) * ncol; i++) {
        size_t cw = width(cells[i]);
        if (cw > w[i % ncol])
            w[i % ncol] = cw > COLUMN_MAX ? COLUMN_MAX : cw;
    }
    for (r = 0; r <= nrow; r++) {
        indent(out, n);
        for (int c = 0; c < ncol; c++) {
            const char *cell = cells[r * ncol + c];
            fputs(cell, out);
            size_t cw = width(cell);
            if (c < ncol - 1)
                indent(out, (int)(w[c] > cw ? w[c] - cw : 0) + 2);
        }
        fputc('\n', out);
        if (r == 0) {
            indent(out, n);
            for (int c = 0; c < ncol; c++) {
                for (size_t i = 0; i < w[c]; i++)
                    fputc('-', out);
                if (c < ncol - 1)
                    fputs("  ", out);
            }
            fputc('\n', out);
        }
    }
    for (int i = 0; i < (nrow + 1) * ncol; i++)
        free(cells[i]);
    free(cells);
}

/* Label data [{"Key": "Value"}, ...] (or the {label, value} variant). */
static void labels(FILE *out, int n, const cJSON *data)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, data)
    {
        if (str(item, "label") && get(item, "value") && cJSON_GetArraySize(item) == 2) {
            indent(out, n);
            fprintf(out, "%s: ", str(item, "label"));
            scalar(out, get(item, "value"));
            fputc('\n', out);
            continue;
        }
        const cJSON *kv;
        cJSON_ArrayForEach(kv, item)
        {
            indent(out, n);
            fprintf(out, "%s: ", kv->string ? kv->string : "?");
            scalar(out, kv);
            fputc('\n', out);
        }
    }
}

static void slide(FILE *out, const cJSON *s)
{
    const char *type = str(s, "type") ? str(s, "type") : "?";
    const char *title = str(s, "title");
    const cJSON *data = get(s, "data");
    fputc('\n', out);
    if (title && *title)
        fprintf(out, "%s\n", title);
    if (strcmp(type, "table") == 0 && cJSON_IsObject(data)) {
        table(out, 2, get(data, "headers"), get(data, "rows"));
    } else if (strcmp(type, "list") == 0 && cJSON_IsArray(data)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, data)
        {
            fputs("  \xe2\x80\xa2 ", out);
            scalar(out, it);
            fputc('\n', out);
        }
    } else if (strcmp(type, "label") == 0 && cJSON_IsArray(data)) {
        labels(out, 2, data);
    } else if (strcmp(type, "images") == 0 && cJSON_IsArray(data)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, data)
        {
            fputs("  image: ", out);
            scalar(out, it);
            fputc('\n', out);
        }
    } else if (strcmp(type, "text") == 0 && cJSON_IsString(data)) {
        block(out, 2, data->valuestring);
    } else {
        fprintf(out, "  (%s slide) ", type);
        compact(out, data);
        fputc('\n', out);
    }
}

/* ---- messages ---------------------------------------------------------- */

static void suggestion_list(FILE *out, const cJSON *list)
{
    fputs("suggestions:", out);
    const cJSON *it;
    int first = 1;
    cJSON_ArrayForEach(it, list)
    {
        fputs(first ? " " : " | ", out);
        first = 0;
        const char *t = str(it, "text");
        if (t)
            fputs(t, out);
        else
            scalar(out, it);
        const cJSON *kv;
        cJSON_ArrayForEach(kv, it)
        {
            if (cJSON_IsObject(it) && kv->string && strcmp(kv->string, "text") != 0) {
                fprintf(out, " (%s ", kv->string);
                scalar(out, kv);
                fputc(')', out);
            }
        }
    }
    fputc('\n', out);
}

/* A bot context: the questions the bot will ask. */
static void context(FILE *out, const cJSON *c)
{
    fprintf(out, "context %s", str(c, "id") ? str(c, "id") : "?");
    if (cJSON_IsNumber(get(c, "timeout")))
        fprintf(out, " (timeout %g s)", get(c, "timeout")->valuedouble);
    fputs(":\n", out);
    const cJSON *q;
    cJSON_ArrayForEach(q, get(c, "params"))
    {
        fprintf(out, "  %s: %s", str(q, "name") ? str(q, "name") : "?",
                str(q, "question") ? str(q, "question") : "");
        const cJSON *sugg = get(get(q, "suggestions"), "list");
        const cJSON *it;
        int first = 1;
        cJSON_ArrayForEach(it, sugg)
        {
            fputs(first ? " [" : " | ", out);
            first = 0;
            fputs(str(it, "text") ? str(it, "text") : "?", out);
        }
        if (!first)
            fputc(']', out);
        fputc('\n', out);
    }
}

static void message(FILE *out, const cJSON *m)
{
    static const char *const known[] = {"text",    "bot",         "card",    "slides",
                                        "buttons", "suggestions", "context", NULL};
    static const char *const bot_known[] = {"name", "image", NULL};
    const cJSON *bot = get(m, "bot");
    if (cJSON_IsObject(bot)) {
        fprintf(out, "bot: %s\n", str(bot, "name") ? str(bot, "name") : "");
        if (str(bot, "image"))
            fprintf(out, "  image: %s\n", str(bot, "image"));
        rest(out, 2, bot, bot_known);
    }
    const cJSON *card = get(m, "card");
    if (cJSON_IsObject(card)) {
        fprintf(out, "card: %s", str(card, "title") ? str(card, "title") : "");
        if (str(card, "theme"))
            fprintf(out, " (%s)", str(card, "theme"));
        fputc('\n', out);
    }
    if (str(m, "text"))
        block(out, 0, str(m, "text"));
    const cJSON *s;
    cJSON_ArrayForEach(s, get(m, "slides"))
    {
        slide(out, s);
    }
    if (cJSON_GetArraySize(get(m, "buttons")) > 0) {
        fputs("\nbuttons:\n", out);
        buttons(out, 2, get(m, "buttons"));
    }
    if (cJSON_IsArray(get(get(m, "suggestions"), "list")))
        suggestion_list(out, get(get(m, "suggestions"), "list"));
    if (cJSON_IsObject(get(m, "context")))
        context(out, get(m, "context"));
    rest(out, 0, m, known);
}

/* ---- functions: banners, forms ----------------------------------------- */

static void banner(FILE *out, const cJSON *b)
{
    const char *status = str(b, "status") ? str(b, "status") : "";
    const char *mark = strcasecmp(status, "success") == 0   ? "\xe2\x9c\x94"
                       : strcasecmp(status, "failure") == 0 ? "\xe2\x9c\x98"
                                                            : "\xe2\x80\xa2";
    fprintf(out, "%s %s\n", mark, str(b, "text") ? str(b, "text") : "");
}

static void options_inline(FILE *out, const cJSON *opts)
{
    const cJSON *o;
    int first = 1;
    cJSON_ArrayForEach(o, opts)
    {
        fputs(first ? "" : ", ", out);
        first = 0;
        if (str(o, "label"))
            fprintf(out, "%s [%s]", str(o, "label"), str(o, "value") ? str(o, "value") : "");
        else
            scalar(out, o);
    }
}

/* One form input: "- Label (name): type/format, required, = value, ...". */
static void input(FILE *out, int n, const cJSON *in)
{
    static const char *const known[] = {
        "type",  "format",      "name", "label",   "mandatory",
        "value", "placeholder", "hint", "options", "trigger_on_change",
        NULL};
    indent(out, n);
    fputs("- ", out);
    if (str(in, "label"))
        fprintf(out, "%s ", str(in, "label"));
    fprintf(out, "(%s): %s", str(in, "name") ? str(in, "name") : "?",
            str(in, "type") ? str(in, "type") : "?");
    if (str(in, "format"))
        fprintf(out, "/%s", str(in, "format"));
    if (is_true(in, "mandatory"))
        fputs(", required", out);
    if (get(in, "value")) {
        fputs(", = ", out);
        scalar(out, get(in, "value"));
    }
    if (str(in, "placeholder"))
        fprintf(out, ", placeholder \"%s\"", str(in, "placeholder"));
    if (str(in, "hint"))
        fprintf(out, ", hint \"%s\"", str(in, "hint"));
    if (is_true(in, "trigger_on_change"))
        fputs(", calls form_change", out);
    const cJSON *it;
    cJSON_ArrayForEach(it, in)
    {
        if (it->string && !in_list(it->string, known)) {
            fprintf(out, ", %s ", it->string);
            compact(out, it);
        }
    }
    fputc('\n', out);
    if (cJSON_IsArray(get(in, "options"))) {
        indent(out, n + 4);
        fputs("options: ", out);
        options_inline(out, get(in, "options"));
        fputc('\n', out);
    }
}

static void form(FILE *out, const cJSON *f)
{
    static const char *const known[] = {"type",   "title",  "name",    "hint", "button_label",
                                        "inputs", "action", "actions", NULL};
    fprintf(out, "form: %s", str(f, "title") ? str(f, "title") : "");
    if (str(f, "name"))
        fprintf(out, " (name %s)", str(f, "name"));
    fputc('\n', out);
    if (str(f, "hint"))
        block(out, 2, str(f, "hint"));
    const cJSON *in;
    cJSON_ArrayForEach(in, get(f, "inputs"))
    {
        input(out, 2, in);
    }
    const cJSON *action = get(f, "action");
    if (!action)
        action = get(get(f, "actions"), "submit"); /* the older shape */
    fprintf(out, "  [%s]", str(f, "button_label") ? str(f, "button_label") : "Submit");
    if (cJSON_IsObject(action))
        fprintf(out, " -> %s %s", str(action, "type") ? str(action, "type") : "?",
                str(action, "name") ? str(action, "name") : "");
    fputc('\n', out);
    rest(out, 2, f, known);
}

static void form_modification(FILE *out, const cJSON *m)
{
    fputs("form modification:\n", out);
    const cJSON *a;
    cJSON_ArrayForEach(a, get(m, "actions"))
    {
        fprintf(out, "  %s %s\n", str(a, "type") ? str(a, "type") : "?",
                str(a, "name") ? str(a, "name") : "");
        if (cJSON_IsObject(get(a, "input")))
            input(out, 4, get(a, "input"));
    }
}

/* ---- widgets ----------------------------------------------------------- */

static void element(FILE *out, const cJSON *e)
{
    const char *type = str(e, "type") ? str(e, "type") : "?";
    if (strcmp(type, "title") == 0) {
        fprintf(out, "  # %s\n", str(e, "text") ? str(e, "text") : "");
        buttons(out, 4, get(e, "buttons"));
    } else if (strcmp(type, "text") == 0 || strcmp(type, "subtext") == 0) {
        block(out, 2, str(e, "text") ? str(e, "text") : "");
    } else if (strcmp(type, "divider") == 0) {
        fputs("  ----------\n", out);
    } else if (strcmp(type, "buttons") == 0) {
        buttons(out, 2, get(e, "buttons"));
    } else if (strcmp(type, "fields") == 0) {
        labels(out, 2, get(get(e, "data"), "data") ? get(get(e, "data"), "data") : get(e, "data"));
    } else if (strcmp(type, "table") == 0 && get(e, "headers")) {
        table(out, 2, get(e, "headers"), get(e, "rows"));
    } else {
        fprintf(out, "  (%s) ", type);
        compact(out, e);
        fputc('\n', out);
    }
}

static void widget(FILE *out, const cJSON *w)
{
    static const char *const known[] = {"type",   "tabs",   "active_tab", "data_type", "sections",
                                        "header", "footer", "info",       NULL};
    fprintf(out, "widget: %s\n", str(w, "data_type") ? str(w, "data_type") : "sections");
    const char *active = str(w, "active_tab");
    const cJSON *t;
    if (cJSON_GetArraySize(get(w, "tabs")) > 0) {
        fputs("tabs:", out);
        cJSON_ArrayForEach(t, get(w, "tabs"))
        {
            const char *id = str(t, "id") ? str(t, "id") : "?";
            fprintf(out, " %s [%s]%s", str(t, "label") ? str(t, "label") : id, id,
                    active && strcmp(active, id) == 0 ? " (active)" : "");
        }
        fputc('\n', out);
    }
    const cJSON *header = get(w, "header");
    if (cJSON_IsObject(header)) {
        static const char *const header_known[] = {"title", "buttons", NULL};
        fprintf(out, "header: %s\n", str(header, "title") ? str(header, "title") : "");
        rest(out, 2, header, header_known);
        buttons(out, 2, get(header, "buttons"));
    }
    const cJSON *info = get(w, "info");
    if (cJSON_IsObject(info)) {
        fprintf(out, "info: %s\n", str(info, "title") ? str(info, "title") : "");
        if (str(info, "description"))
            block(out, 2, str(info, "description"));
        if (str(info, "image_url"))
            fprintf(out, "  image: %s\n", str(info, "image_url"));
        if (cJSON_IsObject(get(info, "button")))
            button(out, 2, get(info, "button"));
        static const char *const info_known[] = {"title", "description", "image_url", "button",
                                                 NULL};
        rest(out, 2, info, info_known);
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, get(w, "sections"))
    {
        fprintf(out, "section %s:\n", str(s, "id") ? str(s, "id") : "?");
        const cJSON *e;
        cJSON_ArrayForEach(e, get(s, "elements"))
        {
            element(out, e);
        }
    }
    const cJSON *footer = get(w, "footer");
    if (cJSON_IsObject(footer)) {
        static const char *const footer_known[] = {"text", "buttons", NULL};
        fprintf(out, "footer: %s\n", str(footer, "text") ? str(footer, "text") : "");
        rest(out, 2, footer, footer_known);
        buttons(out, 2, get(footer, "buttons"));
    }
    rest(out, 0, w, known);
}

/* ---- link previews, extension statuses, lists -------------------------- */

static void link_preview(FILE *out, const cJSON *l)
{
    static const char *const known[] = {"type",   "title",   "description", "provider_url",
                                        "fields", "actions", NULL};
    fprintf(out, "link preview: %s\n", str(l, "title") ? str(l, "title") : "");
    if (str(l, "description"))
        block(out, 2, str(l, "description"));
    if (str(l, "provider_url"))
        fprintf(out, "  provider: %s\n", str(l, "provider_url"));
    labels(out, 2, get(get(l, "fields"), "data"));
    const cJSON *a;
    cJSON_ArrayForEach(a, get(l, "actions"))
    {
        indent(out, 2);
        fprintf(out, "[%s]", str(a, "label") ? str(a, "label") : "?");
        if (get(a, "params")) {
            fputs(" params ", out);
            compact(out, get(a, "params"));
        }
        fputc('\n', out);
    }
    rest(out, 2, l, known);
}

static void extension_status(FILE *out, const cJSON *s)
{
    static const char *const known[] = {"status", "title", "message", "note", "footer", NULL};
    fputs("status ", out);
    scalar(out, get(s, "status"));
    if (str(s, "title"))
        fprintf(out, ": %s", str(s, "title"));
    fputc('\n', out);
    if (str(s, "message"))
        block(out, 2, str(s, "message"));
    const cJSON *n;
    cJSON_ArrayForEach(n, get(s, "note"))
    {
        fputs("  \xe2\x80\xa2 ", out);
        scalar(out, n);
        fputc('\n', out);
    }
    if (str(s, "footer"))
        block(out, 2, str(s, "footer"));
    rest(out, 2, s, known);
}

/* A list: command suggestions {title, description, imageurl}, a dynamic
 * select's or Deluge's {label, value}, unfurl actions {label, ...}. */
static void list(FILE *out, const cJSON *items)
{
    if (cJSON_GetArraySize(items) == 0) {
        fputs("(an empty list)\n", out);
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        fputs("\xe2\x80\xa2 ", out);
        if (str(it, "title")) {
            fputs(str(it, "title"), out);
            if (str(it, "description") && *str(it, "description"))
                fprintf(out, " - %s", str(it, "description"));
        } else if (str(it, "label") && cJSON_IsString(get(it, "value"))) {
            fprintf(out, "%s [%s]", str(it, "label"), str(it, "value"));
        } else if (str(it, "label")) {
            fprintf(out, "[%s]", str(it, "label"));
            const cJSON *kv;
            cJSON_ArrayForEach(kv, it)
            {
                if (kv->string && strcmp(kv->string, "label") != 0) {
                    fprintf(out, " %s ", kv->string);
                    compact(out, kv);
                }
            }
        } else if (str(it, "text")) {
            fputs(str(it, "text"), out);
        } else {
            scalar(out, it);
        }
        fputc('\n', out);
    }
}

void render_output(FILE *out, const cJSON *output)
{
    if (!output || cJSON_IsNull(output) ||
        (cJSON_IsString(output) && output->valuestring[0] == '\0')) {
        fputs("(an empty reply: the user sees nothing)\n", out);
        return;
    }
    if (cJSON_IsString(output)) {
        block(out, 0, output->valuestring);
        return;
    }
    if (cJSON_IsArray(output)) {
        list(out, output);
        return;
    }
    if (!cJSON_IsObject(output)) {
        compact(out, output);
        fputc('\n', out);
        return;
    }
    const char *type = str(output, "type") ? str(output, "type") : "";
    if (strcmp(type, "banner") == 0)
        banner(out, output);
    else if (strcmp(type, "form") == 0)
        form(out, output);
    else if (strcmp(type, "form_modification") == 0)
        form_modification(out, output);
    else if (strcmp(type, "applet") == 0)
        widget(out, output);
    else if (strcmp(type, "link") == 0)
        link_preview(out, output);
    else if (!get(output, "text") && cJSON_IsArray(get(output, "options"))) {
        fputs("options:\n", out);
        list(out, get(output, "options"));
    } else if (!get(output, "text") && cJSON_IsArray(get(output, "suggestions"))) {
        fputs("suggestions:\n", out);
        list(out, get(output, "suggestions"));
    } else if (!get(output, "text") && get(output, "status") &&
               (get(output, "title") || get(output, "message")))
        extension_status(out, output);
    else
        message(out, output);
}
