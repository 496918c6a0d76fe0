-- Calls one cliq.* binding the way the test asks in params.options, and
-- reports exactly what the script saw:
--
--   fn    "post_channel" | "post_bot" | "bot_incoming" | "app_incoming"
--   name  the channel or bot unique name, or the app id
--   msg   a string or a message table (or the incoming payload)
--   msgs  instead of msg: a list of messages, posted one after another
--   opts  the binding's options (token, as_bot, userids, broadcast, appkey,
--         wait)
--
-- Each call is made under pcall, so a binding that raises is reported as
-- `raised` rather than failing the handler. Of a call's results, `ok` says
-- whether the first was non-nil, `is_true` whether it was exactly true,
-- `result` is the first when it is a table (the endpoint's JSON reply) and
-- `err` the second (nil fields are simply absent from the reply).
local function call(o, msg)
  local fn = cliq[o.fn]
  if type(fn) ~= "function" then
    return { raised = "no binding cliq." .. tostring(o.fn) }
  end
  local done, r, err = pcall(fn, o.name, msg, o.opts)
  if not done then
    return { raised = tostring(r) }
  end
  return {
    ok = r ~= nil,
    is_true = r == true,
    result = type(r) == "table" and r or nil,
    err = err,
  }
end

return {
  execution = function(req)
    local o = req.params.options or {}
    if o.msgs then
      local results = {}
      for i, msg in ipairs(o.msgs) do
        results[i] = call(o, msg)
      end
      return { text = "posted " .. #results, results = results }
    end
    local out = call(o, o.msg)
    out.text = "posted"
    return out
  end,
}
