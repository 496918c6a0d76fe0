-- Grows a table inside pcall: running out of memory must stop the handler,
-- not hand pcall an error it can swallow and carry on from. Big rows, as in
-- hog.lua; the test's host puts every other limit out of reach.
return {
  execution = function(req)
    local ok, err = pcall(function()
      local t = {}
      local n = 0
      while true do
        n = n + 1
        t[n] = string.rep("x", 262144) .. n
      end
    end)
    return { text = "survived", ok = ok, err = tostring(err) }
  end,
}
