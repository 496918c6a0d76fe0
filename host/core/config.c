/* config: settings from defaults, the Lua config file and flags (see config.h). */
#include "core/config.h"

#include "core/base64.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ssrf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

enum setting_type {
    SET_STR,  /* char * */
    SET_INT,  /* long, within [min, max] */
    SET_LIST, /* char ** and a size_t count right after it */
    SET_BOOL, /* long 0/1; a flag without a value */
};

struct setting {
    const char *key;  /* config file global; NULL: flag only */
    const char *flag; /* without the dashes; NULL: config only */
    enum setting_type type;
    size_t offset;
    const char *def; /* parsed like a flag value; NULL: unset */
    long min, max;
    const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct setting settings[] = {
    {"listen", "listen", SET_STR, OFF(listen), "127.0.0.1:8080", 0, 0,
     "address and port to serve on (port 0: any free port)"},
    {"callback_path", "callback-path", SET_STR, OFF(callback_path), "/", 0, 0,
     "the path Cliq POSTs to: / or, behind a proxy that forwards a path, that path (/cliq)"},
    {"scripts", "scripts", SET_STR, OFF(scripts), "scripts", 0, 0, "folder of handler scripts"},
    {"keys", "key", SET_LIST, OFF(keys), NULL, 0, 0,
     "Cliq public key (base64 as on the extension page, or a file); repeat for rotation"},
    {"deadline_ms", "deadline", SET_INT, OFF(deadline_ms), "4500", 100, 60000,
     "sync reply deadline in ms (Cliq waits 5 s)"},
    {"workers", "workers", SET_INT, OFF(workers), "0", 0, 256, "worker threads (0: one per core)"},
    {"lualib", "lualib", SET_STR, OFF(lualib), NULL, 0, 0,
     "folder of Lua modules shipped with the host (default: found beside the binary)"},
    {"script_env", "script-env", SET_LIST, OFF(script_env), NULL, 0, 0,
     "environment variable scripts may read with os.getenv; repeatable"},
    {"max_body_bytes", "max-body-bytes", SET_INT, OFF(max_body_bytes), "262144", 1024,
     64L * 1024 * 1024, "largest request body accepted (413 beyond; Cliq's are a few KB)"},
    {"pending_body_bytes", "pending-body-bytes", SET_INT, OFF(pending_body_bytes), "16777216",
     65536, 4L * 1024 * 1024 * 1024,
     "bytes of request bodies held before their signature is checked, summed over every "
     "connection (503 beyond)"},
    {"max_reply_bytes", "max-reply-bytes", SET_INT, OFF(max_reply_bytes), "1048576", 1024,
     64L * 1024 * 1024, "largest reply a handler may produce"},
    {"max_script_bytes", "max-script-bytes", SET_INT, OFF(max_script_bytes), "1048576", 1024,
     64L * 1024 * 1024, "largest script or module file loaded"},
    {"max_connections", "max-connections", SET_INT, OFF(max_connections), "4096", 1, 1000000,
     "open connections per worker"},
    {"connection_memory_bytes", "connection-memory-bytes", SET_INT, OFF(connection_memory_bytes),
     "8192", 4096, 1024L * 1024,
     "buffer per connection for the request line, headers and I/O (431 when headers pass it)"},
    {"max_connections_per_ip", "max-connections-per-ip", SET_INT, OFF(max_connections_per_ip),
     "1024", 0, 1000000,
     "open connections per worker from one address (0: no limit; behind a proxy on this machine "
     "every caller is one address)"},
    {"request_timeout_s", "request-timeout", SET_INT, OFF(request_timeout_s), "30", 1, 3600,
     "seconds a connection has to send a whole request (headers and body), from its start or "
     "its last reply; a slow client is cut"},
    {"idle_timeout_s", "idle-timeout", SET_INT, OFF(idle_timeout_s), "60", 1, 3600,
     "seconds before an idle connection is closed"},
    {"error_reply", "error-reply", SET_STR, OFF(error_reply),
     "Sorry, something went wrong while handling this. (request {id})", 0, 0,
     "what the chat user sees when a handler fails; {id} is the request id"},
    {"limit_reply", "limit-reply", SET_STR, OFF(limit_reply),
     "Sorry, this was stopped because it {reason}. (request {id})", 0, 0,
     "what the chat user sees when a handler breaks a limit; {reason} says which"},
    {"interim_reply", "interim-reply", SET_STR, OFF(interim_reply), "Working on it\xe2\x80\xa6", 0,
     0, "sync reply at the deadline while the handler runs on (\"\": empty reply)"},
    {"response_url_ttl_s", "response-url-ttl", SET_INT, OFF(response_url_ttl_s), "120", 1, 3600,
     "seconds a request's response_url stays valid after it arrived"},
    {"max_run_ms", "max-run", SET_INT, OFF(max_run_ms), "120000", 100, 3600000,
     "total run time of a handler in ms, waiting included"},
    {"max_handlers", "max-handlers", SET_INT, OFF(max_handlers), "10000", 1, 1000000,
     "handlers that may wait at once per worker (503 beyond)"},
    {"max_cpu_ms", "max-cpu", SET_INT, OFF(max_cpu_ms), "1000", 10, 600000,
     "CPU time in ms a handler may use without yielding"},
    {"max_memory_bytes", "max-memory-bytes", SET_INT, OFF(max_memory_bytes), "67108864",
     4L * 1024 * 1024, 64L * 1024 * 1024 * 1024, "Lua heap of a worker's scripts"},
    {"max_handler_memory_bytes", "max-handler-memory-bytes", SET_INT, OFF(max_handler_memory_bytes),
     "33554432", 1024L * 1024, 64L * 1024 * 1024 * 1024,
     "memory one handler may hold (at most max_memory_bytes)"},
    {"http_timeout_ms", "http-timeout", SET_INT, OFF(http_timeout_ms), "10000", 1, 3600000,
     "default timeout of http.request in ms"},
    {"max_http_response_bytes", "max-http-response-bytes", SET_INT, OFF(max_http_response_bytes),
     "8388608", 1024, 1024L * 1024 * 1024, "largest response body http.request accepts"},
    {"http_allow", "http-allow", SET_LIST, OFF(http_allow), NULL, 0, 0,
     "address, CIDR block or host name scripts' http.request may reach although internal; "
     "repeatable"},
    {"response_url_allow", "response-url-allow", SET_LIST, OFF(response_url_allow), NULL, 0, 0,
     "address, CIDR block or host name a call's response_url and attachment URLs may point at, "
     "by http or https, besides https to Cliq's own hosts; repeatable"},
    {"attachment_ttl_s", "attachment-ttl", SET_INT, OFF(attachment_ttl_s), "60", 1, 3600,
     "seconds after a request that its attachments can be downloaded"},
    {"max_attachment_bytes", "max-attachment-bytes", SET_INT, OFF(max_attachment_bytes), "16777216",
     1024, 1024L * 1024 * 1024, "largest attachment download"},
    {"replay_window_s", "replay-window", SET_INT, OFF(replay_window_s), "300", 0, 86400,
     "seconds a call's timestamp may be from this host's clock; repeats within it are refused "
     "(0: no replay checks)"},
    {"replay_memory", "replay-memory", SET_INT, OFF(replay_memory), "100000", 0, 100000000,
     "signatures remembered to refuse repeats (0: check timestamps only)"},
    {"hook_id_memory", "hook-id-memory", SET_INT, OFF(hook_id_memory), "100000", 1, 100000000,
     "webhook ids (standard-webhooks hooks) remembered for a day, to drop repeated deliveries"},
    {"shutdown_grace_s", "shutdown-grace", SET_INT, OFF(shutdown_grace_s), "10", 0, 3600,
     "on SIGTERM, seconds running handlers and late replies get to finish"},
    {"reload_settle_ms", "reload-settle", SET_INT, OFF(reload_settle_ms), "10", 0, 10000,
     "ms a burst of script edits must be quiet before they are reloaded (0: no live reload)"},
    {"status_access", "status-access", SET_STR, OFF(status_access), "loopback", 0, 0,
     "who may GET /status: loopback, any or off"},
    {"console", "console", SET_STR, OFF(console), "loopback", 0, 0,
     "the browser console at /console: loopback (loopback clients only) or off"},
    {"journal_calls", "journal-calls", SET_INT, OFF(journal_calls), "200", 0, 100000,
     "calls the console's journal keeps in memory (0: no journal)"},
    {"journal_entry_bytes", "journal-entry-bytes", SET_INT, OFF(journal_entry_bytes), "65536", 1024,
     16L * 1024 * 1024,
     "bytes one journal entry may hold (body, replies, events); past it the entry is cut"},
    {"log_level", "log-level", SET_STR, OFF(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"log_format", "log-format", SET_STR, OFF(log_format), "text", 0, 0,
     "text, or json: one JSON object per line"},
    {NULL, "no-verify", SET_BOOL, OFF(no_verify), "0", 0, 1,
     "DEVELOPMENT ONLY: skip signature checks (loopback addresses only)"},
    {"data_dir", "data-dir", SET_STR, OFF(data_dir), "data", 0, 0,
     "folder for the host's own state"},
    {"store", "store", SET_STR, OFF(store), "sqlite", 0, 0,
     "where scripts' store keeps its keys: sqlite (data_dir/store.db), or a Redis that several "
     "hosts share: redis://[[user]:password@]host[:port][/db] or unix:/path[?db=N] (restart to "
     "change)"},
    {"redis_timeout_ms", "redis-timeout-ms", SET_INT, OFF(redis_timeout_ms), "250", 1, 60000,
     "ms a Redis command may take before it fails (\"store unavailable\"), and a replay check or "
     "pacing falls back to this host's memory"},
    {"redis_prefix", "redis-prefix", SET_STR, OFF(redis_prefix), "cliqhost:", 0, 0,
     "what the host's keys in Redis start with (hosts that act as one share it; restart to "
     "change)"},
    {"store_max_value_bytes", "store-max-value-bytes", SET_INT, OFF(store_max_value_bytes),
     "262144", 64, 64L * 1024 * 1024,
     "largest value (its JSON) a script may keep in the store (\"value too large\" beyond)"},
    {"store_max_keys", "store-max-keys", SET_INT, OFF(store_max_keys), "100000", 1, 100000000,
     "keys the store holds, for all scripts of the host (\"store full\" beyond)"},
    {"cliq_api", "cliq-api", SET_STR, OFF(cliq_api), NULL, 0, 0,
     "base URL of Cliq's API (default: follow the data centre)"},
    {"post_rate_per_min", "post-rate", SET_INT, OFF(post_rate_per_min), "40", 0, 100000,
     "posts per minute per webhook token (Cliq locks past 50; 0: no pacing)"},
    {"post_concurrency", "post-concurrency", SET_INT, OFF(post_concurrency), "64", 1, 10000,
     "posts sent to Cliq at once, and connections to Cliq kept open between them"},
    {"post_max_age_s", "post-max-age", SET_INT, OFF(post_max_age_s), "86400", 10, 30L * 86400,
     "seconds a post may wait for delivery before it fails for good"},
    {"outbox_max_post_bytes", "outbox-max-post-bytes", SET_INT, OFF(outbox_max_post_bytes), "65536",
     1024, 1024L * 1024,
     "largest post (its JSON body) the outbox takes (Cliq's messages are a few KB)"},
    {"outbox_max_queued", "outbox-max-queued", SET_INT, OFF(outbox_max_queued), "10000", 1, 1000000,
     "posts the outbox holds, waiting or failed (\"outbox full\" beyond)"},
    {"outbox_max_queued_bytes", "outbox-max-queued-bytes", SET_INT, OFF(outbox_max_queued_bytes),
     "33554432", 1024, 4L * 1024 * 1024 * 1024,
     "bytes of posts the outbox holds, waiting or failed (\"outbox full\" beyond)"},
    {"outbox_max_queued_per_token", "outbox-max-queued-per-token", SET_INT,
     OFF(outbox_max_queued_per_token), "1000", 1, 1000000,
     "posts waiting for delivery with one webhook token (\"outbox full\" beyond)"},
    {"outbox_max_queued_bytes_per_token", "outbox-max-queued-bytes-per-token", SET_INT,
     OFF(outbox_max_queued_bytes_per_token), "8388608", 1024, 4L * 1024 * 1024 * 1024,
     "bytes of posts waiting for delivery with one webhook token (\"outbox full\" beyond)"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* SET_LIST relies on each list's count following its pointer. */
_Static_assert(offsetof(struct config, nkeys) == offsetof(struct config, keys) + sizeof(char **),
               "nkeys must follow keys");
_Static_assert(offsetof(struct config, nscript_env) ==
                   offsetof(struct config, script_env) + sizeof(char **),
               "nscript_env must follow script_env");
_Static_assert(offsetof(struct config, nhttp_allow) ==
                   offsetof(struct config, http_allow) + sizeof(char **),
               "nhttp_allow must follow http_allow");
_Static_assert(offsetof(struct config, nresponse_url_allow) ==
                   offsetof(struct config, response_url_allow) + sizeof(char **),
               "nresponse_url_allow must follow response_url_allow");

static void tokens_free(struct config *c);
static void hooks_free(struct config *c);

static void list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void list_append(char ***list, size_t *n, const char *v)
{
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = xstrdup(v);
}

int config_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Sets one setting from text (a flag value or a default). For lists the
 * value is appended. Returns 0, or -1 with the reason in `err`. */
static int set_from_text(struct config *c, const struct setting *s, const char *v, char *err,
                         size_t errlen)
{
    char *base = (char *)c + s->offset;
    switch (s->type) {
    case SET_STR: {
        char **p = (char **)base;
        free(*p);
        *p = xstrdup(v);
        return 0;
    }
    case SET_INT:
    case SET_BOOL:
        if (config_parse_long(v, s->min, s->max, (long *)base) < 0) {
            snprintf(err, errlen, "%s must be an integer from %ld to %ld (got \"%s\")",
                     s->flag ? s->flag : s->key, s->min, s->max, v);
            return -1;
        }
        return 0;
    case SET_LIST:
        list_append((char ***)base, (size_t *)(base + sizeof(char **)), v);
        return 0;
    }
    return -1;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    char err[256];
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def)
            set_from_text(c, &settings[i], settings[i].def, err, sizeof err);
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char *base = (char *)c + settings[i].offset;
        if (settings[i].type == SET_STR)
            free(*(char **)base);
        else if (settings[i].type == SET_LIST)
            list_free(*(char ***)base, *(size_t *)(base + sizeof(char **)));
    }
    free(c->config_path);
    tokens_free(c);
    hooks_free(c);
    memset(c, 0, sizeof *c);
}

static const struct setting *find_by_key(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].key && strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static const struct setting *find_by_flag(const char *flag, size_t n)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].flag && strlen(settings[i].flag) == n &&
            strncmp(settings[i].flag, flag, n) == 0)
            return &settings[i];
    return NULL;
}

/* Reads the Lua value on top of the stack into setting s. [-0, +0] */
/* ---- env "NAME" ----------------------------------------------------------
 *
 * os.getenv gives nil for an unset variable, and a nil in a table is no
 * entry at all: `tokens = { default = os.getenv("X") }` loses `default`
 * without a word. The config file's `env "NAME"` gives the value when the
 * variable is set, and otherwise a marker (a userdata holding the name)
 * that the reader turns into "token 'default' is not configured: NAME is
 * unset", or, anywhere else, into an error naming the setting and the
 * variable. os.getenv is left as Lua has it. */

#define ENV_UNSET_MT "cliqhost.config.env_unset"

/* The variable's name if the value at idx is env's marker, else NULL.
 * Borrowed from the marker. [-0, +0] */
static const char *env_unset_name(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, ENV_UNSET_MT);
}

/* Using the marker as a string (concatenating it, indexing it, ...) fails
 * with the variable's name. */
static int env_unset_use(lua_State *L)
{
    const char *name = env_unset_name(L, 1);
    if (!name)
        name = env_unset_name(L, 2);
    return luaL_error(L, "environment variable %s is unset", name ? name : "?");
}

static int env_unset_tostring(lua_State *L)
{
    lua_pushfstring(L, "(environment variable %s, unset)", env_unset_name(L, 1));
    return 1;
}

/* env(name) -> the variable's value, or the marker. [-1, +1] */
static int config_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = getenv(name);
    if (v) {
        lua_pushstring(L, v);
        return 1;
    }
    size_t len = strlen(name);
    char *u = lua_newuserdatauv(L, len + 1, 0);
    memcpy(u, name, len + 1);
    luaL_setmetatable(L, ENV_UNSET_MT);
    return 1;
}

/* Defines the global env and its marker's metatable. [-0, +0] */
static void open_env(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__tostring", env_unset_tostring},
                                    {"__concat", env_unset_use},
                                    {"__index", env_unset_use},
                                    {"__len", env_unset_use},
                                    {NULL, NULL}};
    luaL_newmetatable(L, ENV_UNSET_MT);
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
    lua_register(L, "env", config_env);
}

static int set_from_lua(struct config *c, lua_State *L, const struct setting *s, char *err,
                        size_t errlen)
{
    char *base = (char *)c + s->offset;
    int t = lua_type(L, -1);
    if (env_unset_name(L, -1)) {
        snprintf(err, errlen, "'%s' comes from environment variable %s, which is unset", s->key,
                 env_unset_name(L, -1));
        return -1;
    }
    switch (s->type) {
    case SET_STR:
        if (t != LUA_TSTRING) {
            snprintf(err, errlen, "'%s' must be a string (got %s)", s->key, lua_typename(L, t));
            return -1;
        }
        free(*(char **)base);
        *(char **)base = xstrdup(lua_tostring(L, -1));
        return 0;
    case SET_INT:
    case SET_BOOL: {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (s->type == SET_BOOL && t == LUA_TBOOLEAN) {
            v = lua_toboolean(L, -1);
            isint = 1;
        }
        if (t != LUA_TNUMBER && t != LUA_TBOOLEAN)
            isint = 0;
        if (!isint || v < s->min || v > s->max) {
            snprintf(err, errlen, "'%s' must be an integer from %ld to %ld", s->key, s->min,
                     s->max);
            return -1;
        }
        *(long *)base = (long)v;
        return 0;
    }
    case SET_LIST: {
        char ***list = (char ***)base;
        size_t *n = (size_t *)(base + sizeof(char **));
        list_free(*list, *n);
        *list = NULL;
        *n = 0;
        if (t == LUA_TSTRING) {
            list_append(list, n, lua_tostring(L, -1));
            return 0;
        }
        if (t != LUA_TTABLE) {
            snprintf(err, errlen, "'%s' must be a string or a list of strings", s->key);
            return -1;
        }
        lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, i);
            if (env_unset_name(L, -1)) {
                snprintf(err, errlen,
                         "'%s'[%lld] comes from environment variable %s, which is unset", s->key,
                         (long long)i, env_unset_name(L, -1));
                lua_pop(L, 1);
                return -1;
            }
            if (lua_type(L, -1) != LUA_TSTRING) {
                snprintf(err, errlen, "'%s'[%lld] must be a string (got %s)", s->key, (long long)i,
                         luaL_typename(L, -1));
                lua_pop(L, 1);
                return -1;
            }
            list_append(list, n, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        return 0;
    }
    }
    return -1;
}

static void tokens_free(struct config *c)
{
    for (size_t i = 0; i < c->ntokens; i++) {
        free(c->tokens[i].name);
        free(c->tokens[i].secret);
        free(c->tokens[i].env);
    }
    free(c->tokens);
    c->tokens = NULL;
    c->ntokens = 0;
}

const struct config_token *config_token(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->ntokens; i++)
        if (strcmp(c->tokens[i].name, name) == 0)
            return &c->tokens[i];
    return NULL;
}

const char *config_token_problem(const struct config *c, const char *name, char *buf, size_t n)
{
    const struct config_token *t = config_token(c, name);
    if (!t)
        snprintf(buf, n,
                 "no token named '%s' in the config (a token set from an unset environment "
                 "variable is missing)",
                 name);
    else if (t->disabled)
        snprintf(buf, n, "token '%s' is disabled in the config", name);
    else if (!t->secret && t->env)
        snprintf(buf, n, "token '%s' is not configured: %s is unset", name, t->env);
    else if (!t->secret)
        snprintf(buf, n, "token '%s' has no value (is its environment variable set?)", name);
    else
        return NULL;
    return buf;
}

/* Reads `tokens`: a table of names to a token string or to a table
 * { token = "...", disabled = bool }. A token from env "NAME" with NAME
 * unset is kept without a secret, its variable named; one that is nil
 * (os.getenv of an unset variable) leaves the entry without a secret (or,
 * in the string form, absent). [-0, +0] */
static int read_tokens(struct config *c, lua_State *L, char *err, size_t errlen)
{
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "'tokens' must be a table of name = token");
        return -1;
    }
    tokens_free(c);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        int kt = lua_type(L, -2), vt = lua_type(L, -1);
        int unset = env_unset_name(L, -1) != NULL;
        if (kt != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TTABLE && !unset)) {
            lua_pop(L, 2);
            snprintf(err, errlen,
                     "'tokens' entries must be name = \"token\" or name = { token = ..., "
                     "disabled = false }");
            return -1;
        }
        struct config_token t = {xstrdup(lua_tostring(L, -2)), NULL, NULL, 0};
        if (unset) {
            t.env = xstrdup(env_unset_name(L, -1));
        } else if (vt == LUA_TSTRING) {
            t.secret = xstrdup(lua_tostring(L, -1));
        } else {
            int tt = lua_getfield(L, -1, "token");
            if (tt == LUA_TSTRING)
                t.secret = xstrdup(lua_tostring(L, -1));
            else if (env_unset_name(L, -1))
                t.env = xstrdup(env_unset_name(L, -1));
            int dt = lua_getfield(L, -2, "disabled");
            t.disabled = lua_toboolean(L, -1);
            lua_pop(L, 2);
            if ((tt != LUA_TSTRING && tt != LUA_TNIL && !t.env) ||
                (dt != LUA_TBOOLEAN && dt != LUA_TNIL)) {
                snprintf(err, errlen,
                         "'tokens.%s' must be { token = \"...\", disabled = true|false }", t.name);
                free(t.name);
                free(t.secret);
                free(t.env);
                lua_pop(L, 2);
                return -1;
            }
        }
        if (t.secret && (!t.secret[0] || strpbrk(t.secret, " \t\r\n&?#"))) {
            snprintf(err, errlen,
                     "'tokens.%s' is not a webhook token (empty, or has spaces or "
                     "URL characters)",
                     t.name);
            free(t.name);
            free(t.secret);
            free(t.env);
            lua_pop(L, 2);
            return -1;
        }
        c->tokens = xrealloc(c->tokens, (c->ntokens + 1) * sizeof *c->tokens);
        c->tokens[c->ntokens++] = t;
        lua_pop(L, 1);
    }
    return 0;
}

/* ---- hooks ---------------------------------------------------------------
 *
 * `hooks = { github = { scheme = "github", secret = ... }, ... }`: other
 * tools' webhooks, each with its signature scheme (cliq/hooksig.h). Every
 * mistake is an error naming the hook and the field, so a hook is never
 * served with a check other than the one the operator meant. */

static const char *const hook_scheme_names[] = {"github", "standard-webhooks", "bearer",
                                                "hmac-sha256"};
/* The fields each scheme takes, indexed by enum config_hook_scheme. */
static const char *const hook_scheme_fields[] = {
    "scheme, secret, secrets", "scheme, secret, secrets, tolerance_s",
    "scheme, secret, secrets, header", "scheme, secret, secrets, header, encoding, prefix"};

#define HOOK_NSCHEMES        (sizeof hook_scheme_names / sizeof hook_scheme_names[0])
#define HOOK_PREFIX_MAX      64
#define HOOK_HEADER_MAX      64
#define HOOK_TOLERANCE_MAX_S 86400

const char *config_hook_scheme_name(enum config_hook_scheme s)
{
    return (size_t)s < HOOK_NSCHEMES ? hook_scheme_names[s] : "?";
}

static void hook_free(struct config_hook *h)
{
    for (size_t i = 0; i < h->nsecrets; i++) {
        free(h->secrets[i]);
        free(h->keys[i].bytes);
    }
    free(h->secrets);
    free(h->keys);
    free(h->name);
    free(h->header);
    free(h->prefix);
    memset(h, 0, sizeof *h);
}

static void hooks_free(struct config *c)
{
    for (size_t i = 0; i < c->nhooks; i++)
        hook_free(&c->hooks[i]);
    free(c->hooks);
    c->hooks = NULL;
    c->nhooks = 0;
}

const struct config_hook *config_hook(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nhooks; i++)
        if (strcmp(c->hooks[i].name, name) == 0)
            return &c->hooks[i];
    return NULL;
}

/* Whether s (n bytes) can name a hook: it names the file
 * scripts/hooks/<name>.lua, so only letters, digits, _ and -. */
static int hook_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > CONFIG_HOOK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(ch < 0x80 && (isalnum(ch) || ch == '_' || ch == '-')))
            return 0;
    }
    return 1;
}

/* Whether s is an HTTP header name (RFC 9110 token) of at most
 * HOOK_HEADER_MAX bytes. */
static int header_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > HOOK_HEADER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(ch < 0x80 && (isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch))))
            return 0;
    }
    return 1;
}

static int hook_field_allowed(enum config_hook_scheme sch, const char *f)
{
    if (!strcmp(f, "scheme") || !strcmp(f, "secret") || !strcmp(f, "secrets"))
        return 1;
    switch (sch) {
    case CONFIG_HOOK_GITHUB:
        return 0;
    case CONFIG_HOOK_STANDARD_WEBHOOKS:
        return !strcmp(f, "tolerance_s");
    case CONFIG_HOOK_BEARER:
        return !strcmp(f, "header");
    case CONFIG_HOOK_HMAC_SHA256:
        return !strcmp(f, "header") || !strcmp(f, "encoding") || !strcmp(f, "prefix");
    }
    return 0;
}

/* Adds the secret on top of the stack to h; `what` names where it was
 * ("secret", "secrets[2]"). Messages never hold the secret. Returns 0, or
 * -1 with the reason. [-0, +0] */
static int hook_add_secret(struct config_hook *h, lua_State *L, const char *what, char *err,
                           size_t errlen)
{
    if (env_unset_name(L, -1)) {
        snprintf(err, errlen, "hooks.%s: no secret (%s is unset)", h->name, env_unset_name(L, -1));
        return -1;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        snprintf(err, errlen, "hooks.%s: '%s' must be a string (got %s)", h->name, what,
                 luaL_typename(L, -1));
        return -1;
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len == 0 || strlen(s) != len) {
        snprintf(err, errlen, "hooks.%s: '%s' is empty or holds a NUL byte", h->name, what);
        return -1;
    }
    if (h->nsecrets == CONFIG_HOOK_SECRETS_MAX) {
        snprintf(err, errlen, "hooks.%s: more than %d secrets", h->name, CONFIG_HOOK_SECRETS_MAX);
        return -1;
    }
    struct config_hook_key k = {NULL, 0};
    if (h->scheme == CONFIG_HOOK_STANDARD_WEBHOOKS) {
        /* "whsec_" + base64 of the key; the libraries take it without
         * the prefix too. */
        const char *b = s;
        size_t bn = len;
        if (bn >= 6 && memcmp(b, "whsec_", 6) == 0) {
            b += 6;
            bn -= 6;
        }
        k.bytes = xmalloc(BASE64_DECODED_MAX(bn));
        if (bn == 0 || base64_decode(b, bn, k.bytes, BASE64_DECODED_MAX(bn), &k.len, 0) < 0 ||
            k.len == 0) {
            free(k.bytes);
            snprintf(err, errlen,
                     "hooks.%s: '%s' is not a Standard Webhooks secret (\"whsec_\" and the "
                     "base64 of the key)",
                     h->name, what);
            return -1;
        }
    } else {
        if (h->scheme == CONFIG_HOOK_BEARER) {
            /* A header value cannot hold control characters, and its
             * ends are trimmed on the way in: such a token never matches. */
            int bad = s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t';
            for (size_t i = 0; i < len && !bad; i++)
                bad = (unsigned char)s[i] < 0x20 && s[i] != '\t';
            for (size_t i = 0; i < len && !bad; i++)
                bad = s[i] == 0x7f;
            if (bad) {
                snprintf(err, errlen,
                         "hooks.%s: '%s' cannot be sent in a header (control characters, or "
                         "spaces at an end)",
                         h->name, what);
                return -1;
            }
        }
        k.bytes = xmalloc(len);
        memcpy(k.bytes, s, len);
        k.len = len;
    }
    h->secrets = xrealloc(h->secrets, (h->nsecrets + 1) * sizeof *h->secrets);
    h->keys = xrealloc(h->keys, (h->nsecrets + 1) * sizeof *h->keys);
    h->secrets[h->nsecrets] = xstrdup(s);
    h->keys[h->nsecrets] = k;
    h->nsecrets++;
    return 0;
}

/* Reads field `f` of the hook table on top of the stack into h (scheme
 * already set). Returns 0, or -1 with the reason. [-0, +0] */
static int hook_read_field(struct config_hook *h, lua_State *L, const char *f, char *err,
                           size_t errlen)
{
    int rc = -1;
    int t = lua_getfield(L, -1, f);
    if (t == LUA_TNIL) {
        rc = 0;
        goto done;
    }
    if (!strcmp(f, "secret")) {
        rc = hook_add_secret(h, L, "secret", err, errlen);
    } else if (!strcmp(f, "secrets")) {
        if (t != LUA_TTABLE) {
            snprintf(err, errlen, "hooks.%s: 'secrets' must be a list of strings", h->name);
            goto done;
        }
        /* A nil in the list (os.getenv of an unset variable) leaves a hole
         * that the length does not show: count the entries instead. */
        lua_Integer n = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            n++;
            lua_pop(L, 1);
        }
        for (lua_Integer i = 1; i <= n; i++) {
            char what[48];
            snprintf(what, sizeof what, "secrets[%lld]", (long long)i);
            if (lua_rawgeti(L, -1, i) == LUA_TNIL) {
                snprintf(err, errlen,
                         "hooks.%s: 'secrets' must be a list of strings without holes (is an "
                         "environment variable unset? env \"NAME\" says which)",
                         h->name);
                lua_pop(L, 1);
                goto done;
            }
            int r = hook_add_secret(h, L, what, err, errlen);
            lua_pop(L, 1);
            if (r < 0)
                goto done;
        }
        rc = 0;
    } else if (!strcmp(f, "header")) {
        size_t n;
        const char *v = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        if (!v || !header_name_ok(v, n)) {
            snprintf(err, errlen,
                     "hooks.%s: 'header' must be an HTTP header name (letters, digits and "
                     "!#$%%&'*+-.^_`|~, at most %d)",
                     h->name, HOOK_HEADER_MAX);
            goto done;
        }
        /* Authorization for bearer is the default, with its "Bearer " word. */
        if (!(h->scheme == CONFIG_HOOK_BEARER && strcasecmp(v, "Authorization") == 0))
            h->header = xstrdup(v);
        rc = 0;
    } else if (!strcmp(f, "encoding")) {
        const char *v = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!v || (strcmp(v, "hex") && strcmp(v, "base64"))) {
            snprintf(err, errlen, "hooks.%s: 'encoding' must be \"hex\" or \"base64\"", h->name);
            goto done;
        }
        h->base64 = strcmp(v, "base64") == 0;
        rc = 0;
    } else if (!strcmp(f, "prefix")) {
        size_t n;
        const char *v = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        int bad = !v || n > HOOK_PREFIX_MAX;
        for (size_t i = 0; !bad && i < n; i++)
            bad = (unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f;
        if (bad) {
            snprintf(err, errlen,
                     "hooks.%s: 'prefix' must be a string of at most %d printable ASCII "
                     "characters without spaces",
                     h->name, HOOK_PREFIX_MAX);
            goto done;
        }
        free(h->prefix);
        h->prefix = xstrdup(v);
        rc = 0;
    } else if (!strcmp(f, "tolerance_s")) {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (t != LUA_TNUMBER || !isint || v < 1 || v > HOOK_TOLERANCE_MAX_S) {
            snprintf(err, errlen, "hooks.%s: 'tolerance_s' must be an integer from 1 to %d",
                     h->name, HOOK_TOLERANCE_MAX_S);
            goto done;
        }
        h->tolerance_s = (long)v;
        rc = 0;
    } else {
        rc = 0; /* scheme: read by the caller */
    }
done:
    lua_pop(L, 1);
    return rc;
}

/* Reads one hook: the key at -2 names it, the value at -1 says how it is
 * signed. Fills h (freed by the caller either way). [-0, +0] */
static int read_hook(struct config_hook *h, lua_State *L, char *err, size_t errlen)
{
    static const char *const fields[] = {"secret",   "secrets", "header",
                                         "encoding", "prefix",  "tolerance_s"};
    size_t nlen = 0;
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : NULL;
    if (!name || !hook_name_ok(name, nlen)) {
        snprintf(err, errlen,
                 "hooks: '%.64s' is not a hook name (it names scripts/hooks/<name>.lua: "
                 "letters, digits, _ and -, 1 to %d of them)",
                 name ? name : luaL_typename(L, -2), CONFIG_HOOK_NAME_MAX);
        return -1;
    }
    h->name = xstrdup(name);
    h->tolerance_s = 300;
    h->prefix = xstrdup("");
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "hooks.%s must be a table { scheme = \"...\", secret = ... }",
                 h->name);
        return -1;
    }
    int st = lua_getfield(L, -1, "scheme");
    const char *scheme = st == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    size_t si = 0;
    while (scheme && si < HOOK_NSCHEMES && strcmp(scheme, hook_scheme_names[si]))
        si++;
    lua_pop(L, 1);
    if (!scheme || si == HOOK_NSCHEMES) {
        snprintf(err, errlen,
                 "hooks.%s: scheme '%.40s' is not one of github, standard-webhooks, bearer, "
                 "hmac-sha256",
                 h->name, scheme ? scheme : lua_typename(L, st));
        return -1;
    }
    h->scheme = (enum config_hook_scheme)si;
    /* Every field is one this scheme takes. */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *f = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!f || !hook_field_allowed(h->scheme, f)) {
            snprintf(err, errlen, "hooks.%s: unknown field '%.64s' (a %s hook takes %s)", h->name,
                     f ? f : luaL_typename(L, -2), hook_scheme_names[si], hook_scheme_fields[si]);
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (hook_read_field(h, L, fields[i], err, errlen) < 0)
            return -1;
    if (h->nsecrets == 0) {
        snprintf(err, errlen,
                 "hooks.%s: no secret (give 'secret' or 'secrets'; os.getenv of an unset "
                 "variable is nil, env \"NAME\" names it)",
                 h->name);
        return -1;
    }
    if (h->scheme == CONFIG_HOOK_HMAC_SHA256 && !h->header) {
        snprintf(err, errlen,
                 "hooks.%s: scheme hmac-sha256 needs 'header' (the request header that holds "
                 "the signature)",
                 h->name);
        return -1;
    }
    return 0;
}

/* Reads `hooks`: a table of hook names to { scheme = ..., ... }. All or
 * nothing: on an error c->hooks is left empty. [-0, +0] */
static int read_hooks(struct config *c, lua_State *L, char *err, size_t errlen)
{
    hooks_free(c);
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen,
                 "'hooks' must be a table of name = { scheme = \"...\", secret = ... }");
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        struct config_hook h;
        memset(&h, 0, sizeof h);
        if (read_hook(&h, L, err, errlen) < 0) {
            hook_free(&h);
            hooks_free(c);
            lua_pop(L, 2);
            return -1;
        }
        c->hooks = xrealloc(c->hooks, (c->nhooks + 1) * sizeof *c->hooks);
        c->hooks[c->nhooks++] = h;
        lua_pop(L, 1);
    }
    return 0;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    char why[512] = "";
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "%s: cannot create a Lua state", path);
        return -1;
    }
    luaL_openlibs(L);
    open_env(L);

    /* Remember the globals that exist before the file runs, so that every
     * global it adds can be checked against the settings. */
    lua_newtable(L);
    int before = lua_gettop(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, before);
    }
    lua_pop(L, 1);

    if (luaL_loadfilex(L, path, "t") != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        goto cleanup;
    }

    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, before);
        int existed = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (existed) {
            lua_pop(L, 1);
            continue;
        }
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(why, sizeof why, "a global with a non-string name is not a setting");
            goto fail;
        }
        const char *key = lua_tostring(L, -2);
        const struct setting *s = find_by_key(key);
        if (s) {
            if (set_from_lua(c, L, s, why, sizeof why) < 0)
                goto fail;
        } else if (strcmp(key, "tokens") == 0) {
            if (read_tokens(c, L, why, sizeof why) < 0)
                goto fail;
        } else if (strcmp(key, "hooks") == 0) {
            if (read_hooks(c, L, why, sizeof why) < 0)
                goto fail;
        } else {
            snprintf(why, sizeof why,
                     "unknown setting '%s' (see `cliqhost --help`; use `local` for helpers)", key);
            goto fail;
        }
        lua_pop(L, 1);
    }
    free(c->config_path);
    c->config_path = xstrdup(path);
    rc = 0;
    goto cleanup;
fail:
    snprintf(err, errlen, "%s: %s", path, why);
cleanup:
    lua_close(L);
    return rc;
}

int config_apply_flags(struct config *c, int argc, char **argv, int first, const char **config_path,
                       char *err, size_t errlen)
{
    /* A list given on the command line replaces the file's list. */
    int list_started[NSETTINGS] = {0};
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;

        if (nlen == 6 && strncmp(name, "config", 6) == 0) {
            if (!value) {
                if (i + 1 >= argc) {
                    snprintf(err, errlen, "--config needs a file");
                    return -1;
                }
                value = argv[++i];
            }
            if (config_path)
                *config_path = value;
            continue;
        }
        const struct setting *s = find_by_flag(name, nlen);
        if (!s) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nlen, name);
            return -1;
        }
        if (!value && s->type != SET_BOOL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", s->flag);
                return -1;
            }
            value = argv[++i];
        }
        if (config_path)
            continue; /* first pass: only --config matters */
        if (s->type == SET_BOOL && !value)
            value = "1";
        if (s->type == SET_LIST && !list_started[s - settings]) {
            char *base = (char *)c + s->offset;
            list_free(*(char ***)base, *(size_t *)(base + sizeof(char **)));
            *(char ***)base = NULL;
            *(size_t *)(base + sizeof(char **)) = 0;
            list_started[s - settings] = 1;
        }
        if (set_from_text(c, s, value, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int config_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned int *sslen,
                        int *loopback, char *err, size_t errlen)
{
    const char *colon = strrchr(s, ':');
    if (!colon) {
        snprintf(err, errlen, "listen address '%s' needs a port, as in 127.0.0.1:8080", s);
        return -1;
    }
    long port;
    if (config_parse_long(colon + 1, 0, 65535, &port) < 0) {
        snprintf(err, errlen, "listen address '%s' has a bad port", s);
        return -1;
    }
    char host[INET6_ADDRSTRLEN + 2];
    size_t hlen = (size_t)(colon - s);
    if (hlen >= sizeof host) {
        snprintf(err, errlen, "listen address '%s' is not an IP address", s);
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1) {
            snprintf(err, errlen, "listen address '%s' is not an IPv6 address", s);
            return -1;
        }
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *a6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        snprintf(host, sizeof host, "0.0.0.0");
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        snprintf(err, errlen,
                 "listen address '%s' is not an IPv4 address (use [::1]:port for IPv6)", s);
        return -1;
    }
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *sslen = sizeof *a4;
    *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    return 0;
}

/* Says what is wrong with callback_path `p`; returns -1. */
static int bad_callback_path(const char *p, const char *why, char *err, size_t errlen)
{
    snprintf(err, errlen, "callback_path '%.*s' %s", CONFIG_CALLBACK_PATH_MAX, p, why);
    return -1;
}

/* Checks callback_path: a path the server can match as libmicrohttpd hands
 * it over (decoded, without the query) and a client's URL reaches as
 * written: "/" and then path characters only, no dot segments, and none
 * of the host's own endpoints. Returns 0, or -1 with the reason. */
static int check_callback_path(const char *p, char *err, size_t errlen)
{
    static const char *const taken[] = {"/healthz", "/status",    "/metrics",
                                        "/hooks",   "/schedules", "/console"};
    char why[160];
    if (!p) {
        snprintf(err, errlen, "callback_path is not set: give a path such as / or /cliq");
        return -1;
    }
    size_t n = strlen(p);
    if (p[0] != '/')
        return bad_callback_path(p, "must start with / (as in /cliq)", err, errlen);
    if (n > CONFIG_CALLBACK_PATH_MAX) {
        snprintf(why, sizeof why, "is longer than %d bytes", CONFIG_CALLBACK_PATH_MAX);
        return bad_callback_path(p, why, err, errlen);
    }
    if (strpbrk(p, "?#"))
        return bad_callback_path(p, "is a path only: no query or fragment", err, errlen);
    for (const char *s = p; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= ' ' || ch == 0x7f)
            return bad_callback_path(p, "takes no spaces or control characters", err, errlen);
        if (ch >= 0x80 || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789-._~!$&'()*+,;=:@/",
                                  ch)) {
            snprintf(why, sizeof why,
                     "has '%c'; it takes letters, digits and -._~!$&'()*+,;=:@/ (no %%-escapes)",
                     ch >= 0x80 ? '?' : ch);
            return bad_callback_path(p, why, err, errlen);
        }
    }
    if (strstr(p, "/./") || strstr(p, "/../") || (n >= 2 && !strcmp(p + n - 2, "/.")) ||
        (n >= 3 && !strcmp(p + n - 3, "/..")))
        return bad_callback_path(p, "has a . or .. segment, which clients resolve away", err,
                                 errlen);
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        size_t k = strlen(taken[i]);
        if (!strncmp(p, taken[i], k) && (p[k] == '\0' || p[k] == '/')) {
            snprintf(why, sizeof why, "is (or is under) the host's own %s", taken[i]);
            return bad_callback_path(p, why, err, errlen);
        }
    }
    return 0;
}

int config_validate(const struct config *c, int serving, char *err, size_t errlen)
{
    if (check_callback_path(c->callback_path, err, errlen) < 0)
        return -1;
    if (strcmp(c->log_level, "debug") && strcmp(c->log_level, "info") &&
        strcmp(c->log_level, "warn") && strcmp(c->log_level, "warning") &&
        strcmp(c->log_level, "error")) {
        snprintf(err, errlen, "log level '%s' is not one of debug, info, warn, error",
                 c->log_level);
        return -1;
    }
    if (strcmp(c->log_format, "text") && strcmp(c->log_format, "json")) {
        snprintf(err, errlen, "log format '%s' is not one of text, json", c->log_format);
        return -1;
    }
    if (strcmp(c->console, "loopback") && strcmp(c->console, "off")) {
        snprintf(err, errlen, "console '%s' is not one of loopback, off", c->console);
        return -1;
    }
    if (strcmp(c->status_access, "loopback") && strcmp(c->status_access, "any") &&
        strcmp(c->status_access, "off")) {
        snprintf(err, errlen, "status_access '%s' is not one of loopback, any, off",
                 c->status_access);
        return -1;
    }
    if (strcmp(c->store, "sqlite") && strncmp(c->store, "redis://", 8) &&
        strncmp(c->store, "unix:", 5)) {
        /* Only its scheme: the rest may hold a password. */
        snprintf(err, errlen,
                 "store '%.*s...' is not sqlite, redis://host:port/db or unix:/path/to/redis.sock",
                 (int)strcspn(c->store, ":"), c->store);
        return -1;
    }
    if (strlen(c->redis_prefix) > 100 || strpbrk(c->redis_prefix, " \r\n")) {
        snprintf(err, errlen, "redis_prefix '%s' must be at most 100 bytes without spaces",
                 c->redis_prefix);
        return -1;
    }
    for (size_t i = 0; i < c->nscript_env; i++) {
        const char *n = c->script_env[i];
        if (!*n || strchr(n, '=')) {
            snprintf(err, errlen, "script_env entry '%s' is not an environment variable name", n);
            return -1;
        }
    }
    struct ssrf_allow *allow =
        ssrf_allow_new("http_allow", c->http_allow, c->nhttp_allow, err, errlen);
    if (!allow)
        return -1;
    ssrf_allow_free(allow);
    allow = ssrf_allow_new("response_url_allow", c->response_url_allow, c->nresponse_url_allow, err,
                           errlen);
    if (!allow)
        return -1;
    ssrf_allow_free(allow);
    if (!serving)
        return 0;
    struct sockaddr_storage ss;
    unsigned int sslen;
    int loopback;
    if (config_parse_listen(c->listen, &ss, &sslen, &loopback, err, errlen) < 0)
        return -1;
    if (c->no_verify && !loopback) {
        snprintf(err, errlen,
                 "--no-verify skips signature checks and is only allowed on a loopback address "
                 "(127.0.0.1 or [::1]), not '%s'",
                 c->listen);
        return -1;
    }
    if (c->no_verify && c->nkeys) {
        snprintf(err, errlen, "--no-verify and keys were both given; choose one");
        return -1;
    }
    if (!c->no_verify && c->nkeys == 0) {
        snprintf(err, errlen,
                 "no Cliq public key configured: pass --key with the key from the extension's "
                 "page (or a file holding it), or --no-verify for local development");
        return -1;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        char left[64];
        const char *meta = s->type == SET_INT ? " N" : s->type == SET_BOOL ? "" : " VALUE";
        if (s->flag)
            snprintf(left, sizeof left, "--%s%s", s->flag, meta);
        else
            snprintf(left, sizeof left, "(config only)");
        fprintf(out, "  %-26s %s\n", left, s->help);
        fprintf(out, "  %-26s config: %s", "", s->key ? s->key : "(flag only)");
        if (s->def && s->type != SET_BOOL)
            fprintf(out, "; default: %s", s->def);
        fputc('\n', out);
    }
}

int config_read(struct config *c, int argc, char **argv, int first, int serving, char *err,
                size_t errlen)
{
    const char *path = NULL;
    config_defaults(c);
    if (config_apply_flags(c, argc, argv, first, &path, err, errlen) < 0 ||
        (path && config_load_file(c, path, err, errlen) < 0) ||
        config_apply_flags(c, argc, argv, first, NULL, err, errlen) < 0 ||
        config_validate(c, serving, err, errlen) < 0) {
        config_free(c);
        return -1;
    }
    /* From now on no text the process writes holds these (log.h). */
    for (size_t i = 0; i < c->ntokens; i++)
        if (c->tokens[i].secret)
            log_add_secret(c->tokens[i].secret);
    for (size_t i = 0; i < c->nhooks; i++)
        for (size_t j = 0; j < c->hooks[i].nsecrets; j++) {
            const char *s = c->hooks[i].secrets[j];
            log_add_secret(s);
            /* A Standard Webhooks secret is also pasted without "whsec_". */
            if (!strncmp(s, "whsec_", 6))
                log_add_secret(s + 6);
        }
    return 0;
}

int config_load_all(struct config *c, int argc, char **argv, int first, int serving)
{
    char err[1024];
    if (config_read(c, argc, argv, first, serving, err, sizeof err) < 0) {
        fprintf(stderr, "cliqhost: %s\n", err);
        return -1;
    }
    enum log_level level;
    if (log_parse_level(c->log_level, &level) == 0)
        log_set_level(level);
    log_set_json(strcmp(c->log_format, "json") == 0);
    return 0;
}
