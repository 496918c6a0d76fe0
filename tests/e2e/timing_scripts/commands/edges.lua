-- Code that spins where the CPU limit's hook is not simply on the handler's
-- own coroutine: inside coroutines the script made (resumed, wrapped,
-- nested, closed), inside C functions that call back into Lua, inside an
-- error handler. Each mode is one request (params.options.mode); a mode
-- that returns "survived" got past the limit.
local saved -- a coroutine kept across requests (modes keep and reuse)
local done = false

local function spin()
  while true do end
end

local modes = {}

function modes.resumed_in_pcall()
  local ok, err = pcall(function()
    return coroutine.resume(coroutine.create(spin))
  end)
  return { text = "survived", ok = ok, err = tostring(err) }
end

function modes.nested_in_pcall()
  local ok, err = pcall(function()
    local outer = coroutine.wrap(function()
      return coroutine.resume(coroutine.create(function()
        pcall(spin)
      end))
    end)
    return outer()
  end)
  return { text = "survived", ok = ok, err = tostring(err) }
end

-- Two coroutines hand the CPU to each other without end: the thread that
-- runs changes all the time.
function modes.ping_pong()
  local other = coroutine.wrap(function()
    while true do coroutine.yield() end
  end)
  pcall(function()
    while true do other() end
  end)
  return { text = "survived" }
end

function modes.gsub_callback()
  local ok, err = pcall(string.gsub, "aaaa", "a", spin)
  return { text = "survived", ok = ok, err = tostring(err) }
end

function modes.sort_comparator()
  local ok, err = pcall(table.sort, { 3, 1, 2, 5, 4 }, function() spin() end)
  return { text = "survived", ok = ok, err = tostring(err) }
end

function modes.xpcall_handler()
  local ok, err = xpcall(error, function() spin() end, "x")
  return { text = "survived", ok = ok, err = tostring(err) }
end

-- A suspended coroutine whose pending __close spins, closed by the script.
function modes.close_spins()
  local co = coroutine.create(function()
    local guard <close> = setmetatable({}, { __close = spin })
    coroutine.yield()
  end)
  coroutine.resume(co)
  local ok, err = pcall(coroutine.close, co)
  return { text = "survived", ok = ok, err = tostring(err) }
end

-- Keeps a coroutine that spins until `done`: the limit stops it (and the
-- handler) in the loop, with the hook armed on it.
function modes.keep()
  done = false
  saved = coroutine.create(function()
    while not done do end
    coroutine.yield("ok")
  end)
  pcall(coroutine.resume, saved)
  return { text = "survived" }
end

-- Resumes that coroutine in a later request, which is within its limit:
-- the hook left armed must not stop it.
function modes.reuse()
  done = true
  local ok, v = coroutine.resume(saved)
  return { text = "reused " .. tostring(ok) .. " " .. tostring(v) }
end

-- Spins for about `ms` milliseconds of CPU (os.clock), then answers.
function modes.near(req)
  local t0 = os.clock()
  local ms = req.params.options.ms
  while (os.clock() - t0) * 1000 < ms do end
  return { text = "near" }
end

return {
  execution = function(req)
    return modes[req.params.options.mode](req)
  end,
}
