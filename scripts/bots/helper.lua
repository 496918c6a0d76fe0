-- A bot that greets, answers a few words, and runs a two-question feedback
-- conversation with Cliq's bot context: the message handler starts it, and
-- the context handler gets both answers at once.

local function first_name(req)
  return (req.params.user or {}).first_name or "there"
end

local help = "I know *help*, *time* and *feedback*."

return {
  welcome = function(req)
    return {
      text = string.format("Hi %s! I'm the helper bot. %s", first_name(req), help),
      suggestions = { list = { { text = "help" }, { text = "feedback" } } },
    }
  end,

  message = function(req)
    local text = (req.params.message or ""):lower():match("^%s*(.-)%s*$")
    if text == "feedback" then
      return {
        text = "Two quick questions.",
        context = {
          id = "feedback",
          timeout = 300,
          params = {
            { name = "rating", question = "How do you like cliqhost?",
              suggestions = { list = { { text = "Great" }, { text = "Fine" }, { text = "Not yet" } } } },
            { name = "wish", question = "What should it do next?" },
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
    return {
      text = string.format("Thanks, %s! You said *%s*, and you wish for: %s",
        first_name(req), rating, wish),
      card = { title = "Feedback noted", theme = "modern-inline" },
    }
  end,
}
