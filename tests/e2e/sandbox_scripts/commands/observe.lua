-- Reports what a neighbour's tampering left visible here.
local seen = {}
local function see(what, v) seen[#seen + 1] = what .. "=" .. tostring(v) end

return {
    execution = function(req)
        see("upper", string.upper("x"))
        see("method", ("x"):upper())
        see("split", type(string.split))
        see("msplit", type(("x").split))
        see("json", json.encode({ 1 }))
        see("time", os.time() > 1000)
        see("concat", table.concat({ "a", "b" }))
        see("post", type(cliq.post_channel))
        see("log", type(log.info))
        see("pi", math.pi == 3)
        see("wrap", type(coroutine.wrap))
        see("flag", require("shared.mod").flag)
        see("name", req.name)
        see("nosuch", req.params.nosuch)
        see("arrmt", getmetatable(json.array()))
        see("drawn", math.random(1e9))
        return { text = table.concat(seen, ";") }
    end,
}
