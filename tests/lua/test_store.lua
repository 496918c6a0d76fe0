-- The test kit's store (cliq.test.store): the host's semantics, driven
-- through a script as a handler would use it.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 tests/lua/test_store.lua

local kit = require "cliq.test"

-- Runs `code` as a command handler's body; returns what the code returned
-- (passed back as JSON text, the reply a handler may give).
local function results(code)
  local h = kit.load_string("return { execution = function(req) "
    .. "local function pack(...) local t = {} "
    .. "for i = 1, select('#', ...) do local v = select(i, ...); t[i] = v == nil and json.null or v end "
    .. "return { n = select('#', ...), v = json.array(t) } end "
    .. "return json.encode(pack((function() " .. code .. " end)())) end }")
  local t = kit.json.decode((kit.run(h, kit.command("t", ""))))
  local out = {}
  for i = 1, t.n do
    if t.v[i] ~= kit.json.null then
      out[i] = t.v[i]
    end
  end
  return out, t.n
end

local function run(code)
  local out, n = results(code)
  return table.unpack(out, 1, n)
end

kit.test("set, get and delete; values come back as copies", function()
  kit.eq(run([[return store.get("a")]]), nil)
  kit.eq(run([[return store.set("a", { n = 1, list = { 1, 2 } })]]), true)
  kit.eq(run([[local v = store.get("a"); v.n = 2; return store.get("a").n]]), 1)
  kit.eq(run([[return store.get("a").list[2] ]]), 2)
  kit.eq(run([[return store.delete("a")]]), true)
  kit.eq(run([[return store.delete("a")]]), true)
  kit.eq(run([[return store.get("a")]]), nil)
end)

kit.test("only_if_absent, and a time to live on the fake clock", function()
  kit.eq(run([[return store.set("lock", "me", { only_if_absent = true, ttl = 30 })]]), true)
  kit.eq(run([[return store.set("lock", "you", { only_if_absent = true })]]), false)
  kit.eq(kit.store.get("lock"), "me")
  kit.clock.advance(30)
  kit.eq(run([[return store.get("lock")]]), nil)
  kit.eq(run([[return store.set("lock", "you", { only_if_absent = true })]]), true)
end)

kit.test("incr counts from 0, by any number, and refuses what is not a number", function()
  kit.eq(run([[return store.incr("n")]]), 1)
  kit.eq(run([[return store.incr("n", 41)]]), 42)
  kit.eq(run([[return store.incr("n", -0.5)]]), 41.5)
  kit.store.set("s", "text")
  kit.eq({ run([[return store.incr("s")]]) }, { nil, "not a number: s" })
end)

kit.test("incr's time to live applies when it makes the key", function()
  run([[store.incr("hits", 1, { ttl = 60 })]])
  kit.clock.advance(30)
  run([[store.incr("hits", 1, { ttl = 600 })]])
  kit.eq(kit.store.get("hits"), 2)
  kit.clock.advance(30)
  kit.eq(kit.store.get("hits"), nil)
end)

kit.test("update writes what fn returns, deletes on nil, retries on conflict", function()
  kit.eq(run([[return store.update("l", function(old) old = old or {}; old[#old + 1] = "x"; return old end)]]),
    { "x" })
  kit.store.interfere("l", { "y" }, { "y", "z" })
  kit.eq(run([[
    local calls = 0
    local v = store.update("l", function(old) calls = calls + 1; old[#old + 1] = "w"; return old end)
    return { v = v, calls = calls }]]), { v = { "y", "z", "w" }, calls = 3 })
  kit.eq(run([[return store.update("l", function() return nil end)]]), nil)
  kit.eq(kit.store.get("l"), nil)
  local values = {}
  for i = 1, 16 do
    values[i] = i
  end
  kit.store.interfere("c", table.unpack(values))
  kit.eq({ run([[return store.update("c", function(old) return (old or 0) + 1 end)]]) },
    { nil, "conflict: c changed 16 times" })
end)

kit.test("list pages through keys with a prefix, in order", function()
  for _, k in ipairs({ "u:c", "u:a", "v:a", "u:b", "u:d" }) do
    kit.store.set(k, k:upper())
  end
  local page = run([[local items, next = store.list("u:", { limit = 3 }); return { items = items, next = next }]])
  kit.eq(page, { items = { { key = "u:a", value = "U:A" }, { key = "u:b", value = "U:B" },
    { key = "u:c", value = "U:C" } }, next = "u:c" })
  page = run([[local items, next = store.list("u:", { limit = 3, after = "u:c" }); return { items = items, next = next }]])
  kit.eq(page, { items = { { key = "u:d", value = "U:D" } } })
  kit.eq(kit.store.keys(), { "u:a", "u:b", "u:c", "u:d", "v:a" })
end)

kit.test("limits: key length, value size, keys in the store", function()
  kit.raises(function() run([[store.get("")]]) end, "a key is a non-empty string of at most 512 bytes")
  kit.raises(function() run([[store.get(string.rep("k", 513))]]) end, "a key is a non-empty string of at most 512 bytes")
  kit.raises(function() run([[store.set("k", nil)]]) end, "store.delete removes a key")
  kit.raises(function() run([[store.get(1)]]) end, "bad argument #1 to 'get' (string expected, got number)")
  kit.settings.store_max_value_bytes = 10
  kit.eq({ run([[return store.set("big", string.rep("x", 20))]]) },
    { nil, "value too large: its JSON is over store_max_value_bytes (10)" })
  kit.settings.store_max_value_bytes = 262144
  kit.settings.store_max_keys = 2
  run([[store.set("a", 1); store.set("b", 2)]])
  kit.eq(run([[return store.set("a", 3)]]), true) -- an existing key
  kit.eq({ run([[return store.incr("c")]]) },
    { nil, "store full: 2 keys, store_max_keys (2); delete keys or raise the setting" })
end)

kit.test("a value JSON cannot carry is refused", function()
  local v, err = run([[return store.set("f", { fn = print })]])
  kit.eq(v, nil)
  kit.eq(err, "value.fn: cannot encode a function")
end)

kit.test("a failing store answers nil, err to every call; the next test starts empty", function()
  kit.store.set("a", 1)
  kit.store.fails("store unavailable: connection refused")
  kit.eq({ run([[return store.get("a")]]) }, { nil, "store unavailable: connection refused" })
  kit.eq({ run([[return store.incr("a")]]) }, { nil, "store unavailable: connection refused" })
  kit.store.fails(nil)
  kit.eq(run([[return store.get("a")]]), 1)
end)

kit.test("every test starts with an empty store", function()
  kit.eq(kit.store.keys(), {})
end)

os.exit(kit.run_tests())
