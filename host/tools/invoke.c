/* invoke: plays Cliq against a running host (see invoke.h). */
#include "tools/invoke.h"

#include "cliq/callbody.h"
#include "cliq/render.h"
#include "cliq/request.h"
#include "cliq/verify.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#ifndef CLIQHOST_VERSION
#define CLIQHOST_VERSION "0.0.0"
#endif

#define EXIT_REPLIED     0 /* 200, and the late reply if one was announced */
#define EXIT_ERROR_REPLY 1 /* an error status, or a 200 that is not {"output": ...} */
#define EXIT_USAGE       2 /* nothing sent: bad arguments, no key, unreadable files */
#define EXIT_UNREACHABLE 3 /* no answer from the host */
#define EXIT_NO_LATE     4 /* the reply was handed off and never reached response_url */
#define EXIT_FAILED      5 /* the handler failed (raised, or a limit stopped it) */

#define DEFAULT_URL       "http://127.0.0.1:8080/"
#define DEFAULT_KEY       "build/dev/cliq-dev.pem"
#define DEFAULT_TIMEOUT_S 10  /* over Cliq's 5 s, so a slow host shows as slow, not down */
#define DEFAULT_WAIT_S    130 /* over the host's 120 s run limit */
#define KEY_FILE_MAX      (64 * 1024)
#define BODY_FILE_MAX     (16 * 1024 * 1024) /* room to try the host's 413 */
#define REPLY_MAX         (8 * 1024 * 1024)
#define URL_MAX           2048
#define PATH_MAX_LEN      4096
#define CATCHER_CONNS     16
#define DRY_RUN_URL       "http://127.0.0.1:0/v2/extensions/invoke/responses/dry-run"
#define CATCHER_IDLE_S    30
#define DEBUG_ERROR_MAX   4096 /* an X-Cliqhost-Error value kept (the host sends at most 2048) */

/* ---- the command line -------------------------------------------------- */

struct options {
    struct callbody_input in;
    const struct callbody_handler *h; /* NULL with --body */
    const char *type;
    char *text; /* TEXT's words joined; owned */
    const char *key_path, *url, *body_path;
    const char *cacert; /* --cacert, else $CURL_CA_BUNDLE; NULL: the system's */
    const char *config; /* --config: the host's config file, for the URL */
    char *config_url;   /* the URL built from it; owned */
    long timeout_s, wait_s;
    int json, dry_run;
    /* Owned arrays behind `in`; the keys are owned copies. */
    struct callbody_pair *args, *values, *params;
    const char **attachments;
};

/* Prints `text` from column `col` (the cursor is there), wrapped at word
 * boundaries before column `width`, continuation lines indented to `col`. */
static void print_wrapped(const char *text, int col, int width)
{
    int at = col;
    const char *p = text;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (at > col && at + 1 + (int)word > width) {
            printf("\n%*s", col, "");
            at = col;
        } else if (at > col) {
            putchar(' ');
            at++;
        }
        printf("%.*s", (int)word, p);
        at += (int)word;
        p += word;
        while (*p == ' ')
            p++;
    }
    putchar('\n');
}

static void print_help(void)
{
    printf("usage: cliqhost invoke TYPE [NAME] [HANDLER] [TEXT...] [options]\n"
           "       cliqhost invoke --body FILE [options]\n"
           "\n"
           "Plays Cliq against a running host: builds the body Cliq sends for the handler\n"
           "(user, chat, environment, access and location as Cliq sends them; timestamp now),\n"
           "signs it as Cliq does (RSA PKCS#1 v1.5 SHA-256 in X-Cliq-Signature), POSTs it to\n"
           "the host and prints the reply. The body's response_url is served once on\n"
           "127.0.0.1 (an ephemeral port): a reply sent there by req:respond(), or late\n"
           "after the host's deadline, is printed too.\n"
           "\n"
           "  cliqhost invoke command deploy \"api prod\"\n"
           "  cliqhost invoke command deploy suggestion \"api pr\"\n"
           "  cliqhost invoke bot helper message hi\n"
           "  cliqhost invoke bot helper context feedback --value rating=Great --value wish=More\n"
           "  cliqhost invoke bot helper action --action help\n"
           "  cliqhost invoke function approval button --arg key=approve:api:prod\n"
           "  cliqhost invoke function approval form reject_reason --value reason=holiday\n"
           "  cliqhost invoke link_preview https://example.com/a\n"
           "  cliqhost invoke --body captured.json\n"
           "\n"
           "TYPE, NAME and HANDLER name the script and handler as serve maps them; HANDLER\n"
           "is the short name (message) or the wire name (message_handler). TEXT's words\n"
           "are joined with spaces; put -- before TEXT that starts with -. Each handler,\n"
           "and what TEXT and the inputs below mean for it (* Cliq sends it a response_url):\n");
    size_t n;
    const struct callbody_handler *hs = callbody_handlers(&n);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(hs[i].type, hs[i - 1].type) != 0) {
            int per_component = 0;
            request_type_path(hs[i].type, &per_component);
            const struct callbody_handler *d = callbody_default(hs[i].type);
            printf("\n  %s%s %s [TEXT]", hs[i].type, per_component ? " NAME" : "",
                   d ? "[HANDLER]" : "HANDLER");
            if (d)
                printf("   (HANDLER left out: %s)", d->key);
            putchar('\n');
        }
        printf("    %c %-22s ", hs[i].response_url ? '*' : ' ', hs[i].key);
        print_wrapped(hs[i].help, 29, 80);
    }
    printf("\n"
           "handler inputs:\n"
           "  --arg KEY=VALUE     button arguments (a button's key: --arg key=...), a form\n"
           "                      view's params, a webhook's query, an unfurl button's params\n"
           "  --value NAME=VALUE  form values, bot context answers; a select's value is JSON:\n"
           "                      --value 'os={\"label\":\"Android\",\"value\":\"android\"}'\n"
           "  --action NAME       the menu item of a bot action\n"
           "  --attachment URL    an attached file (bot message, context, command, message "
           "action)\n"
           "  The VALUE of --arg and --value is a string, or a JSON object or list as written.\n"
           "\n"
           "who and where (any handler; Cliq's sample user and channel otherwise):\n"
           "  --user-id ID        user.id and zoho_user_id, access.user_id (123456, 130720038)\n"
           "  --user-name NAME    user.first_name and last_name, split at the first space\n"
           "                      (Scott Fisher)\n"
           "  --user-email EMAIL  user.email (scott.fisher@zylcal.com)\n"
           "  --chat-id ID        chat.id and access.chat_id\n"
           "  --channel NAME      chat.title and chat.channel_unique_name (Catalyst, sample)\n"
           "  --param PATH=VALUE  sets any field under params by a dotted path, last:\n"
           "                      user.timezone=Europe/Paris, chat.type=dm,\n"
           "                      location.status=denied, attachments.0.comment=see this;\n"
           "                      VALUE is JSON when it is valid JSON (42, true, {\"a\":1},\n"
           "                      '\"42\"' for the string), else a string\n"
           "\n"
           "sending:\n"
           "  --key FILE          PEM private key to sign with; default $CLIQHOST_KEY, else\n"
           "                      " DEFAULT_KEY " when it exists (cliqhost keygen DIR makes one)\n"
           "  --url URL           the host's callback URL as Cliq calls it, path and all\n"
           "                      (default " DEFAULT_URL ", or what --config gives); the\n"
           "                      response_url is on this machine's 127.0.0.1, so late replies\n"
           "                      come back only from a host on this machine that allows it\n"
           "                      (serve --response-url-allow 127.0.0.1; ./dev.sh serve does)\n"
           "  --config FILE       the host's config file: call its listen address (127.0.0.1\n"
           "                      for one on every interface) at its callback_path\n"
           "  --cacert FILE       trust the CA certificates in FILE (PEM) for an https --url,\n"
           "                      e.g. a TLS proxy's self-signed certificate; default\n"
           "                      $CURL_CA_BUNDLE, else the system's\n"
           "  --timeout SECONDS   wait this long for the host's answer (default %d; Cliq waits 5)\n"
           "  --wait SECONDS      wait this long for a late reply at response_url (default %d)\n"
           "  --body FILE         send FILE's bytes as the body (- for standard input), signed;\n"
           "                      only a top-level response_url in it is changed, to invoke's own\n"
           "  --dry-run           print the body that would be sent, and send nothing\n"
           "\n"
           "output:\n"
           "  Standard error gets the HTTP status, request id (X-Request-Id) and time, and a\n"
           "  line before each reply that came to response_url. Standard output gets the\n"
           "  replies as text: a message's text, bot, card, slides, buttons; banners, forms,\n"
           "  widgets, suggestions, ... (anything else as JSON).\n"
           "  --json              print each reply's JSON exactly as received instead, one per\n"
           "                      line: the HTTP reply first, then what reached response_url\n"
           "\n"
           "exit status:\n"
           "  0  the host answered 200 (and a late reply it announced came)\n"
           "  1  the host answered with an error status (401, 404, ...; its message is\n"
           "     printed) or a 200 that is not {\"output\": ...}\n"
           "  2  nothing was sent: bad arguments, no key, an unreadable key or body file\n"
           "  3  the host is not reachable at --url, or did not answer within --timeout\n"
           "  4  the host handed the reply to response_url (X-Cliqhost-Late) and none came\n"
           "     within --wait\n"
           "  5  the handler failed: it raised, or a limit (time, CPU, memory) stopped it.\n"
           "     Its error and traceback are printed (invoke asks with X-Cliqhost-Debug: 1\n"
           "     and the host answers in X-Cliqhost-Error, tokens masked; the reply, the\n"
           "     chat user's short message, is the same as for a call from Cliq)\n",
           DEFAULT_TIMEOUT_S, DEFAULT_WAIT_S);
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints one line saying what was wrong; returns EXIT_USAGE. */
static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cliqhost invoke: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see cliqhost invoke --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static void options_free(struct options *o)
{
    for (size_t i = 0; i < o->in.nargs; i++)
        free((char *)o->args[i].key);
    for (size_t i = 0; i < o->in.nvalues; i++)
        free((char *)o->values[i].key);
    for (size_t i = 0; i < o->in.nparams; i++)
        free((char *)o->params[i].key);
    free(o->args);
    free(o->values);
    free(o->params);
    free(o->attachments);
    free(o->text);
    free(o->config_url);
}

/* Appends "KEY=VALUE" (`flag`'s value) to list[*n]: the key copied, the
 * value borrowed from argv. Returns 0, or EXIT_USAGE (said) if there is no
 * '=' or no key. */
static int add_pair(struct callbody_pair *list, size_t *n, const char *flag, const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return usage("%s takes %s=VALUE, not '%s'", flag,
                     strcmp(flag, "--param") == 0 ? "PATH" : "NAME", s);
    list[*n].key = xstrndup(s, (size_t)(eq - s));
    list[*n].value = eq + 1;
    (*n)++;
    return 0;
}

/* The flags that take a value, for the error when the value is missing. */
static const char *const value_flags[] = {
    "--key",       "--url",        "--timeout", "--wait",    "--body",       "--arg",
    "--cacert",    "--config",     "--value",   "--action",  "--attachment", "--user-id",
    "--user-name", "--user-email", "--chat-id", "--channel", "--param",      NULL,
};

static int takes_value(const char *flag)
{
    for (const char *const *f = value_flags; *f; f++)
        if (strcmp(*f, flag) == 0)
            return 1;
    return 0;
}

/* Reads the positional words (TYPE, NAME, HANDLER, TEXT) and checks that
 * the inputs given apply to the handler. Returns 0, or EXIT_USAGE (said). */
static int resolve_call(struct options *o, const char **pos, size_t npos)
{
    if (o->body_path) {
        if (npos || o->in.nargs || o->in.nvalues || o->in.nparams || o->in.nattachments ||
            o->in.action || o->in.user_id || o->in.user_name || o->in.user_email || o->in.chat_id ||
            o->in.channel)
            return usage("--body sends FILE as it is: it takes no TYPE, TEXT or body options");
        return 0;
    }
    if (npos == 0)
        return usage("needs a TYPE (command, bot, messageaction, function, widget, extension, "
                     "link_preview), or --body FILE");
    size_t next = 0;
    o->type = pos[next++];
    int per_component = 0;
    if (!request_type_path(o->type, &per_component))
        return usage("unknown TYPE '%s' (command, bot, messageaction, function, widget, extension, "
                     "link_preview)",
                     o->type);
    if (per_component) {
        if (next >= npos)
            return usage("a %s needs its NAME (the script is %s<NAME>.lua)", o->type,
                         request_type_path(o->type, NULL));
        o->in.name = pos[next++];
    }
    o->h = next < npos ? callbody_find(o->type, pos[next]) : NULL;
    if (o->h)
        next++;
    else
        o->h = callbody_default(o->type);
    if (!o->h && next < npos)
        return usage("%s has no handler '%s' (%s)", o->type, pos[next],
                     request_keys_for_type(o->type));
    if (!o->h)
        return usage("a %s call needs a HANDLER (%s)", o->type, request_keys_for_type(o->type));
    if (next < npos) {
        struct buf b;
        buf_init(&b, CALLBODY_TEXT_MAX);
        for (size_t i = next; i < npos; i++) {
            if ((i > next && buf_addc(&b, ' ') < 0) || buf_adds(&b, pos[i]) < 0) {
                buf_free(&b);
                return usage("TEXT is longer than %d bytes", CALLBODY_TEXT_MAX);
            }
        }
        size_t len;
        o->text = buf_take(&b, &len);
        o->in.text = o->text;
    }

    const struct {
        unsigned bit;
        const char *what;
        int given;
    } inputs[] = {
        {CALLBODY_TAKES_TEXT, "TEXT", o->in.text != NULL},
        {CALLBODY_TAKES_ARG, "--arg", o->in.nargs > 0},
        {CALLBODY_TAKES_VALUE, "--value", o->in.nvalues > 0},
        {CALLBODY_TAKES_ACTION, "--action", o->in.action != NULL},
        {CALLBODY_TAKES_ATTACHMENT, "--attachment", o->in.nattachments > 0},
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        if (inputs[i].given && !(o->h->takes & inputs[i].bit)) {
            if (strcmp(o->h->help, "no TEXT") == 0)
                return usage("%s %s takes no %s, nor any other input", o->type, o->h->key,
                             inputs[i].what);
            return usage("%s %s takes no %s; it takes %s", o->type, o->h->key, inputs[i].what,
                         o->h->help);
        }
    }
    return 0;
}

int invoke_host_url(const char *config, char *base, size_t n, char *path, size_t pathlen, char *err,
                    size_t errlen)
{
    struct config cfg;
    config_defaults(&cfg);
    if (config_load_file(&cfg, config, err, errlen) < 0 ||
        config_validate(&cfg, 0, err, errlen) < 0) {
        config_free(&cfg);
        return -1;
    }
    struct sockaddr_storage ss;
    unsigned sslen;
    int loopback, rc = -1;
    char addr[INET6_ADDRSTRLEN + 2] = "";
    unsigned port = 0;
    char why[512];
    if (config_parse_listen(cfg.listen, &ss, &sslen, &loopback, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s", config, why);
        goto done;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        char text[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
            a->sin6_addr = in6addr_loopback;
        inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        snprintf(addr, sizeof addr, "[%s]", text);
        port = ntohs(a->sin6_port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        if (a->sin_addr.s_addr == htonl(INADDR_ANY))
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
        port = ntohs(a->sin_port);
    }
    if (port == 0) {
        snprintf(err, errlen, "%s: listen '%s' picks a free port at start; give --url", config,
                 cfg.listen);
        goto done;
    }
    snprintf(base, n, "http://%s:%u", addr, port);
    if (path)
        snprintf(path, pathlen, "%s", cfg.callback_path);
    rc = 0;
done:
    config_free(&cfg);
    return rc;
}

/* The callback URL of the host that the config file --config names:
 * http:// its listen address (one on every interface is called on
 * loopback) and its callback_path. Returns 0, or EXIT_USAGE (said). */
static int config_url(struct options *o)
{
    char base[128], path[CONFIG_CALLBACK_PATH_MAX + 1], err[1024];
    if (invoke_host_url(o->config, base, sizeof base, path, sizeof path, err, sizeof err) < 0)
        return usage("--config: %s", err);
    size_t n = strlen(base) + strlen(path) + 1;
    o->config_url = xmalloc(n);
    snprintf(o->config_url, n, "%s%s", base, path);
    o->url = o->config_url;
    return 0;
}

/* Reads the command line into `o`. Returns 0, 1 when --help was printed,
 * or EXIT_USAGE (the message printed). `o` is to be freed either way. */
static int parse_args(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof *o);
    o->url = DEFAULT_URL;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    o->wait_s = DEFAULT_WAIT_S;
    size_t cap = (size_t)argc + 1;
    o->args = xcalloc(cap, sizeof *o->args);
    o->values = xcalloc(cap, sizeof *o->values);
    o->params = xcalloc(cap, sizeof *o->params);
    o->attachments = xcalloc(cap, sizeof *o->attachments);
    const char **pos = xcalloc(cap, sizeof *pos);
    size_t npos = 0;
    int rc = EXIT_USAGE, dashdash = 0, url_given = 0;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            pos[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help();
            rc = 1;
            goto done;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
            continue;
        }
        if (!takes_value(a)) {
            usage("unknown option '%s'", a);
            goto done;
        }
        if (i + 1 >= argc) {
            usage("%s needs a value", a);
            goto done;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--key") == 0) {
            o->key_path = v;
        } else if (strcmp(a, "--url") == 0) {
            url_given = 1;
            if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
                usage("--url takes an http:// or https:// URL, not '%s'", v);
                goto done;
            }
            o->url = v;
        } else if (strcmp(a, "--config") == 0) {
            o->config = v;
        } else if (strcmp(a, "--cacert") == 0) {
            if (access(v, R_OK) != 0) {
                usage("--cacert %s: cannot read it (%s)", v, strerror(errno));
                goto done;
            }
            o->cacert = v;
        } else if (strcmp(a, "--timeout") == 0) {
            if (config_parse_long(v, 1, 600, &o->timeout_s) < 0) {
                usage("--timeout takes whole seconds from 1 to 600");
                goto done;
            }
        } else if (strcmp(a, "--wait") == 0) {
            if (config_parse_long(v, 0, 3600, &o->wait_s) < 0) {
                usage("--wait takes whole seconds from 0 to 3600");
                goto done;
            }
        } else if (strcmp(a, "--body") == 0) {
            o->body_path = v;
        } else if (strcmp(a, "--arg") == 0) {
            if (add_pair(o->args, &o->in.nargs, a, v) != 0)
                goto done;
        } else if (strcmp(a, "--value") == 0) {
            if (add_pair(o->values, &o->in.nvalues, a, v) != 0)
                goto done;
        } else if (strcmp(a, "--param") == 0) {
            if (add_pair(o->params, &o->in.nparams, a, v) != 0)
                goto done;
        } else if (strcmp(a, "--action") == 0) {
            o->in.action = v;
        } else if (strcmp(a, "--attachment") == 0) {
            o->attachments[o->in.nattachments++] = v;
        } else if (strcmp(a, "--user-id") == 0) {
            o->in.user_id = v;
        } else if (strcmp(a, "--user-name") == 0) {
            o->in.user_name = v;
        } else if (strcmp(a, "--user-email") == 0) {
            o->in.user_email = v;
        } else if (strcmp(a, "--chat-id") == 0) {
            o->in.chat_id = v;
        } else if (strcmp(a, "--channel") == 0) {
            o->in.channel = v;
        }
    }
    if (o->config && !url_given && config_url(o) != 0)
        goto done;
    /* As the curl tool does: a CA bundle named in the environment. */
    const char *bundle = getenv("CURL_CA_BUNDLE");
    if (!o->cacert && bundle && *bundle)
        o->cacert = bundle;
    o->in.args = o->args;
    o->in.values = o->values;
    o->in.params = o->params;
    o->in.attachments = o->attachments;

    rc = resolve_call(o, pos, npos);
done:
    free(pos);
    return rc;
}

/* ---- files and keys ---------------------------------------------------- */

/* Refuses to ask for a passphrase: development keys have none. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Loads the PEM private key to sign with. Returns the key (caller frees
 * with EVP_PKEY_free), or NULL with a reason. */
static EVP_PKEY *load_key(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = buf_read_file(path, KEY_FILE_MAX, &len, err, errlen);
    if (!text)
        return NULL;
    EVP_PKEY *key = NULL;
    if (strstr(text, "PUBLIC KEY") || !strstr(text, "-----BEGIN")) {
        snprintf(err, errlen,
                 "%s is not a PEM private key%s; invoke signs with the private half (the .pem "
                 "that cliqhost keygen writes)",
                 path, strstr(text, "-----BEGIN") || !*text ? "" : " (is it the public key?)");
        goto done;
    }
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (!key) {
        snprintf(err, errlen, "%s: not a usable PEM private key (encrypted keys are not taken)",
                 path);
        ERR_clear_error();
        goto done;
    }
    if (!EVP_PKEY_is_a(key, "RSA")) {
        snprintf(err, errlen, "%s: not an RSA key (Cliq signs with RSA)", path);
        EVP_PKEY_free(key);
        key = NULL;
    }
done:
    OPENSSL_cleanse(text, len);
    free(text);
    return key;
}

/* The key to sign with: --key, else $CLIQHOST_KEY, else the one
 * ./dev.sh serve uses. NULL if none is there. */
static const char *key_path(const struct options *o)
{
    if (o->key_path)
        return o->key_path;
    const char *env = getenv("CLIQHOST_KEY");
    if (env && *env)
        return env;
    struct stat st;
    if (stat(DEFAULT_KEY, &st) == 0)
        return DEFAULT_KEY;
    return NULL;
}

/* How to start a host that trusts the key at `pem`: with the .pub beside
 * it, as cliqhost keygen writes them. */
static void serve_hint(const char *pem, char *out, size_t outlen)
{
    size_t n = strlen(pem);
    struct stat st;
    if (n > 4 && n < PATH_MAX_LEN && strcmp(pem + n - 4, ".pem") == 0) {
        char pub[PATH_MAX_LEN + 1];
        snprintf(pub, sizeof pub, "%.*s.pub", (int)(n - 4), pem);
        if (stat(pub, &st) == 0) {
            snprintf(out, outlen, "cliqhost serve --key %s", pub);
            return;
        }
    }
    snprintf(out, outlen, "cliqhost serve --key PUB, PUB being the public half of %.*s",
             (int)(n < PATH_MAX_LEN ? n : PATH_MAX_LEN), pem);
}

/* Signs `body` as Cliq does: RSA PKCS#1 v1.5 over SHA-256, base64. Caller
 * frees. NULL if OpenSSL fails. */
static char *sign_body(EVP_PKEY *key, const char *body, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    char *b64 = NULL;
    size_t siglen = 0;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)body, len) != 1)
        goto done;
    sig = xmalloc(siglen);
    if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)body, len) != 1)
        goto done;
    b64 = xmalloc(BASE64_ENCODED_LEN(siglen) + 1);
    base64_encode(sig, siglen, b64);
done:
    ERR_clear_error();
    free(sig);
    EVP_MD_CTX_free(md);
    return b64;
}

/* ---- --body: the response_url inside a given body ---------------------- */

static size_t skip_space(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* Index after the JSON string at s[i] ('"'), or n. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* Index after the JSON value at s[i], or n. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i < n && s[i] == '"')
        return skip_string(s, i, n);
    if (i < n && (s[i] == '{' || s[i] == '[')) {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    while (i < n && !strchr(",}] \t\r\n", s[i]))
        i++;
    return i;
}

/* Finds the string value of the top-level "response_url" in `s` (valid
 * JSON: cJSON parsed it). Returns 1 and its span [*from, *to) with the
 * quotes, or 0. */
static int find_response_url(const char *s, size_t n, size_t *from, size_t *to)
{
    size_t i = skip_space(s, 0, n);
    if (i >= n || s[i] != '{')
        return 0;
    i++;
    for (;;) {
        i = skip_space(s, i, n);
        if (i >= n || s[i] != '"')
            return 0;
        size_t k = i;
        i = skip_string(s, i, n);
        int match = i - k == 14 && memcmp(s + k, "\"response_url\"", 14) == 0;
        i = skip_space(s, i, n);
        if (i >= n || s[i] != ':')
            return 0;
        i = skip_space(s, i + 1, n);
        size_t v = i;
        i = skip_value(s, i, n);
        if (match && s[v] == '"') {
            *from = v;
            *to = i;
            return 1;
        }
        i = skip_space(s, i, n);
        if (i >= n || s[i] != ',')
            return 0;
        i++;
    }
}

/* ---- the one-time response_url ----------------------------------------- */

/* A loopback HTTP server that plays Cliq's response_url: it takes one POST
 * on its secret path, answers 200 {} like Cliq, and keeps the body. Runs on
 * libmicrohttpd's own thread; the rest is read under `mu`. */
struct catcher {
    struct MHD_Daemon *mhd;
    char path[80];
    char url[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *body; /* the first POST's body, or NULL */
    size_t len;
    long long at_ms; /* monotonic, when it came */
    int answered;    /* the 200 for it was written (or its connection ended) */
    int refused;     /* later POSTs, answered 400 */
    char *error;     /* its X-Cliqhost-Error (the handler failed), or NULL */
};

struct upload {
    struct buf b;
    int too_big;
    int first; /* this POST brought the reply: its end is waited for */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_catch(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *data_size, void **con_cls)
{
    (void)version;
    struct catcher *c = cls;
    struct upload *u = *con_cls;
    if (!u) {
        u = xcalloc(1, sizeof *u);
        buf_init(&u->b, REPLY_MAX);
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_size) {
        if (!u->too_big && buf_add(&u->b, data, *data_size) < 0)
            u->too_big = 1;
        *data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, c->path) != 0)
        return answer(conn, MHD_HTTP_NOT_FOUND, "{\"message\":\"no such response_url\"}");
    if (strcmp(method, "POST") != 0)
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"message\":\"POST only\"}");
    if (u->too_big)
        return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, "{\"message\":\"reply too large\"}");
    int first = 0;
    pthread_mutex_lock(&c->mu);
    if (!c->body) {
        size_t len;
        c->body = buf_take(&u->b, &len);
        c->len = len;
        c->at_ms = mono_ms();
        const char *e = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Cliqhost-Error");
        if (e)
            c->error = xstrndup(e, strnlen(e, DEBUG_ERROR_MAX));
        first = 1;
        u->first = 1; /* waiters wake once the 200 is written (on_catch_done) */
    } else {
        c->refused++;
    }
    pthread_mutex_unlock(&c->mu);
    return first ? answer(conn, MHD_HTTP_OK, "{}")
                 : answer(conn, MHD_HTTP_BAD_REQUEST,
                          "{\"message\":\"this response_url was already used\"}");
}

static void on_catch_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    struct catcher *c = cls;
    struct upload *u = *con_cls;
    if (u && u->first) {
        /* The host has its 200 (or its connection is gone): only now may
         * invoke print the reply and stop the catcher. */
        pthread_mutex_lock(&c->mu);
        c->answered = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    if (u) {
        buf_free(&u->b);
        free(u);
        *con_cls = NULL;
    }
}

/* Starts the catcher on 127.0.0.1 and an ephemeral port. Returns 0, or -1
 * with a reason. Stop it with catcher_stop() either way. */
static int catcher_start(struct catcher *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);

    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errlen, "no random bytes for the response_url: %s", strerror(errno));
        return -1;
    }
    char hex[33];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(c->path, sizeof c->path, "/v2/extensions/invoke/responses/%s", hex);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    c->mhd =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, on_catch, c,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                         on_catch_done, c, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CATCHER_CONNS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CATCHER_IDLE_S, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        c->mhd ? MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info || !info->port) {
        snprintf(err, errlen, "cannot serve a response_url on 127.0.0.1");
        return -1;
    }
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%u%s", (unsigned)info->port, c->path);
    return 0;
}

static void catcher_stop(struct catcher *c)
{
    if (c->mhd)
        MHD_stop_daemon(c->mhd);
    c->mhd = NULL;
    free(c->body);
    c->body = NULL;
    free(c->error);
    c->error = NULL;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

/* Waits until a reply has come and been answered, or `until_ms`
 * (monotonic) passes. Returns 1 if one came. */
static int catcher_wait(struct catcher *c, long long until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000};
    pthread_mutex_lock(&c->mu);
    while (!c->answered && mono_ms() < until_ms)
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    /* A reply that came is always let finish its answer (a moment). */
    long long grace = mono_ms() + 2000;
    struct timespec gs = {.tv_sec = grace / 1000, .tv_nsec = (grace % 1000) * 1000000};
    while (c->body && !c->answered && mono_ms() < grace)
        pthread_cond_timedwait(&c->cv, &c->mu, &gs);
    int got = c->body != NULL;
    pthread_mutex_unlock(&c->mu);
    return got;
}

/* Hands over the reply that came (caller frees) with its length, arrival
 * time and X-Cliqhost-Error (caller frees; NULL if none); NULL if no reply
 * came. */
static char *catcher_take(struct catcher *c, size_t *len, long long *at_ms, char **error)
{
    pthread_mutex_lock(&c->mu);
    char *body = c->body;
    *len = c->len;
    *at_ms = c->at_ms;
    *error = c->error;
    c->body = NULL;
    c->error = NULL;
    pthread_mutex_unlock(&c->mu);
    return body;
}

/* The POSTs after the first, which were refused. */
static int catcher_refused(struct catcher *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->refused;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- the call ---------------------------------------------------------- */

struct reply {
    long status;
    struct buf body;
    char request_id[128];
    int late; /* X-Cliqhost-Late: response_url */
    int too_big;
    char error[DEBUG_ERROR_MAX + 1]; /* X-Cliqhost-Error: the handler failed; "" if not */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct reply *r = ud;
    if (buf_add(&r->body, data, size * nmemb) < 0) {
        r->too_big = 1;
        return 0;
    }
    return size * nmemb;
}

/* Copies a header's value if the line is "name: value". */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    snprintf(out, outlen, "%.*s", (int)(end - v), v);
    return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    struct reply *r = ud;
    size_t n = size * nmemb;
    char v[128];
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response: forget the last */
        r->request_id[0] = '\0';
        r->late = 0;
        r->error[0] = '\0';
    } else if (header_value(line, n, "X-Cliqhost-Error", r->error, sizeof r->error)) {
        /* kept in r->error */
    } else if (header_value(line, n, "X-Request-Id", v, sizeof v)) {
        snprintf(r->request_id, sizeof r->request_id, "%s", v);
    } else if (header_value(line, n, "X-Cliqhost-Late", v, sizeof v)) {
        r->late = strcasecmp(v, "response_url") == 0;
    }
    return n;
}

/* Whether `host` (as the URL's API gives it) is this machine. */
static int host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcasecmp(host, "localhost") == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* Says why no answer came from --url, with the advice that fits the kind
 * of failure: a name that does not resolve, a certificate not trusted, TLS
 * spoken to a plain HTTP port, nothing listening. Only a plain-HTTP URL on
 * this machine is taken for a local host that is not started yet, and
 * `serve_hint` (how to start one that trusts the key) is given then. */
static void explain_unreachable(const struct options *o, CURL *e, CURLcode rc, const char *detail,
                                const char *serve_hint, char *err, size_t errlen)
{
    char *host = NULL, *port = NULL, *scheme = NULL;
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, o->url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    }
    const char *h = host ? host : "?", *p = port ? port : "?";
    int https = scheme && strcasecmp(scheme, "https") == 0;
    long os_errno = 0;
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(err, errlen, "the name %s did not resolve (%s): check the host in --url %s", h,
                 detail, o->url);
        break;
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(err, errlen,
                 "the proxy's name did not resolve (%s): check https_proxy / http_proxy, or add "
                 "%s to no_proxy",
                 detail, h);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        if (o->cacert)
            snprintf(err, errlen,
                     "the certificate of %s:%s was not trusted (%s) with the CA certificates in "
                     "%s: give --cacert FILE the certificate %s serves, or the CA that signed it",
                     h, p, detail, o->cacert, h);
        else
            snprintf(err, errlen,
                     "the certificate of %s:%s was not trusted (%s): if it is your proxy's own "
                     "(self-signed, or from a private CA), give --cacert FILE with that "
                     "certificate or its CA (or set CURL_CA_BUNDLE)",
                     h, p, detail);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(err, errlen, "cannot use %s as CA certificates (%s): give --cacert a PEM file",
                 o->cacert ? o->cacert : "the CA bundle", detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(err, errlen,
                 "the TLS handshake with %s:%s failed (%s); if it serves plain HTTP, use "
                 "--url http://%s",
                 h, p, detail, https ? o->url + 8 : o->url);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        snprintf(err, errlen, "%s:%s closed the connection without an answer (%s)%s%s", h, p,
                 detail, https ? "" : "; if it serves https, use --url https://",
                 https ? "" : o->url + 7);
        break;
    case CURLE_COULDNT_CONNECT:
        if (!https && host && host_is_loopback(host)) {
            snprintf(err, errlen,
                     "the host is not reachable at %s (%s); start it with `%s` (or ./dev.sh "
                     "serve), or point --url at it",
                     o->url, detail, serve_hint);
            break;
        }
        snprintf(err, errlen,
                 "nothing answers at %s:%s (%s: %s): check --url, and that the host, or the "
                 "proxy in front of it, runs there",
                 h, p, os_errno == ECONNREFUSED ? "connection refused" : "cannot connect", detail);
        break;
    default:
        snprintf(err, errlen, "no answer from %s (%s)", o->url, detail);
        break;
    }
    curl_free(host);
    curl_free(port);
    curl_free(scheme);
    curl_url_cleanup(u);
}

/* POSTs the signed body. Returns 0 with the reply, or -1 with why no
 * reply came (the host is down, or slow, or not trusted); `serve_hint` is
 * how to start a host that trusts the key. */
static int post_call(const struct options *o, const char *body, size_t len, const char *sig,
                     const char *serve_hint, struct reply *r, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "cannot set up libcurl");
        return -1;
    }
    char sighdr[VERIFY_MAX_SIG_HEADER + 32];
    snprintf(sighdr, sizeof sighdr, "X-Cliq-Signature: %s", sig);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, sighdr);
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "User-Agent: cliqhost-invoke/" CLIQHOST_VERSION);
    /* A development call: a handler that fails is told in X-Cliqhost-Error
     * (the body stays what Cliq's user would see). */
    h = curl_slist_append(h, "X-Cliqhost-Debug: 1");
    /* Loopback is never sent through a proxy; other hosts follow the
     * environment's proxy settings. */
    char noproxy[512];
    const char *np = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
    snprintf(noproxy, sizeof noproxy, "127.0.0.1,localhost,::1%s%.400s", np && *np ? "," : "",
             np ? np : "");
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOPROXY, noproxy);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_s * 1000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    if (o->cacert)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->cacert);
    CURLcode rc = curl_easy_perform(e);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(err, errlen, "no answer from %s within %ld s (Cliq gives up after 5 s)", o->url,
                 o->timeout_s);
    } else if (r->too_big) {
        snprintf(err, errlen, "the reply from %s is larger than %d bytes", o->url, REPLY_MAX);
    } else {
        explain_unreachable(o, e, rc, curl_err[0] ? curl_err : curl_easy_strerror(rc), serve_hint,
                            err, errlen);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : -1;
}

/* ---- printing ---------------------------------------------------------- */

static const char *status_text(long status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    }
    return "";
}

/* Prints a reply {"output": ...}: as received under --json, else as text.
 * Returns 0, or -1 if it is not that shape (printed as it is then). */
static int print_reply(const struct options *o, const char *body, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(root, "output");
    int ok = cJSON_IsObject(root) && output;
    if (o->json || !ok) {
        fwrite(body, 1, len, stdout);
        if (!len || body[len - 1] != '\n')
            fputc('\n', stdout);
    } else {
        render_output(stdout, output);
    }
    fflush(stdout);
    cJSON_Delete(root);
    return ok ? 0 : -1;
}

/* Says what an error reply said: its "error", else its first bytes. */
static void print_error(const struct options *o, long status, const char *body, size_t len,
                        const char *key, const char *serve_hint)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (!cJSON_IsString(msg))
        msg = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (o->json) {
        fwrite(body, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (cJSON_IsString(msg))
        fprintf(stderr, "cliqhost invoke: HTTP %ld: %s\n", status, msg->valuestring);
    else
        fprintf(stderr, "cliqhost invoke: HTTP %ld: %.*s\n", status, (int)(len > 300 ? 300 : len),
                body);
    if (status == 401)
        fprintf(stderr,
                "cliqhost invoke: the host does not trust %s; serve with its public half: %s\n",
                key, serve_hint);
    cJSON_Delete(root);
}

/* Says why the handler failed, from an X-Cliqhost-Error value: the host's
 * escapes undone for line breaks, tabs, backslashes and UTF-8 bytes; other
 * control characters stay visible as escapes. */
static void print_failure(const char *v)
{
    struct buf b;
    buf_init(&b, strlen(v) + 1);
    for (const char *p = v; *p; p++) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == '\\')) {
            buf_addc(&b, p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : '\\');
            p++;
            continue;
        }
        unsigned hi, lo;
        if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%1x%1x", &hi, &lo) == 2 && hi >= 8) {
            buf_addc(&b, (char)(hi << 4 | lo));
            p += 3;
            continue;
        }
        buf_addc(&b, *p);
    }
    fprintf(stderr, "cliqhost invoke: the handler failed: %.*s\n", (int)b.len,
            b.data ? b.data : "");
    buf_free(&b);
}

/* Prints the host's answer and what reached response_url, waiting for a
 * late reply the answer announced. `t0` is when the call started; `kpath`
 * and `hint` name the key for a 401. Returns the exit status. */
static int show_replies(const struct options *o, struct catcher *c, const struct reply *r,
                        long long t0, int has_url, const char *kpath, const char *hint)
{
    fprintf(stderr, "HTTP %ld %s, request %s, %lld ms%s\n", r->status, status_text(r->status),
            r->request_id[0] ? r->request_id : "(no X-Request-Id)", mono_ms() - t0,
            r->late ? ", the handler passed the deadline: this is the interim reply" : "");
    const char *body = r->body.data ? r->body.data : "";
    if (r->status != 200) {
        print_error(o, r->status, body, r->body.len, kpath, hint);
        return EXIT_ERROR_REPLY;
    }
    int rc = EXIT_REPLIED;
    if (print_reply(o, body, r->body.len) < 0) {
        fprintf(stderr, "cliqhost invoke: the host answered 200, but not with {\"output\": ...} "
                        "as Cliq expects\n");
        rc = EXIT_ERROR_REPLY;
    }
    if (r->error[0]) {
        print_failure(r->error);
        if (rc == EXIT_REPLIED)
            rc = EXIT_FAILED;
    }

    /* A reply from req:respond() came before the answer; a late one after. */
    int got = catcher_wait(c, 0);
    if (!got && r->late && has_url) {
        fprintf(stderr, "waiting up to %ld s for the handler's reply at response_url...\n",
                o->wait_s);
        got = catcher_wait(c, mono_ms() + o->wait_s * 1000);
        if (!got) {
            fprintf(stderr,
                    "cliqhost invoke: no reply reached response_url within %ld s (see the "
                    "host's log for this request id)\n"
                    "cliqhost invoke: if the log says outcome=refused, the host does not send "
                    "replies to 127.0.0.1: serve with --response-url-allow 127.0.0.1 (./dev.sh "
                    "serve does)\n",
                    o->wait_s);
            rc = EXIT_NO_LATE;
        }
    } else if (!got && r->late) {
        fprintf(stderr,
                "cliqhost invoke: %s %s has no response_url, so the handler's result is "
                "dropped (the host logs it)\n",
                o->h ? o->h->type : "this", o->h ? o->h->key : "body");
    }
    if (got) {
        long long at;
        size_t len;
        char *error;
        char *late = catcher_take(c, &len, &at, &error);
        fprintf(stderr, "reply via response_url (%s), %.1f s after the call:\n",
                r->late ? "late" : "req:respond", (double)(at - t0) / 1000.0);
        if (print_reply(o, late, len) < 0) {
            fprintf(stderr, "cliqhost invoke: the reply to response_url is not {\"output\": "
                            "...}\n");
            rc = EXIT_ERROR_REPLY;
        }
        if (error) {
            print_failure(error);
            if (rc == EXIT_REPLIED)
                rc = EXIT_FAILED;
        }
        free(error);
        free(late);
    }
    int refused = catcher_refused(c);
    if (refused)
        fprintf(stderr,
                "cliqhost invoke: the host posted %d more time%s to the one-time "
                "response_url (refused, as Cliq would)\n",
                refused, refused == 1 ? "" : "s");
    return rc;
}

/* ---- the command ------------------------------------------------------- */

/* The body to send: FILE as it is, with a top-level response_url pointed at
 * `url`; or built for the handler. Caller frees. NULL with a reason. */
static char *make_body(const struct options *o, const char *url, size_t *len, int *has_url,
                       char *err, size_t errlen)
{
    *has_url = 0;
    if (!o->body_path) {
        struct callbody_input in = o->in;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        in.now_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        in.response_url = url;
        cJSON *tree = callbody_build(o->h, &in, err, errlen);
        if (!tree)
            return NULL;
        *has_url = o->h->response_url;
        char *text = o->dry_run ? cJSON_Print(tree) : cJSON_PrintUnformatted(tree);
        cJSON_Delete(tree);
        char *body = xstrdup(text);
        cJSON_free(text);
        *len = strlen(body);
        return body;
    }
    char *file = buf_read_file(o->body_path, BODY_FILE_MAX, len, err, errlen);
    if (!file)
        return NULL;
    cJSON *tree = cJSON_ParseWithLength(file, *len);
    int is_object = cJSON_IsObject(tree);
    cJSON_Delete(tree);
    size_t from, to;
    if (!is_object || !find_response_url(file, *len, &from, &to))
        return file; /* as it is: without a response_url, or not even JSON */
    struct buf b;
    buf_init(&b, BODY_FILE_MAX + URL_MAX);
    buf_add(&b, file, from);
    buf_printf(&b, "\"%s\"", url);
    buf_add(&b, file + to, *len - to);
    free(file);
    *has_url = 1;
    return buf_take(&b, len);
}

int cli_invoke(int argc, char **argv)
{
    struct options o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        options_free(&o);
        return rc == 1 ? 0 : rc;
    }
    rc = EXIT_USAGE;
    char err[8192];
    struct catcher c;
    int catching = 0;
    EVP_PKEY *key = NULL;
    char *body = NULL, *sig = NULL;
    size_t len = 0;
    int has_url = 0;
    struct reply r;
    memset(&r, 0, sizeof r);
    buf_init(&r.body, REPLY_MAX);

    const char *kpath = o.dry_run ? NULL : key_path(&o);
    if (!o.dry_run) {
        if (!kpath) {
            fprintf(stderr,
                    "cliqhost invoke: no key to sign with: give --key FILE or set CLIQHOST_KEY, "
                    "or make a pair with `cliqhost keygen build/dev` (and serve with --key "
                    "build/dev/cliq-dev.pub)\n");
            goto cleanup;
        }
        key = load_key(kpath, err, sizeof err);
        if (!key) {
            fprintf(stderr, "cliqhost invoke: %s\n", err);
            goto cleanup;
        }
        /* The response_url must be there before the body names it. */
        if (catcher_start(&c, err, sizeof err) < 0) {
            catcher_stop(&c);
            fprintf(stderr, "cliqhost invoke: %s\n", err);
            goto cleanup;
        }
        catching = 1;
    }
    body = make_body(&o, catching ? c.url : DRY_RUN_URL, &len, &has_url, err, sizeof err);
    if (!body) {
        fprintf(stderr, "cliqhost invoke: %s\n", err);
        goto cleanup;
    }
    if (o.dry_run) {
        fwrite(body, 1, len, stdout);
        if (!len || body[len - 1] != '\n')
            fputc('\n', stdout);
        rc = EXIT_REPLIED;
        goto cleanup;
    }
    sig = sign_body(key, body, len);
    if (!sig) {
        fprintf(stderr, "cliqhost invoke: OpenSSL could not sign with %s\n", kpath);
        goto cleanup;
    }

    long long t0 = mono_ms();
    char hint[PATH_MAX_LEN + 64];
    if (o.config_url && o.url == o.config_url) /* the host that config describes */
        snprintf(hint, sizeof hint, "cliqhost serve --config %s", o.config);
    else
        serve_hint(kpath, hint, sizeof hint);
    if (post_call(&o, body, len, sig, hint, &r, err, sizeof err) < 0) {
        fprintf(stderr, "cliqhost invoke: %s\n", err);
        rc = EXIT_UNREACHABLE;
        goto cleanup;
    }
    rc = show_replies(&o, &c, &r, t0, has_url, kpath, hint);
cleanup:
    if (catching)
        catcher_stop(&c);
    buf_free(&r.body);
    free(sig);
    free(body);
    EVP_PKEY_free(key);
    options_free(&o);
    return rc;
}
