-- Tests of lualib/cliq/args.lua, written with the test kit: the documented
-- examples, then 30,000 random argument texts, each parsed as a
-- one-character-at-a-time reference written from the module's comment
-- parses it.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 tests/lua/test_args.lua

local args = require "cliq.args"
local kit = require "cliq.test"

local test, eq = kit.test, kit.eq

-- The reference: the rules of args.lua's comment, one character at a time.
-- Spaces are C's isspace (Lua's %s); letters and digits are ASCII.
local SPACE = { [" "] = true, ["\t"] = true, ["\n"] = true, ["\v"] = true, ["\f"] = true,
  ["\r"] = true }

local function ref_split(text)
  local words, i, n = {}, 1, #text
  while true do
    while i <= n and SPACE[text:sub(i, i)] do
      i = i + 1
    end
    if i > n then
      return words
    end
    local word = {}
    while i <= n and not SPACE[text:sub(i, i)] do
      local c = text:sub(i, i)
      if c == '"' or c == "'" then
        local j = i + 1
        while j <= n and text:sub(j, j) ~= c do
          j = j + 1
        end
        if j > n then
          return nil, "unclosed " .. c .. " quote"
        end
        word[#word + 1] = text:sub(i + 1, j - 1)
        i = j + 1
      else
        word[#word + 1] = c
        i = i + 1
      end
    end
    words[#words + 1] = table.concat(word)
  end
end

local function is_alpha(c)
  return ("a" <= c and c <= "z") or ("A" <= c and c <= "Z")
end

local function is_name_char(c)
  return is_alpha(c) or ("0" <= c and c <= "9") or c == "_" or c == "-"
end

-- A flag: "--" then one or more letters, digits, "_" or "-".
local function ref_flag(w)
  if #w < 3 or w:sub(1, 2) ~= "--" then
    return nil
  end
  for i = 3, #w do
    if not is_name_char(w:sub(i, i)) then
      return nil
    end
  end
  return w:sub(3)
end

-- An option: a name (a letter or "_", then letters, digits, "_" or "-"),
-- "=", and the rest of the word as the value.
local function ref_option(w)
  local eq_at = w:find("=", 1, true)
  if not eq_at or eq_at == 1 then
    return nil
  end
  local first = w:sub(1, 1)
  if not (is_alpha(first) or first == "_") then
    return nil
  end
  for i = 2, eq_at - 1 do
    if not is_name_char(w:sub(i, i)) then
      return nil
    end
  end
  return w:sub(1, eq_at - 1), w:sub(eq_at + 1)
end

local function ref_parse(text)
  local words, err = ref_split(text or "")
  if not words then
    return nil, err
  end
  local out = { flags = {}, options = {} }
  for _, w in ipairs(words) do
    local flag = ref_flag(w)
    local key, value = ref_option(w)
    if flag then
      out.flags[flag] = true
    elseif key then
      out.options[key] = value
    else
      out[#out + 1] = w
    end
  end
  return out
end

-- Both results of f(text) against the reference's.
local function agrees(f, ref, text)
  local got, got_err = f(text)
  local want, want_err = ref(text)
  local what = string.format("%q", text)
  eq(got, want, what)
  eq(got_err, want_err, what .. ", the error")
end

test("the documented example", function()
  local a = args.parse([[api prod --force note="ship it"]])
  eq(a, { "api", "prod", flags = { force = true }, options = { note = "ship it" } })
end)

test("words, spaces and quotes", function()
  eq(args.split(""), {})
  eq(args.split(" \t\n "), {})
  eq(args.split("api"), { "api" })
  eq(args.split("  api   prod  "), { "api", "prod" })
  eq(args.split("a\tb\nc\rd\ve\ff"), { "a", "b", "c", "d", "e", "f" })
  eq(args.split([["two words" 'and more']]), { "two words", "and more" })
  eq(args.split([[a"b c"d e]]), { "ab cd", "e" })
  eq(args.split([["it's" 'say "hi"']]), { "it's", 'say "hi"' })
  eq(args.split([[x "" '' y]]), { "x", "", "", "y" })
  eq(args.split([[""'']]), { "" })
  eq(args.split("café ünï"), { "café", "ünï" })
end)

test("an unclosed quote is an error", function()
  eq({ args.split([[api "prod]]) }, { nil, 'unclosed " quote' })
  eq({ args.split("it's") }, { nil, "unclosed ' quote" })
  eq({ args.parse([[a "b" "c]]) }, { nil, 'unclosed " quote' })
  eq({ args.parse("'") }, { nil, "unclosed ' quote" })
end)

test("flags, options and positional words", function()
  eq(args.parse(nil), { flags = {}, options = {} })
  eq(args.parse("--dry-run --x_1 --"), { "--", flags = { ["dry-run"] = true, x_1 = true },
    options = {} })
  eq(args.parse("--a.b ---x -x"), { "--a.b", "-x", flags = { ["-x"] = true }, options = {} })
  eq(args.parse("k=v _k-2=a=b e= =v 1k=v k.x=v"), { "=v", "1k=v", "k.x=v", flags = {},
    options = { k = "v", ["_k-2"] = "a=b", e = "" } })
  eq(args.parse([[note="ship it" 'to=x y']]), { flags = {},
    options = { note = "ship it", to = "x y" } })
  eq(args.parse("--flag=1"), { "--flag=1", flags = {}, options = {} })
  eq(args.parse("k=1 k=2 --f --f"), { flags = { f = true }, options = { k = "2" } })
  eq(args.parse("api dev #12"), { "api", "dev", "#12", flags = {}, options = {} })
end)

test("random texts parse as the reference does", function()
  local pieces = { "a", "Z", "k", "0", "9", "_", "-", "--", "=", "#", ".", '"', "'", " ", "  ",
    "\t", "\n", "\r", "\v", "\f", "\0", "é", "\255", "x=", "--f", "%", "(" }
  math.randomseed(17)
  for _ = 1, 30000 do
    local parts = {}
    for j = 1, math.random(0, 14) do
      parts[j] = pieces[math.random(#pieces)]
    end
    local text = table.concat(parts)
    agrees(args.split, ref_split, text)
    agrees(args.parse, ref_parse, text)
  end
end)

test("a parser that differs from the reference is caught", function()
  local function wrong_words() return {} end
  local function wrong_error() return nil, "x" end
  kit.raises(function() agrees(wrong_words, ref_split, "a") end, "not equal")
  kit.raises(function() agrees(wrong_error, ref_split, '"') end, "the error")
  kit.raises(function() agrees(wrong_words, ref_split, '"') end, "not equal")
end)

os.exit(kit.run_tests())
