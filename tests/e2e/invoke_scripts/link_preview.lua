local echo = require "echo"

return {
  unfurl = echo,
  unfurl_button_action = echo,
  unfurl_dynamic_action = echo,
  unfurl_post_message = echo,
}
