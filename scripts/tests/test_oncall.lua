-- Tests of scripts/commands/oncall.lua (/oncall [take | history]), written
-- with the test kit, whose store is shared by every call of a test as the
-- host's is by every call.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_oncall.lua

local kit = require "cliq.test"

local ADA = { first_name = "Ada", id = "100" }
local GRACE = { first_name = "Grace", id = "200" }

local function oncall(arguments, user)
  return kit.invoke(kit.command("oncall", arguments, user and { user = user } or nil)).text
end

kit.test("nobody is on call at first", function()
  kit.eq(oncall(""), "Nobody is on call. `/oncall take` to take it.")
end)

kit.test("who took it is on call, for every call after", function()
  kit.eq(oncall("take", ADA), "*Ada* is on call now.")
  for _ = 1, 3 do
    kit.eq(oncall(""), "*Ada* has been on call since 2026-11-23 09:30 UTC.")
  end
  kit.eq(kit.store.get("oncall:current").name, "Ada")
end)

kit.test("a handover names both, and the history lists it newest first", function()
  oncall("take", ADA)
  kit.clock.advance(3600)
  kit.eq(oncall("take", GRACE), "*Grace* is on call now, taking over from *Ada*.")
  kit.eq(oncall("history"),
    "2026-11-23 10:30 UTC: *Grace* took over from Ada\n"
      .. "2026-11-23 09:30 UTC: *Ada* took over from nobody")
end)

kit.test("taking it again keeps you on call", function()
  oncall("take", ADA)
  kit.eq(oncall("take", ADA), "You are still on call, since 2026-11-23 09:30 UTC.")
end)

kit.test("the history keeps the last ten handovers", function()
  for i = 1, 12 do
    oncall("take", i % 2 == 0 and ADA or GRACE)
    kit.clock.advance(60)
  end
  local lines = {}
  for line in oncall("history"):gmatch("[^\n]+") do
    lines[#lines + 1] = line
  end
  kit.eq(#lines, 10)
  kit.eq(lines[1], "2026-11-23 09:41 UTC: *Ada* took over from Grace")
end)

kit.test("a handover made by someone else meanwhile is not lost", function()
  -- Grace took over on another worker while Ada's handover was being
  -- written: Ada's update runs again and takes over from Grace.
  oncall("take", ADA)
  kit.store.interfere("oncall:current", { name = "Grace", id = "200", since = kit.clock.now() })
  kit.eq(oncall("take", ADA), "*Ada* is on call now, taking over from *Grace*.")
end)

kit.test("a store that cannot be reached is said, not hidden", function()
  kit.store.fails("store unavailable: connection refused")
  kit.eq(oncall(""), "Cannot tell who is on call right now (store unavailable: connection refused).")
  kit.eq(oncall("take", ADA), "Could not hand over (store unavailable: connection refused).")
end)

kit.test("anything else gets the usage", function()
  kit.eq(oncall("give"), "Usage: `/oncall`, `/oncall take` or `/oncall history`")
end)

os.exit(kit.run_tests())
