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
-- Works in runs (a whole unquoted stretch or quoted part at a time), not
-- character by character.
---@param text string
---@return string[]|nil words
---@return string? err
function M.split(text)
  local words = {}
  local i = 1
  while true do
    i = text:find("%S", i)
    if not i then
      break
    end
    local parts = {}
    while true do
      local c = text:sub(i, i)
      if c == '"' or c == "'" then
        local close = text:find(c, i + 1, true)
        if not close then
          return nil, "unclosed " .. c .. " quote"
        end
        parts[#parts + 1] = text:sub(i + 1, close - 1)
        i = close + 1
      else
        local s, e = text:find("^[^%s\"']+", i)
        if not s then
          break -- whitespace or the end: the word is complete
        end
        parts[#parts + 1] = text:sub(s, e)
        i = e + 1
      end
    end
    words[#words + 1] = parts[2] and table.concat(parts) or parts[1]
  end
  return words
end

-- Parses text into { word, word, ..., flags = {}, options = {} }.
---@param text? string
---@return { [integer]: string, flags: table<string, true>, options: table<string, string> }|nil args
---@return string? err
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
