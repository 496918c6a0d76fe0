-- Adds keys that are not names to its own handler table once it runs.
local H
H = {
    execution = function()
        H[1.5] = true
        H[{}] = true
        return "armed"
    end,
}
return H
