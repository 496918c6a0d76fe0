-- cliq.test.fakes: the host's waiting and outbound bindings, faked for the
-- test kit. Each binding checks its arguments as the host does (same error
-- strings), records what it was asked, and answers at once from what the
-- test set up, with the host's return conventions (a value, or nil and a
-- message). Time is a fake clock that sleep and slow fakes move forward.
--
-- A waiting binding may only be called from the handler's own coroutine,
-- as in the host: it yields to the kit's driver (cliq.test.host), which
-- resumes it at once with the answer.

local json = require "cliq.test.json"

local M = {}

-- 2026-11-23 09:30:00 UTC: where the clock starts after each reset.
M.START_TIME = 1795426200

-- The host's defaults that the fakes model (README "Timing and limits"),
-- in seconds. A test may change them; reset puts them back.
local DEFAULT_SETTINGS = {
  deadline = 4.5, -- before the host answers for a slow handler
  response_ttl = 120, -- response_url validity
  attachment_ttl = 60, -- attachment URL validity
  http_timeout = 10, -- http.request's default timeout
  max_post_bytes = 65536, -- the outbox's outbox_max_post_bytes
  store_max_value_bytes = 262144, -- a store value's JSON, at most
  store_max_keys = 100000, -- keys in the store, at most
}
M.settings = {}

-- What the driver passes through a yield; anything else yielded is a
-- handler yielding outside a host call.
M.WAIT = setmetatable({}, { __name = "cliq.test.wait" })

-- The task running now: { co, req, id, received, response_url, responded,
-- loading }, or nil at a script's top level.
M.current = nil

-- Every handler coroutine the driver made (scripts may not resume them).
M.task_threads = setmetatable({}, { __mode = "k" })

-- Recorders. Cleared in place by reset, so a test may hold on to them.
M.logs = {} -- { level, msg, script, id }
M.http_calls = {} -- { method, url, headers, body, timeout, redirects, response | error }
M.posts = {} -- { fn, target, message, opts, token, as_bot, appkey, wait, userids, broadcast }
M.responses = {} -- { kind = "respond" | "late", message, output, json, url, id }
M.sleeps = {} -- { seconds, at }
M.downloads = {} -- { url, name }
M.env = {} -- what os.getenv returns to scripts

-- Set up by tests; cleared by reset.
M.routes = {}
M.cliq_answers = {}
M.respond_answer = nil
M.tokens = nil -- nil: every token name works
M.files = {} -- attachment url -> content or failure
M.download_cache = setmetatable({}, { __mode = "k" })

-- now: epoch seconds; elapsed: seconds moved since reset (os.clock);
-- offset: the local time zone, seconds east of UTC (0 after reset, whatever
-- the machine's zone, so that tests give the same answers everywhere).
M.clock = { now = M.START_TIME, elapsed = 0, offset = 0 }

local function clear(t)
  for k in pairs(t) do
    t[k] = nil
  end
end

function M.reset()
  for _, t in ipairs({ M.logs, M.http_calls, M.posts, M.responses, M.sleeps, M.downloads,
    M.env, M.routes, M.cliq_answers, M.files, M.download_cache }) do
    clear(t)
  end
  for k, v in pairs(DEFAULT_SETTINGS) do
    M.settings[k] = v
  end
  M.respond_answer = nil
  M.tokens = nil
  M.clock.now = M.START_TIME
  M.clock.elapsed = 0
  M.clock.offset = 0
end

-- ---- answers --------------------------------------------------------------

local Failure = { __name = "cliq.test.failure" }
Failure.__index = Failure
Failure.__tostring = function(f)
  return "kit.fails(" .. f.message .. ")"
end

-- An answer that makes a fake return nil, message.
function M.fails(message)
  if type(message) ~= "string" then
    error("kit.fails: give the error message the script should get", 2)
  end
  return setmetatable({ message = message }, Failure)
end

function M.is_failure(v)
  return getmetatable(v) == Failure
end

-- Resolves what a fake returns: the default when nothing was set, a
-- failure as nil, message, a function's results (for the record), or the
-- value itself.
local function answer(a, record, default)
  if a == nil then
    return default
  end
  if type(a) == "function" then
    local v, err = a(record)
    if M.is_failure(v) then
      return nil, v.message
    end
    return v, err
  end
  if M.is_failure(a) then
    return nil, a.message
  end
  return a
end

local function copy(v)
  if type(v) ~= "table" or rawequal(v, json.null) then
    return v
  end
  local c = {}
  for k, x in next, v do
    c[k] = copy(x)
  end
  local kind = json.kind(v)
  return kind == "array" and json.array(c) or kind == "object" and json.object(c) or c
end
M.copy = copy

-- The name of an argument's type in a message: "no value" when absent.
local function arg_type(n, i, v)
  return i > n and "no value" or type(v)
end

-- ---- the clock ------------------------------------------------------------

function M.now()
  return M.clock.now
end

function M.advance(seconds)
  M.clock.now = M.clock.now + seconds
  M.clock.elapsed = M.clock.elapsed + seconds
end

-- Days since 1970-01-01 of a proleptic Gregorian date (no time zones);
-- days past the month's end count on into the next.
function M.days_from_civil(y, m, d)
  y = y + (m - 1) // 12
  m = (m - 1) % 12 + 1
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- os.time(t) for a date table in the fake local zone.
local function local_time(t)
  if type(t) ~= "table" then
    error(string.format("bad argument #1 to 'time' (table expected, got %s)", type(t)), 3)
  end
  for _, k in ipairs({ "day", "month", "year" }) do
    if math.type(t[k]) ~= "integer" then
      error(string.format("field '%s' missing in date table", k), 3)
    end
  end
  local days = M.days_from_civil(t.year, t.month, t.day)
  return days * 86400 + (t.hour or 12) * 3600 + (t.min or 0) * 60 + (t.sec or 0) - M.clock.offset
end

-- The os functions scripts see: time, date and clock follow the fake clock
-- (os.clock counts the seconds the clock moved since the last reset), and
-- local time is UTC plus clock.offset.
function M.make_os()
  return {
    time = function(t)
      if t == nil then
        return math.floor(M.clock.now)
      end
      return local_time(t)
    end,
    date = function(fmt, t)
      fmt = fmt or "%c"
      t = t or math.floor(M.clock.now)
      if type(fmt) == "string" and fmt:sub(1, 1) == "!" then
        return os.date(fmt, t)
      end
      return os.date("!" .. fmt, t + M.clock.offset)
    end,
    clock = function()
      return M.clock.elapsed
    end,
    difftime = os.difftime,
    getenv = function(name)
      if type(name) ~= "string" and type(name) ~= "number" then
        error(string.format("bad argument #1 to 'getenv' (string expected, got %s)", type(name)),
          2)
      end
      return M.env[tostring(name)]
    end,
  }
end

-- ---- waiting --------------------------------------------------------------

-- Checks that a waiting binding was called where the host lets it wait,
-- and returns the task. Raises the host's messages otherwise.
function M.here(what)
  local t = M.current
  if not t or coroutine.running() ~= t.co then
    error(what .. " can only wait in a handler's own code (not at a script's top level or in "
      .. "a coroutine the script made)", 3)
  end
  if t.loading > 0 or not coroutine.isyieldable() then
    error(what .. " cannot wait here: it was called through a C function that cannot pause "
      .. "(a string.gsub or table.sort callback, a metamethod, ...)", 3)
  end
  return t
end

-- Pauses the handler, as the host does, and returns the given values.
function M.wait(...)
  return coroutine.yield(M.WAIT, ...)
end

-- ---- log and print --------------------------------------------------------

-- Joins arguments as the host does: tables as JSON (tostring when JSON
-- cannot carry them), everything else by tostring.
local function join(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local text
    if type(v) == "table" and not rawequal(v, json.null) then
      text = json.encode_value(v)
    end
    parts[i] = text or tostring(v)
  end
  return table.concat(parts, " ")
end

-- Returns the log table, print and warn for a script named `script`.
function M.make_log(script)
  local function level(name)
    return function(...)
      M.logs[#M.logs + 1] = {
        level = name, msg = join(...), script = script, id = M.current and M.current.id,
      }
    end
  end
  local log = { debug = level("debug"), info = level("info"), warn = level("warn"),
    error = level("error") }
  -- Lua's warn(msg1, ...): strings joined, one warn line; a lone "@..." is
  -- a control message and writes nothing.
  local function warn(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, math.max(n, 1) do
      local v = select(i, ...)
      if type(v) ~= "string" and type(v) ~= "number" then
        error(string.format("bad argument #%d to 'warn' (string expected, got %s)", i,
          v == nil and "no value" or type(v)), 2)
      end
      parts[i] = tostring(v)
    end
    if n == 1 and parts[1]:sub(1, 1) == "@" then
      return
    end
    log.warn(table.concat(parts))
  end
  return log, log.info, warn
end

-- ---- sleep ----------------------------------------------------------------

function M.sleep(...)
  local s = ...
  local n = tonumber(s)
  if n == nil then
    error(string.format("bad argument #1 to 'sleep' (number expected, got %s)",
      arg_type(select("#", ...), 1, s)), 2)
  end
  if not (n >= 0 and n < math.huge) then
    error("bad argument #1 to 'sleep' (seconds must be a number >= 0)", 2)
  end
  M.here("sleep")
  M.sleeps[#M.sleeps + 1] = { seconds = n, at = M.clock.now }
  M.advance(n)
  return M.wait()
end

-- ---- http.request ---------------------------------------------------------

-- Field k of t as an optional string; `name` is how a message names it
-- ("http.request: '%s'", "opts.%s").
local function opt_string(t, k, name)
  local v = t[k]
  if v ~= nil and type(v) ~= "string" then
    error(string.format(name .. " must be a string (got %s)", k, type(v)), 3)
  end
  return v
end

-- Registers how to answer requests: method ("*" for any), url (a trailing
-- "*" matches any rest), and an answer (see kit.http.route).
function M.route(method, url, ans)
  if type(method) ~= "string" or type(url) ~= "string" then
    error("kit.http.route(method, url, answer): method and url are strings", 2)
  end
  if ans == nil then
    error("kit.http.route: give an answer (a response table, a function or kit.fails(...))", 2)
  end
  local prefix = url:sub(-1) == "*" and url:sub(1, -2) or nil
  table.insert(M.routes, 1, { method = method:upper(), url = url, prefix = prefix, answer = ans })
end

local function find_route(method, url)
  for _, r in ipairs(M.routes) do
    if (r.method == "*" or r.method == method)
      and (r.url == url or (r.prefix and url:sub(1, #r.prefix) == r.prefix)) then
      return r
    end
  end
end

-- Turns what a route gave into what the script gets: { status, headers
-- (lower-case names), body (a string) }. `json` (or a table body) is
-- encoded, with a JSON content-type unless one is given. `delay` moves the
-- clock, and one at or past the call's timeout times it out.
local function response_of(r, call)
  if type(r) ~= "table" then
    error(string.format("kit.http.route for %s %s: the answer must be a response table "
      .. "({ status = 200, body = \"...\" }), got %s", call.method, call.url, type(r)), 0)
  end
  local headers = {}
  for k, v in pairs(r.headers or {}) do
    headers[tostring(k):lower()] = tostring(v)
  end
  local body = r.body
  if r.json ~= nil or type(body) == "table" then
    body = json.encode(r.json ~= nil and r.json or body)
    headers["content-type"] = headers["content-type"] or "application/json"
  end
  if body ~= nil and type(body) ~= "string" then
    body = tostring(body)
  end
  if r.delay then
    if r.delay >= call.timeout then
      M.advance(call.timeout)
      return nil, string.format("timeout after %.1f s", call.timeout)
    end
    M.advance(r.delay)
  end
  return { status = math.tointeger(r.status) or 200, headers = headers, body = body or "" }
end

-- What the host reads of an option table: its own fields, raw (the host
-- runs none of the script's metamethods while it reads one).
local function raw_fields(t)
  local c = {}
  for k, v in next, t do
    c[k] = v
  end
  return c
end

function M.http_request(opts)
  if type(opts) ~= "table" then
    error(string.format("bad argument #1 to 'request' (table expected, got %s)",
      opts == nil and "no value" or type(opts)), 2)
  end
  opts = raw_fields(opts)
  local url = opt_string(opts, "url", "http.request: '%s'")
  if not url then
    error("http.request: 'url' is required", 2)
  end
  local method = opt_string(opts, "method", "http.request: '%s'")
  local body = opt_string(opts, "body", "http.request: '%s'")
  if method and method:find("[^A-Z]") then
    error(string.format("http.request: method '%s' is not an HTTP method", method), 2)
  end
  M.here("http.request")
  local timeout = M.settings.http_timeout
  if type(opts.timeout) == "number" then
    if not (opts.timeout > 0 and opts.timeout < math.huge) then
      error("http.request: 'timeout' must be a number of seconds > 0", 2)
    end
    timeout = opts.timeout
  elseif opts.timeout ~= nil then
    error("http.request: 'timeout' must be a number of seconds", 2)
  end
  local redirects = opts.redirects
  if redirects ~= nil and not (math.type(redirects) == "integer" and redirects >= 0
      and redirects <= 20) then
    error("http.request: 'redirects' must be an integer from 0 to 20", 2)
  end
  local headers = {}
  if type(opts.headers) == "table" then
    local n = 0
    for k, v in pairs(opts.headers) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
        error("http.request: headers must map names to strings", 2)
      end
      n = n + 1
      if n > 64 then
        error("http.request: more than 64 headers", 2)
      end
      v = tostring(v)
      if k == "" or k:find("[\r\n%z:]") or v:find("[\r\n%z]") then
        error(string.format("http.request: header '%s' has a bad name or value", k), 2)
      end
      if k:lower():sub(1, 11) == "x-cliqhost-" then
        error(string.format("http.request: header '%s': X-Cliqhost-* headers are the host's own", k), 2)
      end
      headers[k] = v
    end
  elseif opts.headers ~= nil then
    error("http.request: 'headers' must be a table", 2)
  end

  local call = { method = method or "GET", url = url, headers = headers, body = body,
    timeout = timeout, redirects = redirects or 0 }
  M.http_calls[#M.http_calls + 1] = call
  local res, err
  if not url:find("^[Hh][Tt][Tt][Pp][Ss]?://") then
    err = "bad url: " .. url .. " is not an http or https URL"
  else
    local route = find_route(call.method, url)
    if not route then
      call.unrouted = true
      err = string.format("kit: no fake for %s %s; set one with kit.http.route(%q, %q, "
        .. "{ status = 200, body = \"...\" })", call.method, url, call.method, url)
    elseif type(route.answer) == "function" then
      local r, e = route.answer(call)
      if M.is_failure(r) then
        err = r.message
      elseif r == nil then
        err = e or "kit: the route's function returned nothing"
      else
        res, err = response_of(r, call)
      end
    elseif M.is_failure(route.answer) then
      err = route.answer.message
    else
      res, err = response_of(route.answer, call)
    end
  end
  call.response, call.error = res, err
  if res then
    return M.wait({ status = res.status, headers = copy(res.headers), body = res.body })
  end
  return M.wait(nil, err)
end

-- ---- cliq.post_* ----------------------------------------------------------

-- Bytes that are not UTF-8 become U+FFFD, as the host does for a string
-- message.
local function replace_bad_utf8(s)
  local out, i = {}, 1
  while true do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      return table.concat(out)
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
end

local function opt_bool(opts, k, default)
  if opts == nil or opts[k] == nil then
    return default
  end
  if type(opts[k]) ~= "boolean" then
    error(string.format("opts.%s must be true or false (got %s)", k, type(opts[k])), 3)
  end
  return opts[k]
end

local function userids_of(opts)
  local u = opts.userids
  if u == nil or type(u) == "string" then
    return u
  end
  if type(u) ~= "table" then
    error("opts.userids must be a list of user ids or a comma-separated string", 3)
  end
  if #u > 100 then
    error(string.format("opts.userids: Cliq takes at most 100 user ids (got %d)", #u), 3)
  end
  local ids = {}
  for i = 1, #u do
    local id = u[i]
    if type(id) ~= "string" and type(id) ~= "number" then
      error(string.format("opts.userids[%d] must be a user id (string or number)", i), 3)
    end
    ids[i] = tostring(id)
  end
  return table.concat(ids, ",")
end

-- What each endpoint answers by default: Cliq's bot incoming webhook
-- replies with the users it reached; the others reply with no body.
local defaults = {
  post_channel = function()
    return true
  end,
  post_bot = function()
    return true
  end,
  bot_incoming = function()
    return { user_ids = json.array() }
  end,
  app_incoming = function()
    return true
  end,
}

local function post(short)
  local fname = "cliq." .. short
  return function(...)
    local n, target, msg, opts = select("#", ...), ...
    if type(target) == "number" then
      target = tostring(target)
    elseif type(target) ~= "string" then
      error(string.format("bad argument #1 to '%s' (string expected, got %s)", short,
        arg_type(n, 1, target)), 2)
    end
    if #target == 0 or #target > 200 then
      error(string.format("bad argument #1 to '%s' (must be a name of 1 to 200 characters)",
        short), 2)
    end
    if target == "." or target == ".." then
      error(string.format("bad argument #1 to '%s' (not a name: '.' and '..' are path steps)",
        short), 2)
    end
    if type(msg) ~= "string" and type(msg) ~= "table" then
      error(string.format("bad argument #2 to '%s' (a message (string or table) expected, "
        .. "got %s)", short, arg_type(n, 2, msg)), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error(string.format("bad argument #3 to '%s' (table expected, got %s)", short,
        type(opts)), 2)
    end
    opts = opts and raw_fields(opts)
    local o = opts or {}
    local token = opt_string(o, "token", "opts.%s") or "default"
    local as_bot = short == "post_channel" and opt_string(o, "as_bot", "opts.%s") or nil
    local appkey = short == "app_incoming" and opt_string(o, "appkey", "opts.%s") or nil
    local wait = opt_bool(opts, "wait", true)
    local broadcast = short == "post_bot" and opt_bool(opts, "broadcast", false) or false
    if short == "app_incoming" and not appkey then
      error("cliq.app_incoming: opts.appkey is required (the app's key)", 2)
    end
    local userids = short == "post_bot" and userids_of(o) or nil
    if short == "post_bot" and not broadcast and (userids == nil or userids == "") then
      error(fname .. ": give opts.userids or opts.broadcast = true", 2)
    end
    M.here(fname)

    if M.tokens then
      local tok = M.tokens[token]
      if tok == nil then
        return nil, string.format("no token named '%s' in the config (a token set from an "
          .. "unset environment variable is missing)", token)
      elseif tok == "disabled" then
        return nil, string.format("token '%s' is disabled in the config", token)
      elseif tok == "unset" then
        return nil, string.format("token '%s' has no value (is its environment variable set?)",
          token)
      end
    end

    local text
    if type(msg) == "string" then
      text = json.encode_value({ text = replace_bad_utf8(msg) })
    else
      local err
      text, err = json.encode_value(msg, "message")
      if not text then
        error(fname .. ": " .. err, 2)
      end
    end
    local message = json.decode(text)
    if short == "post_bot" then
      if json.kind(message) ~= "object" then
        error(fname .. ": the message must be an object (text, card, ...)", 2)
      end
      message.userids = userids ~= "" and userids or nil
      message.broadcast = broadcast or nil
      text = json.encode_value(message)
    end
    -- The outbox's size cap, in the host's words: the host stops encoding
    -- at twice the cap, and then says "more than".
    local max = M.settings.max_post_bytes
    if #text > 2 * max + 64 then
      return nil, string.format("outbox: the post is more than %d bytes, over "
        .. "outbox_max_post_bytes (%d)", 2 * max + 64, max)
    elseif #text > max then
      return nil, string.format("outbox: the post is %d bytes, over outbox_max_post_bytes (%d)",
        #text, max)
    end
    local record = {
      fn = short, target = target, message = message, opts = copy(opts), token = token,
      as_bot = as_bot, appkey = appkey, wait = wait, userids = userids,
      broadcast = broadcast,
    }
    M.posts[#M.posts + 1] = record
    return M.wait(answer(M.cliq_answers[short], record, defaults[short](record)))
  end
end

function M.make_cliq()
  return {
    post_channel = post("post_channel"),
    post_bot = post("post_bot"),
    bot_incoming = post("bot_incoming"),
    app_incoming = post("app_incoming"),
  }
end

function M.on_post(fname, ans)
  if not defaults[fname] then
    error(string.format("kit.cliq.on: no binding cliq.%s (post_channel, post_bot, "
      .. "bot_incoming, app_incoming)", tostring(fname)), 2)
  end
  M.cliq_answers[fname] = ans
end

-- ---- req:respond ----------------------------------------------------------

function M.respond(...)
  local n, req, msg = select("#", ...), ...
  if type(req) ~= "table" then
    error(string.format("calling 'respond' on bad self (table expected, got %s)",
      arg_type(n, 1, req)), 2)
  end
  if type(msg) ~= "string" and type(msg) ~= "table" then
    error(string.format("bad argument #1 to 'respond' (a message (string or table) expected, "
      .. "got %s)", arg_type(n, 2, msg)), 2)
  end
  local t = M.here("req:respond")
  if not t.response_url then
    return nil, "none"
  elseif t.responded then
    return nil, "used"
  elseif M.clock.now - t.received >= M.settings.response_ttl then
    return nil, "expired"
  end
  local text, err = json.encode_output(msg)
  if not text then
    error("req:respond: " .. err, 2)
  end
  t.responded = true
  local record = { kind = "respond", message = copy(msg), output = json.decode(text).output,
    json = text, url = t.response_url, id = t.id }
  M.responses[#M.responses + 1] = record
  return M.wait(answer(M.respond_answer, record, true))
end

-- ---- attachment:download --------------------------------------------------

function M.download(att)
  if type(att) ~= "table" then
    error(string.format("calling 'download' on bad self (table expected, got %s)", type(att)),
      2)
  end
  local cached = M.download_cache[att]
  if cached then
    return cached
  end
  local url = rawget(att, "url")
  if type(url) ~= "string" then
    error("attachment:download: the attachment has no url", 2)
  end
  local t = M.here("attachment:download")
  if M.clock.now - t.received >= M.settings.attachment_ttl then
    return nil, "expired"
  end
  M.downloads[#M.downloads + 1] = { url = url, name = rawget(att, "name") }
  local content = M.files[url]
  if content == nil then
    return M.wait(nil, "kit: no content for the attachment at " .. url
      .. "; make attachments with kit.attachment{ name = ..., content = ... }")
  end
  local bytes, err = answer(content, att)
  if type(bytes) == "string" then
    M.download_cache[att] = bytes
  end
  return M.wait(bytes, err)
end

return M
