-- Lua's warn(), as libraries call it: a log line at warn level.
return {
  execution = function()
    warn("@on") -- a control message, as in Lua: not a warning
    warn("disk ", "almost ", "full: ", 97, "%")
    local ok, err = pcall(function() warn({}) end)
    return tostring(ok) .. " " .. tostring(err)
  end,
}
