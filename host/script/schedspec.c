/* schedspec: when a schedule script runs (see schedspec.h). */
#include "script/schedspec.h"

#include "core/cron.h"
#include "core/tz.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

int schedspec_is_schedule(const char *rel)
{
    return strncmp(rel, "schedules/", 10) == 0;
}

/* The string field `k` of the table at idx, or NULL; -1 in *bad when it is
 * there and not a string. [-0, +0] */
static const char *opt_string(lua_State *L, int idx, const char *k, int *bad)
{
    lua_pushstring(L, k);
    int t = lua_rawget(L, idx);
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (t != LUA_TNIL && t != LUA_TSTRING)
        *bad = 1;
    lua_pop(L, 1); /* the string stays alive: the table holds it */
    return s;
}

int schedspec_read(lua_State *L, int idx, const char *path, struct schedspec *out, char *err,
                   size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (out)
        memset(out, 0, sizeof *out);
    if (!lua_istable(L, idx)) {
        snprintf(err, errlen,
                 "%s: must return a table { cron = \"...\" or every = \"...\", run = function(job) "
                 "... end } (returned %s)",
                 path, luaL_typename(L, idx));
        return -1;
    }
    static const char *const known[] = {"run", "cron", "every", "timezone", "catch_up", NULL};
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (const char *const *k = known; *k && !ok; k++)
                ok = strcmp(lua_tostring(L, -1), *k) == 0;
        if (!ok) {
            snprintf(err, errlen,
                     "%s: unknown field '%s' in a schedule (it has run, cron or every, timezone, "
                     "catch_up)",
                     path, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
            return -1;
        }
    }
    lua_pushstring(L, "run");
    int rt = lua_rawget(L, idx);
    lua_pop(L, 1);
    if (rt != LUA_TFUNCTION) {
        snprintf(err, errlen, "%s: 'run' must be a function (is a %s)", path, lua_typename(L, rt));
        return -1;
    }
    int bad = 0;
    const char *cron = opt_string(L, idx, "cron", &bad);
    const char *every = opt_string(L, idx, "every", &bad);
    const char *zone = opt_string(L, idx, "timezone", &bad);
    if (bad) {
        snprintf(err, errlen, "%s: cron, every and timezone must be strings", path);
        return -1;
    }
    lua_pushstring(L, "catch_up");
    int ct = lua_rawget(L, idx);
    int catch_up = ct == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ct != LUA_TNIL && ct != LUA_TBOOLEAN) {
        snprintf(err, errlen, "%s: catch_up must be true or false (is a %s)", path,
                 lua_typename(L, ct));
        return -1;
    }
    if (!cron == !every) {
        snprintf(err, errlen,
                 "%s: a schedule needs exactly one of cron = \"0 9 * * 1-5\" or every = \"30s\"",
                 path);
        return -1;
    }
    if (every && zone) {
        snprintf(err, errlen,
                 "%s: timezone goes with cron, not with every (an interval is the "
                 "same in every zone)",
                 path);
        return -1;
    }
    char why[400];
    struct cron *c;
    if (cron) {
        const struct tz *z = tz_get(zone ? zone : "UTC", why, sizeof why);
        c = z ? cron_parse(cron, z, why, sizeof why) : NULL;
    } else {
        c = cron_every(every, why, sizeof why);
    }
    if (!c) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    /* An expression that runs at all runs within any 8 years (the 29th of
     * February): one that does not would sit in the list as "next run
     * never". */
    if (cron && cron_next(c, (long long)time(NULL)) < 0) {
        snprintf(err, errlen,
                 "%s: cron \"%.64s\" never runs (no date matches its day, month and "
                 "day-of-week fields)",
                 path, cron);
        cron_free(c);
        return -1;
    }
    if (out) {
        out->cron = c;
        out->catch_up = catch_up;
    } else {
        cron_free(c);
    }
    return 0;
}

void schedspec_clear(struct schedspec *s)
{
    cron_free(s->cron);
    s->cron = NULL;
}
