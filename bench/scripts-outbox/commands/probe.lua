-- The outbox benchmark's queue-delay handler (bench/outbox.sh): one channel
-- post whose text names the probe, "probe-<params.options.probe>", so the
-- sink can stamp its arrival. With params.options.wait = true (the default
-- of cliq.post_channel) the reply goes out only after the sink answered.
return {
  execution = function(req)
    local o = req.params.options or {}
    local ok, err = cliq.post_channel("bench", "probe-" .. tostring(o.probe or 0),
      { wait = o.wait == true })
    if not ok then
      return { text = "refused: " .. tostring(err) }
    end
    return { text = "accepted 1" }
  end,
}
