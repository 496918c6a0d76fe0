-- Counts calls in a module's state, and leaves a global behind.
local counter = require "counter"
leaked = "from count.lua"
return {
  execution = function()
    return tostring(counter.next())
  end,
  suggestion = function()
    return { text = tostring(leaked) }
  end,
}
