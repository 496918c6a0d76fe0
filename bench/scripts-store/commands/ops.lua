-- bench/store.sh's handler: the arguments "<op> <count>" say which store
-- operation to run and how many times, one after the other (each waits for
-- its answer, as a script does):
--   incr N   store.incr on counters n1..n50
--   get N    store.get of the small objects "fill" wrote, v1..v50
--   none 0   no store operation: the baseline the others are compared with
--   fill N   writes v1..vN (once, before the gets)
-- A failed operation raises, so the host counts the call in
-- cliqhost_script_failures_total, which store.sh checks after each load.
local KEYS = 50

local ops = {
  incr = function(i)
    local n, err = store.incr("n" .. i, 1)
    if n == nil then
      error("store.incr: " .. tostring(err))
    end
  end,
  get = function(i)
    local v, err = store.get("v" .. i)
    if v == nil then
      error("store.get: " .. tostring(err or "v" .. i .. " is missing; fill first"))
    end
  end,
  fill = function(i)
    local ok, err = store.set("v" .. i, {
      user = "User N" .. i,
      email = "user" .. i .. "@zylcal.com",
      since = 1764547200 + i,
      roles = { "oncall", "deploy" },
    })
    if not ok then
      error("store.set: " .. tostring(err))
    end
  end,
  none = function() end,
}

return {
  execution = function(req)
    local name, count = (req.params.arguments or ""):match("^(%a+) (%d+)$")
    local op = ops[name]
    if not op then
      error("arguments: <incr|get|fill|none> <count>")
    end
    for i = 1, tonumber(count) do
      op((i - 1) % KEYS + 1)
    end
    return { text = "done " .. count }
  end,
}
