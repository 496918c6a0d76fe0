/* schedcli: `cliqhost schedules` and `cliqhost invoke schedule NAME` (see schedcli.h). */
#include "tools/schedcli.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "tools/invoke.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANSWER_MAX       (4 * 1024 * 1024)
#define EXIT_OK          0
#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3
#define EXIT_RUN_FAILED  5 /* as invoke's "the handler failed" */

struct opts {
    const char *name;
    char base[600]; /* http://host:port, no trailing slash */
    long timeout_s;
    int json;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    return buf_add(b, data, size * nmemb) < 0 ? 0 : size * nmemb;
}

/* One request to the host; the answer's body goes to `out`. Returns the
 * HTTP status, or -1 with the reason printed. */
static long ask(const struct opts *o, const char *method, const char *path, struct buf *out)
{
    char url[800];
    snprintf(url, sizeof url, "%s%s", o->base, path);
    CURL *e = curl_easy_init();
    if (!e) {
        fprintf(stderr, "cliqhost: cannot set up libcurl\n");
        return -1;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_s * 1000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    long status = -1;
    CURLcode rc = curl_easy_perform(e);
    if (rc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr,
                "cliqhost: no answer from %s: %s (is `cliqhost serve` running there? give "
                "--url or --config)\n",
                url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
    curl_easy_cleanup(e);
    return status;
}

/* Copies s into out (n bytes, NUL-terminated, cut to fit) as a terminal
 * shows it safely: what the host answers comes in part from scripts (a
 * run's error), so control characters (C0, DEL, C1 written in UTF-8) and
 * bytes that are not UTF-8 become \xNN instead of reaching the terminal
 * as escape sequences. Returns out. */
static const char *shown(const char *s, char *out, size_t n)
{
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && used + 1 < n) {
        size_t len = 1;
        int safe = *p >= 0x20 && *p != 0x7f;
        if (*p >= 0x80) {
            len = *p >= 0xc2 && *p <= 0xdf   ? 2
                  : *p >= 0xe0 && *p <= 0xef ? 3
                  : *p >= 0xf0 && *p <= 0xf4 ? 4
                                             : 1;
            safe = len > 1 && !(p[0] == 0xc2 && p[1] < 0xa0);
            for (size_t i = 1; i < len && safe; i++)
                safe = (p[i] & 0xc0) == 0x80;
            if (!safe)
                len = p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0 ? 2 : 1;
        }
        if (safe && used + len < n) {
            memcpy(out + used, p, len);
            used += len;
        } else if (!safe && used + 4 * len < n) {
            for (size_t i = 0; i < len; i++)
                used += (size_t)snprintf(out + used, n - used, "\\x%02x", p[i]);
        } else {
            break;
        }
        p += len;
    }
    out[used] = '\0';
    return out;
}

/* The "error" of an error body, or the body itself. */
static void print_error(long status, const struct buf *b)
{
    cJSON *j = cJSON_ParseWithLength(b->data ? b->data : "", b->len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    char msg[2048];
    fprintf(stderr, "cliqhost: %ld: %s\n", status,
            shown(cJSON_IsString(e) ? e->valuestring : (b->data ? b->data : ""), msg, sizeof msg));
    cJSON_Delete(j);
}

/* ask() that wants a 200: returns EXIT_OK with the body in *b (caller
 * frees), or the exit status with the reason printed and b freed. */
static int ask_ok(const struct opts *o, const char *method, const char *path, struct buf *b)
{
    buf_init(b, ANSWER_MAX);
    long status = ask(o, method, path, b);
    if (status == 200)
        return EXIT_OK;
    if (status >= 0)
        print_error(status, b);
    buf_free(b);
    return status < 0 ? EXIT_UNREACHABLE : EXIT_FAILED;
}

/* Reads NAME (when `want_name`), --url, --config, --timeout and --json.
 * Returns 0, 1 when --help was printed, or EXIT_USAGE (said). */
static int parse(int argc, char **argv, int first, int want_name, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_s = 130;
    const char *url = NULL, *config = NULL;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: cliqhost invoke schedule NAME [--url URL | --config FILE] [--json] "
                   "[--timeout S]\n"
                   "       cliqhost schedules [--url URL | --config FILE] [--json]\n"
                   "Asks the running host (default http://127.0.0.1:8080; loopback only, like "
                   "/status).\n"
                   "invoke schedule runs NAME now and prints its outcome: exit 0 ok, 1 refused, "
                   "3 no host answered, 5 the run failed.\n");
            return 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--url") || !strcmp(a, "--config") || !strcmp(a, "--timeout")) {
            if (!has_value) {
                fprintf(stderr, "cliqhost: %s takes a value\n", a);
                return EXIT_USAGE;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--url"))
                url = v;
            else if (!strcmp(a, "--config"))
                config = v;
            else if (config_parse_long(v, 1, 3600, &o->timeout_s) < 0) {
                fprintf(stderr, "cliqhost: --timeout takes seconds from 1 to 3600\n");
                return EXIT_USAGE;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "cliqhost: unknown option %s\n", a);
            return EXIT_USAGE;
        } else if (want_name && !o->name) {
            o->name = a;
        } else {
            fprintf(stderr, "cliqhost: unexpected argument '%s'\n", a);
            return EXIT_USAGE;
        }
    }
    if (want_name && !o->name) {
        fprintf(stderr, "cliqhost: usage: cliqhost invoke schedule NAME [--url URL | --config "
                        "FILE] [--json]\n");
        return EXIT_USAGE;
    }
    if (url) {
        if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
            fprintf(stderr, "cliqhost: --url takes an http:// or https:// URL, not '%s'\n", url);
            return EXIT_USAGE;
        }
        /* Only the scheme, host and port are used. */
        const char *p = strchr(url + (url[4] == 's' ? 8 : 7), '/');
        size_t n = p ? (size_t)(p - url) : strlen(url);
        if (n >= sizeof o->base)
            n = sizeof o->base - 1;
        memcpy(o->base, url, n);
        o->base[n] = '\0';
    } else if (config) {
        char err[1024];
        if (invoke_host_url(config, o->base, sizeof o->base, NULL, 0, err, sizeof err) < 0) {
            fprintf(stderr, "cliqhost: --config: %s\n", err);
            return EXIT_USAGE;
        }
    } else {
        snprintf(o->base, sizeof o->base, "http://127.0.0.1:8080");
    }
    return 0;
}

static const char *str(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* "2026-12-07 09:30 UTC" from Unix ms; "-" for none. */
static void when(double ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int cli_schedules(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, 2, 0, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct buf b;
    if ((rc = ask_ok(&o, "GET", "/status", &b)) != EXIT_OK)
        return rc;
    cJSON *j = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "schedules");
    if (!cJSON_IsArray(list)) {
        fprintf(stderr, "cliqhost: %s/status lists no schedules (an older host?)\n", o.base);
        cJSON_Delete(j);
        buf_free(&b);
        return EXIT_FAILED;
    }
    if (o.json) {
        char *text = cJSON_Print(list);
        printf("%s\n", text ? text : "[]");
        free(text);
    } else if (cJSON_GetArraySize(list) == 0) {
        printf("no schedules (scripts/schedules/*.lua)\n");
    } else {
        printf("%-20s %-28s %-24s %-24s %s\n", "NAME", "WHEN", "NEXT RUN", "LAST RUN", "OUTCOME");
        const cJSON *s;
        cJSON_ArrayForEach(s, list)
        {
            const cJSON *shared = cJSON_GetObjectItemCaseSensitive(s, "shared");
            const cJSON *last = cJSON_GetObjectItemCaseSensitive(shared, "last");
            const cJSON *next = cJSON_GetObjectItemCaseSensitive(s, "next_run_ms");
            const cJSON *tick = cJSON_GetObjectItemCaseSensitive(last, "tick");
            const cJSON *running = cJSON_GetObjectItemCaseSensitive(s, "running");
            char nx[40], lr[40], outcome[300], safe[1200], name[200], whenx[400];
            when(cJSON_IsNumber(next) ? next->valuedouble : 0, nx, sizeof nx);
            when(cJSON_IsNumber(tick) ? tick->valuedouble : 0, lr, sizeof lr);
            const char *err = str(last, "error", NULL);
            snprintf(outcome, sizeof outcome, "%s%s%s%s", str(last, "outcome", "-"),
                     err ? " (" : "", err ? err : "", err ? ")" : "");
            if (cJSON_IsTrue(running))
                snprintf(outcome + strlen(outcome), sizeof outcome - strlen(outcome),
                         ", running now");
            printf("%-20s %-28s %-24s %-24s %s\n", shown(str(s, "name", "?"), name, sizeof name),
                   shown(str(s, "when", "?"), whenx, sizeof whenx), nx, lr,
                   shown(outcome, safe, sizeof safe));
        }
    }
    cJSON_Delete(j);
    buf_free(&b);
    return EXIT_OK;
}

int cli_invoke_schedule(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, 3, 1, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    char path[200];
    char *esc = curl_easy_escape(NULL, o.name, 0);
    snprintf(path, sizeof path, "/schedules/%s/run", esc ? esc : "");
    curl_free(esc);
    struct buf b;
    if ((rc = ask_ok(&o, "POST", path, &b)) != EXIT_OK)
        return rc;
    cJSON *j = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
    const char *outcome = str(j, "outcome", "?");
    if (o.json) {
        fwrite(b.data, 1, b.len, stdout);
        fputc('\n', stdout);
    } else {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "ms");
        char safe[1200], name[200];
        printf("schedule %s ran: %s", shown(o.name, name, sizeof name),
               shown(outcome, safe, sizeof safe));
        if (cJSON_IsNumber(ms))
            printf(" in %.0f ms", ms->valuedouble);
        printf(" (run id %s; its log lines carry it)\n",
               shown(str(j, "id", "?"), name, sizeof name));
        const char *err = str(j, "error", NULL);
        if (err)
            printf("error: %s\n", shown(err, safe, sizeof safe));
    }
    rc = strcmp(outcome, "ok") == 0 ? EXIT_OK : EXIT_RUN_FAILED;
    cJSON_Delete(j);
    buf_free(&b);
    return rc;
}
