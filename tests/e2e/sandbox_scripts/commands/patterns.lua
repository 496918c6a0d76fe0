-- Runs one part of lib/pattern_cases.lua inside the host; arguments "k/n"
-- (PatternConformance in test_sandbox.py compares it with lua5.4's).
local cases = require "pattern_cases"

return {
  execution = function(req)
    local part, parts = req.params.arguments:match("^(%d+)/(%d+)$")
    return cases.run(tonumber(part), tonumber(parts))
  end,
}
