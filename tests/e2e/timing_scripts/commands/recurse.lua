-- Unbounded (non-tail) recursion: it must end in a stack overflow or a
-- limit, never hang or take the host down.
local function down(n)
  return 1 + down(n + 1)
end

return {
  execution = function(req)
    return { text = "returned " .. down(1) }
  end,
}
