-- A bot that greets, answers a few words, and runs a two-question feedback
-- conversation with Cliq's bot context: the message handler starts it, and
-- the context handler gets both answers at once.

local message = require "cliq.message"

local function first_name(req)
  return (req.params.user or {}).first_name or "there"
end

local help = "I know *help*, *time* and *feedback*."

return {
  welcome = function(req)
    return message.message {
      text = string.format("Hi %s! I'm the helper bot. %s", first_name(req), help),
      suggestions = message.suggestions { "help", "feedback" },
    }
  end,

  message = function(req)
    local text = (req.params.message or ""):lower():match("^%s*(.-)%s*$")
    if text == "feedback" then
      return message.message {
        text = "Two quick questions.",
        context = message.context {
          id = "feedback",
          timeout = 300,
          params = {
            message.question("rating", "How do you like cliqhost?",
              message.suggestions { "Great", "Fine", "Not yet" }),
            message.question("wish", "What should it do next?"),
          },
        },
      }
    elseif text == "time" then
      return "It is " .. os.date("!%H:%M") .. " UTC."
    elseif text == "help" or text == "" then
      return help
    end
    return string.format("You said \"%s\". %s", req.params.message, help)
  end,

  context = function(req)
    if req.params.context_id ~= "feedback" then
      return "I lost track of that conversation; say *feedback* to start again."
    end
    local answers = req.params.answers or {}
    local rating = answers.rating and answers.rating.text or "no answer"
    local wish = answers.wish and answers.wish.text or "no answer"
    log.info("feedback", rating, wish)
    return message.message {
      text = string.format("Thanks, %s! You said *%s*, and you wish for: %s",
        first_name(req), rating, wish),
      card = message.card { title = "Feedback noted", theme = "modern-inline" },
    }
  end,
}
