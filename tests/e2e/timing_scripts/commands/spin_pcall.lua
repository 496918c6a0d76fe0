-- Spins inside pcall, as a script that "handles all errors" would: the CPU
-- kill must not be caught, so "survived" must never reach the user.
return {
  execution = function(req)
    local ok, err = pcall(function()
      while true do end
    end)
    return { text = "survived", ok = ok, err = tostring(err) }
  end,
}
