-- /count, for test_cluster.py: one store operation on the key the call's
-- options name, and what the script saw.
--
--   op     "incr" (by 1), "get", or "echo" (no store at all)
--   key    the store key
--   nonce  echoed back, so that every call's body is distinct
--
-- The reply's `value` is the operation's result and `err` its error (a nil
-- field is simply absent).
return {
  execution = function(req)
    local o = req.params.options or {}
    local value, err
    if o.op == "incr" then
      value, err = store.incr(o.key, 1)
    elseif o.op == "get" then
      value, err = store.get(o.key)
    end
    return { text = "count", op = o.op, value = value, err = err, nonce = o.nonce }
  end,
}
