-- luacheck configuration: the globals a script sees inside cliqhost.
--
--   luacheck scripts lualib        (CTest runs this as the test `luacheck`)
--
-- Handler scripts, scripts/lib/ modules and the shipped lualib/ modules run
-- in the host's sandbox (host/script/sandbox.c and libs.c): Lua 5.4's safe
-- base functions and string, table, math, utf8, coroutine; a few parts of os
-- and debug; a read-only package; and the host's json, log, http, cliq,
-- store, sleep, print and warn. Nothing else exists there, so a script
-- that uses `io` or `os.execute` is flagged here before the host refuses
-- it. All of them are read-only: a script's own globals are its business, but
-- changing a library is almost always a mistake.
--
-- The test kit (lualib/cliq/test*.lua) and the scripts' tests
-- (scripts/tests/) run under plain lua5.4, outside the host: they get Lua's
-- whole standard library.
--
-- tests/e2e/test_types.py checks this list against what the host really
-- gives a script, so it cannot drift.

-- Library fields as Lua 5.4 has them (string.dump excepted: the host
-- removes it).
local string_fields = {
  "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
  "packsize", "rep", "reverse", "sub", "unpack", "upper",
}
local table_fields = { "concat", "insert", "move", "pack", "remove", "sort", "unpack" }
-- Debian's lua5.4 keeps Lua 5.2's math functions (LUA_COMPAT_MATHLIB):
-- atan2, cosh, frexp, ldexp, log10, pow, sinh, tanh.
local math_fields = {
  "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor", "fmod",
  "frexp", "huge", "ldexp", "log", "log10", "max", "maxinteger", "min", "mininteger", "modf",
  "pi", "pow", "rad", "random", "randomseed", "sin", "sinh", "sqrt", "tan", "tanh", "tointeger",
  "type", "ult",
}
local utf8_fields = { "char", "charpattern", "codepoint", "codes", "len", "offset" }
local coroutine_fields = {
  "close", "create", "isyieldable", "resume", "running", "status", "wrap", "yield",
}

stds.cliqhost = {
  read_globals = {
    -- Lua's base library, as the sandbox keeps it.
    "_G", "_VERSION", "assert", "collectgarbage", "error", "getmetatable", "ipairs", "load",
    "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawlen", "rawset", "require",
    "select", "setmetatable", "tonumber", "tostring", "type", "warn", "xpcall",
    string = { fields = string_fields },
    table = { fields = table_fields },
    math = { fields = math_fields },
    utf8 = { fields = utf8_fields },
    coroutine = { fields = coroutine_fields },
    os = { fields = { "clock", "date", "difftime", "getenv", "time" } },
    debug = { fields = { "traceback" } },
    package = { fields = { "config", "loaded", "path", "searchpath" } },
    -- The host's bindings.
    json = { fields = { "array", "decode", "encode", "null", "object" } },
    log = { fields = { "debug", "error", "info", "warn" } },
    http = { fields = { "request" } },
    cliq = { fields = { "app_incoming", "bot_incoming", "post_bot", "post_channel" } },
    store = { fields = { "delete", "get", "incr", "list", "set", "update" } },
    "sleep",
  },
}

std = "cliqhost"
codes = true

-- Outside the host: plain lua5.4 with the whole standard library. The kit's
-- modules may still read the host's names (cliq.message reads `json` when
-- it is there), so the host's set stays.
files["lualib/cliq/test.lua"] = { std = "lua54+cliqhost" }
files["lualib/cliq/test/*.lua"] = { std = "lua54+cliqhost" }
files["scripts/tests/*.lua"] = { std = "lua54+cliqhost" }
