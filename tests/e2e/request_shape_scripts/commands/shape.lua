-- Serialises what the handler sees in req, walked with pairs() in sorted
-- order, with the Lua type of every value (test_request_shape.py builds
-- the same text from the JSON body and compares).
local function key_text(k)
  if type(k) == "string" then
    return "s" .. #k .. ":" .. k
  end
  return "i" .. tostring(k)
end

local function before(a, b)
  if type(a) ~= type(b) then
    return type(a) == "number"
  end
  return a < b
end

local function ser(v, out)
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = k
    end
    -- next() by hand sees the same keys as pairs().
    local n, k = 0, next(v)
    while k ~= nil do
      n = n + 1
      assert(rawget(v, k) ~= nil, "rawget misses a key next gave")
      k = next(v, k)
    end
    assert(n == #keys, "next and pairs disagree")
    table.sort(keys, before)
    local kind = json.encode(v):sub(1, 1) == "[" and "a" or "o"
    out[#out + 1] = kind .. "#" .. #v .. "/" .. rawlen(v) .. "("
    for _, key in ipairs(keys) do
      out[#out + 1] = key_text(key) .. "="
      ser(v[key], out)
      out[#out + 1] = ";"
    end
    out[#out + 1] = ")"
  elseif t == "string" then
    out[#out + 1] = "s" .. #v .. ":" .. v
  elseif t == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = "i" .. tostring(v)
    else
      out[#out + 1] = "f" .. string.format("%.17g", v)
    end
  elseif t == "boolean" then
    out[#out + 1] = "b" .. tostring(v)
  elseif rawequal(v, json.null) then
    out[#out + 1] = "n"
  else
    out[#out + 1] = "?" .. t
  end
end

local function same(a, b, what)
  if a ~= b then
    error(what .. ": " .. tostring(a) .. " ~= " .. tostring(b))
  end
end

-- What a handler may do with req and its parts, beyond reading.
local function checks(req)
  same(rawget(req, "params"), req.params, "rawget(req, 'params')")
  same(rawget(req, "body"), req.body, "rawget(req, 'body')")
  assert(next(req) ~= nil, "next(req)")
  same(type(req.respond), "function", "req.respond")
  same(rawget(req, "respond"), nil, "rawget(req, 'respond')")
  if type(req.body.params) == "table" then
    assert(rawequal(req.params, req.body.params), "req.params is req.body.params")
    local p = req.params
    p.written = 1
    same(req.body.params.written, 1, "a write through req.params")
    p.written = nil
    same(rawget(req.body.params, "written"), nil, "a field set to nil")
    for i, a in ipairs(p.attachments or {}) do
      same(type(a.download), a.url and "function" or "nil", "attachments[" .. i .. "].download")
      same(rawget(a, "download"), nil, "rawget(attachment, 'download')")
    end
    local function count(t)
      local n = 0
      for _ in pairs(t) do
        n = n + 1
      end
      return n
    end
    same(count(p), count(json.decode(json.encode(p))), "a round trip through json keeps params")
  end
  req.body.extra = { 1, 2 }
  same(#req.body.extra, 2, "a table written into req.body")
  req.body.extra = nil
end

return {
  execution = function(req)
    checks(req)
    local shown = {}
    for k, v in pairs(req) do
      shown[k] = v
    end
    shown.id = type(req.id) == "string" and "<id>" or shown.id
    local out = {}
    ser(shown, out)
    return table.concat(out)
  end,
}
