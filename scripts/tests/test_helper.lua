-- Tests of scripts/bots/helper.lua, written with the test kit: the welcome,
-- what the bot answers to each word, and its two-question feedback
-- conversation (bot context).
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_helper.lua

local kit = require "cliq.test"

local HELP = "I know *help*, *time* and *feedback*."

-- The bot's reply to a message.
local function say(text, params)
  local p = params or {}
  p.message = text
  return kit.invoke(kit.bot("helper", "message", p))
end

-- The bot's reply when the conversation `id` ends with these answers.
local function answer(id, answers, params)
  local p = params or {}
  p.context_id = id
  p.answers = kit.exactly(answers)
  return kit.invoke(kit.bot("helper", "context", p))
end

kit.test("a new user is greeted by name, with suggestions", function()
  kit.eq(kit.invoke(kit.bot("helper", "welcome")), {
    text = "Hi Scott! I'm the helper bot. " .. HELP,
    suggestions = { list = { { text = "help" }, { text = "feedback" } } },
  })
  local anonymous = kit.invoke(kit.bot("helper", "welcome", { user = kit.absent }))
  kit.eq(anonymous.text, "Hi there! I'm the helper bot. " .. HELP)
end)

kit.test("help, or nothing at all, lists what the bot knows", function()
  kit.eq(say("help"), { text = HELP })
  kit.eq(say("  HELP "), { text = HELP })
  kit.eq(say(""), { text = HELP })
end)

kit.test("time tells the time in UTC, wherever the host runs", function()
  kit.eq(say("time"), { text = "It is 09:30 UTC." })
  kit.clock.zone(-8)
  kit.eq(say("time").text, "It is 09:30 UTC.")
  kit.clock.set("2026-12-31T23:59:30Z")
  kit.eq(say("Time").text, "It is 23:59 UTC.")
end)

kit.test("anything else is echoed as typed, with the help", function()
  kit.eq(say("Hello There"), { text = 'You said "Hello There". ' .. HELP })
  kit.eq(say("feedback please").text, 'You said "feedback please". ' .. HELP)
end)

kit.test("feedback starts a conversation of two questions", function()
  kit.eq(say("feedback"), {
    text = "Two quick questions.",
    context = {
      id = "feedback",
      timeout = 300,
      params = {
        { name = "rating", question = "How do you like cliqhost?",
          suggestions = { list = {
            { text = "Great" }, { text = "Fine" }, { text = "Not yet" },
          } } },
        { name = "wish", question = "What should it do next?" },
      },
    },
  })
  kit.eq(say(" Feedback ").context.id, "feedback")
end)

kit.test("the answers come back together and are both used", function()
  local out = answer("feedback", { rating = { text = "Great" }, wish = { text = "Live reload" } })
  kit.eq(out, {
    text = "Thanks, Scott! You said *Great*, and you wish for: Live reload",
    card = { title = "Feedback noted", theme = "modern-inline" },
  })
  kit.eq(kit.logs[1].msg, "feedback Great Live reload")
end)

kit.test("a question left unanswered reads as no answer", function()
  kit.eq(answer("feedback", { rating = { text = "Fine" } }).text,
    "Thanks, Scott! You said *Fine*, and you wish for: no answer")
  kit.eq(answer("feedback", {}, { user = { first_name = "Ada" } }).text,
    "Thanks, Ada! You said *no answer*, and you wish for: no answer")
end)

kit.test("an unknown conversation asks to start again", function()
  kit.eq(answer("survey", { rating = { text = "Great" } }),
    { text = "I lost track of that conversation; say *feedback* to start again." })
end)

kit.test("the whole conversation, as a user has it", function()
  local question = say("feedback").context
  local answers = {}
  for _, q in ipairs(question.params) do
    local pick = q.suggestions and q.suggestions.list[1].text or "Dark mode"
    answers[q.name] = { text = pick }
  end
  kit.eq(answer(question.id, answers).text,
    "Thanks, Scott! You said *Great*, and you wish for: Dark mode")
end)

kit.test("the bot handles welcome, message and context only", function()
  local names = {}
  for name in pairs(kit.load("bots/helper.lua")) do
    names[#names + 1] = name
  end
  table.sort(names)
  kit.eq(names, { "context", "message", "welcome" })
end)

os.exit(kit.run_tests())
