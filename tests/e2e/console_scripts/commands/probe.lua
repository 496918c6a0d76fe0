-- For test_console_api: does what the console's journal records. Its
-- arguments: "URL" makes an http.request to URL, then posts to the
-- channel "ops" and logs a line; "big" logs many long lines.

return {
  execution = function(req)
    local a = req.params.arguments or ""
    if a == "big" then
      for i = 1, 200 do
        log.info(string.rep("x", 500), i)
      end
      return { text = "big done" }
    end
    log.info("probe asked for", a)
    local r, err = http.request { url = a, method = "POST", body = "ping" }
    local ok, perr = cliq.post_channel("ops", { text = "probe ran" })
    log.warn("probe posted", ok and "ok" or tostring(perr))
    return { text = "fetched " .. (r and tostring(r.status) or tostring(err)) }
  end,
}
