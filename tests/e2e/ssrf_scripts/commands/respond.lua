-- Replies through response_url (the host's own call, which
-- response_url_allow decides), then calls the same URL with http.request,
-- which http_allow decides: the connection the reply left open is not the
-- script's to use.
return {
  execution = function(req)
    local sent, serr = req:respond("early")
    local res, err = http.request { url = req.response_url, method = "POST", body = "{}" }
    return {
      text = "done",
      sent = sent == true,
      send_err = serr,
      status = res and res.status,
      failed = res == nil,
      err = err,
    }
  end,
}
