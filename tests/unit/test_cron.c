/* Unit tests for tz and cron: the cron syntax and every error class, next and
 * previous runs in plain cases, both daylight-saving changes in several zones
 * (the "no missed or doubled run"), the TZif footer rule compared with
 * glibc, and damaged or hostile zone files and names. */
#include "check.h"
#include "core/cron.h"
#include "core/tz.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/cliqhost-test-cron-XXXXXX";
static char err[512];

/* The instant of a UTC date and time. */
static long long utc(int y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60;
}

static const struct tz *zone(const char *name)
{
    const struct tz *z = tz_get(name, err, sizeof err);
    if (!z)
        fprintf(stderr, "tz_get(%s): %s\n", name, err);
    CHECK(z != NULL);
    return z;
}

static struct cron *parse(const char *expr, const char *zname)
{
    struct cron *c = cron_parse(expr, zname ? zone(zname) : NULL, err, sizeof err);
    if (!c)
        fprintf(stderr, "cron_parse(%s): %s\n", expr, err);
    CHECK(c != NULL);
    return c;
}

/* The runs in [from, to), by cron_next, into out (at most cap); also checks
 * that cron_prev walks the same runs back. Returns the count. */
static int runs(const struct cron *c, long long from, long long to, long long *out, int cap)
{
    int n = 0;
    for (long long t = cron_next(c, from - 1); t >= 0 && t < to && n < cap; t = cron_next(c, t))
        out[n++] = t;
    for (int i = 0; i < n; i++) {
        CHECK_INT(cron_prev(c, out[i]), out[i]);
        if (i > 0)
            CHECK_INT(cron_prev(c, out[i] - 1), out[i - 1]);
    }
    return n;
}

/* The UTC offset glibc gives for zone name at t. */
static long glibc_offset(const char *tzvalue, long long t)
{
    setenv("TZ", tzvalue, 1);
    tzset();
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return tm.tm_gmtoff;
}

/* Writes a file of n bytes under tmpdir. */
static void write_file(const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

/* A TZif v2 file with no transitions, one type (utoff) and `footer`; returns
 * its length in buf. */
static size_t slim_tzif(unsigned char *buf, long utoff, const char *footer)
{
    size_t n = 0;
    for (int block = 0; block < 2; block++) {
        memcpy(buf + n, "TZif2", 5);
        memset(buf + n + 5, 0, 39);
        buf[n + 39] = 1; /* typecnt */
        buf[n + 43] = 4; /* charcnt */
        n += 44;
        uint32_t u = (uint32_t)utoff;
        unsigned char type[6] = {u >> 24, u >> 16 & 255, u >> 8 & 255, u & 255, 0, 0};
        memcpy(buf + n, type, 6);
        memcpy(buf + n + 6, "XXX", 4);
        n += 10;
    }
    n += (size_t)snprintf((char *)buf + n, 200, "\n%s\n", footer);
    return n;
}

static void read_whole(const char *path, unsigned char **data, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    *data = malloc(TZ_FILE_MAX);
    *n = f ? fread(*data, 1, TZ_FILE_MAX, f) : 0;
    if (f)
        fclose(f);
}

/* ---- Syntax. ---- */

static void test_syntax_forms(void)
{
    long long r[64];
    long long jan1 = utc(2026, 1, 1, 0, 0); /* a Thursday */
    struct cron *c = parse("*/15 * * * *", "UTC");
    CHECK_INT(runs(c, jan1, jan1 + 3600, r, 64), 4);
    CHECK_INT(r[1], jan1 + 15 * 60);
    cron_free(c);

    c = parse("5/15 0 * * *", "UTC"); /* 5, 20, 35, 50 */
    CHECK_INT(runs(c, jan1, jan1 + 86400, r, 64), 4);
    CHECK_INT(r[0], jan1 + 5 * 60);
    CHECK_INT(r[3], jan1 + 50 * 60);
    cron_free(c);

    c = parse("0-30/10 0 * * *", "UTC"); /* 0, 10, 20, 30 */
    CHECK_INT(runs(c, jan1, jan1 + 86400, r, 64), 4);
    CHECK_INT(r[3], jan1 + 30 * 60);
    cron_free(c);

    c = parse("1,5,9 7-8 * * *", "UTC");
    CHECK_INT(runs(c, jan1, jan1 + 86400, r, 64), 6);
    CHECK_INT(r[0], utc(2026, 1, 1, 7, 1));
    CHECK_INT(r[5], utc(2026, 1, 1, 8, 9));
    cron_free(c);

    /* Names in any case, in ranges and lists; 7 is Sunday like 0. */
    const char *same_as_weekdays[] = {"0 9 * * mon-fri", "0 9 * * MON-Fri", "0 9 * * 1-5",
                                      "0 9 * * 1,2,3,thu,FRI"};
    for (size_t i = 0; i < sizeof same_as_weekdays / sizeof same_as_weekdays[0]; i++) {
        c = parse(same_as_weekdays[i], "UTC");
        CHECK_INT(runs(c, jan1, jan1 + 14 * 86400, r, 64), 10);
        CHECK_INT(r[0], utc(2026, 1, 1, 9, 0));
        CHECK_INT(r[1], utc(2026, 1, 2, 9, 0));
        CHECK_INT(r[2], utc(2026, 1, 5, 9, 0)); /* over the weekend */
        cron_free(c);
    }
    const char *sundays[] = {"0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 6-7/1"};
    for (size_t i = 0; i < 4; i++) {
        c = parse(sundays[i], "UTC");
        CHECK_INT(cron_next(c, jan1), i == 3 ? utc(2026, 1, 3, 0, 0) : utc(2026, 1, 4, 0, 0));
        CHECK_INT(cron_next(c, utc(2026, 1, 4, 0, 0) - 1), utc(2026, 1, 4, 0, 0));
        cron_free(c);
    }
    c = parse("0 0 1 jan,JUL *", "UTC");
    CHECK_INT(cron_next(c, jan1), utc(2026, 7, 1, 0, 0));
    CHECK_INT(cron_next(c, utc(2026, 7, 1, 0, 0)), utc(2027, 1, 1, 0, 0));
    cron_free(c);
    c = parse("0 0 1 feb-apr *", "UTC");
    CHECK_INT(runs(c, jan1, utc(2027, 1, 1, 0, 0), r, 64), 3);
    CHECK_INT(r[2], utc(2026, 4, 1, 0, 0));
    cron_free(c);

    /* Day of month and day of week both restricted: either matches. */
    c = parse("0 0 13 * fri", "UTC");
    CHECK_INT(runs(c, jan1, utc(2026, 2, 1, 0, 0), r, 64), 6); /* Fridays 2,9,16,23,30 + 13th */
    CHECK_INT(r[1], utc(2026, 1, 9, 0, 0));
    CHECK_INT(r[2], utc(2026, 1, 13, 0, 0));
    cron_free(c);
    /* One starts with `*` (even with a step): both must match. */
    c = parse("0 0 */2 * fri", "UTC"); /* odd days that are Fridays: 9, 23 */
    CHECK_INT(runs(c, jan1, utc(2026, 2, 1, 0, 0), r, 64), 2);
    CHECK_INT(r[0], utc(2026, 1, 9, 0, 0));
    CHECK_INT(r[1], utc(2026, 1, 23, 0, 0));
    cron_free(c);

    /* Whitespace is free; the description is canonical. */
    c = parse("  0\t9 *  * 1-5 ", "Europe/Paris");
    CHECK_STR(cron_describe(c), "0 9 * * 1-5 Europe/Paris");
    cron_free(c);
    c = parse("0 9 * * 1-5", NULL);
    CHECK_STR(cron_describe(c), "0 9 * * 1-5 UTC");
    cron_free(c);
}

static void test_macros(void)
{
    static const struct {
        const char *macro;
        long long next; /* after 2026-01-01 00:00 UTC (a Thursday) */
    } cases[] = {
        {"@yearly", 0}, {"@annually", 0}, {"@monthly", 1}, {"@weekly", 2},
        {"@daily", 3},  {"@midnight", 3}, {"@hourly", 4},
    };
    long long want[] = {utc(2027, 1, 1, 0, 0), utc(2026, 2, 1, 0, 0), utc(2026, 1, 4, 0, 0),
                        utc(2026, 1, 2, 0, 0), utc(2026, 1, 1, 1, 0)};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cron *c = parse(cases[i].macro, "UTC");
        CHECK_INT(cron_next(c, utc(2026, 1, 1, 0, 0)), want[cases[i].next]);
        char desc[64];
        snprintf(desc, sizeof desc, "%s UTC", cases[i].macro);
        CHECK_STR(cron_describe(c), desc);
        cron_free(c);
    }
}

/* Checks that expr is refused with a message containing want. */
static void refused(const char *expr, const char *want)
{
    err[0] = '\0';
    struct cron *c = cron_parse(expr, NULL, err, sizeof err);
    CHECK(c == NULL);
    CHECK_HAS(err, want);
    cron_free(c);
}

static void test_errors(void)
{
    refused("0 25 * * *", "cron \"0 25 * * *\": hour 25 is out of range 0-23");
    refused("60 * * * *", "minute 60 is out of range 0-59");
    refused("0 0 0 * *", "day-of-month 0 is out of range 1-31");
    refused("0 0 32 * *", "day-of-month 32 is out of range 1-31");
    refused("0 0 * 13 *", "month 13 is out of range 1-12");
    refused("0 0 * * 8", "day-of-week 8 is out of range 0-7");
    refused("0 0 * * 99999999999", "day-of-week \"99999999999\" is not a number");
    refused("x * * * *", "minute \"x\" is not a number");
    refused("0 1x * * *", "hour \"1x\" is not a number");
    refused("0 0 * foo *", "month \"foo\" is not a number 1-12 or a name jan-dec");
    refused("0 0 * * monday", "day-of-week \"monday\" is not a number 0-7 or a name sun-sat");
    refused("0 0 * * jan", "day-of-week \"jan\" is not a number 0-7 or a name sun-sat");
    refused("0 0 mon * *", "day-of-month \"mon\" is not a number");
    refused("0 5-1 * * *", "hour range 5-1 is backwards");
    refused("0 0 * * fri-mon", "day-of-week range fri-mon is backwards");
    refused("*/0 * * * *", "minute step \"0\" is not a number from 1 to 60");
    refused("*/61 * * * *", "minute step \"61\" is not a number from 1 to 60");
    refused("*/ * * * *", "minute step \"\" is not a number");
    refused("*/x * * * *", "minute step \"x\" is not a number");
    refused("1,,2 * * * *", "minute has an empty list item");
    refused("1, * * * *", "minute has an empty list item");
    refused("1- * * * *", "minute has a range or step with a missing number");
    refused("-1 * * * *", "minute has a range or step with a missing number");
    refused("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or a "
                       "macro such as @daily, got 4");
    refused("* * * * * *", "got 6");
    refused("", "cron \"\": expected 5 fields");
    refused(NULL, "cron \"\": expected 5 fields");
    refused("@reboot", "unknown macro \"@reboot\"");
    refused("@daily 1", "got 2");
    char big[400];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    refused(big, "cron expression is longer than 256 characters");
}

static void test_every(void)
{
    static const struct {
        const char *spec, *desc;
        long long secs;
    } ok[] = {
        {"30s", "every 30s", 30},         {"5m", "every 5m", 300},        {"2h", "every 2h", 7200},
        {"90s", "every 1m30s", 90},       {"1h30m", "every 1h30m", 5400}, {"1d", "every 1d", 86400},
        {"31d", "every 31d", 31 * 86400}, {"1s", "every 1s", 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct cron *c = cron_every(ok[i].spec, err, sizeof err);
        CHECK(c != NULL);
        if (!c)
            continue;
        CHECK_STR(cron_describe(c), ok[i].desc);
        /* The multiples of the interval since the epoch, the same on every host. */
        long long t = 1790000000;
        long long n = cron_next(c, t);
        CHECK_INT(n % ok[i].secs, 0);
        CHECK(n > t && n <= t + ok[i].secs);
        CHECK_INT(cron_next(c, n), n + ok[i].secs);
        CHECK_INT(cron_prev(c, n), n);
        CHECK_INT(cron_prev(c, n - 1), n - ok[i].secs);
        cron_free(c);
    }
    struct cron *c = cron_every("30s", err, sizeof err);
    CHECK_INT(cron_next(c, 0), 30);
    CHECK_INT(cron_next(c, -1), 0);
    CHECK_INT(cron_prev(c, -1), -30);
    CHECK_INT(cron_next(c, LLONG_MAX), -1);
    cron_free(c);
    static const struct {
        const char *spec, *want;
    } bad[] = {
        {"5x", "every \"5x\": expected a number of seconds, minutes or hours: \"30s\", \"5m\", "
               "\"2h\""},
        {"", "every \"\": expected a number of seconds"},
        {"5", "every \"5\": expected a number"},
        {"m", "every \"m\": expected a number"},
        {"30m1h", "every \"30m1h\": expected a number"},
        {"1m1m", "every \"1m1m\": expected a number"},
        {"-5s", "every \"-5s\": expected a number"},
        {"5 s", "every \"5 s\": expected a number"},
        {"0s", "every \"0s\": the interval must be from 1s to 31d"},
        {"32d", "every \"32d\": the interval must be from 1s to 31d"},
        {"31d1s", "every \"31d1s\": the interval must be from 1s to 31d"},
        {"99999999999999999999s", "every \"99999999999999999999s\": expected a number"},
        {"9999999999s", "the interval must be from 1s to 31d"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        c = cron_every(bad[i].spec, err, sizeof err);
        CHECK(c == NULL);
        CHECK_HAS(err, bad[i].want);
        cron_free(c);
    }
    c = cron_every(NULL, err, sizeof err);
    CHECK(c == NULL);
}

/* ---- Plain next and previous runs. ---- */

static void test_plain(void)
{
    /* Weekdays at 9:00 in Paris (UTC+1 in winter, +2 in summer). */
    struct cron *c = parse("0 9 * * 1-5", "Europe/Paris");
    CHECK_INT(cron_next(c, utc(2026, 1, 2, 8, 0) - 1), utc(2026, 1, 2, 8, 0)); /* Friday */
    CHECK_INT(cron_next(c, utc(2026, 1, 2, 8, 0)), utc(2026, 1, 5, 8, 0));     /* Monday */
    CHECK_INT(cron_next(c, utc(2026, 6, 5, 12, 0)), utc(2026, 6, 8, 7, 0));
    CHECK_INT(cron_prev(c, utc(2026, 6, 7, 12, 0)), utc(2026, 6, 5, 7, 0));
    CHECK_INT(cron_prev(c, utc(2026, 6, 5, 7, 0)), utc(2026, 6, 5, 7, 0));
    CHECK_INT(cron_prev(c, utc(2026, 6, 5, 7, 0) - 1), utc(2026, 6, 4, 7, 0));
    cron_free(c);

    /* The 31st skips the months without one, both ways. */
    c = parse("0 0 31 * *", "UTC");
    CHECK_INT(cron_next(c, utc(2026, 3, 31, 0, 0)), utc(2026, 5, 31, 0, 0));
    CHECK_INT(cron_prev(c, utc(2026, 5, 30, 0, 0)), utc(2026, 3, 31, 0, 0));
    cron_free(c);

    /* Leap day: the next Feb 29. */
    c = parse("0 0 29 2 *", "UTC");
    CHECK_INT(cron_next(c, utc(2026, 1, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
    CHECK_INT(cron_next(c, utc(2028, 2, 29, 0, 0)), utc(2032, 2, 29, 0, 0));
    CHECK_INT(cron_prev(c, utc(2028, 2, 28, 0, 0)), utc(2024, 2, 29, 0, 0));
    /* 2100 is no leap year: the one after 2096 is 2104, 8 years on (a
     * schedule run in 2096 went on with "next run never"). */
    CHECK_INT(cron_next(c, utc(2096, 3, 1, 0, 0)), utc(2104, 2, 29, 0, 0));
    CHECK_INT(cron_prev(c, utc(2104, 2, 28, 0, 0)), utc(2096, 2, 29, 0, 0));
    cron_free(c);

    /* Never: none within 9 years either way. */
    c = parse("0 0 30 2 *", "Europe/Paris");
    CHECK_INT(cron_next(c, utc(2026, 1, 1, 0, 0)), -1);
    CHECK_INT(cron_prev(c, utc(2026, 1, 1, 0, 0)), -1);
    cron_free(c);
    c = parse("0 0 31 4,6,9,11 *", "UTC");
    CHECK_INT(cron_next(c, 0), -1);
    cron_free(c);

    /* Before the epoch, and at the far end. */
    c = parse("0 12 * * *", "UTC");
    CHECK_INT(cron_next(c, utc(1960, 5, 5, 13, 0)), utc(1960, 5, 6, 12, 0));
    CHECK_INT(cron_prev(c, utc(1960, 5, 5, 11, 0)), utc(1960, 5, 4, 12, 0));
    CHECK_INT(cron_next(c, LLONG_MAX), -1);
    CHECK_INT(cron_prev(c, LLONG_MIN), -1);
    cron_free(c);

    /* Every minute: the next whole minute. */
    c = parse("* * * * *", "America/New_York");
    CHECK_INT(cron_next(c, utc(2026, 7, 1, 10, 0)), utc(2026, 7, 1, 10, 1));
    CHECK_INT(cron_next(c, utc(2026, 7, 1, 10, 0) + 59), utc(2026, 7, 1, 10, 1));
    CHECK_INT(cron_prev(c, utc(2026, 7, 1, 10, 0) + 59), utc(2026, 7, 1, 10, 0));
    cron_free(c);
}

/* ---- Daylight saving. ---- */

/* The runs of expr in zone from instant day0 to day1 (a local day), which
 * must be strictly increasing, and walk back the same by cron_prev. */
static int day_runs(const char *expr, const char *zname, long long day0, long long day1,
                    long long *r, int cap)
{
    struct cron *c = parse(expr, zname);
    int n = runs(c, day0, day1, r, cap);
    /* No run is doubled: strictly increasing. */
    for (int i = 1; i < n; i++)
        CHECK(r[i] > r[i - 1]);
    cron_free(c);
    return n;
}

static void test_dst_paris(void)
{
    long long r[200];
    /* Spring: 2026-03-29 02:00 CET becomes 03:00 CEST (01:00 UTC). The local
     * day runs from 23:00 UTC the day before to 22:00 UTC. */
    long long s0 = utc(2026, 3, 28, 23, 0), s1 = utc(2026, 3, 29, 22, 0);
    CHECK_INT(day_runs("30 2 * * *", "Europe/Paris", s0, s1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 3, 29, 1, 0)); /* 03:00 CEST */
    /* Several skipped minutes give one run. */
    CHECK_INT(day_runs("*/10 2 * * *", "Europe/Paris", s0, s1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 3, 29, 1, 0));
    CHECK_INT(day_runs("0 * * * *", "Europe/Paris", s0, s1, r, 200), 23);
    CHECK_INT(day_runs("*/15 * * * *", "Europe/Paris", s0, s1, r, 200), 23 * 4);
    for (int i = 1; i < 23 * 4; i++)
        CHECK_INT(r[i] - r[i - 1], 900);
    /* The day before and after are plain. */
    CHECK_INT(day_runs("30 2 * * *", "Europe/Paris", s0 - 86400, s0, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 3, 28, 1, 30));
    CHECK_INT(day_runs("30 2 * * *", "Europe/Paris", s1, s1 + 86400, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 3, 30, 0, 30));

    /* Autumn: 2026-10-25 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:00-02:59
     * happens twice. The local day runs from 22:00 UTC to 23:00 UTC. */
    long long a0 = utc(2026, 10, 24, 22, 0), a1 = utc(2026, 10, 25, 23, 0);
    CHECK_INT(day_runs("30 2 * * *", "Europe/Paris", a0, a1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 10, 25, 0, 30)); /* 02:30 CEST, the first */
    CHECK_INT(day_runs("0 * * * *", "Europe/Paris", a0, a1, r, 200), 25);
    CHECK_INT(day_runs("*/15 * * * *", "Europe/Paris", a0, a1, r, 200), 25 * 4);
    for (int i = 1; i < 25 * 4; i++)
        CHECK_INT(r[i] - r[i - 1], 900);
    CHECK_INT(day_runs("0 0-5 * * *", "Europe/Paris", a0, a1, r, 200), 6);

    /* prev from inside the changes. */
    struct cron *c = parse("30 2 * * *", "Europe/Paris");
    CHECK_INT(cron_prev(c, utc(2026, 10, 25, 1, 45)), utc(2026, 10, 25, 0, 30));
    CHECK_INT(cron_prev(c, utc(2026, 3, 29, 1, 0) - 1), utc(2026, 3, 28, 1, 30));
    CHECK_INT(cron_next(c, utc(2026, 3, 29, 0, 59)), utc(2026, 3, 29, 1, 0));
    cron_free(c);
}

static void test_dst_new_york(void)
{
    long long r[200];
    /* 2026-03-08 02:00 EST becomes 03:00 EDT (07:00 UTC). */
    long long s0 = utc(2026, 3, 8, 5, 0), s1 = utc(2026, 3, 9, 4, 0);
    CHECK_INT(day_runs("30 2 * * *", "America/New_York", s0, s1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 3, 8, 7, 0));
    CHECK_INT(day_runs("0 * * * *", "America/New_York", s0, s1, r, 200), 23);
    CHECK_INT(day_runs("*/15 * * * *", "America/New_York", s0, s1, r, 200), 92);
    /* 2026-11-01 02:00 EDT becomes 01:00 EST (06:00 UTC). */
    long long a0 = utc(2026, 11, 1, 4, 0), a1 = utc(2026, 11, 2, 5, 0);
    CHECK_INT(day_runs("30 1 * * *", "America/New_York", a0, a1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 11, 1, 5, 30)); /* 01:30 EDT */
    CHECK_INT(day_runs("0 * * * *", "America/New_York", a0, a1, r, 200), 25);
    CHECK_INT(day_runs("*/15 * * * *", "America/New_York", a0, a1, r, 200), 100);
    CHECK_INT(day_runs("30 * * * *", "America/New_York", a0, a1, r, 200), 25);
    CHECK_INT(r[1], utc(2026, 11, 1, 5, 30));
    CHECK_INT(r[2], utc(2026, 11, 1, 6, 30)); /* 01:30 EST, again */
}

static void test_dst_lord_howe(void)
{
    long long r[200];
    /* A 30-minute shift. 2026-04-05 02:00 +11 becomes 01:30 +1030 (15:00
     * UTC the day before); 01:30-01:59 happens twice. */
    long long a0 = utc(2026, 4, 4, 13, 0), a1 = utc(2026, 4, 5, 13, 30);
    CHECK_INT(day_runs("45 1 * * *", "Australia/Lord_Howe", a0, a1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 4, 4, 14, 45));
    CHECK_INT(day_runs("45 * * * *", "Australia/Lord_Howe", a0, a1, r, 200), 25);
    CHECK_INT(day_runs("0 * * * *", "Australia/Lord_Howe", a0, a1, r, 200), 24);
    CHECK_INT(day_runs("*/15 * * * *", "Australia/Lord_Howe", a0, a1, r, 200), 24 * 4 + 2);
    /* 2026-10-04 02:00 +1030 becomes 02:30 +11 (15:30 UTC the day before). */
    long long s0 = utc(2026, 10, 3, 13, 30), s1 = utc(2026, 10, 4, 13, 0);
    CHECK_INT(day_runs("15 2 * * *", "Australia/Lord_Howe", s0, s1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 10, 3, 15, 30)); /* 02:30 +11 */
    CHECK_INT(day_runs("0 * * * *", "Australia/Lord_Howe", s0, s1, r, 200), 23);
    CHECK_INT(day_runs("*/15 * * * *", "Australia/Lord_Howe", s0, s1, r, 200), 23 * 4 + 2);
}

static void test_dst_sydney_and_utc(void)
{
    long long r[200];
    /* Southern hemisphere: 2026-04-05 03:00 AEDT becomes 02:00 AEST (16:00 UTC
     * the day before), 2026-10-04 02:00 AEST becomes 03:00 AEDT. */
    long long a0 = utc(2026, 4, 4, 13, 0), a1 = utc(2026, 4, 5, 14, 0);
    CHECK_INT(day_runs("30 2 * * *", "Australia/Sydney", a0, a1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 4, 4, 15, 30));
    CHECK_INT(day_runs("0 * * * *", "Australia/Sydney", a0, a1, r, 200), 25);
    long long s0 = utc(2026, 10, 3, 14, 0), s1 = utc(2026, 10, 4, 13, 0);
    CHECK_INT(day_runs("30 2 * * *", "Australia/Sydney", s0, s1, r, 200), 1);
    CHECK_INT(r[0], utc(2026, 10, 3, 16, 0));
    CHECK_INT(day_runs("0 * * * *", "Australia/Sydney", s0, s1, r, 200), 23);
    /* In UTC both days are plain. */
    CHECK_INT(day_runs("0 * * * *", "UTC", utc(2026, 3, 29, 0, 0), utc(2026, 3, 30, 0, 0), r, 200),
              24);
    CHECK_INT(
        day_runs("30 2 * * *", "Etc/UTC", utc(2026, 10, 25, 0, 0), utc(2026, 10, 26, 0, 0), r, 200),
        1);
    CHECK_INT(r[0], utc(2026, 10, 25, 2, 30));
}

/* Beyond the file's last explicit transition the footer's rule applies. */
static void test_footer_2050(void)
{
    long long r[200];
    /* 2050-03-27 and 2050-10-30 are the last Sundays. */
    CHECK_INT(day_runs("30 2 * * *", "Europe/Paris", utc(2050, 3, 26, 23, 0),
                       utc(2050, 3, 27, 22, 0), r, 200),
              1);
    CHECK_INT(r[0], utc(2050, 3, 27, 1, 0));
    CHECK_INT(day_runs("0 * * * *", "Europe/Paris", utc(2050, 10, 29, 22, 0),
                       utc(2050, 10, 30, 23, 0), r, 200),
              25);
    CHECK_INT(day_runs("0 * * * *", "America/New_York", utc(2050, 3, 13, 5, 0),
                       utc(2050, 3, 14, 4, 0), r, 200),
              23);
    /* Offsets every 7 hours through 2049-2051, against glibc. */
    const char *zones[] = {"Europe/Paris", "America/New_York", "Australia/Lord_Howe",
                           "Australia/Sydney"};
    for (size_t i = 0; i < 4; i++) {
        const struct tz *z = zone(zones[i]);
        int bad = 0;
        for (long long t = utc(2049, 1, 1, 0, 0); t < utc(2052, 1, 1, 0, 0); t += 7 * 3600 + 17)
            bad += tz_offset(z, t) != glibc_offset(zones[i], t);
        CHECK_INT(bad, 0);
    }
}

/* tz_offset and tz_local against glibc for a sample of instants 1970-2060. */
static void test_offsets_vs_glibc(void)
{
    const char *zones[] = {"Europe/Paris",     "America/New_York", "Australia/Lord_Howe",
                           "Australia/Sydney", "Asia/Kolkata",     "America/Sao_Paulo",
                           "Pacific/Apia",     "Asia/Kathmandu",   "Europe/London",
                           "America/St_Johns", "Africa/Casablanca"};
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        const struct tz *z = zone(zones[i]);
        if (!z)
            continue;
        CHECK(tz_get(zones[i], err, sizeof err) == z); /* cached */
        CHECK_STR(tz_name(z), zones[i]);
        int bad = 0;
        unsigned seed = 12345;
        for (int k = 0; k < 4000; k++) {
            seed = seed * 1103515245 + 12345;
            long long t = utc(1970, 1, 1, 0, 0) +
                          (long long)((double)(seed >> 8) / (1 << 24) * (utc(2060, 1, 1, 0, 0)));
            struct tm mine, theirs;
            tz_local(z, t, &mine);
            setenv("TZ", zones[i], 1);
            tzset();
            time_t tt = (time_t)t;
            localtime_r(&tt, &theirs);
            if (tz_offset(z, t) != theirs.tm_gmtoff || mine.tm_hour != theirs.tm_hour ||
                mine.tm_mday != theirs.tm_mday || mine.tm_mon != theirs.tm_mon ||
                mine.tm_year != theirs.tm_year || mine.tm_wday != theirs.tm_wday ||
                mine.tm_yday != theirs.tm_yday || mine.tm_min != theirs.tm_min ||
                mine.tm_isdst != theirs.tm_isdst || strcmp(mine.tm_zone, theirs.tm_zone) != 0) {
                if (bad++ < 3)
                    fprintf(stderr,
                            "%s at %lld: mine %ld %02d:%02d dst %d %s, glibc %ld %02d:%02d "
                            "dst %d %s\n",
                            zones[i], t, tz_offset(z, t), mine.tm_hour, mine.tm_min, mine.tm_isdst,
                            mine.tm_zone, theirs.tm_gmtoff, theirs.tm_hour, theirs.tm_min,
                            theirs.tm_isdst, theirs.tm_zone);
            }
        }
        CHECK_INT(bad, 0);
    }
}

/* tz_resolve: every instant it gives reads as the wall time asked; around a
 * change it gives 0 (with the end of the gap) or 2. */
static void test_resolve(void)
{
    const struct tz *z = zone("Europe/Paris");
    long long t[2], gap;
    CHECK_INT(tz_resolve(z, utc(2026, 3, 29, 2, 30), t, &gap), 0);
    CHECK_INT(gap, utc(2026, 3, 29, 1, 0));
    CHECK_INT(tz_resolve(z, utc(2026, 10, 25, 2, 30), t, &gap), 2);
    CHECK_INT(t[0], utc(2026, 10, 25, 0, 30));
    CHECK_INT(t[1], utc(2026, 10, 25, 1, 30));
    CHECK_INT(tz_resolve(z, utc(2026, 10, 25, 3, 0), t, &gap), 1);
    CHECK_INT(t[0], utc(2026, 10, 25, 2, 0));
    /* Samoa skipped 2011-12-30 entirely. */
    z = zone("Pacific/Apia");
    if (z) {
        CHECK_INT(tz_resolve(z, utc(2011, 12, 30, 12, 0), t, &gap), 0);
        CHECK_INT(gap, utc(2011, 12, 30, 10, 0));
        /* Noon on the 29th (UTC-10), then the skipped 30th runs at the
         * skip (midnight of the 31st, UTC+14), then noon on the 31st. */
        struct cron *c = parse("0 12 * * *", "Pacific/Apia");
        CHECK_INT(cron_next(c, utc(2011, 12, 29, 0, 0)), utc(2011, 12, 29, 22, 0));
        CHECK_INT(cron_next(c, utc(2011, 12, 29, 22, 0)), utc(2011, 12, 30, 10, 0));
        CHECK_INT(cron_next(c, utc(2011, 12, 30, 10, 0)), utc(2011, 12, 30, 22, 0));
        CHECK_INT(cron_prev(c, utc(2011, 12, 30, 21, 0)), utc(2011, 12, 30, 10, 0));
        cron_free(c);
    }
}

/* ---- Against an oracle built on glibc's localtime. ---- */

/* An expression and the same schedule written as a predicate on a local
 * time, so the oracle shares no code with cron. */
struct oracle_case {
    const char *expr;
    int hour_star;
    int (*match)(const struct tm *l);
};

static int m_0230(const struct tm *l)
{
    return l->tm_min == 30 && l->tm_hour == 2;
}
static int m_q(const struct tm *l)
{
    return l->tm_min % 15 == 0;
}
static int m_hourly(const struct tm *l)
{
    return l->tm_min == 0;
}
static int m_10_1to3(const struct tm *l)
{
    return l->tm_min % 10 == 0 && l->tm_hour >= 1 && l->tm_hour <= 3;
}
static int m_45(const struct tm *l)
{
    return l->tm_min == 45;
}
static int m_sunday_nights(const struct tm *l)
{
    return (l->tm_min == 0 || l->tm_min == 30) && l->tm_hour <= 4 && l->tm_wday == 0;
}
static int m_or_rule(const struct tm *l)
{
    return l->tm_min == 15 && l->tm_hour == 2 && (l->tm_mday <= 7 || l->tm_wday == 0);
}
static int m_hour2(const struct tm *l)
{
    return l->tm_hour == 2;
}
static int m_7(const struct tm *l)
{
    return l->tm_min % 7 == 0;
}
static int m_midnight(const struct tm *l)
{
    return l->tm_min == 0 && l->tm_hour == 0;
}

static const struct oracle_case oracle_cases[] = {
    {"30 2 * * *", 0, m_0230},        {"*/15 * * * *", 1, m_q},
    {"0 * * * *", 1, m_hourly},       {"*/10 1-3 * * *", 0, m_10_1to3},
    {"45 * * * *", 1, m_45},          {"0,30 0-4 * * 0", 0, m_sunday_nights},
    {"15 2 1-7 * sun", 0, m_or_rule}, {"* 2 * * *", 0, m_hour2},
    {"*/7 * * * *", 1, m_7},          {"0 0 * * *", 0, m_midnight},
};

static long long oracle_runs[8000];

/* The runs of oc over [from, to) by the rule in cron.h, from glibc: every
 * real minute whose local time matches (only the first of a repeated local
 * time unless the hour is `*`), and for a forward change the instant of the
 * change when a skipped local minute matches (unless the hour is `*`). TZ is
 * set by the caller. */
static int oracle(const struct oracle_case *oc, long long from, long long to)
{
    int n = 0;
    for (long long t = from; t < to && n < 8000; t += 60) {
        time_t tt = (time_t)t, prev = (time_t)(t - 60);
        struct tm l, lp;
        localtime_r(&tt, &l);
        localtime_r(&prev, &lp);
        int run = 0;
        if (l.tm_gmtoff > lp.tm_gmtoff && !oc->hour_star) {
            /* The local minutes from lp's wall + 60 up to l's wall are skipped. */
            for (long long w = t + lp.tm_gmtoff; w < t + l.tm_gmtoff; w += 60) {
                time_t wt = (time_t)w;
                struct tm s;
                gmtime_r(&wt, &s);
                run |= oc->match(&s);
            }
        }
        if (oc->match(&l)) {
            /* A repeat of an earlier local time: that instant is earlier by
             * the difference of the offsets. */
            int repeat = 0;
            for (long long back = 15 * 60; back <= 3 * 3600 && !repeat; back += 15 * 60) {
                time_t e = (time_t)(t - back);
                struct tm le;
                localtime_r(&e, &le);
                repeat = t - back + le.tm_gmtoff == t + l.tm_gmtoff;
            }
            run |= !repeat || oc->hour_star;
        }
        if (run)
            oracle_runs[n++] = t;
    }
    return n;
}

static void test_oracle(void)
{
    static const struct {
        const char *zone;
        int year;
    } zones[] = {
        {"Europe/Paris", 2026},     {"America/New_York", 2026}, {"Australia/Lord_Howe", 2026},
        {"Australia/Sydney", 2026}, {"Pacific/Apia", 2011},     {"America/Sao_Paulo", 2018},
        {"America/Havana", 2026},   {"Europe/Paris", 2050},     {"Asia/Tehran", 2021},
        {"Europe/Moscow", 2011},    {"Europe/Moscow", 2014},
    };
    static long long mine[8000];
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        const struct tz *z = zone(zones[i].zone);
        if (!z)
            continue;
        setenv("TZ", zones[i].zone, 1);
        tzset();
        /* The offset changes of that year, found hourly by glibc. */
        long long start = utc(zones[i].year, 1, 1, 0, 0), end = utc(zones[i].year + 1, 1, 1, 0, 0);
        int changes = 0;
        for (long long h = start; h < end; h += 3600) {
            time_t a = (time_t)h, b = (time_t)(h + 3600);
            struct tm la, lb;
            localtime_r(&a, &la);
            localtime_r(&b, &lb);
            if (la.tm_gmtoff == lb.tm_gmtoff)
                continue;
            changes++;
            long long from = h - 36 * 3600, to = h + 36 * 3600;
            for (size_t k = 0; k < sizeof oracle_cases / sizeof oracle_cases[0]; k++) {
                const struct oracle_case *oc = &oracle_cases[k];
                setenv("TZ", zones[i].zone, 1);
                tzset();
                int want = oracle(oc, from, to);
                struct cron *c = parse(oc->expr, zones[i].zone);
                int got = runs(c, from, to, mine, 8000);
                cron_free(c);
                int same = got == want;
                for (int j = 0; same && j < got; j++)
                    same = mine[j] == oracle_runs[j];
                if (!same) {
                    fprintf(stderr, "%s in %s around %lld: %d runs, oracle %d\n", oc->expr,
                            zones[i].zone, h, got, want);
                    for (int j = 0; j < got || j < want; j++)
                        if (j >= got || j >= want || mine[j] != oracle_runs[j]) {
                            fprintf(stderr, "  first difference: %lld vs %lld\n",
                                    j < got ? mine[j] : -1, j < want ? oracle_runs[j] : -1);
                            break;
                        }
                }
                CHECK(same);
            }
        }
        CHECK(changes >= 1);
    }
}

/* ---- The footer rule syntax, against glibc reading the same TZ string. ---- */

static void test_footer_rules(void)
{
    static const char *rules[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "EST5EDT,M3.2.0,M11.1.0",
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",   /* negative times (America/Nuuk) */
        "<+0330>-3:30<+0430>,J79/24,J263/24", /* Julian days, 24:00 */
        "XXX3YYY,59/2:30:15,300/167",         /* zero-based days, hours up to 167 */
        "<-01>1<+00>0,M3.5.0/0,M10.5.0/1",
        "AEST-10AEDT,M10.1.0,M4.1.0/3",
        "IST-5:30",
        "<+0545>-5:45",
        "NZST-12NZDT,M9.5.0,M4.1.0/3",
        "ABC+1:02:03DEF-2:03:04,M2.5.6/12:13:14,M11.1.1/0:00:01",
    };
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "footer%zu", i);
        write_file(name, buf, slim_tzif(buf, 0, rules[i]));
        const struct tz *z = zone(name);
        if (!z)
            continue;
        int bad = 0;
        for (long long t = utc(1971, 1, 1, 0, 0); t < utc(2060, 1, 1, 0, 0); t += 86400 * 3 + 3593)
            if (tz_offset(z, t) != glibc_offset(rules[i], t) && bad++ < 3)
                fprintf(stderr, "%s at %lld: mine %ld glibc %ld\n", rules[i], t, tz_offset(z, t),
                        glibc_offset(rules[i], t));
        CHECK_INT(bad, 0);
        /* The abbreviations too, in 2055 (January and July). */
        for (int mo = 1; mo <= 7; mo += 6) {
            struct tm mine, theirs;
            time_t tt = (time_t)utc(2055, mo, 15, 12, 0);
            tz_local(z, utc(2055, mo, 15, 12, 0), &mine);
            setenv("TZ", rules[i], 1);
            tzset();
            localtime_r(&tt, &theirs);
            CHECK_STR(mine.tm_zone, theirs.tm_zone);
        }
        /* The transitions are where the offset changes. */
        for (long long t = utc(2030, 1, 1, 0, 0), k = 0; k < 6; k++) {
            long long next = tz_next_transition(z, t);
            if (next == LLONG_MAX)
                break;
            CHECK(next > t);
            for (long long u = t + 3600; u < next; u += 3600 * 7)
                CHECK_INT(tz_offset(z, u), tz_offset(z, t + 1));
            t = next;
        }
    }
    /* Footers that are not rules make the file unusable. */
    static const char *bad_rules[] = {
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "C-1",
        "CET",
        "CET-25",
        "CET-1CEST,J0,J365",
        "CET-1CEST,366,J365",
        "CET-1CEST,M3.5.0/168,M10.5.0",
        "<AB>1",
        "<ABC1",
        "CET-1:60",
        "CET-1CEST,M3.5.0,M10.5.0/3 trailing",
    };
    for (size_t i = 0; i < sizeof bad_rules / sizeof bad_rules[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "badfooter%zu", i);
        write_file(name, buf, slim_tzif(buf, 0, bad_rules[i]));
        err[0] = '\0';
        CHECK(tz_get(name, err, sizeof err) == NULL);
        CHECK_HAS(err, "its footer is not a valid POSIX TZ rule");
    }
    /* Daylight saving all year (RFC 8536 §3.3.1). glibc takes the year from
     * UTC and so gives EST for the first hours of each year; tzcode and we
     * do not. */
    write_file("alldst", buf, slim_tzif(buf, 0, "EST5EDT,0/0,J365/25"));
    const struct tz *all = zone("alldst");
    if (all) {
        int bad = 0;
        for (long long t = utc(1971, 1, 1, 0, 0); t < utc(2060, 1, 1, 0, 0); t += 86400 * 3 + 3593)
            bad += tz_offset(all, t) != -4 * 3600;
        for (int y = 1971; y < 2060; y++)
            bad += tz_offset(all, utc(y, 1, 1, 0, 0)) != -4 * 3600;
        CHECK_INT(bad, 0);
    }
    /* An empty footer: the last type holds for ever. */
    write_file("nofooter", buf, slim_tzif(buf, 19800, ""));
    const struct tz *z = zone("nofooter");
    if (z)
        CHECK_INT(tz_offset(z, utc(2050, 6, 1, 0, 0)), 19800);
}

/* Instants at the ends of the range give answers, not overflows (the
 * UBSan build checks). */
static void test_extremes(void)
{
    const char *zones[] = {"Europe/Paris", "UTC", "Australia/Lord_Howe"};
    long long ts[] = {LLONG_MIN, LLONG_MIN + 1, -(1LL << 53), 1LL << 53, LLONG_MAX - 1, LLONG_MAX};
    for (size_t i = 0; i < 3; i++) {
        const struct tz *z = zone(zones[i]);
        if (!z)
            continue;
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
            struct tm tm;
            long long out[2], gap;
            long off = tz_offset(z, ts[k]);
            CHECK(off > -26 * 3600 && off < 26 * 3600);
            tz_local(z, ts[k], &tm);
            CHECK(tz_next_transition(z, ts[k]) > ts[k] || ts[k] == LLONG_MAX);
            int n = tz_resolve(z, ts[k], out, &gap);
            CHECK(n >= 0 && n <= 2);
        }
    }
}

/* A version 1 file (32-bit data only, no footer): transitions, including
 * one before 1970, and the last type for ever after. */
static void test_version1(void)
{
    static const unsigned char v1[] = {
        'T',  'Z',  'i',  'f',  0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0,    0,    0,    0,    0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, /* timecnt */
        0,    0,    0,    2,                                                    /* typecnt */
        0,    0,    0,    8,                                                    /* charcnt */
        0xff, 0xff, 0xfc, 0x18,                                                 /* -1000 */
        0x3b, 0x9a, 0xca, 0x00,                                                 /* 1000000000 */
        0x41, 0x90, 0xab, 0x00,                                                 /* 1100000000 */
        1,    0,    1,                                                          /* their types */
        0,    0,    0x0e, 0x10, 0,   0,                                         /* +1:00 "AAA" */
        0,    0,    0x1c, 0x20, 1,   4, /* +2:00 dst "BBB" */
        'A',  'A',  'A',  0,    'B', 'B', 'B', 0,
    };
    write_file("v1", v1, sizeof v1);
    const struct tz *z = zone("v1");
    if (!z)
        return;
    struct tm tm;
    CHECK_INT(tz_offset(z, -5000), 3600); /* before the first: type 0 */
    CHECK_INT(tz_offset(z, -1000), 7200);
    CHECK_INT(tz_offset(z, 999999999), 7200);
    CHECK_INT(tz_offset(z, 1000000000), 3600);
    CHECK_INT(tz_offset(z, 1100000000), 7200);
    CHECK_INT(tz_offset(z, 4000000000LL), 7200);
    tz_local(z, 1100000000, &tm);
    CHECK_STR(tm.tm_zone, "BBB");
    CHECK_INT(tm.tm_isdst, 1);
    CHECK_INT(tz_next_transition(z, 0), 1000000000);
    CHECK_INT(tz_next_transition(z, 1100000000), LLONG_MAX);
    /* Every prefix is refused. */
    int accepted = 0;
    for (size_t len = 0; len < sizeof v1; len++) {
        write_file("v1cut", v1, len);
        accepted += tz_get("v1cut", err, sizeof err) != NULL;
    }
    CHECK_INT(accepted, 0);
}

/* Threads asking for the same new zone at once get one zone. */
static const struct tz *raced[8];

static void *race(void *arg)
{
    raced[(intptr_t)arg] = tz_get("Asia/Tokyo", err + 0, 0);
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[8];
    for (intptr_t i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, race, (void *)i);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    CHECK(raced[0] != NULL);
    for (int i = 1; i < 8; i++)
        CHECK(raced[i] == raced[0]);
}

/* ---- Refusals: names and files. ---- */

static void test_bad_names(void)
{
    static const struct {
        const char *name, *want;
    } bad[] = {
        {"", "bad time zone name \"\": it is empty"},
        {"/etc/localtime", "bad time zone name \"/etc/localtime\": it is an absolute path"},
        {"../../etc/passwd", "it contains \"..\""},
        {"Europe/../../etc", "it contains \"..\""},
        {"Europe//Paris", "it has an empty part"},
        {"Europe/Paris/", "it has an empty part"},
        {"Europe/Par is", "only letters, digits"},
        {"Europe/Paris\n", "only letters, digits"},
        {"Europe/.Paris", "only letters, digits"},
        {"Europe\\Paris", "only letters, digits"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(tz_get(bad[i].name, err, sizeof err) == NULL);
        CHECK_HAS(err, bad[i].want);
    }
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(tz_get(longname, err, sizeof err) == NULL);
    CHECK_HAS(err, "it is too long");
    CHECK(tz_get(NULL, err, sizeof err) == NULL);
}

static void test_unknown_and_bad_files(void)
{
    /* With the system's database (TZDIR unset). */
    unsetenv("TZDIR");
    CHECK(tz_get("Europe/Pariss", err, sizeof err) == NULL);
    CHECK_STR(err, "unknown time zone \"Europe/Pariss\" (no /usr/share/zoneinfo/Europe/Pariss)");
    CHECK(tz_get("Europe", err, sizeof err) == NULL);
    CHECK_STR(err, "unknown time zone \"Europe\" (/usr/share/zoneinfo/Europe is not a file)");
    CHECK(tz_get("Europe/Paris/x", err, sizeof err) == NULL);
    CHECK_HAS(err, "unknown time zone \"Europe/Paris/x\"");
    CHECK(tz_get("right/Europe/Paris", err, sizeof err) == NULL);
    CHECK_HAS(err, "leap-second (\"right/\") zones are not supported");
    CHECK(tz_get("leapseconds", err, sizeof err) == NULL);
    CHECK_HAS(err, "it is not a TZif file");
    const struct tz *gmt5 = zone("Etc/GMT+5"); /* POSIX signs: 5 hours west */
    if (gmt5)
        CHECK_INT(tz_offset(gmt5, 1790000000), -5 * 3600);
    /* The same pointer for the same name. */
    const struct tz *paris = zone("Europe/Paris");
    CHECK(tz_get("Europe/Paris", err, sizeof err) == paris);

    setenv("TZDIR", tmpdir, 1);
    /* UTC needs no file. */
    const struct tz *u = zone("UTC");
    if (u) {
        struct tm tm;
        CHECK_INT(tz_offset(u, 1790000000), 0);
        tz_local(u, 1790000000, &tm);
        CHECK_STR(tm.tm_zone, "UTC");
    }
    CHECK(zone("Etc/UTC") != NULL);

    write_file("text", "hello world, this is not a zone file at all, not even close......", 66);
    CHECK(tz_get("text", err, sizeof err) == NULL);
    CHECK_HAS(err, "time zone \"text\": ");
    CHECK_HAS(err, "is not usable: it is not a TZif file");
    write_file("empty", "", 0);
    CHECK(tz_get("empty", err, sizeof err) == NULL);
    CHECK_HAS(err, "it is not a TZif file");
    unsigned char *big = calloc(1, TZ_FILE_MAX + 10);
    memcpy(big, "TZif2", 5);
    write_file("big", big, TZ_FILE_MAX + 10);
    free(big);
    CHECK(tz_get("big", err, sizeof err) == NULL);
    CHECK_HAS(err, "is larger than 262144 bytes");

    /* Every proper prefix of a real file is refused (the reads are bounded). */
    unsigned char *data;
    size_t n;
    read_whole("/usr/share/zoneinfo/Europe/Paris", &data, &n);
    CHECK(n > 100);
    int accepted = 0;
    for (size_t len = 0; len < n; len++) {
        write_file("cut", data, len);
        if (tz_get("cut", err, sizeof err))
            accepted++;
    }
    CHECK_INT(accepted, 0);
    write_file("whole", data, n);
    CHECK(zone("whole") != NULL);

    /* Counts made huge are refused, not trusted. */
    unsigned char *copy = malloc(n);
    for (int field = 20; field < 44; field += 4) {
        memcpy(copy, data, n);
        copy[field] = 0x7f;
        char name[32];
        snprintf(name, sizeof name, "count%d", field);
        write_file(name, copy, n);
        CHECK(tz_get(name, err, sizeof err) == NULL);
    }
    /* Random damage: refused or usable, never a crash or a read out of
     * bounds (the ASan build checks the latter). */
    unsigned seed = 7;
    for (int k = 0; k < 3000; k++) {
        memcpy(copy, data, n);
        int flips = 1 + k % 8;
        for (int j = 0; j < flips; j++) {
            seed = seed * 1103515245 + 12345;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245 + 12345;
            copy[at] = (unsigned char)(seed >> 16);
        }
        char name[128];
        snprintf(name, sizeof name, "damaged%d", k);
        write_file(name, copy, n);
        const struct tz *z = tz_get(name, err, sizeof err);
        if (z) {
            struct cron *c = cron_parse("30 2 * * *", z, err, sizeof err);
            for (long long t = -4000000000LL; t < 5000000000LL; t += 400000000) {
                struct tm tm;
                tz_local(z, t, &tm);
                long long next = cron_next(c, t), prev = cron_prev(c, t);
                CHECK(next == -1 || next > t);
                CHECK(prev == -1 || prev <= t);
            }
            cron_free(c);
        }
        snprintf(name, sizeof name, "%s/damaged%d", tmpdir, k);
        unlink(name);
    }
    free(copy);
    free(data);
}

/* Prints the mean time of cron_next and cron_prev for expr in zone from 2000
 * instants `after`, after + step, ...; never asserted. */
static void time_calls(const char *expr, const char *zname, long long after, long long step)
{
    struct cron *c = parse(expr, zname);
    struct timespec a, b;
    long long sum = 0;
    int count = 2000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < count; k++)
        sum += cron_next(c, after + k * step) + cron_prev(c, after + k * step);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us =
        ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / (2 * count);
    fprintf(stderr, "cron_next/prev(\"%s\" %s from %lld): %.2f us per call (%lld)\n", expr, zname,
            after, us, sum % 10);
    cron_free(c);
}

/* How long cron_next and cron_prev take, printed, never asserted. */
static void test_speed(void)
{
    const char *exprs[] = {"* * * * *",  "0 9 * * 1-5",  "30 2 * * *",  "0 0 29 2 *",
                           "0 0 30 2 *", "*/15 * * * *", "0 0 13 * fri"};
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++)
        time_calls(exprs[i], "Europe/Paris", utc(2026, 1, 1, 0, 0), 86413);
    /* The slowest places: next to changes, where the search starts earlier
     * or a whole skipped day is crossed. */
    time_calls("* * * * *", "Europe/Paris", 1792889100, 1); /* 2026-10-25 00:45 UTC, the fold */
    time_calls("* * * * *", "Australia/Lord_Howe", 1775314800, 1); /* 2026-04-04 15:00 UTC */
    time_calls("* * * * *", "Pacific/Apia", 1325239199, 0);        /* before the skipped day */
    time_calls("* * 30 12 *", "Pacific/Apia", 1325196000, 1); /* only the skipped day matches */
    time_calls("59 23 31 12 *", "Pacific/Apia", 1325196000, 1);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("TZDIR");
    RUN(test_syntax_forms);
    RUN(test_macros);
    RUN(test_errors);
    RUN(test_every);
    RUN(test_plain);
    RUN(test_dst_paris);
    RUN(test_dst_new_york);
    RUN(test_dst_lord_howe);
    RUN(test_dst_sydney_and_utc);
    RUN(test_footer_2050);
    RUN(test_offsets_vs_glibc);
    RUN(test_resolve);
    RUN(test_oracle);
    RUN(test_extremes);
    RUN(test_threads);
    RUN(test_bad_names);
    RUN(test_unknown_and_bad_files);
    setenv("TZDIR", tmpdir, 1);
    RUN(test_footer_rules);
    RUN(test_version1);
    unsetenv("TZDIR");
    RUN(test_speed);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE();
}
