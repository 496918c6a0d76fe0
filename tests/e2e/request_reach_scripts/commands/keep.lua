-- Keeps parts of req nothing looked into in a module-level variable, and a
-- later call reads them (test_request_reach.py): they must still hold the
-- first call's data after that call's body is gone. One worker.
local kept

local walk = require "walk"
local collect = walk.collect

return {
  execution = function(req)
    local p = req.params
    if p.mode == "keep" then
      kept = { walked = p.k1, encoded = p.k2, list = p.k3, other_path = req.body.params.k4 }
      return "kept"
    end
    if p.mode == "read" then
      local list = {}
      for i, v in ipairs(kept.list) do
        list[i] = v
      end
      return {
        walked = collect(kept.walked), encoded = json.decode(json.encode(kept.encoded)),
        list = json.array(list), other_path = kept.other_path, now = p.k1,
      }
    end
    return "churn " .. #p.junk
  end,
}
