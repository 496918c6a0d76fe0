-- Work a script can make run long in C, where the instruction hook never
-- runs (issue 12, finding 4): crafted patterns, and loops of C calls that
-- each do much work in few instructions. Each must be stopped by the CPU
-- limit (CpuWorkInC in test_sandbox.py).
local rep, len, concat, sort = string.rep, utf8.len, table.concat, table.sort

local function reps()
  -- Four instructions a call: the instruction hook (every 2,000) alone
  -- would let 500 calls of 8 MB run between two readings of the clock.
  for _ = 1, 1e9 do
    rep("x", 8e6) rep("x", 8e6) rep("x", 8e6) rep("x", 8e6) rep("x", 8e6)
    rep("x", 8e6) rep("x", 8e6) rep("x", 8e6) rep("x", 8e6) rep("x", 8e6)
  end
end

local cases = {
  -- Each step doubles the work: 2^27 attempts.
  exponential = function()
    return string.find(rep("a", 27), rep("a?", 27) .. rep("a", 27))
  end,
  -- n^2: every start tries every end.
  lazy = function() return string.find(rep("a", 50000), ".-b") end,
  lazy_match = function() return string.match(rep("a", 50000), "(.-)b") end,
  lazy_gmatch = function()
    for _ in string.gmatch(rep("a", 50000), ".-b") do end
  end,
  lazy_gsub = function() return (string.gsub(rep("a", 50000), ".-b", "")) end,
  balance = function() return string.find(rep("(", 50000), "%b()") end,
  backref = function() return string.find(rep("a", 50000), "(.*)%1b") end,
  reps = reps,
  reps_in_coroutine = function() coroutine.wrap(reps)() end,
  reps_in_resume = function() return coroutine.resume(coroutine.create(reps)) end,
  gsubs = function()
    local s = rep("x", 2e6)
    for _ = 1, 1e9 do
      s:gsub("x", "y") s:gsub("x", "y") s:gsub("x", "y") s:gsub("x", "y")
    end
  end,
  utf8_lens = function()
    local s = rep("\xce\xb1", 8e6)
    for _ = 1, 1e9 do
      len(s) len(s) len(s) len(s) len(s) len(s) len(s) len(s) len(s) len(s)
    end
  end,
  -- rawlen as __index: a C function, so no Lua instruction runs per item.
  concat = function()
    return concat(setmetatable({}, { __index = rawlen, __len = rawlen }), "", 1, 2 ^ 40)
  end,
  sorts = function()
    local t = {}
    for i = 1, 2e5 do t[i] = (i * 7919) % 200003 end
    for _ = 1, 1e9 do
      sort(t, function(a, b) return a > b end) sort(t)
    end
  end,
  jsons = function()
    local t = {}
    for i = 1, 1e5 do t[i] = { i, "x" } end
    local s = json.encode(t)
    local encode, decode = json.encode, json.decode
    for _ = 1, 1e9 do
      encode(t) decode(s) encode(t) decode(s) encode(t) decode(s)
    end
  end,
  -- One call that encodes 60 MB: 3,000 references to one array.
  jsondag = function()
    local row = {}
    for i = 1, 1000 do row[i] = 0.1 + 0.2 end
    local t = {}
    for i = 1, 3000 do t[i] = row end
    t[#t + 1] = print -- so the whole text is built and then refused
    for _ = 1, 1e9 do pcall(json.encode, t) end
  end,
  -- Single instructions that each take milliseconds in C: comparing two
  -- equal 64 MB strings (distinct objects, so every == reads them whole).
  longeq = function()
    local a = string.rep("x", 64 << 20)
    local b = string.rep("x", (64 << 20) - 1) .. "x"
    local n = 0
    while true do
      if a == b then n = n + 1 end
    end
  end,
  -- Lua's parser checks each new label against every earlier one of its
  -- function: 30,000 labels in each of 8 functions take seconds in C.
  labels = function()
    local t = {}
    for i = 1, 30000 do t[#t + 1] = "::l" .. i .. ":: _=1" end
    local src = string.rep("do local f = function() " .. concat(t, "\n") .. " end end\n", 8)
    for _ = 1, 1e9 do load(src) end
  end,
  -- load takes a chunk of at most max_script_bytes (1 MiB).
  bigload = function()
    return (select(2, load(string.rep(" ", (1 << 20) + 1))))
  end,
  -- os.date takes a format of at most 4 KiB.
  dates = function()
    assert(#os.date(string.rep("%n", 2048)) == 2048) -- 4096 bytes are fine
    return (select(2, pcall(os.date, string.rep("%n", 4097))))
  end,
  -- Still what Lua does.
  ordinary = function()
    local t = { 3, 1, 2 }
    sort(t)
    local r = { concat(t, ","), table.unpack({ "u", "v" }) }
    sort(t, function(a, b) return a > b end)
    r[#r + 1] = concat(t, "")
    r[#r + 1] = utf8.len("αβ") .. select("#", string.byte("abc", 1, -1))
    r[#r + 1] = tostring(coroutine.resume(coroutine.create(function(x) return x * 2 end), 21))
    r[#r + 1] = ("k=v"):gsub("(%w)=(%w)", "%2=%1")
    return concat(r, " ")
  end,
}

return {
  execution = function(req)
    local f = cases[req.params.arguments]
    local ok, v = pcall(f)
    return "survived " .. tostring(ok) .. " " .. tostring(v)
  end,
}
