-- A message action: pick "stats" on any message to see its size.

local message = require "cliq.message"

return {
  execution = function(req)
    local picked = req.params.message or {}
    local text = picked.text or ""
    local words = 0
    for _ in text:gmatch("%S+") do
      words = words + 1
    end
    local sender = picked.sender or {}
    local name = sender.name or table.concat({ sender.first_name or "", sender.last_name or "" }, " ")
    return message.message {
      text = "Message statistics",
      card = message.card { title = "Stats", theme = "modern-inline" },
      slides = {
        message.table_slide("", { "Measure", "Value" }, {
          { Measure = "Words", Value = tostring(words) },
          { Measure = "Characters", Value = tostring(utf8.len(text) or #text) },
          { Measure = "Sender", Value = name:match("^%s*(.-)%s*$") },
        }),
      },
    }
  end,
}
