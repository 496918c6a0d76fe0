-- A package laid out as pkg/init.lua.
return { name = "pkg" }
