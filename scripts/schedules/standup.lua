-- Weekdays at 9:30 Paris time: a standup reminder in #standup that names
-- today's facilitator, each member of the team in turn. The turn is a
-- counter in the host's store (store.incr is atomic, and a tick runs on one
-- host only), so the rotation survives restarts and is shared by every host.
-- A reminder missed while no host was up is useless later: no catch_up.

local message = require "cliq.message"

local CONFIG = {
  channel = "standup",
  team = { "Ada", "Grace", "Linus", "Margaret" },
  meeting_url = "https://meet.example.com/standup",
}

local TURN = "standup:turn" -- how many standups have had a facilitator

---@type cliq.Schedule
return {
  cron = "30 9 * * 1-5",
  timezone = "Europe/Paris",

  run = function(job)
    local team = CONFIG.team
    local lines = {}
    -- 9:30 in Paris is 7:30 or 8:30 UTC: the same day.
    lines[1] = os.date("!☀️ *Standup*, %A %d %B: what you did, what you will do, what blocks you.",
      job.scheduled_at)
    local turn, err = store.incr(TURN)
    if turn then
      local i = (math.floor(turn) - 1) % #team + 1
      lines[2] = string.format("Facilitating today: *%s* (next: %s).", team[i],
        team[i % #team + 1])
    else
      log.warn("standup: no facilitator today, the store failed:", err)
      lines[2] = "Facilitating today: whoever speaks first (the rotation is unavailable)."
    end
    local ok, post_err = cliq.post_channel(CONFIG.channel, message.message {
      text = table.concat(lines, "\n"),
      buttons = { message.button { label = "Join", type = "+",
        action = message.open_url(CONFIG.meeting_url) } },
    })
    if not ok then
      if turn then
        store.incr(TURN, -1) -- no standup was called: the same one facilitates next time
      end
      error("standup: could not post to #" .. CONFIG.channel .. ": " .. post_err)
    end
    log.info("standup: reminder posted for", os.date("!%Y-%m-%d", job.scheduled_at))
  end,
}
