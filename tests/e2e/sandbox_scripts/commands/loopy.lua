-- A handler table whose __index never returns.
return setmetatable({
  execution = function() return "loopy ok" end,
}, {
  __index = function() while true do end end,
})
