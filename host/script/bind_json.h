/*
 * bind_json: the `json` module scripts see, and the conversions the host
 * uses for request bodies and replies.
 *
 * Decoding is done by cJSON; the tree then becomes Lua values:
 *   object -> table marked as an object, array -> table marked as an array
 *             (the marks are metatables, so `[]` and `{}` keep their shape),
 *   string -> string, true/false -> boolean, null -> json.null,
 *   number -> integer when written without '.', 'e' or 'E' and it fits in
 *             64 bits, else float. cJSON keeps only a double, so the exact
 *             digits are read back from the JSON text (numbers appear in the
 *             text in the same order cJSON's tree holds them).
 *
 * Encoding writes straight into a capped buffer (no cJSON tree: cJSON's
 * numbers are doubles and would round integers past 2^53). A table marked
 * by json.array/json.object (or by decoding) keeps its mark; an unmarked
 * table is an array when its keys are exactly 1..n, an object when they are
 * all strings, and an error otherwise. An empty unmarked table is `{}`.
 * Floats keep a fraction part ("1.0") so they come back as floats. Strings
 * must be valid UTF-8. Errors name the path of the bad value
 * ("output.buttons[2].label: ...").
 */
#ifndef CLIQHOST_BIND_JSON_H
#define CLIQHOST_BIND_JSON_H

#include <lua.h>
#include <stddef.h>

struct buf;
struct cJSON;

/* Deeper nesting than this fails to encode (it also catches a table that
 * contains itself). */
#define BIND_JSON_MAX_DEPTH 200

/* Opens the module: creates the shared metatables and json.null in the
 * registry, and pushes the module table. [-0, +1] */
int bind_json_open(lua_State *L);

/* Pushes the Lua value of `item`, which was parsed from `text` (len bytes).
 * Raises only on memory errors, so call it in protected mode. [-0, +1] */
void bind_json_push_tree(lua_State *L, const struct cJSON *item, const char *text, size_t len);

#define BIND_JSON_BAD  (-1) /* a value JSON cannot carry */
#define BIND_JSON_FULL (-2) /* the text would pass the buffer's cap */

/* Appends the JSON for the value at `idx` to `out`. `root` names the value
 * in error messages. Returns 0, or BIND_JSON_BAD / BIND_JSON_FULL with the
 * path and reason in `err` (the buffer then holds a partial text). Never
 * raises for bad values; may raise on memory errors. [-0, +0] */
int bind_json_encode(lua_State *L, int idx, struct buf *out, const char *root, char *err,
                     size_t errlen);

/* Appends a handler's reply {"output": v} for the value at `idx`: a table
 * as JSON, a string s as {"text": s}, nil (or none) as "". Returns 0, or
 * BIND_JSON_BAD / BIND_JSON_FULL with the reason in `err`. [-0, +0] */
int bind_json_encode_output(lua_State *L, int idx, struct buf *out, char *err, size_t errlen);

/* Pushes a userdata owning an empty buf of at most `cap` bytes, freed when
 * the userdata is collected (or earlier with buf_free), so a Lua error
 * raised while it is filled cannot leak it. [-0, +1] */
struct buf *bind_json_push_buf(lua_State *L, size_t cap);

/* Pushes json.null. [-0, +1] */
void bind_json_push_null(lua_State *L);
/* Pushes a new table marked as a JSON object, with room for nrec keys.
 * [-0, +1] */
void bind_json_new_object(lua_State *L, int nrec);

/* Sets the function json.decode calls every few thousand values it builds
 * (the runtime's CPU limit check, which raises when the limit passed). */
void bind_json_set_check(lua_State *L, lua_CFunction check);

/* Whether the value at idx carries json's array or object marker (the
 * metatable json.decode, json.array and json.object give). [-0, +0] */
int bind_json_marked(lua_State *L, int idx);

#endif
