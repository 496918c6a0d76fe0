-- A "strict module": reading a handler it does not define raises.
return setmetatable({
  execution = function() return "strict ok" end,
}, {
  __index = function(_, k) error("strict: no field " .. tostring(k)) end,
})
