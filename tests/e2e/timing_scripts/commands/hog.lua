-- A table that grows forever: the memory limit must stop it. Rows are big
-- (256 KiB) so the cap is reached in a few Lua instructions. The test's host
-- puts every other limit out of reach: this is about memory only.
return {
  execution = function(req)
    local t = {}
    local n = 0
    while true do
      n = n + 1
      t[n] = string.rep("x", 262144) .. n
    end
  end,
}
