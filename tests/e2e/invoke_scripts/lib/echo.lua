-- Echoes the call: what the host dispatched, and the whole body invoke
-- sent, so the tests can check that the body is what Cliq sends and that
-- the command line's overrides reached it. Each echo script maps its
-- handler keys to this.
return function(req)
  return {
    text = string.format("%s|%s|%s|%s", req.type, req.name or "-", req.handler, req.action or "-"),
    body = req.body,
  }
end
