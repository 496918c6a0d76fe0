-- bench/tasks.sh: a trivial hook for the standard-webhooks scheme (webhook-id,
-- webhook-timestamp, webhook-signature; repeated ids dropped): the host
-- verifies, claims the id and decodes the body; receive() answers 200 at once.
---@type cliq.Hook
return {
  receive = function(req)
    return { ok = true }
  end,
}
