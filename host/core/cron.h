/*
 * cron: when a schedule runs. A schedule is a 5-field cron expression read in
 * a time zone, or a fixed interval ("every 30s").
 *
 * Daylight saving follows Vixie cron / cronie, made precise: a matching local
 * minute that the clock skips runs once, at the instant the skip happens,
 * unless the hour field starts with `*` (the job runs every hour anyway, so it
 * is just skipped); a matching minute that the clock passes twice runs at both
 * instants when the hour field starts with `*`, else only at the first.
 */
#ifndef CLIQHOST_CRON_H
#define CLIQHOST_CRON_H

#include "core/tz.h"

#include <stddef.h>

struct cron;

/* The most seconds `every` accepts: 31 days. */
#define CRON_EVERY_MAX (31LL * 86400)

/* Parses a standard 5-field cron expression: minute hour day-of-month month
 * day-of-week; `*`, lists `1,5,9`, ranges `1-5`, steps `* /15` (without the
 * space), `0-30/10`, `5/15` (from 5 to the max), month names jan-dec and day
 * names sun-sat (any case, also inside ranges and lists: mon-fri), day-of-week
 * 0-7 (0 and 7 are Sunday); the macros @yearly @annually @monthly @weekly
 * @daily @midnight @hourly. When day-of-month and day-of-week are both
 * restricted (neither starts with `*`), a day matches if either matches (Vixie
 * cron's rule); else both must. Errors say what and where: "cron \"0 25 * *
 * *\": hour 25 is out of range 0-23". A NULL zone means UTC. Returns NULL with
 * err set; caller frees with cron_free. The zone is borrowed (tz_get's live
 * for the life of the process). */
struct cron *cron_parse(const char *expr, const struct tz *zone, char *err, size_t errlen);

/* A fixed interval: one or more <number><unit> parts with units d, h, m, s,
 * each at most once and largest first ("30s", "5m", "2h", "90s", "1h30m",
 * "1d"); from 1 s to 31 days. Its runs are the multiples of the interval since
 * the Unix epoch (so every host computes the same ticks). NULL with err on bad
 * input ("every \"5x\": expected a number of seconds, minutes or hours:
 * \"30s\", \"5m\", \"2h\""); caller frees with cron_free. */
struct cron *cron_every(const char *spec, char *err, size_t errlen);

/* Frees c; NULL is fine. */
void cron_free(struct cron *c);

/* The first run strictly after instant `after` (Unix seconds): -1 when there
 * is none within 9 years (e.g. "0 0 30 2 *": it never runs). Takes microseconds: it skips
 * whole months, days and hours that cannot match. */
long long cron_next(const struct cron *c, long long after);

/* The last run at or before instant `at`; -1 when none within 9 years. */
long long cron_prev(const struct cron *c, long long at);

/* A canonical description for /status and logs: the expression's fields
 * single-spaced and the zone ("0 9 * * 1-5 Europe/Paris", "@daily UTC") or the
 * interval in its canonical units ("every 30s", "every 1m30s" for 90s).
 * Borrowed for the life of c. */
const char *cron_describe(const struct cron *c);

#endif
