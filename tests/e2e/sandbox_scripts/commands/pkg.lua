-- What real libraries look for in `package`, and require of the standard
-- library's names.
return {
    execution = function()
        local out = {}
        local function put(k, v) out[#out + 1] = k .. "=" .. tostring(v) end
        put("same_string", require("string") == string)
        put("same_table", require("table") == table)
        put("same_math", require("math") == math)
        put("loaded_string", package.loaded.string == string)
        local m = require("shared.mod")
        put("loaded_mod", package.loaded["shared.mod"] == m)
        put("loaded_none", package.loaded["no.such"])
        put("config", package.config:sub(1, 1))
        put("write", (pcall(function() package.loaded.x = 1 end)))
        put("path_write", (pcall(function() package.path = "/etc/?" end)))
        put("searchpath", (package.searchpath("shared.mod", package.path) or "nil"):match("lib/shared/mod.lua$") ~= nil)
        local none, err = package.searchpath("no.such", package.path)
        put("searchpath_none", none)
        put("searchpath_err", err ~= nil and err:find("no file", 1, true) ~= nil)
        put("outside", package.searchpath("passwd", "/etc/?"))
        local _, raw = pairs(package.loaded)
        local _, rawpkg = pairs(package)
        put("raw", (type(raw) == "table" and rawget(raw, "string") ~= nil)
            or (type(rawpkg) == "table" and rawget(rawpkg, "path") ~= nil))
        return { text = table.concat(out, ";") }
    end,
}
