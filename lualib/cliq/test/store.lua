-- cliq.test.store: the host's `store`, in memory, for the test kit.
--
-- One store per test (kit.reset empties it), shared by every script a test
-- loads, as the host's is shared by all of its scripts. Values go through
-- the kit's JSON, as they go through the host's: what a script gets back is
-- a copy, tables lose what JSON cannot carry, and a value JSON cannot carry
-- is refused. Time-to-live follows the kit's fake clock.

local json = require "cliq.test.json"
local fakes = require "cliq.test.fakes"

local M = {}

M.KEY_MAX = 512 -- bytes
M.RETRIES = 16 -- store.update's tries before "conflict"

-- key -> { text = JSON, expires = epoch seconds or nil, version = n }
M.data = {}
-- A failure every call returns while set (kit.store.fails).
M.failure = nil
-- Writes that happen between an update's read and its write, to model
-- another worker or host: key -> list of values (kit.store.interfere).
M.interference = {}

function M.reset()
  for k in pairs(M.data) do
    M.data[k] = nil
  end
  for k in pairs(M.interference) do
    M.interference[k] = nil
  end
  M.failure = nil
end

local function live(key)
  local e = M.data[key]
  if e and e.expires and e.expires <= fakes.now() then
    M.data[key] = nil
    return nil
  end
  return e
end

local function count()
  local n = 0
  for k in pairs(M.data) do
    if live(k) then
      n = n + 1
    end
  end
  return n
end

local function check_key(fn, key, i)
  if type(key) ~= "string" then
    error(string.format("bad argument #%d to '%s' (string expected, got %s)", i or 1, fn,
      key == nil and "no value" or type(key)), 3)
  end
  if #key == 0 or #key > M.KEY_MAX then
    error(string.format("bad argument #%d to '%s' (a key is a non-empty string of at most %d bytes)",
      i or 1, fn, M.KEY_MAX), 3)
  end
end

local function check_opts(fn, opts, i)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("bad argument #%d to '%s' (table expected, got %s)", i, fn,
      type(opts)), 3)
  end
  opts = opts or {}
  local ttl = rawget(opts, "ttl")
  if ttl ~= nil and (type(ttl) ~= "number" or not (ttl > 0 and ttl < math.huge)) then
    error(string.format("bad argument #%d to '%s' (opts.ttl must be a number of seconds > 0)", i,
      fn), 3)
  end
  return opts
end

-- The value as stored: its JSON text, or nil and why not.
local function encode(value)
  local text, err = json.encode_value(value, "value")
  if not text then
    return nil, err
  end
  local max = fakes.settings.store_max_value_bytes
  if #text > max then
    return nil, string.format("value too large: its JSON is over store_max_value_bytes (%d)", max)
  end
  return text
end

local function full()
  return string.format("store full: %d keys, store_max_keys (%d); delete keys or raise the setting",
    count(), fakes.settings.store_max_keys)
end

-- Writes text under key (a new version); nil, why when the store is full.
local function put(key, text, ttl, keep_expiry)
  local e = live(key)
  if not e and count() >= fakes.settings.store_max_keys then
    return nil, full()
  end
  local expires
  if ttl then
    expires = fakes.now() + ttl
  elseif keep_expiry and e then
    expires = e.expires
  end
  M.data[key] = { text = text, expires = expires, version = (e and e.version or 0) + 1 }
  return true
end

local function value_of(e)
  return e and (json.decode(e.text))
end

local function failed()
  if M.failure then
    return nil, M.failure
  end
end

function M.get(key)
  check_key("get", key)
  if M.failure then
    return failed()
  end
  return value_of(live(key))
end

function M.set(key, value, opts)
  check_key("set", key)
  if value == nil then
    error("bad argument #2 to 'set' (a value is needed (store.delete removes a key))", 2)
  end
  opts = check_opts("set", opts, 3)
  if M.failure then
    return failed()
  end
  local text, err = encode(value)
  if not text then
    return nil, err
  end
  if rawget(opts, "only_if_absent") and live(key) then
    return false
  end
  return put(key, text, rawget(opts, "ttl"))
end

function M.incr(key, by, opts)
  check_key("incr", key)
  if by ~= nil and type(by) ~= "number" then
    error(string.format("bad argument #2 to 'incr' (number expected, got %s)", type(by)), 2)
  end
  if by and (by ~= by or by == math.huge or by == -math.huge) then
    error("bad argument #2 to 'incr' (by must be a finite number)", 2)
  end
  opts = check_opts("incr", opts, 3)
  if M.failure then
    return failed()
  end
  local e = live(key)
  local old = 0
  if e then
    old = value_of(e)
    if type(old) ~= "number" then
      return nil, "not a number: " .. key
    end
  end
  by = by or 1
  local new
  if math.type(old) == "integer" and math.type(by) == "integer"
    and ((by > 0 and old > math.maxinteger - by) or (by < 0 and old < math.mininteger - by)) then
    new = (old + 0.0) + by -- past the integers: a float, as the host makes it
  else
    new = old + by
  end
  if new ~= new or new == math.huge or new == -math.huge then
    return nil, "not a number: " .. key .. " would not be finite"
  end
  local text, err = encode(new)
  if not text then
    return nil, err
  end
  -- The time-to-live applies when the key is made; an existing key keeps
  -- its own.
  local ok, why = put(key, text, not e and rawget(opts, "ttl") or nil, true)
  if not ok then
    return nil, why
  end
  return new
end

function M.update(key, fn, opts)
  check_key("update", key)
  if type(fn) ~= "function" then
    error(string.format("bad argument #2 to 'update' (function expected, got %s)",
      type(fn)), 2)
  end
  opts = check_opts("update", opts, 3)
  if M.failure then
    return failed()
  end
  for _ = 1, M.RETRIES do
    local e = live(key)
    local version = e and e.version
    local new = fn(value_of(e))
    -- Another writer between the read and the write (kit.store.interfere).
    local queued = M.interference[key]
    if queued and #queued > 0 then
      local v = table.remove(queued, 1)
      if v == json.null then
        M.data[key] = nil
      else
        put(key, assert(encode(v)), nil, true)
      end
    end
    local now = live(key)
    if (now and now.version) == version then
      if new == nil then
        M.data[key] = nil
        return nil
      end
      local text, err = encode(new)
      if not text then
        return nil, err
      end
      local ok, why = put(key, text, rawget(opts, "ttl"), true)
      if not ok then
        return nil, why
      end
      return new
    end
  end
  return nil, string.format("conflict: %s changed %d times", key, M.RETRIES)
end

function M.delete(key)
  check_key("delete", key)
  if M.failure then
    return failed()
  end
  M.data[key] = nil
  return true
end

function M.list(prefix, opts)
  if type(prefix) ~= "string" then
    error(string.format("bad argument #1 to 'list' (string expected, got %s)",
      prefix == nil and "no value" or type(prefix)), 2)
  end
  opts = check_opts("list", opts, 2)
  local limit = rawget(opts, "limit") or 100
  if math.type(limit) ~= "integer" or limit < 1 or limit > 1000 then
    error("bad argument #2 to 'list' (opts.limit must be an integer from 1 to 1000)", 2)
  end
  local after = rawget(opts, "after")
  if after ~= nil and (type(after) ~= "string" or #after > 512) then
    error("bad argument #2 to 'list' (opts.after must be a key (a string of at most 512 bytes))", 2)
  end
  if M.failure then
    return failed()
  end
  local keys = {}
  for k in pairs(M.data) do
    if k:sub(1, #prefix) == prefix and (not after or k > after) and live(k) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  local items = {}
  for i = 1, math.min(limit, #keys) do
    items[i] = { key = keys[i], value = value_of(M.data[keys[i]]) }
  end
  local next_key = #keys > limit and keys[limit] or nil
  return items, next_key
end

-- What scripts see as the global `store`.
function M.make_store()
  return { get = M.get, set = M.set, incr = M.incr, update = M.update, delete = M.delete,
    list = M.list }
end

return M
