-- POST /hooks/alertmanager: Prometheus Alertmanager's webhook notification
-- (its JSON, version "4") posted to a Cliq channel as a card: what fires or
-- was resolved, the first few alerts in a table, the rest counted.
--
-- In alertmanager.yml, a receiver that calls this hook with a bearer token:
--
--   receivers:
--     - name: cliq
--       webhook_configs:
--         - url: https://cliqhost.example.com/hooks/alertmanager
--           send_resolved: true
--           http_config:
--             authorization: { credentials_file: /etc/alertmanager/cliqhost.token }
--
-- and in cliqhost's config, the same token:
--
--   hooks = { alertmanager = { scheme = "bearer", secret = os.getenv("ALERTMANAGER_TOKEN") } }
--
-- The channel is the alerts' common `channel` label when they have one
-- (route teams' alerts with a label in Prometheus), else CONFIG.channel.
-- A post goes through the host's outbox; when it cannot be queued the hook
-- answers 503, so Alertmanager sends the notification again.

local message = require "cliq.message"

local CONFIG = {
  channel = "alerts", -- unless the alerts carry a common `channel` label
  token = "default", -- the config's webhook token to post with
  listed = 5, -- alerts shown in the card's table; the others are counted
}

local LOOK = {
  firing = { emoji = "🔥", word = "Firing", theme = "modern-inline" },
  resolved = { emoji = "✅", word = "Resolved", theme = "default" },
}

-- s cut to at most n characters (UTF-8), ending in an ellipsis when cut.
local function clip(s, n)
  if (utf8.len(s) or #s) <= n then
    return s
  end
  return s:sub(1, (utf8.offset(s, n) or n) - 1) .. "…"
end

-- "2026-11-23T09:30:00.123Z" -> "2026-11-23 09:30 UTC"; Alertmanager's
-- "0001-01-01T00:00:00Z" (no end yet) -> "".
local function when(stamp)
  local day, hm, zone = tostring(stamp):match("^(%d+%-%d%d%-%d%d)T(%d%d:%d%d)[%d:.]*(.*)$")
  if not day or day:sub(1, 4) == "0001" then
    return ""
  end
  return day .. " " .. hm .. (zone == "Z" and " UTC" or " " .. zone)
end

local function is_object(v)
  return type(v) == "table" and v[1] == nil and not rawequal(v, json.null)
end

local function is_list(v)
  return type(v) == "table" and not rawequal(v, json.null) and (#v > 0 or next(v) == nil)
end

-- The payload's problem, or nil when it has the documented shape (as far
-- as this script reads it).
local function problem(p)
  if not is_object(p) then
    return "the body is not Alertmanager's JSON object"
  elseif p.version ~= "4" then
    return "version " .. tostring(p.version) .. " is not Alertmanager's webhook version 4"
  elseif not LOOK[p.status] then
    return "status must be \"firing\" or \"resolved\", got " .. tostring(p.status)
  elseif not is_list(p.alerts) or #p.alerts == 0 then
    return "alerts must be a non-empty list"
  end
  for i, a in ipairs(p.alerts) do
    if not is_object(a) or not LOOK[a.status] or not is_object(a.labels) then
      return string.format("alerts[%d] needs a status (firing or resolved) and labels", i)
    end
    if a.annotations ~= nil and not is_object(a.annotations) then
      return string.format("alerts[%d].annotations must be an object", i)
    end
  end
  for _, k in ipairs({ "groupLabels", "commonLabels", "commonAnnotations" }) do
    if p[k] ~= nil and not is_object(p[k]) then
      return k .. " must be an object"
    end
  end
end

local function text_of(v, n)
  return type(v) == "string" and clip(v, n) or ""
end

-- One table row per alert: what, how bad, where, since or until when.
local function row(a)
  local ann = a.annotations or {}
  local firing = a.status == "firing"
  return {
    Alert = LOOK[a.status].emoji .. " " .. text_of(a.labels.alertname, 60),
    Severity = text_of(a.labels.severity, 20),
    Instance = text_of(a.labels.instance or a.labels.job, 60),
    Summary = text_of(ann.summary or ann.description, 150),
    When = firing and "since " .. when(a.startsAt) or "resolved " .. when(a.endsAt),
  }
end

-- Adds a button opening url when it is one Cliq takes (http or https, at
-- most 256 characters; Prometheus' graph links are often longer).
local function link(buttons, label, url)
  if type(url) == "string" and url:find("^https?://") and #url <= 256 then
    buttons[#buttons + 1] = message.button { label = label, action = message.open_url(url) }
  end
end

local function card_message(p)
  local look = LOOK[p.status]
  local common = p.commonLabels or {}
  local group = p.groupLabels or {}
  local count = #p.alerts + (math.tointeger(p.truncatedAlerts) or 0)
  local name = common.alertname or group.alertname or "alerts"
  local firing = 0
  for _, a in ipairs(p.alerts) do
    firing = firing + (a.status == "firing" and 1 or 0)
  end

  local summary = (p.commonAnnotations or {}).summary
  if not summary and #p.alerts == 1 then
    local ann = p.alerts[1].annotations or {}
    summary = ann.summary or ann.description
  end
  local lines = {}
  if p.status == "firing" then
    lines[1] = string.format("%s *%d firing* of %d: %s", look.emoji, firing, count, name)
  else
    lines[1] = string.format("%s *%s resolved*", look.emoji,
      count == 1 and name or count .. " alerts of " .. name)
  end
  if type(summary) == "string" then
    lines[2] = clip(summary, 1000)
  end

  local rows = {}
  for i = 1, math.min(#p.alerts, CONFIG.listed) do
    rows[i] = row(p.alerts[i])
  end
  local slides = {
    message.table_slide("Alerts", { "Alert", "Severity", "Instance", "Summary", "When" }, rows),
  }
  if count > #rows then
    slides[2] = message.text_slide("", string.format("and %d more", count - #rows))
  end

  local buttons = {}
  link(buttons, "Source", p.alerts[1].generatorURL)
  link(buttons, "Alertmanager", p.externalURL)

  return message.message {
    text = table.concat(lines, "\n"),
    card = message.card {
      title = clip(string.format("%s %s: %s (%d)", look.emoji, look.word, name, count), 200),
      theme = look.theme,
    },
    slides = slides,
    buttons = #buttons > 0 and buttons or nil,
  }
end

---@type cliq.Hook
return {
  receive = function(req)
    local p = req.body
    local bad = problem(p)
    if bad then
      log.warn("alertmanager: refused:", bad)
      return { error = bad }, 400
    end
    local channel = (p.commonLabels or {}).channel
    if type(channel) ~= "string" or not channel:find("^[%w_%-]+$") or #channel > 200 then
      if channel ~= nil then
        log.warn("alertmanager: label channel", channel, "is not a channel name; posting to",
          CONFIG.channel)
      end
      channel = CONFIG.channel
    end
    local ok, err = cliq.post_channel(channel, card_message(p), { token = CONFIG.token })
    if not ok then
      log.error("alertmanager: could not post to", channel, err)
      return { error = "could not post to " .. channel .. ": " .. err }, 503
    end
    log.info("alertmanager:", p.status, #p.alerts, "alerts posted to", channel, p.groupKey)
    return { posted = true, alerts = #p.alerts }
  end,
}
