/*
 * tz: TZif files (RFC 8536) and their POSIX TZ footer rules (see tz.h).
 *
 * Every read of a file is bounded by its size, and every count in it is checked
 * against what remains, so a damaged or hostile file gives an error, never a
 * read past the end. Zones are immutable once built and live in a list guarded
 * by one mutex; lookups need no lock.
 */
#include "core/tz.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
/* Zone abbreviations kept ("CEST", "+0530"); longer ones are cut. */
#define TZ_ABBR_MAX 15
/* RFC 8536 §3.2: UT offsets lie within (-25 h, +26 h). */
#define TZ_OFFSET_LIMIT (26L * 3600)
/* Instants beyond ±2^52 s (142 million years) count as that bound, so no
 * date arithmetic can overflow. */
#define TZ_T_LIMIT (1LL << 52)
/* tz_resolve looks this far either side of a wall time for its instants. */
#define TZ_RESOLVE_SPAN (27LL * 3600)

/* One date of a POSIX rule: Jn (julian, no Feb 29), n (zero-based, with
 * Feb 29) or Mm.w.d, and the local time of day it happens at. */
struct tz_date {
    char kind; /* 'J', 'N' or 'M' */
    int n, m, w, d;
    long time;
};

/* A POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3": offsets east
 * positive, unlike the string's own sign. */
struct tz_rule {
    long std_off, dst_off;
    int has_dst;
    char std_abbr[TZ_ABBR_MAX + 1], dst_abbr[TZ_ABBR_MAX + 1];
    struct tz_date start, end;
};

struct tz_type {
    long utoff;
    int isdst;
    char abbr[TZ_ABBR_MAX + 1]; /* "CET"; longer ones are cut */
};

struct tz {
    struct tz *next; /* the cache list */
    char *name;
    long long *trans; /* ascending transition instants */
    unsigned char *trans_type;
    size_t ntrans;
    struct tz_type *types;
    size_t ntypes;
    int has_rule;
    struct tz_rule rule;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *cache;

/* ---- Civil dates (Howard Hinnant's algorithms, proleptic Gregorian). ---- */

long long tz_days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(long long days, long long *y, int *m, int *d)
{
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_weekday(long long days)
{
    return (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
}

long long tz_floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ strings (the TZif footer). ---- */

/* Parses a zone abbreviation: <...> or three or more letters, copied to
 * abbr (cut to TZ_ABBR_MAX). */
static int rule_name(const char **p, char *abbr)
{
    const char *s = *p;
    size_t n = 0;
    int quoted = *s == '<';
    if (quoted) {
        s++;
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-')
            n++;
        if (s[n] != '>')
            return -1;
    } else {
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
            n++;
    }
    if (n < 3)
        return -1;
    memcpy(abbr, s, n < TZ_ABBR_MAX ? n : TZ_ABBR_MAX);
    abbr[n < TZ_ABBR_MAX ? n : TZ_ABBR_MAX] = '\0';
    *p = s + n + quoted;
    return 0;
}

/* Parses [+-]hh[:mm[:ss]] with hours up to max_hours; seconds to *out. */
static int rule_hms(const char **p, int max_hours, long *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    long part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            part[i] = part[i] * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || (*s >= '0' && *s <= '9'))
            return -1;
    }
    if (part[0] > max_hours || part[1] > 59 || part[2] > 59)
        return -1;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return 0;
}

/* Parses a non-negative decimal number of at most 3 digits. */
static int rule_num(const char **p, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 3)
        return -1;
    *out = v;
    *p = s;
    return 0;
}

/* Parses one rule date, with an optional /time (default 02:00). */
static int rule_date(const char **p, struct tz_date *dt)
{
    const char *s = *p;
    memset(dt, 0, sizeof *dt);
    if (*s == 'J') {
        s++;
        dt->kind = 'J';
        if (rule_num(&s, &dt->n) < 0 || dt->n < 1 || dt->n > 365)
            return -1;
    } else if (*s == 'M') {
        s++;
        dt->kind = 'M';
        if (rule_num(&s, &dt->m) < 0 || dt->m < 1 || dt->m > 12 || *s++ != '.' ||
            rule_num(&s, &dt->w) < 0 || dt->w < 1 || dt->w > 5 || *s++ != '.' ||
            rule_num(&s, &dt->d) < 0 || dt->d > 6)
            return -1;
    } else {
        dt->kind = 'N';
        if (rule_num(&s, &dt->n) < 0 || dt->n > 365)
            return -1;
    }
    dt->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (rule_hms(&s, 167, &dt->time) < 0)
            return -1;
    }
    *p = s;
    return 0;
}

/* Parses a whole POSIX TZ string of n bytes (not NUL-terminated in the file,
 * so it is copied first). Returns 0, or -1 when it is not one. */
static int rule_parse(const char *text, size_t n, struct tz_rule *r)
{
    char buf[128];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (strlen(buf) != n)
        return -1;
    const char *s = buf;
    long off;
    memset(r, 0, sizeof *r);
    if (rule_name(&s, r->std_abbr) < 0 || rule_hms(&s, 24, &off) < 0)
        return -1;
    r->std_off = -off;
    if (*s == '\0')
        return 0;
    if (rule_name(&s, r->dst_abbr) < 0)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (rule_hms(&s, 24, &off) < 0)
            return -1;
        r->dst_off = -off;
    }
    if (*s == '\0') {
        /* No dates: glibc's default, the US rule. */
        const char *us = "M3.2.0,M11.1.0";
        if (rule_date(&us, &r->start) < 0 || *us++ != ',' || rule_date(&us, &r->end) < 0)
            return -1;
        return 0;
    }
    if (*s++ != ',' || rule_date(&s, &r->start) < 0 || *s++ != ',' || rule_date(&s, &r->end) < 0 ||
        *s != '\0')
        return -1;
    return 0;
}

/* The day (since the epoch) a rule date falls on in year y. */
static long long rule_day(const struct tz_date *dt, long long y)
{
    long long jan1 = tz_days_from_civil(y, 1, 1);
    if (dt->kind == 'J')
        return jan1 + dt->n - 1 + (is_leap(y) && dt->n >= 60);
    if (dt->kind == 'N')
        return jan1 + dt->n;
    long long first = tz_days_from_civil(y, dt->m, 1);
    long long wd = tz_weekday(first);
    long long day = first + (dt->d - wd + 7) % 7 + (long long)(dt->w - 1) * 7;
    long long next =
        dt->m == 12 ? tz_days_from_civil(y + 1, 1, 1) : tz_days_from_civil(y, dt->m + 1, 1);
    while (day >= next)
        day -= 7;
    return day;
}

/* The instants daylight saving starts and ends in year y. The start's time is
 * standard local time, the end's daylight local time. */
static void rule_year(const struct tz_rule *r, long long y, long long *start, long long *end)
{
    *start = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
    *end = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
}

static void rule_lookup(const struct tz_rule *r, long long t, long *off, int *isdst,
                        const char **abbr)
{
    *off = r->std_off;
    *isdst = 0;
    *abbr = r->std_abbr;
    if (!r->has_dst)
        return;
    long long y;
    int m, d;
    tz_civil_from_days(tz_floor_div(t + r->std_off, 86400), &y, &m, &d);
    long long start, end;
    rule_year(r, y, &start, &end);
    int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    if (dst) {
        *off = r->dst_off;
        *isdst = 1;
        *abbr = r->dst_abbr;
    }
}

static long long rule_next(const struct tz_rule *r, long long t)
{
    if (!r->has_dst)
        return LLONG_MAX;
    long long y, best = LLONG_MAX;
    int m, d;
    tz_civil_from_days(tz_floor_div(t, 86400), &y, &m, &d);
    for (long long yy = y - 1; yy <= y + 1; yy++) {
        long long start, end;
        rule_year(r, yy, &start, &end);
        if (start > t && start < best)
            best = start;
        if (end > t && end < best)
            best = end;
    }
    return best;
}

/* ---- Lookups. ---- */

static long long clamp_t(long long t)
{
    return t < -TZ_T_LIMIT ? -TZ_T_LIMIT : t > TZ_T_LIMIT ? TZ_T_LIMIT : t;
}

/* The offset, dst flag and abbreviation in effect at t. */
static void zone_lookup(const struct tz *z, long long t, long *off, int *isdst, const char **abbr)
{
    size_t n = z->ntrans;
    const struct tz_type *ty;
    t = clamp_t(t);
    if (n == 0 || t >= z->trans[n - 1]) {
        if (z->has_rule) {
            rule_lookup(&z->rule, t, off, isdst, abbr);
            return;
        }
        ty = &z->types[n ? z->trans_type[n - 1] : 0];
    } else if (t < z->trans[0]) {
        ty = &z->types[0];
    } else {
        size_t lo = 0, hi = n - 1; /* trans[lo] <= t < trans[hi] */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        ty = &z->types[z->trans_type[lo]];
    }
    *off = ty->utoff;
    *isdst = ty->isdst;
    *abbr = ty->abbr;
}

const char *tz_name(const struct tz *z)
{
    return z->name;
}

long tz_offset(const struct tz *z, long long t)
{
    long off;
    int isdst;
    const char *abbr;
    zone_lookup(z, t, &off, &isdst, &abbr);
    return off;
}

void tz_local(const struct tz *z, long long t, struct tm *out)
{
    long off;
    int isdst, m, d;
    long long y;
    const char *abbr;
    t = clamp_t(t);
    zone_lookup(z, t, &off, &isdst, &abbr);
    long long w = t + off;
    long long days = tz_floor_div(w, 86400), secs = w - days * 86400;
    tz_civil_from_days(days, &y, &m, &d);
    memset(out, 0, sizeof *out);
    out->tm_year = (int)(y - 1900);
    out->tm_mon = m - 1;
    out->tm_mday = d;
    out->tm_hour = (int)(secs / 3600);
    out->tm_min = (int)(secs / 60 % 60);
    out->tm_sec = (int)(secs % 60);
    out->tm_wday = tz_weekday(days);
    out->tm_yday = (int)(days - tz_days_from_civil(y, 1, 1));
    out->tm_isdst = isdst;
    out->tm_gmtoff = off;
    out->tm_zone = abbr;
}

long long tz_next_transition(const struct tz *z, long long t)
{
    size_t n = z->ntrans;
    if (t >= TZ_T_LIMIT)
        return LLONG_MAX;
    t = clamp_t(t);
    if (n > 0 && t < z->trans[n - 1]) {
        size_t lo = 0, hi = n - 1; /* the first transition > t is in [lo, hi] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        return z->trans[lo];
    }
    return z->has_rule ? rule_next(&z->rule, t) : LLONG_MAX;
}

int tz_resolve(const struct tz *z, long long wall, long long out[2], long long *gap_end)
{
    int count = 0;
    wall = clamp_t(wall);
    long long s = wall - TZ_RESOLVE_SPAN, hi = wall + TZ_RESOLVE_SPAN;
    long off = tz_offset(z, s);
    *gap_end = -1;
    /* Walk the segments of constant offset that cover the span (a bounded
     * number: real zones change at most a few times a day). */
    for (int i = 0; i < 64; i++) {
        long long next = tz_next_transition(z, s);
        long long t = wall - off;
        if (t >= s && t < next && t <= hi && count < 2)
            out[count++] = t;
        if (next > hi)
            break;
        long off2 = tz_offset(z, next);
        if (off2 > off && wall >= next + off && wall < next + off2)
            *gap_end = next;
        s = next;
        off = off2;
    }
    return count;
}

/* ---- Reading TZif. ---- */

/* A bounded reader over the file's bytes. */
struct rd {
    const unsigned char *p;
    size_t left;
};

static const unsigned char *rd_take(struct rd *r, size_t n)
{
    if (n > r->left)
        return NULL;
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_header(struct rd *r, struct tzif_header *h)
{
    const unsigned char *p = rd_take(r, 44);
    if (!p || memcmp(p, "TZif", 4) != 0)
        return -1;
    h->version = (char)p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return 0;
}

/* The bytes of a data block with times of `tsize` bytes, or 0 when the counts
 * are impossible (each is checked against the cap before multiplying). */
static size_t block_size(const struct tzif_header *h, size_t tsize)
{
    if (h->timecnt > TZ_FILE_MAX || h->typecnt > TZ_FILE_MAX || h->charcnt > TZ_FILE_MAX ||
        h->leapcnt > TZ_FILE_MAX || h->isstdcnt > TZ_FILE_MAX || h->isutcnt > TZ_FILE_MAX)
        return 0;
    return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads one data block into z. Returns NULL, or what is wrong. */
static const char *read_block(struct rd *r, const struct tzif_header *h, size_t tsize, struct tz *z)
{
    if (h->typecnt == 0 || h->typecnt > 256)
        return "it has no or too many local time types";
    if (h->leapcnt != 0)
        return "leap-second (\"right/\") zones are not supported";
    if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt))
        return "its indicator counts do not match its types";
    size_t size = block_size(h, tsize);
    const unsigned char *times = rd_take(r, (size_t)h->timecnt * tsize);
    const unsigned char *idx = rd_take(r, h->timecnt);
    const unsigned char *types = rd_take(r, (size_t)h->typecnt * 6);
    const unsigned char *chars = rd_take(r, h->charcnt);
    if (size == 0 || !times || !idx || !types || !chars ||
        !rd_take(r, size - (size_t)h->timecnt * (tsize + 1) - (size_t)h->typecnt * 6 - h->charcnt))
        return "it is truncated";
    z->ntrans = h->timecnt;
    z->ntypes = h->typecnt;
    z->trans = xcalloc(z->ntrans + 1, sizeof *z->trans);
    z->trans_type = xcalloc(z->ntrans + 1, 1);
    z->types = xcalloc(z->ntypes, sizeof *z->types);
    for (size_t i = 0; i < z->ntrans; i++) {
        z->trans[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        z->trans_type[i] = idx[i];
        if (idx[i] >= h->typecnt)
            return "a transition names a type it does not have";
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return "its transitions are not in order";
    }
    for (size_t i = 0; i < z->ntypes; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);
        if (off <= -TZ_OFFSET_LIMIT || off >= TZ_OFFSET_LIMIT)
            return "a UTC offset is out of range";
        if (types[6 * i + 4] > 1)
            return "a daylight-saving flag is neither 0 nor 1";
        z->types[i].utoff = off;
        z->types[i].isdst = types[6 * i + 4];
        size_t at = types[6 * i + 5];
        if (at >= h->charcnt)
            return "an abbreviation is outside its characters";
        for (size_t k = 0; k < TZ_ABBR_MAX && at + k < h->charcnt && chars[at + k]; k++)
            z->types[i].abbr[k] = (char)chars[at + k];
    }
    return NULL;
}

static void zone_free(struct tz *z)
{
    if (!z)
        return;
    free(z->name);
    free(z->trans);
    free(z->trans_type);
    free(z->types);
    free(z);
}

/* Parses a whole TZif file. Returns NULL, or what is wrong with it. */
static const char *parse_tzif(const unsigned char *data, size_t len, struct tz *z)
{
    struct rd r = {data, len};
    struct tzif_header h;
    if (read_header(&r, &h) < 0)
        return "it is not a TZif file";
    if (h.version == '\0')
        return read_block(&r, &h, 4, z);
    if (h.version < '2')
        return "its TZif version is unknown";
    /* Version 2+: skip the 32-bit block, read the 64-bit one and the footer. */
    size_t v1 = block_size(&h, 4);
    if (v1 == 0 && h.typecnt != 0)
        return "it is truncated";
    if (!rd_take(&r, v1) || read_header(&r, &h) < 0)
        return "it is truncated";
    const char *why = read_block(&r, &h, 8, z);
    if (why)
        return why;
    if (r.left < 2 || r.p[0] != '\n')
        return "its footer is missing";
    const unsigned char *end = memchr(r.p + 1, '\n', r.left - 1);
    if (!end || (size_t)(end - r.p) + 1 != r.left)
        return "its footer is not one line";
    size_t n = (size_t)(end - r.p) - 1;
    if (n > 0) {
        if (rule_parse((const char *)r.p + 1, n, &z->rule) < 0)
            return "its footer is not a valid POSIX TZ rule";
        z->has_rule = 1;
    }
    return NULL;
}

/* Checks a zone name: relative, parts non-empty, only [A-Za-z0-9_+-/]. */
static int name_ok(const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    const char *why = NULL;
    if (n == 0)
        why = "it is empty";
    else if (n > TZ_NAME_MAX)
        why = "it is too long";
    else if (name[0] == '/')
        why = "it is an absolute path";
    else if (strstr(name, ".."))
        why = "it contains \"..\"";
    else if (name[n - 1] == '/' || strstr(name, "//"))
        why = "it has an empty part";
    else
        for (const char *p = name; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '+' || *p == '-' || *p == '/')) {
                why = "only letters, digits, '_', '+', '-' and '/' are allowed";
                break;
            }
    if (why)
        snprintf(err, errlen, "bad time zone name \"%.*s\": %s", 64, name, why);
    return why == NULL;
}

/* Reads and parses the zone's file. Returns the new zone (not yet cached),
 * or NULL with err set. */
static struct tz *zone_load(const char *name, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        snprintf(err, errlen, "time zone \"%s\": path too long", name);
        return NULL;
    }
    struct tz *z = xcalloc(1, sizeof *z);
    unsigned char *data = NULL;
    const char *why = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(err, errlen, "unknown time zone \"%s\" (no %s)", name, path);
        else
            snprintf(err, errlen, "time zone \"%s\": cannot open %s: %s", name, path,
                     strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "unknown time zone \"%s\" (%s is not a file)", name, path);
        goto fail;
    }
    if (st.st_size > TZ_FILE_MAX) {
        snprintf(err, errlen, "time zone \"%s\": %s is larger than %d bytes", name, path,
                 TZ_FILE_MAX);
        goto fail;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1; /* one more byte sees growth */
    data = xmalloc(cap);
    for (;;) {
        ssize_t got = read(fd, data + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "time zone \"%s\": cannot read %s: %s", name, path,
                     strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == cap) {
            snprintf(err, errlen, "time zone \"%s\": %s changed while it was read", name, path);
            goto fail;
        }
    }
    why = parse_tzif(data, len, z);
    if (why) {
        snprintf(err, errlen, "time zone \"%s\": %s is not usable: %s", name, path, why);
        goto fail;
    }
    close(fd);
    free(data);
    z->name = xstrdup(name);
    return z;
fail:
    if (fd >= 0)
        close(fd);
    free(data);
    zone_free(z);
    return NULL;
}

/* UTC without a file: one type, no transitions, no rule. */
static struct tz *zone_utc(const char *name)
{
    struct tz *z = xcalloc(1, sizeof *z);
    z->name = xstrdup(name);
    z->types = xcalloc(1, sizeof *z->types);
    memcpy(z->types[0].abbr, "UTC", 4);
    z->ntypes = 1;
    return z;
}

const struct tz *tz_get(const char *name, char *err, size_t errlen)
{
    if (!name || !name_ok(name, err, errlen))
        return NULL;
    pthread_mutex_lock(&cache_lock);
    struct tz *z;
    for (z = cache; z; z = z->next)
        if (strcmp(z->name, name) == 0)
            goto done;
    /* Loading under the lock keeps one zone per name; it happens once per
     * name, at startup or reload. */
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
        z = zone_utc(name);
    else
        z = zone_load(name, err, errlen);
    if (z) {
        z->next = cache;
        cache = z;
    }
done:
    pthread_mutex_unlock(&cache_lock);
    return z;
}
