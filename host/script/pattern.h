/*
 * pattern: Lua 5.4's pattern functions (string.find, string.match,
 * string.gmatch, string.gsub) with every matching step counted against the
 * CPU limit.
 *
 * Lua's own matcher backtracks in C, where the instruction hook never runs:
 * a crafted pattern (`("a?"):rep(26) .. ("a"):rep(26)`, `.-b` on a long
 * subject) keeps a worker busy for seconds or years. This one follows the
 * reference manual's semantics (§6.4.1) exactly, results and error messages
 * included, but counts its steps (each attempt, each repetition, each byte
 * a balance or back-reference scans) and reads the clock every few
 * thousand (vm_check_cpu), so such a pattern is stopped by max_cpu_ms like
 * any Lua loop. Nesting is capped as in Lua ("pattern too complex"), so C
 * recursion stays shallow.
 */
#ifndef CLIQHOST_PATTERN_H
#define CLIQHOST_PATTERN_H

#include <lua.h>

/* Sets find, match, gmatch and gsub in the table at index `strlib` (the
 * string library) to the counted versions. The state must be a luavm's
 * (see vm.h). [-0, +0] */
void pattern_open(lua_State *L, int strlib);

#endif
