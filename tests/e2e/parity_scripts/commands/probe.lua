-- Calls the host's bindings in ways that fail, and answers with what each
-- call raised or returned, for test_kit_parity.py: the test kit's fakes
-- (lualib/cliq/test/) must give the same strings as the host. Each call is
-- made directly from Lua code (so messages name the function), inside a
-- pcall; "file:line: " prefixes are dropped. Run it without a response_url:
-- req:respond would post to Cliq.
local function e(f)
  local ok, err = pcall(f)
  if ok then
    return "no error"
  end
  local msg, n = tostring(err), 1
  while n > 0 do
    msg, n = msg:gsub("^[^\n]-:%d+: ", "")
  end
  return msg
end

local function two(...)
  local a, b = ...
  return tostring(a) .. "|" .. tostring(b)
end

return {
  execution = function(req)
    return {
      e(function() return http.request({}) end),
      e(function() return http.request({ url = 5 }) end),
      e(function() return http.request({ url = "https://x", method = "get" }) end),
      e(function() return http.request({ url = "https://x", timeout = 0 }) end),
      e(function() return http.request({ url = "https://x", timeout = "1" }) end),
      e(function() return http.request({ url = "https://x", redirects = 21 }) end),
      e(function() return http.request({ url = "https://x", headers = { ["a:b"] = "c" } }) end),
      e(function() return http.request({ url = "https://x", headers = 5 }) end),
      e(function() return http.request({ url = "https://x", headers = { a = {} } }) end),
      e(function() return http.request("x") end),
      e(function() return sleep(-1) end),
      e(function() return sleep("x") end),
      e(function() return sleep() end),
      e(function() coroutine.wrap(function() sleep(1) end)() end),
      e(function() table.sort({ 3, 1, 2 }, function(a, b) sleep(0) return a < b end) end),
      two(req:respond("x")),
      e(function() return req:respond(5) end),
      e(function() return req:respond() end),
      e(function() return cliq.post_channel("", "x") end),
      e(function() return cliq.post_channel("ops") end),
      e(function() return cliq.post_channel("ops", "x", "alerts") end),
      e(function() return cliq.post_channel("ops", "x", { token = 1 }) end),
      e(function() return cliq.post_channel("ops", "x", { wait = "no" }) end),
      e(function() return cliq.post_bot("helper", "x") end),
      e(function() return cliq.post_bot("helper", "x", { userids = true }) end),
      e(function() return cliq.post_bot("helper", "x", { userids = { {} } }) end),
      e(function() return cliq.app_incoming("1", {}) end),
      two(cliq.post_channel("ops", "x")),
      two(cliq.post_bot("helper", { "a" }, { broadcast = true })),
      e(function() return require("nope.x") end),
      e(function() return require("../x") end),
      two(load("return 1", "n", "b")),
      e(function() return collectgarbage("collect") end),
      e(function() return setmetatable({}, { __gc = print }) end),
      e(function() return coroutine.resume(coroutine.running()) end),
      e(function() return json.encode({ a = { 1, nil, 3 } }) end),
      e(function() return json.encode({ 1, x = 2 }) end),
      e(function() return json.encode({ f = print }) end),
      e(function() return json.encode(0 / 0) end),
      e(function() return json.encode({ s = "\255" }) end),
      e(function() return json.encode(json.object({ [1.5] = 1 })) end),
      e(function() return json.array(setmetatable({}, {})) end),
      e(function() return json.encode() end),
      two(json.decode("[1,")), two(json.decode("{} x")), two(json.decode("")),
      two(json.decode('{"a" 1}')), two(json.decode('"\\q"')), two(json.decode("[1,2")),
      two(json.decode('"abc')), two(json.decode("[1 2]")), two(json.decode("-")),
      json.encode(json.decode('[[],{},[1,2.0,1e2,-0,9223372036854775807]]')),
      tostring(os.getenv("HOME")), type(io), type(string.dump), tostring(getmetatable("")),
      e(function() return store.get(1) end),
      e(function() return store.get() end),
      e(function() return store.get("") end),
      e(function() return store.get(string.rep("k", 513)) end),
      e(function() return store.set("k", nil) end),
      e(function() return store.set("k", 1, { ttl = 0 }) end),
      e(function() return store.set("k", 1, { ttl = "1" }) end),
      e(function() return store.set("k", 1, 5) end),
      e(function() return store.incr("k", "x") end),
      e(function() return store.update("k", 5) end),
      e(function() return store.list(5) end),
      e(function() return store.list("", { limit = 0 }) end),
      e(function() return store.list("", { limit = 1001 }) end),
      e(function() return store.list("", { after = 5 }) end),
      e(function() return store.list("", { after = string.rep("k", 513) }) end),
      two(store.set("p:a", { 1, 2 })), two(store.set("p:a", 1, { only_if_absent = true })),
      two(store.incr("p:a")), two(store.get("p:none")), two(store.delete("p:none")),
      two(store.set("p:f", { fn = print })), two(store.incr("p:n", 2)), two(store.incr("p:n", 0.5)),
      two(store.update("p:u", function(old) return (old or 0) + 1 end)),
      two(store.update("p:u", function() return nil end)),
      (function()
        local t = {}
        for i, it in ipairs((store.list("p:"))) do
          t[i] = it.key .. "=" .. json.encode(it.value)
        end
        return table.concat(t, ",")
      end)(),
      tostring(select(2, store.list("p:", { limit = 1 }))),
      e(function() return store.incr("p:n", math.huge) end),
      two(store.incr("p:big", 1e308)), two(store.incr("p:big", 1e308)),
      two(store.incr("p:max", math.maxinteger)), two(store.incr("p:max", 1)),
      math.type((store.incr("p:max", 1))),
    }
  end,
}
