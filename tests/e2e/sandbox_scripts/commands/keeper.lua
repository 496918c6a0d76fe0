-- Keeps 20 MiB more in its module state on each call.
local kept = {}
return {
    execution = function()
        local t = {}
        for i = 1, 20 * 16 do
            t[i] = string.rep(string.char(65 + i % 26), 65536 - 32) .. string.format("%031d", #kept * 1000 + i)
        end
        kept[#kept + 1] = t
        return { text = "keeping " .. #kept * 20 .. " MiB" }
    end,
}
