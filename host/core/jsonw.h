/*
 * jsonw: writing JSON text into a capped buffer, without Lua.
 *
 * The Lua encoder (bind_json) and the host's own replies (error bodies,
 * health) share this, so every string the host sends is escaped one way.
 */
#ifndef CLIQHOST_JSONW_H
#define CLIQHOST_JSONW_H

#include <stddef.h>

struct buf;

#define JSONW_FULL     (-1) /* the buffer's cap was reached */
#define JSONW_BAD_UTF8 (-2) /* invalid UTF-8 in strict mode */

#define JSONW_STRICT  0
#define JSONW_REPLACE 1 /* write invalid UTF-8 bytes as U+FFFD */

/* Appends s (n bytes) as a quoted JSON string. Returns 0, JSONW_FULL, or in
 * strict mode JSONW_BAD_UTF8 with the offending byte's offset in *bad_at. */
int jsonw_string(struct buf *b, const char *s, size_t n, int mode, size_t *bad_at);

/* Builds {"error": msg, "request_id": id} (both escaped). Returns the text
 * (caller frees) and its length in *len. Can't fail. */
char *jsonw_error_body(const char *msg, const char *req_id, size_t *len);

#endif
