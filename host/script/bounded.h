/*
 * bounded: library functions a script could make run long in C, where the
 * instruction hook never runs, held to the CPU limit (issue 12, finding 4).
 *
 * - string.find, match, gmatch and gsub: pattern.c's matcher, which counts
 *   its steps.
 * - table.concat and table.unpack: the same functions, counting the items
 *   they fetch (each may run a C __index such as rawlen).
 * - table.sort: Lua's own, given a comparison that counts (and, when none
 *   is given, compares as Lua does), so a long sort reads the clock.
 * - utf8.len, utf8.offset, utf8.codes, utf8.codepoint, string.byte,
 *   tonumber and rawequal: charged with the length of their string
 *   arguments before they run, so a loop of them stops at the first call
 *   past the limit.
 * - coroutine.resume and coroutine.close: track which coroutine runs
 *   (vm_resume, vm_close), so a limit that trips inside a coroutine the
 *   script made (or in its pending __close) stops that coroutine: the
 *   watchdog arms the limit hook on the thread the vm says runs.
 * - xpcall: the message handler is not run once the code is being stopped
 *   (the limit hook's error reaches it while Lua runs no hooks).
 *
 * Functions that allocate as they go (string.rep, upper, format, ...) are
 * counted by the state's allocator (vm.c). Semantics are Lua 5.4's.
 */
#ifndef CLIQHOST_BOUNDED_H
#define CLIQHOST_BOUNDED_H

#include <lua.h>

/* Puts the bounded versions into the real libraries reachable from the
 * table at `G` (_G: string, table, utf8, coroutine, xpcall, tonumber,
 * rawequal).
 * [-0, +0] */
void bounded_open(lua_State *L, int G);

#endif
