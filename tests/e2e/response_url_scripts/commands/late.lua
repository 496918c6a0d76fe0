-- Sleeps past the deadline (params.options.sleep seconds), so its result
-- goes to response_url.
return {
  execution = function(req)
    sleep(tonumber(req.params.options.sleep) or 1)
    return { text = "late result" }
  end,
}
