/*
 * schedspec: what a schedule script (scripts/schedules/<name>.lua) says of
 * when it runs. Its table holds `run` (a function) and exactly one of
 * `cron` (a 5-field expression, in `timezone`, default "UTC") or `every`
 * ("30s", "5m", "2h"), and optionally `catch_up` (a boolean). The loader
 * checks it when the script loads, so a schedule that would never run (a
 * bad expression, one no date matches, an unknown zone, a stray field) is
 * refused like a script that fails to compile, and the version before it
 * keeps running.
 */
#ifndef CLIQHOST_SCHEDSPEC_H
#define CLIQHOST_SCHEDSPEC_H

#include <lua.h>
#include <stddef.h>

struct cron;

struct schedspec {
    struct cron *cron; /* owned: cron_free */
    int catch_up;
};

/* 1 when `rel` ("schedules/standup.lua") is a schedule's script. */
int schedspec_is_schedule(const char *rel);

/* Reads the schedule table at `idx` (raw reads only: no metamethod runs).
 * `path` names the file in messages. Returns 0 with *out filled (free it
 * with schedspec_clear; out may be NULL to only check), or -1 with
 * "path: why" in err. [-0, +0] */
int schedspec_read(lua_State *L, int idx, const char *path, struct schedspec *out, char *err,
                   size_t errlen);
void schedspec_clear(struct schedspec *s);

#endif
