-- Tests of scripts/messageactions/stats.lua, written with the test kit:
-- the table of words, characters and sender it shows for a message.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_stats.lua

local kit = require "cliq.test"

-- The rows of the statistics table for a message, as { Measure = Value }.
local function stats(message, params)
  local out = kit.invoke(kit.messageaction("stats", message, params))
  local rows = {}
  for _, row in ipairs(out.slides[1].data.rows) do
    rows[row.Measure] = row.Value
  end
  return rows, out
end

kit.test("a message's words, characters and sender, in a table slide", function()
  local _, out = stats("ship the release notes today")
  kit.eq(out, {
    text = "Message statistics",
    card = { title = "Stats", theme = "modern-inline" },
    slides = { {
      type = "table", title = "",
      data = {
        headers = { "Measure", "Value" },
        rows = {
          { Measure = "Words", Value = "5" },
          { Measure = "Characters", Value = "28" },
          { Measure = "Sender", Value = "Scott Fisher" },
        },
      },
    } },
  })
end)

kit.test("characters are counted, not bytes", function()
  kit.eq(stats("héllo wörld ✓"), { Words = "3", Characters = "13", Sender = "Scott Fisher" })
end)

kit.test("words are split on any white space", function()
  kit.eq(stats("  one\ttwo\nthree  ").Words, "3")
end)

kit.test("an empty message has no words", function()
  kit.eq(stats(""), { Words = "0", Characters = "0", Sender = "Scott Fisher" })
end)

kit.test("a sender without a display name is named from first and last name", function()
  local function sender(s)
    return stats({ sender = kit.exactly(s) }).Sender
  end
  kit.eq(sender({ first_name = "Ada", last_name = "Lovelace" }), "Ada Lovelace")
  kit.eq(sender({ first_name = "Ada" }), "Ada")
  kit.eq(sender({ last_name = "Lovelace" }), "Lovelace")
  kit.eq(sender({}), "")
end)

kit.test("no message at all still answers", function()
  local rows = stats(nil, { message = kit.absent })
  kit.eq(rows, { Words = "0", Characters = "0", Sender = "" })
end)

os.exit(kit.run_tests())
