local echo = require "echo"

return {
  button = echo,
  form = echo,
  form_change = echo,
  form_values = echo,
  form_view = echo,
  applet_button = echo,
}
