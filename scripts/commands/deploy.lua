-- /deploy SERVICE [ENV] [--force]: asks for an approval before a production
-- deploy. The card's buttons call the `approval` function
-- (scripts/functions/approval.lua) with the button's key.

local args = require "cliq.args"
local message = require "cliq.message"
local deploys = require "deploys"

local function usage()
  return "Usage: `/deploy SERVICE [ENV] [--force]`, where ENV is one of " .. deploys.names()
end

return {
  execution = function(req)
    local a, err = args.parse(req.params.arguments)
    if not a then
      return "Could not read the arguments: " .. err
    end
    local service, env_name = a[1], a[2] or "staging"
    if not service then
      return usage()
    end
    local env = deploys.find(env_name)
    if not env then
      return "Unknown environment *" .. env_name .. "*. " .. usage()
    end
    local user = req.params.user or {}
    log.info("deploy requested", service, env.name, "by", user.email or "someone")

    if env.name ~= "prod" or a.flags.force then
      return message.message {
        text = string.format("Deploying *%s* to *%s*.", service, env.name),
        card = message.card { title = "Deploy started", theme = "modern-inline" },
      }
    end
    local key = service .. ":" .. env.name
    local approval = message.invoke_function("approval")
    return message.message {
      text = string.format("*%s* wants to deploy *%s* to production.",
        user.first_name or "Someone", service),
      card = message.card { title = "Approval needed", theme = "modern-inline" },
      slides = {
        message.label_slide("Details", {
          { Service = service }, { Environment = env.description },
        }),
      },
      buttons = {
        message.button { label = "Approve", type = "+", key = "approve:" .. key,
                         action = approval },
        message.button { label = "Reject", type = "-", key = "reject:" .. key,
                         action = approval },
      },
    }
  end,

  -- Suggests environments once the service is typed.
  suggestion = function(req)
    local typed = (req.params.arguments or ""):match("%S+%s+(%S*)$") or ""
    local list = {}
    for _, env in ipairs(deploys.environments) do
      if env.name:sub(1, #typed) == typed then
        list[#list + 1] = { title = env.name, description = env.description }
      end
    end
    return message.command_suggestions(list) -- [] when nothing matches
  end,
}
