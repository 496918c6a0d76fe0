-- POST /hooks/swretry (test_hooks.py): a Standard Webhooks hook that asks
-- for the first attempt of each delivery to be sent again (a 503, as the
-- Alertmanager example answers when it cannot queue its post), and takes
-- the next.
return {
  receive = function(req)
    local n = store.incr("attempts:" .. req.headers["webhook-id"])
    if n == 1 then
      return { error = "not now; send it again" }, 503
    end
    return { attempts = n }
  end,
}
