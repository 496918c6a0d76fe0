-- Sleeps as long as the test asks (params.options.sleep, in seconds), then
-- answers with the test's tag, so a late result can be told from any other.
-- The deadline tests make it outlive the sync deadline.
local function nap(req)
  local o = req.params.options or {}
  sleep(tonumber(o.sleep) or 0)
  return o
end

return {
  execution = function(req)
    local o = nap(req)
    return { text = "done " .. tostring(o.tag), slept = tonumber(o.sleep) or 0 }
  end,

  -- A suggestion the user never sees late: the interim reply is empty.
  suggestion = function(req)
    local o = nap(req)
    return { { title = "late " .. tostring(o.tag) } }
  end,
}
