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

/* The fields a schedule's table may have, and the Lua type of each. */
static const struct {
    const char *name;
    int type;
} fields[] = {
    {"run", LUA_TFUNCTION},    {"cron", LUA_TSTRING},      {"every", LUA_TSTRING},
    {"timezone", LUA_TSTRING}, {"catch_up", LUA_TBOOLEAN},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

/* The field's type in the table at idx (raw). [-0, +0] */
static int field_type(lua_State *L, int idx, const char *k)
{
    lua_pushstring(L, k);
    int t = lua_rawget(L, idx);
    lua_pop(L, 1);
    return t;
}

/* The string field `k` of the table at idx, or NULL (its type was
 * checked). The string stays alive: the table holds it. [-0, +0] */
static const char *string_field(lua_State *L, int idx, const char *k)
{
    lua_pushstring(L, k);
    const char *s = lua_rawget(L, idx) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    return s;
}

/* The messages are the test kit's (lualib/cliq/test.lua, check_schedule),
 * word for word: test_kit_parity.py compares them. */
int schedspec_read(lua_State *L, int idx, const char *path, struct schedspec *out, char *err,
                   size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (out)
        memset(out, 0, sizeof *out);
    if (!lua_istable(L, idx)) {
        snprintf(err, errlen,
                 "%s: a schedule must return a table { cron = \"...\" or every = \"...\", run = "
                 "function(job) ... end } (returned %s)",
                 path, luaL_typename(L, idx));
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t i = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            while (i < NFIELDS && strcmp(lua_tostring(L, -2), fields[i].name) != 0)
                i++;
        else
            i = NFIELDS;
        if (i == NFIELDS) {
            char shown[120];
            if (lua_type(L, -2) == LUA_TSTRING)
                snprintf(shown, sizeof shown, "\"%.100s\"", lua_tostring(L, -2));
            else if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2))
                snprintf(shown, sizeof shown, "%lld", (long long)lua_tointeger(L, -2));
            else
                snprintf(shown, sizeof shown, "%s", luaL_typename(L, -2));
            snprintf(err, errlen,
                     "%s: unknown field %s (a schedule has cron, every, timezone, catch_up and "
                     "run)",
                     path, shown);
            lua_pop(L, 2);
            return -1;
        }
        if (lua_type(L, -1) != fields[i].type) {
            snprintf(err, errlen, "%s: field '%s' must be a %s (is a %s)", path, fields[i].name,
                     lua_typename(L, fields[i].type), luaL_typename(L, -1));
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    if (field_type(L, idx, "run") == LUA_TNIL) {
        snprintf(err, errlen, "%s: field 'run' must be a function (is a nil)", path);
        return -1;
    }
    const char *cron = string_field(L, idx, "cron");
    const char *every = string_field(L, idx, "every");
    const char *zone = string_field(L, idx, "timezone");
    int catch_up = field_type(L, idx, "catch_up") == LUA_TBOOLEAN;
    if (catch_up) {
        lua_pushstring(L, "catch_up");
        lua_rawget(L, idx);
        catch_up = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (cron && every) {
        snprintf(err, errlen, "%s: fields 'cron' and 'every' both set; give one of them", path);
        return -1;
    }
    if (!cron && !every) {
        snprintf(err, errlen,
                 "%s: field 'cron' (\"0 9 * * 1-5\") or 'every' (\"30s\", \"5m\", \"2h\") is "
                 "required",
                 path);
        return -1;
    }
    if (every && zone) {
        snprintf(err, errlen,
                 "%s: field 'timezone' goes only with 'cron' (every counts from any time)", path);
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
