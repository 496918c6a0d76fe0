-- A message action: pick "stats" on any message to see its size.

return {
  execution = function(req)
    local message = req.params.message or {}
    local text = message.text or ""
    local words = 0
    for _ in text:gmatch("%S+") do
      words = words + 1
    end
    local sender = message.sender or {}
    local name = sender.name or table.concat({ sender.first_name or "", sender.last_name or "" }, " ")
    return {
      text = "Message statistics",
      card = { title = "Stats", theme = "modern-inline" },
      slides = {
        { type = "table", title = "", data = {
          headers = { "Measure", "Value" },
          rows = {
            { Measure = "Words", Value = tostring(words) },
            { Measure = "Characters", Value = tostring(utf8.len(text) or #text) },
            { Measure = "Sender", Value = name:match("^%s*(.-)%s*$") },
          },
        } },
      },
    }
  end,
}
