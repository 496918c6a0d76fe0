-- The handler the load test calls: reads the arguments and answers with a
-- small card, as a typical slash command does.
local args = require "cliq.args"

return {
  execution = function(req)
    local a = args.parse(req.params.arguments)
    local user = req.params.user or {}
    return {
      text = string.format("Deploying *%s* to *%s* for %s.", a[1] or "?", a[2] or "?",
        user.first_name or "someone"),
      card = { title = "Deploy started", theme = "modern-inline" },
    }
  end,
}
