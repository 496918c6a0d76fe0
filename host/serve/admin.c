/* admin: what the operator's endpoints say (see admin.h). */
#include "serve/admin.h"

#include "cliq/outbox.h"
#include "cliq/replay.h"
#include "cliq/shared.h"
#include "cliq/store.h"
#include "core/buf.h"
#include "core/jsonw.h"
#include "script/scriptset.h"
#include "serve/journal.h"
#include "serve/metrics.h"
#include "serve/schedules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#ifndef CLIQHOST_VERSION
#define CLIQHOST_VERSION "0"
#endif

int admin_client_is_loopback(struct MHD_Connection *conn)
{
    /* A proxy on this machine connects from loopback for everyone: a
     * forwarded request is not a local one. */
    static const char *const forwarded[] = {"Forwarded", "X-Forwarded-For", "X-Real-IP"};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, forwarded[i]))
            return 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static void json_key(struct buf *b, const char *key)
{
    jsonw_string(b, key, strlen(key), JSONW_REPLACE, NULL);
    buf_addc(b, ':');
}

static void json_str(struct buf *b, const char *key, const char *v)
{
    json_key(b, key);
    if (v)
        jsonw_string(b, v, strlen(v), JSONW_REPLACE, NULL);
    else
        buf_adds(b, "null");
}

/* "2026-11-23T10:50:01.123Z", or null for 0. */
static void json_time(struct buf *b, const char *key, long long ms)
{
    json_key(b, key);
    if (ms <= 0) {
        buf_adds(b, "null");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[40];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "\"%s.%03lldZ\"", s, ms % 1000);
}

char *admin_status_body(const struct admin_status *s, size_t *len)
{
    struct buf b;
    buf_init(&b, 64 * 1024 * 1024);
    struct reload_stats rs;
    scripts_hub_stats(s->hub, &rs);
    buf_adds(&b, "{");
    json_str(&b, "version", CLIQHOST_VERSION);
    buf_printf(&b, ",\"uptime_s\":%lld", (long long)(time(NULL) - s->started_at));
    buf_adds(&b, ",");
    json_time(&b, "started_at", (long long)s->started_at * 1000);
    buf_printf(&b, ",\"workers\":%d,", s->nworkers);
    json_str(&b, "scripts_dir", s->scripts_dir);
    buf_adds(&b, ",");
    json_str(&b, "callback_path", s->callback_path);
    buf_printf(&b, ",\"live_reload\":%s,\"reloads\":%llu,\"reload_failures\":%llu,",
               s->live_reload ? "true" : "false", rs.reloads, rs.failures);
    json_time(&b, "last_reload_at", rs.last_reload_at);
    if (s->schedules) {
        buf_adds(&b, ",\"schedules\":");
        schedules_status(s->schedules, &b);
    }
    if (s->store) {
        buf_adds(&b, ",\"store\":{");
        json_str(&b, "backend", store_backend(s->store));
        buf_printf(&b, ",\"keys\":%lld", store_keys(s->store));
        if (store_shared(s->store)) {
            buf_adds(&b, ",");
            shared_status(store_shared(s->store), &b);
        }
        buf_adds(&b, "}");
    }
    struct scriptset *set = scripts_hub_acquire(s->hub, NULL);
    int errors = 0;
    for (int pass = 0; pass < 2; pass++) {
        buf_adds(&b, pass ? "],\"modules\":[" : ",\"scripts\":[");
        int first = 1;
        for (size_t i = 0; i < scriptset_count(set); i++) {
            const struct script_src *e = scriptset_at(set, i);
            if ((strncmp(e->rel, "lib/", 4) == 0) != pass)
                continue;
            buf_adds(&b, first ? "{" : ",{");
            first = 0;
            json_str(&b, "file", e->rel);
            buf_printf(&b, ",\"version\":%llu,\"serving\":%s,", e->version,
                       e->src ? "true" : "false");
            json_time(&b, "loaded_at", e->loaded_at);
            buf_adds(&b, ",");
            json_str(&b, "error", e->error);
            buf_adds(&b, ",");
            json_time(&b, "error_at", e->error ? e->error_at : 0);
            buf_adds(&b, "}");
            errors += e->error != NULL;
        }
    }
    scriptset_release(set);
    buf_printf(&b, "],\"errors\":%d}", errors);
    *len = b.len;
    return b.data;
}

char *admin_metrics_body(struct metrics *const *workers, int nworkers, struct scripts_hub *hub,
                         struct replay *replay, struct outbox *outbox, struct store *store,
                         struct schedules *schedules, struct journal *journal,
                         long long pending_body_bytes, size_t *len)
{
    struct buf m;
    buf_init(&m, 4 * 1024 * 1024);
    buf_adds(&m, "# HELP cliqhost_up 1 while the host serves.\n# TYPE cliqhost_up "
                 "gauge\ncliqhost_up 1\n");
    struct reload_stats rs;
    scripts_hub_stats(hub, &rs);
    struct metrics_extra x = {rs.reloads, rs.failures, replay ? replay_entries(replay) : 0};
    metrics_write(workers, nworkers, &x, &m);
    outbox_metrics(outbox, &m);
    store_metrics(store, &m);
    if (schedules)
        schedules_metrics(schedules, &m);
    journal_metrics(journal, &m);
    buf_printf(&m,
               "# HELP cliqhost_pending_body_bytes Bytes of request bodies received and not yet "
               "verified (capped by pending_body_bytes).\n# TYPE cliqhost_pending_body_bytes "
               "gauge\ncliqhost_pending_body_bytes %lld\n",
               pending_body_bytes);
    return buf_take(&m, len);
}
