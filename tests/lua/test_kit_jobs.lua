-- Tests of the test kit's schedules and hooks (kit.schedule, kit.hook, and
-- kit.load's checks of a schedule's and a hook's table): each check the
-- host's loader makes, the job and the hook request as the host builds
-- them, the reply conventions, and the fakes working inside both.

local kit = require "cliq.test"

-- A schedule or hook from inline code; `name` says which
-- ("schedules/nightly.lua", "hooks/ci.lua").
local function script(name, code)
  return kit.load_string(code, name)
end

local function schedule(fields)
  return script("schedules/nightly.lua", "return { " .. fields .. " }")
end

-- ---- a schedule's table -----------------------------------------------------

kit.test("a schedule's table is checked as the host's loader checks it", function()
  local run = "run = function() end"
  local cases = {
    { 'cron = "0 9 * * *"', "field 'run' must be a function (is a nil)" },
    { 'cron = "0 9 * * *", run = "go"', "field 'run' must be a function (is a string)" },
    { run, "field 'cron' (\"0 9 * * 1-5\") or 'every' (\"30s\", \"5m\", \"2h\") is required" },
    { 'cron = "0 9 * * *", every = "5m", ' .. run, "fields 'cron' and 'every' both set" },
    { "cron = 9, " .. run, "field 'cron' must be a string (is a number)" },
    { "every = 30, " .. run, "field 'every' must be a string (is a number)" },
    { 'every = "5m", timezone = "Europe/Paris", ' .. run, "field 'timezone' goes only with 'cron'" },
    { 'cron = "0 9 * * *", timezone = 1, ' .. run, "field 'timezone' must be a string" },
    { 'cron = "0 9 * * *", catch_up = "yes", ' .. run,
      "field 'catch_up' must be a boolean (is a string)" },
    { 'crom = "0 9 * * *", ' .. run, 'unknown field "crom" (a schedule has cron, every' },
    { 'cron = "0 9 * * *", [1] = 2, ' .. run, "unknown field 1" },
  }
  for _, c in ipairs(cases) do
    kit.raises(function()
      schedule(c[1])
    end, "schedules/nightly.lua: " .. c[2], c[1])
  end
  kit.raises(function()
    script("schedules/nightly.lua", "return function() end")
  end, "schedules/nightly.lua: a schedule must return a table")
end)

kit.test("a good schedule loads, its fields as written; the cron text is the host's to check",
  function()
    local s = schedule('cron = "not cron", timezone = "Europe/Paris", catch_up = true, '
      .. "run = function() end")
    kit.eq(s.cron, "not cron")
    kit.eq(s.timezone, "Europe/Paris")
    kit.eq(s.catch_up, true)
    kit.eq(type(s.run), "function")
    kit.eq(schedule('every = "30s", run = function() end').every, "30s")
  end)

kit.test("a hook must return receive", function()
  kit.raises(function()
    script("hooks/ci.lua", "return { handle = function() end }")
  end, "hooks/ci.lua: a hook must return { receive = function(req) ... end }")
  kit.raises(function()
    script("hooks/ci.lua", 'return { receive = "x" }')
  end, "hooks/ci.lua: handler 'receive' must be a function (is a string)")
end)

kit.test("a schedule or hook is not run as a handler, nor one as the other", function()
  local s = schedule('every = "1m", run = function() end')
  kit.raises(function()
    kit.run(s, kit.command("x", ""))
  end, "kit.run: schedules/nightly.lua is a schedule; run it with kit.schedule")
  kit.raises(function()
    kit.hook(s)
  end, "kit.hook: give a hook's name (\"alertmanager\" for hooks/alertmanager.lua)")
  kit.raises(function()
    kit.schedule({})
  end, "kit.schedule: give a schedule's name")
end)

-- ---- kit.schedule -----------------------------------------------------------

kit.test("a schedule or hook that is not there is reported at the test's line", function()
  kit.scripts_dir = "scripts"
  local _, err = pcall(function()
    kit.schedule("nope")
  end)
  kit.matches(err, "test_kit_jobs%.lua:%d+: kit%.schedule: no scripts/schedules/"
    .. "nope%.lua %(the scripts folder is \"scripts\"")
  _, err = pcall(function()
    kit.hook("hooks/nope.lua")
  end)
  kit.matches(err, "test_kit_jobs%.lua:%d+: kit%.hook: no scripts/hooks/nope%.lua")
end)

kit.test("a run gets the job, and logs, posts, store and http work as in a handler", function()
  kit.http.route("GET", "https://ci.example.com/status", { json = { green = true } })
  local s = script("schedules/nightly.lua", [[
    return {
      cron = "0 2 * * *",
      run = function(job)
        log.info("nightly", job.name, job.scheduled_at, job.catch_up)
        local r = assert(http.request{ url = "https://ci.example.com/status" })
        sleep(2)
        store.incr("runs")
        assert(cliq.post_channel("ops", "CI green: " .. tostring(json.decode(r.body).green)))
        return job
      end,
    }]])
  local job, info = kit.schedule(s)
  kit.eq(job.name, "nightly")
  kit.eq(job.scheduled_at, kit.clock.now() - 2)
  kit.eq(math.type(job.scheduled_at), "integer")
  kit.matches(job.id, "^%x+$")
  kit.eq(#job.id, 16)
  kit.eq(job.catch_up, false)
  kit.eq(info.job, job)
  kit.eq(info.elapsed, 2)
  kit.eq(kit.logs[1].msg, "nightly nightly 1795426200 false")
  kit.eq(kit.logs[1].id, job.id)
  kit.eq(kit.posts[1].message.text, "CI green: true")
  kit.eq(kit.store.get("runs"), 1)
  local again = kit.schedule(s)
  kit.eq(kit.store.get("runs"), 2)
  kit.eq(again.id ~= job.id, true, "each run has its own id")
end)

kit.test("opts.at is the tick: a later one moves the clock, an earlier one does not", function()
  local s = schedule('cron = "30 9 * * 1-5", catch_up = true, '
    .. "run = function(job) return { at = job.scheduled_at, now = os.time() } end")
  local t = kit.schedule(s, { at = "2026-11-24T09:30:00Z" })
  kit.eq(t.at, 1795426200 + 86400)
  kit.eq(t.now, t.at)
  t = kit.schedule(s, { at = 1795426200, catch_up = true })
  kit.eq(t.at, 1795426200)
  kit.eq(t.now, 1795426200 + 86400)
  kit.raises(function()
    kit.schedule(s, { at = 1.5 })
  end, "kit.schedule: opts.at must be a whole second")
  kit.raises(function()
    kit.schedule(s, { at = "tomorrow" })
  end, "kit.schedule: opts.at: write a time as")
  kit.raises(function()
    kit.schedule(s, { when = 1 })
  end, 'kit.schedule: unknown option "when" (at, catch_up)')
end)

kit.test("a catch-up run says so, and only a catch_up schedule has one", function()
  local code = "run = function(job) return job.catch_up end"
  kit.eq(kit.schedule(schedule('every = "1h", catch_up = true, ' .. code), { catch_up = true }),
    true)
  kit.raises(function()
    kit.schedule(schedule('every = "1h", ' .. code), { catch_up = true })
  end, "kit.schedule: schedules/nightly.lua has no catch_up = true")
end)

kit.test("a run that raises raises with its error and where", function()
  local s = script("schedules/nightly.lua",
    'return { every = "5m", run = function(job)\n  error("no luck for " .. job.name)\nend }')
  kit.raises(function()
    kit.schedule(s)
  end, "schedules/nightly.lua:2: no luck for nightly")
end)

-- ---- kit.hook ---------------------------------------------------------------

local ECHO = [[
return {
  receive = function(req)
    return { name = req.name, id = req.id, method = req.method, body = req.body,
      text = req.text, headers = req.headers, query = req.query }
  end,
}]]

kit.test("a table body is sent as JSON: req.text is the text, req.body the table", function()
  local body, status = kit.hook(script("hooks/ci.lua", ECHO), {
    body = { build = 7, ok = true, steps = kit.json.array() },
    headers = { Authorization = "Bearer x", ["X-Count"] = 3 },
    query = { env = "prod" },
  })
  kit.eq(status, 200)
  kit.eq(body.name, "ci")
  kit.eq(body.method, "POST")
  kit.eq(#body.id, 16)
  kit.eq(body.text, '{"build":7,"ok":true,"steps":[]}')
  kit.eq(body.body, { build = 7, ok = true, steps = kit.json.array() })
  kit.eq(body.headers, { authorization = "Bearer x", ["x-count"] = "3",
    ["content-type"] = "application/json" })
  kit.eq(body.query, { env = "prod" })
end)

kit.test("a string body is the text, decoded when it is JSON", function()
  local h = script("hooks/ci.lua", ECHO)
  local body = kit.hook(h, { body = "plain words" })
  kit.eq(body.body, "plain words")
  kit.eq(body.text, "plain words")
  kit.eq(body.headers["content-type"], "text/plain; charset=utf-8")
  body = kit.hook(h, { body = '{"a":[1]}', headers = { ["Content-Type"] = "application/x" } })
  kit.eq(body.body, { a = { 1 } })
  kit.eq(body.headers["content-type"], "application/x")
  -- As the host: only an object or an array is decoded; JSON's scalars
  -- stay the text.
  for _, text in ipairs({ "123", "null", '"quoted"', "true", '{"a":1} x' }) do
    body = kit.hook(h, { body = text })
    kit.eq(body.body, text)
    kit.eq(body.headers["content-type"], "text/plain; charset=utf-8")
  end
  body = kit.hook(h, { body = " [1, 2]\n" })
  kit.eq(body.body, { 1, 2 })
  kit.eq(body.headers["content-type"], "application/json")
  body = kit.hook(h)
  kit.eq(body.text, "")
  kit.eq(body.body, "")
  kit.eq(body.headers, kit.json.object())
end)

kit.test("the reply: a table, a string as message, nothing as ok, and the status", function()
  local function reply(code)
    return kit.hook(script("hooks/ci.lua", "return { receive = function() " .. code .. " end }"))
  end
  local body, status, info = reply("return { accepted = 3 }, 202")
  kit.eq(body, { accepted = 3 })
  kit.eq(status, 202)
  kit.eq(info.json, '{"accepted":3}')
  body, status = reply('return "queued"')
  kit.eq(body, { message = "queued" })
  kit.eq(status, 200)
  body, status = reply("return nil, 204")
  kit.eq(body, { ok = true })
  kit.eq(status, 204)
  kit.eq(select(2, reply("return {}, 400.0")), 400)
  kit.raises(function()
    reply("return {}, 99")
  end, "hooks/ci.lua receive: the status (the second value returned) must be an integer from "
    .. "200 to 599, got 99")
  -- As the host: a 1xx is no reply to a webhook, a status is a number.
  kit.raises(function()
    reply("return {}, 100")
  end, "must be an integer from 200 to 599, got 100")
  kit.raises(function()
    reply("return {}, 199")
  end, "must be an integer from 200 to 599, got 199")
  kit.raises(function()
    reply("return {}, 200.5")
  end, "must be an integer from 200 to 599, got 200.5")
  kit.raises(function()
    reply('return {}, "201"')
  end, "must be an integer from 200 to 599")
  kit.eq(select(2, reply("return {}, 200")), 200)
  kit.eq(select(2, reply("return {}, 599")), 599)
  kit.raises(function()
    reply("return 5")
  end, "hooks/ci.lua receive: receive returned a number; return a table")
  kit.raises(function()
    reply("return { f = print }")
  end, "hooks/ci.lua receive:")
end)

kit.test("a hook waits, logs and posts as a handler does", function()
  local h = script("hooks/ci.lua", [[
    return { receive = function(req)
      sleep(1)
      log.warn("got", req.body.n)
      assert(cliq.post_channel("builds", { text = "build " .. req.body.n }))
      return { posted = true }
    end }]])
  local body, status, info = kit.hook(h, { body = { n = 12 } })
  kit.eq(body, { posted = true })
  kit.eq(status, 200)
  kit.eq(info.elapsed, 1)
  kit.eq(kit.logs[1].id, info.req.id)
  kit.eq(kit.posts[1].target, "builds")
  kit.eq(kit.posts[1].message.text, "build 12")
  kit.raises(function()
    kit.hook(h, { body = 5 })
  end, "kit.hook: opts.body must be a table (sent as JSON) or a string")
  kit.raises(function()
    kit.hook(h, { headers = { x = true } })
  end, "kit.hook: opts.headers must map names to strings")
end)

os.exit(kit.run_tests())
