-- For test_types.py: the request object's fields for a bot menu action.
return {
  action = function(req)
    local out = {}
    for k in pairs(req) do
      out[#out + 1] = k
    end
    table.sort(out)
    return { text = json.encode(json.array(out)) }
  end,
}
