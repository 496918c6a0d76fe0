-- The approval buttons on /deploy's card. "Approve" answers with a card;
-- "Reject" opens a form that asks why, and the form's submission answers
-- with a card that has a button to reopen the request.

local function split_key(key)
  local verdict, service, env = (key or ""):match("^(%a+):([^:]+):(%w+)$")
  return verdict, service, env
end

local function reason_form(service, env)
  return {
    type = "form",
    title = "Reject the deploy",
    name = "reject_reason",
    hint = string.format("Tell the requester why %s should not go to %s.", service, env),
    button_label = "Reject",
    inputs = {
      { type = "hidden", name = "target", value = service .. ":" .. env },
      { type = "textarea", name = "reason", label = "Reason", mandatory = true,
        placeholder = "Failing checks on staging" },
      { type = "select", name = "retry", label = "Try again", mandatory = false,
        options = {
          { label = "Tomorrow", value = "tomorrow" },
          { label = "Next week", value = "next_week" },
          { label = "Not planned", value = "never" },
        } },
    },
    action = { type = "invoke.function", name = "approval" },
  }
end

return {
  button = function(req)
    local key = req.params.arguments and req.params.arguments.key
    local verdict, service, env = split_key(key)
    local who = (req.params.user or {}).first_name or "Someone"
    if verdict == "approve" then
      return {
        text = string.format("%s approved deploying *%s* to *%s*.", who, service, env),
        card = { title = "Approved", theme = "modern-inline" },
      }
    elseif verdict == "reject" then
      return reason_form(service, env)
    end
    return { type = "banner", status = "failure", text = "Unknown button: " .. tostring(key) }
  end,

  form = function(req)
    local values = req.params.form.values
    local service, env = (values.target or ""):match("^([^:]+):(%w+)$")
    local retry = type(values.retry) == "table" and values.retry.label or "Not said"
    return {
      text = string.format("Deploying *%s* to *%s* was rejected.", service or "?", env or "?"),
      card = { title = "Rejected", theme = "modern-inline" },
      slides = {
        { type = "label", title = "Why", data = {
          { Reason = values.reason or "" }, { ["Try again"] = retry },
        } },
      },
      buttons = {
        { label = "Reopen", type = "+", key = "approve:" .. (values.target or ""),
          action = { type = "invoke.function", data = { name = "approval" } } },
      },
    }
  end,
}
