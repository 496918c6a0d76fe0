/*
 * request: decodes a Cliq call and decides which script and handler run it.
 *
 * Cliq's body names the component (`type`, `name` or, for bots, `unique_name`)
 * and the handler (`handler.type`, or in the 2019 format a plain string in
 * `handler`, with `handler_name` for bot menu actions). The catalogue below
 * lists every (type, wire handler) pair of docs/cliq-formats.md §2 with
 * the handler's short name used as the key in the script's table. A handler
 * of a known type that is not in the catalogue still dispatches (its wire
 * name without "_handler"), so a handler Cliq adds later needs no new host.
 */
#ifndef CLIQHOST_REQUEST_H
#define CLIQHOST_REQUEST_H

#include <stddef.h>

struct cJSON;

/* What the chat user is shown when the handler fails: each handler type
 * expects its own reply shape. */
enum request_error_reply {
    ERROR_REPLY_TEXT,   /* a message: {"text": ...} */
    ERROR_REPLY_BANNER, /* {"type":"banner","status":"failure","text":...} */
    ERROR_REPLY_STATUS, /* extension handlers: {"status":500,"title":...,"message":...} */
    ERROR_REPLY_EMPTY,  /* nothing the user would see: "" */
};

struct request_catalogue_entry {
    const char *type; /* request "type" */
    const char *wire; /* handler.type as Cliq sends it */
    const char *key;  /* the handler's key in the script's table */
    int response_url; /* Cliq sends a response_url for it */
    enum request_error_reply error_reply;
};

/* The whole catalogue; static storage. */
const struct request_catalogue_entry *request_catalogue(size_t *n);

/* The request types, in the order of DESIGN.md's table, then the host's
 * own tasks (schedule, hook). NULL-terminated. */
extern const char *const request_types[];
/* The tasks' types: a scheduled script (scripts/schedules/, key "run") and
 * another tool's webhook (scripts/hooks/, key "receive"). A dispatch's type
 * is one of these pointers for a task. */
extern const char request_type_schedule[];
extern const char request_type_hook[];
/* 1 when `type` (a pointer from request_types) is a task's. */
int request_is_task(const char *type);
/* The scripts folder entry for a type: "commands/" (one file per component)
 * or "extension.lua" (one file for the type). NULL for an unknown type. */
const char *request_type_path(const char *type, int *per_component);

#define REQUEST_NAME_MAX    128
#define REQUEST_HANDLER_MAX 64
#define REQUEST_SCRIPT_MAX  (REQUEST_NAME_MAX + 32)

struct request_dispatch {
    const char *type;                            /* static: one of request_types */
    char name[REQUEST_NAME_MAX + 1];             /* component; "" for single-file types */
    char wire[REQUEST_HANDLER_MAX + 1];          /* handler as on the wire */
    char key[REQUEST_HANDLER_MAX + 1];           /* handler key in the script */
    char action[REQUEST_NAME_MAX + 1];           /* bot menu action name, or "" */
    char script[REQUEST_SCRIPT_MAX + 1];         /* path under the scripts folder */
    const struct request_catalogue_entry *entry; /* NULL if not catalogued */
};

/* Maps (type, wire handler, name) to a dispatch. Returns 0, or -1 with the
 * reason in `err` (unknown type, bad or missing name, bad handler). */
int request_map(const char *type, const char *wire, const char *name, struct request_dispatch *d,
                char *err, size_t errlen);

/* The longest schedule or hook name. */
#define REQUEST_TASK_NAME_MAX 64
/* A task's dispatch: type "schedule" or "hook" (any spelling equal to
 * those), name [A-Za-z0-9_-]{1,64}. Returns 0, or -1 with the reason. */
int request_map_task(const char *type, const char *name, struct request_dispatch *d, char *err,
                     size_t errlen);

/* Marks request_parse leaves on a number node's type, above the bits cJSON
 * reads (cJSON_IsNumber and every cJSON function look at type & 0xFF or at
 * their own flags): what the number's token was, so that its Lua value
 * needs no second look at the text. A number with neither (an integer of
 * 16 digits or more, or any number cJSON itself parsed) must be read again
 * from the text. */
#define REQUEST_NUMBER_INTEGER (1 << 12) /* no '.', 'e', 'E'; at most 15 digits */
#define REQUEST_NUMBER_FLOAT   (1 << 13) /* a fraction or an exponent */

/* Parses `text` (len bytes) exactly as cJSON_ParseWithLengthOpts(text,
 * len, end, 0) does: the same tree node for node, the same *end (when end
 * is not NULL), NULL where cJSON fails; faster on what Cliq sends, and
 * cJSON's own answer on anything else. Caller frees with cJSON_Delete. */
struct cJSON *request_parse(const char *text, size_t len, const char **end);

/* Parses `body` (len bytes; body[len] must be '\0') and fills `d`. On
 * success *json is the parsed tree (caller frees with cJSON_Delete, or by
 * closing the arena it was parsed in; see arena.h) and 0 is returned. A body that is not a JSON
 * object or lacks what dispatch needs returns -1 with the reason in `err` (the 400 answer). */
int request_decode(const char *body, size_t len, struct cJSON **json, struct request_dispatch *d,
                   char *err, size_t errlen);

/* Builds the reply {"output": ...} that shows `text` to the chat user in the
 * shape the handler `d` answers with (a message, a banner, an extension
 * status, or "" where the user sees nothing); `failure` picks the failure
 * form of banners and statuses. An empty text gives {"output":""}. Invalid
 * UTF-8 in text is replaced. Returns the text (caller frees); can't fail. */
char *request_text_reply(const struct request_dispatch *d, const char *text, int failure,
                         size_t *len);

/* The handler keys a script of `type` may define, comma-separated, for
 * messages ("execution, suggestion"). Static storage. */
const char *request_keys_for_type(const char *type);
/* 1 if `key` is a catalogued handler key for `type`. */
int request_key_known(const char *type, const char *key);

#endif
