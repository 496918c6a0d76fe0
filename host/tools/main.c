/*
 * main: the command line (DESIGN.md "Command line").
 *
 *   cliqhost serve  [flags]    serve Cliq's calls
 *   cliqhost check  [flags]    load every script as serve would; report problems
 *   cliqhost keygen DIR        a development key pair (keygen.h)
 *   cliqhost invoke ...        play Cliq against a running host (invoke.h)
 *   cliqhost post|tokens|outbox   the outbox's commands (cli.h)
 *   cliqhost --version | --help
 */
#include "cliq/shared.h"
#include "cliq/verify.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/fetch.h"
#include "event/redis.h"
#include "script/luavm.h"
#include "script/reload.h"
#include "serve/server.h"
#include "tools/cli.h"
#include "tools/invoke.h"
#include "tools/keygen.h"
#include "tools/schedcli.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <libgen.h>
#include <limits.h>
#include <lua.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CLIQHOST_VERSION
#define CLIQHOST_VERSION "0.0.0"
#endif
#ifndef CLIQHOST_SOURCE_LUALIB_DIR
#define CLIQHOST_SOURCE_LUALIB_DIR "lualib"
#endif
#ifndef CLIQHOST_LUALIB_INSTALL_DIR
#define CLIQHOST_LUALIB_INSTALL_DIR "/usr/local/share/cliqhost/lualib"
#endif

static void print_version(void)
{
    printf("cliqhost %s (%s, libmicrohttpd %s, %s, cJSON %s, libcurl %s)\n", CLIQHOST_VERSION,
           LUA_RELEASE, MHD_get_version(), OpenSSL_version(OPENSSL_VERSION), cJSON_Version(),
           curl_version_info(CURLVERSION_NOW)->version);
}

static void print_help(FILE *out)
{
    fprintf(
        out,
        "cliqhost %s: a Lua-scriptable host for Zoho Cliq webhook extensions\n"
        "\n"
        "usage:\n"
        "  cliqhost serve [--config FILE] [options]   serve Cliq's calls\n"
        "  cliqhost check [--config FILE] [--scripts DIR]\n"
        "                                             load every script; print problems as\n"
        "                                             file:line: message; exit 1 on any\n"
        "  cliqhost keygen DIR [--force]              write a development key pair: "
        "DIR/cliq-dev.pem\n"
        "                                             signs, DIR/cliq-dev.pub for serve --key\n"
        "  cliqhost invoke TYPE [NAME] [HANDLER] [TEXT] [options]\n"
        "                                             play Cliq against a running host: a signed,\n"
        "                                             realistic call; prints the reply; exit\n"
        "                                             0 replied, 1 error status, 3 unreachable,\n"
        "                                             5 the handler failed (cliqhost invoke\n"
        "                                             --help has every code)\n"
        "  cliqhost post channel NAME [TEXT] [--token NAME] [--bot BOT] [--json FILE|-]\n"
        "  cliqhost post bot NAME [TEXT] [--users ID,ID | --broadcast] [--token NAME]\n"
        "                [--json FILE|-] [--wait SECONDS]\n"
        "                                             post through Cliq's webhook endpoints;\n"
        "                                             exit 0 delivered, 1 failed, 75 still queued\n"
        "  cliqhost tokens                            webhook token usage (never the secrets)\n"
        "  cliqhost outbox [list | retry ID | drop ID]\n"
        "                                             posts waiting or failed\n"
        "  cliqhost schedules [--url URL | --config FILE] [--json]\n"
        "                                             each schedule's next run, last run and\n"
        "                                             outcome, from the running host\n"
        "  cliqhost invoke schedule NAME [--url URL | --config FILE]\n"
        "                                             run a schedule now on the running host\n"
        "  cliqhost --version | --help\n"
        "\n"
        "options (flags override the config file, which overrides the defaults):\n"
        "  --config FILE              Lua file that sets the settings below as globals\n",
        CLIQHOST_VERSION);
    config_print_help(out);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The folder of shipped Lua modules: the setting; else share/cliqhost/lualib
 * beside the binary's folder (an installed, relocatable tree); else the
 * source tree the binary was built from (running from a build folder); else
 * the install prefix. Returns an allocated path or NULL. */
static char *find_lualib(const struct config *c)
{
    if (c->lualib)
        return xstrdup(c->lualib);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof cand, "%s/../share/cliqhost/lualib", dirname(exe));
        if (is_dir(cand)) {
            char *real = realpath(cand, NULL);
            if (real)
                return real;
        }
    }
    if (is_dir(CLIQHOST_SOURCE_LUALIB_DIR))
        return xstrdup(CLIQHOST_SOURCE_LUALIB_DIR);
    if (is_dir(CLIQHOST_LUALIB_INSTALL_DIR))
        return xstrdup(CLIQHOST_LUALIB_INSTALL_DIR);
    return NULL;
}

/* Defaults, then the config file, then the flags; then checks. */
static int load_config(struct config *c, int argc, char **argv, int serving)
{
    return config_load_all(c, argc, argv, 2, serving);
}

/* Reads `field:` of an INFO answer into out ("?" when absent). */
static void info_field(const char *info, const char *field, char *out, size_t n)
{
    const char *v = strstr(info, field);
    if (!v) {
        snprintf(out, n, "?");
        return;
    }
    v += strlen(field);
    snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
}

/* Asks the config's Redis as the host will (password, db) whether it will
 * do: Redis 7.0 or later (the replay check is SET ... NX GET), and a
 * maxmemory-policy of noeviction (an evicting Redis drops scripts' keys,
 * and replay claims first: the only keys with a time to live when scripts
 * set none). Returns 0 with what answered in msg, 1 with what is wrong, -1
 * when it cannot be asked (or the address is bad). */
static int redis_inspect(const struct config *c, long timeout_ms, char *msg, size_t n)
{
    struct redis_target t;
    char err[1024];
    if (redis_parse_url(c->store, &t, err, sizeof err) < 0) {
        snprintf(msg, n, "%s", err);
        return -1;
    }
    struct redis_sync *rs = redis_sync_new(&t, timeout_ms);
    int rc = -1;
    struct redisReply *r[2] = {NULL, NULL};
    const char *sections[2] = {"server", "memory"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"INFO", sections[i]};
        r[i] = redis_sync_command(rs, 2, argv, NULL, err, sizeof err);
        if (!r[i]) {
            snprintf(msg, n, "%s", err);
            goto done;
        }
        if (r[i]->type != REDIS_REPLY_STRING) {
            snprintf(msg, n, "%s answered INFO with %s", t.shown,
                     r[i]->type == REDIS_REPLY_ERROR ? r[i]->str : "something else");
            goto done;
        }
    }
    char version[32], policy[64];
    info_field(r[0]->str, "redis_version:", version, sizeof version);
    info_field(r[1]->str, "maxmemory_policy:", policy, sizeof policy);
    rc = 1;
    if (strtol(version, NULL, 10) < 7)
        snprintf(msg, n,
                 "%s is Redis %s; cliqhost needs 7.0 or later (its replay check uses SET ... NX "
                 "GET)",
                 t.shown, version);
    else if (strcmp(policy, "noeviction"))
        snprintf(msg, n,
                 "%s evicts keys when full (maxmemory-policy %s): it would drop scripts' keys "
                 "and the hosts' memory of calls answered; set maxmemory-policy noeviction",
                 t.shown, policy);
    else {
        snprintf(msg, n, "%s answers (Redis %s, maxmemory-policy %s)", t.shown, version, policy);
        rc = 0;
    }
done:
    for (int i = 0; i < 2; i++)
        if (r[i])
            freeReplyObject(r[i]);
    redis_sync_free(rs);
    return rc;
}

/* `check` on a config whose store is a Redis: says what answered. Returns
 * the problems found (0 or 1). */
static int check_store(const struct config *c)
{
    if (!shared_wanted(c))
        return 0;
    char msg[1200];
    int rc =
        redis_inspect(c, c->redis_timeout_ms > 1000 ? c->redis_timeout_ms : 1000, msg, sizeof msg);
    fprintf(stderr, "cliqhost: store: %s\n", msg);
    return rc != 0;
}

static int cmd_check(int argc, char **argv)
{
    struct config c;
    if (load_config(&c, argc, argv, 0) < 0)
        return 2;
    if (!is_dir(c.scripts)) {
        printf("%s: no such scripts folder\n", c.scripts);
        config_free(&c);
        return 1;
    }
    char *lualib = find_lualib(&c);
    struct luavm_options lo;
    server_luavm_options(&c, lualib, &lo);
    struct scripts_hub *hub = scripts_hub_new();
    int loaded = 0;
    int problems = reload_scan(hub, &lo, 1, stdout, &loaded);
    if (problems)
        fprintf(stderr, "cliqhost: %d problem%s in %s\n", problems, problems == 1 ? "" : "s",
                c.scripts);
    else
        fprintf(stderr, "cliqhost: %d script%s in %s load cleanly\n", loaded,
                loaded == 1 ? "" : "s", c.scripts);
    scripts_hub_free(hub);
    free(lualib);
    problems += check_store(&c);
    config_free(&c);
    return problems ? 1 : 0;
}

/* More connections than the default 1024 descriptors allow. A handler
 * waiting on an outbound call holds two descriptors (Cliq's connection and
 * its own), so say so when the limit cannot cover every connection the
 * settings allow. */
static void raise_fd_limit(const struct config *c, int workers)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    unsigned long long want = (unsigned long long)workers * (unsigned long long)c->max_connections;
    if (rl.rlim_cur != RLIM_INFINITY && 2 * want + 64 > rl.rlim_cur)
        log_msg(LOG_WARN, NULL,
                "the descriptor limit (%llu) is below what %d workers x %ld connections may need "
                "when handlers wait on outbound calls (two each); lower --max-connections to "
                "%llu or raise the limit (ulimit -n)",
                (unsigned long long)rl.rlim_cur, workers, c->max_connections,
                (rl.rlim_cur > 64 ? (rl.rlim_cur - 64) / 2 : 1) / (unsigned long long)workers);
}

/* Warns of each token the config names but gives no value (its
 * environment variable is unset): scripts' and `cliqhost post`'s posts with
 * it fail until it is set. */
static void warn_unusable_tokens(const struct config *c, const char *when)
{
    for (size_t i = 0; i < c->ntokens; i++) {
        const struct config_token *t = &c->tokens[i];
        char why[512];
        if (t->disabled || t->secret || !config_token_problem(c, t->name, why, sizeof why))
            continue;
        log_msg(LOG_WARN, NULL,
                "%s%s; scripts' posts with it fail, and posts queued with it wait, until it "
                "is set in the host's environment (with systemd: /etc/default/cliqhost) and the "
                "host restarted (SIGHUP does not read the environment again)",
                when, why);
    }
}

/* Settings SIGHUP replaced; they stay alive until exit because calls in
 * flight may still point into them. */
struct retired {
    struct config *cfg;
    struct verify_keyset *ks;
    struct retired *next;
};

static int str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Names the settings a running host cannot change that differ in `nc`,
 * and puts the running values back in it. */
static void keep_fixed(const struct config *c, struct config *nc, char *names, size_t n)
{
    names[0] = '\0';
#define FIXED_STR(f)                                                                               \
    if (str_differs(c->f, nc->f)) {                                                                \
        snprintf(names + strlen(names), n - strlen(names), "%s" #f, names[0] ? ", " : "");         \
        free(nc->f);                                                                               \
        nc->f = c->f ? xstrdup(c->f) : NULL;                                                       \
    }
#define FIXED_INT(f)                                                                               \
    if (c->f != nc->f) {                                                                           \
        snprintf(names + strlen(names), n - strlen(names), "%s" #f, names[0] ? ", " : "");         \
        nc->f = c->f;                                                                              \
    }
    FIXED_STR(listen)
    FIXED_STR(scripts)
    FIXED_STR(data_dir)
    FIXED_STR(lualib)
    FIXED_STR(store)
    FIXED_STR(redis_prefix)
    FIXED_INT(workers)
    FIXED_INT(no_verify)
    FIXED_INT(max_connections)
    FIXED_INT(connection_memory_bytes)
    FIXED_INT(idle_timeout_s)
    FIXED_INT(max_connections_per_ip)
    FIXED_INT(request_timeout_s)
    FIXED_INT(reload_settle_ms)
    FIXED_INT(replay_window_s)
    FIXED_INT(replay_memory)
    FIXED_INT(hook_id_memory)
    FIXED_INT(post_rate_per_min)
#undef FIXED_STR
#undef FIXED_INT
    int env_same = c->nscript_env == nc->nscript_env;
    for (size_t i = 0; env_same && i < c->nscript_env; i++)
        env_same = strcmp(c->script_env[i], nc->script_env[i]) == 0;
    if (!env_same) {
        snprintf(names + strlen(names), n - strlen(names), "%sscript_env", names[0] ? ", " : "");
        for (size_t i = 0; i < nc->nscript_env; i++)
            free(nc->script_env[i]);
        free(nc->script_env);
        nc->script_env = xcalloc(c->nscript_env + 1, sizeof *nc->script_env);
        for (size_t i = 0; i < c->nscript_env; i++)
            nc->script_env[i] = xstrdup(c->script_env[i]);
        nc->nscript_env = c->nscript_env;
    }
}

/* SIGHUP: the config file and flags again, all or nothing. */
static void reload_config(int argc, char **argv, struct config **cur, struct verify_keyset **ks,
                          struct server *srv, struct reloader *rl, const char *lualib,
                          struct retired **retired)
{
    struct config *nc = xcalloc(1, sizeof *nc);
    char err[1024];
    if (config_read(nc, argc, argv, 2, 1, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, NULL, "SIGHUP: config not reloaded; the running settings stay: %s", err);
        free(nc);
        return;
    }
    struct verify_keyset *nks = NULL;
    if (!nc->no_verify) {
        nks = verify_keyset_load((const char *const *)nc->keys, nc->nkeys, err, sizeof err);
        if (!nks) {
            log_msg(LOG_ERROR, NULL, "SIGHUP: config not reloaded; the running settings stay: %s",
                    err);
            config_free(nc);
            free(nc);
            return;
        }
    }
    char fixed[512];
    keep_fixed(*cur, nc, fixed, sizeof fixed);
    if (fixed[0])
        log_msg(LOG_WARN, NULL, "SIGHUP: %s cannot change while the host runs; restart for that",
                fixed);
    server_reconfigure(srv, nc, nks);
    if (rl) {
        struct luavm_options lo;
        server_luavm_options(nc, lualib, &lo);
        reloader_set_options(rl, &lo);
    }
    enum log_level level;
    if (log_parse_level(nc->log_level, &level) == 0)
        log_set_level(level);
    log_set_json(strcmp(nc->log_format, "json") == 0);
    struct retired *r = xcalloc(1, sizeof *r);
    r->cfg = *cur;
    r->ks = *ks;
    r->next = *retired;
    *retired = r;
    *cur = nc;
    *ks = nks;
    log_msg(LOG_INFO, NULL, "SIGHUP: config reloaded (%zu key%s, %zu token%s)",
            nks ? verify_keyset_count(nks) : 0, nks && verify_keyset_count(nks) == 1 ? "" : "s",
            nc->ntokens, nc->ntokens == 1 ? "" : "s");
    warn_unusable_tokens(nc, "SIGHUP: ");
}

static int cmd_serve(int argc, char **argv)
{
    struct config c;
    if (load_config(&c, argc, argv, 1) < 0)
        return 2;
    int rc = 1;
    char err[1024];
    struct verify_keyset *ks = NULL;
    struct server *srv = NULL;
    char *lualib = NULL;
    struct scripts_hub *hub = NULL;
    struct reloader *reloader = NULL;
    struct config *cur = &c;
    struct verify_keyset *curks = NULL;
    struct retired *retired = NULL;

    if (!c.no_verify) {
        ks = verify_keyset_load((const char *const *)c.keys, c.nkeys, err, sizeof err);
        curks = ks;
        if (!ks) {
            log_msg(LOG_ERROR, NULL, "cannot start: %s", err);
            goto cleanup;
        }
        for (size_t i = 0; i < verify_keyset_count(ks); i++)
            log_msg(LOG_INFO, NULL, "key %zu: %s", i + 1, verify_keyset_describe(ks, i));
    } else {
        log_msg(LOG_WARN, NULL, "*** SIGNATURE CHECKS ARE OFF (--no-verify) ***");
        log_msg(LOG_WARN, NULL,
                "*** anyone who can reach %s runs your scripts; for local development only ***",
                c.listen);
    }
    warn_unusable_tokens(&c, "");
    if (!is_dir(c.scripts))
        log_msg(LOG_WARN, NULL, "scripts folder %s does not exist; every call will get 404",
                c.scripts);
    lualib = find_lualib(&c);
    if (!lualib)
        log_msg(LOG_WARN, NULL, "no lualib folder found; require finds only %s/lib", c.scripts);

    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    hub = scripts_hub_new();
    struct luavm_options lo;
    server_luavm_options(&c, lualib, &lo);
    reload_scan(hub, &lo, 1, NULL, NULL);

    if (shared_wanted(&c)) {
        /* A Redis that will not do (too old, or evicting keys) stops the
         * host at start; one that does not answer yet is the link's to
         * tell (it connects when it can). */
        char msg[1200];
        if (redis_inspect(&c, c.redis_timeout_ms, msg, sizeof msg) == 1) {
            log_msg(LOG_ERROR, NULL, "cannot start: store: %s", msg);
            goto cleanup;
        }
    }
    srv = server_new(&c, lualib, ks, hub, err, sizeof err);
    if (!srv) {
        log_msg(LOG_ERROR, NULL, "cannot start: %s", err);
        goto cleanup;
    }
    raise_fd_limit(&c, server_workers(srv));
    if (server_start(srv, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, NULL, "cannot start: %s", err);
        goto cleanup;
    }
    if (c.reload_settle_ms > 0) {
        reloader = reloader_start(hub, &lo, c.reload_settle_ms, err, sizeof err);
        if (!reloader)
            log_msg(LOG_WARN, NULL, "%s; scripts are not reloaded live (restart to pick up edits)",
                    err);
    }
    char host[128];
    snprintf(host, sizeof host, "%s", c.listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    log_msg(LOG_INFO, NULL, "cliqhost %s listening on %s:%u (%d workers, scripts in %s)",
            CLIQHOST_VERSION, host, server_port(srv), server_workers(srv), c.scripts);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload_config(argc, argv, &cur, &curks, srv, reloader, lualib, &retired);
            continue;
        }
        log_msg(LOG_INFO, NULL, "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    reloader_stop(reloader);
    reloader = NULL;
    server_stop(srv);
    log_msg(LOG_INFO, NULL, "stopped");
    rc = 0;
cleanup:
    reloader_stop(reloader);
    server_free(srv);
    scripts_hub_free(hub);
    if (cur != &c) {
        config_free(cur);
        free(cur);
        verify_keyset_free(curks);
    }
    while (retired) {
        struct retired *r = retired;
        retired = r->next;
        if (r->cfg != &c) {
            config_free(r->cfg);
            free(r->cfg);
        }
        verify_keyset_free(r->ks);
        free(r);
    }
    if (cur == &c)
        verify_keyset_free(ks); /* else it was retired, and freed above */
    free(lualib);
    config_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    arena_install_cjson_hooks();
    if (fetch_global_init() < 0) {
        fprintf(stderr, "cliqhost: cannot initialise libcurl\n");
        return 1;
    }
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        print_version();
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return 0;
    }
    /* These two print their own --help. */
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(argc, argv);
    if (strcmp(cmd, "invoke") == 0)
        return argc > 2 && strcmp(argv[2], "schedule") == 0 ? cli_invoke_schedule(argc, argv)
                                                            : cli_invoke(argc, argv);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            return 0;
        }
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc, argv);
    if (strcmp(cmd, "post") == 0)
        return cli_post(argc, argv);
    if (strcmp(cmd, "tokens") == 0)
        return cli_tokens(argc, argv);
    if (strcmp(cmd, "outbox") == 0)
        return cli_outbox(argc, argv);
    if (strcmp(cmd, "schedules") == 0)
        return cli_schedules(argc, argv);
    fprintf(stderr,
            "cliqhost: unknown command '%s' (serve, check, invoke, keygen, post, tokens, outbox, "
            "schedules, --help)\n",
            cmd);
    return 2;
}
