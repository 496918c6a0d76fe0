-- POST /hooks/replies?mode=M (test_hooks.py): each reply shape a hook's
-- script can give, and the ways it can fail.
local modes = {}

function modes.table()
  return { made = "here", n = 3 }, 201
end

function modes.string()
  return "taken"
end

function modes.nothing() end

function modes.status_only(req)
  return nil, tonumber(req.query.status)
end

function modes.bad_status()
  return { x = 1 }, 99
end

function modes.text_status()
  return { x = 1 }, "200"
end

function modes.empty()
  return {}
end

function modes.list()
  return { "a", "b" }, 207
end

function modes.null_inside()
  return { gone = json.null, list = json.array(), obj = json.object() }
end

function modes.not_json()
  return { f = function() end }
end

function modes.number()
  return 42
end

function modes.raise()
  error("the secret plan is sk-raised-0123")
end

function modes.spin()
  while true do
  end
end

function modes.slow(req)
  log.info("slow hook: start " .. tostring(req.query.tag))
  sleep(tonumber(req.query.sleep) or 2)
  log.info("slow hook: done " .. tostring(req.query.tag))
  return { slept = true }
end

function modes.slow_raise(req)
  sleep(tonumber(req.query.sleep) or 2)
  error("late failure sk-late-0123")
end

return {
  receive = function(req)
    local f = modes[req.query.mode]
    if not f then
      return { error = "unknown mode " .. tostring(req.query.mode) }, 400
    end
    return f(req)
  end,
}
