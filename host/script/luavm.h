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
 * A handler runs as a coroutine with the request object as its argument
 * (a task). Bindings that wait (outbound HTTP, sleep, req:respond) start
 * their work on the worker's loop and yield; the loop wakes the task when
 * the work is done. Every task is held to three limits: total run time,
 * CPU time without yielding (an instruction-count hook that pcall cannot
 * swallow: once tripped it raises on every instruction until the task's
 * coroutine is dead) and the state's heap (a capped allocator). A task that
 * breaks one is stopped alone; the chat user gets a reply that says so.
 */
#ifndef CLIQHOST_LUAVM_H
#define CLIQHOST_LUAVM_H

#include <stddef.h>
#include <stdio.h>

#include <lua.h>

struct cJSON;
struct config;
struct fetch;
struct mailbox;
struct outbox;
struct request_dispatch;
struct responder;
struct sched;
struct luavm;
struct luavm_task;

struct scripts_hub;
struct scriptset;

struct luavm_options {
    const char *scripts_dir;
    /* Where scripts come from: the hub's current snapshot (see reload.h),
     * refreshed at each request. NULL: files are read on first use and
     * kept (unit tests). */
    struct scripts_hub *scripts;
    const char *lualib_dir;  /* NULL: no shipped modules */
    char *const *script_env; /* names os.getenv may read */
    size_t nscript_env;
    size_t max_script_bytes;
    size_t max_reply_bytes;
    const char *error_reply; /* what the user sees on failure; "{id}" is replaced */
    const char *limit_reply; /* ... when a limit stopped it; "{reason}" and "{id}" */
    long max_run_ms;         /* total run time of a handler; 0: none */
    long max_cpu_ms;         /* CPU time without yielding; 0: none */
    size_t max_memory;       /* bytes the Lua heap may hold; 0: no cap */
    long response_url_ttl_ms;
    long http_timeout_ms;
    size_t max_http_response;
    /* What scripts' outbound requests may reach although internal
     * (http_allow; see ssrf.h). Borrowed, like the other settings. */
    char *const *http_allow;
    size_t nhttp_allow;
    long attachment_ttl_ms;
    size_t max_attachment;
    /* The worker's loop, outbound HTTP and late-reply delivery; NULL for
     * `check` and unit tests, where waiting bindings raise an error. */
    struct sched *sched;
    struct fetch *fetch;
    struct responder *responder;
    /* Posts to Cliq's webhook endpoints: the settings (tokens, cliq_api),
     * the process's outbox and the worker's mailbox for its answers. NULL
     * where there are none (cliq.* then raises). */
    const struct config *cfg;
    struct outbox *outbox;
    struct mailbox *mailbox;
};

/* Creates a state with the sandbox. Borrows `o`'s strings for the lifetime
 * of the luavm. Returns NULL with a reason in err. Caller frees. */
struct luavm *luavm_new(const struct luavm_options *o, char *err, size_t errlen);
void luavm_free(struct luavm *vm);
/* New settings (SIGHUP): limits, replies, tokens. The worker's own parts
 * (loop, fetch, responder, outbox, mailbox, hub), the scripts folder and
 * script_env (built into the sandbox) stay as they are. */
void luavm_set_options(struct luavm *vm, const struct luavm_options *o);

/* Bytes the state's heap holds now. */
size_t luavm_memory(const struct luavm *vm);

enum luavm_limit { LIMIT_NONE, LIMIT_CPU, LIMIT_MEMORY, LIMIT_TIME };

struct luavm_result {
    int status; /* HTTP status: 200, or 404 (no script / no handler) */
    char *body; /* the JSON reply for status 200, {"output": ...}; caller frees */
    size_t len;
    int failed;               /* the handler failed; body is the user-facing error reply */
    enum luavm_limit limit;   /* when failed because a limit stopped it */
    char error[512];          /* for 404: what was looked for; when failed: why (one line) */
    int responded;            /* the handler called req:respond() */
    const char *response_url; /* the request's, or NULL; borrowed for the callback */
};

/* What a handler run needs from the request. Borrowed for the call. */
struct luavm_call {
    const struct request_dispatch *d;
    const struct cJSON *json; /* the parsed body */
    const char *text;         /* the body's text, len bytes */
    size_t len;
    const char *req_id;
    long long received_ms; /* monotonic ms when the request arrived */
};

/* Called once when a task that did not finish at once ends. `res` is
 * borrowed for the call (take res->body by setting it to NULL). The task is
 * freed after the callback returns. */
typedef void (*luavm_done_cb)(struct luavm_task *t, struct luavm_result *res, void *ud);

/* Starts the handler `c->d` names. Logs any script failure with its
 * traceback. Returns 1 when the handler finished at once (`res` filled), or
 * 0 when it is waiting: *task is set, and `done` will be called exactly once
 * from the loop (unless the luavm is freed first). */
int luavm_start(struct luavm *vm, const struct luavm_call *c, struct luavm_result *res,
                struct luavm_task **task, luavm_done_cb done, void *ud);

/* Runs a handler that must finish without waiting (tests): as luavm_start,
 * but a handler that waits is reported as a failure. Always fills `res`. */
void luavm_run(struct luavm *vm, const struct request_dispatch *d, const struct cJSON *json,
               const char *text, size_t len, const char *req_id, struct luavm_result *res);

/* Tasks waiting now. */
size_t luavm_tasks(const struct luavm *vm);

/* ---- for bindings ------------------------------------------------------ */

/* The task whose handler coroutine is L. Raises a Lua error when L is not
 * a handler's own coroutine (code at a script's top level, or a coroutine
 * the script made): only there can the host wait. `what` names the call. */
struct luavm_task *luavm_task_here(lua_State *L, const char *what);
/* The loop, HTTP client, responder and options of the task's worker. */
struct luavm *luavm_of(const struct luavm_task *t);
const struct luavm_options *luavm_options(const struct luavm *vm);
const char *luavm_task_id(const struct luavm_task *t);
long long luavm_task_received(const struct luavm_task *t);
/* Milliseconds the task may still run (its total run-time limit). */
long long luavm_task_time_left(const struct luavm_task *t);
/* The Cliq API base for the request's data centre ("https://cliq.zoho.eu"),
 * from its params.environment; Cliq's US one when it names none. */
const char *luavm_task_api_base(const struct luavm_task *t);
/* The request's response_url (NULL: none), and the one-use flag. */
const char *luavm_task_response_url(const struct luavm_task *t);
int *luavm_task_responded(struct luavm_task *t);

/* Yields the task's coroutine until luavm_wake(). `cancel(ud)` stops the
 * awaited work if the task is stopped first (run-time limit, shutdown).
 * Use as `return luavm_wait(L, t, cancel, ud);` in a lua_CFunction. */
int luavm_wait(lua_State *L, struct luavm_task *t, void (*cancel)(void *), void *ud);
/* The task's coroutine, to push the results of the wait onto. */
lua_State *luavm_task_thread(struct luavm_task *t);
/* Resumes a waiting task with the `nresults` values pushed onto its
 * thread (pushing must not allocate: nil, booleans, numbers, light
 * userdata). The task may finish (and be freed) inside this call. */
void luavm_wake(struct luavm_task *t, int nresults);
/* Resumes a waiting task with the values push(L, ud) pushes and counts;
 * push runs in protected mode, so it may build tables and strings. If it
 * fails (out of memory) the task gets nil and a message instead. */
void luavm_wake_with(struct luavm_task *t, int (*push)(lua_State *L, void *ud), void *ud);

/* ---- for the reloader -------------------------------------------------- */

/* Serves scripts and modules from this fixed snapshot (held until the next
 * call or luavm_free), instead of the options' hub. */
void luavm_use_scriptset(struct luavm *vm, struct scriptset *set);

/* Called for each scripts/lib module a top level requires: `parent` is the
 * script or module whose top level asked ("commands/a.lua", "lib/x.lua"),
 * `module` the module's entry ("lib/y.lua"). */
typedef void (*luavm_require_cb)(void *ud, const char *parent, const char *module);

/* Compiles `src` as the script `rel`, runs its top level (held to the
 * limits) and checks it returns a table of functions, in a fresh module
 * cache, as a worker would. Handler names are written to `keys` (joined
 * by ", ", may be NULL). Returns 0, or -1 with "file:line: message" in
 * err. */
int luavm_validate(struct luavm *vm, const char *rel, const char *src, size_t len,
                   luavm_require_cb cb, void *ud, char *keys, size_t keyslen, char *err,
                   size_t errlen);
/* Compiles a module's text without running it. Returns 0 or -1 with the
 * message in err. */
int luavm_compile_only(struct luavm *vm, const char *rel, const char *src, size_t len, char *err,
                       size_t errlen);

#endif
