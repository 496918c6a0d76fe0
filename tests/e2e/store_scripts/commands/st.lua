-- Runs the store operation the arguments name (JSON) and replies with its
-- results, for test_store.py.
local function pack(...)
    return { n = select("#", ...), ... }
end

local ops = {}

function ops.get(a) return pack(store.get(a.key)) end
function ops.set(a) return pack(store.set(a.key, a.value, a.opts)) end
function ops.incr(a) return pack(store.incr(a.key, a.by, a.opts)) end
function ops.delete(a) return pack(store.delete(a.key)) end
function ops.list(a) return pack(store.list(a.prefix, a.opts)) end

-- The keys of a page only (its values may be large).
function ops.list_keys(a)
    local items, nxt = store.list(a.prefix, a.opts)
    if not items then return pack(nil, nxt) end
    local keys = json.array()
    for i, it in ipairs(items) do keys[i] = it.key end
    return pack(keys, nxt)
end

function ops.append(a)
    return pack(store.update(a.key, function(old)
        old = old or json.array()
        old[#old + 1] = a.item
        return old
    end, a.opts))
end

function ops.update_nil(a)
    return pack(store.update(a.key, function() return nil end))
end

function ops.update_raise(a)
    return pack(store.update(a.key, function() error("fn failed on purpose") end))
end

-- fn changes the key itself each time, so every write finds it changed.
function ops.update_conflict(a)
    local calls = 0
    local r = pack(store.update(a.key, function(old)
        calls = calls + 1
        store.set(a.key, calls)
        return "mine"
    end))
    r.calls = calls
    return r
end

-- Runs the operation `what` `times` times in this one handler; answers
-- the list of their results (each a list, nil as "<nil>").
function ops.times(a)
    local all = json.array()
    for i = 1, a.times do
        local r = ops[a.what.op](a.what)
        local one = json.array()
        for k = 1, r.n do
            one[k] = r[k] == nil and "<nil>" or r[k]
        end
        all[i] = one
    end
    return pack(all)
end

-- Keys with a NUL byte, made here (JSON arguments cannot carry one):
-- `prefix`.."\0a" and `prefix`, then each one's value and the list.
function ops.nul_keys(a)
    assert(store.set(a.prefix .. "\0a", 1))
    assert(store.set(a.prefix, 2))
    local items = store.list(a.prefix)
    local keys = json.array()
    for i, it in ipairs(items) do keys[i] = it.key end
    return pack(store.get(a.prefix .. "\0a"), store.get(a.prefix), keys)
end

function ops.set_fn(a) return pack(store.set(a.key, function() end)) end
function ops.set_nil(a) return pack(store.set(a.key, nil)) end
function ops.long_key(a) return pack(store.get(string.rep("k", a.len))) end
function ops.bad_key() return pack(store.get(42)) end
function ops.empty_key() return pack(store.get("")) end
function ops.bad_ttl(a) return pack(store.set(a.key, 1, { ttl = -1 })) end
function ops.big(a) return pack(store.set(a.key, string.rep("x", a.len))) end

-- Writes a value of `bytes` bytes `times` times under one key.
function ops.many_sets(a)
    local v = string.rep("v", a.bytes)
    for _ = 1, a.times do
        assert(store.set(a.key, v))
    end
    return pack(true)
end

-- Sets `count` keys prefix..i to values of `bytes` bytes.
function ops.fill(a)
    local v = string.rep("v", a.bytes)
    for i = 1, a.count do
        assert(store.set(string.format("%s%04d", a.prefix, i), v))
    end
    return pack(true)
end

-- Holds several pages of a list at once (may pass the memory limit:
-- then the handler stops, or, where the answer came later (Redis), the
-- call answers nil, "out of memory").
function ops.hold_pages(a)
    local keep = {}
    for i = 1, a.pages do
        local items, err = store.list(a.prefix)
        if not items then return pack(#keep, err) end
        keep[i] = items
    end
    return pack(#keep)
end

return {
    execution = function(req)
        local a = json.decode(req.params.arguments)
        local ok, r = pcall(ops[a.op], a)
        if not ok then
            return { text = json.encode({ raised = tostring(r) }) }
        end
        local out = { n = r.n, calls = r.calls }
        for i = 1, r.n do
            out[tostring(i)] = r[i] == nil and "<nil>" or r[i]
        end
        return { text = json.encode(out) }
    end,
}
