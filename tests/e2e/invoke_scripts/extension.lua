local echo = require "echo"

return {
  installation = echo,
  installation_validator = echo,
  uninstallation = echo,
}
