/*
 * bind_log: the `log` module, `print` and `warn` for scripts.
 *
 * log.debug/info/warn/error(...) and print(...) write one host log line
 * tagged with the current request id and script. Arguments are joined with
 * spaces; tables are written as JSON when they can be, so log.info(req.params)
 * shows the data. Newlines and control characters are escaped, so a script
 * can never forge a log line.
 */
#ifndef CLIQHOST_BIND_LOG_H
#define CLIQHOST_BIND_LOG_H

#include <lua.h>

/* What the lines are tagged with; the runtime updates it before
 * running each piece of script code. */
struct bind_log_ctx {
    char req_id[48];  /* "" outside a request */
    char script[192]; /* the script being run, relative to the scripts folder */
    /* Where the running task's lines go besides the log (its journal):
     * note(note_ud, one JSON object, its length); NULL: nowhere. */
    void (*note)(void *ud, const char *json, size_t len);
    void *note_ud;
};

/* Pushes the log module; its functions keep a pointer to ctx, which must
 * outlive the state. Also sets print and warn (Lua's, as a warn line) in
 * the table at `env_idx`. [-0, +1] */
int bind_log_open(lua_State *L, struct bind_log_ctx *ctx, int env_idx);

#endif
