-- For test_types.py: which of the names given as arguments are globals a
-- script sees, what each is, and a table's fields; and the request
-- object's own fields.
local function fields(t)
  local out = {}
  for k in pairs(t) do
    if type(k) == "string" then
      out[#out + 1] = k
    end
  end
  table.sort(out)
  return json.array(out)
end

return {
  execution = function(req)
    local seen = {}
    for name in req.params.arguments:gmatch("%S+") do
      local v = _ENV[name]
      if v ~= nil then
        seen[name] = { type = type(v), fields = type(v) == "table" and fields(v) or nil }
      end
    end
    return { text = json.encode { globals = seen, req = fields(req) } }
  end,
}
