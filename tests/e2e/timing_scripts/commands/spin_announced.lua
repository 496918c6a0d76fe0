-- Says it has started, then never yields: a test waits for the log line
-- before sending its next request, so it knows the only worker is busy.
return {
  execution = function(req)
    log.info("spin started")
    while true do end
  end,
}
