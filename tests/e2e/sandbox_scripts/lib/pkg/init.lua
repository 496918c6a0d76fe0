-- A package as real Lua libraries lay them out: pkg/init.lua.
local helper = require "pkg.helper"
return { name = "pkg " .. helper.name }
