-- Module state: a fresh instance per kit.load, one per worker in the host.
local n = 0
return {
  next = function()
    n = n + 1
    return n
  end,
}
