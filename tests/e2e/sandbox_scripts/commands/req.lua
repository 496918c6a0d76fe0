-- require finds ?/init.lua, and says where it looked when it finds nothing.
return {
  execution = function(req)
    if req.params.arguments == "missing" then
      local ok, err = pcall(require, "no.such")
      return tostring(ok) .. " " .. tostring(err)
    end
    return require("pkg").name
  end,
}
