-- Store operations a careless or hostile script runs, for
-- test_attack_redis.py: the arguments (JSON) name one; the reply is its
-- results as JSON.
local function pack(...)
    return { n = select("#", ...), ... }
end

local ops = {}

-- Keys and prefixes may come as a list of byte values (kb, pb), so that
-- every byte reaches the store as it is.
local function bytes(list)
    return list and string.char(table.unpack(list))
end

local function args(a)
    a.key = bytes(a.kb) or a.key
    a.prefix = bytes(a.pb) or a.prefix
    return a
end

function ops.get(a) return pack(store.get(a.key)) end
function ops.set(a) return pack(store.set(a.key, a.value, a.opts)) end
function ops.list(a)
    local items, nxt = store.list(a.prefix, a.opts)
    if not items then return pack(nil, nxt) end
    local keys = json.array()
    for i, it in ipairs(items) do keys[i] = { string.byte(it.key, 1, -1) } end
    return pack(keys, nxt)
end

-- A page after a key of `len` bytes (a key is at most 512).
function ops.list_after_len(a)
    return ops.list({ prefix = a.prefix, opts = { after = string.rep("z", a.len) } })
end

-- Writes values of `bytes` bytes under fill:<start>, fill:<start + 1>, ...
-- until a write fails (or `max` writes); returns how many were written and
-- the error.
function ops.fill(a)
    local v = string.rep("v", a.bytes)
    local start = a.start or 1
    for i = 0, a.max - 1 do
        local ok, err = store.set("fill:" .. (start + i), v)
        if not ok then return pack(i, err) end
    end
    return pack(a.max, "<none>")
end

-- Reads the page of values under prefix `times` times (keeping none).
function ops.read_pages(a)
    local read = 0
    for _ = 1, a.times do
        local items, err = store.list(a.prefix, { limit = 1000 })
        if not items then return pack(read, err) end
        read = read + #items
    end
    return pack(read, "<none>")
end

-- Runs `times` incr on one key; returns how many answered a number and the
-- last error.
function ops.incr_loop(a)
    local ok, last = 0, "<none>"
    for _ = 1, a.times do
        local n, err = store.incr(a.key)
        if n then ok = ok + 1 else last = err end
    end
    return pack(ok, last)
end

-- Leaves `count` small keys with a ttl of `ttl` seconds behind.
function ops.seed(a)
    for i = 1, a.count do
        assert(store.set("seed:" .. i, 1, { ttl = a.ttl }))
    end
    return pack(a.count)
end

-- Waits on the store in a loop (until a limit stops the handler).
function ops.wait_forever(a)
    while true do
        store.get(a.key)
    end
end

return {
    execution = function(req)
        local a = args(json.decode(req.params.arguments))
        local ok, r = pcall(ops[a.op], a)
        if not ok then
            return { text = json.encode({ raised = tostring(r) }) }
        end
        local out = { n = r.n }
        for i = 1, r.n do
            out[tostring(i)] = r[i] == nil and "<nil>" or r[i]
        end
        return { text = json.encode(out) }
    end,
}
