local echo = require "echo"

return {
  view = echo,
}
