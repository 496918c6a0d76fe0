-- Tests of the test kit itself (lualib/cliq/test.lua and lualib/cliq/test/):
-- its json twin, the sandbox and require, the requests it builds for every
-- handler, running handlers, every fake with the host's return values and
-- error strings, and the assertions and runner (including that a failing
-- test fails). Fixture scripts are in tests/lua/kit_scripts/.

local kit = require "cliq.test"
local json = kit.json

local FIXTURES = "tests/lua/kit_scripts"

-- Loads a script from the fixtures folder.
local function fixture(path)
  kit.scripts_dir = FIXTURES
  return kit.load(path)
end

-- A handler table from inline code, run in the fixtures' worker.
local function script(code)
  kit.scripts_dir = FIXTURES
  return kit.load_string(code, "inline.lua")
end

-- Runs `body` (the inside of a handler function) as the handler for req (a
-- command's execution by default) and returns its reply and info. (A reply
-- of { a, b } with a nil a could not be sent: bodies return named fields.)
local function run(body, req)
  req = req or kit.command("t", "")
  local h = script(string.format("return { [%q] = function(req)\n%s\nend }", req.handler, body))
  return kit.run(h, req)
end

-- ---- json -----------------------------------------------------------------

kit.test("json keeps arrays and objects, integers and floats apart", function()
  local text = '{"a":[],"b":{},"c":[1,2.0,-3,1e2],"d":null,"e":9223372036854775807}'
  local v = json.decode(text)
  kit.eq(json.encode(v), '{"a":[],"b":{},"c":[1,2.0,-3,100.0],"d":null,"e":9223372036854775807}')
  kit.eq(math.type(v.c[1]), "integer")
  kit.eq(math.type(v.c[2]), "float")
  kit.eq(v.e, math.maxinteger)
  kit.eq(rawequal(v.d, json.null), true)
  kit.eq(tostring(json.null), "json.null")
end)

kit.test("json: an empty table is {}, json.array() is [], lists are arrays", function()
  kit.eq(json.encode({}), "{}")
  kit.eq(json.encode(json.array()), "[]")
  kit.eq(json.encode(json.object({ [1] = "a" })), '{"1":"a"}')
  kit.eq(json.encode({ "x", "y" }), '["x","y"]')
  kit.eq(json.encode({ 1.0, 0.5, "é\n" }), '[1.0,0.5,"é\\n"]')
  kit.eq(json.encode(nil), "null")
end)

kit.test("json.encode errors name the path of the bad value", function()
  kit.raises(function()
    json.encode({ buttons = { { label = "ok" }, { label = "bad \255" } } })
  end, "json.encode: value.buttons[2].label: string is not valid UTF-8 (at byte 5)")
  kit.raises(function()
    json.encode({ list = { 1, 2, nil, 4 } })
  end, "value.list: array has holes (nil between items); use json.null for a null")
  kit.raises(function()
    json.encode({ t = { 1, x = 2 } })
  end, "value.t: table mixes list items and named keys")
  kit.raises(function()
    json.encode({ f = print })
  end, "value.f: cannot encode a function")
  kit.raises(function()
    json.encode({ n = 0 / 0 })
  end, "value.n: NaN cannot be represented in JSON")
  local loop = {}
  loop.self = loop
  kit.raises(function()
    json.encode(loop)
  end, "nested too deeply (or a table contains itself)")
  kit.raises(function()
    json.array(setmetatable({}, {}))
  end, "json.array: the table already has a metatable")
end)

kit.test("json.decode returns nil and a message for bad text", function()
  -- Positions as cJSON gives them (the last byte when the text ends too soon).
  kit.eq({ json.decode("[1,") }, { nil, "invalid JSON near byte 3" })
  kit.eq({ json.decode('{"a" 1}') }, { nil, "invalid JSON near byte 6" })
  kit.eq({ json.decode('"abc') }, { nil, "invalid JSON near byte 2" })
  kit.eq({ json.decode("{} x") }, { nil, "data after the JSON value at byte 4" })
  kit.eq(json.decode(' {"k":"\\u00e9\\ud83d\\ude00"} \n').k, "é😀")
end)

-- ---- the sandbox ----------------------------------------------------------

kit.test("the sandbox has the host's allow-list and nothing else", function()
  local out = run([[
    return {
      io = type(io), os_execute = type(os.execute), os_exit = type(os.exit),
      os_remove = type(os.remove), dofile = type(dofile), loadfile = type(loadfile),
      dump = type(string.dump), getinfo = type(debug.getinfo),
      traceback = type(debug.traceback), package = type(package),
      require = type(require), json = type(json), log = type(log), http = type(http),
      sleep = type(sleep), cliq = type(cliq), print = type(print),
      string_mt = tostring(getmetatable("")), utf8 = type(utf8.char),
      g = _G == _ENV,
    }
  ]])
  kit.eq(out, {
    io = "nil", os_execute = "nil", os_exit = "nil", os_remove = "nil", dofile = "nil",
    loadfile = "nil", dump = "nil", getinfo = "nil", traceback = "function",
    package = "table", require = "function", json = "table", log = "table", http = "table",
    sleep = "function", cliq = "table", print = "function", string_mt = "false",
    utf8 = "function", g = true,
  })
end)

kit.test("load is text only with fresh globals; __gc and collectgarbage are refused", function()
  local out = run([[
    local f, err = load("return 1", "chunk", "b")
    local g = load("x = 5; return x")
    local y = g()
    local ok1, e1 = pcall(setmetatable, {}, { __gc = function() end })
    local ok2, e2 = pcall(collectgarbage, "collect")
    return { f = f == nil, err = err, y = y, x = tostring(x), e1 = e1, e2 = e2,
      count = type(collectgarbage()) }
  ]])
  kit.eq(out.f, true)
  kit.eq(out.err, "load: binary chunks are not allowed")
  kit.eq(out.y, 5)
  kit.eq(out.x, "nil")
  kit.contains(out.e1, "setmetatable: __gc finalizers are not allowed in scripts")
  kit.contains(out.e2, 'collectgarbage("collect") is not allowed; only "count"')
  kit.eq(out.count, "number")
end)

kit.test("os.getenv reads only kit.env", function()
  kit.env.JENKINS_URL = "https://ci.example.com"
  local out = run([[return { os.getenv("JENKINS_URL"), tostring(os.getenv("HOME")) }]])
  kit.eq(out, { "https://ci.example.com", "nil" })
end)

kit.test("a script cannot resume or close its own handler's coroutine", function()
  local out = run([[
    local ok, err = pcall(coroutine.resume, coroutine.running())
    local co = coroutine.create(function() coroutine.yield(1) return 2 end)
    local _, one = coroutine.resume(co)
    local _, two = coroutine.resume(co)
    return { ok = ok, err = err, one = one, two = two }
  ]])
  kit.eq(out.ok, false)
  kit.contains(out.err, "a handler's own coroutine is run by the host")
  kit.eq({ out.one, out.two }, { 1, 2 })
end)

-- ---- loading and require --------------------------------------------------

kit.test("require finds scripts/lib first, then lualib", function()
  kit.eq(kit.run(fixture("commands/args.lua"), kit.command("args", "")), { shadow = true })
  kit.scripts_dir = "scripts"
  local h = kit.load_string([[
    local args = require "cliq.args"
    return { execution = function() return { n = #args.parse("a b c") } end }
  ]])
  kit.eq(kit.run(h, kit.command("x", "")), { n = 3 })
end)

kit.test("require finds ?/init.lua, as the host does", function()
  kit.scripts_dir = FIXTURES
  local h = kit.load_string([[
    local pkg = require "pkg"
    return { execution = function() return pkg.name end }
  ]])
  kit.eq(kit.run(h, kit.command("x", "")), "pkg")
end)

kit.test("require's errors are the host's", function()
  local out = run([[
    local results = {}
    for _, name in ipairs({ "nope", "../etc", "loop_a", "waits" }) do
      local ok, err = pcall(require, name)
      results[name] = err
    end
    results.noreturn = require "noreturn"
    return results
  ]])
  kit.contains(out.nope, 'require "nope": none of ' .. FIXTURES .. "/lib/nope.lua, " .. FIXTURES
    .. "/lib/nope/init.lua, ")
  kit.contains(out["../etc"], 'require "../etc": not a module name')
  kit.contains(out.loop_a, 'require "loop_a": circular require')
  kit.contains(out.waits, "sleep cannot wait here")
  kit.eq(out.noreturn, true)
end)

kit.test("every load gets fresh module instances and fresh globals", function()
  local h = fixture("commands/count.lua")
  local req = kit.command("count", "")
  kit.eq(kit.run(h, req), "1")
  kit.eq(kit.run(h, req), "2")
  local again = fixture("commands/count.lua")
  kit.eq(kit.run(again, req), "1")
  local other = script([[return { execution = function() return tostring(leaked) end }]])
  kit.eq(kit.run(other, req), "nil")
  kit.eq(kit.run(again, kit.suggestion("count", "")), { text = "from count.lua" })
end)

kit.test("kit.load checks what a script returns, as the host does", function()
  kit.raises(function()
    fixture("bad/returns_string.lua")
  end, FIXTURES .. "/bad/returns_string.lua: must return a table of handler functions "
    .. "(returned string)")
  kit.raises(function()
    fixture("bad/not_a_function.lua")
  end, "bad/not_a_function.lua: handler 'suggestion' must be a function (is a string)")
  kit.raises(function()
    fixture("bad/syntax.lua")
  end, FIXTURES .. "/bad/syntax.lua:1:")
  kit.raises(function()
    fixture("bad/raises.lua")
  end, "top level failed")
  kit.raises(function()
    fixture("bad/top_sleep.lua")
  end, "sleep can only wait in a handler's own code (not at a script's top level")
  kit.raises(function()
    fixture("commands/missing.lua")
  end, "kit.load: no " .. FIXTURES .. "/commands/missing.lua")
end)

kit.test("kit.load takes a path as given too, and h.<handler>(req) runs the handler", function()
  kit.scripts_dir = "scripts"
  local h = kit.load(FIXTURES .. "/commands/echo.lua")
  kit.eq(h.execution(kit.command("echo", "x")).text, "command|echo|execution")
  kit.raises(function()
    kit.run(h, kit.func("echo", "button"))
  end, "has no handler 'button' (it has: execution, suggestion)")
end)

-- ---- requests -------------------------------------------------------------

-- Params each handler's body has (docs/cliq-formats.md §2).
local distinguishing = {
  welcome = { "newuser", "user" },
  message = { "message", "raw_message", "message_details", "attachments", "mentions", "links",
    "options", "selections", "arguments", "chat", "location", "user" },
  context = { "context_id", "answers", "chat", "user" },
  mention = { "message", "mentions", "chat", "location" },
  action = { "chat", "user" },
  incomingwebhook = { "headers", "params", "body", "http_method" },
  participation = { "operation", "data", "chat" },
  alert = { "operation", "data" },
  ["command execution"] = { "arguments", "options", "selections", "mentions", "attachments",
    "chat", "location" },
  suggestion = { "arguments", "options", "selections", "chat" },
  ["messageaction execution"] = { "message", "messages", "attachments", "mentions", "chat",
    "location" },
  button = { "target", "event", "arguments", "message", "chat" },
  form = { "form", "chat" },
  form_change = { "form", "target" },
  form_values = { "form", "target" },
  form_view = { "params" },
  applet_button = { "target" },
  view = { "event", "target", "chat" },
  installation = { "app_info", "form", "authtoken" },
  installation_validator = { "app_info" },
  uninstallation = { "app_info" },
  unfurl = { "url", "domain", "chat" },
  unfurl_button_action = { "url", "domain", "target" },
  unfurl_dynamic_action = { "url", "domain" },
  unfurl_post_message = { "url", "domain" },
}

kit.test("kit.request builds the host's request object for every handler", function()
  kit.eq(#kit.catalogue, 25)
  for _, e in ipairs(kit.catalogue) do
    local one_file = e.type == "extension" or e.type == "link_preview"
    local req = kit.request(e.type, not one_file and "echo" or nil, e.key)
    local what = e.type .. " " .. e.key
    kit.eq(req.type, e.type, what)
    kit.eq(req.handler, e.key, what)
    kit.eq(req.name, not one_file and "echo" or nil, what)
    kit.eq(req.body.handler.type, e.wire, what)
    kit.eq(req.response_url ~= nil, e.response_url, what .. " response_url")
    kit.eq(req.timestamp, 1795426200000, what)
    kit.matches(req.id, "^%x+$", what)
    kit.eq(rawequal(req.params, req.body.params), true, what)
    kit.eq(type(req.respond), "function", what)
    kit.eq(req.params.environment.tld, ".com", what)
    kit.eq(req.params.access.user_id, "130720038", what)
    kit.eq(req.action, e.key == "action" and "Say Hi" or nil, what)
    for _, k in ipairs(distinguishing[e.key] or distinguishing[e.type .. " " .. e.key]) do
      kit.eq(req.params[k] ~= nil, true, what .. " has params." .. k)
    end
    local fields = {}
    for k in pairs(req) do
      fields[#fields + 1] = k
    end
    table.sort(fields)
    local expected = { "body", "handler", "id", "params", "timestamp", "type" }
    if not one_file then
      expected[#expected + 1] = "name"
    end
    if e.response_url then
      expected[#expected + 1] = "response_url"
    end
    if e.key == "action" then
      expected[#expected + 1] = "action"
    end
    table.sort(expected)
    kit.eq(fields, expected, what .. " fields")
  end
end)

kit.test("every handler type runs through kit.invoke to the script the host would pick", function()
  kit.scripts_dir = FIXTURES
  for _, e in ipairs(kit.catalogue) do
    local one_file = e.type == "extension" or e.type == "link_preview"
    local out = kit.invoke(kit.request(e.type, not one_file and "echo" or nil, e.wire))
    kit.eq(out.text, string.format("%s|%s|%s", e.type, one_file and "-" or "echo", e.key))
    kit.eq(out.has_response_url, e.response_url)
  end
end)

kit.test("the per-type helpers fill the fields a script reads", function()
  local c = kit.command("deploy", "api prod")
  kit.eq({ c.type, c.name, c.handler, c.params.arguments }, { "command", "deploy", "execution",
    "api prod" })
  kit.eq(kit.suggestion("deploy", "api st").params.arguments, "api st")

  local m = kit.bot("helper", "message", { message = "hi there" })
  kit.eq({ m.params.message, m.params.raw_message, m.params.message_details.message.text },
    { "hi there", "hi there", "hi there" })
  kit.eq(m.body.unique_name, "helper")
  local a = kit.bot("helper", "action", {}, { action = "Help" })
  kit.eq({ a.action, a.body.handler.name }, { "Help", "Help" })

  local b = kit.button("approval", { key = "approve:api:prod" })
  kit.eq(b.params.arguments, { key = "approve:api:prod" })
  kit.eq(b.params.target.name, "Approve")

  local f = kit.form("approval", { reason = "holiday" }, { form = { name = "reject_reason" } })
  kit.eq(f.params.form, { name = "reject_reason", action = "submit",
    values = { reason = "holiday" } })

  local ma = kit.messageaction("stats", "one two")
  kit.eq(ma.params.message.text, "one two")
  kit.eq(ma.params.messages.list[1].text, "one two")
  kit.eq(ma.params.message.sender.name, "Scott Fisher")

  kit.eq(kit.func("approval", "form_values", { target = { query = "pi" } }).params.target,
    { name = "mobile", query = "pi" })
  kit.eq(kit.widget("board").params.event, "load")
  kit.eq(kit.extension("installation").params.app_info.type, "install")
  kit.eq(kit.link_preview("unfurl", { url = "https://x.example/1" }).params.url,
    "https://x.example/1")
end)

kit.test("params merge over the defaults; kit.absent removes; lists replace", function()
  local r = kit.command("deploy", "x", {
    user = { first_name = "Ada" }, chat = kit.absent, mentions = { { id = "1" } },
    options = { env = "prod" },
  })
  kit.eq(r.params.user.first_name, "Ada")
  kit.eq(r.params.user.email, "scott.fisher@zylcal.com")
  kit.eq(r.params.chat, nil)
  kit.eq(r.params.mentions, { { id = "1" } })
  kit.eq(r.params.options, { env = "prod" })
  kit.eq(json.encode(r.params.attachments), "[]")
  kit.eq(json.encode(kit.command("d", "", { attachments = {} }).params.attachments), "[]")
  local bare = kit.request("command", "d", "execution", nil, { response_url = false,
    body = { timestamp = 5 } })
  kit.eq({ bare.response_url, bare.timestamp }, { nil, 5 })
  kit.raises(function()
    kit.request("command", "d", "button")
  end, "kit.request: command has no handler \"button\" (execution, suggestion)")
  kit.raises(function()
    kit.command(nil, "x")
  end, "a command request needs a component name")
  kit.raises(function()
    kit.command("d", "x", { bad = print })
  end, "body.params.bad: cannot encode a function")
end)

kit.test("kit.from_body takes both of Cliq's body formats", function()
  local r = kit.from_body('{"type":"bot","name":"Helper","unique_name":"helper",'
    .. '"handler":"action_handler","handler_name":"help","params":{"user":{"id":"7"}}}')
  kit.eq({ r.type, r.name, r.handler, r.action, r.params.user.id, r.response_url },
    { "bot", "helper", "action", "help", "7", nil })
  local m = kit.from_body({ type = "function", name = "f",
    handler = { type = "widget_button_handler" } })
  kit.eq(m.handler, "applet_button")
  kit.eq(json.encode(m.params), "{}")
end)

-- ---- running --------------------------------------------------------------

kit.test("kit.output wraps a reply as the host sends it", function()
  kit.eq({ kit.output("hi") }, { { output = { text = "hi" } }, '{"output":{"text":"hi"}}' })
  kit.eq({ kit.output(nil) }, { { output = "" }, '{"output":""}' })
  kit.eq(select(2, kit.output({ text = "a", n = 1 })), '{"output":{"n":1,"text":"a"}}')
  kit.raises(function()
    kit.output(42)
  end, "a reply must be a table (a message), a string or nothing, not a number")
end)

kit.test("kit.run raises for replies the host could not send", function()
  kit.raises(function()
    run("return print")
  end, "handler returned a function; return a table (a message), a string or nothing")
  kit.raises(function()
    run("return { buttons = { { label = '\\255' } } }")
  end, "output.buttons[1].label: string is not valid UTF-8")
end)

kit.test("a handler's error comes out with its traceback", function()
  local msg = kit.raises(function()
    run("local t = nil\nreturn t.x")
  end, "inline.lua:3: attempt to index a nil value (local 't')")
  kit.contains(msg, "stack traceback:")
  kit.raises(function()
    run("coroutine.yield(1)")
  end, "handler yielded outside a host call (coroutine.yield in the handler body)")
end)

-- ---- the clock and sleep --------------------------------------------------

kit.test("sleep moves the fake clock at once; os.time, os.date and os.clock follow", function()
  local out, info = run([[
    local t0, c0 = os.time(), os.clock()
    sleep(90)
    sleep(0.5)
    return { t0 = t0, t1 = os.time(), d = os.clock() - c0, hm = os.date("!%H:%M") }
  ]])
  kit.eq(out, { t0 = 1795426200, t1 = 1795426290, d = 90.5, hm = "09:31" })
  kit.eq(info.elapsed, 90.5)
  kit.eq(kit.sleeps, { { seconds = 90, at = 1795426200 }, { seconds = 0.5, at = 1795426290 } })
  kit.clock.set("2027-01-02T03:04:05Z")
  kit.eq(run([[return os.date("!%Y-%m-%d %H:%M:%S")]]), "2027-01-02 03:04:05")
  kit.clock.set({ year = 2026, month = 2, day = 28, hour = 23 })
  kit.eq(kit.clock.now(), 1772319600)
  kit.clock.advance(3600)
  kit.eq(run([[return os.date("!%m-%d %H", os.time())]]), "03-01 00")
end)

kit.test("local time is UTC until kit.clock.zone sets another zone", function()
  local body = [[
    return { here = os.date("%H:%M"), utc = os.date("!%H:%M"), hour = os.date("*t").hour,
      back = os.time({ year = 2026, month = 11, day = 23, hour = 15, min = 0 }) }
  ]]
  kit.eq(run(body), { here = "09:30", utc = "09:30", hour = 9, back = 1795446000 })
  kit.clock.zone(5.5)
  kit.eq(run(body), { here = "15:00", utc = "09:30", hour = 15, back = 1795426200 })
  kit.raises(function()
    run("return tostring(os.time({ year = 2026 }))")
  end, "field 'day' missing in date table")
end)

kit.test("sleep refuses what the host refuses", function()
  kit.raises(function()
    run("sleep(-1)")
  end, "bad argument #1 to 'sleep' (seconds must be a number >= 0)")
  kit.raises(function()
    run("coroutine.wrap(function() sleep(1) end)()")
  end, "sleep can only wait in a handler's own code (not at a script's top level or in a "
    .. "coroutine the script made)")
  kit.raises(function()
    run("table.sort({ 3, 1, 2 }, function(a, b) sleep(1) return a < b end)")
  end, "sleep cannot wait here: it was called through a C function that cannot pause")
  kit.eq(run("local ok = pcall(sleep, 2) return tostring(ok)"), "true")
end)

-- ---- http.request ---------------------------------------------------------

kit.test("http.request is answered by routes and every call is recorded", function()
  kit.http.route("GET", "https://api.example.com/builds/42", {
    status = 200, headers = { ["Content-Type"] = "text/plain" }, body = "green" })
  kit.http.route("POST", "https://api.example.com/deploys", { status = 201, json = { id = 7 } })
  local out = run([[
    local a = http.request{ url = "https://api.example.com/builds/42" }
    local b = http.request{ url = "https://api.example.com/deploys", method = "POST",
      headers = { Authorization = "Bearer t" }, body = json.encode({ service = "api" }),
      timeout = 3 }
    return { a = a, b_status = b.status, b_id = json.decode(b.body).id,
      b_type = b.headers["content-type"] }
  ]])
  kit.eq(out.a, { status = 200, headers = { ["content-type"] = "text/plain" }, body = "green" })
  kit.eq({ out.b_status, out.b_id, out.b_type }, { 201, 7, "application/json" })
  kit.eq(#kit.http.calls, 2)
  kit.eq(kit.http.calls[1].method, "GET")
  kit.eq(kit.http.calls[1].timeout, 10)
  kit.eq(kit.http.calls[2].headers, { Authorization = "Bearer t" })
  kit.eq(kit.http.calls[2].body, '{"service":"api"}')
  kit.eq(kit.http.calls[2].timeout, 3)
end)

kit.test("http.request without a route, or with a failing one, returns nil and why", function()
  kit.http.route("*", "https://down.example.com/*", kit.fails("connect: Connection refused"))
  kit.http.route("GET", "https://slow.example.com/x", { body = "late", delay = 5 })
  kit.http.route("GET", "https://fn.example.com/x", function(call)
    return { status = 404, body = "no " .. call.url:match("[^/]+$") }
  end)
  local out = run([[
    local function try(url, timeout)
      local r, err = http.request{ url = url, timeout = timeout }
      return r and (r.status .. " " .. r.body) or err
    end
    return {
      none = try("https://api.example.com/x"),
      down = try("https://down.example.com/a/b"),
      slow = try("https://slow.example.com/x", 2),
      slow_ok = try("https://slow.example.com/x"),
      fn = try("https://fn.example.com/x"),
      ftp = try("ftp://files.example.com/x"),
    }
  ]])
  kit.eq(out.none, 'kit: no fake for GET https://api.example.com/x; set one with '
    .. 'kit.http.route("GET", "https://api.example.com/x", { status = 200, body = "..." })')
  kit.eq(out.down, "connect: Connection refused")
  kit.eq(out.slow, "timeout after 2.0 s")
  kit.eq(out.slow_ok, "200 late")
  kit.eq(out.fn, "404 no x")
  kit.contains(out.ftp, "bad url: ")
  kit.eq(kit.http.calls[1].unrouted, true)
  kit.eq(kit.clock.now() - 1795426200, 7)
end)

kit.test("http.request raises for wrong arguments, as the host does", function()
  local cases = {
    ["http.request{}"] = "http.request: 'url' is required",
    ["http.request{ url = 5 }"] = "http.request: 'url' must be a string (got number)",
    ["http.request{ url = 'https://x', method = 'get' }"] =
      "http.request: method 'get' is not an HTTP method",
    ["http.request{ url = 'https://x', timeout = 0 }"] =
      "http.request: 'timeout' must be a number of seconds > 0",
    ["http.request{ url = 'https://x', redirects = 21 }"] =
      "http.request: 'redirects' must be an integer from 0 to 20",
    ["http.request{ url = 'https://x', headers = { ['a:b'] = 'c' } }"] =
      "http.request: header 'a:b' has a bad name or value",
    ["http.request{ url = 'https://x', headers = { ['x-cliqhost-fetch'] = '0' } }"] =
      "http.request: header 'x-cliqhost-fetch': X-Cliqhost-* headers are the host's own",
    ["http.request('https://x')"] = "bad argument #1 to 'request' (table expected, got string)",
  }
  for code, msg in pairs(cases) do
    kit.raises(function()
      run(code)
    end, msg, code)
  end
end)

-- ---- req:respond and late replies -----------------------------------------

kit.test("req:respond posts once; a second call returns nil, \"used\"", function()
  local out = run([[
    local ok1, err1 = req:respond("On it")
    local ok2, err2 = req:respond({ text = "again" })
    return { ok1 = ok1, err1 = err1, ok2 = ok2, err2 = err2 }
  ]])
  kit.eq(out, { ok1 = true, err2 = "used" })
  kit.eq(#kit.responses, 1)
  local r = kit.responses[1]
  kit.eq({ r.kind, r.output, r.json, r.url }, { "respond", { text = "On it" },
    '{"output":{"text":"On it"}}', "https://cliq.zoho.com/v2/extensions/2980/responses/"
    .. "17202823900615741410013820" })
end)

kit.test("req:respond: \"none\" without a response_url, \"expired\" after two minutes", function()
  local body = [[
    sleep(tonumber(req.params.options.wait or 0))
    local ok, err = req:respond("late")
    return { ok = ok, err = err }
  ]]
  kit.eq(run(body, kit.func("f", "form_change", { options = { wait = 0 } })), { err = "none" })
  kit.eq(run(body, kit.command("c", "", { options = { wait = 119 } })), { ok = true })
  kit.eq(run(body, kit.command("c", "", { options = { wait = 120 } })), { err = "expired" })
end)

kit.test("req:respond's answer can be set, and its arguments are checked", function()
  kit.on_respond(kit.fails("HTTP 404: no such response_url"))
  kit.eq(run("return { select(2, req:respond('x')) }"), { "HTTP 404: no such response_url" })
  kit.raises(function()
    run("req:respond(5)")
  end, "bad argument #1 to 'respond' (a message (string or table) expected, got number)")
  kit.raises(function()
    run("req:respond({ f = print })")
  end, "req:respond: output.f: cannot encode a function")
end)

kit.test("a handler past the deadline has its reply sent to response_url", function()
  local reply, info = run("sleep(5) return 'Done.'")
  kit.eq({ reply, info.late, info.elapsed }, { "Done.", true, 5 })
  kit.eq(#kit.responses, 1)
  kit.eq({ kit.responses[1].kind, kit.responses[1].output }, { "late", { text = "Done." } })
  run("sleep(5) req:respond('early') return 'Done.'")
  kit.eq(#kit.responses, 2)
  kit.eq(kit.responses[2].kind, "respond")
  local _, quick = run("sleep(4) return 'Done.'")
  kit.eq(quick.late, false)
  run("sleep(5) return 'x'", kit.bot("b", "alert"))
  kit.eq(#kit.responses, 2)
end)

-- ---- cliq.post_* ----------------------------------------------------------

kit.test("cliq.post_* are recorded with their message and opts, and return true", function()
  local out = run([[
    return {
      cliq.post_channel("ops", "Deploy done"),
      cliq.post_channel("ops", { text = "Disk full", card = { title = "db-2" } },
        { token = "alerts", as_bot = "watchdog" }),
      cliq.post_bot("helper", "Report ready", { userids = { "123", 456 } }),
      cliq.post_bot("helper", "Maintenance", { broadcast = true, wait = false }),
      cliq.bot_incoming("helper", { alert = "disk full" }),
      cliq.app_incoming("2305843009213696807", { event = "build" }, { appkey = "k" }),
    }
  ]])
  kit.eq(out, { true, true, true, true, { user_ids = {} }, true })
  local p = kit.posts
  kit.eq(#p, 6)
  kit.eq({ p[1].fn, p[1].target, p[1].message, p[1].token }, { "post_channel", "ops",
    { text = "Deploy done" }, "default" })
  kit.eq({ p[2].message.card.title, p[2].token, p[2].as_bot }, { "db-2", "alerts", "watchdog" })
  kit.eq(p[3].message, { text = "Report ready", userids = "123,456" })
  kit.eq({ p[4].message, p[4].wait }, { { text = "Maintenance", broadcast = true }, false })
  kit.eq({ p[5].fn, p[5].message }, { "bot_incoming", { alert = "disk full" } })
  kit.eq({ p[6].target, p[6].appkey }, { "2305843009213696807", "k" })
end)

kit.test("cliq.post_* answers can be set; tokens fail with the host's messages", function()
  kit.cliq.on("post_channel", kit.fails("HTTP 404: channel not found"))
  kit.cliq.on("bot_incoming", function(record)
    return { user_ids = { "1", record.target } }
  end)
  kit.eq(run([[return { select(2, cliq.post_channel("nope", "x")) }]]),
    { "HTTP 404: channel not found" })
  kit.eq(run([[return cliq.bot_incoming("helper", {})]]), { user_ids = { "1", "helper" } })
  kit.cliq.tokens({ default = true, old = "disabled", ci = "unset" })
  local out = run([[
    local function err(token)
      local _, e = cliq.post_bot("helper", "x", { token = token, broadcast = true })
      return e
    end
    return { err("ops"), err("old"), err("ci"), tostring(err("default")) }
  ]])
  kit.eq(out, {
    "no token named 'ops' in the config (a token set from an unset environment variable is "
      .. "missing)",
    "token 'old' is disabled in the config",
    "token 'ci' has no value (is its environment variable set?)",
    "nil",
  })
end)

kit.test("cliq.post_* refuse a post over max_post_bytes, as the host's outbox does", function()
  kit.settings.max_post_bytes = 2048
  local out = run([[
    local function err(msg, fn)
      local r, e = cliq[fn or "post_channel"]("ops", msg, { broadcast = fn and true or nil })
      return { tostring(r), e }
    end
    return {
      err(string.rep("x", 2048 - #'{"text":""}')),
      err(string.rep("x", 3000 - #'{"text":""}')),
      err({ text = string.rep("y", 100000) }),
      err({ text = string.rep("x", 2048 - #'{"text":"","broadcast":true}') }, "post_bot"),
    }
  ]])
  kit.eq(out, {
    { "true" },
    { "nil", "outbox: the post is 3000 bytes, over outbox_max_post_bytes (2048)" },
    { "nil", "outbox: the post is more than 4160 bytes, over outbox_max_post_bytes (2048)" },
    { "true" },
  })
  kit.eq(#kit.posts, 2)
end)

kit.test("cliq.post_* raise for wrong arguments, as the host does", function()
  local cases = {
    ["cliq.post_channel('', 'x')"] =
      "bad argument #1 to 'post_channel' (must be a name of 1 to 200 characters)",
    ["cliq.post_channel('ops')"] =
      "bad argument #2 to 'post_channel' (a message (string or table) expected, got no value)",
    ["cliq.post_channel('ops', 'x', 'alerts')"] =
      "bad argument #3 to 'post_channel' (table expected, got string)",
    ["cliq.post_channel('ops', 'x', { token = 1 })"] = "opts.token must be a string (got number)",
    ["cliq.post_channel('ops', 'x', { wait = 'no' })"] =
      "opts.wait must be true or false (got string)",
    ["cliq.post_bot('helper', 'x')"] = "cliq.post_bot: give opts.userids or opts.broadcast = true",
    ["cliq.post_bot('helper', { 'a' }, { broadcast = true })"] =
      "cliq.post_bot: the message must be an object (text, card, ...)",
    ["cliq.post_bot('h', 'x', { userids = true })"] =
      "opts.userids must be a list of user ids or a comma-separated string",
    ["cliq.app_incoming('1', {})"] = "cliq.app_incoming: opts.appkey is required (the app's key)",
    ["cliq.post_channel('ops', { f = print })"] =
      "cliq.post_channel: message.f: cannot encode a function",
  }
  for code, msg in pairs(cases) do
    kit.raises(function()
      run(code)
    end, msg, code)
  end
  kit.eq(#kit.posts, 0)
end)

-- ---- log, print and attachments -------------------------------------------

kit.test("log.* and print are captured with their level and the request id", function()
  local req = kit.command("t", "")
  run([[
    log.info("deploy", "api", 3)
    log.warn({ env = "prod" }, json.null, nil)
    print("plain")
    log.error("bad")
    log.debug("details")
  ]], req)
  kit.eq(#kit.logs, 5)
  kit.eq(kit.logs[1], { level = "info", msg = "deploy api 3", script = "inline.lua", id = req.id })
  kit.eq(kit.logs[2].msg, '{"env":"prod"} json.null nil')
  kit.eq(kit.log_text(), "info: deploy api 3\nwarn: {\"env\":\"prod\"} json.null nil\n"
    .. "info: plain\nerror: bad\ndebug: details")
end)

kit.test("warn is a warn line, as in the host", function()
  local req = kit.command("t", "")
  local out = run([[
    warn("@on")
    warn("disk ", "almost ", "full: ", 97, "%")
    local ok, err = pcall(function() warn({}) end)
    return err
  ]], req)
  kit.eq(kit.log_text(), "warn: disk almost full: 97%")
  kit.contains(out, "bad argument #1 to 'warn' (string expected, got table)")
end)

kit.test("attachments download their content once, until they expire", function()
  local att = kit.attachment({ name = "report.csv", content = "a,b\n1,2\n" })
  local broken = kit.attachment({ name = "x.bin", content = kit.fails("HTTP 403") })
  local req = kit.command("import", "", { attachments = { att, broken } })
  kit.eq(debug.getmetatable(req.params.attachments[1]).__name, "cliq.attachment")
  local out = run([[
    local a, b = req.params.attachments[1], req.params.attachments[2]
    local first = a:download()
    local second = a:download()
    local none, err = b:download()
    return { first = first, same = first == second, none = none, err = err, name = a.name }
  ]], req)
  kit.eq(out, { first = "a,b\n1,2\n", same = true, err = "HTTP 403", name = "report.csv" })
  kit.eq(#kit.downloads, 2)
  local late = kit.command("import", "", { attachments = { att } })
  kit.eq(run("sleep(61) return { select(2, req.params.attachments[1]:download()) }", late),
    { "expired" })
end)

kit.test("kit.reset clears every recorder, route and setting, and the clock", function()
  kit.http.route("GET", "https://x.example/", { body = "y" })
  kit.env.A = "1"
  kit.cliq.tokens({ default = true })
  kit.settings.deadline = 1
  run("sleep(3) log.info('x') cliq.post_channel('ops', 'x') "
    .. "http.request{ url = 'https://x.example/' }")
  kit.reset()
  kit.eq({ #kit.logs, #kit.posts, #kit.http.calls, #kit.sleeps, #kit.responses, kit.env.A },
    { 0, 0, 0, 0, 0, nil })
  kit.eq(kit.clock.now(), 1795426200)
  kit.eq(kit.settings.deadline, 4.5)
  kit.eq(run("return { http.request{ url = 'https://x.example/' } == nil }"), { true })
  kit.eq(run("return { ok = cliq.post_channel('ops', 'x', { token = 'any' }) }"), { ok = true })
end)

-- ---- assertions and the runner --------------------------------------------

kit.test("kit.eq shows each difference by its path", function()
  kit.eq({ a = { 1, json.array({ 2 }) }, b = "x" }, { a = { 1.0, { 2 } }, b = "x" })
  local msg = kit.raises(function()
    kit.eq({ card = { title = "Approval needed" }, buttons = { { key = "a" } } },
      { card = { title = "Approved" }, buttons = { { key = "a" }, { key = "b" } } }, "reply")
  end)
  kit.contains(msg, "reply: not equal")
  kit.contains(msg, '.card.title: expected "Approved", got "Approval needed"')
  kit.contains(msg, '.buttons[2]: missing (expected { key = "b" })')
  kit.contains(kit.raises(function()
    kit.eq("a", "b")
  end), 'not equal: expected "b", got "a"')
  kit.contains(kit.raises(function()
    kit.contains("hello", "bye")
  end), 'expected "hello" to contain "bye"')
  kit.contains({ 1, { x = 2 } }, { x = 2 })
  kit.matches("It is 09:30 UTC.", "^It is %d%d:%d%d UTC%.$")
  kit.raises(function()
    kit.raises(function() end)
  end, "expected an error, but none was raised")
end)

kit.test("a failing test is reported as failed, with the scripts' logs", function()
  local lines = {}
  local ok, passed, failed = kit.run_tests({
    name = "inner",
    print = function(s)
      lines[#lines + 1] = s
    end,
    tests = {
      { "passes", function() kit.eq(1, 1) end },
      { "fails", function()
        run("log.info('about to fail') return 'x'")
        kit.eq("got", "wanted")
      end },
    },
  })
  kit.eq({ ok, passed, failed }, { false, 1, 1 })
  local text = table.concat(lines, "\n")
  kit.contains(text, "ok   passes")
  kit.contains(text, "FAIL fails")
  kit.contains(text, 'not equal: expected "wanted", got "got"')
  kit.contains(text, "info: about to fail")
  kit.eq(lines[#lines], "inner: 1 passed, 1 failed")
  local none = { kit.run_tests({ tests = {}, print = function() end }) }
  kit.eq(none, { false, 0, 0 })
end)

kit.test("a test file with a failing test exits non-zero; a word picks tests", function()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[
local kit = require "cliq.test"
kit.test("good", function() kit.eq(1, 1) end)
kit.test("bad", function() kit.eq({ 1 }, { 2 }) end)
os.exit(kit.run_tests())
]])
  f:close()
  local lua = arg[-1] or "lua5.4"
  local function run_file(filter)
    local p = assert(io.popen(string.format("%q %q %s 2>&1; echo \"exit=$?\"", lua, path,
      filter or "")))
    local out = p:read("a")
    p:close()
    return out
  end
  local all, good = run_file(), run_file("goo")
  os.remove(path)
  kit.contains(all, "FAIL bad")
  kit.contains(all, "1 passed, 1 failed")
  kit.contains(all, "exit=1")
  kit.contains(good, "1 passed, 0 failed, 1 skipped")
  kit.contains(good, "exit=0")
end)

os.exit(kit.run_tests())
