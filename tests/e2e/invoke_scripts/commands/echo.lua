local echo = require "echo"

return {
  execution = echo,
  suggestion = echo,
}
