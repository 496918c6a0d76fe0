/*
 * cron: cron expressions and fixed intervals, and their next and previous runs
 * (see cron.h).
 *
 * A run is found in two steps. First the next (or previous) local wall-clock
 * minute that matches the fields, counted in seconds as if the zone were UTC:
 * the search skips whole months, days and hours that cannot match, so it takes
 * a few steps, not a scan of every minute. Then the instants that wall minute
 * happens at (tz_resolve: 0, 1 or 2 of them around daylight-saving changes),
 * under the rule in cron.h. Offsets shift wall time against real time by up to
 * a day, so the search starts a little before the wall time of `after` when a
 * change is near, and stops once no later wall minute can give an earlier
 * instant.
 */
#include "core/cron.h"
#include "core/mem.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRON_EXPR_MAX 256
/* How far cron_next and cron_prev look: 9 years. The longest gap between
 * two runs of an expression that runs at all is 8 years (the 29th of
 * February around 2100, 2200, 2300), so -1 means "never". */
#define CRON_HORIZON (9LL * 366 * 86400)
/* Instants handled: about ±34,000 years, far from overflow. */
#define CRON_T_LIMIT (1LL << 40)
/* tz_resolve's window: no offset is a day or more. */
#define CRON_SPAN (27LL * 3600)

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const struct {
    const char *name;
    int min, max;
} fields[F_COUNT] = {
    {"minute", 0, 59}, {"hour", 0, 23},       {"day-of-month", 1, 31},
    {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

struct cron {
    long long every; /* seconds, or 0 for an expression */
    uint64_t mask[F_COUNT];
    int dom_star, dow_star, hour_star; /* the field starts with `*` */
    const struct tz *zone;
    char *desc;
};

/* ---- Parsing. ---- */

/* What cron_parse is working on, for error messages. */
struct parse {
    const char *expr;
    char *err;
    size_t errlen;
};

#define PARSE_ERR(ps, ...)                                                                         \
    do {                                                                                           \
        int n_ = snprintf((ps)->err, (ps)->errlen, "cron \"%s\": ", (ps)->expr);                   \
        if (n_ >= 0 && (size_t)n_ < (ps)->errlen)                                                  \
            snprintf((ps)->err + n_, (ps)->errlen - (size_t)n_, __VA_ARGS__);                      \
    } while (0)

/* Reads a value of field f at s (n bytes): a number or, for months and days of
 * the week, a three-letter name in any case. Returns 0 and *out, or -1 with
 * the error set. */
static int parse_value(struct parse *ps, int f, const char *s, size_t n, int *out)
{
    if (n > 0 && s[0] >= '0' && s[0] <= '9') {
        long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || i >= 6) {
                PARSE_ERR(ps, "%s \"%.*s\" is not a number", fields[f].name, (int)n, s);
                return -1;
            }
            v = v * 10 + (s[i] - '0');
        }
        if (v < fields[f].min || v > fields[f].max) {
            PARSE_ERR(ps, "%s %ld is out of range %d-%d", fields[f].name, v, fields[f].min,
                      fields[f].max);
            return -1;
        }
        *out = (int)v;
        return 0;
    }
    if (n == 3 && (f == F_MONTH || f == F_DOW)) {
        const char *const *names = f == F_MONTH ? month_names : day_names;
        int count = f == F_MONTH ? 12 : 7;
        char low[4];
        for (size_t i = 0; i < 3; i++)
            low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        low[3] = '\0';
        for (int i = 0; i < count; i++)
            if (strcmp(low, names[i]) == 0) {
                *out = f == F_MONTH ? i + 1 : i;
                return 0;
            }
    }
    if (n == 0)
        PARSE_ERR(ps, "%s has a range or step with a missing number", fields[f].name);
    else if (f == F_MONTH)
        PARSE_ERR(ps, "month \"%.*s\" is not a number 1-12 or a name jan-dec", (int)n, s);
    else if (f == F_DOW)
        PARSE_ERR(ps, "day-of-week \"%.*s\" is not a number 0-7 or a name sun-sat", (int)n, s);
    else
        PARSE_ERR(ps, "%s \"%.*s\" is not a number", fields[f].name, (int)n, s);
    return -1;
}

/* Parses one list item (`*`, `a`, `a-b`, each with an optional `/step`) of
 * field f into *mask. */
static int parse_item(struct parse *ps, int f, const char *s, size_t n, uint64_t *mask)
{
    int lo = fields[f].min, hi = fields[f].max, step = 1;
    const char *slash = memchr(s, '/', n);
    size_t body = slash ? (size_t)(slash - s) : n;
    if (n == 0) {
        PARSE_ERR(ps, "%s has an empty list item", fields[f].name);
        return -1;
    }
    if (slash) {
        const char *st = slash + 1;
        size_t sn = n - body - 1;
        long v = 0;
        int max_step = fields[f].max - fields[f].min + 1;
        for (size_t i = 0; i < sn && v <= max_step; i++) {
            if (st[i] < '0' || st[i] > '9') {
                v = -1;
                break;
            }
            v = v * 10 + (st[i] - '0');
        }
        if (sn == 0 || v < 1 || v > max_step) {
            PARSE_ERR(ps, "%s step \"%.*s\" is not a number from 1 to %d", fields[f].name, (int)sn,
                      st, max_step);
            return -1;
        }
        step = (int)v;
    }
    if (!(body == 1 && s[0] == '*')) {
        const char *dash = memchr(s, '-', body);
        size_t an = dash ? (size_t)(dash - s) : body;
        if (parse_value(ps, f, s, an, &lo) < 0)
            return -1;
        if (dash) {
            if (parse_value(ps, f, dash + 1, body - an - 1, &hi) < 0)
                return -1;
            if (hi < lo) {
                PARSE_ERR(ps, "%s range %.*s is backwards", fields[f].name, (int)body, s);
                return -1;
            }
        } else if (!slash) {
            hi = lo;
        }
    }
    for (int v = lo; v <= hi; v += step)
        *mask |= 1ULL << (f == F_DOW && v == 7 ? 0 : v);
    return 0;
}

/* Parses field f, a comma-separated list. */
static int parse_field(struct parse *ps, int f, const char *s, size_t n, uint64_t *mask)
{
    *mask = 0;
    for (;;) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        if (parse_item(ps, f, s, len, mask) < 0)
            return -1;
        if (!comma)
            return 0;
        s += len + 1;
        n -= len + 1;
    }
}

struct cron *cron_parse(const char *expr, const struct tz *zone, char *err, size_t errlen)
{
    struct parse ps = {expr ? expr : "", err, errlen};
    const char *tok[F_COUNT + 1];
    size_t toklen[F_COUNT + 1];
    int ntok = 0;
    size_t n = strlen(ps.expr);
    if (!zone)
        zone = tz_get("UTC", err, errlen);
    if (n > CRON_EXPR_MAX) {
        snprintf(err, errlen, "cron expression is longer than %d characters", CRON_EXPR_MAX);
        return NULL;
    }
    for (const char *p = ps.expr; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (ntok <= F_COUNT) {
            tok[ntok] = start;
            toklen[ntok] = (size_t)(p - start);
        }
        ntok++;
    }
    const char *fieldtext = ps.expr;
    const char *macro = NULL;
    if (ntok == 1 && tok[0][0] == '@') {
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == toklen[0] &&
                memcmp(macros[i].name, tok[0], toklen[0]) == 0)
                macro = macros[i].name, fieldtext = macros[i].expansion;
        if (!macro) {
            PARSE_ERR(&ps,
                      "unknown macro \"%.*s\" (known: @yearly @annually @monthly @weekly "
                      "@daily @midnight @hourly)",
                      (int)toklen[0], tok[0]);
            return NULL;
        }
        /* The expansion has five fields; read them the same way. */
        ntok = 0;
        for (const char *p = fieldtext; *p;) {
            const char *start = p;
            while (*p && *p != ' ')
                p++;
            tok[ntok] = start;
            toklen[ntok++] = (size_t)(p - start);
            if (*p)
                p++;
        }
    }
    if (ntok != F_COUNT) {
        PARSE_ERR(&ps,
                  "expected 5 fields (minute hour day-of-month month day-of-week) or a macro "
                  "such as @daily, got %d",
                  ntok);
        return NULL;
    }
    struct cron c;
    memset(&c, 0, sizeof c);
    for (int f = 0; f < F_COUNT; f++)
        if (parse_field(&ps, f, tok[f], toklen[f], &c.mask[f]) < 0)
            return NULL;
    c.hour_star = tok[F_HOUR][0] == '*';
    c.dom_star = tok[F_DOM][0] == '*';
    c.dow_star = tok[F_DOW][0] == '*';
    c.zone = zone;
    /* The description: the fields as written, single-spaced, and the zone. */
    char desc[CRON_EXPR_MAX + TZ_NAME_MAX + 2];
    size_t used = 0;
    if (macro) {
        used = (size_t)snprintf(desc, sizeof desc, "%s", macro);
    } else {
        for (int f = 0; f < F_COUNT; f++)
            used += (size_t)snprintf(desc + used, sizeof desc - used, "%s%.*s", f ? " " : "",
                                     (int)toklen[f], tok[f]);
    }
    snprintf(desc + used, sizeof desc - used, " %s", tz_name(zone));
    struct cron *out = xmalloc(sizeof *out);
    *out = c;
    out->desc = xstrdup(desc);
    return out;
}

struct cron *cron_every(const char *spec, char *err, size_t errlen)
{
    static const char units[] = "dhms";
    static const long long unit_secs[] = {86400, 3600, 60, 1};
    const char *s = spec ? spec : "";
    long long total = 0;
    int next_unit = 0, parts = 0;
    while (*s) {
        long long v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (digits++ < 10)
                v = v * 10 + (*s - '0');
            s++;
        }
        const char *u = *s ? strchr(units + next_unit, *s) : NULL;
        if (digits == 0 || digits > 10 || !u) {
            snprintf(err, errlen,
                     "every \"%.64s\": expected a number of seconds, minutes or hours: \"30s\", "
                     "\"5m\", \"2h\" (or parts such as \"1h30m\", largest first)",
                     spec ? spec : "");
            return NULL;
        }
        next_unit = (int)(u - units) + 1;
        total += v * unit_secs[u - units];
        if (total > CRON_EVERY_MAX)
            break;
        s++;
        parts++;
    }
    if (parts == 0 || total < 1 || total > CRON_EVERY_MAX) {
        if (parts == 0 && !*s && total == 0 && !(spec && *spec))
            snprintf(err, errlen,
                     "every \"\": expected a number of seconds, minutes or hours: \"30s\", "
                     "\"5m\", \"2h\"");
        else
            snprintf(err, errlen, "every \"%.64s\": the interval must be from 1s to 31d", spec);
        return NULL;
    }
    struct cron *c = xcalloc(1, sizeof *c);
    c->every = total;
    char desc[64];
    size_t used = (size_t)snprintf(desc, sizeof desc, "every ");
    long long rest = total;
    for (int i = 0; i < 4; i++)
        if (rest >= unit_secs[i]) {
            used += (size_t)snprintf(desc + used, sizeof desc - used, "%lld%c", rest / unit_secs[i],
                                     units[i]);
            rest %= unit_secs[i];
        }
    c->desc = xstrdup(desc);
    return c;
}

void cron_free(struct cron *c)
{
    if (!c)
        return;
    free(c->desc);
    free(c);
}

const char *cron_describe(const struct cron *c)
{
    return c->desc;
}

/* ---- Wall-clock search. ---- */

static int day_matches(const struct cron *c, long long days, int d)
{
    int dow = tz_weekday(days);
    int dom_ok = (int)(c->mask[F_DOM] >> d & 1), dow_ok = (int)(c->mask[F_DOW] >> dow & 1);
    if (c->dom_star || c->dow_star)
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

/* The first set bit of mask at or above v (below 64), or -1. */
static int bit_at_or_above(uint64_t mask, int v)
{
    mask &= ~0ULL << v;
    return mask ? __builtin_ctzll(mask) : -1;
}

/* The last set bit of mask at or below v (below 64), or -1. */
static int bit_at_or_below(uint64_t mask, int v)
{
    mask &= v >= 63 ? ~0ULL : (2ULL << v) - 1;
    return mask ? 63 - __builtin_clzll(mask) : -1;
}

/* The first wall minute at or after w that matches, or LLONG_MAX when there is
 * none at or before limit. */
static long long wall_next(const struct cron *c, long long w, long long limit)
{
    w = tz_floor_div(w + 59, 60) * 60;
    while (w <= limit) {
        long long days = tz_floor_div(w, 86400), y;
        int secs = (int)(w - days * 86400), m, d;
        tz_civil_from_days(days, &y, &m, &d);
        if (!(c->mask[F_MONTH] >> m & 1)) {
            w = (m == 12 ? tz_days_from_civil(y + 1, 1, 1) : tz_days_from_civil(y, m + 1, 1)) *
                86400;
            continue;
        }
        if (!day_matches(c, days, d)) {
            w = (days + 1) * 86400;
            continue;
        }
        int h = secs / 3600, h2 = bit_at_or_above(c->mask[F_HOUR], h);
        if (h2 < 0) {
            w = (days + 1) * 86400;
            continue;
        }
        int mi = h2 > h ? 0 : secs / 60 % 60, mi2 = bit_at_or_above(c->mask[F_MINUTE], mi);
        if (mi2 < 0) {
            w = days * 86400 + (h2 + 1) * 3600LL;
            continue;
        }
        return days * 86400 + h2 * 3600LL + mi2 * 60;
    }
    return LLONG_MAX;
}

/* The last wall minute at or before w that matches, or LLONG_MIN when there is
 * none at or after limit. */
static long long wall_prev(const struct cron *c, long long w, long long limit)
{
    w = tz_floor_div(w, 60) * 60;
    while (w >= limit) {
        long long days = tz_floor_div(w, 86400), y;
        int secs = (int)(w - days * 86400), m, d;
        tz_civil_from_days(days, &y, &m, &d);
        if (!(c->mask[F_MONTH] >> m & 1)) {
            w = tz_days_from_civil(y, m, 1) * 86400 - 60;
            continue;
        }
        if (!day_matches(c, days, d)) {
            w = days * 86400 - 60;
            continue;
        }
        int h = secs / 3600, h2 = bit_at_or_below(c->mask[F_HOUR], h);
        if (h2 < 0) {
            w = days * 86400 - 60;
            continue;
        }
        int mi = h2 < h ? 59 : secs / 60 % 60, mi2 = bit_at_or_below(c->mask[F_MINUTE], mi);
        if (mi2 < 0) {
            w = days * 86400 + h2 * 3600LL - 60;
            continue;
        }
        return days * 86400 + h2 * 3600LL + mi2 * 60;
    }
    return LLONG_MIN;
}

/* The instants wall minute w runs at under the daylight-saving rule: 0, 1 or
 * 2, earliest first. When w is skipped by a change at instant T, sets *gap
 * to T (else -1): every wall minute the change skips gives the same runs. */
static int runs_of_wall(const struct cron *c, long long w, long long out[2], long long *gap)
{
    int n = tz_resolve(c->zone, w, out, gap);
    if (n == 0 && *gap >= 0 && !c->hour_star) {
        out[0] = *gap;
        return 1;
    }
    if (n == 2 && !c->hour_star)
        return 1;
    return n;
}

/* The smallest and largest offsets of the zone over [from, to]. */
static void offset_range(const struct tz *z, long long from, long long to, long *lo, long *hi)
{
    long o = tz_offset(z, from);
    *lo = *hi = o;
    long long t = from;
    for (int i = 0; i < 64; i++) {
        t = tz_next_transition(z, t);
        if (t > to)
            break;
        o = tz_offset(z, t);
        if (o < *lo)
            *lo = o;
        if (o > *hi)
            *hi = o;
    }
}

long long cron_next(const struct cron *c, long long after)
{
    if (after < -CRON_T_LIMIT || after > CRON_T_LIMIT)
        return -1;
    if (c->every)
        return (tz_floor_div(after, c->every) + 1) * c->every;
    long lo, hi;
    /* A run after `after` whose wall time is before wall(after) is within a
     * day of it, so its wall time is at least after + lo. */
    offset_range(c->zone, after, after + CRON_SPAN, &lo, &hi);
    long long w = after + lo + 1, limit = after + tz_offset(c->zone, after) + CRON_HORIZON;
    long long best = -1;
    int found = 0; /* instants may be negative: best alone cannot say */
    long best_hi = 0;
    for (;;) {
        w = wall_next(c, w, limit);
        /* A later wall minute happens at or after w - (the largest offset
         * near best): once that is past best, nothing earlier can come. */
        if (w == LLONG_MAX || (found && w - best_hi > best))
            break;
        long long t[2], gap;
        int n = runs_of_wall(c, w, t, &gap);
        for (int i = 0; i < n; i++)
            if (t[i] > after && (!found || t[i] < best)) {
                best = t[i];
                found = 1;
                offset_range(c->zone, best - CRON_SPAN, best, &lo, &best_hi);
            }
        /* The rest of a skipped stretch (up to a day) gives nothing new. */
        if (gap >= 0 && gap + tz_offset(c->zone, gap) - 60 > w)
            w = gap + tz_offset(c->zone, gap) - 60;
        w += 60;
    }
    return best;
}

long long cron_prev(const struct cron *c, long long at)
{
    if (at < -CRON_T_LIMIT || at > CRON_T_LIMIT)
        return -1;
    if (c->every)
        return tz_floor_div(at, c->every) * c->every;
    long lo, hi;
    /* A run at or before `at` whose wall time is after wall(at) is within a
     * day of it, so its wall time is at most at + hi. */
    offset_range(c->zone, at - CRON_SPAN, at, &lo, &hi);
    long long w = at + hi, limit = at + tz_offset(c->zone, at) - CRON_HORIZON;
    long long best = -1;
    int found = 0;
    long best_lo = 0;
    for (;;) {
        w = wall_prev(c, w, limit);
        if (w == LLONG_MIN || (found && w - best_lo < best))
            break;
        long long t[2], gap;
        int n = runs_of_wall(c, w, t, &gap);
        for (int i = 0; i < n; i++)
            if (t[i] <= at && (!found || t[i] > best)) {
                best = t[i];
                found = 1;
                offset_range(c->zone, best, best + CRON_SPAN, &best_lo, &hi);
            }
        if (gap >= 0 && gap + tz_offset(c->zone, gap - 1) < w)
            w = gap + tz_offset(c->zone, gap - 1);
        w -= 60;
    }
    return best;
}
