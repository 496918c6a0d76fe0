/* schedules: runs scripts/schedules/<name>.lua at their ticks (see schedules.h). */
#include "serve/schedules.h"

#include "cliq/request.h"
#include "cliq/store.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/cron.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/sched.h"
#include "script/luavm.h"
#include "script/schedspec.h"
#include "script/scriptset.h"
#include "serve/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Schedules kept at most. A schedule deleted keeps its entry (its counts
 * stay in /metrics) until the place is needed for a new one. */
#define MAX_SCHEDULES 1000
/* How often the driver reads every schedule's record, for /status. */
#define LIST_EVERY_MS 5000
/* A run holds its schedule for its run-time limit and this much more:
 * past that, a host that died mid-run no longer makes ticks "busy". */
#define HOLD_MARGIN_MS 10000

enum outcome { OUT_OK, OUT_FAILED, OUT_LIMIT, OUT_SKIPPED, NOUT };
static const char *const outcome_names[NOUT] = {"ok", "failed", "limit", "skipped"};

struct entry {
    char name[REQUEST_TASK_NAME_MAX + 1];
    unsigned long long version; /* of the script its cron came from; 0: none */
    struct cron *cron;          /* NULL: not (or no longer) scheduled */
    int catch_up;
    int present;        /* in the current snapshot */
    long long next_ms;  /* the next tick, Unix ms; 0: none */
    int running;        /* this host's runs of it at its ticks going now */
    int manual_running; /* this host's runs now (schedules_run_now) of it going */
    unsigned long long runs[NOUT];
    char *record; /* the store's record of it (JSON), as last read; owned */
};

struct schedules {
    pthread_mutex_t mu; /* guards the entries (the driver writes, anyone reads) */
    struct store *store;
    struct scripts_hub *hub;
    char host_id[128];
    struct entry **e;
    size_t n;
};

/* A store operation in flight. */
struct op {
    struct schedules_runner *r;
    struct entry *e;
    enum store_kind kind;
    long long tick_ms;
    int catch_up;
    struct store_pending *pending;
    struct op *prev, *next;
};

/* A run in flight. */
struct run {
    struct schedules_runner *r;
    struct entry *e; /* NULL: a schedule not (yet) seen by the driver */
    struct request_dispatch d;
    char id[48];
    long long tick_ms;
    int catch_up;
    int manual;
    int dropped; /* recorded as dropped at shutdown */
    long long t0;
    unsigned long long jid; /* its entry in the console's journal; 0: none */
    struct luavm_task *task;
    schedules_done_cb cb;
    void *cb_ud;
    struct run *prev, *next;
};

struct schedules_runner {
    struct schedules *s;
    struct sched *sched;
    struct luavm *vm;
    struct redis_conn *rc;
    int drive;
    schedules_config_fn cfg;
    void *cfg_ud;
    struct sched_timer *timer;
    struct journal *journal; /* the console's (schedules_runner_journal); NULL: none */
    unsigned long long gen;  /* the hub generation last followed */
    int started;             /* the first snapshot was followed */
    long long next_list_ms;
    struct op *ops;
    struct run *runs;
    size_t nruns;
    uint64_t rng; /* run ids: seeded from getrandom, so no two hosts or starts share them */
};

/* The schedules' clock: the wall clock; for tests, CLIQHOST_SCHEDULE_CLOCK
 * = "<Unix seconds>[x<speed>]" starts it at that instant when the host
 * starts and runs it `speed` times faster (a day's ticks, a change of
 * daylight-saving time, in seconds). Only the schedules see it. */
static long long clock_start_ms, clock_base_mono;
static long clock_speed = 1;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

static void clock_setup(void)
{
    const char *v = getenv("CLIQHOST_SCHEDULE_CLOCK");
    if (!v || !*v)
        return;
    char *end;
    errno = 0;
    long long at = strtoll(v, &end, 10);
    long speed = 1;
    if (*end == 'x')
        speed = strtol(end + 1, &end, 10);
    /* Up to the end of year 9999: its milliseconds, sped up for a day of
     * ticks, stay far from overflow (errno: strtoll clamps). */
    if (*end || errno || at <= 0 || at > 253402300799LL || speed < 1 || speed > 100000) {
        log_msg(LOG_ERROR, NULL,
                "CLIQHOST_SCHEDULE_CLOCK=\"%s\" is not <Unix seconds>[x<speed>]; ignored", v);
        return;
    }
    clock_start_ms = at * 1000;
    clock_base_mono = sched_clock_ms();
    clock_speed = speed;
    log_msg(LOG_WARN, NULL, "schedules run on a test clock: CLIQHOST_SCHEDULE_CLOCK=%s", v);
}

static long long wall_ms(void)
{
    pthread_once(&clock_once, clock_setup);
    if (clock_start_ms)
        return clock_start_ms + (sched_clock_ms() - clock_base_mono) * clock_speed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-03-29T01:00:00Z" */
static void iso_time(long long ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The next tick strictly after `after_ms`, in ms; 0: none. */
static long long next_tick(const struct cron *c, long long after_ms)
{
    long long t = cron_next(c, after_ms / 1000);
    return t < 0 ? 0 : t * 1000;
}

struct schedules *schedules_new(struct store *store, struct scripts_hub *hub, const char *host_id)
{
    struct schedules *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->store = store;
    s->hub = hub;
    snprintf(s->host_id, sizeof s->host_id, "%s", host_id);
    return s;
}

void schedules_free(struct schedules *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        cron_free(s->e[i]->cron);
        free(s->e[i]->record);
        free(s->e[i]);
    }
    free(s->e);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The entry named `name`, or NULL. Under s->mu. */
static struct entry *find(struct schedules *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i]->name, name) == 0)
            return s->e[i];
    return NULL;
}

static void count(struct schedules *s, struct entry *e, enum outcome o)
{
    if (!e)
        return;
    pthread_mutex_lock(&s->mu);
    e->runs[o]++;
    pthread_mutex_unlock(&s->mu);
}

/* ---- store operations ---------------------------------------------------- */

static void on_op_done(struct store_result *res, void *ud);

/* Starts a store operation for entry e; `answer` runs with its result
 * (at once for SQLite). */
static void start_op(struct schedules_runner *r, struct entry *e, const struct store_op *so,
                     int catch_up)
{
    struct op *o = xcalloc(1, sizeof *o);
    o->r = r;
    o->e = e;
    o->kind = so->kind;
    o->tick_ms = so->tick_ms;
    o->catch_up = catch_up;
    o->next = r->ops;
    if (r->ops)
        r->ops->prev = o;
    r->ops = o;
    struct store_result res;
    if (store_start(r->s->store, r->rc, so, &res, on_op_done, o, &o->pending))
        on_op_done(&res, o);
}

static void unlink_op(struct op *o)
{
    struct schedules_runner *r = o->r;
    if (o->prev)
        o->prev->next = o->next;
    else if (r->ops == o)
        r->ops = o->next;
    if (o->next)
        o->next->prev = o->prev;
}

static void fire(struct schedules_runner *r, struct entry *e, long long tick_ms, int catch_up);
static int start_run(struct schedules_runner *r, struct entry *e, const char *name,
                     long long tick_ms, int catch_up, int manual, const char *id,
                     schedules_done_cb cb, void *cb_ud, char *err, size_t errlen);

static void answer_claim(struct op *o, struct store_result *res)
{
    struct schedules_runner *r = o->r;
    struct entry *e = o->e;
    char when[32];
    iso_time(o->tick_ms, when, sizeof when);
    if (res->status == STORE_FAIL) {
        log_msg(LOG_ERROR, NULL,
                "schedule %s: the tick at %s is skipped: its lock could not be taken (%s); "
                "running it without one could run it on every host",
                e->name, when, res->err);
        count(r->s, e, OUT_SKIPPED);
        return;
    }
    switch (res->sched) {
    case STORE_SCHED_RUN:
        if (!e->cron) /* deleted meanwhile */
            return;
        start_run(r, e, e->name, o->tick_ms, o->catch_up, 0, NULL, NULL, NULL, NULL, 0);
        break;
    case STORE_SCHED_BUSY:
        log_msg(LOG_WARN, NULL,
                "schedule %s: the tick at %s is skipped: its previous run is "
                "still going",
                e->name, when);
        count(r->s, e, OUT_SKIPPED);
        break;
    case STORE_SCHED_TAKEN:
        log_msg(LOG_DEBUG, NULL, "schedule %s: the tick at %s is another host's", e->name, when);
        break;
    }
}

/* At start: was the latest tick missed by every host? */
static void answer_init(struct op *o, struct store_result *res)
{
    struct entry *e = o->e;
    if (!o->catch_up || res->status != STORE_OK || !e->cron || !e->catch_up)
        return; /* only at start: a schedule added later has missed nothing */
    long long latest = cron_prev(e->cron, wall_ms() / 1000);
    if (latest < 0 || res->tick_ms >= latest * 1000)
        return;
    char when[32];
    iso_time(latest * 1000, when, sizeof when);
    log_msg(LOG_INFO, NULL, "schedule %s: catching up the tick at %s, missed while no host ran",
            e->name, when);
    fire(o->r, e, latest * 1000, 1);
}

static void answer_list(struct op *o, struct store_result *res)
{
    struct schedules *s = o->r->s;
    if (res->status != STORE_OK)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < res->nitems; i++) {
        char name[REQUEST_TASK_NAME_MAX + 1];
        const struct store_item *it = &res->items[i];
        if (it->klen >= sizeof name)
            continue;
        memcpy(name, it->key, it->klen);
        name[it->klen] = '\0';
        struct entry *e = find(s, name);
        if (!e)
            continue;
        free(e->record);
        e->record = xstrndup(it->value, it->vlen);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_op_done(struct store_result *res, void *ud)
{
    struct op *o = ud;
    unlink_op(o);
    switch (o->kind) {
    case STORE_SCHED_CLAIM:
        answer_claim(o, res);
        break;
    case STORE_SCHED_INIT:
        answer_init(o, res);
        break;
    case STORE_SCHED_LIST:
        answer_list(o, res);
        break;
    case STORE_SCHED_DONE:
        if (res->status == STORE_FAIL)
            log_msg(LOG_WARN, NULL, "schedule %s: its run's outcome was not recorded: %s",
                    o->e ? o->e->name : "?", res->err);
        break;
    default:
        break;
    }
    store_result_clear(res);
    free(o);
}

/* ---- runs ---------------------------------------------------------------- */

static const struct config *config_of(struct schedules_runner *r)
{
    return r->cfg(r->cfg_ud);
}

/* Records the run's end in the store as its outcome, the JSON put in *b_out
 * (initialised here; caller frees). */
static void record_run(struct run *run, enum outcome oc, const char *error, long long ms,
                       struct buf *b_out)
{
    struct schedules_runner *r = run->r;
    struct buf b;
    buf_init(&b, 4096);
    buf_printf(&b, "{\"schedule\":");
    jsonw_string(&b, run->d.name, strlen(run->d.name), 0, NULL);
    buf_printf(&b, ",\"id\":\"%s\",\"tick\":%lld,\"outcome\":\"%s\",\"ms\":%lld,\"host\":", run->id,
               run->tick_ms, outcome_names[oc], ms);
    jsonw_string(&b, r->s->host_id, strlen(r->s->host_id), 0, NULL);
    if (run->catch_up)
        buf_adds(&b, ",\"catch_up\":true");
    if (run->manual)
        buf_adds(&b, ",\"manual\":true");
    if (oc != OUT_OK) {
        buf_adds(&b, ",\"error\":");
        jsonw_string(&b, error, strlen(error), 0, NULL);
    }
    buf_adds(&b, "}");
    struct store_op so = {.kind = STORE_SCHED_DONE,
                          .key = run->d.name,
                          .klen = strlen(run->d.name),
                          .tick_ms = run->tick_ms,
                          .value = b.data,
                          .vlen = b.len};
    start_op(r, run->e, &so, 0);
    *b_out = b;
}

/* A run's task reports what it did to the console's journal. */
static void schedules_note(void *ud, unsigned long long id, const char *json, size_t len)
{
    journal_event(ud, id, json, len);
}

static void finish_run(struct run *run, struct luavm_result *res)
{
    struct schedules_runner *r = run->r;
    enum outcome oc = res->status != 200 || res->failed
                          ? (res->limit != LIMIT_NONE ? OUT_LIMIT : OUT_FAILED)
                          : OUT_OK;
    long long ms = sched_clock_ms() - run->t0;
    if (run->jid) {
        static const char ok[] = "{\"outcome\":\"ok\"}";
        struct buf j;
        buf_init(&j, 2048);
        buf_printf(&j, "{\"outcome\":\"%s\",\"error\":", outcome_names[oc]);
        jsonw_string(&j, res->error, strlen(res->error), JSONW_REPLACE, NULL);
        buf_addc(&j, '}');
        if (oc == OUT_OK)
            journal_reply(r->journal, run->jid, 200, ok, sizeof ok - 1, ms, 0);
        else
            journal_reply(r->journal, run->jid, res->status != 200 ? res->status : 500,
                          j.data ? j.data : "", j.len, ms, 0);
        journal_usage(r->journal, run->jid, res->cpu_ms, res->peak_bytes);
        buf_free(&j);
    }

    struct buf line;
    buf_init(&line, LOG_LINE_MAX);
    if (oc != OUT_OK)
        log_kv(&line, "error", res->error, strlen(res->error));
    char when[32];
    iso_time(run->tick_ms, when, sizeof when);
    log_msg(oc == OUT_OK ? LOG_INFO : LOG_WARN, run->id,
            "schedule %s tick=%s outcome=%s ms=%lld%s%s", run->d.name, when, outcome_names[oc], ms,
            run->manual     ? " manual=1"
            : run->catch_up ? " catch_up=1"
                            : "",
            line.data ? line.data : "");
    buf_free(&line);

    if (run->e) {
        pthread_mutex_lock(&r->s->mu);
        run->e->runs[oc]++;
        if (run->manual)
            run->e->manual_running--;
        else
            run->e->running--;
        pthread_mutex_unlock(&r->s->mu);
    }
    struct buf b;
    record_run(run, oc, res->error, ms, &b);
    if (run->cb) {
        size_t len;
        char *json = buf_take(&b, &len);
        run->cb(json, len, run->cb_ud);
    }
    buf_free(&b);
}

static void unlink_run(struct run *run)
{
    struct schedules_runner *r = run->r;
    if (run->prev)
        run->prev->next = run->next;
    else if (r->runs == run)
        r->runs = run->next;
    if (run->next)
        run->next->prev = run->prev;
    r->nruns--;
}

static void on_run_done(struct luavm_task *t, struct luavm_result *res, void *ud)
{
    (void)t;
    struct run *run = ud;
    unlink_run(run);
    finish_run(run, res);
    free(run);
}

/* Starts a run of schedule `name` (entry e, which may be NULL for a run now
 * of a schedule the driver has not seen). Returns 1 when it ended at once
 * (finished here: cb called), 0 when it runs (cb comes with its end), or,
 * for a run now (`manual`) of a schedule with no script, -1 with the
 * reason in err and nothing recorded. */
static int start_run(struct schedules_runner *r, struct entry *e, const char *name,
                     long long tick_ms, int catch_up, int manual, const char *id,
                     schedules_done_cb cb, void *cb_ud, char *err, size_t errlen)
{
    struct run *run = xcalloc(1, sizeof *run);
    run->r = r;
    run->e = e;
    run->tick_ms = tick_ms;
    run->catch_up = catch_up;
    run->manual = manual;
    run->cb = cb;
    run->cb_ud = cb_ud;
    run->t0 = sched_clock_ms();
    if (id) {
        snprintf(run->id, sizeof run->id, "%s", id);
    } else {
        /* xorshift64* */
        r->rng ^= r->rng >> 12;
        r->rng ^= r->rng << 25;
        r->rng ^= r->rng >> 27;
        snprintf(run->id, sizeof run->id, "%016llx",
                 (unsigned long long)(r->rng * 2685821657736338717ULL));
    }
    struct luavm_result res;
    memset(&res, 0, sizeof res);
    if (request_map_task(request_type_schedule, name, &run->d, res.error, sizeof res.error) < 0)
        res.status = 404;
    if (!res.status) {
        if (e) {
            pthread_mutex_lock(&r->s->mu);
            if (manual)
                e->manual_running++;
            else
                e->running++;
            pthread_mutex_unlock(&r->s->mu);
        }
        /* A run now has a tick to the ms (schedules_run_now); its job a
         * whole second, as every tick's. */
        struct luavm_job job = {tick_ms / 1000 * 1000, catch_up};
        struct luavm_call c = {&run->d, NULL, "", 0, run->id, run->t0, NULL, &job, NULL, NULL, 0};
        if (r->journal) {
            run->jid = journal_begin(r->journal, "schedule", run->id, NULL, 0);
            journal_dispatch(r->journal, run->jid, run->d.type, run->d.name, "run");
            c.note = schedules_note;
            c.note_ud = r->journal;
            c.note_id = run->jid;
        }
        struct luavm_task *task;
        if (!luavm_start(r->vm, &c, &res, &task, on_run_done, run)) {
            run->task = task;
            run->next = r->runs;
            if (r->runs)
                r->runs->prev = run;
            r->runs = run;
            r->nruns++;
            return 0;
        }
    }
    int rc = 1;
    if (res.status == 404 && manual) {
        snprintf(err, errlen, "%s", res.error);
        rc = -1;
    } else {
        finish_run(run, &res);
    }
    free(res.body);
    free(run);
    return rc;
}

/* A tick is due: unless too many handlers run, ask for its lock. */
static void fire(struct schedules_runner *r, struct entry *e, long long tick_ms, int catch_up)
{
    const struct config *cfg = config_of(r);
    pthread_mutex_lock(&r->s->mu);
    int manual = e->manual_running;
    pthread_mutex_unlock(&r->s->mu);
    if (manual) {
        /* A run now takes no lock in the store: this host keeps its ticks
         * off it. */
        char when[32];
        iso_time(tick_ms, when, sizeof when);
        log_msg(LOG_WARN, NULL,
                "schedule %s: the tick at %s is skipped: a run now of it is still going", e->name,
                when);
        count(r->s, e, OUT_SKIPPED);
        return;
    }
    if (luavm_tasks(r->vm) >= (size_t)cfg->max_handlers) {
        char when[32];
        iso_time(tick_ms, when, sizeof when);
        log_msg(LOG_WARN, NULL,
                "schedule %s: the tick at %s is skipped here: too many handlers are running "
                "(max_handlers %ld)",
                e->name, when, cfg->max_handlers);
        count(r->s, e, OUT_SKIPPED);
        return;
    }
    struct store_op so = {.kind = STORE_SCHED_CLAIM,
                          .key = e->name,
                          .klen = strlen(e->name),
                          .tick_ms = tick_ms,
                          .hold_ms = cfg->max_run_ms + HOLD_MARGIN_MS,
                          .value = r->s->host_id,
                          .vlen = strlen(r->s->host_id)};
    start_op(r, e, &so, catch_up);
}

/* ---- following the snapshot ---------------------------------------------- */

/* The schedule's name in `rel` ("schedules/standup.lua"), or 0. */
static int schedule_name(const char *rel, char *name, size_t n)
{
    if (!schedspec_is_schedule(rel))
        return 0;
    const char *base = rel + strlen("schedules/");
    size_t len = strlen(base);
    if (len < 5 || strcmp(base + len - 4, ".lua") != 0 || len - 4 >= n || strchr(base, '/'))
        return 0;
    memcpy(name, base, len - 4);
    name[len - 4] = '\0';
    return 1;
}

/* An entry whose schedule is gone (and whose runs and store operations
 * have ended), to take up a new one; NULL when none. Under s->mu. */
static struct entry *reusable(struct schedules_runner *r)
{
    struct schedules *s = r->s;
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = s->e[i];
        if (e->present || e->cron || e->running || e->manual_running)
            continue;
        const struct op *o = r->ops;
        while (o && o->e != e)
            o = o->next;
        const struct run *run = r->runs;
        while (run && run->e != e)
            run = run->next;
        if (!o && !run)
            return e;
    }
    return NULL;
}

/* Takes up what the snapshot holds now: new and changed schedules get
 * their spec (and, at start, a look at whether their latest tick was
 * missed), deleted ones stop. */
static void follow(struct schedules_runner *r)
{
    struct schedules *s = r->s;
    unsigned long long gen;
    if (r->started && scripts_hub_generation(s->hub) == r->gen)
        return;
    struct scriptset *set = scripts_hub_acquire(s->hub, &gen);
    long long now = wall_ms();
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        s->e[i]->present = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; set && i < scriptset_count(set); i++) {
        const struct script_src *src = scriptset_at(set, i);
        char name[REQUEST_TASK_NAME_MAX + 1];
        if (!src->src || !schedule_name(src->rel, name, sizeof name))
            continue;
        char err[400];
        if (request_map_task(request_type_schedule, name, &(struct request_dispatch){0}, err,
                             sizeof err) < 0) {
            log_msg(LOG_WARN, NULL, "%s: not scheduled: %s", src->rel, err);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        struct entry *e = find(s, name);
        if (!e && s->n >= MAX_SCHEDULES && (e = reusable(r)) != NULL) {
            free(e->record);
            memset(e, 0, sizeof *e);
            snprintf(e->name, sizeof e->name, "%s", name);
        }
        if (!e && s->n < MAX_SCHEDULES) {
            e = xcalloc(1, sizeof *e);
            snprintf(e->name, sizeof e->name, "%s", name);
            s->e = xrealloc(s->e, (s->n + 1) * sizeof *s->e);
            s->e[s->n++] = e;
        }
        if (e)
            e->present = 1;
        pthread_mutex_unlock(&s->mu);
        if (!e) {
            log_msg(LOG_ERROR, NULL, "%s: not scheduled: more than %d schedules", src->rel,
                    MAX_SCHEDULES);
            continue;
        }
        if (e->version == src->version && e->cron)
            continue;
        struct schedspec spec;
        if (luavm_schedule_spec(r->vm, src->rel, &spec, err, sizeof err) < 0) {
            log_msg(LOG_ERROR, NULL, "schedule %s: %s%s", name, err,
                    e->cron ? " (its previous version stays scheduled)" : "");
            continue;
        }
        int added = !e->cron;
        pthread_mutex_lock(&s->mu);
        cron_free(e->cron);
        e->cron = spec.cron;
        e->catch_up = spec.catch_up;
        e->version = src->version;
        e->next_ms = next_tick(e->cron, now);
        pthread_mutex_unlock(&s->mu);
        char when[32] = "never";
        if (e->next_ms)
            iso_time(e->next_ms, when, sizeof when);
        log_msg(LOG_INFO, NULL, "schedule %s %s: %s, next run %s", name,
                added ? "scheduled" : "changed", cron_describe(e->cron), when);
        if (added) {
            long long latest = cron_prev(e->cron, now / 1000);
            struct store_op so = {.kind = STORE_SCHED_INIT,
                                  .key = e->name,
                                  .klen = strlen(e->name),
                                  .tick_ms = latest < 0 ? 0 : latest * 1000};
            start_op(r, e, &so, !r->started);
        }
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = s->e[i];
        if (e->present || !e->cron)
            continue;
        log_msg(LOG_INFO, NULL, "schedule %s removed: its script is gone", e->name);
        cron_free(e->cron);
        e->cron = NULL;
        e->version = 0;
        e->next_ms = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (set)
        scriptset_release(set);
    r->gen = gen;
    r->started = 1;
}

static void on_timer(struct sched *sc, void *ud);

static void arm(struct schedules_runner *r)
{
    long long now = wall_ms();
    long long wait = 1000 - now % 1000; /* at least once a second, on the second */
    struct schedules *s = r->s;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i]->cron && s->e[i]->next_ms && s->e[i]->next_ms - now < wait)
            wait = s->e[i]->next_ms - now;
    pthread_mutex_unlock(&s->mu);
    if (wait < 0)
        wait = 0;
    r->timer = sched_timer_add(r->sched, (wait + 2 + clock_speed - 1) / clock_speed, on_timer, r);
}

static void on_timer(struct sched *sc, void *ud)
{
    struct schedules_runner *r = ud;
    r->timer = NULL;
    if (sched_stopping(sc))
        return;
    follow(r);
    struct schedules *s = r->s;
    long long now = wall_ms();
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = s->e[i];
        if (!e->cron || !e->next_ms || e->next_ms > now)
            continue;
        long long tick = e->next_ms;
        /* The loop was held up past more than one tick (a suspended
         * machine, a clock set forward): the latest due one runs. */
        long long latest = cron_prev(e->cron, now / 1000);
        if (latest >= 0 && latest * 1000 > tick)
            tick = latest * 1000;
        pthread_mutex_lock(&s->mu);
        e->next_ms = next_tick(e->cron, now > tick ? now : tick);
        pthread_mutex_unlock(&s->mu);
        fire(r, e, tick, 0);
    }
    if (now >= r->next_list_ms) {
        r->next_list_ms = now + LIST_EVERY_MS;
        struct store_op so = {.kind = STORE_SCHED_LIST};
        start_op(r, NULL, &so, 0);
    }
    arm(r);
}

/* ---- runners ------------------------------------------------------------- */

void schedules_runner_journal(struct schedules_runner *r, struct journal *j)
{
    r->journal = j;
}

struct schedules_runner *schedules_runner_new(struct schedules *s, struct sched *sched,
                                              struct luavm *vm, struct redis_conn *rc, int drive,
                                              schedules_config_fn cfg, void *cfg_ud)
{
    struct schedules_runner *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->sched = sched;
    r->vm = vm;
    r->rc = rc;
    r->drive = drive;
    r->cfg = cfg;
    r->cfg_ud = cfg_ud;
    if (getrandom(&r->rng, sizeof r->rng, 0) != (ssize_t)sizeof r->rng || r->rng == 0)
        r->rng = (uint64_t)wall_ms() * 2654435761u + (uint64_t)(uintptr_t)r;
    if (drive)
        r->timer = sched_timer_add(sched, 0, on_timer, r);
    return r;
}

int schedules_runner_stop(struct schedules_runner *r)
{
    if (!r)
        return 0;
    if (r->timer)
        sched_timer_cancel(r->sched, r->timer);
    r->timer = NULL;
    /* Runs at their ticks still going are dropped with the runtime: their
     * end is recorded, so that their lock does not hold the schedule for
     * max_run_ms after a restart. */
    for (struct run *run = r->runs; run; run = run->next) {
        if (run->manual || !run->e || run->dropped)
            continue;
        run->dropped = 1;
        log_msg(LOG_WARN, run->id, "schedule %s: its run is dropped at shutdown", run->d.name);
        struct buf b;
        record_run(run, OUT_FAILED, "dropped at shutdown", sched_clock_ms() - run->t0, &b);
        buf_free(&b);
    }
    /* Only the records of runs matter now (a listing or a claim waiting
     * on a Redis that does not answer must not hold the shutdown). */
    for (struct op *o = r->ops; o; o = o->next)
        if (o->kind == STORE_SCHED_DONE)
            return 1;
    return 0;
}

void schedules_runner_free(struct schedules_runner *r)
{
    if (!r)
        return;
    /* Records what schedules_runner_stop did not (with SQLite at once; a
     * write to Redis is cancelled below, the loop being over). */
    schedules_runner_stop(r);
    while (r->ops) {
        struct op *o = r->ops;
        r->ops = o->next;
        if (o->pending)
            store_cancel(o->pending);
        free(o);
    }
    /* The runtime drops their tasks without calling back. */
    while (r->runs) {
        struct run *run = r->runs;
        r->runs = run->next;
        free(run);
    }
    free(r);
}

size_t schedules_runner_busy(const struct schedules_runner *r)
{
    return r->nruns;
}

int schedules_run_now(struct schedules_runner *r, const char *name, const char *id,
                      schedules_done_cb cb, void *ud, char *err, size_t errlen)
{
    const struct config *cfg = config_of(r);
    struct request_dispatch d;
    if (request_map_task(request_type_schedule, name, &d, err, errlen) < 0)
        return -1;
    if (luavm_tasks(r->vm) >= (size_t)cfg->max_handlers) {
        snprintf(err, errlen, "too many handlers are running (max_handlers %ld); try again",
                 cfg->max_handlers);
        return SCHEDULES_FULL;
    }
    pthread_mutex_lock(&r->s->mu);
    struct entry *e = find(r->s, name);
    int busy = e && (e->running || e->manual_running);
    pthread_mutex_unlock(&r->s->mu);
    if (busy) {
        /* Not overlapped, as a tick is not. */
        snprintf(err, errlen, "schedule %s is running now; try again when its run ends", name);
        return SCHEDULES_BUSY;
    }
    /* Its record's tick is the moment to the ms, never a whole second as
     * every tick is: its end cannot release the hold of a tick another
     * host runs in the same second. */
    long long now = wall_ms();
    return start_run(r, e, name, now % 1000 ? now : now + 1, 0, 1, id, cb, ud, err, errlen);
}

/* ---- what the operator sees ---------------------------------------------- */

void schedules_status(struct schedules *s, struct buf *out)
{
    buf_adds(out, "[");
    pthread_mutex_lock(&s->mu);
    int first = 1;
    for (size_t i = 0; i < s->n; i++) {
        const struct entry *e = s->e[i];
        if (!e->cron)
            continue;
        buf_adds(out, first ? "{\"name\":" : ",{\"name\":");
        first = 0;
        jsonw_string(out, e->name, strlen(e->name), 0, NULL);
        buf_adds(out, ",\"when\":");
        const char *when = cron_describe(e->cron);
        jsonw_string(out, when, strlen(when), 0, NULL);
        buf_printf(out, ",\"catch_up\":%s,\"running\":%s", e->catch_up ? "true" : "false",
                   e->running || e->manual_running ? "true" : "false");
        if (e->next_ms) {
            char iso[32];
            iso_time(e->next_ms, iso, sizeof iso);
            buf_printf(out, ",\"next_run\":\"%s\",\"next_run_ms\":%lld", iso, e->next_ms);
        }
        buf_adds(out, ",\"runs\":{");
        for (int o = 0; o < NOUT; o++)
            buf_printf(out, "%s\"%s\":%llu", o ? "," : "", outcome_names[o], e->runs[o]);
        buf_adds(out, "}");
        if (e->record) {
            buf_adds(out, ",\"shared\":");
            buf_adds(out, e->record);
        }
        buf_adds(out, "}");
    }
    pthread_mutex_unlock(&s->mu);
    buf_adds(out, "]");
}

void schedules_metrics(struct schedules *s, struct buf *out)
{
    buf_printf(out, "# HELP cliqhost_schedule_runs_total Scheduled runs on this host, by schedule "
                    "and outcome (skipped: busy, unclaimed or over max_handlers).\n"
                    "# TYPE cliqhost_schedule_runs_total counter\n");
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        for (int o = 0; o < NOUT; o++)
            if (s->e[i]->runs[o] || s->e[i]->cron)
                buf_printf(out,
                           "cliqhost_schedule_runs_total{schedule=\"%s\",outcome=\"%s\"} %llu\n",
                           s->e[i]->name, outcome_names[o], s->e[i]->runs[o]);
    pthread_mutex_unlock(&s->mu);
}
