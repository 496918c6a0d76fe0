-- The in-flight benchmark's handler (bench/inflight.sh): calls the slow
-- upstream whose URL is the command's arguments and answers with its status.
-- http.request yields this handler's coroutine, so thousands of these wait on
-- the upstream at once while the worker serves everyone else.
return {
  execution = function(req)
    local url = req.params.arguments
    local res, err = http.request { url = url, timeout = 30 }
    if not res then
      return { text = "upstream failed: " .. tostring(err) }
    end
    return { text = "upstream " .. res.status }
  end,
}
