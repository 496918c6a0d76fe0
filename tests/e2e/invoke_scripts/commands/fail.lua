-- /fail HOW: a handler that fails, so the tests can check what a
-- development call (cliqhost invoke) is told and what Cliq's user sees.

local function deeper(msg)
  error(msg)
end

return {
  execution = function(req)
    local how = req.params.arguments
    if how == "raise" then
      deeper("the deploy list is empty")
    elseif how == "token" then
      -- An error that quotes a webhook URL with its token, as a failed
      -- post might: the token must not reach the developer's terminal.
      error("post failed: https://cliq.zoho.com/api/v2/bots/x/incoming?zapikey=1001.deadbeefcafe0123")
    elseif how == "envtoken" then
      -- A token the script was given (script_env) and that the config
      -- names as a webhook token: masked too.
      error("cannot post with " .. tostring(os.getenv("FAIL_TOKEN")))
    elseif how:match("^cut %d+$") then
      -- The token where an error is cut short: no part of it may show.
      error(string.rep("A", tonumber(how:match("%d+"))) .. tostring(os.getenv("FAIL_TOKEN")))
    elseif how == "inject" then
      error("first line\r\nX-Evil: 1\r\n\r\n<html>")
    elseif how == "deep" then
      -- A long traceback.
      local function down(n) if n == 0 then deeper("deep down") end down(n - 1) return n end
      down(60)
    elseif how == "huge" then
      error(string.rep("x", 100000))
    elseif how == "loop" then
      while true do end
    elseif how == "late" then
      sleep(1)
      deeper("failed after the deadline")
    end
    return { text = "fine" }
  end,
}
