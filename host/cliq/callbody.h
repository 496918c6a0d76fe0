/*
 * callbody: the request bodies Cliq sends, built for `cliqhost invoke`.
 *
 * One table (callbody.c) lists every handler of docs/cliq-formats.md
 * §2 with the common params objects Cliq includes for it (user, chat,
 * location: the permission list of §1), which of the command line's inputs
 * apply to it (TEXT, --arg, --value, --action, --attachment) and what they
 * mean, and a builder for its own params. A body has Cliq's
 * current shape: name (and unique_name for bots), "handler": {"type":
 * "<wire>"}, response_url where the handler type has one, type, timestamp
 * (now, in ms) and params, with environment and access always in params.
 */
#ifndef CLIQHOST_CALLBODY_H
#define CLIQHOST_CALLBODY_H

#include <stddef.h>

struct cJSON;

/* The inputs that mean something for a handler (callbody_handler.takes). */
#define CALLBODY_TAKES_TEXT       0x01u
#define CALLBODY_TAKES_ARG        0x02u
#define CALLBODY_TAKES_VALUE      0x04u
#define CALLBODY_TAKES_ACTION     0x08u
#define CALLBODY_TAKES_ATTACHMENT 0x10u

/* The longest TEXT, name or value taken (Cliq's own limits are lower). */
#define CALLBODY_TEXT_MAX (64 * 1024)

struct callbody_pair {
    const char *key;
    const char *value;
};

/* What the command line said. Every pointer is borrowed for the call. */
struct callbody_input {
    const char *name;   /* the component (command, bot, ...); NULL for extension, link_preview */
    const char *text;   /* TEXT, or NULL: the handler's default */
    const char *action; /* --action: a bot menu item */
    const struct callbody_pair *args; /* --arg: button arguments, query or view params */
    size_t nargs;
    const struct callbody_pair *values; /* --value: form values, context answers */
    size_t nvalues;
    const char *const *attachments; /* --attachment URLs */
    size_t nattachments;
    const char *user_id, *user_name, *user_email; /* NULL: Cliq's sample user */
    const char *chat_id, *channel;                /* NULL: Cliq's sample channel */
    const struct callbody_pair *params;           /* --param PATH=VALUE, applied last */
    size_t nparams;
    const char *response_url; /* put in the body when the handler has one */
    long long now_ms;         /* epoch ms */
};

struct callbody_ctx; /* a builder's view of one call (callbody.c) */

struct callbody_handler {
    const char *type; /* "bot" */
    const char *key;  /* "message": the handler's short name, its key in the script */
    const char *wire; /* "message_handler": handler.type as Cliq sends it */
    int response_url; /* Cliq sends a response_url with it */
    unsigned common;  /* the common params objects it carries (callbody.c) */
    unsigned takes;   /* CALLBODY_TAKES_* */
    const char *help; /* what TEXT and the inputs mean, for --help */
    /* Adds the handler's own params. Returns 0, or -1 with the reason. */
    int (*build)(struct cJSON *params, const struct callbody_ctx *cx, char *err, size_t errlen);
};

/* The whole table, grouped by type; static storage. */
const struct callbody_handler *callbody_handlers(size_t *n);

/* The handler of `type` that `word` names: its short name ("message") or
 * wire name ("message_handler"). NULL if none. */
const struct callbody_handler *callbody_find(const char *type, const char *word);

/* The handler used when the command line names none (command and
 * messageaction: execution; widget: view; link_preview: unfurl), or NULL
 * when the type's handler must be named. */
const struct callbody_handler *callbody_default(const char *type);

/* Builds the body. Returns a new tree (caller frees with cJSON_Delete), or
 * NULL with a one-line reason in err (an input the handler needs is
 * missing, a --param path that cannot be set, ...). */
struct cJSON *callbody_build(const struct callbody_handler *h, const struct callbody_input *in,
                             char *err, size_t errlen);

/* Sets `path` (dot-separated keys; a number indexes an array, and the
 * array's length appends) under `root` to `value`, parsed as JSON when it
 * is valid JSON, else taken as a string. Missing objects are made on the
 * way. Returns 0, or -1 with the reason. */
int callbody_set_path(struct cJSON *root, const char *path, const char *value, char *err,
                      size_t errlen);

#endif
