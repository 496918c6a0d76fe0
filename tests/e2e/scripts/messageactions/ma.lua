-- Echoes what the host dispatched, so the end-to-end tests can check the
-- mapping of every handler in the catalogue.
local function echo(req)
  local keys = {}
  for k in pairs(req.params) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return {
    text = string.format("%s|%s|%s", req.type, req.name or "-", req.handler),
    action = req.action,
    has_response_url = req.response_url ~= nil,
    param_keys = table.concat(keys, ","),
  }
end

return {
  execution = echo,
}
