-- Reaches into parts of req that nothing has touched yet, one way per
-- probe (test_request_reach.py). params.probes lists the probes to run;
-- each runs on its own copy of the test's object, params[<probe name>],
-- which the dispatcher reads but does not look into. A probe returns what
-- it saw; the test compares that with the JSON it sent.
local message = require "cliq.message"

local walk = require "walk"
local collect = walk.collect
local ilist = walk.ilist

local function prefix(t)
  return (tostring(t):match("^(.-): "))
end

local probes = {}

-- ---- the base library ----------------------------------------------------

function probes.next_walk(c)
  local out, n = {}, 0
  local k, v = next(c)
  while k ~= nil do
    n = n + 1
    out[k] = v
    k, v = next(c, k)
  end
  return { n = n, all = json.object(out) }
end

function probes.next_first(c)
  local k, v = next(c)
  return { key = k, value = v }
end

function probes.next_for(c)
  local out = {}
  for k, v in next, c do
    out[k] = v
  end
  return json.object(out)
end

-- next(t, k) with a key known from the JSON, before anything walked t.
function probes.next_from_key(c)
  local after = next(c.obj, "a")
  local order = {}
  local k = next(c.obj)
  while k ~= nil do
    order[#order + 1] = k
    k = next(c.obj, k)
  end
  return { after_a = after or json.null, order = order }
end

function probes.next_bad_key(c)
  local ok, err = pcall(next, c, "no such key")
  return { ok = ok, err = tostring(err) }
end

function probes.next_empty(c)
  return { o = next(c.empty_o) == nil, a = next(c.empty_a) == nil, nums = next(c.nums) ~= nil }
end

function probes.rawget_object(c)
  return {
    s = rawget(c, "s"), i = rawget(c, "i"), f = rawget(c, "f"), whole_float = rawget(c, "whole_float"),
    n = rawget(c, "n"), t = rawget(c, "t"), fa = rawget(c, "fa"), obj = rawget(c, "obj"),
    arr = rawget(c, "arr"), one = rawget(c, "1"), missing = rawget(c, "missing") == nil,
    int_one = rawget(c, 1) == nil,
  }
end

function probes.rawget_array(c)
  local a = c.nums
  return { first = rawget(a, 1), third = rawget(a, 3), past = rawget(a, 6) == nil,
           name = rawget(a, "1") == nil }
end

function probes.rawlen(c)
  return { nums = rawlen(c.nums), empty_a = rawlen(c.empty_a), obj = rawlen(c.obj),
           arr = rawlen(c.arr), s = rawlen(c.s) }
end

function probes.rawequal(c, req, name)
  local other = req.body.params[name]
  return {
    self = rawequal(c.obj, c.obj),
    other_path = rawequal(c.arr, other.arr),
    empties = rawequal(c.empty_o, c.empty_a),
    copies = rawequal(c.strs, req.params.rawequal_other.strs),
  }
end

function probes.rawset_new(c)
  rawset(c, "added", 5)
  return { other = c.s, all = collect(c) }
end

function probes.rawset_existing(c)
  rawset(c, "s", "replaced")
  return { got = c.s, raw = rawget(c, "s"), all = collect(c) }
end

function probes.rawset_nil(c)
  rawset(c, "s", nil)
  return { all = collect(c), n = c.i }
end

function probes.rawset_array(c)
  rawset(c.nums, 6, 11)
  rawset(c.strs, 1, "first")
  return { nums = c.nums, strs = c.strs, len = #c.nums }
end

function probes.assign_new(c)
  c.x = 1
  return collect(c)
end

function probes.assign_existing(c)
  c.i = "changed"
  return collect(c)
end

function probes.assign_nil(c)
  c.t = nil
  return { all = collect(c), gone = c.t == nil }
end

function probes.assign_array(c)
  c.nums[1] = 100
  local s = c.strs
  s[#s + 1] = "echo"
  return { nums = c.nums, strs = c.strs }
end

function probes.length(c)
  return { nums = #c.nums, arr = #c.arr, empty_a = #c.empty_a, empty_o = #c.empty_o, obj = #c.obj }
end

function probes.ipairs(c)
  return { arr = ilist(c.arr), obj = ilist(c.obj) }
end

function probes.pairs(c)
  return { all = collect(c) }
end

-- Fields changed while pairs() walks the table (Lua allows it).
function probes.pairs_write(c)
  for k in pairs(c) do
    c[k] = "seen"
  end
  return collect(c)
end

-- Tables nothing touched as another table's __index and __newindex.
function probes.as_metamethods(c)
  local proxy = setmetatable({}, { __index = c.obj, __newindex = c.headers })
  proxy.added = "through a proxy"
  return { a = proxy.a, b = proxy.b, z = proxy.z, headers = collect(c.headers),
           raw = rawget(proxy, "added") == nil }
end

function probes.pairs_array(c)
  local keys, vals = {}, {}
  for k, v in pairs(c.arr) do
    keys[#keys + 1] = k
    vals[k] = v
  end
  table.sort(keys)
  return { keys = keys, vals = json.array(vals) }
end

function probes.unpack(c)
  return { n = select("#", table.unpack(c.arr)), nums = { table.unpack(c.nums) },
           part = { table.unpack(c.strs, 2, 3) } }
end

function probes.concat(c)
  return { all = table.concat(c.strs, ","), nums = table.concat(c.nums, "+", 2, 4) }
end

function probes.insert_end(c)
  table.insert(c.strs, "echo")
  return c.strs
end

function probes.insert_front(c)
  table.insert(c.nums, 1, 0)
  return c.nums
end

function probes.remove_end(c)
  local r = table.remove(c.strs)
  return { r = r, rest = c.strs }
end

function probes.remove_front(c)
  local r = table.remove(c.nums, 1)
  return { r = r, rest = c.nums }
end

function probes.sort(c)
  table.sort(c.nums)
  table.sort(c.strs, function(a, b)
    return a > b
  end)
  return { nums = c.nums, strs = c.strs }
end

function probes.move(c)
  table.move(c.nums, 1, 5, 3)          -- within one untouched array
  local copy = table.move(c.strs, 1, 4, 1, {}) -- out of one
  table.move({ "x", "y" }, 1, 2, 2, c.more) -- into one
  return { nums = c.nums, copy = copy, more = c.more }
end

function probes.gsub(c)
  local s, n = string.gsub("$s|$i|$f|$missing|$neg", "%$(%w+)", c)
  return { s = s, n = n }
end

function probes.load_env(c)
  local f = assert(load("made = s .. '!'; return s, i, obj.a, missing", "=probe", "t", c))
  local s, i, a, missing = f()
  return { s = s, i = i, a = a, missing = missing == nil, made = rawget(c, "made"), all = collect(c) }
end

function probes.tostring(c)
  return { c = prefix(c), arr = prefix(c.arr), empty_o = prefix(c.empty_o),
           empty_a = prefix(c.empty_a), obj = prefix(c.obj) }
end

function probes.getmetatable(c)
  return { c = getmetatable(c), arr = getmetatable(c.arr), empty_o = getmetatable(c.empty_o),
           empty_a = getmetatable(c.empty_a) }
end

-- A table of json's may be given a metatable of the script's own (README,
-- Security model): what it held stays.
function probes.setmetatable(c)
  local mt = { __index = function(_, k)
    return "default:" .. tostring(k)
  end }
  local ok, r = pcall(setmetatable, c, mt)
  local ok_nil, err_nil = pcall(setmetatable, c.obj, nil)
  return {
    ok = ok, same = rawequal(r, c), mine = getmetatable(c) == mt,
    s = c.s, missing = c.missing, raw_i = rawget(c, "i"), all = collect(c),
    ok_nil = ok_nil, err_nil = not ok_nil and tostring(err_nil) or nil,
    obj = json.encode(c.obj),
  }
end

function probes.type(c)
  return { c = type(c), arr = type(c.arr), n = type(c.n), empty_a = type(c.empty_a),
           s = type(c.s), i = math.type(c.i), f = math.type(c.f) }
end

-- ---- json ---------------------------------------------------------------

function probes.encode_object(c)
  return json.encode(c)
end

function probes.encode_array(c)
  return json.encode(c.arr)
end

function probes.encode_empties(c)
  return { o = json.encode(c.empty_o), a = json.encode(c.empty_a) }
end

function probes.encode_nested(c)
  return json.encode(c.obj)
end

function probes.json_marks(c)
  local a = json.array(c.nums)
  local o = json.object(c.obj)
  return {
    array = json.encode(a), same_array = rawequal(a, c.nums),
    object = json.encode(o), same_object = rawequal(o, c.obj),
    strs_as_object = json.encode(json.object(c.strs)),
    empty_o_as_array = json.encode(json.array(c.empty_o)),
    empty_a_as_object = json.encode(json.object(c.empty_a)),
  }
end

function probes.decode_round(c)
  return json.decode(json.encode(c))
end

-- ---- readers in C and the host's Lua ----------------------------------------

function probes.os_time(c)
  return { t = os.time(c.date) }
end

function probes.message_check(c)
  local ok, err = message.check(c.msg)
  return { ok = ok or false, err = err }
end

function probes.log(c, req)
  log.info("reach-log-object", c.obj)
  print("reach-print-array", c.arr)
  log.warn("reach-log-empties", c.empty_o, c.empty_a)
  return req.id
end

function probes.http_headers(c, req)
  local r, err = http.request { url = req.params.upstream .. "/echo/headers", headers = c.headers }
  return r and json.decode(r.body) or { err = err }
end

function probes.http_options(c)
  local r, err = http.request(c.http)
  return r and json.decode(r.body) or { err = err }
end

function probes.http_redirect(c)
  local r, err = http.request(c.redirect)
  return r and { status = r.status, echo = json.decode(r.body) } or { err = err }
end

function probes.cliq_channel(c, req)
  local ok, err = cliq.post_channel(req.params.channel, c.msg)
  return { ok = ok or false, err = err }
end

function probes.cliq_channel_opts(c, req)
  local ok, err = cliq.post_channel(req.params.channel2, c.msg, c.cliq_opts)
  return { ok = ok or false, err = err }
end

function probes.cliq_bot(c, req)
  local ok, err = cliq.post_bot(req.params.bot, c.msg, c.bot_opts)
  return { ok = ok or false, err = err }
end

function probes.cliq_incoming(c, req)
  local r, err = cliq.bot_incoming(req.params.bot, c.obj)
  return { ok = r ~= nil, err = err }
end

function probes.respond(c, req)
  local ok, err = req:respond(c.msg)
  return { ok = ok or false, err = err }
end

function probes.store_set(c, req)
  local tag = req.params.store_prefix
  return {
    obj = store.set(tag .. "obj", c),
    arr = store.set(tag .. "arr", c.arr),
    empty_o = store.set(tag .. "empty_o", c.empty_o),
    empty_a = store.set(tag .. "empty_a", c.empty_a),
  }
end

function probes.store_get(_, req)
  local tag = req.params.store_prefix
  return {
    obj = store.get(tag .. "obj"), arr = store.get(tag .. "arr"),
    empty_o = json.encode(store.get(tag .. "empty_o")),
    empty_a = json.encode(store.get(tag .. "empty_a")),
  }
end

function probes.store_options(c, req)
  local tag = req.params.store_prefix .. "opts:"
  store.set(tag .. "k", "first")
  local again = store.set(tag .. "k", "second", c.store_opts)
  store.set(tag .. "l2", 2)
  local items, more = store.list(tag, c.list_opts)
  local updated = store.update(tag .. "u", function()
    return c.obj
  end)
  return { again = again, kept = store.get(tag .. "k"), items = #items, more = more ~= nil,
           updated = updated, stored = store.get(tag .. "u") }
end

-- ---- identity, coroutines, waiting -----------------------------------------

function probes.coroutine_wrap(c)
  return coroutine.wrap(function(t)
    return { all = collect(t), len = #t.nums }
  end)(c)
end

function probes.coroutine_resume(c)
  local co = coroutine.create(function(a)
    local t = coroutine.yield(#a)
    return { nums = ilist(a), obj = collect(t) }
  end)
  local _, n = coroutine.resume(co, c.nums)
  local _, r = coroutine.resume(co, c.obj)
  r.n = n
  return r
end

function probes.after_sleep(c, req, name)
  local held = c.obj
  sleep(0)
  local later = req.params[name .. "_later"]
  return { held = collect(held), arr = ilist(c.arr), later = collect(later) }
end

-- ---- big and deep -----------------------------------------------------------

local function down(t, step, n)
  if type(t) ~= "table" then
    return { levels = n, leaf = t }
  end
  return down(step(t), step, n + 1)
end

function probes.deep(_, req)
  local p = req.params
  return {
    by_field = down(p.deep_obj, function(t) return t.d end, 0),
    by_next = down(p.deep_obj2, function(t) local _, v = next(t) return v end, 0),
    by_index = down(p.deep_arr, function(t) return t[1] end, 0),
    by_ipairs = down(p.deep_arr2, function(t)
      local f, s, i = ipairs(t)
      local _, v = f(s, i)
      return v
    end, 0),
    encoded = json.encode(p.deep_obj3),
  }
end

function probes.large(_, req)
  local a = req.params.large
  local n = #a
  local sum = 0
  for i = 1, n do
    sum = sum + a[i]
  end
  local count = 0
  for _ in ipairs(req.params.large2) do
    count = count + 1
  end
  return { n = n, sum = sum, last = a[n], first = a[1], count = count,
           joined = table.concat(req.params.large_strs, ",") }
end

function probes.attachments(_, req)
  local out = {}
  local list = req.params.attachments
  for i, a in ipairs(list) do
    out[i] = { download = type(a.download), raw = rawget(a, "download") == nil,
               mt = getmetatable(a), kind = prefix(a), all = collect(a) }
  end

  local bytes, err = list[1]:download()
  return { each = out, bytes = bytes, err = err,
           same = rawequal(list, req.body.params.attachments) }
end

-- Each attachment reached first by setmetatable: the host's metatable on
-- one with a url is protected, the others are json's.
function probes.attachments_set(_, req)
  local out = {}
  for i, a in ipairs(req.params.attachments) do
    local ok, err = pcall(setmetatable, a, {})
    out[i] = { set = ok or tostring(err), download = type(a.download), name = a.name }
  end
  return out
end

return {
  execution = function(req)
    local p = req.params
    local results = {}
    for _, name in ipairs(p.probes) do
      local ok, r = pcall(probes[name], p[name], req, name)
      results[name] = ok and { ok = true, v = r } or { ok = false, err = tostring(r) }
    end
    return { results = results }
  end,
}
