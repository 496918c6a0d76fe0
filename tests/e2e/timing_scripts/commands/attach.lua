-- Downloads the first attachment twice (params.options.wait seconds after
-- the request arrived) and reports what each call gave. The bytes come back
-- hex-encoded so the tests can check them exactly, binary and all.
local function hex(s)
  return (s:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

return {
  execution = function(req)
    local o = req.params.options or {}
    local wait = tonumber(o.wait)
    if wait then
      sleep(wait)
    end
    local a = req.params.attachments[1]
    local first, err1 = a:download()
    local second, err2 = a:download()
    return {
      text = "downloaded",
      first = first and hex(first),
      second = second and hex(second),
      same = first ~= nil and first == second,
      err1 = err1,
      err2 = err2,
    }
  end,
}
