-- Option tables whose fields come from a metatable: the host reads what
-- the table holds, and runs none of the script's code while it reads.
local function churn()
  local t = {}
  for i = 1, 2000 do t[i] = string.rep("g", 64) .. i end
  return nil
end

return {
  execution = function(req)
    local which = req.params.arguments
    if which == "http" then
      local opts = setmetatable({}, { __index = function(_, k)
        if k == "url" then return "http://127.0.0.1:9/" .. string.rep("u", 200) end
        return churn()
      end })
      local ok, err = pcall(http.request, opts)
      return "http " .. tostring(ok) .. " " .. tostring(err)
    elseif which == "cliq" then
      local opts = setmetatable({}, { __index = function(_, k)
        if k == "token" then return "from_meta_" .. string.rep("t", 50) end
        return churn()
      end })
      local ok, err = cliq.post_channel("alerts", "hi", opts)
      return "cliq " .. tostring(ok) .. " " .. tostring(err)
    end
    return "?"
  end,
}
