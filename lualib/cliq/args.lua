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

local byte, find, gmatch, match, sub = string.byte, string.find, string.gmatch, string.match,
  string.sub
local concat = table.concat
local DASH = byte("-")

-- Splits text into words, honouring quotes. Returns a list, or nil, err.
-- Text without quotes (most commands) is split in one pass; otherwise it
-- works in runs (a whole unquoted stretch or quoted part at a time), not
-- character by character.
---@param text string
---@return string[]|nil words
---@return string? err
function M.split(text)
  local words, n = {}, 0
  if not find(text, "[\"']") then
    for w in gmatch(text, "%S+") do
      n = n + 1
      words[n] = w
    end
    return words
  end
  local i = 1
  while true do
    i = find(text, "%S", i)
    if not i then
      break
    end
    local parts = {}
    while true do
      local c = sub(text, i, i)
      if c == '"' or c == "'" then
        local close = find(text, c, i + 1, true)
        if not close then
          return nil, "unclosed " .. c .. " quote"
        end
        parts[#parts + 1] = sub(text, i + 1, close - 1)
        i = close + 1
      else
        local s, e = find(text, "^[^%s\"']+", i)
        if not s then
          break -- whitespace or the end: the word is complete
        end
        parts[#parts + 1] = sub(text, s, e)
        i = e + 1
      end
    end
    n = n + 1
    words[n] = parts[2] and concat(parts) or parts[1]
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
  local n = 0
  for i = 1, #words do
    local w = words[i]
    -- Only a word starting with "-" can be a flag, and only one holding
    -- "=" an option: the patterns run on those alone.
    local flag = byte(w) == DASH and match(w, "^%-%-([%w_%-]+)$")
    local key, value
    if not flag and find(w, "=", 2, true) then
      key, value = match(w, "^([%a_][%w_%-]*)=(.*)$")
    end
    if flag then
      out.flags[flag] = true
    elseif key then
      out.options[key] = value
    else
      n = n + 1
      out[n] = w
    end
  end
  return out
end

return M
