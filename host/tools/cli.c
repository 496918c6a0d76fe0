/* cli: `post`, `tokens` and `outbox` for operators (see cli.h). */
#include "tools/cli.h"

#include "cliq/outbox.h"
#include "cliq/shared.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/mailbox.h"
#include "event/sched.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_QUEUED 75 /* EX_TEMPFAIL */
#define JSON_MAX    (1024 * 1024)

struct post_result {
    int done;
    struct outbox_outcome oc;
};

static void on_outcome(const struct outbox_outcome *oc, void *ud)
{
    struct post_result *r = ud;
    r->done = 1;
    r->oc = *oc;
    r->oc.error = oc->error ? xstrdup(oc->error) : NULL;
    r->oc.reply = oc->reply ? xstrdup(oc->reply) : NULL;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "cliqhost post: %s\n"
            "usage: cliqhost post channel NAME [TEXT] [--token NAME] [--bot BOT] [--json FILE|-]\n"
            "       cliqhost post bot NAME [TEXT] [--users ID,ID | --broadcast] [--token NAME]\n"
            "                     [--json FILE|-] [--wait SECONDS] [--config FILE]\n",
            why);
    return 2;
}

int cli_post(int argc, char **argv)
{
    if (argc < 4)
        return usage("needs a kind (channel or bot) and a name");
    enum post_kind kind;
    if (strcmp(argv[2], "channel") == 0)
        kind = POST_CHANNEL;
    else if (strcmp(argv[2], "bot") == 0)
        kind = POST_BOT_MESSAGE;
    else
        return usage("the kind is channel or bot");
    const char *name = argv[3];
    if (strncmp(name, "--", 2) == 0 || !*name)
        return usage("needs the channel's or bot's unique name before any option");
    if (outbox_name_problem(name))
        return usage(outbox_name_problem(name));
    const char *text = NULL, *token = "default", *bot = NULL, *users = NULL, *json_path = NULL;
    int broadcast = 0;
    long wait_s = 30;
    /* The post's own flags; the rest are settings for config_load_all. */
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    rest[nrest++] = argv[0];
    rest[nrest++] = argv[1];
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--token") == 0 && has_value)
            token = argv[++i];
        else if (strcmp(a, "--bot") == 0 && has_value && kind == POST_CHANNEL)
            bot = argv[++i];
        else if (strcmp(a, "--users") == 0 && has_value && kind == POST_BOT_MESSAGE)
            users = argv[++i];
        else if (strcmp(a, "--broadcast") == 0 && kind == POST_BOT_MESSAGE)
            broadcast = 1;
        else if (strcmp(a, "--json") == 0 && has_value)
            json_path = argv[++i];
        else if (strcmp(a, "--wait") == 0 && has_value) {
            char *end;
            wait_s = strtol(argv[++i], &end, 10);
            if (*end || wait_s < 0 || wait_s > 86400) {
                free(rest);
                return usage("--wait takes seconds (0 to 86400)");
            }
        } else if (strncmp(a, "--", 2) != 0 && !text && !json_path)
            text = a;
        else
            rest[nrest++] = argv[i];
    }
    if (!text && !json_path) {
        free(rest);
        return usage("give the message as TEXT, or as a JSON table with --json FILE (- for stdin)");
    }
    if (users && broadcast) {
        free(rest);
        return usage("--users and --broadcast exclude each other");
    }
    if (kind == POST_BOT_MESSAGE && !users && !broadcast) {
        free(rest);
        return usage("a bot message goes to --users ID,ID or to everyone with --broadcast");
    }
    struct config c;
    if (config_load_all(&c, nrest, rest, 2, 0) < 0) {
        free(rest);
        return 2;
    }
    free(rest);
    int rc = 1;
    char err[512];
    struct sched *s = NULL;
    struct mailbox *mb = NULL;
    struct outbox *o = NULL;
    struct shared *sh = NULL;
    struct shared_pacer *pacer = NULL;
    cJSON *msg = NULL;
    char *body = NULL;
    char why[512];
    if (config_token_problem(&c, token, why, sizeof why)) {
        fprintf(stderr, "cliqhost post: %s%s\n", why,
                c.config_path ? "" : "; no --config was given");
        goto cleanup;
    }
    if (json_path) {
        size_t json_len;
        char *text_json = buf_read_file(json_path, JSON_MAX, &json_len, err, sizeof err);
        if (!text_json) {
            fprintf(stderr, "cliqhost post: %s\n", err);
            rc = 2;
            goto cleanup;
        }
        msg = cJSON_Parse(text_json);
        free(text_json);
        if (!cJSON_IsObject(msg)) {
            fprintf(stderr, "cliqhost post: %s is not a JSON object (a message: text, card, ...)\n",
                    json_path);
            rc = 2;
            goto cleanup;
        }
    } else {
        msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "text", text);
    }
    if (users)
        cJSON_AddStringToObject(msg, "userids", users);
    if (broadcast)
        cJSON_AddTrueToObject(msg, "broadcast");
    body = cJSON_PrintUnformatted(msg);

    struct post *p = xcalloc(1, sizeof *p);
    p->kind = kind;
    p->token = xstrdup(token);
    p->target = xstrdup(name);
    p->as_bot = bot ? xstrdup(bot) : NULL;
    p->base = xstrdup(c.cliq_api ? c.cliq_api : "https://cliq.zoho.com");
    p->body = xstrdup(body);
    p->len = strlen(body);
    o = outbox_open(&c, 1, err, sizeof err);
    /* With hosts sharing a Redis, this post takes its slot in the token's
     * window with theirs. */
    if (o && shared_wanted(&c)) {
        sh = shared_new(&c, err, sizeof err);
        if (!sh) {
            fprintf(stderr, "cliqhost post: store: %s\n", err);
            outbox_post_free(p);
            rc = 2;
            goto cleanup;
        }
        pacer = shared_pacer_new(sh, &c);
        outbox_share_pacing(o, pacer);
    }
    s = sched_new(NULL, NULL, NULL);
    mb = s ? mailbox_new(s) : NULL;
    if (!o || !mb) {
        fprintf(stderr, "cliqhost post: %s\n", o ? "cannot set up a loop" : err);
        outbox_post_free(p);
        goto cleanup;
    }
    struct post_result r = {0};
    if (outbox_submit(o, p, 1, mb, on_outcome, NULL, &r, err, sizeof err) < 0) {
        fprintf(stderr, "cliqhost post: %s\n", err);
        goto cleanup;
    }
    long long until = sched_clock_ms() + wait_s * 1000;
    while (!r.done && sched_clock_ms() < until)
        sched_run_once(s, (int)(until - sched_clock_ms()));
    if (!r.done) {
        /* Closing lets a send in flight finish (rather than send it twice
         * later); its outcome may still come. */
        outbox_close(o);
        o = NULL;
        sched_run_once(s, 0);
    }
    if (!r.done) {
        printf("queued, not delivered yet after %ld s; the host (or the next post) will keep "
               "trying: see `cliqhost outbox`\n",
               wait_s);
        rc = EXIT_QUEUED;
    } else if (r.oc.state == OUTBOX_DELIVERED) {
        printf("delivered (HTTP %ld)%s%s\n", r.oc.status, r.oc.reply_len ? ": " : "",
               r.oc.reply_len ? r.oc.reply : "");
        rc = 0;
    } else {
        fprintf(stderr, "cliqhost post: failed: %s\n", r.oc.error ? r.oc.error : "?");
        rc = 1;
    }
    free(r.oc.error);
    free(r.oc.reply);
cleanup:
    outbox_close(o); /* before the mailbox it answers to, and its pacer */
    shared_pacer_free(pacer);
    shared_free(sh);
    mailbox_free(mb);
    sched_free(s);
    cJSON_free(body);
    cJSON_Delete(msg);
    config_free(&c);
    return rc;
}

int cli_tokens(int argc, char **argv)
{
    struct config c;
    if (config_load_all(&c, argc, argv, 2, 0) < 0)
        return 2;
    char err[512];
    int rc = outbox_tokens_report(&c, stdout, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "cliqhost tokens: %s\n", err);
    config_free(&c);
    return rc < 0 ? 1 : 0;
}

int cli_outbox(int argc, char **argv)
{
    const char *verb = "list";
    int first = 2;
    if (argc > 2 && strncmp(argv[2], "--", 2) != 0) {
        verb = argv[2];
        first = 3;
    }
    long long id = 0;
    if (strcmp(verb, "retry") == 0 || strcmp(verb, "drop") == 0) {
        char *end;
        if (argc <= first || (id = strtoll(argv[first], &end, 10)) <= 0 || *end) {
            fprintf(stderr, "cliqhost outbox: %s needs a post id (see `cliqhost outbox list`)\n",
                    verb);
            return 2;
        }
        first++;
    } else if (strcmp(verb, "list") != 0) {
        fprintf(stderr, "cliqhost outbox: unknown action '%s' (list, retry ID, drop ID)\n", verb);
        return 2;
    }
    /* `list --all`: the list always shows every post kept (queued and
     * failed; delivered ones are not kept), so --all is accepted as is. */
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    int nargs = 0;
    for (int i = 0; i < argc; i++)
        if (i < first || strcmp(argv[i], "--all") != 0)
            args[nargs++] = argv[i];
    struct config c;
    int loaded = config_load_all(&c, nargs, args, first, 0);
    free(args);
    if (loaded < 0)
        return 2;
    char err[512];
    int rc;
    if (strcmp(verb, "list") == 0) {
        rc = outbox_list(&c, stdout, err, sizeof err) < 0 ? -1 : 0;
    } else {
        rc = strcmp(verb, "retry") == 0 ? outbox_retry(&c, id, err, sizeof err)
                                        : outbox_drop(&c, id, err, sizeof err);
        if (rc == 1)
            fprintf(stderr, "cliqhost outbox: no %s post %lld\n",
                    strcmp(verb, "retry") == 0 ? "failed or queued" : "such", id);
        else if (rc == 0)
            printf("%s %lld\n", strcmp(verb, "retry") == 0 ? "queued again:" : "dropped:", id);
    }
    if (rc < 0)
        fprintf(stderr, "cliqhost outbox: %s\n", err);
    config_free(&c);
    return rc == 0 ? 0 : 1;
}
