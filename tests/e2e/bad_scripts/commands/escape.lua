return {
  execution = function(req)
    local f = io.open("/etc/passwd")
    return f:read("a")
  end,
}
