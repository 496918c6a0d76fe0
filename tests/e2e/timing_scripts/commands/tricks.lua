-- Ways a script can try to slip past the host's limits and waits. Each
-- mode is one request; the test checks the user hears back and the host
-- lives on. The mode comes in params.options.mode.
local stolen -- a handler coroutine kept across requests (mode "steal")

local modes = {}

-- A wait inside a C callback that cannot pause.
function modes.wait_in_gsub()
  local ok, err = pcall(function()
    return ("a"):gsub("a", function() sleep(0.2) end)
  end)
  return { text = "gsub", ok = ok, err = tostring(err) }
end

-- A to-be-closed variable whose __close never ends, in a handler that spins.
function modes.endless_close()
  local guard <close> = setmetatable({}, { __close = function() while true do end end })
  while true do end
end

-- An error object whose __tostring never ends.
function modes.endless_tostring()
  error(setmetatable({}, { __tostring = function() while true do end end }))
end

-- A finalizer, which would run at any time, outside every limit.
function modes.finalizer()
  local ok, err = pcall(setmetatable, {}, { __gc = function() end })
  return { text = "gc", ok = ok, err = tostring(err) }
end

-- Keeps this handler's coroutine, says so (the test waits for the line),
-- then waits long enough for the steal to come while it sleeps.
function modes.keep()
  stolen = coroutine.running()
  log.info("kept my coroutine")
  sleep(3)
  return { text = "kept and woke" }
end

-- Resumes or closes another handler's coroutine.
function modes.steal()
  local ok1, err1 = pcall(coroutine.resume, stolen, "injected")
  local ok2, err2 = pcall(coroutine.close, stolen)
  return { text = "steal", resumed = ok1, close = ok2, err = tostring(err1) .. " / " .. tostring(err2) }
end

-- Keeps the memory in use well under the cap while making lots of garbage:
-- collection must free it, without a memory kill.
function modes.garbage()
  local big = string.rep("y", 1536 * 1024)
  local keep = {}
  for i = 1, 60 do keep[#keep % 4 + 1] = big .. i end
  return { text = "garbage collected" }
end

return {
  execution = function(req)
    return modes[req.params.options.mode]()
  end,
}
