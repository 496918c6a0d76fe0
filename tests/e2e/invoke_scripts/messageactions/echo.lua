local echo = require "echo"

return {
  execution = echo,
}
