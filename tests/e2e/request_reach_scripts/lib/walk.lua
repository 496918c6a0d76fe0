-- What the request_reach scripts copy out of a table they reached into
-- (test_request_reach.py): fresh tables, so a reply shows what was seen;
-- the values are req's own, so their [] / {} marks go into it as they are.
local M = {}

-- What pairs() gives, as an object.
function M.collect(t)
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  return json.object(out)
end

-- What ipairs() gives, as an array.
function M.ilist(t)
  local out = {}
  for i, v in ipairs(t) do
    out[i] = v
  end
  return json.array(out)
end

return M
