-- /oncall [take | history]: who is on call, kept in the host's store, so
-- every worker (and, on a shared Redis, every host) gives the same answer,
-- and a restart or a saved edit forgets nothing.
--
--   /oncall           who is on call, and since when
--   /oncall take      you are on call from now; the handover is recorded
--   /oncall history   the last handovers, newest first

local args = require "cliq.args"

local CURRENT = "oncall:current" -- { name, id, since }
local HISTORY = "oncall:history" -- the last handovers, newest first
local KEEP = 10

local function when(t)
  return os.date("!%Y-%m-%d %H:%M UTC", t)
end

local function who(user)
  return user.first_name or user.name or "Someone"
end

local function current()
  local on, err = store.get(CURRENT)
  if err then
    return "Cannot tell who is on call right now (" .. err .. ")."
  end
  if not on then
    return "Nobody is on call. `/oncall take` to take it."
  end
  return string.format("*%s* has been on call since %s.", on.name, when(on.since))
end

local function take(user)
  local now = os.time()
  local me = { name = who(user), id = user.id, since = now }
  -- The handover and the history change together, atomically: two people
  -- typing /oncall take at once each get a turn, and neither is lost.
  local before
  local _, err = store.update(CURRENT, function(old)
    before = old
    return me
  end)
  if err then
    return "Could not hand over (" .. err .. ")."
  end
  local _, herr = store.update(HISTORY, function(list)
    list = list or {}
    table.insert(list, 1, { from = before and before.name or json.null, to = me.name, at = now })
    while #list > KEEP do
      table.remove(list)
    end
    return list
  end)
  if herr then
    log.warn("oncall: the handover was not recorded:", herr)
  end
  if before and before.id == me.id then
    return "You are still on call, since " .. when(now) .. "."
  end
  if before then
    return string.format("*%s* is on call now, taking over from *%s*.", me.name, before.name)
  end
  return string.format("*%s* is on call now.", me.name)
end

local function history()
  local list, err = store.get(HISTORY)
  if err then
    return "Cannot read the history right now (" .. err .. ")."
  end
  if not list or #list == 0 then
    return "No handovers yet."
  end
  local lines = {}
  for i, h in ipairs(list) do
    local from = h.from ~= json.null and h.from or "nobody"
    lines[i] = string.format("%s: *%s* took over from %s", when(h.at), h.to, from)
  end
  return table.concat(lines, "\n")
end

return {
  execution = function(req)
    local a, err = args.parse(req.params.arguments)
    if not a then
      return "Could not read the arguments: " .. err
    end
    local verb = a[1]
    if verb == nil then
      return current()
    elseif verb == "take" then
      return take(req.params.user or {})
    elseif verb == "history" then
      return history()
    end
    return "Usage: `/oncall`, `/oncall take` or `/oncall history`"
  end,
}
