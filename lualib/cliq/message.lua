-- cliq.message: builders for the replies Cliq understands, checked against
-- Cliq's documented limits before they leave the script.
--
--   local message = require "cliq.message"
--
--   return message.text("Deploying *api*.")            --> { text = "Deploying *api*." }
--
--   return message.message{
--     text = "*Scott* wants to deploy *api*.",
--     card = message.card{ title = "Approval needed", theme = "modern-inline" },
--     slides = { message.label_slide("Details", { { Service = "api" }, { Env = "prod" } }) },
--     buttons = {
--       message.button{ label = "Approve", type = "+", key = "approve:api",
--                       action = message.invoke_function("approval") },
--       message.button{ label = "Runbook", action = message.open_url("https://wiki/deploy") },
--     },
--   }
--
--   return message.banner("Saved")
--     --> { type = "banner", text = "Saved", status = "success" }
--
-- Every builder returns a new plain table shaped exactly like Cliq's JSON
-- (docs/cliq-formats.md §3), so a script may read or edit it before
-- returning it. Lists come back marked with json.array when the host's json
-- module is present, so an empty list is still sent as []; under plain lua5.4
-- they are plain tables. Table arguments are copied, never changed.
--
-- A builder raises error("cliq.message: <field path>: <what is wrong>") at
-- the caller's line when a field breaks a limit, has the wrong type, is
-- missing, or is not a field Cliq documents:
--
--   cliq.message: button.label: 23 characters, Cliq allows 20
--   cliq.message: buttons[6]: 6 buttons, Cliq allows at most 5
--
-- (`return message.text(...)` is a tail call: Lua has already left the
-- caller, so that error carries no line; the field path still says where.)
--
-- message.check(value [, kind]) runs the same checks on any table (built
-- here or written by hand) and returns true, or nil and the message.
--
-- Builders (t: a table with the fields of the JSON object; opts: optional):
--
--   message.message(t)          text, bot, card, styles, buttons, slides,
--                               suggestions, context, references
--   message.text(s [, t])       { text = s, ...t }
--   message.card(t)             title, theme, thumbnail, icon
--   message.bot(name [, image]) message.styles(t)  (background, markdown)
--   message.button(t)           label, type ("+" or "-"), hint, key, action
--   actions, each with opts.confirm = message.confirm{...}:
--     message.invoke_function(name [, opts])     opts.owner too
--     message.open_url(url_or_t [, opts])        t: web, windows, iOS, android
--     message.preview_url(url [, opts])
--     message.system_api(api [, opts])           "audiocall/<zuid>", "videocall/<zuid>",
--                                                "startchat/<zuid>", "invite/<zuid>",
--                                                "locationpermission"
--     message.copy_text(text [, opts])           action type "copy"
--   message.confirm(t)          title, description, input, button_label,
--                               cancel_button_label, emotion, mandatory
--   slides: message.table_slide(title, headers, rows)
--           message.list_slide(title, items)     message.label_slide(title, pairs)
--           message.images_slide(title, urls)    message.text_slide(title, text)
--           message.slide(t)                     any type, graph and percentage_chart too
--   message.suggestions(items)  { list = {...} }; an item is a string or { text=, icon= }
--   message.context(t)          id, timeout, params
--   message.question(name, question [, suggestions])
--   message.instant_button(t)   { type = "button", object = t } for references
--   message.banner(text [, status])              status "success" (default) or "failure"
--   message.command_suggestions(items)           items: { title=, description=, imageurl= }
--   forms: message.form(t)      title, name, hint, button_label, version, inputs, action
--          message.input(t)     type, name, label, placeholder, hint, mandatory, value, ...
--          message.option(label, value)   message.submit(function_name)
--          message.form_modification(actions)   message.modification(type, name [, input])
--          message.form_values(options)
--   widgets: message.widget(t)  tabs, active_tab, data_type, sections, info, header, footer
--            message.tab(id, label)   message.section(id, elements)
--            message.element(t)       message.widget_button(t)
--   link previews: message.link_preview(t)   message.link_action(t)
--                  message.link_actions(actions)  (unfurl_dynamic_action's reply)
--   message.installation(t)     status, title, message, note, footer
--
-- What is checked comes from docs/cliq-formats.md §3 and §4; the comment
-- above each rule quotes Cliq's documentation. Where it gives no limit
-- there is none here: for example banner text, form titles, the number of
-- form inputs, bot suggestions and context questions are not capped. Limits
-- §4 marks as weak (50 command suggestions; 5 widget tabs, 25 sections, 20
-- elements) are not enforced. Objects §3 lists every field of (message,
-- card, bot, styles, button, action and its data, confirm, slide, banner,
-- option, widget button, command suggestion) refuse other fields, which
-- catches misspellings; the rest (forms, inputs, context, widgets, link
-- previews) let other fields through unchecked.
--
-- Where §3 is silent, this module chose: text is held to 5000 characters
-- (§4 gives 5000 for the post APIs and 10 000 elsewhere; 5000 fits both);
-- the slides' 10 000 characters count what a slide shows (titles, table
-- headers and cells, label keys and values, list items, image URLs, text);
-- a button needs a label and an action, a form a title, name, inputs and an
-- action, an input a type and a name, and input names in a form must
-- differ; table rows may only use the table's headers as keys; system.api
-- takes only the five calls §3 lists; slides take no buttons (§3 shows
-- none); poll options, graph data and widget element types are not
-- checked, as §3 does not give their shape.

local M = {}

local PREFIX = "cliq.message: "

-- ---- helpers -------------------------------------------------------------

-- The host's json module is the global `json`; under plain lua5.4 it may be
-- missing. Looked up at each call, so a test can set or clear it.
local function json_lib()
  local j = json
  if type(j) == "table" then
    return j
  end
  return nil
end

-- Marks t as a JSON array when the host's json module is there.
local function as_array(t)
  local j = json_lib()
  if j and type(j.array) == "function" and getmetatable(t) == nil then
    return j.array(t)
  end
  return t
end

local function typename(v)
  local j = json_lib()
  if j and j.null ~= nil and rawequal(v, j.null) then
    return "json.null"
  end
  return type(v)
end

local function key_path(path, k)
  if path == "" then
    return tostring(k)
  end
  return path .. "." .. tostring(k)
end

local function index_path(path, i)
  return path .. "[" .. i .. "]"
end

-- nil and "path: problem"; the whole value (path "") is called "value".
local function fail(path, fmt, ...)
  return nil, (path == "" and "value" or path) .. ": " .. string.format(fmt, ...)
end

-- True when t is a table whose keys are exactly 1..n (an empty table too).
local function is_list(t)
  if type(t) ~= "table" then
    return false
  end
  local n, max = 0, 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then
      return false
    end
    n = n + 1
    if k > max then
      max = k
    end
  end
  return n == max
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  return out
end

local function quoted_list(list)
  local parts = {}
  for i, v in ipairs(list) do
    parts[i] = string.format("%q", v)
  end
  return table.concat(parts, ", ")
end

-- ---- field specifications --------------------------------------------------
--
-- A spec describes one JSON value; walk(spec, v, path) checks v against it
-- and returns a fresh copy (lists marked as arrays), or nil and a message.

local walk

-- A string; opts.max (characters, counted with utf8.len), opts.enum (list of
-- allowed values), opts.schemes (URL schemes allowed, as a set).
local function str(opts)
  local spec = { t = "string" }
  for k, v in pairs(opts or {}) do
    spec[k] = v
  end
  if spec.enum then
    spec.enum_text = quoted_list(spec.enum)
    local set = {}
    for _, v in ipairs(spec.enum) do
      set[v] = true
    end
    spec.enum = set
  end
  return spec
end

-- The one string a `type` field must hold.
local function const(value)
  return str { enum = { value } }
end

local function bool()
  return { t = "boolean" }
end

local function num(opts)
  return { t = "number", integer = opts and opts.integer }
end

-- Text shown to the user: a string or a number.
local function display()
  return { t = "display" }
end

-- Any value, passed through unchecked (shapes §3 does not give).
local function any()
  return { t = "any" }
end

-- A table passed through unchecked.
local function tbl()
  return { t = "table" }
end

-- A list of `of`; opts.min, opts.max (counts), opts.noun (for messages),
-- opts.check(out, path) for rules about the whole list.
local function list(of, opts)
  local spec = { t = "list", of = of }
  for k, v in pairs(opts or {}) do
    spec[k] = v
  end
  return spec
end

-- A JSON object with string keys of any name, each value an `of`.
local function map(of)
  return { t = "map", of = of }
end

-- A value checked by fn(v, path) -> value | nil, err.
local function custom(fn)
  return { t = "custom", fn = fn }
end

-- An object called `name` in messages. fields is a list of
-- { "field", spec, required = true? }. opts.strict: other fields are errors
-- (§3 lists all of this object's fields); otherwise they pass unchecked.
-- opts.check(out, path) runs after the fields, for rules between fields.
local function obj(name, fields, opts)
  opts = opts or {}
  local known, names = {}, {}
  for i, f in ipairs(fields) do
    known[f[1]] = f
    names[i] = f[1]
  end
  return {
    t = "object",
    name = name,
    fields = fields,
    known = known,
    field_text = table.concat(names, ", "),
    strict = opts.strict,
    check = opts.check,
  }
end

local function walk_string(spec, v, path)
  if type(v) ~= "string" then
    return fail(path, "must be a string, not %s", typename(v))
  end
  if spec.max then
    local n = utf8.len(v)
    if not n then
      return fail(path, "not valid UTF-8")
    end
    if n > spec.max then
      return fail(path, "%d characters, Cliq allows %d", n, spec.max)
    end
  end
  if spec.enum and not spec.enum[v] then
    return fail(path, "%q is not one of %s", v, spec.enum_text)
  end
  if spec.schemes then
    local scheme = v:match("^(%a[%w+.%-]*):")
    if not scheme or not spec.schemes[scheme:lower()] then
      return fail(path, "%q must start with %s", v, spec.schemes_text)
    end
  end
  return v
end

local function walk_list(spec, v, path)
  if not is_list(v) then
    local what = type(v) == "table" and "a table with named keys" or typename(v)
    return fail(path, "must be a list, not %s", what)
  end
  local n = #v
  local noun = spec.noun or "items"
  if spec.max and n > spec.max then
    return fail(index_path(path, spec.max + 1), "%d %s, Cliq allows at most %d", n, noun, spec.max)
  end
  if spec.min and n < spec.min then
    return fail(path, "%d %s, Cliq needs at least %d", n, noun, spec.min)
  end
  local out = {}
  for i = 1, n do
    local item, err = walk(spec.of, v[i], index_path(path, i))
    if err then
      return nil, err
    end
    out[i] = item
  end
  if spec.check then
    local ok, err = spec.check(out, path)
    if not ok then
      return nil, err
    end
  end
  return as_array(out)
end

local function walk_object(spec, v, path)
  if type(v) ~= "table" then
    return fail(path, "must be a table, not %s", typename(v))
  end
  local out = {}
  for _, f in ipairs(spec.fields) do
    local name = f[1]
    local fv = v[name]
    if fv == nil then
      if f.required then
        return fail(key_path(path, name), "missing (required)")
      end
    else
      local r, err = walk(f[2], fv, key_path(path, name))
      if err then
        return nil, err
      end
      out[name] = r
    end
  end
  local unknown = {}
  for k, fv in pairs(v) do
    if not spec.known[k] then
      if spec.strict then
        unknown[#unknown + 1] = tostring(k)
      else
        out[k] = fv
      end
    end
  end
  if unknown[1] then
    table.sort(unknown)
    return fail(key_path(path, unknown[1]), "not a field of %s (it has %s)",
      spec.name, spec.field_text)
  end
  if spec.check then
    local ok, err = spec.check(out, path)
    if not ok then
      return nil, err
    end
  end
  return out
end

function walk(spec, v, path)
  local t = spec.t
  if t == "string" then
    return walk_string(spec, v, path)
  elseif t == "object" then
    return walk_object(spec, v, path)
  elseif t == "list" then
    return walk_list(spec, v, path)
  elseif t == "boolean" then
    if type(v) ~= "boolean" then
      return fail(path, "must be true or false, not %s", typename(v))
    end
    return v
  elseif t == "number" then
    if type(v) ~= "number" then
      return fail(path, "must be a number, not %s", typename(v))
    end
    if spec.integer and math.type(v) ~= "integer" then
      return fail(path, "must be a whole number, not %s", tostring(v))
    end
    return v
  elseif t == "display" then
    if type(v) == "number" then
      return v
    end
    if type(v) ~= "string" then
      return fail(path, "must be a string or a number, not %s", typename(v))
    end
    return walk_string(spec, v, path)
  elseif t == "table" then
    if type(v) ~= "table" then
      return fail(path, "must be a table, not %s", typename(v))
    end
    return v
  elseif t == "map" then
    if type(v) ~= "table" then
      return fail(path, "must be a table, not %s", typename(v))
    end
    local out = {}
    for k, item in pairs(v) do
      if type(k) ~= "string" then
        return fail(path .. "[" .. tostring(k) .. "]",
          "keys must be strings such as \"1\" (JSON object keys)")
      end
      local r, err = walk(spec.of, item, key_path(path, k))
      if err then
        return nil, err
      end
      out[k] = r
    end
    return out
  elseif t == "custom" then
    return spec.fn(v, path)
  end
  return v -- "any"
end

-- Characters in a string or number, for totals.
local function chars(v)
  if type(v) == "string" then
    return utf8.len(v) or #v
  elseif type(v) == "number" then
    return #tostring(v)
  end
  return 0
end

-- ---- buttons and actions (§3.2) ----------------------------------------------

-- §3.2 "`confirm{title≤100, description≤100, input≤300, button_label,
-- cancel_button_label, emotion, mandatory}`"
local CONFIRM = obj("confirm", {
  { "title", str { max = 100 } },
  { "description", str { max = 100 } },
  { "input", str { max = 300 } },
  { "button_label", str() },
  { "cancel_button_label", str() },
  { "emotion", str() },
  { "mandatory", bool() },
}, { strict = true })

-- §3.2 "`open.url` (`data{web, windows, iOS, android}`, ≤256, http/https/tel/sms/sip)"
local URL_SCHEMES = { http = true, https = true, tel = true, sms = true, sip = true }
local function open_url_string()
  local s = str { max = 256 }
  s.schemes = URL_SCHEMES
  s.schemes_text = "http:, https:, tel:, sms: or sip:"
  return s
end

-- §3.2 system.api "`data{api: "audiocall/{zuid}"|"videocall/{zuid}"|
-- "startchat/{zuid}"|"invite/{zuid}"|"locationpermission"}`"
local SYSTEM_APIS = { audiocall = true, videocall = true, startchat = true, invite = true }
local SYSTEM_API = custom(function(v, path)
  if type(v) ~= "string" then
    return fail(path, "must be a string, not %s", typename(v))
  end
  if v == "locationpermission" then
    return v
  end
  local name = v:match("^(%a+)/.+$")
  if not (name and SYSTEM_APIS[name]) then
    return fail(path, "%q is not one of \"audiocall/<zuid>\", \"videocall/<zuid>\", "
      .. "\"startchat/<zuid>\", \"invite/<zuid>\", \"locationpermission\"", v)
  end
  return v
end)

-- §3.2 action `type` and its `data`, per type.
local ACTION_DATA = {
  ["invoke.function"] = obj("invoke.function data", {
    { "name", str(), required = true },
    { "owner", str() },
  }, { strict = true }),
  ["open.url"] = obj("open.url data", {
    { "web", open_url_string() },
    { "windows", open_url_string() },
    { "iOS", open_url_string() },
    { "android", open_url_string() },
  }, {
    strict = true,
    check = function(out, path)
      if not (out.web or out.windows or out.iOS or out.android) then
        return fail(path, "needs a URL in web, windows, iOS or android")
      end
      return true
    end,
  }),
  ["preview.url"] = obj("preview.url data", {
    { "url", str { max = 500 }, required = true },
  }, { strict = true }),
  ["system.api"] = obj("system.api data", {
    { "api", SYSTEM_API, required = true },
  }, { strict = true }),
  ["copy"] = obj("copy data", {
    { "text", str { max = 200 }, required = true },
  }, { strict = true }),
}

local ACTION = obj("action", {
  { "type", str { enum = { "invoke.function", "open.url", "preview.url", "system.api", "copy" } },
    required = true },
  { "data", any(), required = true },
  { "confirm", CONFIRM },
}, {
  strict = true,
  check = function(out, path)
    local data, err = walk(ACTION_DATA[out.type], out.data, key_path(path, "data"))
    if err then
      return nil, err
    end
    out.data = data
    return true
  end,
})

-- §3.2 "buttons ≤ 5 per message; button `label` ≤ 20, `hint` ≤ 100, `key` ≤ 100;
-- `type` `+` (green) / `-` (red)"
local BUTTON_FIELDS = {
  { "label", str { max = 20 }, required = true },
  { "type", str { enum = { "+", "-" } } },
  { "hint", str { max = 100 } },
  { "key", str { max = 100 } },
  { "action", ACTION, required = true },
}
local BUTTON = obj("button", BUTTON_FIELDS, { strict = true })
local BUTTONS = list(BUTTON, { max = 5, noun = "buttons" })

-- §3.2 instant buttons: "`"references":{"1":{"type":"button","object":{…,"arguments":{…}}}}`"
local INSTANT_OBJECT_FIELDS = { { "arguments", tbl() } }
for i, f in ipairs(BUTTON_FIELDS) do
  INSTANT_OBJECT_FIELDS[i + 1] = f
end
local INSTANT_BUTTON = obj("instant button", {
  { "type", const "button", required = true },
  { "object", obj("button", INSTANT_OBJECT_FIELDS, { strict = true }), required = true },
}, { strict = true })

-- ---- slides (§3.2) ---------------------------------------------------------------

local LABEL_PAIR = custom(function(v, path)
  if type(v) ~= "table" then
    return fail(path, "must be a table { Key = \"Value\" }, not %s", typename(v))
  end
  local key, value = next(v)
  if key == nil or next(v, key) ~= nil then
    return fail(path, "must hold exactly one Key = \"Value\" pair "
      .. "(Cliq keeps the list's order, not a table's)")
  end
  if type(key) ~= "string" then
    return fail(path, "the key must be a string, not %s", typename(key))
  end
  local r, err = walk(display(), value, key_path(path, key))
  if err then
    return nil, err
  end
  return { [key] = r }
end)

local TABLE_DATA = obj("table data", {
  { "headers", list(str(), { noun = "headers" }), required = true },
  { "rows", list(map(display()), { noun = "rows" }), required = true },
}, {
  strict = true,
  check = function(out, path)
    local columns = {}
    for _, h in ipairs(out.headers) do
      columns[h] = true
    end
    for i, row in ipairs(out.rows) do
      local bad = {}
      for k in pairs(row) do
        if not columns[k] then
          bad[#bad + 1] = k
        end
      end
      if bad[1] then
        table.sort(bad)
        local row_path = index_path(key_path(path, "rows"), i)
        return fail(key_path(row_path, bad[1]), "not one of the headers")
      end
    end
    return true
  end,
})

-- §3.2 "slide types `table|list|label|images|text` (+ newer `graph`,
-- `percentage_chart`, ≤5 series/20 points)". The graph shapes are not in §3,
-- so their data passes unchecked.
local SLIDE_DATA = {
  table = TABLE_DATA,
  list = list(display(), { noun = "items" }),
  label = list(LABEL_PAIR, { noun = "pairs" }),
  images = list(str(), { noun = "images" }),
  text = str(),
  graph = any(),
  percentage_chart = any(),
}

local SLIDE = obj("slide", {
  { "type",
    str { enum = { "table", "list", "label", "images", "text", "graph", "percentage_chart" } },
    required = true },
  { "title", str() },
  { "data", any(), required = true },
}, {
  strict = true,
  check = function(out, path)
    local data, err = walk(SLIDE_DATA[out.type], out.data, key_path(path, "data"))
    if err then
      return nil, err
    end
    out.data = data
    return true
  end,
})

-- The characters a slide shows: its title and data (a table's headers and
-- cells, a label slide's keys and values, every string or number in the
-- data of the other types).
local function slide_chars(slide)
  local n = chars(slide.title)
  local d = slide.data
  if slide.type == "table" then
    for _, h in ipairs(d.headers) do
      n = n + chars(h)
    end
    for _, row in ipairs(d.rows) do
      for _, cell in pairs(row) do
        n = n + chars(cell)
      end
    end
  elseif slide.type == "label" then
    for _, pair in ipairs(d) do
      local k, v = next(pair)
      n = n + chars(k) + chars(v)
    end
  else
    local function add(v, depth)
      if type(v) ~= "table" then
        n = n + chars(v)
      elseif depth < 16 then
        for _, item in pairs(v) do
          add(item, depth + 1)
        end
      end
    end
    add(d, 0)
  end
  return n
end

-- §3.2 "slides ≤ 20, total ≤ 10 000 chars"
local SLIDES_MAX_CHARS = 10000
local SLIDES = list(SLIDE, {
  max = 20,
  noun = "slides",
  check = function(out, path)
    local total = 0
    for i, slide in ipairs(out) do
      total = total + slide_chars(slide)
      if total > SLIDES_MAX_CHARS then
        return fail(index_path(path, i),
          "slides hold %d characters up to here, Cliq allows %d in all", total, SLIDES_MAX_CHARS)
      end
    end
    return true
  end,
})

-- ---- the message object (§3.2) ---------------------------------------------------

-- §3.5 "Bot reply suggestions": "`"suggestions":{"list":[{"text":"Good","icon":"…"}]}`"
local SUGGESTIONS = obj("suggestions", {
  { "list", list(obj("suggestion", {
    { "text", str(), required = true },
    { "icon", str() },
  }, { strict = true }), { noun = "suggestions" }), required = true },
}, { strict = true })

-- §3.5 "Bot context": id, timeout, params[{name, question, suggestions}]
local QUESTION = obj("question", {
  { "name", str(), required = true },
  { "question", str(), required = true },
  { "suggestions", SUGGESTIONS },
})
local CONTEXT = obj("context", {
  { "id", str(), required = true },
  { "timeout", num() },
  { "params", list(QUESTION, { noun = "questions" }), required = true },
})

local MESSAGE = obj("message", {
  -- §3.2 "`text` ≤ 5 000 chars for channel/bot post APIs (buttons/messageformat
  -- pages say 10 000)": the lower bound, so a message fits everywhere.
  { "text", str { max = 5000 } },
  { "bot", obj("bot", { { "name", str() }, { "image", str() } }, { strict = true }) },
  -- §3.2 "card `title` ≤ 200, themes `modern-inline|poll|prompt` (S3 also lists `default`)"
  { "card", obj("card", {
    { "title", str { max = 200 } },
    { "theme", str { enum = { "default", "modern-inline", "poll", "prompt" } } },
    { "thumbnail", str() },
    { "icon", str() },
  }, { strict = true }) },
  -- §3.2 "`styles{background: red|yellow|green|blue|grey, markdown: bool}`"
  { "styles", obj("styles", {
    { "background", str { enum = { "red", "yellow", "green", "blue", "grey" } } },
    { "markdown", bool() },
  }, { strict = true }) },
  { "buttons", BUTTONS },
  { "slides", SLIDES },
  { "suggestions", SUGGESTIONS },
  { "context", CONTEXT },
  { "references", map(INSTANT_BUTTON) },
}, { strict = true })

-- §3.3 "Banner": `status` `success|failure`
local BANNER = obj("banner", {
  { "type", const "banner", required = true },
  { "text", str(), required = true },
  { "status", str { enum = { "success", "failure" } }, required = true },
}, { strict = true })

-- §3.4 "Command suggestion_handler: a bare JSON array `[{"title","description","imageurl"}]`"
local COMMAND_SUGGESTIONS = list(obj("suggestion", {
  { "title", str(), required = true },
  { "description", str() },
  { "imageurl", str() },
}, { strict = true }), { noun = "suggestions" })

-- ---- forms (§3.6) ------------------------------------------------------------------

-- §3.6 "option label ≤100/value ≤50"
local OPTION = obj("option", {
  { "label", str { max = 100 }, required = true },
  { "value", str { max = 50 }, required = true },
}, { strict = true })
local OPTIONS = list(OPTION, { noun = "options" })

local INPUT_TYPES = {
  "text", "textarea", "number", "date", "datetime", "checkbox", "radio", "select", "native_select",
  "dynamic_select", "toggle", "location", "file", "hidden", "catalogue", "dynamic_catalogue",
}

-- §3.6 "checkbox (1–5 options, `max_selections`), radio (2–5 options)"
local OPTION_COUNTS = { checkbox = { 1, 5 }, radio = { 2, 5 } }

local function input_check(out, path)
  local counts = OPTION_COUNTS[out.type]
  if counts then
    local n = out.options and #out.options or 0
    local opath = key_path(path, "options")
    if n < counts[1] then
      return fail(opath, "%d options, Cliq needs at least %d for a %s", n, counts[1], out.type)
    elseif n > counts[2] then
      return fail(index_path(opath, counts[2] + 1), "%d options, Cliq allows at most %d for a %s",
        n, counts[2], out.type)
    end
  end
  return true
end

-- §3.6 form input types and "Field limits: `name` ≤50, `label` ≤50,
-- `hint`/`placeholder` ≤100". A partial input (update modifications) may
-- leave out its type and name.
local function input_spec(partial)
  return obj("input", {
    { "type", str { enum = INPUT_TYPES }, required = not partial },
    { "name", str { max = 50 }, required = not partial },
    { "label", str { max = 50 } },
    { "hint", str { max = 100 } },
    { "placeholder", str { max = 100 } },
    { "mandatory", bool() },
    { "trigger_on_change", bool() },
    { "format", str { enum = { "email", "tel", "url", "password" } } },
    { "options", OPTIONS },
    { "max_selections", num { integer = true } },
    { "multiple", bool() },
    { "data_source", str { enum = { "channels", "conversations", "contacts", "teams" } } },
    { "boundary", any() },
    { "value", any() },
  }, { check = input_check })
end
local INPUT = input_spec(false)
local INPUT_UPDATE = input_spec(true)

-- §3.6 form `action`: {"type":"invoke.function","name":…}; older
-- `actions{submit{…}}`.
local FORM_ACTION = obj("action", {
  { "type", const "invoke.function", required = true },
  { "name", str(), required = true },
}, { strict = true })

local FORM = obj("form", {
  { "type", const "form", required = true },
  { "title", str(), required = true },
  { "name", str(), required = true },
  { "hint", str() },
  { "button_label", str() },
  { "version", num() },
  { "inputs", list(INPUT, { noun = "inputs" }), required = true },
  { "action", FORM_ACTION },
  { "actions", obj("actions", { { "submit", FORM_ACTION, required = true } }) },
}, {
  check = function(out, path)
    if not (out.action or out.actions) then
      return fail(key_path(path, "action"),
        "missing; a form needs the function its submission calls")
    end
    local seen = {}
    for i, input in ipairs(out.inputs) do
      if seen[input.name] then
        local name_path = key_path(index_path(key_path(path, "inputs"), i), "name")
        return fail(name_path, "%q is also inputs[%d]'s name", input.name, seen[input.name])
      end
      seen[input.name] = i
    end
    return true
  end,
})

-- §3.7 form_change_handler: action types `remove|clear|enable|disable|update|add_before|add_after`
local MODIFICATION = obj("modification", {
  { "type",
    str { enum = { "remove", "clear", "enable", "disable", "update", "add_before", "add_after" } },
    required = true },
  { "name", str(), required = true },
  { "input", any() },
}, {
  check = function(out, path)
    local ipath = key_path(path, "input")
    if out.type == "add_before" or out.type == "add_after" then
      if out.input == nil then
        return fail(ipath, "missing; %s needs the input to add", out.type)
      end
      local input, err = walk(INPUT, out.input, ipath)
      if err then
        return nil, err
      end
      out.input = input
    elseif out.input ~= nil then
      local input, err = walk(INPUT_UPDATE, out.input, ipath)
      if err then
        return nil, err
      end
      out.input = input
    end
    return true
  end,
})

local FORM_MODIFICATION = obj("form_modification", {
  { "type", const "form_modification", required = true },
  { "actions", list(MODIFICATION, { noun = "actions" }), required = true },
}, { strict = true })

-- §3.8 form_values_handler → `{"options":[{"label":…,"value":…}]}`
local FORM_VALUES = obj("form_values", {
  { "options", OPTIONS, required = true },
}, { strict = true })

-- ---- widgets (§3.9) ---------------------------------------------------------------

-- §3.9 "widget buttons are flat `{label,type,name,id,url,api,
-- emotion:positive|neutral|negative,disabled}`".
-- Their types, from the fields they carry: name → invoke.function, url →
-- open.url, api → system.api.
local WIDGET_BUTTON_NEEDS = {
  ["invoke.function"] = "name",
  ["open.url"] = "url",
  ["system.api"] = "api",
}
local WIDGET_BUTTON = obj("widget button", {
  { "label", str(), required = true },
  { "type", str { enum = { "invoke.function", "open.url", "system.api" } }, required = true },
  { "name", str() },
  { "id", str() },
  { "url", str() },
  { "api", str() },
  { "emotion", str { enum = { "positive", "neutral", "negative" } } },
  { "disabled", bool() },
}, {
  strict = true,
  check = function(out, path)
    local need = WIDGET_BUTTON_NEEDS[out.type]
    if out[need] == nil then
      return fail(key_path(path, need), "missing; a %s button needs it", out.type)
    end
    return true
  end,
})
local WIDGET_BUTTONS = list(WIDGET_BUTTON, { noun = "buttons" })

-- §3.9 element types `title|text|subtext|activity|user_activity|divider|
-- buttons|table|fields` "(+images/charts)": the list is open, so any type
-- name passes; the fields the sample shows are checked.
local ELEMENT = obj("element", {
  { "type", str(), required = true },
  { "text", str() },
  { "buttons", WIDGET_BUTTONS },
})

local TAB = obj("tab", {
  { "id", str(), required = true },
  { "label", str(), required = true },
})

local SECTION = obj("section", {
  { "id", display(), required = true },
  { "elements", list(ELEMENT, { noun = "elements" }), required = true },
})

local WIDGET = obj("widget", {
  { "type", const "applet", required = true },
  { "tabs", list(TAB, { noun = "tabs" }) },
  { "active_tab", str() },
  { "data_type", str { enum = { "sections", "info" } } },
  { "sections", list(SECTION, { noun = "sections" }) },
  { "info", obj("info", {
    { "title", str() },
    { "description", str() },
    { "image_url", str() },
    { "button", WIDGET_BUTTON },
  }) },
  { "header", obj("header", {
    { "title", str() },
    { "navigation", str() },
    { "buttons", WIDGET_BUTTONS },
  }) },
  { "footer", obj("footer", { { "text", str() }, { "buttons", WIDGET_BUTTONS } }) },
}, {
  check = function(out, path)
    if out.data_type and out[out.data_type] == nil then
      return fail(key_path(path, out.data_type), "missing; data_type is %q", out.data_type)
    end
    if out.active_tab and out.tabs then
      local found = false
      for _, tab in ipairs(out.tabs) do
        found = found or tab.id == out.active_tab
      end
      if not found then
        return fail(key_path(path, "active_tab"), "%q is not the id of one of the tabs",
          out.active_tab)
      end
    end
    return true
  end,
})

-- ---- link previews and installation (§3.10, §3.11) ----------------------------------------

local LINK_ACTION = obj("link action", {
  { "type", const "button", required = true },
  { "label", str(), required = true },
  { "params", tbl() },
  { "confirm", CONFIRM },
})
local LINK_ACTIONS = list(LINK_ACTION, { noun = "actions" })

local LINK_PREVIEW = obj("link preview", {
  { "type", const "link", required = true },
  { "title", str() },
  { "description", str() },
  { "provider_url", str() },
  { "dynamic_actions", bool() },
  { "fields", obj("fields", {
    { "data", list(obj("field", {
      { "label", display(), required = true },
      { "value", display(), required = true },
    }), { noun = "fields" }), required = true },
  }) },
  { "actions", LINK_ACTIONS },
})

-- §3.11 installation_handler / installation_validator: status 200 or 400,
-- a number or (as S4 sends it) a string.
local INSTALLATION = obj("installation", {
  { "status", custom(function(v, path)
    if math.type(v) == "integer" or (type(v) == "string" and v:match("^%d+$")) then
      return v
    end
    return fail(path, "must be an HTTP status such as 200, not %s", tostring(v))
  end), required = true },
  { "title", str() },
  { "message", str() },
  { "note", list(str(), { noun = "notes" }) },
  { "footer", str() },
})

-- ---- builders -------------------------------------------------------------------------

-- Checks t against spec and returns the copy, or raises at the line that
-- called the builder. Builders must call it as `local out = made(...)`
-- followed by `return out`: a tail call would drop the builder's frame and
-- the error would point one level too far up.
local function made(spec, t, root)
  local out, err = walk(spec, t, root)
  if err then
    error(PREFIX .. err, 3)
  end
  return out
end

-- A table argument, or an error at the caller of the builder.
local function table_arg(t, what)
  if type(t) ~= "table" then
    error(PREFIX .. what .. ": expects a table, not " .. typename(t), 3)
  end
  return copy(t)
end

-- Options for an action builder: only the names listed in `allowed`.
local function action_opts(opts, what, allowed)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    error(PREFIX .. what .. ": options must be a table, not " .. typename(opts), 3)
  end
  for k in pairs(opts) do
    local ok = false
    for _, name in ipairs(allowed) do
      ok = ok or k == name
    end
    if not ok then
      error(PREFIX .. what .. ": " .. tostring(k) .. " is not an option ("
        .. table.concat(allowed, ", ") .. ")", 3)
    end
  end
  return opts
end

local CONFIRM_ONLY = { "confirm" }

---A message: text, bot, card, styles, buttons, slides, suggestions, context, references.
---@param t cliq.Message
---@return cliq.Message
function M.message(t)
  local out = made(MESSAGE, table_arg(t, "message"), "")
  return out
end

---{ text = s } plus the message fields of t.
---@param s string
---@param t? cliq.Message
---@return cliq.Message
function M.text(s, t)
  local fields = t == nil and {} or table_arg(t, "text")
  if fields.text ~= nil then
    error(PREFIX .. "text: given twice (as the first argument and in the table)", 2)
  end
  fields.text = s
  local out = made(MESSAGE, fields, "")
  return out
end

---@param t cliq.Card
---@return cliq.Card
function M.card(t)
  local out = made(MESSAGE.known.card[2], table_arg(t, "card"), "card")
  return out
end

---@param name string
---@param image? string
---@return cliq.BotInfo
function M.bot(name, image)
  local out = made(MESSAGE.known.bot[2], { name = name, image = image }, "bot")
  return out
end

---@param t cliq.Styles
---@return cliq.Styles
function M.styles(t)
  local out = made(MESSAGE.known.styles[2], table_arg(t, "styles"), "styles")
  return out
end

---@param t cliq.Button
---@return cliq.Button
function M.button(t)
  local out = made(BUTTON, table_arg(t, "button"), "button")
  return out
end

---@param t cliq.Confirm
---@return cliq.Confirm
function M.confirm(t)
  local out = made(CONFIRM, table_arg(t, "confirm"), "confirm")
  return out
end

---A button action that runs the function `name` (its `button` handler).
---@param name string
---@param opts? { owner?: string, confirm?: cliq.Confirm }
---@return cliq.Action
function M.invoke_function(name, opts)
  opts = action_opts(opts, "invoke_function", { "owner", "confirm" })
  local out = made(ACTION, {
    type = "invoke.function",
    data = { name = name, owner = opts.owner },
    confirm = opts.confirm,
  }, "action")
  return out
end

---@param url string|{ web?: string, windows?: string, iOS?: string, android?: string }
---@param opts? { confirm?: cliq.Confirm }
---@return cliq.Action
function M.open_url(url, opts)
  opts = action_opts(opts, "open_url", CONFIRM_ONLY)
  local data = url
  if type(url) == "string" then
    data = { web = url }
  elseif type(url) == "table" then
    data = copy(url)
  end
  local out = made(ACTION, { type = "open.url", data = data, confirm = opts.confirm }, "action")
  return out
end

---@param url string
---@param opts? { confirm?: cliq.Confirm }
---@return cliq.Action
function M.preview_url(url, opts)
  opts = action_opts(opts, "preview_url", CONFIRM_ONLY)
  local out = made(ACTION,
    { type = "preview.url", data = { url = url }, confirm = opts.confirm }, "action")
  return out
end

---@param api string  "audiocall/<zuid>", "videocall/<zuid>", "startchat/<zuid>", "invite/<zuid>", "locationpermission"
---@param opts? { confirm?: cliq.Confirm }
---@return cliq.Action
function M.system_api(api, opts)
  opts = action_opts(opts, "system_api", CONFIRM_ONLY)
  local out = made(ACTION,
    { type = "system.api", data = { api = api }, confirm = opts.confirm }, "action")
  return out
end

---@param text string
---@param opts? { confirm?: cliq.Confirm }
---@return cliq.Action
function M.copy_text(text, opts)
  opts = action_opts(opts, "copy_text", CONFIRM_ONLY)
  local out = made(ACTION,
    { type = "copy", data = { text = text }, confirm = opts.confirm }, "action")
  return out
end

---@param t cliq.Slide
---@return cliq.Slide
function M.slide(t)
  local out = made(SLIDE, table_arg(t, "slide"), "slide")
  return out
end

---@param title string
---@param headers string[]
---@param rows table<string, string|number>[]  keys are headers
---@return cliq.Slide
function M.table_slide(title, headers, rows)
  local out = made(SLIDE,
    { type = "table", title = title, data = { headers = headers, rows = rows } }, "slide")
  return out
end

---@param title string
---@param items (string|number)[]
---@return cliq.Slide
function M.list_slide(title, items)
  local out = made(SLIDE, { type = "list", title = title, data = items }, "slide")
  return out
end

---@param title string
---@param pairs_ table<string, string|number>[]  { { Key = "Value" }, ... }
---@return cliq.Slide
function M.label_slide(title, pairs_)
  local out = made(SLIDE, { type = "label", title = title, data = pairs_ }, "slide")
  return out
end

---@param title string
---@param urls string[]
---@return cliq.Slide
function M.images_slide(title, urls)
  local out = made(SLIDE, { type = "images", title = title, data = urls }, "slide")
  return out
end

---@param title string
---@param text string
---@return cliq.Slide
function M.text_slide(title, text)
  local out = made(SLIDE, { type = "text", title = title, data = text }, "slide")
  return out
end

---@param items (string|{ text: string, icon?: string })[]
---@return cliq.Suggestions
function M.suggestions(items)
  if not is_list(items) then
    error(PREFIX .. "suggestions: expects a list, not " .. typename(items), 2)
  end
  local list_ = {}
  for i, item in ipairs(items) do
    list_[i] = type(item) == "string" and { text = item } or item
  end
  local out = made(SUGGESTIONS, { list = list_ }, "suggestions")
  return out
end

---@param name string
---@param question string
---@param suggestions? cliq.Suggestions
---@return cliq.Question
function M.question(name, question, suggestions)
  local out = made(QUESTION,
    { name = name, question = question, suggestions = suggestions }, "question")
  return out
end

---@param t cliq.Context
---@return cliq.Context
function M.context(t)
  local out = made(CONTEXT, table_arg(t, "context"), "context")
  return out
end

---@param t table  a button's fields and arguments
---@return cliq.InstantButton
function M.instant_button(t)
  local out = made(INSTANT_BUTTON,
    { type = "button", object = table_arg(t, "instant_button") }, "instant button")
  return out
end

---@param text string
---@param status? "success"|"failure"  "success" unless given
---@return cliq.Banner
function M.banner(text, status)
  local out = made(BANNER, { type = "banner", text = text, status = status or "success" }, "banner")
  return out
end

---@param items cliq.CommandSuggestion[]
---@return cliq.CommandSuggestion[]
function M.command_suggestions(items)
  local out = made(COMMAND_SUGGESTIONS, items, "suggestions")
  return out
end

---@param label string
---@param value string
---@return cliq.Option
function M.option(label, value)
  local out = made(OPTION, { label = label, value = value }, "option")
  return out
end

---@param t cliq.Input
---@return cliq.Input
function M.input(t)
  local out = made(INPUT, table_arg(t, "input"), "input")
  return out
end

---@param function_name string
---@return cliq.FormAction
function M.submit(function_name)
  local out = made(FORM_ACTION, { type = "invoke.function", name = function_name }, "action")
  return out
end

---@param t cliq.FormReply  `type` may be left out
---@return cliq.FormReply
function M.form(t)
  t = table_arg(t, "form")
  t.type = t.type or "form"
  local out = made(FORM, t, "")
  return out
end

---@param type_ "remove"|"clear"|"enable"|"disable"|"update"|"add_before"|"add_after"
---@param name string
---@param input? cliq.Input
---@return cliq.Modification
function M.modification(type_, name, input)
  local out = made(MODIFICATION, { type = type_, name = name, input = input }, "modification")
  return out
end

---@param actions cliq.Modification[]
---@return cliq.FormModification
function M.form_modification(actions)
  local out = made(FORM_MODIFICATION, { type = "form_modification", actions = actions }, "")
  return out
end

---@param options cliq.Option[]
---@return cliq.FormValues
function M.form_values(options)
  local out = made(FORM_VALUES, { options = options }, "")
  return out
end

---@param t cliq.WidgetButton
---@return cliq.WidgetButton
function M.widget_button(t)
  local out = made(WIDGET_BUTTON, table_arg(t, "widget_button"), "widget button")
  return out
end

---@param t cliq.Element
---@return cliq.Element
function M.element(t)
  local out = made(ELEMENT, table_arg(t, "element"), "element")
  return out
end

---@param id string
---@param label string
---@return cliq.Tab
function M.tab(id, label)
  local out = made(TAB, { id = id, label = label }, "tab")
  return out
end

---@param id string|number
---@param elements cliq.Element[]
---@return cliq.Section
function M.section(id, elements)
  local out = made(SECTION, { id = id, elements = elements }, "section")
  return out
end

-- data_type defaults to "sections" or "info", whichever the table has.
---@param t cliq.WidgetReply  `type` may be left out
---@return cliq.WidgetReply
function M.widget(t)
  t = table_arg(t, "widget")
  t.type = t.type or "applet"
  if t.data_type == nil then
    t.data_type = (t.sections ~= nil and "sections") or (t.info ~= nil and "info") or nil
  end
  local out = made(WIDGET, t, "")
  return out
end

---@param t cliq.LinkAction  `type` may be left out
---@return cliq.LinkAction
function M.link_action(t)
  t = table_arg(t, "link_action")
  t.type = t.type or "button"
  local out = made(LINK_ACTION, t, "action")
  return out
end

---@param actions cliq.LinkAction[]
---@return cliq.LinkAction[]
function M.link_actions(actions)
  local out = made(LINK_ACTIONS, actions, "actions")
  return out
end

---@param t cliq.LinkPreviewReply  `type` may be left out
---@return cliq.LinkPreviewReply
function M.link_preview(t)
  t = table_arg(t, "link_preview")
  t.type = t.type or "link"
  local out = made(LINK_PREVIEW, t, "")
  return out
end

---@param t cliq.Installation
---@return cliq.Installation
function M.installation(t)
  local out = made(INSTALLATION, table_arg(t, "installation"), "")
  return out
end

-- ---- check ------------------------------------------------------------------------------

local KINDS = {
  message = MESSAGE,
  banner = BANNER,
  form = FORM,
  form_modification = FORM_MODIFICATION,
  form_values = FORM_VALUES,
  widget = WIDGET,
  link_preview = LINK_PREVIEW,
  link_actions = LINK_ACTIONS,
  command_suggestions = COMMAND_SUGGESTIONS,
  installation = INSTALLATION,
}

local BY_TYPE = {
  banner = "banner",
  form = "form",
  form_modification = "form_modification",
  applet = "widget",
  link = "link_preview",
}

-- Which reply a table looks like, from its `type` and keys.
local function guess_kind(v)
  if type(v) ~= "table" then
    return "message"
  end
  local by_type = type(v.type) == "string" and BY_TYPE[v.type]
  if by_type then
    return by_type
  end
  if is_list(v) then
    local first = v[1]
    if type(first) == "table" and first.type == "button" then
      return "link_actions"
    end
    return "command_suggestions"
  end
  if v.options ~= nil and v.text == nil then
    return "form_values"
  end
  if v.status ~= nil and v.text == nil then
    return "installation"
  end
  return "message"
end

-- check(value [, kind]) -> true | nil, "cliq.message: <path>: <problem>"
-- kind: "message", "banner", "form", "form_modification", "form_values",
-- "widget", "link_preview", "link_actions", "command_suggestions" or
-- "installation"; without it the kind is read from the value (its `type`,
-- a list, `options` alone, `status` alone, else a message). A string is
-- checked as a message's text, as the host sends it.
---@param value any
---@param kind? cliq.ReplyKind
---@return true|nil ok
---@return string? err
function M.check(value, kind)
  if kind ~= nil and not KINDS[kind] then
    error(PREFIX .. "check: unknown kind " .. tostring(kind), 2)
  end
  if type(value) == "string" and (kind == nil or kind == "message") then
    value = { text = value }
  end
  local _, err = walk(KINDS[kind or guess_kind(value)], value, "")
  if err then
    return nil, PREFIX .. err
  end
  return true
end

return M
