-- Calls the URL the test gives (params.options.url) with http.request and
-- reports what came back. `failed` is set only when http.request returned
-- nil, so the tests can tell "nil, err" from a response with an error status.
return {
  execution = function(req)
    local o = req.params.options or {}
    local res, err = http.request {
      url = o.url,
      method = o.method,
      headers = o.headers,
      body = o.body,
      timeout = tonumber(o.timeout),
    }
    if not res then
      return { text = "failed: " .. tostring(err), failed = true, error = err }
    end
    return {
      text = "status " .. res.status,
      status = res.status,
      body = res.body,
      upstream = res.headers["x-upstream"],
      location = res.headers["location"],
    }
  end,
}
