-- Tests of scripts/schedules/standup.lua (the weekday standup reminder),
-- written with the test kit: kit.schedule runs it at a tick on the kit's
-- fake clock, with the store shared by every run of a test.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_standup.lua

local kit = require "cliq.test"

-- Monday 2026-11-23, 9:30 in Paris (UTC+1 in winter).
local MONDAY = 1795422600 -- 2026-11-23T08:30:00Z
local DAY = 86400

local function facilitator(post)
  return post.message.text:match("Facilitating today: %*(%a+)%*")
end

kit.test("it is on weekdays at 9:30 Paris time", function()
  local s = kit.load("schedules/standup.lua")
  kit.eq(s.cron, "30 9 * * 1-5")
  kit.eq(s.timezone, "Europe/Paris")
  kit.eq(s.catch_up, nil)
end)

kit.test("the reminder goes to #standup, dated by its tick", function()
  local _, info = kit.schedule("standup", { at = MONDAY })
  kit.eq(#kit.posts, 1)
  local post = kit.posts[1]
  kit.eq(post.fn, "post_channel")
  kit.eq(post.target, "standup")
  kit.eq(post.message.text, "☀️ *Standup*, Monday 23 November: what you did, what you will "
    .. "do, what blocks you.\nFacilitating today: *Ada* (next: Grace).")
  kit.eq(post.message.buttons[1].action.data.web, "https://meet.example.com/standup")
  kit.eq(kit.logs[#kit.logs].msg, "standup: reminder posted for 2026-11-23")
  kit.eq(kit.logs[#kit.logs].id, info.job.id)
end)

kit.test("the facilitator rotates from one run to the next, and wraps around", function()
  local seen = {}
  for day = 0, 4 do
    kit.schedule("standup", { at = kit.clock.now() + (day > 0 and DAY or 0) })
    seen[#seen + 1] = facilitator(kit.posts[#kit.posts])
  end
  kit.eq(seen, { "Ada", "Grace", "Linus", "Margaret", "Ada" })
  kit.contains(kit.posts[4].message.text, "*Margaret* (next: Ada)")
  kit.eq(kit.store.get("standup:turn"), 5)
end)

kit.test("the date is the tick's, even when the run starts late", function()
  kit.clock.set("2026-11-24T10:00:00Z")
  kit.schedule("standup", { at = "2026-11-24T08:30:00Z" })
  kit.contains(kit.posts[1].message.text, "Tuesday 24 November")
end)

kit.test("without the store there is still a reminder, with no facilitator", function()
  kit.store.fails("store unavailable: connection refused")
  kit.schedule("standup", { at = MONDAY })
  kit.contains(kit.posts[1].message.text, "Facilitating today: whoever speaks first")
  kit.contains(kit.log_text(), "warn: standup: no facilitator today, the store failed: "
    .. "store unavailable: connection refused")
end)

kit.test("a post that fails fails the run", function()
  kit.cliq.on("post_channel", kit.fails("HTTP 404: channel not found"))
  kit.raises(function()
    kit.schedule("standup", { at = MONDAY })
  end, "standup: could not post to #standup: HTTP 404: channel not found")
  kit.cliq.on("post_channel", nil)
  kit.schedule("standup", { at = MONDAY + DAY })
  kit.eq(facilitator(kit.posts[#kit.posts]), "Ada", "the turn was not used up")
end)

os.exit(kit.run_tests())
