-- Tests of scripts/hooks/alertmanager.lua (Prometheus Alertmanager's
-- webhook turned into a card in a channel), written with the test kit.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_alertmanager.lua

local kit = require "cliq.test"

-- One alert as Alertmanager sends it.
local function alert(n, status, labels)
  local a = {
    status = status or "firing",
    labels = { alertname = "HighLatency", severity = "critical", job = "api",
      instance = "api-" .. n .. ":9100" },
    annotations = { summary = "p99 latency above 2 s on api-" .. n,
      description = "The 99th percentile has been over 2 s for 10 minutes." },
    startsAt = "2026-11-23T09:12:04.345Z",
    endsAt = "0001-01-01T00:00:00Z",
    generatorURL = "http://prometheus.example.com:9090/graph?g0.expr=latency_p99",
    fingerprint = string.format("%016x", n),
  }
  if a.status == "resolved" then
    a.endsAt = "2026-11-23T09:41:00Z"
  end
  for k, v in pairs(labels or {}) do
    a.labels[k] = v
  end
  return a
end

-- A notification (version 4) for a group of alerts.
local function notification(status, alerts, extra)
  local p = {
    version = "4",
    groupKey = '{}:{alertname="HighLatency"}',
    truncatedAlerts = 0,
    status = status,
    receiver = "cliq",
    groupLabels = { alertname = "HighLatency" },
    commonLabels = { alertname = "HighLatency", job = "api" },
    commonAnnotations = {},
    externalURL = "http://alertmanager.example.com:9093",
    alerts = alerts,
  }
  for k, v in pairs(extra or {}) do
    p[k] = v
  end
  return p
end

local function send(body)
  return kit.hook("alertmanager", {
    body = body,
    headers = { Authorization = "Bearer am-token", ["User-Agent"] = "Alertmanager/0.27.0" },
  })
end

kit.test("two firing alerts become one card in #alerts", function()
  local body, status = send(notification("firing", { alert(1), alert(2) }))
  kit.eq(status, 200)
  kit.eq(body, { posted = true, alerts = 2 })
  kit.eq(#kit.posts, 1)
  local post = kit.posts[1]
  kit.eq(post.fn, "post_channel")
  kit.eq(post.target, "alerts")
  kit.eq(post.token, "default")
  local m = post.message
  kit.eq(m.card, { title = "🔥 Firing: HighLatency (2)", theme = "modern-inline" })
  kit.eq(m.text, "🔥 *2 firing* of 2: HighLatency")
  kit.eq(#m.slides, 1)
  kit.eq(m.slides[1].type, "table")
  kit.eq(m.slides[1].data.headers, { "Alert", "Severity", "Instance", "Summary", "When" })
  kit.eq(m.slides[1].data.rows[2], {
    Alert = "🔥 HighLatency", Severity = "critical", Instance = "api-2:9100",
    Summary = "p99 latency above 2 s on api-2", When = "since 2026-11-23 09:12 UTC",
  })
  kit.eq(m.buttons[1].label, "Source")
  kit.eq(m.buttons[1].action.data.web,
    "http://prometheus.example.com:9090/graph?g0.expr=latency_p99")
  kit.eq(m.buttons[2].action.data.web, "http://alertmanager.example.com:9093")
end)

kit.test("a resolved notification looks resolved", function()
  local body = send(notification("resolved", { alert(1, "resolved") },
    { commonAnnotations = { summary = "p99 latency above 2 s" } }))
  kit.eq(body, { posted = true, alerts = 1 })
  local m = kit.posts[1].message
  kit.eq(m.card, { title = "✅ Resolved: HighLatency (1)", theme = "default" })
  kit.eq(m.text, "✅ *HighLatency resolved*\np99 latency above 2 s")
  kit.eq(m.slides[1].data.rows[1].Alert, "✅ HighLatency")
  kit.eq(m.slides[1].data.rows[1].When, "resolved 2026-11-23 09:41 UTC")
end)

kit.test("a firing group that holds resolved alerts counts only the firing", function()
  send(notification("firing", { alert(1), alert(2, "resolved"), alert(3) }))
  local m = kit.posts[1].message
  kit.eq(m.text, "🔥 *2 firing* of 3: HighLatency")
  kit.eq(m.slides[1].data.rows[2].Alert, "✅ HighLatency")
end)

kit.test("many alerts are summarised: five listed, the rest counted", function()
  local alerts = {}
  for i = 1, 12 do
    alerts[i] = alert(i)
  end
  local body, status = send(notification("firing", alerts, { truncatedAlerts = 3 }))
  kit.eq(status, 200)
  kit.eq(body.alerts, 12)
  local m = kit.posts[1].message
  kit.eq(m.card.title, "🔥 Firing: HighLatency (15)")
  kit.eq(#m.slides[1].data.rows, 5)
  kit.eq(m.slides[1].data.rows[5].Instance, "api-5:9100")
  kit.eq(m.slides[2], { type = "text", title = "", data = "and 10 more" })
end)

kit.test("a channel label routes the card; a label that is no channel name does not", function()
  send(notification("firing", { alert(1, nil, { channel = "payments-oncall" }) },
    { commonLabels = { alertname = "HighLatency", channel = "payments-oncall" } }))
  kit.eq(kit.posts[1].target, "payments-oncall")
  send(notification("firing", { alert(1) },
    { commonLabels = { alertname = "HighLatency", channel = "../admin" } }))
  kit.eq(kit.posts[2].target, "alerts")
  kit.contains(kit.log_text(), "warn: alertmanager: label channel ../admin is not a channel name")
end)

kit.test("long text is cut to what Cliq takes, and a too long link is left out", function()
  local a = alert(1, nil, { alertname = string.rep("x", 300) })
  a.generatorURL = "http://prometheus.example.com/graph?g0.expr=" .. string.rep("a", 300)
  local _, status = send(notification("firing", { a }, { commonLabels = a.labels,
    groupLabels = {} }))
  kit.eq(status, 200)
  local m = kit.posts[1].message
  kit.eq(utf8.len(m.card.title), 200)
  kit.matches(m.card.title, "^🔥 Firing: xxx+…$")
  kit.eq(m.slides[1].data.rows[1].Alert, "🔥 " .. string.rep("x", 59) .. "…")
  kit.eq(m.buttons[1].label, "Alertmanager")
  kit.eq(#m.buttons, 1)
end)

kit.test("a payload that is not Alertmanager's is refused with 400, and nothing is posted",
  function()
    local no_labels = alert(1)
    no_labels.labels = nil
    local cases = {
      { "not json at all", "the body is not Alertmanager's JSON object" },
      { { 1, 2 }, "the body is not Alertmanager's JSON object" },
      { notification("firing", { alert(1) }, { version = "3" }),
        "version 3 is not Alertmanager's webhook version 4" },
      { notification("pending", { alert(1) }), 'status must be "firing" or "resolved"' },
      { notification("firing", {}), "alerts must be a non-empty list" },
      { notification("firing", { a = 1 }), "alerts must be a non-empty list" },
      { notification("firing", { alert(1), no_labels }),
        "alerts[2] needs a status (firing or resolved) and labels" },
      { notification("firing", { alert(1) }, { commonLabels = "x" }),
        "commonLabels must be an object" },
    }
    for i, c in ipairs(cases) do
      local body, status = send(c[1])
      kit.eq(status, 400, "case " .. i)
      kit.contains(body.error, c[2], "case " .. i)
    end
    kit.eq(#kit.posts, 0)
  end)

kit.test("a post the outbox refuses is a 503, for Alertmanager to send again", function()
  kit.cliq.on("post_channel", kit.fails("no token named 'default' in the config"))
  local body, status = send(notification("firing", { alert(1) }))
  kit.eq(status, 503)
  kit.eq(body.error, "could not post to alerts: no token named 'default' in the config")
  kit.contains(kit.log_text(), "error: alertmanager: could not post to alerts")
end)

os.exit(kit.run_tests())
