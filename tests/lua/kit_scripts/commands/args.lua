local args = require "cliq.args"
return {
  execution = function()
    return { shadow = args.shadow == true }
  end,
}
