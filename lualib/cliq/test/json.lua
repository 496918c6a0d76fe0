-- cliq.test.json: the host's `json` module (host/script/bind_json.h), in pure Lua,
-- for the test kit. Scripts under test see this module as `json`.
--
--   json.encode(v)   -> text; raises "json.encode: <path>: <why>" for a value
--                       JSON cannot carry ("value.buttons[2].label: string is
--                       not valid UTF-8 (at byte 3)")
--   json.decode(s)   -> value, or nil and "invalid JSON near byte N" /
--                       "data after the JSON value at byte N"
--   json.null        -> the JSON null (decoded null, and encodes as null)
--   json.array(t)    -> t (or a new table) marked to encode as [...]
--   json.object(t)   -> t (or a new table) marked to encode as {...}
--
-- For the kit only (scripts do not see them): json.kind(t) ("array",
-- "object" or nil), json.encode_value(v, root) and json.encode_output(v)
-- (-> text or nil, reason; never raise for a bad value).
--
-- The same rules as the host: decoded arrays and objects carry a mark (a
-- metatable) so `[]` and `{}` keep their shape; numbers written without '.',
-- 'e' or 'E' that fit in 64 bits decode as integers, others as floats;
-- floats encode with a fraction part ("1.0"); an unmarked table is an array
-- when its keys are exactly 1..n, an object when they are all strings, an
-- error otherwise; an empty unmarked table is `{}`; strings must be valid
-- UTF-8; nesting deeper than 200 tables fails.
--
-- Two differences, neither visible to a script that only compares values:
-- json.null is a table here (a userdata in the host), and object keys are
-- written sorted (the host writes them in table order; JSON objects have no
-- order).

local M = {}

local MAX_DEPTH = 200 -- BIND_JSON_MAX_DEPTH
local MAX_NESTING = 1000 -- cJSON's CJSON_NESTING_LIMIT, for decoding

-- Protected, as the host's: scripts cannot reach or change them.
local array_mt = { __name = "json.array", __metatable = false }
local object_mt = { __name = "json.object", __metatable = false }
local getmetatable, setmetatable = debug.getmetatable, debug.setmetatable

local null = setmetatable({}, {
  __name = "json.null",
  __tostring = function()
    return "json.null"
  end,
  __newindex = function()
    error("json.null cannot be changed", 2)
  end,
  __metatable = false,
})

M.null = null

-- Marks t (or a new table) with mt; refuses a table with a foreign
-- metatable, as the host does.
local function mark(t, mt, what)
  if t == nil then
    return setmetatable({}, mt)
  end
  if type(t) ~= "table" then
    error(string.format("bad argument #1 to '%s' (table expected, got %s)", what,
      type(t)), 3)
  end
  local old = getmetatable(t)
  if old ~= nil and old ~= array_mt and old ~= object_mt then
    error("json." .. what .. ": the table already has a metatable", 3)
  end
  return setmetatable(t, mt)
end

function M.array(t)
  return mark(t, array_mt, "array")
end

function M.object(t)
  return mark(t, object_mt, "object")
end

-- Says whether t carries the array or object mark: "array", "object" or
-- nil. For the kit; the host's module has no such function.
function M.kind(t)
  local mt = type(t) == "table" and getmetatable(t)
  return mt == array_mt and "array" or mt == object_mt and "object" or nil
end

-- ---- encoding -------------------------------------------------------------

local EncodeError = {}

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\b"] = "\\b", ["\f"] = "\\f",
}

local function escape_char(c)
  return escapes[c] or string.format("\\u%04x", c:byte())
end

-- Encoder state: out (list of pieces), root (name of the value), path (keys
-- from the root to the value being written).
local function fail(e, why)
  local parts = { e.root }
  for i = 1, #e.path do
    local k = e.path[i]
    if type(k) == "string" then
      parts[#parts + 1] = "." .. k:sub(1, 40)
    else
      parts[#parts + 1] = "[" .. k .. "]"
    end
  end
  local where = table.concat(parts)
  if #where > 250 then
    where = where:sub(1, 250)
  end
  error(setmetatable({ msg = where .. ": " .. why }, EncodeError), 0)
end

local function encode_string(e, s)
  local ok, bad = utf8.len(s)
  if not ok then
    fail(e, string.format("string is not valid UTF-8 (at byte %d)", bad))
  end
  e.out[#e.out + 1] = '"' .. s:gsub('[\0-\31"\\]', escape_char) .. '"'
end

local function encode_number(e, v)
  if math.type(v) == "integer" then
    e.out[#e.out + 1] = string.format("%d", v)
    return
  end
  if v ~= v then
    fail(e, "NaN cannot be represented in JSON")
  elseif v == math.huge or v == -math.huge then
    fail(e, "infinity cannot be represented in JSON")
  end
  local s
  for prec = 15, 17 do
    s = string.format("%." .. prec .. "g", v)
    if tonumber(s) == v then
      break
    end
  end
  if not s:find("[%.eE]") then
    s = s .. ".0" -- keep it a float when read back
  end
  e.out[#e.out + 1] = s
end

local encode_value

local function encode_array(e, t, n)
  local out = e.out
  out[#out + 1] = "["
  local path = e.path
  local at = #path + 1
  for i = 1, n do
    if i > 1 then
      out[#out + 1] = ","
    end
    path[at] = i
    encode_value(e, rawget(t, i))
  end
  path[at] = nil
  out[#out + 1] = "]"
end

local function key_order(a, b)
  return a[1] < b[1]
end

-- Writes t as an object; integer keys become decimal strings only when
-- int_keys_ok (a marked object).
local function encode_object(e, t, int_keys_ok)
  local keys = {}
  for k in next, t do
    if type(k) == "string" then
      keys[#keys + 1] = { k, k }
    elseif math.type(k) == "integer" and int_keys_ok then
      keys[#keys + 1] = { string.format("%d", k), k }
    else
      fail(e, string.format("object keys must be strings (found a %s key)", type(k)))
    end
  end
  table.sort(keys, key_order)
  local out = e.out
  out[#out + 1] = "{"
  local path = e.path
  local at = #path + 1
  for i, k in ipairs(keys) do
    if i > 1 then
      out[#out + 1] = ","
    end
    path[at] = k[1]
    encode_string(e, k[1])
    out[#out + 1] = ":"
    encode_value(e, rawget(t, k[2]))
  end
  path[at] = nil
  out[#out + 1] = "}"
end

local function encode_table(e, t)
  if e.depth >= MAX_DEPTH then
    fail(e, "nested too deeply (or a table contains itself)")
  end
  e.depth = e.depth + 1
  local mt = getmetatable(t)
  if mt == array_mt then
    local n, count = rawlen(t), 0
    for _ in next, t do
      count = count + 1
    end
    if count ~= n then
      fail(e, "json.array has keys other than 1..n (holes, or named keys)")
    end
    encode_array(e, t, n)
  elseif mt == object_mt then
    encode_object(e, t, true)
  else
    local count, ints, strs, max = 0, 0, 0, 0
    for k in next, t do
      count = count + 1
      if type(k) == "string" then
        strs = strs + 1
      elseif math.type(k) == "integer" and k > 0 then
        ints = ints + 1
        if k > max then
          max = k
        end
      end
    end
    if count == 0 or strs == count then
      encode_object(e, t, false)
    elseif ints == count and max == count then
      encode_array(e, t, count)
    elseif ints == count then
      fail(e, "array has holes (nil between items); use json.null for a null")
    else
      fail(e, "table mixes list items and named keys; JSON needs one or the other "
        .. "(use json.object() to write numbers as keys)")
    end
  end
  e.depth = e.depth - 1
end

encode_value = function(e, v)
  local t = type(v)
  if v == nil or rawequal(v, null) then
    e.out[#e.out + 1] = "null"
  elseif t == "boolean" then
    e.out[#e.out + 1] = v and "true" or "false"
  elseif t == "number" then
    encode_number(e, v)
  elseif t == "string" then
    encode_string(e, v)
  elseif t == "table" then
    encode_table(e, v)
  else
    fail(e, "cannot encode a " .. t)
  end
end

-- Encodes v; `root` names it in messages. Returns the text, or nil and
-- "<path>: <why>". Never raises for a bad value.
function M.encode_value(v, root)
  local e = { out = {}, root = root or "value", path = {}, depth = 0 }
  local ok, err = pcall(encode_value, e, v)
  if not ok then
    if getmetatable(err) == EncodeError then
      return nil, err.msg
    end
    error(err, 0)
  end
  return table.concat(e.out)
end

function M.encode(...)
  if select("#", ...) == 0 then
    error("bad argument #1 to 'encode' (value expected)", 2)
  end
  local text, err = M.encode_value((...), "value")
  if not text then
    error("json.encode: " .. err, 2)
  end
  return text
end

-- A handler's reply as the host sends it (bind_json_encode_output): a table
-- as JSON, a string s as {"text": s}, nil as "", all inside {"output": ...}.
-- Returns the text, or nil and the reason. For the kit.
function M.encode_output(v)
  local t = type(v)
  if v == nil then
    return '{"output":""}'
  elseif t == "string" then
    local text, err = M.encode_value(v, "output.text")
    return text and '{"output":{"text":' .. text .. "}}", err
  elseif t == "table" then
    local text, err = M.encode_value(v, "output")
    return text and '{"output":' .. text .. "}", err
  end
  return nil, "a reply must be a table (a message), a string or nothing, not a " .. t
end

-- ---- decoding -------------------------------------------------------------

local DecodeError = {}

local function bad(at)
  error(setmetatable({ at = at }, DecodeError), 0)
end

-- cJSON skips every byte up to and including the space between tokens.
local function skip(s, i)
  return s:find("[^\0- ]", i) or #s + 1
end

local decode_value

local unescapes = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

local function decode_string(s, i) -- s:sub(i, i) == '"'
  local parts = {}
  local j = i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then
      bad(i + 1) -- never closed: cJSON names the string's first byte
    end
    parts[#parts + 1] = s:sub(j, k - 1)
    if s:byte(k) == 34 then -- '"'
      return table.concat(parts), k + 1
    end
    local c = s:sub(k + 1, k + 1)
    if c == "u" then
      local hex = s:match("^%x%x%x%x", k + 2)
      if not hex then
        bad(k)
      end
      local cp = tonumber(hex, 16)
      j = k + 6
      if cp >= 0xDC00 and cp <= 0xDFFF then
        bad(k) -- a low surrogate first
      elseif cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s:match("^\\u(%x%x%x%x)", j)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then
          bad(k)
        end
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
        j = j + 6
      end
      parts[#parts + 1] = utf8.char(cp)
    else
      local v = unescapes[c]
      if not v then
        bad(k)
      end
      parts[#parts + 1] = v
      j = k + 2
    end
  end
end

local function decode_number(s, i)
  local tok = s:match("^[-+%d%.eE]+", i)
  local v = tonumber(tok)
  if not v then
    bad(i)
  end
  if not tok:find("[%.eE]") and math.type(v) == "integer" then
    return v, i + #tok
  end
  return v + 0.0, i + #tok
end

local literals = { t = { "true", true }, f = { "false", false }, n = { "null", null } }

decode_value = function(s, i, depth)
  if depth > MAX_NESTING then
    bad(i)
  end
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == '"' then
    return decode_string(s, i)
  elseif c == "{" then
    local t = setmetatable({}, object_mt)
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then
      return t, i + 1
    end
    while true do
      i = skip(s, i)
      if s:sub(i, i) ~= '"' then
        bad(i)
      end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then
        bad(i)
      end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      rawset(t, k, v)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then
        return t, i + 1
      elseif d ~= "," then
        bad(i)
      end
      i = i + 1
    end
  elseif c == "[" then
    local t = setmetatable({}, array_mt)
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then
      return t, i + 1
    end
    local n = 0
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      rawset(t, n, v)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then
        return t, i + 1
      elseif d ~= "," then
        bad(i)
      end
      i = i + 1
    end
  elseif c == "-" or c:find("^%d") then
    return decode_number(s, i)
  end
  local lit = literals[c]
  if lit and s:sub(i, i + #lit[1] - 1) == lit[1] then
    return lit[2], i + #lit[1]
  end
  bad(i)
end

function M.decode(...)
  local s = ...
  if type(s) == "number" then
    s = tostring(s)
  elseif type(s) ~= "string" then
    error(string.format("bad argument #1 to 'decode' (string expected, got %s)",
      select("#", ...) == 0 and "no value" or type(s)), 2)
  end
  local start = s:sub(1, 3) == "\239\187\191" and 4 or 1 -- a UTF-8 BOM
  local ok, v, i = pcall(decode_value, s, start, 0)
  if not ok then
    if getmetatable(v) == DecodeError then
      -- cJSON names the last byte when the text ends too soon.
      return nil, string.format("invalid JSON near byte %d", math.max(1, math.min(v.at, #s)))
    end
    error(v, 0)
  end
  local extra = s:find("[^ \t\r\n]", i)
  if extra then
    return nil, string.format("data after the JSON value at byte %d", extra)
  end
  return v
end

return M
