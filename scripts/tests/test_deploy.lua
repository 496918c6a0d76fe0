-- Tests of scripts/commands/deploy.lua (/deploy SERVICE [ENV] [--force]),
-- written with the test kit: what a chat user sees for each way of typing
-- the command, and the suggestions while typing it.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_deploy.lua

local kit = require "cliq.test"

local USAGE = "Usage: `/deploy SERVICE [ENV] [--force]`, where ENV is one of dev, staging, prod"

-- The reply Cliq gets for "/deploy <arguments>".
local function deploy(arguments, params)
  return kit.invoke(kit.command("deploy", arguments, params))
end

-- The titles suggested while "/deploy <arguments>" is being typed.
local function suggested(arguments)
  local titles = {}
  for i, s in ipairs(kit.invoke(kit.suggestion("deploy", arguments))) do
    titles[i] = s.title
  end
  return titles
end

kit.test("a deploy without an environment goes to staging at once", function()
  kit.eq(deploy("api"), {
    text = "Deploying *api* to *staging*.",
    card = { title = "Deploy started", theme = "modern-inline" },
  })
  kit.contains(kit.log_text(), "deploy requested api staging by scott.fisher@zylcal.com")
end)

kit.test("a deploy to dev starts at once", function()
  kit.eq(deploy("web dev").text, "Deploying *web* to *dev*.")
end)

kit.test("a deploy to prod asks for an approval with two buttons", function()
  local out = deploy("api prod")
  kit.eq(out.text, "*Scott* wants to deploy *api* to production.")
  kit.eq(out.card, { title = "Approval needed", theme = "modern-inline" })
  kit.eq(out.slides, { {
    type = "label", title = "Details",
    data = { { Service = "api" }, { Environment = "Production, needs an approval" } },
  } })
  local to_approval = { type = "invoke.function", data = { name = "approval" } }
  kit.eq(out.buttons, {
    { label = "Approve", type = "+", key = "approve:api:prod", action = to_approval },
    { label = "Reject", type = "-", key = "reject:api:prod", action = to_approval },
  })
end)

kit.test("the approval card names whoever asked", function()
  local out = deploy("billing prod", { user = { first_name = "Ada" } })
  kit.eq(out.text, "*Ada* wants to deploy *billing* to production.")
  kit.eq(out.buttons[1].key, "approve:billing:prod")
  local anonymous = deploy("billing prod", { user = kit.absent })
  kit.eq(anonymous.text, "*Someone* wants to deploy *billing* to production.")
  kit.contains(kit.log_text(), "deploy requested billing prod by someone")
end)

kit.test("--force skips the approval", function()
  kit.eq(deploy("api prod --force"), {
    text = "Deploying *api* to *prod*.",
    card = { title = "Deploy started", theme = "modern-inline" },
  })
  kit.eq(deploy("--force api prod").text, "Deploying *api* to *prod*.")
end)

kit.test("no service: the usage", function()
  kit.eq(deploy(""), { text = USAGE })
  kit.eq(deploy("   "), { text = USAGE })
  kit.eq(deploy("--force"), { text = USAGE })
end)

kit.test("an unknown environment is named, with the usage", function()
  kit.eq(deploy("api moon"), { text = "Unknown environment *moon*. " .. USAGE })
  kit.eq(deploy("api PROD").text, "Unknown environment *PROD*. " .. USAGE)
end)

kit.test("an unclosed quote is reported", function()
  kit.eq(deploy('api "prod'), { text = 'Could not read the arguments: unclosed " quote' })
  kit.eq(deploy("'api prod").text, "Could not read the arguments: unclosed ' quote")
end)

kit.test("a quoted service name keeps its spaces", function()
  kit.eq(deploy('"api gateway" prod').buttons[2].key, "reject:api gateway:prod")
end)

kit.test("suggestions complete the environment once the service is typed", function()
  kit.eq(suggested("api "), { "dev", "staging", "prod" })
  kit.eq(suggested("api st"), { "staging" })
  kit.eq(suggested("api p"), { "prod" })
  kit.eq(kit.invoke(kit.suggestion("deploy", "api d")), {
    { title = "dev", description = "Developer sandbox, deploys at once" },
  })
end)

kit.test("no environment matches: an empty list, still a JSON array", function()
  local req = kit.suggestion("deploy", "api zz")
  local _, text = kit.output(kit.run(kit.load("commands/deploy.lua"), req))
  kit.eq(text, '{"output":[]}')
end)

kit.test("while the service is being typed, every environment is suggested", function()
  kit.eq(suggested("ap"), { "dev", "staging", "prod" })
  kit.eq(suggested(""), { "dev", "staging", "prod" })
end)

kit.test("deploy has exactly an execution and a suggestion handler", function()
  local names = {}
  for name in pairs(kit.load("commands/deploy.lua")) do
    names[#names + 1] = name
  end
  table.sort(names)
  kit.eq(names, { "execution", "suggestion" })
end)

os.exit(kit.run_tests())
