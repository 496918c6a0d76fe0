-- /hello [NAME]: the package's example command, so that a fresh install
-- answers `cliqhost invoke command hello` at once. Replace it with your own
-- scripts (commands/NAME.lua for /NAME, bots/NAME.lua, functions/NAME.lua,
-- ...); the README's "Writing handlers" says what each handler receives.

local args = require "cliq.args"
local message = require "cliq.message"

return {
  execution = function(req)
    local a = args.parse(req.params.arguments or "") or {}
    local user = req.params.user or {}
    local name = a[1] or user.first_name or "there"
    return message.message {
      text = string.format("Hello, *%s*! cliqhost is answering.", name),
      card = message.card { title = "cliqhost", theme = "modern-inline" },
    }
  end,
}
