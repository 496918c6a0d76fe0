/* metrics: the host's counters (see metrics.h). */
#include "serve/metrics.h"

#include "cliq/request.h"
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

/* 202: a hook's script still running at the deadline (hooks answer any
 * status their script gives; the rest count as "other"). */
static const int statuses[METRICS_STATUSES] = {200, 202, 400, 401, 403, 404,
                                               405, 413, 431, 500, 503, 0};
/* Upper bounds in ms; the last is +Inf. */
static const double bounds_ms[METRICS_BUCKETS - 1] = {1,   2.5, 5,    10,   25,   50,   100,
                                                      250, 500, 1000, 2500, 4500, 10000};
static const char *const types[METRICS_TYPES] = {
    "command",   "bot",          "messageaction", "function", "widget",
    "extension", "link_preview", "schedule",      "hook",     "none"};

void metrics_add(atomic_ullong *counter, unsigned long long n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

void metrics_set(atomic_ullong *gauge, unsigned long long v)
{
    atomic_store_explicit(gauge, v, memory_order_relaxed);
}

static unsigned long long get(const atomic_ullong *a)
{
    return atomic_load_explicit((atomic_ullong *)a, memory_order_relaxed);
}

static int type_index(const char *type)
{
    for (int i = 0; i < METRICS_TYPES - 1; i++)
        if (type && strcmp(types[i], type) == 0)
            return i;
    return METRICS_TYPES - 1;
}

void metrics_request(struct metrics *m, const struct request_dispatch *d, int status, double ms)
{
    size_t n;
    const struct request_catalogue_entry *cat = request_catalogue(&n);
    size_t row = METRICS_ROWS - 1;
    if (d && d->entry && (size_t)(d->entry - cat) < n && (size_t)(d->entry - cat) < row)
        row = (size_t)(d->entry - cat);
    int s = METRICS_STATUSES - 1;
    for (int i = 0; i < METRICS_STATUSES - 1; i++)
        if (statuses[i] == status)
            s = i;
    metrics_add(&m->requests[row][s], 1);
    int t = type_index(d ? d->type : NULL);
    int b = 0;
    while (b < METRICS_BUCKETS - 1 && ms > bounds_ms[b])
        b++;
    metrics_add(&m->latency[t][b], 1);
    metrics_add(&m->latency_sum_us[t], (unsigned long long)(ms * 1000.0));
    metrics_add(&m->latency_count[t], 1);
}

/* The sum over workers of the counter at `offset` bytes into struct metrics. */
static unsigned long long sum(struct metrics *const *w, int n, size_t offset)
{
    unsigned long long t = 0;
    for (int i = 0; i < n; i++)
        t += get((const atomic_ullong *)((const char *)w[i] + offset));
    return t;
}

#define SUM(field) sum(workers, n, offsetof(struct metrics, field))

static void help(struct buf *out, const char *name, const char *type, const char *text)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void metrics_write(struct metrics *const *workers, int n, const struct metrics_extra *x,
                   struct buf *out)
{
    size_t ncat;
    const struct request_catalogue_entry *cat = request_catalogue(&ncat);
    help(out, "cliqhost_requests_total", "counter",
         "Callback requests and hooks answered, by type, handler and HTTP status (type "
         "\"none\": refused before dispatch).");
    for (size_t r = 0; r < METRICS_ROWS; r++) {
        int none = r == METRICS_ROWS - 1;
        if (!none && r >= ncat)
            continue;
        for (int s = 0; s < METRICS_STATUSES; s++) {
            unsigned long long v = SUM(requests[r][s]);
            if (!v)
                continue;
            char st[8];
            if (statuses[s])
                snprintf(st, sizeof st, "%d", statuses[s]);
            else
                snprintf(st, sizeof st, "other");
            buf_printf(out,
                       "cliqhost_requests_total{type=\"%s\",handler=\"%s\",status=\"%s\"} %llu\n",
                       none ? "none" : cat[r].type, none ? "none" : cat[r].key, st, v);
        }
    }
    help(out, "cliqhost_request_duration_seconds", "histogram",
         "Time from a callback's headers to its sync reply, by type.");
    for (int t = 0; t < METRICS_TYPES; t++) {
        unsigned long long count = SUM(latency_count[t]);
        if (!count)
            continue;
        unsigned long long cum = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += SUM(latency[t][b]);
            if (b < METRICS_BUCKETS - 1)
                buf_printf(out,
                           "cliqhost_request_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
                           types[t], bounds_ms[b] / 1000.0, cum);
            else
                buf_printf(
                    out, "cliqhost_request_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n",
                    types[t], cum);
        }
        buf_printf(out, "cliqhost_request_duration_seconds_sum{type=\"%s\"} %.6f\n", types[t],
                   (double)SUM(latency_sum_us[t]) / 1e6);
        buf_printf(out, "cliqhost_request_duration_seconds_count{type=\"%s\"} %llu\n", types[t],
                   count);
    }
    help(out, "cliqhost_handoffs_total", "counter",
         "Sync replies the host sent itself at the deadline (or when Cliq hung up); the result "
         "goes to response_url.");
    buf_printf(out, "cliqhost_handoffs_total %llu\n", SUM(handoffs));
    help(out, "cliqhost_late_replies_total", "counter",
         "Results of handlers that passed the deadline, by outcome.");
    static const char *const late[LATE_KINDS] = {"delivered", "failed", "dropped", "skipped",
                                                 "refused"};
    for (int k = 0; k < LATE_KINDS; k++)
        buf_printf(out, "cliqhost_late_replies_total{outcome=\"%s\"} %llu\n", late[k],
                   SUM(late[k]));
    help(out, "cliqhost_script_failures_total", "counter",
         "Handlers (or script top levels) that failed, by kind: error, or the limit that stopped "
         "them.");
    static const char *const fail[FAIL_KINDS] = {"error", "cpu", "memory", "time"};
    for (int k = 0; k < FAIL_KINDS; k++)
        buf_printf(out, "cliqhost_script_failures_total{kind=\"%s\"} %llu\n", fail[k],
                   SUM(failures[k]));
    help(out, "cliqhost_refused_total", "counter",
         "Callbacks refused with 401, by reason (no script ran).");
    static const char *const refused[5] = {"signature", "stale", "future", "replayed",
                                           "no_timestamp"};
    for (int k = 0; k < 5; k++)
        buf_printf(out, "cliqhost_refused_total{reason=\"%s\"} %llu\n", refused[k],
                   SUM(refused[k]));
    help(out, "cliqhost_console_calls_total", "counter",
         "Handler runs the console asked for (POST /console/api/call, or a replay), by kind; "
         "not counted among Cliq's requests.");
    static const char *const console[METRICS_CONSOLE_KINDS] = {"call", "replay"};
    for (int k = 0; k < METRICS_CONSOLE_KINDS; k++)
        buf_printf(out, "cliqhost_console_calls_total{kind=\"%s\"} %llu\n", console[k],
                   SUM(console_calls[k]));
    help(out, "cliqhost_handlers_waiting", "gauge", "Handlers waiting now (on I/O or sleep).");
    buf_printf(out, "cliqhost_handlers_waiting %llu\n", SUM(handlers_waiting));
    help(out, "cliqhost_lua_memory_bytes", "gauge", "Bytes held by each worker's Lua heap.");
    for (int i = 0; i < n; i++)
        buf_printf(out, "cliqhost_lua_memory_bytes{worker=\"%d\"} %llu\n", i,
                   get(&workers[i]->lua_memory));
    help(out, "cliqhost_reloads_total", "counter",
         "Rescans of the scripts folder that changed what is served.");
    buf_printf(out, "cliqhost_reloads_total %llu\n", x->reloads);
    help(out, "cliqhost_reload_failures_total", "counter",
         "Script or module versions refused by live reload (the previous one kept serving).");
    buf_printf(out, "cliqhost_reload_failures_total %llu\n", x->reload_failures);
    help(out, "cliqhost_replay_signatures", "gauge",
         "Accepted signatures remembered to refuse repeats.");
    buf_printf(out, "cliqhost_replay_signatures %zu\n", x->replay_entries);
}
