-- A handler that echoes what the host dispatched, so the end-to-end tests
-- can check the mapping of every handler in the catalogue. Each script in
-- this folder maps its handler keys to it.
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
