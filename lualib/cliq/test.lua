-- cliq.test: unit-test handler scripts offline, with plain lua5.4.
--
-- Loads a handler file as the host would (same sandbox, same `require`),
-- builds realistic Cliq requests for every handler type, runs handlers as
-- the host does (in a coroutine), fakes and records everything a handler
-- waits on or sends out, and has a few assertions and a tiny runner.
--
--   -- scripts/tests/test_deploy.lua
--   local kit = require "cliq.test"
--
--   kit.test("a prod deploy asks for approval", function()
--     local out = kit.invoke(kit.command("deploy", "api prod"))
--     kit.eq(out.card.title, "Approval needed")
--     kit.eq(out.buttons[1].key, "approve:api:prod")
--   end)
--
--   kit.test("the report is posted to #ops", function()
--     kit.http.route("GET", "https://ci.example.com/builds/*", { json = { status = "green" } })
--     local h = kit.load("commands/report.lua")
--     local reply = kit.run(h, kit.command("report", "nightly"))
--     kit.eq(reply, "Posted.")
--     kit.eq(kit.posts[1].target, "ops")
--     kit.contains(kit.posts[1].message.text, "green")
--   end)
--
--   os.exit(kit.run_tests())
--
-- Run it from the project root, with the shipped modules on the path:
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_deploy.lua
--
-- It prints one line per test and a summary, and exits non-zero when a test
-- failed. A word after the file name runs only the tests whose name holds it.
--
-- LOADING
--   kit.scripts_dir               "scripts" (or $CLIQHOST_SCRIPTS)
--   kit.load(path)                -> handlers. path is under kit.scripts_dir
--       ("commands/deploy.lua"), or a path that exists as given. The file runs
--       in the host's sandbox: string, table, math, utf8, coroutine, os.time/
--       clock/date/difftime/getenv, text-only load, pcall, error, ...; json,
--       log, print, http, sleep, cliq, and require (scripts/lib/ first, then
--       lualib/). No io, os.execute, dofile, debug (but traceback). Each load
--       gets fresh globals and fresh module instances. It must return a table
--       of functions, as the host checks (a schedule or a hook: see SCHEDULES
--       AND HOOKS). Calling h.execution(req) runs that handler like kit.run.
--   kit.load_string(text [, name])  -> handlers, from a script's text (for
--       a quick handler inside a test; a name such as "schedules/x.lua" or
--       "hooks/x.lua" loads a schedule or a hook)
--
-- REQUESTS (realistic bodies for every handler in the catalogue; params are
-- deep-merged over the defaults; see "Merging" below)
--   kit.request(type, name, handler, params, opts)   any handler, by short or
--       wire name: kit.request("function", "approval", "form_change", {...}).
--       opts: response_url (a URL, or false for none), timestamp (ms),
--       action (bot menu item), body (merged over the top-level body).
--   kit.command(name, arguments, params)             execution
--   kit.suggestion(name, arguments, params)          suggestion
--   kit.bot(name, handler, params, opts)             e.g. kit.bot("helper",
--       "message", { message = "hi" }) (also sets raw_message and
--       message_details); kit.bot("helper", "action", {}, { action = "Help" })
--   kit.messageaction(name, message, params)         message: text or fields
--   kit.button(name, arguments, params)              kit.button("approval",
--       { key = "approve:api:prod" })
--   kit.form(name, values, params)                   values replace the
--       sample's: kit.form("approval", { reason = "holiday" })
--   kit.func(name, handler, params)                  any function handler
--   kit.widget(name, params)                         view
--   kit.extension(handler, params)
--   kit.link_preview(handler, params)
--   kit.from_body(body)           a request from a whole body (a table or
--       JSON text), e.g. one copied from a log; both handler formats
--   kit.attachment{ name =, content =, contenttype =, comment = }  an
--       attachment for params.attachments; its :download() gives content
--       (or content = kit.fails("...") for nil, err)
--   kit.catalogue                 every handler: { type, wire, key,
--       response_url }
--
--   A request has exactly the host's fields: req.type, req.name,
--   req.handler, req.params, req.body, req.response_url, req.timestamp,
--   req.id, req.action (bot menu actions), and req:respond(msg).
--   Merging: tables merge key by key; a list or an empty table replaces;
--   kit.absent removes a key ({ user = kit.absent }); kit.exactly(t) puts t
--   in without merging. Default user: Scott Fisher, id 123456, admin.
--
-- RUNNING
--   kit.run(h, req)     -> the handler's return value, info. h is what
--       kit.load returned (the handler is req.handler) or a function. Runs
--       it in a coroutine, as the host does, so sleep, http.request,
--       req:respond, cliq.post_* and download work. Raises with the
--       handler's error and traceback, if it yields outside a host call, or
--       if the reply is something the host could not send. info.elapsed is
--       the fake time it took; info.late is true past kit.settings.deadline
--       (4.5 s), when the host would have answered "Working on it" and sent
--       the result to response_url (recorded in kit.responses, kind "late").
--   kit.invoke(req [, h])  -> what the chat user sees: the reply as sent
--       (output of kit.output). Loads the script the host would pick for
--       req when h is not given.
--   kit.output(reply)   -> { output = ... } as Cliq gets it (decoded), and
--       its JSON text: a table as is, a string s as { text = s }, nil as "".
--
-- SCHEDULES AND HOOKS (scripts/schedules/<name>.lua, scripts/hooks/<name>.lua)
--   kit.load("schedules/standup.lua") checks the table as the host's loader
--       does: run a function, exactly one of cron and every a string,
--       timezone a string and only with cron, catch_up a boolean, no other
--       field; else it raises naming the file and the field. The cron or
--       every text itself is not parsed here: `cliqhost check` does that. A
--       hook must return functions, receive among them. A path in a
--       schedules/ or hooks/ folder (also kit.load_string's name) is loaded
--       as one. The loaded table's run(opts) / receive(opts) run like
--       kit.schedule / kit.hook.
--   kit.schedule(name_or_loaded, opts)  -> run's return value (the host
--       ignores it), info { elapsed, job }. name: "standup" for
--       schedules/standup.lua, a path, or what kit.load returned. Runs
--       run(job) as a task at a tick, with every binding and fake a handler
--       has (no req, no reply). job = { name = "standup", scheduled_at =
--       opts.at (epoch seconds, or a time as kit.clock.set takes it; default
--       the fake clock's now, in whole seconds), id (like a request id, in
--       the run's log records), catch_up = opts.catch_up == true (only for
--       a schedule with catch_up = true) }. An opts.at later than the clock
--       moves the clock to it (the run starts at its tick); an earlier one
--       leaves it (a late or catch-up run). Raises with run's error and
--       traceback, as kit.run does.
--   kit.hook(name, opts)  -> body, status, info { elapsed, json, req }: the
--       reply as the other tool gets it (body decoded from the JSON sent),
--       for POST /hooks/<name> once its signature was verified (the kit does
--       not model the schemes). req = { name, id, method = "POST", body,
--       text, headers, query }: opts.body a table is sent as JSON (req.text
--       the JSON text, req.body the table as the host decodes it); a string
--       is req.text, and req.body is it decoded when it is a JSON object
--       or array, else the text too (JSON's scalars as well); no body is "". opts.headers (names lower-cased; a
--       content-type is added for a body: application/json, or text/plain
--       for a non-JSON string) and opts.query map names to strings. The
--       reply: a table is the body, a string s { message = s }, nothing
--       { ok = true }; receive's second value is the status (default 200;
--       an integer 200-599, as the host takes, else kit.hook raises, as
--       for a reply JSON cannot carry).
--
-- FAKES (cleared by kit.reset, which kit.test runs before every test)
--   kit.clock.now() / kit.clock.set(t) / kit.clock.advance(s)   the fake
--       clock (epoch seconds; set also takes "2026-11-23T09:30:00Z" or a UTC
--       date table). os.time and os.date follow it; os.clock counts the
--       seconds it moved. sleep(s) moves it at once. Starts at
--       2026-11-23 09:30:00 UTC.
--   kit.clock.zone(hours)       the local time zone of os.date and
--       os.time(t): UTC until set, whatever the machine's zone
--   kit.env.NAME = "value"      what os.getenv("NAME") gives scripts (nil
--       for anything not set; the real environment is never read)
--   kit.http.route(method, url, answer)   answers http.request: method or
--       "*"; url exact, or ending in "*" to match a prefix; answer a table
--       { status = 200, headers = {}, body = "..." | json = value, delay = s }
--       (a delay at or past the call's timeout times it out), a function
--       (call) -> such a table or nil, err, or kit.fails("message"). The
--       newest matching route wins. A request with no route returns nil,
--       "kit: no fake for GET <url>; ..." (the host's way to fail).
--   kit.http.calls              every request: { method, url, headers, body,
--       timeout, redirects, response | error, unrouted }
--   kit.posts                   every cliq.post_* call: { fn, target,
--       message (the JSON body, decoded), opts, token, as_bot, appkey,
--       userids, broadcast, wait }
--   kit.cliq.on(fn, answer)     what cliq.<fn> returns: a value, a function
--       (record) -> value, or kit.fails("HTTP 404: channel not found").
--       Default: true; bot_incoming returns { user_ids = [] }.
--   kit.cliq.tokens{ default = true, alerts = "disabled", ops = "unset" }
--       the config's tokens; unknown, disabled or unset ones fail with the
--       host's messages. Until set, every token name works.
--   kit.responses               every req:respond (kind "respond") and late
--       reply (kind "late"): { kind, message, output, json, url, id }.
--       req:respond gives nil, "none" (no response_url), "used" (second
--       call) or "expired" (after kit.settings.response_ttl, 120 s).
--   kit.store                   the store scripts share, in memory: empty
--       at each test's start, its time-to-live on the fake clock.
--       kit.store.get/set/delete/list as scripts call them (but raising on
--       a failure), kit.store.keys() every live key, kit.store.fails(msg)
--       every store call returns nil, msg (nil: stop), and
--       kit.store.interfere(key, v1, v2, ...) another worker's writes to key
--       during store.update's next tries, one a try, each a conflict
--       (json.null deletes)
--   kit.on_respond(answer)      what req:respond returns (default true)
--   kit.fails(message)          an answer that makes a fake return nil, message
--   kit.logs                    every log.* and print: { level, msg, script,
--       id }; kit.log_text() joins them as "info: msg" lines
--   kit.sleeps, kit.downloads   every sleep and attachment download
--   kit.settings                the host's timings the fakes use, in seconds:
--       deadline (4.5), response_ttl (120), attachment_ttl (60), http_timeout
--       (10); and max_post_bytes (65536, the host's outbox_max_post_bytes):
--       a larger cliq.post_* returns nil, "outbox: the post is N bytes, over
--       outbox_max_post_bytes (M)" and is not recorded; store_max_value_bytes
--       (262144) and store_max_keys (100000), as the host's settings
--   kit.reset()                 clears all of the above, puts back the
--       settings and the clock (kit.scripts_dir stays as set)
--
-- CHECKING
--   kit.test(name, fn); os.exit(kit.run_tests())
--   kit.eq(actual, expected [, what])  kit.contains(haystack, needle [, what])
--   kit.matches(s, pattern [, what])   kit.raises(fn [, needle [, what]])
--   kit.fail(message)                  kit.show(value)
--   kit.json                           the json module scripts see
--
-- Where the kit differs from the host: the CPU, memory and run-time limits
-- are not modelled, nor the host's own log lines, nor http_allow (a routed
-- URL is answered whatever address it names; make a fake return
-- kit.fails("refused: ...") to test a refusal); json.null is a table (a
-- userdata in the host) and json.encode writes object keys sorted; every
-- fake answers at once (only the fake clock tells time), so the outbox
-- never fills ("outbox full" is not modelled), and a post's size is that of
-- the kit's JSON, which may differ from the host's by a few bytes. A
-- schedule runs only when kit.schedule runs it: no timer, no lock across
-- hosts, no skipped overlap, no cron or every parsing; a hook's signature
-- scheme and body cap are not modelled (kit.hook is the request after
-- them). Like the host, the kit removes string.dump and hides the string
-- metatable, here for the whole test process, and it seeds math.random the
-- same before each test.
-- tests/e2e/test_kit_parity.py checks the kit's replies and error strings
-- against the real host.

local json = require "cliq.test.json"
local bodies = require "cliq.test.bodies"
local fakes = require "cliq.test.fakes"
local host = require "cliq.test.host"
local check = require "cliq.test.assert"
local store = require "cliq.test.store"

local kit = {}

kit.json = json
kit.scripts_dir = os.getenv("CLIQHOST_SCRIPTS") or "scripts"
kit.settings = fakes.settings

-- ---- the fakes' controls and recorders ------------------------------------

kit.env = fakes.env
kit.logs = fakes.logs
kit.posts = fakes.posts
kit.responses = fakes.responses
kit.sleeps = fakes.sleeps
kit.downloads = fakes.downloads
kit.fails = fakes.fails

kit.http = { calls = fakes.http_calls, route = fakes.route }

kit.cliq = {
  on = fakes.on_post,
  tokens = function(map)
    if map ~= nil and type(map) ~= "table" then
      error("kit.cliq.tokens{ name = true | \"disabled\" | \"unset\", ... }", 2)
    end
    fakes.tokens = map
  end,
}

-- The store scripts share. A test seeds and inspects it with the same calls
-- scripts make (they raise on a failure here, to keep tests short).
local function strict(fn)
  return function(...)
    local v, err = fn(...)
    if v == nil and err ~= nil then
      error("kit.store: " .. err, 2)
    end
    return v, err
  end
end

kit.store = {
  get = strict(store.get),
  set = strict(store.set),
  delete = strict(store.delete),
  list = strict(store.list),
  ---@return string[] keys  every key that has not expired, in order
  keys = function()
    local keys = {}
    local items, after
    repeat
      items, after = store.list("", { limit = 1000, after = after })
      for _, it in ipairs(items) do
        keys[#keys + 1] = it.key
      end
    until not after
    return keys
  end,
  ---@param message string|nil  every store call returns nil, message (nil: none)
  fails = function(message)
    if message ~= nil and type(message) ~= "string" then
      error("kit.store.fails: give the error scripts get, or nil to stop failing", 2)
    end
    store.failure = message
  end,
  ---Another worker's writes, made between a store.update's read and its
  ---write, one a try: each makes that try a conflict (json.null deletes).
  ---@param key string
  interfere = function(key, ...)
    local q = store.interference[key] or {}
    for i = 1, select("#", ...) do
      q[#q + 1] = (select(i, ...))
    end
    store.interference[key] = q
  end,
}

---@param answer any  what req:respond returns (default true)
function kit.on_respond(answer)
  fakes.respond_answer = answer
end

---@return string
function kit.log_text()
  local lines = {}
  for i, l in ipairs(fakes.logs) do
    lines[i] = l.level .. ": " .. l.msg
  end
  return table.concat(lines, "\n")
end

local function utc_seconds(t, what)
  if not (t.year and t.month and t.day) then
    error(what .. ": a date table needs year, month and day (UTC)", 4)
  end
  return fakes.days_from_civil(t.year, t.month, t.day) * 86400 + (t.hour or 0) * 3600
    + (t.min or 0) * 60 + (t.sec or 0)
end

-- Epoch seconds of a time given as epoch seconds, "2026-11-23T09:30:00Z"
-- or a UTC date table; `what` names the caller in errors, raised at the
-- caller's caller.
local function epoch_of(t, what)
  if type(t) == "string" then
    local y, mo, d, h, mi, s = t:match("^(%d+)-(%d+)-(%d+)[T ](%d+):(%d+):(%d+)Z?$")
    if not y then
      error(what .. ": write a time as \"2026-11-23T09:30:00Z\" (UTC)", 3)
    end
    t = { year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
      min = tonumber(mi), sec = tonumber(s) }
  end
  if type(t) == "table" then
    t = utc_seconds(t, what)
  end
  if type(t) ~= "number" then
    error(what .. ": give epoch seconds, a UTC date table or \"YYYY-MM-DDTHH:MM:SSZ\"", 3)
  end
  return t
end

kit.clock = {
  now = fakes.now,
  advance = function(seconds)
    if type(seconds) ~= "number" or seconds < 0 then
      error("kit.clock.advance: give a number of seconds >= 0", 2)
    end
    fakes.advance(seconds)
  end,
  set = function(t)
    fakes.clock.now = epoch_of(t, "kit.clock.set")
  end,
  zone = function(hours)
    if type(hours) ~= "number" then
      error("kit.clock.zone: give the local zone's hours east of UTC (5.5 for UTC+05:30)", 2)
    end
    fakes.clock.offset = math.floor(hours * 3600 + 0.5)
  end,
}

local next_id = 0

-- A new request (or run) id, as the host's: 16 hex digits.
local function new_id()
  next_id = next_id + 1
  return string.format("%016x", 0x5eed000000000000 + next_id)
end

---Clears the fakes, the settings and the clock.
function kit.reset()
  fakes.reset()
  store.reset()
  next_id = 0
  math.randomseed(1) -- the same "random" numbers in every test
end

-- ---- loading --------------------------------------------------------------

-- handlers table kit.load returned -> { path, handlers, vm }
local loaded = setmetatable({}, { __mode = "k" })

local run_handler -- (fn, label, req, level): see "running"

-- The folder of each kind of script that is not a table of handlers.
local kind_folders = { schedules = "schedule", hooks = "hook" }

-- "schedule" for a path in a schedules/ folder, "hook" in hooks/, else nil.
local function kind_of(path)
  return kind_folders[path:match("([^/]+)/[^/]+$") or ""]
end

local SCHEDULE_FIELDS = { cron = "string", every = "string", timezone = "string",
  catch_up = "boolean", run = "function" }

-- The host's check of a schedule's table (its cron and every syntax are
-- the host's to check: `cliqhost check`). Read raw, as the host reads it.
local function check_schedule(v, path)
  if type(v) ~= "table" then
    error(string.format("%s: a schedule must return a table { cron = \"...\" or every = "
      .. "\"...\", run = function(job) ... end } (returned %s)", path, host.type_name(v)), 0)
  end
  for k, x in next, v do
    local want = type(k) == "string" and SCHEDULE_FIELDS[k]
    if not want then
      error(string.format("%s: unknown field %s (a schedule has cron, every, timezone, "
        .. "catch_up and run)", path, check.show(k)), 0)
    elseif type(x) ~= want then
      error(string.format("%s: field '%s' must be a %s (is a %s)", path, k, want, type(x)), 0)
    end
  end
  if rawget(v, "run") == nil then
    error(path .. ": field 'run' must be a function (is a nil)", 0)
  end
  local cron, every = rawget(v, "cron"), rawget(v, "every")
  if cron ~= nil and every ~= nil then
    error(path .. ": fields 'cron' and 'every' both set; give one of them", 0)
  elseif cron == nil and every == nil then
    error(path .. ": field 'cron' (\"0 9 * * 1-5\") or 'every' (\"30s\", \"5m\", \"2h\") "
      .. "is required", 0)
  elseif every ~= nil and rawget(v, "timezone") ~= nil then
    error(path .. ": field 'timezone' goes only with 'cron' (every counts from any time)", 0)
  end
end

-- A hook's table: functions, with receive among them.
local function check_hook(v, path)
  host.check_handlers(v, path)
  if rawget(v, "receive") == nil then
    error(path .. ": a hook must return { receive = function(req) ... end } (field "
      .. "'receive' is a nil)", 0)
  end
end

local checks = { schedule = check_schedule, hook = check_hook }

-- The table kit.load returns: the handlers, each running like kit.run; for
-- a schedule, its fields and run(opts) running like kit.schedule; for a
-- hook, receive(opts) running like kit.hook.
local function wrap(handlers, vm, path, kind)
  local h = {}
  loaded[h] = { path = path, handlers = handlers, vm = vm, kind = kind,
    name = path:match("([^/]+)%.lua$") or path }
  if kind == "schedule" then
    for k, v in next, handlers do
      h[k] = v
    end
    h.run = function(opts)
      return kit.schedule(h, opts)
    end
  elseif kind == "hook" then
    h.receive = function(opts)
      return kit.hook(h, opts)
    end
  else
    for name, fn in pairs(handlers) do
      h[name] = function(req)
        return run_handler(fn, path .. " " .. name, req, 2, vm)
      end
    end
  end
  return h
end

-- Loads a script's text as kit.load does, checked as its kind's.
local function load_as(dir, data, path, script)
  local kind = kind_of(path)
  local t, vm = host.load_script(dir, data, path, script, checks[kind])
  return wrap(t, vm, path, kind)
end

local function exists(path)
  return host.read(path) ~= nil
end

local type_folders = { commands = true, bots = true, messageactions = true, functions = true,
  widgets = true, schedules = true, hooks = true }

-- The scripts folder of a script's path: the folder above its type's
-- folder ("x/commands/deploy.lua" -> "x"), else the script's own folder.
local function scripts_dir_of(path)
  local dir, folder = path:match("^(.-)/?([^/]*)/[^/]+$")
  if type_folders[folder] then
    return dir ~= "" and dir or "."
  end
  return path:match("^(.*)/[^/]+$") or "."
end

-- kit.load's work; `fname` and `level` say where a missing file is reported.
local function load_file(path, fname, level)
  if type(path) ~= "string" then
    error(fname .. ": give the script's path under the scripts folder, e.g. "
      .. "\"commands/deploy.lua\"", level)
  end
  local dir = kit.scripts_dir
  local full = dir .. "/" .. path
  if not exists(full) then
    if not exists(path) then
      error(string.format("%s: no %s (the scripts folder is %q; set kit.scripts_dir "
        .. "or CLIQHOST_SCRIPTS to change it)", fname, full, dir), level)
    end
    full = path
  end
  if full == path then
    dir = scripts_dir_of(path)
  end
  local script = full:sub(1, #dir + 1) == dir .. "/" and full:sub(#dir + 2) or full
  return load_as(dir, host.read(full), full, script)
end

---@param path string  under kit.scripts_dir ("commands/deploy.lua") or as given
---@return table<string, function> handlers
function kit.load(path)
  local h = load_file(path, "kit.load", 3) -- not a tail call: level 3 is the caller
  return h
end

---@param text string
---@param name? string
---@return table<string, function> handlers
function kit.load_string(text, name)
  if type(text) ~= "string" then
    error("kit.load_string: give the script's text", 2)
  end
  name = name or "(kit.load_string)"
  return load_as(kit.scripts_dir, text, name, name)
end

-- ---- requests -------------------------------------------------------------

kit.catalogue = {}
for i, e in ipairs(bodies.catalogue) do
  kit.catalogue[i] = { type = e.type, wire = e.wire, key = e.key, response_url = e.response_url }
end

kit.absent = setmetatable({}, { __name = "kit.absent", __tostring = function()
  return "kit.absent"
end })

local Exactly = { __name = "kit.exactly" }

---@param t table
---@return table
function kit.exactly(t)
  return setmetatable({ value = t }, Exactly)
end

local function is_plain_table(v)
  return type(v) == "table" and not rawequal(v, json.null) and getmetatable(v) ~= Exactly
    and v ~= kit.absent
end

-- Merges `over` into `base` (changing base): objects merge key by key; a
-- list, an empty table, or anything else replaces.
local function merge(base, over)
  for k, v in pairs(over) do
    local b = base[k]
    if v == kit.absent then
      base[k] = nil
    elseif getmetatable(v) == Exactly then
      base[k] = fakes.copy(v.value)
    elseif is_plain_table(v) and is_plain_table(b) and next(v) ~= nil and v[1] == nil
      and json.kind(v) ~= "array" and json.kind(b) ~= "array" then
      merge(b, v)
    elseif is_plain_table(v) then
      local c = fakes.copy(v)
      if json.kind(b) == "array" and json.kind(c) == nil and next(c) == nil then
        json.array(c) -- an empty list stays a list
      end
      base[k] = c
    else
      base[k] = v
    end
  end
  return base
end

local request_mt = { __name = "cliq.request", __index = { respond = fakes.respond },
  __metatable = false }
local attachment_mt = { __name = "cliq.attachment", __index = { download = fakes.download },
  __metatable = false }

-- A request object from a decoded body, as host/script/bind_req.c builds it.
---@param body table|string
---@return cliq.Request
function kit.from_body(body)
  local text, err
  if type(body) == "string" then
    text = body
  elseif type(body) == "table" then
    text, err = json.encode_value(body, "body")
    if not text then
      error("kit: the request body cannot be sent as JSON: " .. err, 2)
    end
  else
    error("kit.from_body: give a body table or JSON text", 2)
  end
  local b
  b, err = json.decode(text)
  if b == nil then
    error("kit.from_body: body is not valid JSON: " .. err, 2)
  end
  if json.kind(b) ~= "object" then
    error("kit.from_body: body must be a JSON object", 2)
  end
  local type_ = b.type
  if type(type_) ~= "string" or type_ == "" or not bodies.paths[type_] then
    error("kit.from_body: \"type\" must be one of command, bot, messageaction, function, "
      .. "widget, extension, link_preview (got " .. check.show(type_) .. ")", 2)
  end
  local wire, action
  if type(b.handler) == "string" then
    wire, action = b.handler, b.handler_name
  elseif type(b.handler) == "table" and type(b.handler.type) == "string" then
    wire, action = b.handler.type, b.handler.name
    if type(action) ~= "string" then
      action = b.handler_name
    end
  else
    error("kit.from_body: \"handler\" must be an object with a \"type\" string, or a string", 2)
  end
  local entry = bodies.find(type_, wire)
  local key = entry and entry.key or wire:gsub("_handler$", "")
  local name
  if bodies.paths[type_]:find("%%s") then
    name = type_ == "bot" and b.unique_name ~= "" and b.unique_name or b.name
    if type(name) ~= "string" or name == "" then
      error(string.format("kit.from_body: a %s request needs a component name (\"%s\")", type_,
        type_ == "bot" and "unique_name" or "name"), 2)
    end
  end
  local params = b.params
  if json.kind(params) ~= "object" then
    if params ~= nil and not rawequal(params, json.null) then
      error('kit.from_body: "params" must be an object', 2)
    end
    params = json.object()
  elseif type(params.attachments) == "table" then
    for _, a in ipairs(params.attachments) do
      if type(a) == "table" and type(a.url) == "string" then
        debug.setmetatable(a, attachment_mt)
      end
    end
  end
  local req = {
    type = type_, name = name, handler = key, params = params, body = b,
    action = type_ == "bot" and type(action) == "string" and action or nil,
    id = new_id(),
    response_url = type(b.response_url) == "string" and b.response_url or nil,
    timestamp = type(b.timestamp) == "number" and b.timestamp or nil,
  }
  return debug.setmetatable(req, request_mt)
end

local function handler_list(type_)
  return table.concat(bodies.keys(type_), ", ")
end

---@param type_ string
---@param name? string
---@param handler string  short or wire name
---@param params? table
---@param opts? { response_url?: string|false, timestamp?: integer, action?: string, body?: table }
---@return cliq.Request
function kit.request(type_, name, handler, params, opts)
  if not bodies.paths[type_] then
    error(string.format("kit.request: unknown type %s (command, bot, messageaction, function, "
      .. "widget, extension, link_preview)", check.show(type_)), 2)
  end
  local entry = bodies.find(type_, handler)
  if not entry then
    error(string.format("kit.request: %s has no handler %s (%s)", type_, check.show(handler),
      handler_list(type_)), 2)
  end
  local per_component = bodies.paths[type_]:find("%%s")
  if per_component and (type(name) ~= "string" or name == "") then
    error(string.format("kit.request: a %s request needs a component name", type_), 2)
  end
  if params ~= nil and type(params) ~= "table" then
    error("kit.request: params must be a table", 2)
  end
  opts = opts or {}
  local p = merge(bodies.params(entry), params or {})
  if type_ == "bot" and entry.key == "message" and params and type(params.message) == "string" then
    -- One message, the way Cliq sends it: in three places.
    if params.raw_message == nil then
      p.raw_message = params.message
    end
    if type(p.message_details) == "table" and type(p.message_details.message) == "table"
      and type(params.message_details) ~= "table" then
      p.message_details.message.text = params.message
    end
  end
  local body = {
    type = type_, handler = { type = entry.wire }, params = p,
    timestamp = opts.timestamp or math.floor(fakes.now() * 1000),
  }
  if per_component then
    body.name = name
    if type_ == "bot" then
      body.unique_name = name
    end
  end
  if entry.key == "action" then
    body.handler.name = opts.action or "Say Hi"
    body.sub_action = ""
  end
  local url = opts.response_url
  if url == nil then
    url = entry.response_url and bodies.RESPONSE_URL or nil
  end
  body.response_url = url or nil
  if opts.body then
    merge(body, opts.body)
  end
  local text, err = json.encode_value(body, "body")
  if not text then
    error("kit.request: the request cannot be sent as JSON: " .. err, 2)
  end
  return kit.from_body(text)
end

-- params with key set to value (when given), without changing the caller's
-- table.
local function with(params, key, value)
  local p = {}
  for k, v in pairs(params or {}) do
    p[k] = v
  end
  if value ~= nil then
    p[key] = value
  end
  return p
end

---@param name string
---@param arguments? string
---@param params? table
---@return cliq.Request
function kit.command(name, arguments, params)
  return kit.request("command", name, "execution", with(params, "arguments", arguments))
end

---@param name string
---@param arguments? string
---@param params? table
---@return cliq.Request
function kit.suggestion(name, arguments, params)
  return kit.request("command", name, "suggestion", with(params, "arguments", arguments))
end

---@param name string
---@param handler string
---@param params? table
---@param opts? table
---@return cliq.Request
function kit.bot(name, handler, params, opts)
  return kit.request("bot", name, handler, params, opts)
end

---@param name string
---@param message? string|table
---@param params? table
---@return cliq.Request
function kit.messageaction(name, message, params)
  local p = with(params)
  if message ~= nil then
    local m = bodies.message()
    if type(message) == "string" then
      m.text = message
    else
      merge(m, message)
    end
    p.message = p.message or kit.exactly(m)
    p.messages = p.messages or kit.exactly({ count = 1, list = json.array({ m }) })
  end
  return kit.request("messageaction", name, "execution", p)
end

---@param name string
---@param arguments? table
---@param params? table
---@return cliq.Request
function kit.button(name, arguments, params)
  return kit.request("function", name, "button",
    with(params, "arguments", arguments and kit.exactly(arguments)))
end

---@param name string
---@param values? table
---@param params? table
---@return cliq.Request
function kit.form(name, values, params)
  local p = with(params)
  local form = with(p.form)
  if values ~= nil then
    form.values = kit.exactly(values)
  end
  p.form = form
  return kit.request("function", name, "form", p)
end

---@param name string
---@param handler string
---@param params? table
---@return cliq.Request
function kit.func(name, handler, params)
  return kit.request("function", name, handler, params)
end

---@param name string
---@param params? table
---@return cliq.Request
function kit.widget(name, params)
  return kit.request("widget", name, "view", params)
end

---@param handler string
---@param params? table
---@return cliq.Request
function kit.extension(handler, params)
  return kit.request("extension", nil, handler, params)
end

---@param handler string
---@param params? table
---@return cliq.Request
function kit.link_preview(handler, params)
  return kit.request("link_preview", nil, handler, params)
end

local next_file = 0

---@param fields { name?: string, content?: string|table, contenttype?: string, comment?: string }
---@return cliq.Attachment
function kit.attachment(fields)
  fields = fields or {}
  next_file = next_file + 1
  local name = fields.name or ("file" .. next_file .. ".txt")
  local url = fields.url or string.format(
    "https://files.zoho.com/cliq/attachments/%d/%s?expires=60", 3000 + next_file,
    name:gsub("[^%w%.%-_]", "_"))
  local content = fields.content
  if content == nil then
    content = ""
  end
  fakes.files[url] = content
  return {
    name = name, comment = fields.comment or "", id = fields.id or ("att_" .. (3000 + next_file)),
    url = url, contenttype = fields.contenttype or "text/plain",
  }
end

-- ---- running --------------------------------------------------------------

local function reply_error(label, msg)
  error(label .. ": " .. msg, 0)
end

local function check_request(req, what, level)
  if debug.getmetatable(req) ~= request_mt then
    error(what .. ": req must be a request made by the kit (kit.request, kit.command, kit.bot, "
      .. "...), got " .. check.show(req), level + 1)
  end
end

-- Runs fn as the handler for req; label names it in errors.
run_handler = function(fn, label, req, level, vm)
  check_request(req, "kit.run(h, req)", level + 1)
  local task, reply = host.run(fn, req, vm and vm.strings)
  local t = type(reply)
  if reply ~= nil and t ~= "string" and t ~= "table" then
    reply_error(label, "handler returned a " .. t
      .. "; return a table (a message), a string or nothing")
  end
  local text, err = json.encode_output(reply)
  if not text then
    reply_error(label, err)
  end
  local elapsed = fakes.now() - task.received
  local info = { elapsed = elapsed, late = elapsed >= fakes.settings.deadline,
    responded = task.responded }
  if info.late and task.response_url and not task.responded then
    fakes.responses[#fakes.responses + 1] = { kind = "late", message = fakes.copy(reply),
      output = json.decode(text).output, json = text, url = task.response_url, id = task.id }
  end
  return reply, info
end

---@param h table|function
---@param req cliq.Request
---@return any reply
---@return { elapsed: number, late: boolean } info
function kit.run(h, req)
  check_request(req, "kit.run(h, req)", 2)
  if type(h) == "function" then
    return run_handler(h, req.handler, req, 2)
  end
  local l = loaded[h]
  if l and l.kind then
    error(string.format("kit.run: %s is a %s; run it with kit.%s", l.path, l.kind, l.kind), 2)
  elseif l then
    -- Raw, as the host looks a handler up: a strict module's __index is not run.
    local fn = rawget(l.handlers, req.handler)
    if not fn then
      local names = {}
      for k in next, l.handlers do
        names[#names + 1] = k
      end
      table.sort(names)
      error(string.format("kit.run: %s has no handler '%s' (it has: %s)", l.path, req.handler,
        #names > 0 and table.concat(names, ", ") or "none"), 2)
    end
    return run_handler(fn, l.path .. " " .. req.handler, req, 2, l.vm)
  elseif type(h) == "table" and type(h[req.handler]) == "function" then
    return run_handler(h[req.handler], req.handler, req, 2)
  end
  error("kit.run(h, req): h must be what kit.load returned (with a '" .. req.handler
    .. "' handler), or a function", 2)
end

---@param reply any
---@return table output  { output = ... }
---@return string json
function kit.output(reply)
  local text, err = json.encode_output(reply)
  if not text then
    error("kit.output: " .. err, 2)
  end
  return json.decode(text), text
end

---@param req cliq.Request
---@param h? table|function
---@return any reply
function kit.invoke(req, h)
  check_request(req, "kit.invoke(req)", 2)
  if h == nil then
    local path = bodies.paths[req.type]:format(req.name)
    h = kit.load(path)
  end
  local reply = kit.run(h, req)
  return kit.output(reply).output
end

-- ---- schedules and hooks --------------------------------------------------

-- The loaded script of a kind ("schedule" or "hook") from its name
-- ("standup": scripts/schedules/standup.lua), its path, or what kit.load
-- returned; `fname` names the caller in errors.
local function script_of(v, kind, fname)
  if type(v) == "string" then
    local path = v
    if not v:find("/", 1, true) and not v:find("%.lua$") then
      path = kind .. "s/" .. v .. ".lua"
    end
    v = load_file(path, fname, 4)
  end
  local l = loaded[v]
  if not l or l.kind ~= kind then
    local example = kind == "schedule" and "standup" or "alertmanager"
    error(string.format("%s: give a %s's name (\"%s\" for %ss/%s.lua), its path or what "
      .. "kit.load returned for one, got %s", fname, kind, example, kind, example,
      l and l.path or check.show(v)), 3)
  end
  return l
end

-- opts as a table of known options (a misspelt one is an error, not ignored).
local function options(opts, fname, known)
  if opts == nil then
    return {}
  elseif type(opts) ~= "table" then
    error(string.format("%s: opts must be a table (got %s)", fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do
        names[#names + 1] = n
      end
      table.sort(names)
      error(string.format("%s: unknown option %s (%s)", fname, check.show(k),
        table.concat(names, ", ")), 3)
    end
  end
  return opts
end

---Runs a schedule's run(job) as the host runs it at a tick (see SCHEDULES
---AND HOOKS above).
---@param name_or_loaded string|table  "standup" (scripts/schedules/standup.lua), a path, or what kit.load returned
---@param opts? { at?: integer|string|table, catch_up?: boolean }
---@return any result  what run returned (the host ignores it)
---@return { elapsed: number, job: cliq.Job } info
function kit.schedule(name_or_loaded, opts)
  local l = script_of(name_or_loaded, "schedule", "kit.schedule")
  opts = options(opts, "kit.schedule", { at = true, catch_up = true })
  local at = math.floor(fakes.now())
  if opts.at ~= nil then
    at = math.tointeger(epoch_of(opts.at, "kit.schedule: opts.at"))
    if not at then
      error("kit.schedule: opts.at must be a whole second (a tick)", 2)
    end
    if at > fakes.now() then
      fakes.clock.now = at -- the run starts at its tick
    end
  end
  if opts.catch_up ~= nil and type(opts.catch_up) ~= "boolean" then
    error("kit.schedule: opts.catch_up must be true or false", 2)
  elseif opts.catch_up and not rawget(l.handlers, "catch_up") then
    error(string.format("kit.schedule: %s has no catch_up = true; the host makes no catch-up "
      .. "run of it", l.path), 2)
  end
  local job = { name = l.name, scheduled_at = at, id = new_id(), catch_up = opts.catch_up == true }
  local task, result = host.run(rawget(l.handlers, "run"), job, l.vm.strings)
  return result, { elapsed = fakes.now() - task.received, job = job }
end

-- Headers or query as the host gives them: string values, header names in
-- lower case.
local function string_map(t, fname, what, lower)
  local m = {}
  if t == nil then
    return m
  elseif type(t) ~= "table" then
    error(string.format("%s: opts.%s must be a table of names to strings", fname, what), 3)
  end
  for k, v in pairs(t) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      error(string.format("%s: opts.%s must map names to strings (%s = %s)", fname, what,
        check.show(k), check.show(v)), 3)
    end
    m[lower and k:lower() or k] = tostring(v)
  end
  return m
end

---Sends a hook request to a hook's receive(req) as the host does for
---POST /hooks/<name> once verified (see SCHEDULES AND HOOKS above).
---@param name string|table  "alertmanager" (scripts/hooks/alertmanager.lua), a path, or what kit.load returned
---@param opts? { body?: table|string, headers?: table<string, string>, query?: table<string, string> }
---@return any body  the reply's JSON body, decoded
---@return integer status
---@return { elapsed: number, json: string, req: cliq.HookRequest } info
function kit.hook(name, opts)
  local l = script_of(name, "hook", "kit.hook")
  opts = options(opts, "kit.hook", { body = true, headers = true, query = true })
  local headers = string_map(opts.headers, "kit.hook", "headers", true)
  local query = string_map(opts.query, "kit.hook", "query", false)
  local text, body, err = "", ""
  if type(opts.body) == "table" then
    text, err = json.encode_value(opts.body, "body")
    if not text then
      error("kit.hook: opts.body cannot be sent as JSON: " .. err, 2)
    end
    body = json.decode(text)
  elseif type(opts.body) == "string" then
    -- As the host: an object or an array is decoded, anything else
    -- (JSON's scalars too) is the text.
    text = opts.body
    body = text:find("^[ \t\r\n]*[%[{]") and json.decode(text)
    if type(body) ~= "table" then
      body = text
    end
  elseif opts.body ~= nil then
    error("kit.hook: opts.body must be a table (sent as JSON) or a string", 2)
  end
  if opts.body ~= nil and headers["content-type"] == nil then
    headers["content-type"] = type(body) == "string" and "text/plain; charset=utf-8"
      or "application/json"
  end
  local req = { name = l.name, id = new_id(), method = "POST", body = body, text = text,
    headers = headers, query = query }
  local label = l.path .. " receive"
  local task, reply, status = host.run(rawget(l.handlers, "receive"), req, l.vm.strings)
  local code = status == nil and 200 or type(status) == "number" and math.tointeger(status)
  if not code or code < 200 or code > 599 then
    reply_error(label, "the status (the second value returned) must be an integer from 200 "
      .. "to 599, got " .. check.show(status))
  end
  local t = type(reply)
  if reply == nil then
    reply = { ok = true }
  elseif t == "string" then
    reply = { message = reply }
  elseif t ~= "table" then
    reply_error(label, "receive returned a " .. t
      .. "; return a table (the JSON body), a string or nothing")
  end
  text, err = json.encode_value(reply, "reply")
  if not text then
    reply_error(label, err)
  end
  return json.decode(text), code,
    { elapsed = fakes.now() - task.received, json = text, req = req }
end

-- ---- checking -------------------------------------------------------------

kit.eq = check.eq
kit.contains = check.contains
kit.matches = check.matches
kit.raises = check.raises
kit.fail = check.fail
kit.show = check.show

local registered = {}

---@param name string
---@param fn function
function kit.test(name, fn)
  if type(name) ~= "string" or type(fn) ~= "function" then
    error("kit.test(name, function() ... end)", 2)
  end
  registered[#registered + 1] = { name = name, fn = fn }
end

-- The error and the test's own frames of the traceback (not the kit's).
local function on_error(e)
  local msg = type(e) == "string" and e or check.show(e)
  local frames = {}
  for line in debug.traceback("", 2):gmatch("[^\n]+") do
    local keep = line:find("^%s") and not line:find("cliq/test") and not line:find("%[C%]")
      and not line:find("tail calls") and not line:find("in main chunk")
    local at = line:match("^%s*(.-:%d+):")
    if keep and #frames < 4 and not (at and msg:find(at, 1, true)) then
      frames[#frames + 1] = line
    end
  end
  return #frames > 0 and msg .. "\n" .. table.concat(frames, "\n") or msg
end

local function indent(text, by)
  return by .. tostring(text):gsub("\n", "\n" .. by)
end

-- Runs the tests (each after kit.reset), prints a line for each and a
-- summary. Returns true when every test passed (false when one failed or
-- none ran), the number passed and the number failed, so that
-- os.exit(kit.run_tests()) exits as it should.
--   opts.tests   a list of { name, fn } to run instead of the registered
--   opts.print   where lines go (print)
--   opts.filter  run only tests whose name holds this (default: the first
--                command-line argument, for the registered tests)
---@param opts? { filter?: string }
---@return boolean ok  true when every test passed (and one ran): os.exit(kit.run_tests())
---@return integer passed
---@return integer failed
function kit.run_tests(opts)
  opts = opts or {}
  local out = opts.print or print
  local tests = opts.tests or registered
  local filter = opts.filter
  if filter == nil and not opts.tests then
    filter = _G.arg and _G.arg[1]
  end
  local name = opts.name or (_G.arg and _G.arg[0] and _G.arg[0]:match("[^/]+$")) or "tests"
  local passed, failed, skipped = 0, 0, 0
  for _, t in ipairs(tests) do
    local tname, fn = t.name or t[1], t.fn or t[2]
    if filter and not tname:find(filter, 1, true) then
      skipped = skipped + 1
    else
      kit.reset()
      local ok, err = xpcall(fn, on_error)
      if ok then
        passed = passed + 1
        out("ok   " .. tname)
      else
        failed = failed + 1
        out("FAIL " .. tname)
        out(indent(err, "     "))
        if #fakes.logs > 0 then
          out("     what the scripts logged:")
          out(indent(kit.log_text(), "       "))
        end
      end
    end
  end
  kit.reset()
  local summary = string.format("%s: %d passed, %d failed", name, passed, failed)
  if skipped > 0 then
    summary = summary .. string.format(", %d skipped", skipped)
  end
  if passed + failed == 0 then
    summary = summary .. " (no tests ran)"
  end
  out(summary)
  return failed == 0 and passed > 0, passed, failed
end

kit.reset()

return kit
