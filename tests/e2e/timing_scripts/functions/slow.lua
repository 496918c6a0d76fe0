-- A button that takes a while: its knobs arrive as the button's arguments
-- (params.arguments.sleep, params.arguments.tag). Button replies are
-- banners, so the interim reply at the deadline is a banner too.
return {
  button = function(req)
    local a = req.params.arguments or {}
    sleep(tonumber(a.sleep) or 0)
    return { type = "banner", status = "success", text = "done " .. tostring(a.tag) }
  end,
}
