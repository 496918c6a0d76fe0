-- cliq.args: split a slash command's argument text into words, flags and
-- key=value options.
--
--   local args = require "cliq.args"
--   local a = args.parse([[api prod --force note="ship it"]])
--   a[1] == "api"; a[2] == "prod"; a.flags.force == true; a.options.note == "ship it"
--
-- Words are separated by spaces; single or double quotes keep spaces in a
-- word. A word "--name" is a flag; "name=value" is an option (a quoted value
-- may hold spaces). Returns nil and a message for an unclosed quote.

local M = {}

-- Splits text into words, honouring quotes. Returns a list, or nil, err.
function M.split(text)
  local words = {}
  local i, n = 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c:match("%s") then
      i = i + 1
    else
      local parts = {}
      while i <= n and not text:sub(i, i):match("%s") do
        c = text:sub(i, i)
        if c == '"' or c == "'" then
          local close = text:find(c, i + 1, true)
          if not close then
            return nil, "unclosed " .. c .. " quote"
          end
          parts[#parts + 1] = text:sub(i + 1, close - 1)
          i = close + 1
        else
          local stop = text:find("[%s\"']", i) or n + 1
          parts[#parts + 1] = text:sub(i, stop - 1)
          i = stop
        end
      end
      words[#words + 1] = table.concat(parts)
    end
  end
  return words
end

-- Parses text into { word, word, ..., flags = {}, options = {} }.
function M.parse(text)
  local words, err = M.split(text or "")
  if not words then
    return nil, err
  end
  local out = { flags = {}, options = {} }
  for _, w in ipairs(words) do
    local flag = w:match("^%-%-([%w_%-]+)$")
    local key, value = w:match("^([%a_][%w_%-]*)=(.*)$")
    if flag then
      out.flags[flag] = true
    elseif key then
      out.options[key] = value
    else
      out[#out + 1] = w
    end
  end
  return out
end

return M
