-- Replies once through response_url and reports what req:respond() gave.
return {
  execution = function(req)
    local ok, err = req:respond("early")
    return { text = "responded", ok = ok, err = err }
  end,
}
