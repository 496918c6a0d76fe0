-- Returns req.params, untouched, as the reply (test_request_reach.py).
return {
  execution = function(req)
    return req.params
  end,
}
