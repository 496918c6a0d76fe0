/*
 * tz: time zones from the system's tz database (TZif files, RFC 8536).
 *
 * A zone is read once and kept for the life of the process, so callers hold
 * plain pointers and never free them. Instants are Unix seconds; "wall" times
 * are local clock readings counted as seconds since 1970-01-01 00:00 as if
 * the zone were UTC (so a wall time minus the UTC offset is the instant).
 * Instants beyond ±2^52 s (142 million years) are read as that bound.
 */
#ifndef CLIQHOST_TZ_H
#define CLIQHOST_TZ_H

#include <stddef.h>
#include <time.h>

struct tz;

/* The longest zone name tz_get accepts. */
#define TZ_NAME_MAX 255

/* The largest TZif file read: real ones are under 4 KiB. */
#define TZ_FILE_MAX (256 * 1024)

/* The zone `name` ("Europe/Paris", "America/New_York", "UTC"; "UTC" and
 * "Etc/UTC" work even with no tz database). Reads $TZDIR/<name> or
 * /usr/share/zoneinfo/<name>, parsed once and cached for the life of the
 * process (thread-safe; the same pointer for the same name; never freed by the
 * caller). Refuses names that could leave the folder (absolute, "..", empty
 * parts, characters outside [A-Za-z0-9_+-/]), files that are not TZif or are
 * damaged, and says why in err ("unknown time zone \"Europe/Pariss\" (no
 * /usr/share/zoneinfo/Europe/Pariss)"). Returns NULL with err set. */
const struct tz *tz_get(const char *name, char *err, size_t errlen);

/* The name the zone was asked for by. Borrowed for the life of the process. */
const char *tz_name(const struct tz *z);

/* UTC offset in seconds (east positive) in effect at instant t. */
long tz_offset(const struct tz *z, long long t);

/* Local wall-clock broken-down time of instant t (like localtime_r, but for
 * z; thread-safe). Sets tm_isdst, tm_gmtoff and tm_zone (the abbreviation,
 * "CEST" or "+0530", borrowed for the life of the process). */
void tz_local(const struct tz *z, long long t, struct tm *out);

/* The first instant after t at which the zone's offset or daylight-saving flag
 * may change (a transition of the file or of its POSIX rule), or LLONG_MAX
 * when there is none. */
long long tz_next_transition(const struct tz *z, long long t);

/* The instants whose wall-clock reading is `wall` (seconds as if UTC): 1
 * normally, 2 when the clock is turned back over it (earliest first), 0 when
 * it is skipped (spring forward); then *gap_end is the instant the skip
 * happens, the first one after it. Returns the count, written to out. */
int tz_resolve(const struct tz *z, long long wall, long long out[2], long long *gap_end);

/* Civil date helpers shared with cron: days since 1970-01-01 of a
 * proleptic Gregorian date (month 1-12), and back. */
long long tz_days_from_civil(long long y, int m, int d);
void tz_civil_from_days(long long days, long long *y, int *m, int *d);
/* The weekday (0 Sunday - 6 Saturday) of a day since 1970-01-01. */
int tz_weekday(long long days);
/* a / b rounded towards minus infinity (b > 0). */
long long tz_floor_div(long long a, long long b);

#endif
