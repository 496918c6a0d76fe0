local echo = require "echo"

return {
  welcome = echo,
  message = echo,
  context = echo,
  mention = echo,
  action = echo,
  incomingwebhook = echo,
  participation = echo,
  alert = echo,
}
