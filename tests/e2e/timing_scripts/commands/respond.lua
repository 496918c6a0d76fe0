-- Exercises req:respond(msg) in the ways a script author would, chosen by
-- params.options.mode; every result of respond() is returned so the tests
-- see exactly what the script saw (nil fields are simply absent).
local modes = {}

-- respond() once, then return something else as the sync reply.
function modes.then_return(req, o)
  local ok, err = req:respond(o.message or "from respond")
  return { text = "returned", ok = ok, err = err }
end

-- respond() twice: the second call must be refused as "used".
function modes.twice(req, o)
  local ok1, err1 = req:respond("first")
  local ok2, err2 = req:respond("second")
  return { text = "twice", first_ok = ok1, first_err = err1, second_ok = ok2, second_err = err2 }
end

-- respond() early, then keep working past the deadline: the late return
-- value must not be sent as well.
function modes.then_sleep(req, o)
  local ok, err = req:respond("early")
  sleep(tonumber(o.sleep) or 0)
  return { text = "late", ok = ok, err = err }
end

-- Wait past the response_url's validity, then try.
function modes.after(req, o)
  sleep(tonumber(o.sleep) or 0)
  local ok, err = req:respond("too late")
  return { text = "after", ok = ok, err = err }
end

return {
  execution = function(req)
    local o = req.params.options or {}
    local mode = modes[o.mode]
    if not mode then
      error("unknown mode " .. tostring(o.mode))
    end
    return mode(req, o)
  end,
}
