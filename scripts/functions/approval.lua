-- The approval buttons on /deploy's card. "Approve" answers with a card;
-- "Reject" opens a form that asks why, and the form's submission answers
-- with a card that has a button to reopen the request.

local message = require "cliq.message"

local function split_key(key)
  local verdict, service, env = (key or ""):match("^(%a+):([^:]+):(%w+)$")
  return verdict, service, env
end

local function reason_form(service, env)
  return message.form {
    title = "Reject the deploy",
    name = "reject_reason",
    hint = string.format("Tell the requester why %s should not go to %s.", service, env),
    button_label = "Reject",
    inputs = {
      message.input { type = "hidden", name = "target", value = service .. ":" .. env },
      message.input { type = "textarea", name = "reason", label = "Reason", mandatory = true,
                      placeholder = "Failing checks on staging" },
      message.input { type = "select", name = "retry", label = "Try again", mandatory = false,
                      options = {
                        message.option("Tomorrow", "tomorrow"),
                        message.option("Next week", "next_week"),
                        message.option("Not planned", "never"),
                      } },
    },
    action = message.submit("approval"),
  }
end

return {
  button = function(req)
    local key = req.params.arguments and req.params.arguments.key
    local verdict, service, env = split_key(key)
    local who = (req.params.user or {}).first_name or "Someone"
    if verdict == "approve" then
      return message.message {
        text = string.format("%s approved deploying *%s* to *%s*.", who, service, env),
        card = message.card { title = "Approved", theme = "modern-inline" },
      }
    elseif verdict == "reject" then
      return reason_form(service, env)
    end
    return message.banner("Unknown button: " .. tostring(key), "failure")
  end,

  form = function(req)
    local values = req.params.form.values
    local service, env = (values.target or ""):match("^([^:]+):(%w+)$")
    local retry = type(values.retry) == "table" and values.retry.label or "Not said"
    return message.message {
      text = string.format("Deploying *%s* to *%s* was rejected.", service or "?", env or "?"),
      card = message.card { title = "Rejected", theme = "modern-inline" },
      slides = {
        message.label_slide("Why", { { Reason = values.reason or "" }, { ["Try again"] = retry } }),
      },
      buttons = {
        message.button { label = "Reopen", type = "+", key = "approve:" .. (values.target or ""),
                         action = message.invoke_function("approval") },
      },
    }
  end,
}
