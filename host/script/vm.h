/*
 * vm: the kernel of a worker's script runtime: its Lua state, the limits,
 * and the tasks (handler runs) with the wait-and-wake API that bindings use.
 *
 * Each worker owns one luavm; nothing in it is ever touched by another
 * thread. A handler runs as a coroutine with the request object as its
 * argument (a task). Bindings that wait (outbound HTTP, sleep,
 * req:respond) start their work on the worker's loop and yield; the loop
 * wakes the task when the work is done. Every task is held to three
 * limits: total run time, CPU time without yielding (a hook that pcall
 * cannot swallow, armed by a watchdog thread when the slice passes the
 * limit: once tripped it raises on every instruction until the task's
 * coroutine is dead) and the state's heap (a
 * capped allocator). A task that breaks one is stopped alone; the chat
 * user gets a reply that says so.
 *
 * This module builds no globals and opens no binding: sandbox.c builds
 * the globals, loader.c loads scripts, libs.c lists the bindings, and
 * luavm.c (the runtime's entry points) puts them together, as Lua's own
 * core opens no library and linit.c lists them. It holds what those share
 * (the snapshot served, the log context) and encodes replies with
 * bind_json, which never waits and sits below it.
 */
#ifndef CLIQHOST_VM_H
#define CLIQHOST_VM_H

#include "cliq/request.h"
#include "script/bind_log.h"

#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <stdio.h>

#include <lua.h>

struct cJSON;
struct config;
struct fetch;
struct mailbox;
struct outbox;
struct responder;
struct sched;
struct sched_timer;
struct store;
struct redis_conn;
struct luavm;
struct luavm_task;

struct scripts_hub;
struct scriptset;

struct luavm_options {
    const char *scripts_dir;
    /* Where scripts come from: the hub's current snapshot (see scriptset.h),
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
    size_t max_task_memory;  /* bytes one task may hold in it; 0: no cap of its own */
    long response_url_ttl_ms;
    long http_timeout_ms;
    size_t max_http_response;
    /* What scripts' outbound requests may reach although internal
     * (http_allow; see ssrf.h). Borrowed, like the other settings. */
    char *const *http_allow;
    size_t nhttp_allow;
    /* Where req:respond() and attachment:download() may go besides https to
     * Cliq's hosts (response_url_allow; see respond.h). Borrowed. */
    char *const *response_url_allow;
    size_t nresponse_url_allow;
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
    /* The host's store (store.h), shared by the workers; NULL where there
     * is none (store.* then raises). */
    struct store *store;
    /* The worker's connection to the store's Redis (store = redis://...);
     * NULL for SQLite. */
    struct redis_conn *redis;
};

enum luavm_limit { LIMIT_NONE, LIMIT_CPU, LIMIT_MEMORY, LIMIT_TIME };

struct luavm_result {
    int status; /* HTTP status: 200, or 404 (no script / no handler); a hook's own */
    char *body; /* the JSON reply for status 200, {"output": ...}; a hook's JSON
                 * body; NULL for a schedule's run; caller frees */
    size_t len;
    int failed;               /* the handler failed; body is the user-facing error reply */
    enum luavm_limit limit;   /* when failed because a limit stopped it */
    char error[512];          /* for 404: what was looked for; when failed: why (one line) */
    char traceback[2048];     /* when failed with one: the Lua traceback, cut to fit */
    int responded;            /* the handler called req:respond() */
    const char *response_url; /* the request's, or NULL; borrowed for the callback */
    double cpu_ms;            /* the task's slices of script code, summed */
    size_t peak_bytes;        /* the most it held, as seen when each slice ended */
};

/* A name and a value (a header, a query parameter). */
struct luavm_pair {
    const char *name;
    const char *value;
};

/* What a hook's script sees besides the body (type hook). Borrowed. */
struct luavm_hook {
    const char *method;
    const struct luavm_pair *headers; /* names in lower case */
    size_t nheaders;
    const struct luavm_pair *query;
    size_t nquery;
};

/* A schedule's run (type schedule). */
struct luavm_job {
    long long scheduled_ms; /* the tick, Unix ms */
    int catch_up;           /* the latest tick missed while no host ran */
};

/* Receives a task's event (one JSON object, len bytes; borrowed). */
typedef void (*luavm_note_fn)(void *ud, unsigned long long id, const char *json, size_t len);

/* What a handler run needs from the request. Borrowed for the call. */
struct luavm_call {
    const struct request_dispatch *d;
    const struct cJSON *json; /* the parsed body; a hook's may be NULL (not JSON) */
    const char *text;         /* the body's text, len bytes */
    size_t len;
    const char *req_id;
    long long received_ms; /* monotonic ms when the request arrived */
    /* For the host's tasks (d->type is request_type_hook or _schedule):
     * what their scripts get instead of a Cliq request. NULL otherwise. */
    const struct luavm_hook *hook;
    const struct luavm_job *job;
    /* What the task did, for the console's journal: called with `note_ud`,
     * `note_id` and one JSON object per event (a request, a post, a log
     * line). NULL: nobody records. */
    luavm_note_fn note;
    void *note_ud;
    unsigned long long note_id;
};

/* Called once when a task that did not finish at once ends. `res` is
 * borrowed for the call (take res->body by setting it to NULL). The task is
 * freed after the callback returns. */
typedef void (*luavm_done_cb)(struct luavm_task *t, struct luavm_result *res, void *ud);

/* Called for each scripts/lib module a top level requires: `parent` is the
 * script or module whose top level asked ("commands/a.lua", "lib/x.lua"),
 * `module` the module's entry ("lib/y.lua"). */
typedef void (*luavm_require_cb)(void *ud, const char *parent, const char *module);

/* ---- the state --------------------------------------------------------- */

/* Blocks of the Lua heap up to this size (with their tag) are kept by the
 * VM for reuse, in steps of 16 bytes. */
#define VM_SMALL_MAX     256
#define VM_SMALL_CLASSES (VM_SMALL_MAX / 16)
struct vm_small;
struct vm_chunk;

struct luavm {
    lua_State *L;
    struct luavm_options opt;
    char *scripts_dir; /* without a trailing slash */
    size_t mem;        /* bytes held by the Lua heap */
    /* Who holds the heap: entry 0 is the host and the scripts' modules
     * (and what a finished task left behind), each other one a task's. */
    struct vm_owner *owners;
    unsigned nowners;
    unsigned free_owner;         /* a free entry (its `next` chains the rest); 0: none */
    struct luavm_task *evicting; /* a waiting task to stop for memory; NULL: none */
    unsigned evicting_realm;     /* or a script to unload for memory (its realm entry) */
    unsigned evicting_realm_gen;
    /* Forgets the script's loaded version on this worker (the loader's). */
    void (*unload)(struct luavm *vm, const char *script);
    struct sched_timer *evict_timer;
    int over_budget;             /* the running task was refused for its own budget */
    unsigned load_owner;         /* the entry of a top level running; 0: none */
    unsigned kept_owner;         /* the entry of the top level that last ran */
    struct luavm_task *charging; /* the task a binding's answer is built for */
    /* Set by another thread when the host stops (luavm_stop_by): script
     * code still running then is stopped; 0: not stopping. */
    _Atomic long long stop_at;
    int stopping; /* the running code was stopped for that */
    /* For the watchdog (vm_watch): when the running slice passes its limit
     * (LLONG_MAX: it has none; 0: no slice), the worker's thread, and the
     * watchdog's list of workers. */
    _Atomic long long wd_deadline;
    pthread_t watch_tid;
    struct luavm *watch_next;
    /* The watchdog arms the limit hook when a slice passes its limit, so
     * no hook rests on the threads (any hook set slows every instruction).
     * 0: none watches (check, tests), and a count hook rests instead. */
    int watched;
    struct bind_log_ctx logctx;
    long long slice_start;      /* when the running script code was resumed; 0: none runs */
    enum luavm_limit kill;      /* a limit tripped in the running slice */
    struct luavm_task *current; /* the task whose code runs now */
    struct luavm_task *tasks;   /* every waiting task */
    size_t ntasks;
    void *refused_ptr; /* a refused allocation not yet retried (size 0: none) */
    size_t refused_size;
    int mem_exceeded; /* the running script holds more than the cap allows */
    /* Work done in C since the clock was last read (bytes allocated, bytes
     * scanned, items handled; see vm_charge), and the coroutine a script
     * resumed that runs now (NULL: the task's own, or the main thread). */
    size_t work;
    lua_State *running;

    /* Where scripts come from (see scriptset.h): a snapshot, held. NULL with
     * no hub: files are read from disk on first use. */
    struct scriptset *set;
    unsigned long long gen; /* the hub generation `set` came from */
    int fixed_set;          /* set by loader_use_set: never refreshed */
    luavm_require_cb require_cb;
    void *require_ud;
    const char *loading; /* the script or module whose top level runs, for require_cb */

    /* The heap's small blocks (vm.c, block_realloc): freed ones by size,
     * the chunks they are carved from, and what is left of the last. */
    struct vm_small *small[VM_SMALL_CLASSES];
    struct vm_chunk *chunks;
    char *carve, *carve_end;
};

/* What one owner holds of the heap. Each block of the heap carries its
 * owner's index and generation, so a block freed after its task ended is
 * given back to entry 0, not to the entry's next task. */
struct vm_owner {
    size_t bytes;
    unsigned gen;
    unsigned next; /* when free: the next free entry */
    /* A script's realm (its top level's entry, kept while the version is
     * loaded): `script` (malloc'd) names it; `bytes` is everything its code
     * made that is alive, `task_bytes` the part its running tasks hold. */
    char *script;
    size_t task_bytes;
};

/* One handler run (a task). */
struct luavm_task {
    struct luavm *vm;
    lua_State *co;
    int ref;                   /* registry reference that keeps co alive */
    int strings;               /* registry reference to its realm's string table, or LUA_NOREF */
    unsigned owner;            /* its entry in vm->owners: what it holds of the heap */
    unsigned realm, realm_gen; /* its script's realm entry (0: none) */
    struct request_dispatch d;
    char id[48];
    long long received_ms;
    char *response_url; /* NULL: the request has none */
    char api_base[64];  /* Cliq's API for the request's data centre */
    int responded;
    int waiting;              /* yielded inside a host binding */
    void (*cancel)(void *ud); /* stops what it waits for */
    void *cancel_ud;
    struct sched_timer *run_timer;
    luavm_done_cb done;
    void *done_ud;
    luavm_note_fn note; /* the journal's (luavm_call.note); NULL: none */
    void *note_ud;
    unsigned long long note_id;
    double cpu_ms;
    size_t peak_bytes;
    struct luavm_task *prev, *next; /* every waiting task */
};

/* Registry keys (by address) the runtime's files share. */
extern const char vm_key_scripts;      /* path -> handlers table, or error string */
extern const char vm_key_versions;     /* script path -> snapshot version */
extern const char vm_key_task_threads; /* weak set of handler coroutines */
extern const char vm_key_string_mt;    /* the strings' metatable */
extern const char vm_key_strings;      /* the pristine string library */

/* Creates the state with the allocator and the limit hook, and no globals
 * yet; borrows `o`'s strings for the lifetime of the luavm. Returns NULL
 * with a reason in err. Free with vm_free. */
struct luavm *vm_new(const struct luavm_options *o, char *err, size_t errlen);
/* Drops the tasks still waiting (without their callbacks), closes the
 * state and frees vm. NULL is fine. */
void vm_free(struct luavm *vm);
/* The luavm whose state (any of its threads) L is. */
struct luavm *vm_of_state(lua_State *L);

/* For C functions that loop (sandbox.c): raises, as the limit hook does,
 * when the running slice has used up max_cpu_ms (or a limit already
 * tripped). Call it every few thousand steps: the instruction hook never
 * runs inside a C function. */
void vm_check_cpu(lua_State *L);

/* Why a limit stopped code ("used more than 1000 ms of CPU without
 * pausing"), in out. Returns out. */
const char *vm_limit_reason(const struct luavm *vm, enum luavm_limit l, char *out, size_t n);

/* The watchdog: called on the worker's own thread, vm_watch has the
 * process's watchdog thread (started with the first) stop code that runs
 * past its limit, even in the middle of a long instruction, and takes the
 * resting count hook off the state's threads (no hook runs while code is
 * within its limit); vm_unwatch, before the thread ends, takes it off (and
 * stops the watchdog with the last) and puts the count hook back. */
void vm_watch(struct luavm *vm);
void vm_unwatch(struct luavm *vm);

/* Pushes the registry's table at `key` (by address), made on first use with
 * weak keys. [-0, +1] */
void vm_push_weak_table(lua_State *L, const void *key);

/* A script's realm entry: vm_realm_keep turns the top level that just ran
 * (in the slice that ended) into the realm of `script`, returning its entry
 * and generation (0: none ran); vm_realm_drop ends it when the version is
 * no longer loaded; vm_task_realm tells a task which realm it runs in. */
unsigned vm_realm_keep(struct luavm *vm, const char *script, unsigned *gen);
void vm_realm_drop(struct luavm *vm, unsigned realm, unsigned gen);
void vm_task_realm(struct luavm_task *t, unsigned realm, unsigned gen);

/* Bytes of the heap the task holds now. */
size_t vm_task_memory(const struct luavm_task *t);

/* Memory the host keeps outside the Lua heap on a task's behalf (a response
 * as it is received, with its transfer) counts as the task's: vm_hold takes
 * n bytes of what the worker's cap and the task's budget have left, or
 * returns -1 when they have not that much; vm_release gives back what was
 * taken, before the task ends. */
int vm_hold(struct luavm_task *t, size_t n);
/* What one outbound transfer holds outside the heap besides its body
 * (curl's handle and buffers, a TLS session): held with it. */
#define VM_TRANSFER_COST (16u * 1024)
void vm_release(struct luavm_task *t, size_t n);

/* Makes string methods ("x":upper()) those of the string table at `idx`
 * of vm->L (a realm's own, see sandbox.h), or the pristine library for 0,
 * until the slice ends. [-0, +0] */
void vm_use_strings(struct luavm *vm, int idx);

/* For C functions whose work grows with an argument (bytes scanned, items
 * handled) without allocating as it goes: adds `units` (about a byte's
 * worth of work each) to the slice's work and, once VM_WORK_CHECK have
 * gathered, reads the clock as vm_check_cpu does. Call it before the
 * work, so a loop of such calls is stopped at the first call past the
 * limit. Allocations are counted the same way by the state's allocator,
 * which (unable to raise) makes the hook stop the code at its next
 * instruction. */
#define VM_WORK_CHECK ((size_t)1 << 18)
void vm_charge(lua_State *L, size_t units);

/* lua_resume for coroutines a script resumes (the sandbox's coroutine
 * functions): the same, but while `co` runs a tripped limit is made to
 * stop it, not only the task's own coroutine. */
int vm_resume(lua_State *co, lua_State *from, int nargs, int *nresults);
/* lua_closethread (lua_resetthread before Lua 5.4.6) for coroutines a
 * script closes: their pending __close run on co, held to the limits as
 * vm_resume holds what it runs. co must be suspended or dead. */
int vm_close(lua_State *co, lua_State *from);

/* A slice of script code: the CPU clock starts, and vm_slice_end returns
 * the limit that stopped it (LIMIT_NONE: none). `failed`: the code ended
 * with an error. The end of a slice gives string methods back to the
 * pristine library. */
void vm_slice_begin(struct luavm *vm);
enum luavm_limit vm_slice_end(struct luavm *vm, int failed);

/* ---- running tasks (for luavm.c) ---------------------------------------- */

/* Hands an event of the task (one JSON object) to whoever records its
 * calls (luavm_call.note); nothing when nobody does. */
void vm_task_note(struct luavm_task *t, const char *json, size_t len);
/* Notes an outbound request of the task (kind "http", "post", "respond"):
 * method, URL (the journal masks its secrets), status (0: none), error
 * (NULL: none) and its ms. */
void vm_task_note_request(struct luavm_task *t, const char *kind, const char *method,
                          const char *url, long status, const char *error, double ms);
/* Milliseconds since t0 (CLOCK_MONOTONIC). */
double vm_ms_since(const struct timespec *t0);
/* Whether anyone records the task's events. */
int vm_task_noted(const struct luavm_task *t);

/* Resumes the task's coroutine with nargs values on it. Returns 1 when the
 * task ended (res filled), 0 when it waits again. */
int vm_task_run(struct luavm_task *t, int nargs, struct luavm_result *res);
/* Makes a task that waits after its first slice one of the vm's waiting
 * tasks, with its run-time limit armed. */
void vm_task_park(struct luavm_task *t);
/* Stops a parked task that nothing can wake (no loop): res gets the
 * failure `why`, and the task is freed. */
void vm_task_abandon(struct luavm_task *t, const char *why, struct luavm_result *res);
/* Frees a task that is not parked, and its coroutine. */
void vm_task_free(struct luavm_task *t);

/* Fills res with the reply the chat user sees when the handler failed. */
void vm_error_reply(struct luavm *vm, const struct request_dispatch *d, const char *req_id,
                    enum luavm_limit limit, struct luavm_result *res);
/* Logs a script failure: the message and, when there is one, the Lua
 * traceback, on one escaped line. */
void vm_log_failure(const char *req_id, const struct request_dispatch *d, const char *what,
                    enum luavm_limit limit, const char *msg, const char *traceback);
/* Copies the first line of msg into the result's error field. */
void vm_set_error(struct luavm_result *res, const char *msg);

/* ---- for bindings ------------------------------------------------------ */

/* The task whose handler coroutine is L. Raises a Lua error when L is not
 * a handler's own coroutine (code at a script's top level, or a coroutine
 * the script made): only there can the host wait. `what` names the call. */
struct luavm_task *vm_task_here(lua_State *L, const char *what);
/* The loop, HTTP client, responder and options of the task's worker. */
struct luavm *vm_of(const struct luavm_task *t);
const struct luavm_options *vm_options(const struct luavm *vm);
const char *vm_task_id(const struct luavm_task *t);
long long vm_task_received(const struct luavm_task *t);
/* Milliseconds the task may still run (its total run-time limit). */
long long vm_task_time_left(const struct luavm_task *t);
/* The Cliq API base for the request's data centre ("https://cliq.zoho.eu"),
 * from its params.environment; Cliq's US one when it names none. */
const char *vm_task_api_base(const struct luavm_task *t);
/* The request's response_url (NULL: none), and the one-use flag. */
const char *vm_task_response_url(const struct luavm_task *t);
int *vm_task_responded(struct luavm_task *t);

/* Yields the task's coroutine until vm_wake(). `cancel(ud)` stops the
 * awaited work if the task is stopped first (run-time limit, shutdown).
 * Use as `return vm_wait(L, t, cancel, ud);` in a lua_CFunction. */
int vm_wait(lua_State *L, struct luavm_task *t, void (*cancel)(void *), void *ud);
/* The task's coroutine, to push the results of the wait onto. */
lua_State *vm_task_thread(struct luavm_task *t);
/* Resumes a waiting task with the `nresults` values pushed onto its
 * thread (pushing must not allocate: nil, booleans, numbers, light
 * userdata). The task may finish (and be freed) inside this call. */
void vm_wake(struct luavm_task *t, int nresults);
/* Resumes a waiting task with the values push(L, ud) pushes and counts;
 * push runs in protected mode, so it may build tables and strings. If it
 * fails (out of memory) the task gets nil and a message instead. */
void vm_wake_with(struct luavm_task *t, int (*push)(lua_State *L, void *ud), void *ud);

#endif
