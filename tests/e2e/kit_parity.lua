-- For test_kit_parity.py: builds requests with the test kit (cliq.test), runs
-- them with the kit, and prints one JSON line per request:
-- {"scripts": folder, "body": the request body, "output": the kit's reply}.
-- The test sends each body to the real host and compares the replies.
local kit = require "cliq.test"
local json = kit.json

local ROOT = assert(os.getenv("CLIQHOST_REPO"), "set CLIQHOST_REPO to the project's root")

local cases = {
  { "scripts", kit.command("deploy", "api") },
  { "scripts", kit.command("deploy", "api prod") },
  { "scripts", kit.command("deploy", "api prod --force", { user = kit.absent }) },
  { "scripts", kit.command("deploy", "") },
  { "scripts", kit.command("deploy", "api moon") },
  { "scripts", kit.command("deploy", 'api "prod') },
  { "scripts", kit.suggestion("deploy", "api ") },
  { "scripts", kit.suggestion("deploy", "api zz") },
  { "scripts", kit.button("approval", { key = "approve:api:prod" }) },
  { "scripts", kit.button("approval", { key = "reject:api:prod" }) },
  { "scripts", kit.button("approval", { key = "x" }) },
  { "scripts", kit.form("approval", { target = "api:prod", reason = "Red",
    retry = { label = "Tomorrow", value = "tomorrow" } }) },
  { "scripts", kit.bot("helper", "welcome") },
  { "scripts", kit.bot("helper", "message", { message = "feedback" }) },
  { "scripts", kit.bot("helper", "message", { message = "Hello There" }) },
  { "scripts", kit.bot("helper", "context", { context_id = "feedback",
    answers = kit.exactly({ rating = { text = "Great" } }) }) },
  { "scripts", kit.messageaction("stats", "héllo wörld ✓") },
  { "tests/e2e/parity_scripts",
    kit.request("command", "probe", "execution", nil, { response_url = false }) },
}

for _, c in ipairs(cases) do
  local dir, req = c[1], c[2]
  kit.reset()
  kit.scripts_dir = ROOT .. "/" .. dir -- as the host is given it, for the same messages
  kit.cliq.tokens({}) -- the host under test has no tokens in its config
  kit.clock.set(os.time()) -- bodies carry the real time, as Cliq's do
  local out = kit.invoke(req)
  local output = kit.json.object({ output = out })
  print(kit.json.encode({ scripts = dir, body = req.body, output = output }))
end

-- Hooks: the reply the kit's kit.hook gives for what the host's
-- POST /hooks/shapes would get (the signature is the host's business).
local hook_cases = {
  { shape = "echo", body = { alert = "disk", level = 3, tags = json.array({ "a", "b" }) } },
  { shape = "echo", body = "plain text, not JSON" },
  { shape = "echo", body = "123" },
  { shape = "echo", body = '["x", 1]' },
  { shape = "string", body = "" },
  { shape = "nothing", body = "" },
  { shape = "status", body = "{}" },
  { shape = "array", body = "{}" },
  { shape = "other", body = "{}" },
}
for _, c in ipairs(hook_cases) do
  kit.reset()
  kit.scripts_dir = ROOT .. "/tests/e2e/parity_scripts"
  local headers = { ["x-probe"] = "probe 1" }
  if type(c.body) == "string" then
    headers["content-type"] = "text/plain"
  end
  local reply, status, info = kit.hook("shapes", { body = c.body, query = { shape = c.shape },
    headers = headers })
  print(kit.json.encode({ scripts = "tests/e2e/parity_scripts", hook = "shapes",
    query = { shape = c.shape }, text = info.req.text, headers = headers,
    reply = reply, status = status }))
end

-- Schedules: the kit refuses a schedule's table with the message the
-- host's loader gives (cliqhost check prints it after the file's path).
local bad_schedules = {
  no_table = "return 3",
  unknown_field = 'return { every = "1s", run = function() end, when = 3 }',
  numeric_field = 'return { every = "1s", run = function() end, [1] = true }',
  run_not_function = 'return { every = "1s", run = 3 }',
  no_run = 'return { every = "1s" }',
  cron_not_string = "return { cron = 5, run = function() end }",
  catch_up_not_boolean = 'return { every = "1s", catch_up = "yes", run = function() end }',
  both = 'return { every = "1s", cron = "* * * * *", run = function() end }',
  neither = "return { run = function() end }",
  every_with_zone = 'return { every = "1s", timezone = "Europe/Paris", run = function() end }',
}
local names = {}
for name in pairs(bad_schedules) do
  names[#names + 1] = name
end
table.sort(names)
for _, name in ipairs(names) do
  kit.reset()
  local file = "schedules/" .. name .. ".lua"
  local ok, err = pcall(kit.load_string, bad_schedules[name], file)
  assert(not ok, file .. " loaded in the kit")
  print(kit.json.encode({ schedule = name, text = bad_schedules[name],
    error = tostring(err):gsub("^.-" .. file:gsub("%p", "%%%0") .. ": ", "") }))
end
