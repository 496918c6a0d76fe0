-- C functions that loop without running Lua code, so the instruction hook
-- alone never sees them (issue 12, finding 4).
local huge = 2 ^ 40
local cases = {
  rep_empty = function() return #string.rep("", huge) end,
  rep_empty_method = function() return #(""):rep(huge, "") end,
  move = function() table.move({}, 1, huge, 2) end,
  move_back = function() table.move({}, 2, huge, 1) end,
  remove = function()
    table.remove(setmetatable({}, { __len = function() return huge end }), 1)
  end,
  insert = function()
    table.insert(setmetatable({}, { __len = function() return huge end }), 1, "x")
  end,
  -- Still what Lua does, for ordinary tables.
  ordinary = function()
    local t = { 1, 2, 3 }
    table.insert(t, 1, 0)
    table.insert(t, "end")
    local r = table.remove(t, 2)
    local last = table.remove(t)
    local m = table.move({ "a", "b", "c" }, 1, 3, 2)
    local into = table.move({ "x", "y" }, 1, 2, 1, {})
    return table.concat(t, ",") .. " " .. r .. " " .. last .. " " .. table.concat(m, ",")
      .. " " .. table.concat(into, ",") .. " " .. ("ab"):rep(3, "-") .. " " .. #string.rep("", 5)
      .. " " .. tostring(table.remove({}))
  end,
}
return {
  execution = function(req)
    local f = cases[req.params.arguments]
    local ok, v = pcall(f)
    return "survived " .. tostring(ok) .. " " .. tostring(v)
  end,
}
