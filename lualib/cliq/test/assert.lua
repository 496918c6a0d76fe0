-- cliq.test.assert: the test kit's assertions. Each raises an error at the
-- caller's line when it fails, with a message that shows what differed.
--
--   eq(actual, expected [, what])        deep equality; lists each difference
--                                        by path: ".buttons[2].label: expected
--                                        "Reject", got "Approve""
--   contains(haystack, needle [, what])  a plain substring of a string, or a
--                                        deep-equal item of a table
--   matches(s, pattern [, what])         a Lua pattern
--   raises(fn, needle [, what])          fn() must raise (an error holding
--                                        needle, when given); returns the
--                                        message
--   fail(message)
--   show(v)                              a short, readable text of any value
--
-- Tables compare by content, ignoring metatables (a json.array and a plain
-- list with the same items are equal); numbers compare as Lua does (1 ==
-- 1.0).

local json = require "cliq.test.json"

local M = {}

local MAX_DIFFS = 8

local escapes = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }

local function quote(s)
  if #s > 200 then
    s = s:sub(1, 200) .. "..."
  end
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\%d", c:byte())
  end) .. '"'
end

local function key_text(k)
  if type(k) == "string" and k:find("^[%a_][%w_]*$") then
    return "." .. k
  end
  return "[" .. (type(k) == "string" and quote(k) or tostring(k)) .. "]"
end

local function sorted_keys(t)
  local keys = {}
  for k in next, t do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
      return ta == "number" -- list items first
    end
    if ta == "number" or ta == "string" then
      return a < b
    end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function show(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" then
    return quote(v)
  elseif t == "number" then
    return math.type(v) == "integer" and string.format("%d", v) or string.format("%.17g", v)
  elseif t ~= "table" then
    return tostring(v)
  elseif rawequal(v, json.null) then
    return "json.null"
  elseif depth >= 4 then
    return "{...}"
  end
  local n = rawlen(v)
  local parts = {}
  for _, k in ipairs(sorted_keys(v)) do
    if #parts >= 12 then
      parts[#parts + 1] = "..."
      break
    end
    local item = show(rawget(v, k), depth + 1)
    if math.type(k) == "integer" and k >= 1 and k <= n then
      parts[#parts + 1] = item
    else
      local kt = key_text(k)
      parts[#parts + 1] = (kt:sub(1, 1) == "." and kt:sub(2) or kt) .. " = " .. item
    end
  end
  return #parts == 0 and "{}" or "{ " .. table.concat(parts, ", ") .. " }"
end
M.show = show

local function differ(a, b, path, out, seen)
  if #out >= MAX_DIFFS then
    return
  end
  local at = path == "" and "" or path .. ": "
  local ta, tb = type(a), type(b)
  if ta == "table" and tb == "table" and not rawequal(a, json.null)
    and not rawequal(b, json.null) then
    if rawequal(a, b) or (seen[a] and seen[a][b]) then
      return
    end
    seen[a] = seen[a] or {}
    seen[a][b] = true
    local keys = {}
    for k in next, b do
      keys[k] = true
    end
    for k in next, a do
      keys[k] = true
    end
    for _, k in ipairs(sorted_keys(keys)) do
      local x, y = rawget(a, k), rawget(b, k)
      local p = path .. key_text(k)
      if x == nil then
        out[#out + 1] = p .. ": missing (expected " .. show(y) .. ")"
      elseif y == nil then
        out[#out + 1] = p .. ": not expected (got " .. show(x) .. ")"
      else
        differ(x, y, p, out, seen)
      end
      if #out >= MAX_DIFFS then
        return
      end
    end
  elseif a ~= b and not rawequal(a, b) then
    out[#out + 1] = at .. "expected " .. show(b) .. ", got " .. show(a)
  end
end

-- Returns nil when a and b are deeply equal, else a list of differences.
---@param a any
---@param b any
---@return string[]?
function M.diff(a, b)
  local out = {}
  differ(a, b, "", out, {})
  return out[1] and out or nil
end

local function prefix(what)
  return what and tostring(what) .. ": " or ""
end

---@param actual any
---@param expected any
---@param what? string
function M.eq(actual, expected, what)
  local diffs = M.diff(actual, expected)
  if diffs then
    local head = prefix(what) .. "not equal"
    if #diffs == 1 and not diffs[1]:find("^[.%[]") then
      error(head .. ": " .. diffs[1], 2)
    end
    error(head .. "\n  " .. table.concat(diffs, "\n  ")
      .. (#diffs >= MAX_DIFFS and "\n  ..." or ""), 2)
  end
  return actual
end

---@param haystack string|table
---@param needle any
---@param what? string
function M.contains(haystack, needle, what)
  if type(haystack) == "string" then
    if type(needle) ~= "string" then
      error(prefix(what) .. "contains: the needle must be a string, got " .. show(needle), 2)
    end
    if not haystack:find(needle, 1, true) then
      error(prefix(what) .. "expected " .. show(haystack) .. " to contain " .. show(needle), 2)
    end
    return haystack
  elseif type(haystack) == "table" then
    for _, v in pairs(haystack) do
      if not M.diff(v, needle) then
        return haystack
      end
    end
    error(prefix(what) .. "expected " .. show(haystack) .. " to contain " .. show(needle), 2)
  end
  error(prefix(what) .. "expected a string or a table to look in, got " .. show(haystack), 2)
end

---@param s string
---@param pattern string
---@param what? string
function M.matches(s, pattern, what)
  if type(s) ~= "string" or not s:find(pattern) then
    error(prefix(what) .. "expected " .. show(s) .. " to match " .. show(pattern), 2)
  end
  return s
end

---@param fn function
---@param needle? string
---@param what? string
---@return string err  the error, as text
function M.raises(fn, needle, what)
  local ok, err = pcall(fn)
  if ok then
    error(prefix(what) .. "expected an error" .. (needle and " containing " .. show(needle) or "")
      .. ", but none was raised", 2)
  end
  local msg = type(err) == "string" and err or show(err)
  if needle and not msg:find(needle, 1, true) then
    error(prefix(what) .. "expected an error containing " .. show(needle) .. ", got "
      .. show(msg), 2)
  end
  return msg
end

---@param message string
function M.fail(message)
  error(message or "failed", 2)
end

return M
