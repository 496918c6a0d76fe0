-- Its top level keeps 24 MiB (more than one handler's budget in the test).
local keep = {}
for i = 1, 24 * 16 do
    keep[i] = string.rep(string.char(65 + i % 26), 65536 - 32) .. string.format("%031d", i)
end
return { execution = function() return "fat ok " .. #keep end }
