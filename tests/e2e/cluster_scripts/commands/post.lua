-- /post, for test_cluster.py: queues each message of the call's options in
-- the outbox (wait = false), to one channel with one webhook token, and
-- replies "queued" or the error for each.
return {
  execution = function(req)
    local o = req.params.options or {}
    local results = {}
    for i, msg in ipairs(o.msgs or {}) do
      local ok, err = cliq.post_channel(o.channel, msg, { token = o.token, wait = false })
      results[i] = ok and "queued" or err
    end
    return { text = "posted", results = results }
  end,
}
