-- Changes everything a script could share with its neighbours, and says
-- what the host let it do. Run before `observe` on the same worker.
local concat = table.concat -- kept: the handler replaces its own
local done = {}
local function try(what, fn)
    local ok, err = pcall(fn)
    done[#done + 1] = what .. "=" .. (ok and "ok" or tostring(err):gsub("^.-:%d+: ", ""))
end

return {
    execution = function(req)
        try("string.upper", function() string.upper = function() return "HACKED" end end)
        try("string.split", function() string.split = function() return "split!" end end)
        try("json.encode", function() json.encode = function() return "HACKED" end end)
        try("os.time", function() os.time = function() return 1 end end)
        try("table.concat", function() table.concat = function() return "HACKED" end end)
        try("cliq.post_channel", function() cliq.post_channel = nil end)
        try("log.info", function() log.info = nil end)
        try("math.pi", function() math.pi = 3 end)
        try("coroutine.wrap", function() coroutine.wrap = nil end)
        try("shared.flag", function() require("shared.mod").flag = "tampered" end)
        try("req_mt", function()
            local mt = getmetatable(req)
            mt.__index = function() return "HACKED" end
        end)
        try("req_setmt", function() setmetatable(req, {}) end)
        try("params_mt", function()
            getmetatable(req.params).__index = function() return "HACKED" end
        end)
        try("array_mt", function() getmetatable(json.array()).__gc = function() end end)
        try("string_mt", function() getmetatable("").__index = { upper = function() return "HACKED" end } end)
        math.randomseed(42)
        local drawn = math.random(1e9)
        math.randomseed(42) -- a neighbour sharing the generator would draw `drawn` next
        done[#done + 1] = "drawn=" .. drawn
        -- In its own realm, the string methods follow its own string table.
        return { text = concat(done, ";") .. ";own=" .. ("abc"):split() .. "," .. ("abc"):upper() }
    end,
}
