-- A hook's receive that sends back what it was given (test_hooks.py): its
-- request as the script saw it, and how many times this hook's script ran
-- (a store counter, so a duplicate delivery that ran it again shows).
-- The header x-echo goes to the log, to show that secrets are masked there.
return function(req)
  if req.headers["x-echo"] then
    log.info("echo: " .. req.headers["x-echo"])
  end
  local runs = store.incr("runs:" .. req.name)
  return {
    name = req.name,
    id = req.id,
    method = req.method,
    kind = type(req.body),
    body = req.body,
    text = req.text,
    headers = req.headers,
    query = req.query,
    runs = runs,
  }
end
