-- The outbox benchmark's load handler (bench/outbox.sh): queues
-- params.options.count channel posts without waiting for their delivery
-- (wait = false returns once the post is durably in the SQLite outbox) and
-- answers with how many were accepted.
return {
  execution = function(req)
    local o = req.params.options or {}
    local count = tonumber(o.count) or 1
    local wait = o.wait == true
    local accepted = 0
    for i = 1, count do
      local ok, err = cliq.post_channel("bench", "message " .. i, { wait = wait })
      if ok then
        accepted = accepted + 1
      elseif accepted == i - 1 then
        log.warn("post refused: " .. tostring(err)) -- the first refusal only
      end
    end
    return { text = "accepted " .. accepted }
  end,
}
