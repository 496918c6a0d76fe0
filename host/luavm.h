/*
 * luavm: one worker's Lua state, its sandbox and its scripts.
 *
 * Each worker owns one luavm; nothing in it is ever touched by another
 * thread. Scripts compile once (text chunks only) and are cached by path.
 * Each script and module runs in its own global table that falls back to a
 * shared sandbox built from an allow-list (DESIGN.md "Sandboxed by
 * allow-list"), so a global set by one script is not seen by another.
 * `require` finds Lua modules only under scripts/lib/ and the host's lualib/.
 *
 * A handler runs as a coroutine with the request object as its argument.
 */
#ifndef CLIQHOST_LUAVM_H
#define CLIQHOST_LUAVM_H

#include <stddef.h>
#include <stdio.h>

struct cJSON;
struct request_dispatch;
struct luavm;

struct luavm_options {
    const char *scripts_dir;
    const char *lualib_dir;  /* NULL: no shipped modules */
    char *const *script_env; /* names os.getenv may read */
    size_t nscript_env;
    size_t max_script_bytes;
    size_t max_reply_bytes;
    const char *error_reply; /* what the user sees on failure; "{id}" is replaced */
};

/* Creates a state with the sandbox. Borrows `o`'s strings for the lifetime
 * of the luavm. Returns NULL with a reason in err. Caller frees. */
struct luavm *luavm_new(const struct luavm_options *o, char *err, size_t errlen);
void luavm_free(struct luavm *vm);

/* Bytes the state's heap holds now. */
size_t luavm_memory(const struct luavm *vm);

struct luavm_result {
    int status; /* HTTP status: 200, or 404 (no script / no handler) */
    char *body; /* the JSON reply for status 200; caller frees */
    size_t len;
    int failed;      /* the handler failed; body is the user-facing error reply */
    char error[512]; /* for 404: what was looked for; when failed: why (one line) */
};

/* Runs the handler `d` names for the request parsed into `json` from `text`
 * (len bytes). Logs any script failure with its traceback under `req_id`.
 * Always fills `res`. */
void luavm_run(struct luavm *vm, const struct request_dispatch *d, const struct cJSON *json,
               const char *text, size_t len, const char *req_id, struct luavm_result *res);

/* Loads every script under the scripts folder as the host would and
 * compiles every module under scripts/lib. Each problem is written to
 * `out` as "file:line: message". Returns the number of problems; the
 * number of scripts loaded goes to *loaded when not NULL. */
int luavm_check_all(struct luavm *vm, FILE *out, int *loaded);

#endif
