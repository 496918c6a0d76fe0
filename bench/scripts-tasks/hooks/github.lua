-- bench/tasks.sh: a trivial hook for the github scheme (X-Hub-Signature-256):
-- the host verifies and decodes the body; receive() answers 200 at once.
---@type cliq.Hook
return {
  receive = function(req)
    return { ok = true }
  end,
}
