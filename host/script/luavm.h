/*
 * luavm: one worker's script runtime, put together: a Lua state with its
 * limits (vm.h), the sandbox (sandbox.h) with the host's bindings
 * (libs.h), and the scripts it has loaded (loader.h). The server makes
 * one per worker and runs each call's handler with luavm_start; `check`
 * and the reloader make one to validate scripts (loader.h); unit tests run
 * handlers with luavm_run. The types (struct luavm_options,
 * luavm_result, luavm_call, ...) are in vm.h.
 *
 * Scripts come from the hub's current snapshot (scriptset.h), refreshed at
 * each request, or from disk when there is no hub.
 */
#ifndef CLIQHOST_LUAVM_H
#define CLIQHOST_LUAVM_H

#include "script/vm.h"

#include <stddef.h>

/* Creates a state with the sandbox. Borrows `o`'s strings for the lifetime
 * of the luavm. Returns NULL with a reason in err. Free with luavm_free. */
struct luavm *luavm_new(const struct luavm_options *o, char *err, size_t errlen);
/* Drops the tasks still waiting (without their callbacks) and frees vm.
 * NULL is fine. */
void luavm_free(struct luavm *vm);
/* New settings (SIGHUP): limits, replies, tokens. The worker's own parts
 * (loop, fetch, responder, outbox, mailbox, hub), the scripts folder and
 * script_env (built into the sandbox) stay as they are. */
void luavm_set_options(struct luavm *vm, const struct luavm_options *o);

/* Bytes the state's heap holds now. */
size_t luavm_memory(const struct luavm *vm);

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

struct schedspec;
/* Loads the schedule script `rel` ("schedules/standup.lua") from the
 * current snapshot, as a run would, and reads when it runs (schedspec.h).
 * Returns 0 with *out filled (schedspec_clear it), -ENOENT when there is no
 * such script, or -1 with the reason in err. */
int luavm_schedule_spec(struct luavm *vm, const char *rel, struct schedspec *out, char *err,
                        size_t errlen);

/* Tasks waiting now. */
size_t luavm_tasks(const struct luavm *vm);

/* The host is stopping: script code still running at `at_ms` (sched_clock_ms
 * time) is stopped then, like a handler past its run time. The one call
 * that may come from another thread than the worker's. */
void luavm_stop_by(struct luavm *vm, long long at_ms);

/* On the worker's thread, when it starts and before it ends: a watchdog
 * thread stops script code that passes its limit (even in the middle of a
 * long instruction, at the next one), and no hook slows code within its
 * limit (see vm_watch). */
void luavm_watch(struct luavm *vm);
void luavm_unwatch(struct luavm *vm);

#endif
