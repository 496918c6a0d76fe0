-- Lua 5.4's pattern functions on a table of cases, one line per call with
-- its results or its error. tests/e2e/test_sandbox.py runs this file both
-- under the stock lua5.4 interpreter and inside the host (whose
-- string.find/match/gmatch/gsub are host/script/pattern.c's) and compares
-- the lines: the host's must be the same, error messages included.
--
-- run(part, parts) returns the lines of one part of the cases (the host's
-- reply has a size limit).

local function show(v)
  if type(v) == "string" then
    -- %q, with bytes above 127 as \ddd too (the host's reply is UTF-8);
    -- by hand, so the harness does not lean on the functions it tests.
    local q = string.format("%q", v)
    local out = {}
    for i = 1, #q do
      local b = q:byte(i)
      out[i] = b > 127 and "\\" .. b or string.char(b)
    end
    return table.concat(out)
  elseif type(v) == "table" or type(v) == "function" then
    return type(v) -- not its address
  end
  return type(v) .. ":" .. tostring(v)
end

local function pack(...)
  return { n = select("#", ...), ... }
end

local function outcome(f, ...)
  local r = pack(pcall(f, ...))
  local out = {}
  for i = 2, r.n do
    out[#out + 1] = show(r[i])
  end
  return (r[1] and "ok " or "ERR ") .. table.concat(out, " ")
end

local function gmatch_all(s, p, init)
  local out = {}
  local n = 0
  for a, b, c in string.gmatch(s, p, init) do
    n = n + 1
    out[#out + 1] = show(a) .. "," .. show(b) .. "," .. show(c)
    if n > 50 then
      break
    end
  end
  return table.concat(out, ";")
end

local subjects = {
  "", "a", "aaa", "hello world", "  trim me  ", "key = value", "(a(b)c)d)",
  "THE (quick) fox", "f(a,b)[x]{y}", "x=1, y=22, z=333", "\0a\0b", "a.b-c+d*e?f",
  "αβγ utf8 ñ", "THE_END", "%d%%", "[]]^-", "aXbXcX", "123abc456", "\t\n\r ",
  "THEN the then", "aaab", "abab", "a,b,,c", "mississippi", "$x$", "^x^",
}

local patterns = {
  "", "a", "^a", "a$", "^$", ".", "..", "a*", "a+", "a-", "a?", "^a*$", ".-",
  ".-b", "(.-)b", "%a+", "%A+", "%d+", "%D", "%l+", "%u+", "%s+", "%S+", "%w+",
  "%W", "%x+", "%p+", "%c", "%g+", "%G", "%z", "[abc]", "[^abc]+", "[a-z]+",
  "[%a_][%w_]*", "[%]]", "[]]", "[^]]", "[a-]", "[-a]", "[%-]", "[a%-z]+",
  "[^%s]+", "()a()", "(a)(b)?", "(a*(.)%w(%s*))", "(h)(e)(l)(l)(o)", "%((.-)%)",
  "%b()", "%b[]", "%bxy", "%f[%w]%w+", "%f[%W]", "%f[%a]", "%f[^%z]",
  "(%w+)=(%w+)", "(%w+) = (%w+)", "^%s*(.-)%s*$", "(a)%1", "(.)%1", "(%a+).-%1",
  "()", "()()", "(()a)", "$", "$x", "x$", "^", "^^", "%$", "%^", "a%", "[a",
  "[^", "[%", "%b", "%ba", "%f", "%fa", "(", ")", "a)", "(a", "%1", "(a)%2",
  "(()%1)", "%0", "%g", "[%d-z]", "[z-a]", "a-b", "a**", "a+?", "%%", "%.",
  "[.]", "[%.]", "(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)", "x*$", "%f[%l]%l", "[%w%.]+",
  "[]", "[^]", "[!-/]+", "\0", "%z+", "[\0]", "[%z]", "(%d)(%d?)",
}

-- Deterministic pseudo-random patterns and subjects (a fixed LCG), for
-- combinations nobody thought of.
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end
local atoms = {
  "a", "b", ".", "%a", "%d", "[ab]", "[^a]", "(", ")", "()", "%1", "%b()", "%f[a]",
  "*", "+", "-", "?", "^", "$", "%", "[", "]", "x", "%s",
}
for _ = 1, 300 do
  local p = {}
  for _ = 1, rnd(6) do
    p[#p + 1] = atoms[rnd(#atoms)]
  end
  patterns[#patterns + 1] = table.concat(p)
end
for _ = 1, 10 do
  local s = {}
  for _ = 1, rnd(10) do
    s[#s + 1] = ({ "a", "b", "(", ")", "1", " ", "x" })[rnd(7)]
  end
  subjects[#subjects + 1] = table.concat(s)
end

local lines = {}
local function case(label, f, ...)
  lines[#lines + 1] = label .. " -> " .. outcome(f, ...)
end

for pi, p in ipairs(patterns) do
  for si, s in ipairs(subjects) do
    local tag = pi .. "/" .. si .. " "
    case(tag .. "find", string.find, s, p)
    case(tag .. "match", string.match, s, p)
    case(tag .. "gsub", string.gsub, s, p, "<%0>")
    if si % 3 == 0 then
      case(tag .. "find3", string.find, s, p, 3)
      case(tag .. "find-2", string.find, s, p, -2)
      case(tag .. "match2", string.match, s, p, 2)
      case(tag .. "gmatch", gmatch_all, s, p)
      case(tag .. "gmatch2", gmatch_all, s, p, 2)
      case(tag .. "gsub1", string.gsub, s, p, "[%1]", 1)
      case(tag .. "gsubf", string.gsub, s, p, function(a, b) return b and a .. b end)
      case(tag .. "gsubt", string.gsub, s, p, { a = "A", [1] = "one", b = false })
    end
  end
end

-- Options and corner cases by hand.
local S = "hello world from Lua"
local hand = {
  { string.find, S, "o w", 1, true }, { string.find, S, "o.w", 1, true },
  { string.find, S, "l+", 1, true }, { string.find, S, "", 30 }, { string.find, S, "", 21 },
  { string.find, S, "", 22 }, { string.find, S, "", -100 }, { string.find, S, "o", 0 },
  { string.find, S, "o", -5 }, { string.find, S, "%", 1, true }, { string.find, S, "[", 1, true },
  { string.find, S, "lo", 4 }, { string.find, S, "lo", 5 }, { string.find, "a+b", "+" },
  { string.find, "a+b", "a+b" }, { string.find, "a.b", "." }, { string.find, S, "o", 2 ^ 53 },
  { string.find, S, "o", math.mininteger }, { string.find, S, "o", math.maxinteger },
  { string.find, S }, { string.find, nil, "x" }, { string.find, S, {} }, { string.find, S, "o", "x" },
  { string.find, 12345, 3 }, { string.match, 12345, "(%d)(%d)" }, { string.match, S, "()o()", 6 },
  { string.match, S, "^(h)", 2 }, { string.match, S, ".", -1 }, { string.match, "", ".*" },
  { string.match, "", "()" }, { string.match, "x", "(x)()", 5 },
  { string.gsub, S, "o", "0", 0 }, { string.gsub, S, "o", "0", -1 }, { string.gsub, S, "o", "0", 1.0 },
  { string.gsub, S, "o", "0", 1.5 }, { string.gsub, S, "o", "0", "2" }, { string.gsub, S, "o" },
  { string.gsub, S, "o", true }, { string.gsub, S, "(o)", "%2" }, { string.gsub, S, "o", "%" },
  { string.gsub, S, "o", "%x" }, { string.gsub, S, "o", "%%" }, { string.gsub, S, "o", "%1" },
  { string.gsub, S, "()o", "%1" }, { string.gsub, S, "o", 7 }, { string.gsub, S, "o", 1.5 },
  { string.gsub, S, "%w+", "%0 %0", 2 }, { string.gsub, S, "", "-" }, { string.gsub, "", "", "-" },
  { string.gsub, "abc", ".-", "-" }, { string.gsub, "abc", "x*", "-" }, { string.gsub, "abc", "^", "-" },
  { string.gsub, "abc", "$", "-" }, { string.gsub, "abc", "^x*", "-" }, { string.gsub, "abc", "b*", "-" },
  { string.gsub, S, "%w+", function() return {} end },
  { string.gsub, S, "%w+", function() return 1.5 end },
  { string.gsub, S, "%w+", function(w) return #w end },
  { string.gsub, S, "%w+", function() error("boom") end },
  { string.gsub, S, "%w+", function() error({}) end },
  { string.gsub, S, "(%w+)", { hello = "HI", Lua = 54 } },
  { string.gsub, S, "()(%w+)", { [1] = "one" } },
  { string.gsub, S, "%w+", setmetatable({}, { __index = function(_, k) return k:upper() end }) },
  { string.gsub, S, ("(a)"):rep(33), "" }, { string.find, S, ("(a)"):rep(32) },
  { string.find, ("a"):rep(300), ("a?"):rep(300) }, { string.find, ("a"):rep(300), ("(a)"):rep(20) },
  { string.find, ("a"):rep(199), ("a"):rep(199) }, { string.find, ("a"):rep(250), ("a?"):rep(250) .. "$" },
  { string.find, "b" .. ("a"):rep(300), ("(a"):rep(30) .. ("a?"):rep(160) .. (")"):rep(30) },
  { string.match, ("a"):rep(300), ("(a"):rep(31) .. (")"):rep(31) },
  { string.match, "x", "%" }, { string.match, "x", "[x" }, { string.match, "x", "[^" },
  { string.match, "x", "%b" }, { string.match, "x", "%f" }, { string.match, "x", "%fx" },
  { string.match, "x", "(()" }, { string.match, "x", "x)" }, { string.gsub, "x", "(x", "" },
  { string.match, "  x  ", "^%s*(.-)%s*$" }, { string.match, "date: 2024-01-31", "(%d+)-(%d+)-(%d+)" },
  { string.match, "[[x]]", "%[(=*)%[(.-)%]%1%]" }, { string.match, "THE (quick) fox", "%((%a+)%)" },
  { string.match, "aaa", "()a-()" }, { string.match, "aaa", "(a-)$" },
}
for i, c in ipairs(hand) do
  case("hand " .. i, table.unpack(c, 1, 5))
end
local function gm(s, p, init)
  local t = {}
  for a, b in string.gmatch(s, p, init) do
    t[#t + 1] = show(a) .. "," .. show(b)
  end
  return table.concat(t, ";")
end
local ghand = {
  { S, "%a+" }, { S, "%a+", 7 }, { S, "%a+", -3 }, { S, "%a+", 100 }, { S, "()" },
  { S, "(%a+) (%a+)" }, { "abc", "" }, { "abc", ".-" }, { "abc", "^a" }, { "a^b", "^b" },
  { "k=v, a=b", "(%w+)=(%w+)" }, { S, "%f[%a]%a" }, { S, "o", 0 }, { S, "x*" }, { S, "[" },
}
for i, c in ipairs(ghand) do
  case("gmatch " .. i, gm, c[1], c[2], c[3])
end
case("gmatch noargs", string.gmatch)
case("gmatch resume", function()
  local it = string.gmatch("a1b2c3", "%a(%d)")
  local x = it()
  local y = it()
  return x, y, it(), it(), it()
end)

return {
  run = function(part, parts)
    local out = {}
    for i = part, #lines, parts do
      out[#out + 1] = lines[i]
    end
    return table.concat(out, "\n")
  end,
  count = #lines,
}
