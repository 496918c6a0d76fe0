-- A handler that echoes what it was called with, so the kit's tests can
-- check the request object of every handler in the catalogue.
return function(req)
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
