-- Calls each URL the test lists (params.options.calls: { url=, redirects= })
-- with http.request and reports, per call, exactly what the script saw:
-- `status` and `body` for a response, or `failed` and `err` for nil, err.
return {
  execution = function(req)
    local results = {}
    for i, call in ipairs(req.params.options.calls) do
      local res, err = http.request { url = call.url, redirects = call.redirects, timeout = 5 }
      if res then
        results[i] = { status = res.status, body = res.body }
      else
        results[i] = { failed = res == nil, err = err }
      end
    end
    return { text = "fetched " .. #results, results = results }
  end,
}
