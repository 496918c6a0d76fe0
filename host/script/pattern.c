/* pattern: Lua 5.4's pattern functions, counted against the CPU limit (see
 * pattern.h). Written from the reference manual (§6.4.1); where the manual
 * is silent (error texts, the nesting cap, which positions are tried) it
 * does what Lua 5.4's string library does, checked case by case against
 * the real interpreter by tests/e2e/test_sandbox.py (PatternConformance). */
#include "script/pattern.h"

#include "script/vm.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define PAT_ESC '%'
/* Captures in one pattern (Lua's LUA_MAXCAPTURES). */
#define PAT_MAX_CAPTURES 32
/* Nested attempts (Lua's MAXCCALLS): deeper is "pattern too complex". */
#define PAT_MAX_DEPTH 200
/* Steps between two readings of the clock: a few microseconds of work. */
#define PAT_STEPS_PER_CHECK 4096
/* Capture lengths that are not lengths. */
#define CAP_OPEN     (-1) /* started, not closed yet */
#define CAP_POSITION (-2) /* "()": the position is the value */

/* One match in progress: the subject, the pattern's end and the captures.
 * Pointers are into strings the calling function keeps on the stack. */
struct pat {
    lua_State *L;
    const char *subj, *subj_end;
    const char *pat_end;
    int depth_left; /* nested attempts still allowed */
    int ncap;       /* captures started (closed or not) */
    unsigned steps; /* since the clock was last read */
    struct {
        const char *at;
        ptrdiff_t len; /* or CAP_OPEN, CAP_POSITION */
    } cap[PAT_MAX_CAPTURES];
};

static int uc(char c)
{
    return (unsigned char)c;
}

/* Counts n steps of matching work; reads the clock (and raises when the
 * slice has used max_cpu_ms) every PAT_STEPS_PER_CHECK. */
static void pat_step(struct pat *m, size_t n)
{
    if (n >= PAT_STEPS_PER_CHECK - m->steps) {
        m->steps = 0;
        vm_check_cpu(m->L);
    } else {
        m->steps += (unsigned)n;
    }
}

static void pat_init(struct pat *m, lua_State *L, const char *s, size_t ls, const char *p,
                     size_t lp)
{
    m->L = L;
    m->subj = s;
    m->subj_end = s + ls;
    m->pat_end = p + lp;
    m->depth_left = PAT_MAX_DEPTH;
    m->ncap = 0;
    m->steps = 0;
}

/* Before each new attempt at a position. The depth is set again too, in
 * case an error left an earlier attempt of a gmatch iterator unwound. */
static void pat_restart(struct pat *m)
{
    m->ncap = 0;
    m->depth_left = PAT_MAX_DEPTH;
}

/* ---- single-character classes ------------------------------------------ */

/* Whether c belongs to the class named by letter `cl` after a '%' (%a, %D,
 * ...); any other character stands for itself. */
static int class_has(int c, int cl)
{
    int in;
    switch (tolower(cl)) {
    case 'a':
        in = isalpha(c);
        break;
    case 'c':
        in = iscntrl(c);
        break;
    case 'd':
        in = isdigit(c);
        break;
    case 'g':
        in = isgraph(c);
        break;
    case 'l':
        in = islower(c);
        break;
    case 'p':
        in = ispunct(c);
        break;
    case 's':
        in = isspace(c);
        break;
    case 'u':
        in = isupper(c);
        break;
    case 'w':
        in = isalnum(c);
        break;
    case 'x':
        in = isxdigit(c);
        break;
    case 'z': /* the NUL byte; undocumented since 5.2, still accepted */
        in = c == 0;
        break;
    default:
        return cl == c;
    }
    /* An upper-case letter is the complement. */
    return islower(cl) ? in != 0 : in == 0;
}

/* Whether c is in the set that opens with '[' at p and closes with the ']'
 * at `close`: single characters, ranges x-y and %-classes, complemented by
 * a leading '^'. */
static int set_has(int c, const char *p, const char *close)
{
    int in = 1;
    p++;
    if (*p == '^') {
        in = 0;
        p++;
    }
    for (; p < close; p++) {
        if (*p == PAT_ESC) {
            p++;
            if (class_has(c, uc(*p)))
                return in;
        } else if (p[1] == '-' && p + 2 < close) {
            if (uc(p[0]) <= c && c <= uc(p[2]))
                return in;
            p += 2;
        } else if (uc(*p) == c) {
            return in;
        }
    }
    return !in;
}

/* Where the single-character class starting at p ends: after one
 * character, an escape or a whole set. Raises for a malformed one. */
static const char *item_end(struct pat *m, const char *p)
{
    char c = *p++;
    if (c == PAT_ESC) {
        if (p >= m->pat_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        /* The first member may be ']' itself: look for the end after it. */
        do {
            if (p >= m->pat_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == PAT_ESC && p < m->pat_end)
                p++; /* an escaped character, %] included */
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Whether the subject character at s is in the class from p to ep. */
static int one_matches(const struct pat *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->subj_end)
        return 0;
    int c = uc(*s);
    switch (*p) {
    case '.':
        return 1;
    case PAT_ESC:
        return class_has(c, uc(p[1]));
    case '[':
        return set_has(c, p, ep - 1);
    default:
        return uc(*p) == c;
    }
}

/* ---- the matcher ------------------------------------------------------- */

static const char *pat_match(struct pat *m, const char *s, const char *p);

/* Item repeated as often as it matches, then the rest of the pattern,
 * giving back one repetition at a time until the rest matches (x*). */
static const char *repeat_most(struct pat *m, const char *s, const char *p, const char *ep)
{
    size_t n = 0;
    while (one_matches(m, s + n, p, ep)) {
        n++;
        pat_step(m, 1);
    }
    for (;;) {
        const char *r = pat_match(m, s + n, ep + 1);
        if (r)
            return r;
        if (n == 0)
            return NULL;
        n--;
    }
}

/* The rest of the pattern first, one more repetition of the item each
 * time it fails (x-). */
static const char *repeat_least(struct pat *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = pat_match(m, s, ep + 1);
        if (r)
            return r;
        if (!one_matches(m, s, p, ep))
            return NULL;
        s++;
    }
}

/* '(' or "()": opens capture number ncap and matches the rest. */
static const char *capture_open(struct pat *m, const char *s, const char *p, ptrdiff_t kind)
{
    if (m->ncap >= PAT_MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->ncap].at = s;
    m->cap[m->ncap].len = kind;
    m->ncap++;
    const char *r = pat_match(m, s, p);
    if (!r)
        m->ncap--;
    return r;
}

/* ')': closes the innermost open capture and matches the rest. */
static const char *capture_close(struct pat *m, const char *s, const char *p)
{
    int i = m->ncap - 1;
    while (i >= 0 && m->cap[i].len != CAP_OPEN)
        i--;
    if (i < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].at;
    const char *r = pat_match(m, s, p);
    if (!r)
        m->cap[i].len = CAP_OPEN;
    return r;
}

/* %bxy at s, p at x: the end of the balanced run, or NULL. */
static const char *balanced(struct pat *m, const char *s, const char *p)
{
    if (p >= m->pat_end - 1)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->subj_end || *s != p[0])
        return NULL;
    char open = p[0], close = p[1];
    size_t depth = 1;
    for (s++; s < m->subj_end; s++) {
        pat_step(m, 1);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

/* %1-%9 at s: the text of capture `digit` again, or NULL. */
static const char *back_reference(struct pat *m, const char *s, int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->ncap || m->cap[i].len == CAP_OPEN)
        luaL_error(m->L, "invalid capture index %%%d", i + 1);
    /* A position capture's length, read as a size, is never available. */
    size_t len = (size_t)m->cap[i].len;
    if ((size_t)(m->subj_end - s) < len)
        return NULL;
    pat_step(m, len / 64);
    return memcmp(m->cap[i].at, s, len) == 0 ? s + len : NULL;
}

/* Matches the pattern from p against the subject from s. Returns where
 * the match ends, or NULL. Items that end the pattern's work here loop
 * instead of recursing; only alternatives that may need to be undone
 * (captures, repetitions, '?') nest, at most PAT_MAX_DEPTH deep. */
static const char *pat_match(struct pat *m, const char *s, const char *p)
{
    if (m->depth_left-- == 0)
        luaL_error(m->L, "pattern too complex");
    pat_step(m, 1);
    while (p != m->pat_end) {
        switch (*p) {
        case '(':
            if (p[1] == ')')
                s = capture_open(m, s, p + 2, CAP_POSITION);
            else
                s = capture_open(m, s, p + 1, CAP_OPEN);
            goto out;
        case ')':
            s = capture_close(m, s, p + 1);
            goto out;
        case '$':
            if (p + 1 == m->pat_end) { /* an anchor only as the last character */
                if (s != m->subj_end)
                    s = NULL;
                goto out;
            }
            break;
        case PAT_ESC:
            if (p[1] == 'b') {
                s = balanced(m, s, p + 2);
                if (!s)
                    goto out;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (*p != '[')
                    luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = item_end(m, p);
                /* Before the subject and at its end is the NUL character. */
                int before = s == m->subj ? 0 : uc(s[-1]);
                int here = s < m->subj_end ? uc(*s) : 0;
                if (set_has(before, p, ep - 1) || !set_has(here, p, ep - 1)) {
                    s = NULL;
                    goto out;
                }
                p = ep;
                continue;
            }
            if (isdigit(uc(p[1]))) {
                s = back_reference(m, s, uc(p[1]));
                if (!s)
                    goto out;
                p += 2;
                continue;
            }
            break;
        default:
            break;
        }
        /* A single-character class, maybe followed by a quantifier. */
        const char *ep = item_end(m, p);
        char q = ep < m->pat_end ? *ep : '\0';
        if (!one_matches(m, s, p, ep)) {
            if (q == '*' || q == '?' || q == '-') {
                p = ep + 1; /* zero repetitions will do */
                continue;
            }
            s = NULL;
            goto out;
        }
        switch (q) {
        case '?': {
            const char *r = pat_match(m, s + 1, ep + 1);
            if (r) {
                s = r;
                goto out;
            }
            p = ep + 1;
            continue;
        }
        case '+':
            s = repeat_most(m, s + 1, p, ep);
            goto out;
        case '*':
            s = repeat_most(m, s, p, ep);
            goto out;
        case '-':
            s = repeat_least(m, s, p, ep);
            goto out;
        default:
            s++;
            p = ep;
            continue;
        }
    }
out:
    m->depth_left++;
    return s;
}

/* ---- captures to values ------------------------------------------------ */

/* Capture i of a match from s to e: its length, with *at its text, or
 * CAP_POSITION with the position pushed. With no captures, capture 0 is
 * the whole match. [-0, +(0|1)] */
static ptrdiff_t capture_get(struct pat *m, int i, const char *s, const char *e, const char **at)
{
    if (i >= m->ncap) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        *at = s;
        return e - s;
    }
    ptrdiff_t len = m->cap[i].len;
    *at = m->cap[i].at;
    if (len == CAP_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->cap[i].at - m->subj) + 1);
    return len;
}

/* [-0, +1] */
static void capture_push(struct pat *m, int i, const char *s, const char *e)
{
    const char *at;
    ptrdiff_t len = capture_get(m, i, s, e, &at);
    if (len != CAP_POSITION)
        lua_pushlstring(m->L, at, (size_t)len);
}

/* Pushes every capture, or the whole match (s to e) when there are none
 * and s is given. Returns how many. [-0, +n] */
static int captures_push(struct pat *m, const char *s, const char *e)
{
    int n = m->ncap == 0 && s ? 1 : m->ncap;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        capture_push(m, i, s, e);
    return n;
}

/* ---- the library functions --------------------------------------------- */

/* A start position as string.find takes it: negative counts from the end;
 * 0 and anything before the start is 1. */
static size_t start_at(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

/* Whether p has none of the characters that make a pattern more than its
 * text. */
static int is_plain(const char *p, size_t lp)
{
    static const char specials[] = "^$*+?.([%-";
    for (size_t i = 0; i < lp; i++)
        if (memchr(specials, p[i], sizeof specials - 1))
            return 0;
    return 1;
}

/* string.find and string.match. */
static int pattern_search(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || (vm_charge(L, lp), is_plain(p, lp)))) {
        /* memmem is linear in both lengths; the bytes it may scan are
         * charged before it starts. */
        vm_charge(L, ls - init + lp);
        const char *at = memmem(s + init, ls - init, p, lp);
        if (!at) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer)(at - s) + 1);
        lua_pushinteger(L, (lua_Integer)(at - s) + (lua_Integer)lp);
        return 2;
    }
    struct pat m;
    const char *from = s + init;
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    pat_init(&m, L, s, ls, p, lp);
    for (;;) {
        pat_restart(&m);
        const char *e = pat_match(&m, from, p);
        if (e) {
            if (!find)
                return captures_push(&m, from, e);
            lua_pushinteger(L, (lua_Integer)(from - s) + 1);
            lua_pushinteger(L, (lua_Integer)(e - s));
            return captures_push(&m, NULL, NULL) + 2;
        }
        if (anchored || from >= m.subj_end)
            break;
        from++;
    }
    luaL_pushfail(L);
    return 1;
}

static int pattern_find(lua_State *L)
{
    return pattern_search(L, 1);
}

static int pattern_match_fn(lua_State *L)
{
    return pattern_search(L, 0);
}

/* A gmatch iterator's state (its third upvalue; the subject and the
 * pattern are the first two, which keep the pointers valid). */
struct gmatch_state {
    const char *next;     /* where the next attempt starts */
    const char *last_end; /* where the last match ended: not again there */
    const char *p;        /* the pattern */
    struct pat m;
};

static int gmatch_next(lua_State *L)
{
    struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L;
    for (const char *at = g->next; at <= g->m.subj_end; at++) {
        pat_restart(&g->m);
        const char *e = pat_match(&g->m, at, g->p);
        if (e && e != g->last_end) {
            g->next = g->last_end = e;
            return captures_push(&g->m, at, e);
        }
    }
    g->next = g->m.subj_end + 1; /* done: later calls return nothing at once */
    return 0;
}

/* string.gmatch(s, pattern [, init]). A '^' is an ordinary character
 * here, as in Lua 5.4 (an anchor would stop the iteration). */
static int pattern_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2);
    struct gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    if (init > ls)
        init = ls + 1; /* nothing to find */
    pat_init(&g->m, L, s, ls, p, lp);
    g->next = s + init;
    g->last_end = NULL;
    g->p = p;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* Appends gsub's string replacement (argument 3) for the match s..e:
 * %0 the match, %1-%9 the captures, %% a percent sign. */
static void replace_text(struct pat *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t l;
    const char *r = lua_tolstring(L, 3, &l);
    const char *esc;
    while ((esc = memchr(r, PAT_ESC, l)) != NULL) {
        pat_step(m, 1);
        luaL_addlstring(b, r, (size_t)(esc - r));
        char c = esc + 1 < r + l ? esc[1] : '\0';
        if (c == PAT_ESC) {
            luaL_addchar(b, PAT_ESC);
        } else if (c == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit(uc(c))) {
            const char *at;
            ptrdiff_t len = capture_get(m, c - '1', s, e, &at);
            if (len == CAP_POSITION)
                luaL_addvalue(b);
            else
                luaL_addlstring(b, at, (size_t)len);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", PAT_ESC);
        }
        l -= (size_t)(esc + 2 - r);
        r = esc + 2;
    }
    luaL_addlstring(b, r, l);
}

/* Appends the replacement for the match s..e as the type of argument 3
 * says. Returns whether the subject changed (a function or table that
 * gives nil or false keeps the match's own text). */
static int replace(struct pat *m, luaL_Buffer *b, const char *s, const char *e, int how)
{
    lua_State *L = m->L;
    if (how == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = captures_push(m, s, e);
        lua_call(L, n, 1);
    } else if (how == LUA_TTABLE) {
        capture_push(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        replace_text(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

/* string.gsub(s, pattern, repl [, n]). */
static int pattern_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int how = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(
        L, how == LUA_TNUMBER || how == LUA_TSTRING || how == LUA_TFUNCTION || how == LUA_TTABLE, 3,
        "string/function/table");
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    struct pat m;
    pat_init(&m, L, src, ls, p, lp);
    const char *last_end = NULL;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max) {
        pat_restart(&m);
        const char *e = pat_match(&m, src, p);
        if (e && e != last_end) {
            n++;
            changed |= replace(&m, &b, src, e, how);
            src = last_end = e;
        } else if (src < m.subj_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    if (changed) {
        luaL_addlstring(&b, src, (size_t)(m.subj_end - src));
        luaL_pushresult(&b);
    } else {
        lua_pushvalue(L, 1);
    }
    lua_pushinteger(L, n);
    return 2;
}

void pattern_open(lua_State *L, int strlib)
{
    static const luaL_Reg fns[] = {
        {"find", pattern_find},
        {"match", pattern_match_fn},
        {"gmatch", pattern_gmatch},
        {"gsub", pattern_gsub},
        {NULL, NULL},
    };
    strlib = lua_absindex(L, strlib);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, strlib, f->name);
    }
}
