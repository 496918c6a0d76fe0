/*
 * config: every setting of the host, from defaults, the config file and the
 * command line, in that order of precedence.
 *
 * One table (config.c) lists each setting once with its config key, its flag,
 * its type, its default and its help text; defaults, the config file reader,
 * the flag parser and `--help` all work from it, so they cannot disagree.
 *
 * The config file is a Lua file that sets globals (DESIGN.md "Config file").
 * It is the operator's own file, so it runs with Lua's standard libraries
 * (os.getenv in particular), plus `env "NAME"`: the variable's value, or,
 * when it is unset, a marker that keeps a token in the list as not
 * configured (config_token.env) and makes any other setting an error
 * naming the variable. A global that is not a setting is an error, so a
 * typo never silently leaves a default in place.
 */
#ifndef CLIQHOST_CONFIG_H
#define CLIQHOST_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct config {
    char *config_path; /* NULL when no --config */
    char *listen;
    char *callback_path; /* where Cliq POSTs: "/" or "/cliq" (config_validate) */
    char *scripts;
    char *lualib;
    char **keys;
    size_t nkeys;
    long deadline_ms;
    long workers; /* 0: one per core */
    char *data_dir;
    char *cliq_api;
    /* Scripts' store (see cliq/store.h): the backend ("sqlite"), the
     * largest value's JSON and the keys it holds. */
    char *store;
    long store_max_value_bytes;
    long store_max_keys;
    long redis_timeout_ms; /* a Redis command's longest wait (store = redis://...) */
    char *redis_prefix;    /* the keys' prefix in Redis */
    char **script_env;
    size_t nscript_env;
    long max_body_bytes;
    long pending_body_bytes;
    long max_reply_bytes;
    long max_script_bytes;
    long max_connections;
    long connection_memory_bytes;
    long idle_timeout_s;
    long max_connections_per_ip; /* per worker; 0: none */
    long request_timeout_s;
    char *error_reply;
    char *limit_reply;
    char *interim_reply;
    long response_url_ttl_s;
    long max_run_ms;
    long max_handlers;
    long max_cpu_ms;
    long max_memory_bytes;
    long max_handler_memory_bytes;
    long http_timeout_ms;
    long max_http_response_bytes;
    /* Internal addresses, CIDR blocks and host names scripts' requests may
     * reach (ssrf.h); checked by config_validate. */
    char **http_allow;
    size_t nhttp_allow;
    /* Where replies (response_url) and attachment downloads may go besides
     * https to Cliq's own hosts: the same kinds of entries. */
    char **response_url_allow;
    size_t nresponse_url_allow;
    long attachment_ttl_s;
    long max_attachment_bytes;
    char *log_level;
    char *log_format;      /* "text" or "json" */
    long replay_window_s;  /* 0: no replay checks */
    long replay_memory;    /* signatures remembered; 0: timestamps only */
    long hook_id_memory;   /* webhook ids remembered for a day (standard-webhooks hooks) */
    long reload_settle_ms; /* 0: no live reload */
    long shutdown_grace_s;
    char *status_access; /* "loopback", "any" or "off" */
    char *console;       /* "loopback" or "off" */
    long journal_calls;  /* calls the journal keeps; 0: none */
    long journal_entry_bytes;
    long no_verify;
    long post_rate_per_min;
    long post_max_age_s;
    long post_concurrency;
    /* The outbox's caps (outbox.h): a post's size, what waits per token,
     * and what the outbox holds in all. */
    long outbox_max_post_bytes;
    long outbox_max_queued;
    long outbox_max_queued_bytes;
    long outbox_max_queued_per_token;
    long outbox_max_queued_bytes_per_token;
    /* Webhook tokens by name (config file only). secret is NULL when the
     * entry has no token (its environment variable is unset). */
    struct config_token *tokens;
    size_t ntokens;
    /* Other tools' webhooks (POST /hooks/<name>) by name, each with how its
     * requests are signed (config file only; cliq/hooksig.h checks them). */
    struct config_hook *hooks;
    size_t nhooks;
};

struct config_token {
    char *name;
    char *secret;
    char *env; /* set with env "NAME" and NAME is unset: NAME (secret is NULL) */
    int disabled;
};

enum config_hook_scheme {
    CONFIG_HOOK_GITHUB,            /* X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body> */
    CONFIG_HOOK_STANDARD_WEBHOOKS, /* webhook-id, webhook-timestamp, webhook-signature */
    CONFIG_HOOK_BEARER,            /* Authorization: Bearer <token>, or a named header */
    CONFIG_HOOK_HMAC_SHA256,       /* a named header: prefix + hex or base64 HMAC-SHA256 */
};

/* One secret of a hook: the bytes that key its HMAC or are its token. For
 * standard-webhooks, the base64-decoded key ("whsec_" dropped); otherwise
 * the secret's own bytes. */
struct config_hook_key {
    unsigned char *bytes;
    size_t len;
};

struct config_hook {
    char *name; /* [A-Za-z0-9_-]{1,64}: scripts/hooks/<name>.lua */
    enum config_hook_scheme scheme;
    char **secrets;               /* as written in the config (for log_add_secret) */
    struct config_hook_key *keys; /* nsecrets, in the same order */
    size_t nsecrets;              /* at least 1; any one matching passes (rotation) */
    char *header;                 /* bearer: NULL for Authorization; hmac-sha256: the header */
    int base64;                   /* hmac-sha256: 1 for base64, 0 for hex */
    char *prefix;                 /* hmac-sha256: what comes before the signature; "" none */
    long tolerance_s;             /* standard-webhooks: the timestamp window either way */
};

/* The longest hook name taken. */
#define CONFIG_HOOK_NAME_MAX 64
/* The most secrets one hook takes. */
#define CONFIG_HOOK_SECRETS_MAX 16

/* The hook named `name`, or NULL. Borrowed from c. */
const struct config_hook *config_hook(const struct config *c, const char *name);

/* The scheme's name as the config spells it ("standard-webhooks"). Static. */
const char *config_hook_scheme_name(enum config_hook_scheme s);

/* The longest callback_path taken. */
#define CONFIG_CALLBACK_PATH_MAX 256

/* The token named `name`, or NULL. Borrowed from c. */
const struct config_token *config_token(const struct config *c, const char *name);

/* Why a post cannot use the token named `name` (no such token, disabled,
 * or no value: "token 'alerts' is not configured: CLIQ_ALERTS_TOKEN is
 * unset"), written to buf and returned; NULL when the token can be used. */
const char *config_token_problem(const struct config *c, const char *name, char *buf, size_t n);

/* Fills `c` with the defaults. This function can't fail. */
void config_defaults(struct config *c);
void config_free(struct config *c);

/* Reads the Lua config file at `path` over the values in `c`. Returns 0, or
 * -1 with a message naming the file, the setting and the problem. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Applies command-line flags from argv[first..argc-1] over `c`. When
 * `config_path` is not NULL, only --config is looked at and returned there
 * (borrowed from argv; NULL if absent), so the file can be read first.
 * Returns 0, or -1 with a message (unknown flag, missing or bad value). */
int config_apply_flags(struct config *c, int argc, char **argv, int first, const char **config_path,
                       char *err, size_t errlen);

/* Defaults, then the file named by --config, then the flags in
 * argv[first..]; then config_validate(). On failure writes the reason to
 * standard error, frees c and returns -1. Sets the log level. */
int config_load_all(struct config *c, int argc, char **argv, int first, int serving);

/* As config_load_all, but quietly: the reason goes to err, and the log
 * level is left alone (SIGHUP). */
int config_read(struct config *c, int argc, char **argv, int first, int serving, char *err,
                size_t errlen);

/* Checks the settings taken together (e.g. the development switch only on
 * loopback). `serving` adds the checks that only `serve` needs. */
int config_validate(const struct config *c, int serving, char *err, size_t errlen);

/* Parses a decimal integer within [min, max]. Returns 0 or -1. */
int config_parse_long(const char *s, long min, long max, long *out);

/* Writes the setting list with flags, config keys and defaults for --help. */
void config_print_help(FILE *out);

struct sockaddr_storage;
/* Parses "HOST:PORT" ("127.0.0.1:8080", "[::1]:8080", "localhost:8080",
 * ":8080" for every interface; port 0 picks a free port). Returns 0, or -1
 * with a message. *loopback is set when the address is loopback only. */
int config_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned int *sslen,
                        int *loopback, char *err, size_t errlen);

#endif
