-- POST /hooks/shapes (test_kit_parity.py): what a hook's script sees and
-- the replies it can give, for the kit and the host to agree on.
return {
  receive = function(req)
    local shape = req.query.shape
    if shape == "echo" then
      return { body = req.body, kind = type(req.body), text = req.text, name = req.name,
        method = req.method, probe = req.headers["x-probe"], query = req.query }, 201
    elseif shape == "string" then
      return "plain words"
    elseif shape == "nothing" then
      return
    elseif shape == "status" then
      return { error = "try later" }, 503
    elseif shape == "array" then
      return json.array({ 1, "two", json.null })
    end
    return { unknown = shape }, 400
  end,
}
