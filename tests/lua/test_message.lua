-- Tests of lualib/cliq/message.lua, run with plain lua5.4:
--   LUA_PATH="lualib/?.lua;lualib/?/init.lua;;" lua5.4 tests/lua/test_message.lua
-- Shapes are compared with the JSON in docs/cliq-formats.md §3, and
-- every limit is tried at the boundary (accepted) and one past it (refused,
-- naming the field). Exits non-zero when any test fails.

-- A stand-in for the host's json module: json.array marks a table.
local ARRAY = { __name = "json.array" }
local NULL = setmetatable({}, { __name = "json.null" })
local fake_json = {
  array = function(t)
    return setmetatable(t or {}, ARRAY)
  end,
  null = NULL,
}
json = fake_json

local message = require "cliq.message"

local THIS_FILE = debug.getinfo(1, "S").short_src
local THIS_FILE_PATTERN = THIS_FILE:gsub("%p", "%%%0")

local passed, failures = 0, {}

local function test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
  else
    failures[#failures + 1] = name .. ": " .. tostring(err)
  end
end

-- Deep equality of plain data (metatables ignored); returns true or a path.
local function same(a, b, path)
  path = path or "value"
  if type(a) ~= "table" or type(b) ~= "table" then
    if a == b then
      return true
    end
    return nil, string.format("%s: %s ~= %s", path, tostring(a), tostring(b))
  end
  for k, v in pairs(a) do
    local ok, err = same(v, b[k], path .. "." .. tostring(k))
    if not ok then
      return nil, err
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return nil, path .. "." .. tostring(k) .. ": missing"
    end
  end
  return true
end

local function eq(got, want)
  local ok, err = same(got, want)
  if not ok then
    error(err, 2)
  end
end

local function is_array(t, what)
  if getmetatable(t) ~= ARRAY then
    error((what or "value") .. " is not marked json.array", 2)
  end
end

-- Runs fn, which must raise "cliq.message: <path>: ..." at a line of this
-- file; `want` is a plain substring the message must contain.
local function refuses(fn, path, want)
  local ok, err = pcall(fn)
  if ok then
    error("accepted; wanted an error at " .. path, 2)
  end
  err = tostring(err)
  local prefix = THIS_FILE_PATTERN .. ":%d+: cliq%.message: "
  if not err:find("^" .. prefix) then
    error("error does not point at this file: " .. err, 2)
  end
  local at = err:find("cliq.message: " .. path .. ": ", 1, true)
  if not at then
    error("error does not name " .. path .. ": " .. err, 2)
  end
  if want and not err:find(want, 1, true) then
    error("error lacks " .. string.format("%q", want) .. ": " .. err, 2)
  end
end

-- check(value) must fail naming `path` (and `want`).
local function check_refuses(value, path, want, kind)
  local ok, err = message.check(value, kind)
  if ok then
    error("check accepted; wanted an error at " .. path, 2)
  end
  if not err:find("^cliq%.message: ") or not err:find("cliq.message: " .. path .. ": ", 1, true) then
    error("check error does not name " .. path .. ": " .. err, 2)
  end
  if want and not err:find(want, 1, true) then
    error("check error lacks " .. string.format("%q", want) .. ": " .. err, 2)
  end
end

local function check_ok(value, kind)
  local ok, err = message.check(value, kind)
  if not ok then
    error("check refused: " .. tostring(err), 2)
  end
end

-- n copies of a one-character string (multi-byte ones prove that limits
-- count characters, not bytes).
local function chars(n, c)
  return string.rep(c or "é", n)
end

local function buttons(n)
  local list = {}
  for i = 1, n do
    list[i] = message.button { label = "B" .. i, action = message.invoke_function("f") }
  end
  return list
end

local function input_with(field, value)
  local t = { type = "text", name = "n" }
  t[field] = value
  return t
end

-- ---- the §3.2 sample, built -------------------------------------------------

test("§3.2 sample message builds to the same JSON", function()
  local built = message.message {
    text = "Total Expense: 120 USD",
    bot = message.bot("Expense Manager", "https://i.ibb.co/6YQcdpr/exp-mang.png"),
    card = message.card { title = "Expenses for the month", theme = "modern-inline",
                          thumbnail = "https://x/icon.png" },
    slides = {
      message.table_slide("Details", { "Date", "Amount" }, { { Date = "2024-01-02", Amount = "20" } }),
      message.label_slide("", { { ["Asset Type"] = "Mobile" }, { ["Preferred OS"] = "Android" } }),
      message.list_slide("Steps", { "one", "two" }),
      message.images_slide("", { "https://media.giphy.com/media/efyEShk2FJ9X2Kpd7V/giphy.gif" }),
      message.text_slide("Note", "free text"),
    },
    buttons = {
      message.button { label = "open mail", type = "+", hint = "Open in a new tab", key = "k1",
                       action = message.open_url("https://mail.zoho.com/x") },
      message.button { label = "Create Webhook", type = "+",
                       action = message.invoke_function("authentication", {
                         confirm = message.confirm { title = "Generate Webhooks", description = "Connect to GitLab",
                                                     input = "Reason", button_label = "Go" } }) },
    },
  }
  eq(built, {
    text = "Total Expense: 120 USD",
    bot = { name = "Expense Manager", image = "https://i.ibb.co/6YQcdpr/exp-mang.png" },
    card = { title = "Expenses for the month", theme = "modern-inline", thumbnail = "https://x/icon.png" },
    slides = {
      { type = "table", title = "Details", data = { headers = { "Date", "Amount" },
                                                     rows = { { Date = "2024-01-02", Amount = "20" } } } },
      { type = "label", title = "", data = { { ["Asset Type"] = "Mobile" }, { ["Preferred OS"] = "Android" } } },
      { type = "list", title = "Steps", data = { "one", "two" } },
      { type = "images", title = "", data = { "https://media.giphy.com/media/efyEShk2FJ9X2Kpd7V/giphy.gif" } },
      { type = "text", title = "Note", data = "free text" },
    },
    buttons = {
      { label = "open mail", type = "+", hint = "Open in a new tab", key = "k1",
        action = { type = "open.url", data = { web = "https://mail.zoho.com/x" } } },
      { label = "Create Webhook", type = "+",
        action = { type = "invoke.function", data = { name = "authentication" },
                   confirm = { title = "Generate Webhooks", description = "Connect to GitLab", input = "Reason",
                               button_label = "Go" } } },
    },
  })
  is_array(built.slides, "slides")
  is_array(built.buttons, "buttons")
  is_array(built.slides[1].data.headers, "headers")
  is_array(built.slides[1].data.rows, "rows")
  is_array(built.slides[2].data, "label data")
  is_array(built.slides[3].data, "list data")
  is_array(built.slides[4].data, "images data")
  check_ok(built)
end)

-- ---- text and the message object ----------------------------------------------

test("text: a string, and extra fields", function()
  eq(message.text("Deploying"), { text = "Deploying" })
  eq(message.text("Hi", { card = message.card { title = "T" } }), { text = "Hi", card = { title = "T" } })
  refuses(function() message.text("a", { text = "b" }) end, "text", "given twice")
  refuses(function() message.text(42) end, "text", "must be a string, not number")
  refuses(function() message.text("a", "b") end, "text", "expects a table")
end)

test("text: at most 5000 characters, counted as characters", function()
  local t = message.text(chars(5000))
  assert(#t.text == 10000) -- bytes
  refuses(function() message.text(chars(5001)) end, "text", "5001 characters, Cliq allows 5000")
  refuses(function() message.message { text = "ok", card = { title = chars(201) } } end, "card.title")
  refuses(function() message.text("\xff\xfe") end, "text", "not valid UTF-8")
end)

test("message: unknown and mistyped fields", function()
  refuses(function() message.message { text = "x", reply_to = "1" } end, "reply_to",
    "not a field of message (it has text, bot, card, styles, buttons, slides, suggestions, context, references)")
  refuses(function() message.message { text = "x", buttons = { label = "x" } } end, "buttons",
    "must be a list, not a table with named keys")
  refuses(function() message.message { text = "x", card = "modern" } end, "card", "must be a table, not string")
  refuses(function() message.message("x") end, "message", "expects a table, not string")
  refuses(function() message.message { text = NULL } end, "text", "not json.null")
end)

test("card: fields, title 200, themes", function()
  eq(message.card { title = "T", theme = "poll", thumbnail = "https://t", icon = "https://i" },
    { title = "T", theme = "poll", thumbnail = "https://t", icon = "https://i" })
  for _, theme in ipairs { "default", "modern-inline", "poll", "prompt" } do
    eq(message.card { theme = theme }, { theme = theme })
  end
  message.card { title = chars(200) }
  refuses(function() message.card { title = chars(201) } end, "card.title", "201 characters, Cliq allows 200")
  refuses(function() message.card { theme = "fancy" } end, "card.theme",
    '"fancy" is not one of "default", "modern-inline", "poll", "prompt"')
  refuses(function() message.card { colour = "red" } end, "card.colour",
    "not a field of card (it has title, theme, thumbnail, icon)")
end)

test("bot and styles", function()
  eq(message.bot("Helper", "https://img"), { name = "Helper", image = "https://img" })
  eq(message.bot("Helper"), { name = "Helper" })
  refuses(function() message.bot(1) end, "bot.name")
  for _, bg in ipairs { "red", "yellow", "green", "blue", "grey" } do
    eq(message.styles { background = bg, markdown = true }, { background = bg, markdown = true })
  end
  refuses(function() message.styles { background = "gray" } end, "styles.background", '"gray" is not one of')
  refuses(function() message.styles { markdown = "yes" } end, "styles.markdown", "must be true or false")
  check_ok { text = "x", styles = { background = "blue" } }
end)

-- ---- buttons and actions --------------------------------------------------------

test("button: shape, label 20, hint 100, key 100, type + or -", function()
  local b = message.button { label = "Approve", type = "+", hint = "h", key = "k",
                             action = message.invoke_function("approval") }
  eq(b, { label = "Approve", type = "+", hint = "h", key = "k",
          action = { type = "invoke.function", data = { name = "approval" } } })
  message.button { label = chars(20), type = "-", hint = chars(100), key = chars(100, "k"),
                   action = message.invoke_function("f") }
  local act = message.invoke_function("f")
  refuses(function() message.button { label = chars(21), action = act } end, "button.label",
    "21 characters, Cliq allows 20")
  refuses(function() message.button { label = "x", hint = chars(101), action = act } end, "button.hint",
    "101 characters, Cliq allows 100")
  refuses(function() message.button { label = "x", key = chars(101), action = act } end, "button.key",
    "101 characters, Cliq allows 100")
  refuses(function() message.button { label = "x", type = "*", action = act } end, "button.type",
    '"*" is not one of "+", "-"')
  refuses(function() message.button { action = act } end, "button.label", "missing (required)")
  refuses(function() message.button { label = "x" } end, "button.action", "missing (required)")
  refuses(function() message.button { label = "x", action = act, lable = "y" } end, "button.lable",
    "not a field of button")
end)

test("buttons: at most 5 in a message; paths name the button", function()
  local m = message.message { text = "x", buttons = buttons(5) }
  is_array(m.buttons)
  refuses(function() message.message { text = "x", buttons = buttons(6) } end, "buttons[6]",
    "6 buttons, Cliq allows at most 5")
  local list = buttons(2)
  list[2].label = chars(23) -- hand-edited after building
  refuses(function() message.message { text = "x", buttons = list } end, "buttons[2].label",
    "23 characters, Cliq allows 20")
  check_refuses({ text = "x", buttons = list }, "buttons[2].label", "23 characters, Cliq allows 20")
end)

test("invoke.function: name, owner, confirm", function()
  eq(message.invoke_function("f", { owner = "a@b" }),
    { type = "invoke.function", data = { name = "f", owner = "a@b" } })
  refuses(function() message.invoke_function() end, "action.data.name", "missing (required)")
  refuses(function() message.invoke_function("f", { color = 1 }) end, "invoke_function",
    "color is not an option (owner, confirm)")
  check_refuses({ text = "x", buttons = { { label = "b", action = { type = "invoke.function",
    data = { name = "f", args = 1 } } } } }, "buttons[1].action.data.args", "not a field of invoke.function data")
end)

test("open.url: web and platforms, 256 characters, schemes", function()
  eq(message.open_url("https://a"), { type = "open.url", data = { web = "https://a" } })
  eq(message.open_url { web = "https://a", windows = "https://w", iOS = "tel:123", android = "sms:1" },
    { type = "open.url", data = { web = "https://a", windows = "https://w", iOS = "tel:123", android = "sms:1" } })
  for _, url in ipairs { "http://a", "https://a", "tel:1", "sms:1", "sip:a@b", "HTTPS://A" } do
    message.open_url(url)
  end
  local long = "https://" .. chars(248, "a")
  assert(utf8.len(long) == 256)
  message.open_url(long)
  refuses(function() message.open_url(long .. "a") end, "action.data.web", "257 characters, Cliq allows 256")
  refuses(function() message.open_url { android = long .. "a" } end, "action.data.android", "257 characters")
  refuses(function() message.open_url("ftp://a") end, "action.data.web", "must start with http:, https:, tel:")
  refuses(function() message.open_url("www.zoho.com") end, "action.data.web", "must start with")
  refuses(function() message.open_url {} end, "action.data", "needs a URL in web, windows, iOS or android")
  refuses(function() message.open_url { ios = "https://a" } end, "action.data.ios", "not a field")
end)

test("preview.url: url at most 500", function()
  eq(message.preview_url("https://p"), { type = "preview.url", data = { url = "https://p" } })
  message.preview_url(chars(500, "u"))
  refuses(function() message.preview_url(chars(501, "u")) end, "action.data.url", "501 characters, Cliq allows 500")
  refuses(function() message.preview_url() end, "action.data.url", "missing")
end)

test("system.api: the documented calls only", function()
  for _, api in ipairs { "audiocall/123", "videocall/123", "startchat/123", "invite/123", "locationpermission" } do
    eq(message.system_api(api), { type = "system.api", data = { api = api } })
  end
  refuses(function() message.system_api("joinchannel/123") end, "action.data.api", "is not one of")
  refuses(function() message.system_api("audiocall/") end, "action.data.api", "is not one of")
  refuses(function() message.system_api("audiocall") end, "action.data.api", "is not one of")
  refuses(function() message.system_api(5) end, "action.data.api", "must be a string")
end)

test("copy: text at most 200", function()
  eq(message.copy_text("abc"), { type = "copy", data = { text = "abc" } })
  message.copy_text(chars(200))
  refuses(function() message.copy_text(chars(201)) end, "action.data.text", "201 characters, Cliq allows 200")
end)

test("action types and confirm", function()
  check_refuses({ text = "x", buttons = { { label = "b", action = { type = "open.link", data = {} } } } },
    "buttons[1].action.type", '"open.link" is not one of "invoke.function", "open.url", "preview.url", "system.api", "copy"')
  check_refuses({ text = "x", buttons = { { label = "b", action = { type = "copy" } } } },
    "buttons[1].action.data", "missing (required)")
  local c = message.confirm { title = chars(100), description = chars(100), input = chars(300),
                              button_label = "Go", cancel_button_label = "No", emotion = "positive",
                              mandatory = true }
  eq(message.copy_text("t", { confirm = c }).confirm, c)
  refuses(function() message.confirm { title = chars(101) } end, "confirm.title", "101 characters, Cliq allows 100")
  refuses(function() message.confirm { description = chars(101) } end, "confirm.description", "101 characters")
  refuses(function() message.confirm { input = chars(301) } end, "confirm.input", "301 characters, Cliq allows 300")
  refuses(function() message.confirm { mandatory = "yes" } end, "confirm.mandatory", "must be true or false")
  refuses(function() message.open_url("https://a", { confirm = { titel = "x" } }) end, "action.confirm.titel",
    "not a field of confirm")
  refuses(function() message.preview_url("https://a", { owner = "x" }) end, "preview_url",
    "owner is not an option (confirm)")
end)

test("instant buttons in references", function()
  local ref = message.instant_button { label = "Yes", action = message.invoke_function("f"),
                                       arguments = { answer = "yes" } }
  eq(ref, { type = "button", object = { label = "Yes", arguments = { answer = "yes" },
                                        action = { type = "invoke.function", data = { name = "f" } } } })
  check_ok { text = "[Yes]($1)", references = { ["1"] = ref } }
  check_refuses({ text = "[Yes]($1)", references = { [1] = ref } }, "references[1]", "keys must be strings")
  refuses(function() message.instant_button { label = chars(21), action = message.invoke_function("f") } end,
    "instant button.object.label", "21 characters")
end)

-- ---- slides -----------------------------------------------------------------------

test("slides: at most 20", function()
  local slides = {}
  for i = 1, 20 do
    slides[i] = message.text_slide("", "s" .. i)
  end
  message.message { text = "x", slides = slides }
  slides[21] = message.text_slide("", "s21")
  refuses(function() message.message { text = "x", slides = slides } end, "slides[21]",
    "21 slides, Cliq allows at most 20")
end)

test("slides: at most 10000 characters in all", function()
  local slides = {}
  for i = 1, 10 do
    slides[i] = message.text_slide("", chars(1000))
  end
  message.message { text = "x", slides = slides }
  slides[10] = message.text_slide("t", chars(1000))
  refuses(function() message.message { text = "x", slides = slides } end, "slides[10]",
    "slides hold 10001 characters up to here, Cliq allows 10000 in all")
  -- Table headers and cells, label keys and values, list items count.
  local t = message.table_slide(chars(4), { chars(3), "b" }, { { [chars(3)] = chars(4992) } })
  message.message { text = "x", slides = { t } }
  t = message.table_slide(chars(4), { chars(3), "b" }, { { [chars(3)] = chars(4992) }, { b = 5 } })
  check_ok { slides = { t, message.list_slide("", { chars(4999) }) } }
  check_refuses({ slides = { t, message.list_slide("", { chars(5000) }) } }, "slides[2]", "10001 characters")
  check_ok { slides = { message.label_slide("", { { [chars(5000)] = chars(5000) } }) } }
  check_refuses({ slides = { message.label_slide("", { { [chars(5000)] = chars(5001) } }) } }, "slides[1]",
    "10001 characters")
end)

test("slide types and their data", function()
  refuses(function() message.slide { type = "chart", data = {} } end, "slide.type",
    '"chart" is not one of "table", "list", "label", "images", "text", "graph", "percentage_chart"')
  eq(message.slide { type = "graph", title = "G", data = { any = "shape" } },
    { type = "graph", title = "G", data = { any = "shape" } })
  refuses(function() message.slide { type = "text" } end, "slide.data", "missing (required)")
  refuses(function() message.text_slide("", { "a" }) end, "slide.data", "must be a string")
  refuses(function() message.list_slide("", "a") end, "slide.data", "must be a list")
  refuses(function() message.images_slide("", { 1 }) end, "slide.data[1]", "must be a string")
  refuses(function() message.label_slide("", { { A = "1", B = "2" } }) end, "slide.data[1]",
    "exactly one Key")
  refuses(function() message.label_slide("", { {} }) end, "slide.data[1]", "exactly one Key")
  refuses(function() message.label_slide("", { { A = {} } }) end, "slide.data[1].A", "string or a number")
  refuses(function() message.table_slide("", { "A" }, { { A = "1" }, { B = "2" } }) end, "slide.data.rows[2].B",
    "not one of the headers")
  refuses(function() message.table_slide("", nil, {}) end, "slide.data.headers", "missing")
  refuses(function() message.slide { type = "text", data = "x", buttons = {} } end, "slide.buttons",
    "not a field of slide (it has type, title, data)")
  local empty = message.list_slide("", {})
  is_array(empty.data, "empty list data")
  local t = message.table_slide("", { "A" }, {})
  is_array(t.data.rows, "empty rows")
end)

-- ---- bot suggestions and context ----------------------------------------------------

test("bot suggestions", function()
  local s = message.suggestions { "help", { text = "feedback", icon = "https://i" } }
  eq(s, { list = { { text = "help" }, { text = "feedback", icon = "https://i" } } })
  is_array(s.list)
  refuses(function() message.suggestions { { icon = "x" } } end, "suggestions.list[1].text", "missing")
  refuses(function() message.suggestions "help" end, "suggestions", "expects a list")
  check_ok { text = "x", suggestions = s }
end)

test("bot context: the §3.3 sample", function()
  local m = message.text("I'll need a few details.", {
    context = message.context {
      id = "personal_details",
      timeout = 300,
      params = {
        message.question("name", "Please enter your name."),
        message.question("sex", "Gender:", message.suggestions { "Male", "Female" }),
      },
    },
  })
  eq(m, { text = "I'll need a few details.", context = { id = "personal_details", timeout = 300, params = {
    { name = "name", question = "Please enter your name." },
    { name = "sex", question = "Gender:", suggestions = { list = { { text = "Male" }, { text = "Female" } } } },
  } } })
  is_array(m.context.params)
  refuses(function() message.context { params = {} } end, "context.id", "missing")
  refuses(function() message.context { id = "x" } end, "context.params", "missing")
  refuses(function() message.question("n") end, "question.question", "missing")
  refuses(function() message.context { id = "x", timeout = "300", params = {} } end, "context.timeout",
    "must be a number")
end)

-- ---- banners and command suggestions ------------------------------------------------

test("banner", function()
  eq(message.banner("Saved"), { type = "banner", text = "Saved", status = "success" })
  eq(message.banner("No", "failure"), { type = "banner", text = "No", status = "failure" })
  refuses(function() message.banner("x", "Success") end, "banner.status", '"Success" is not one of "success", "failure"')
  refuses(function() message.banner() end, "banner.text", "missing")
  check_ok { type = "banner", text = "x", status = "failure" }
  check_refuses({ type = "banner", text = "x" }, "status", "missing")
end)

test("command suggestions", function()
  local s = message.command_suggestions { { title = "dev", description = "Sandbox", imageurl = "https://i" } }
  eq(s, { { title = "dev", description = "Sandbox", imageurl = "https://i" } })
  is_array(s)
  is_array(message.command_suggestions {}, "empty suggestions")
  refuses(function() message.command_suggestions { { description = "x" } } end, "suggestions[1].title", "missing")
  refuses(function() message.command_suggestions { { title = "x", label = "y" } } end, "suggestions[1].label",
    "not a field of suggestion")
  check_ok({ { title = "a" } })
  check_ok({}, "command_suggestions")
end)

-- ---- forms ---------------------------------------------------------------------------

test("form: the §3.3 sample", function()
  local f = message.form {
    title = "Asset Request", name = "ID", hint = "Raise your asset request", button_label = "Raise Request",
    version = 1,
    inputs = {
      message.input { type = "text", name = "username", label = "Name", placeholder = "John Reese", hint = "…",
                      mandatory = true, value = "Harold Finch" },
      message.input { type = "text", format = "email", name = "email", label = "Email", placeholder = "…",
                      mandatory = true },
      message.input { type = "select", name = "asset-type", label = "Asset Type", trigger_on_change = true,
                      mandatory = true,
                      options = { message.option("Laptop", "laptop"), message.option("Mobile", "mobile") } },
      message.input { type = "toggle", name = "automated_reports", label = "Automated Reports", value = true },
    },
    action = message.submit("formFunctionLatest"),
  }
  eq(f, {
    type = "form", title = "Asset Request", name = "ID", hint = "Raise your asset request",
    button_label = "Raise Request", version = 1,
    inputs = {
      { type = "text", name = "username", label = "Name", placeholder = "John Reese", hint = "…", mandatory = true,
        value = "Harold Finch" },
      { type = "text", format = "email", name = "email", label = "Email", placeholder = "…", mandatory = true },
      { type = "select", name = "asset-type", label = "Asset Type", trigger_on_change = true, mandatory = true,
        options = { { label = "Laptop", value = "laptop" }, { label = "Mobile", value = "mobile" } } },
      { type = "toggle", name = "automated_reports", label = "Automated Reports", value = true },
    },
    action = { type = "invoke.function", name = "formFunctionLatest" },
  })
  is_array(f.inputs)
  is_array(f.inputs[3].options)
  check_ok(f)
end)

test("form: required parts, legacy actions, unique names", function()
  local inputs = { message.input { type = "text", name = "a" } }
  message.form { title = "T", name = "n", inputs = inputs,
                 actions = { submit = { type = "invoke.function", name = "f" } } }
  refuses(function() message.form { title = "T", name = "n", inputs = inputs } end, "action",
    "a form needs the function its submission calls")
  refuses(function() message.form { name = "n", inputs = inputs, action = message.submit("f") } end, "title",
    "missing")
  refuses(function() message.form { title = "T", inputs = inputs, action = message.submit("f") } end, "name",
    "missing")
  refuses(function() message.form { title = "T", name = "n", action = message.submit("f") } end, "inputs",
    "missing")
  refuses(function()
    message.form { title = "T", name = "n", action = message.submit("f"),
                   inputs = { { type = "text", name = "a" }, { type = "textarea", name = "a" } } }
  end, "inputs[2].name", '"a" is also inputs[1]\'s name')
  refuses(function()
    message.form { title = "T", name = "n", inputs = inputs, action = { type = "open.url", name = "f" } }
  end, "action.type", '"open.url" is not one of "invoke.function"')
  refuses(function() message.submit() end, "action.name", "missing")
  check_refuses({ type = "form", title = "T", name = "n", action = message.submit("f"),
                  inputs = { { type = "text", name = chars(51) } } }, "inputs[1].name", "51 characters")
end)

test("inputs: every type, and the field limits", function()
  for _, ty in ipairs { "text", "textarea", "number", "date", "datetime", "select", "native_select",
                        "dynamic_select", "toggle", "location", "file", "hidden", "catalogue",
                        "dynamic_catalogue" } do
    eq(message.input { type = ty, name = "n" }, { type = ty, name = "n" })
  end
  refuses(function() message.input { type = "slider", name = "n" } end, "input.type", '"slider" is not one of')
  refuses(function() message.input { type = "text" } end, "input.name", "missing")
  message.input(input_with("name", chars(50)))
  refuses(function() message.input(input_with("name", chars(51))) end, "input.name", "51 characters, Cliq allows 50")
  message.input(input_with("label", chars(50)))
  refuses(function() message.input(input_with("label", chars(51))) end, "input.label", "51 characters, Cliq allows 50")
  message.input(input_with("hint", chars(100)))
  refuses(function() message.input(input_with("hint", chars(101))) end, "input.hint", "101 characters, Cliq allows 100")
  message.input(input_with("placeholder", chars(100)))
  refuses(function() message.input(input_with("placeholder", chars(101))) end, "input.placeholder",
    "101 characters, Cliq allows 100")
  for _, f in ipairs { "email", "tel", "url", "password" } do
    message.input(input_with("format", f))
  end
  refuses(function() message.input(input_with("format", "phone")) end, "input.format", '"phone" is not one of')
  for _, ds in ipairs { "channels", "conversations", "contacts", "teams" } do
    message.input { type = "select", name = "n", data_source = ds }
  end
  refuses(function() message.input { type = "select", name = "n", data_source = "users" } end, "input.data_source",
    "is not one of")
  refuses(function() message.input(input_with("mandatory", "true")) end, "input.mandatory", "must be true or false")
  eq(message.input { type = "file", name = "f", multiple = true }, { type = "file", name = "f", multiple = true })
  eq(message.input { type = "location", name = "l", boundary = { radius = 5 } },
    { type = "location", name = "l", boundary = { radius = 5 } })
  eq(message.input { type = "hidden", name = "h", value = "v" }, { type = "hidden", name = "h", value = "v" })
end)

test("options: label 100, value 50", function()
  eq(message.option("L", "v"), { label = "L", value = "v" })
  message.option(chars(100), chars(50))
  refuses(function() message.option(chars(101), "v") end, "option.label", "101 characters, Cliq allows 100")
  refuses(function() message.option("L", chars(51)) end, "option.value", "51 characters, Cliq allows 50")
  refuses(function() message.option("L") end, "option.value", "missing")
  refuses(function()
    message.input { type = "select", name = "s", options = { message.option("a", "a"), { label = "b", value = chars(51) } } }
  end, "input.options[2].value", "51 characters")
end)

local function options(n)
  local list = {}
  for i = 1, n do
    list[i] = message.option("O" .. i, "o" .. i)
  end
  return list
end

test("checkbox 1-5 options, radio 2-5", function()
  message.input { type = "checkbox", name = "c", options = options(1), max_selections = 1 }
  message.input { type = "checkbox", name = "c", options = options(5) }
  refuses(function() message.input { type = "checkbox", name = "c", options = {} } end, "input.options",
    "0 options, Cliq needs at least 1 for a checkbox")
  refuses(function() message.input { type = "checkbox", name = "c" } end, "input.options", "0 options")
  refuses(function() message.input { type = "checkbox", name = "c", options = options(6) } end, "input.options[6]",
    "6 options, Cliq allows at most 5 for a checkbox")
  refuses(function() message.input { type = "checkbox", name = "c", options = options(2), max_selections = 1.5 } end,
    "input.max_selections", "whole number")
  message.input { type = "radio", name = "r", options = options(2) }
  message.input { type = "radio", name = "r", options = options(5) }
  refuses(function() message.input { type = "radio", name = "r", options = options(1) } end, "input.options",
    "1 options, Cliq needs at least 2 for a radio")
  refuses(function() message.input { type = "radio", name = "r", options = options(6) } end, "input.options[6]",
    "6 options, Cliq allows at most 5 for a radio")
end)

test("form_modification: the §3.3 sample and action types", function()
  local fm = message.form_modification {
    message.modification("add_after", "asset-type", message.input { type = "text", name = "model" }),
    message.modification("remove", "mobile-os"),
  }
  eq(fm, { type = "form_modification", actions = {
    { type = "add_after", name = "asset-type", input = { type = "text", name = "model" } },
    { type = "remove", name = "mobile-os" },
  } })
  is_array(fm.actions)
  for _, ty in ipairs { "remove", "clear", "enable", "disable", "update" } do
    message.modification(ty, "x")
  end
  message.modification("add_before", "x", { type = "toggle", name = "t" })
  eq(message.modification("update", "x", { options = options(1) }),
    { type = "update", name = "x", input = { options = { { label = "O1", value = "o1" } } } })
  refuses(function() message.modification("hide", "x") end, "modification.type", '"hide" is not one of')
  refuses(function() message.modification("remove") end, "modification.name", "missing")
  refuses(function() message.modification("add_after", "x") end, "modification.input",
    "add_after needs the input to add")
  refuses(function() message.modification("add_before", "x", { name = "y" }) end, "modification.input.type",
    "missing")
  refuses(function() message.modification("update", "x", { label = chars(51) }) end, "modification.input.label",
    "51 characters")
  check_refuses({ type = "form_modification", actions = { { type = "remove" } } }, "actions[1].name", "missing")
end)

test("form_values", function()
  local fv = message.form_values { message.option("Google Pixel 3", "google_pixel_3") }
  eq(fv, { options = { { label = "Google Pixel 3", value = "google_pixel_3" } } })
  is_array(fv.options)
  is_array(message.form_values({}).options, "empty options")
  check_ok { options = {} }
  check_refuses({ options = { { label = "x" } } }, "options[1].value", "missing")
end)

-- ---- widgets ---------------------------------------------------------------------------

test("widget: the §3.3 sample", function()
  local w = message.widget {
    tabs = { message.tab("catalystTab", "Zoho Catalyst") },
    active_tab = "catalystTab",
    sections = {
      message.section("1", {
        message.element { type = "title", text = "Datastore",
                          buttons = { message.widget_button { label = "Link", type = "open.url", url = "https://x" } } },
        message.element { type = "text", text = "…" },
        message.element { type = "divider" },
        message.element { type = "buttons", buttons = {
          message.widget_button { label = "Banner", type = "invoke.function", name = "appletFunction", id = "banner" },
        } },
      }),
    },
    header = { title = "Header", navigation = "continue", buttons = {} },
    footer = { text = "Footer", buttons = {} },
  }
  eq(w, {
    type = "applet", tabs = { { id = "catalystTab", label = "Zoho Catalyst" } }, active_tab = "catalystTab",
    data_type = "sections",
    sections = { { id = "1", elements = {
      { type = "title", text = "Datastore", buttons = { { label = "Link", type = "open.url", url = "https://x" } } },
      { type = "text", text = "…" },
      { type = "divider" },
      { type = "buttons", buttons = { { label = "Banner", type = "invoke.function", name = "appletFunction",
                                        id = "banner" } } },
    } } },
    header = { title = "Header", navigation = "continue", buttons = {} },
    footer = { text = "Footer", buttons = {} },
  })
  is_array(w.sections)
  is_array(w.sections[1].elements)
  is_array(w.header.buttons, "header buttons")
  check_ok(w)
end)

test("widget: info, buttons, tabs", function()
  local w = message.widget { info = { title = "Empty", description = "Nothing yet", image_url = "https://i",
    button = message.widget_button { label = "Add", type = "invoke.function", name = "add" } } }
  assert(w.data_type == "info")
  refuses(function() message.widget { data_type = "info" } end, "info", 'missing; data_type is "info"')
  refuses(function() message.widget { tabs = { message.tab("a", "A") }, active_tab = "b", sections = {} } end,
    "active_tab", '"b" is not the id of one of the tabs')
  for _, e in ipairs { "positive", "neutral", "negative" } do
    message.widget_button { label = "x", type = "system.api", api = "audiocall/1", emotion = e, disabled = false }
  end
  refuses(function() message.widget_button { label = "x", type = "open.url", url = "u", emotion = "happy" } end,
    "widget button.emotion", '"happy" is not one of "positive", "neutral", "negative"')
  refuses(function() message.widget_button { label = "x", type = "open.url" } end, "widget button.url",
    "a open.url button needs it")
  refuses(function() message.widget_button { label = "x", type = "invoke.function" } end, "widget button.name",
    "missing")
  refuses(function() message.widget_button { label = "x", type = "copy" } end, "widget button.type", "is not one of")
  refuses(function() message.widget_button { label = "x", type = "open.url", url = "u", action = {} } end,
    "widget button.action", "not a field of widget button")
  refuses(function() message.section("1") end, "section.elements", "missing")
  refuses(function() message.element {} end, "element.type", "missing")
  refuses(function() message.tab("a") end, "tab.label", "missing")
  check_refuses({ type = "applet", sections = { { id = "1", elements = { { type = "buttons",
    buttons = { { label = "x", type = "open.url" } } } } } } }, "sections[1].elements[1].buttons[1].url", "missing")
end)

-- ---- link previews and installation -----------------------------------------------------

test("link preview and its actions", function()
  local lp = message.link_preview {
    title = "PR #1", description = "Fix", provider_url = "https://git", dynamic_actions = true,
    fields = { data = { { label = "State", value = "open" } } },
    actions = { message.link_action { label = "Merge", params = { id = 1 },
                                      confirm = message.confirm { title = "Sure?" } } },
  }
  eq(lp, {
    type = "link", title = "PR #1", description = "Fix", provider_url = "https://git", dynamic_actions = true,
    fields = { data = { { label = "State", value = "open" } } },
    actions = { { type = "button", label = "Merge", params = { id = 1 }, confirm = { title = "Sure?" } } },
  })
  is_array(lp.fields.data)
  is_array(lp.actions)
  local acts = message.link_actions { message.link_action { label = "Close" } }
  eq(acts, { { type = "button", label = "Close" } })
  is_array(acts)
  check_ok(acts)
  check_ok(lp)
  refuses(function() message.link_action {} end, "action.label", "missing")
  refuses(function() message.link_preview { fields = { { label = "a", value = "b" } } } end, "fields.data",
    "missing")
  refuses(function() message.link_preview { dynamic_actions = "yes" } end, "dynamic_actions", "true or false")
end)

test("installation replies", function()
  eq(message.installation { status = 200, title = "Success!", message = "m", note = { "n" }, footer = "f" },
    { status = 200, title = "Success!", message = "m", note = { "n" }, footer = "f" })
  message.installation { status = "200" }
  message.installation { status = 400, title = "No", message = "Why" }
  refuses(function() message.installation {} end, "status", "missing")
  refuses(function() message.installation { status = "ok" } end, "status", "must be an HTTP status")
  check_ok({ status = 200 })
end)

-- ---- check ------------------------------------------------------------------------------

test("check: kinds read from the value, or given", function()
  check_ok "plain text"
  check_refuses(chars(5001), "text", "5001 characters")
  check_ok { text = "x" }
  check_ok { type = "form", title = "T", name = "n", inputs = {}, action = { type = "invoke.function", name = "f" } }
  check_refuses({ type = "form", title = "T", name = "n", inputs = {} }, "action", "missing")
  check_refuses({ type = "form_modification", actions = { { type = "hide", name = "x" } } }, "actions[1].type")
  check_refuses({ { type = "button" } }, "[1].label", "missing")
  check_refuses({ { description = "x" } }, "[1].title", "missing")
  check_refuses({ status = 200, title = 5 }, "title", "must be a string")
  check_refuses({ text = "x", status = "success" }, "status", "not a field of message")
  check_refuses({ type = "link", title = 1 }, "title", "must be a string")
  check_refuses({ type = "applet", data_type = "list" }, "data_type", "is not one of")
  check_ok({ text = "x" }, "message")
  check_refuses({ text = "x" }, "type", "missing", "banner")
  local ok, err = pcall(message.check, {}, "toast")
  assert(not ok and err:find("unknown kind toast", 1, true), tostring(err))
  ok, err = message.check({ text = 5 })
  assert(ok == nil and err == "cliq.message: text: must be a string, not number", err)
  ok, err = message.check(42)
  assert(ok == nil and err == "cliq.message: value: must be a table, not number", err)
end)

test("check does not raise or change its argument", function()
  local m = { text = "x", buttons = { { label = chars(30), action = { type = "copy", data = { text = "t" } } } } }
  local ok = message.check(m)
  assert(ok == nil)
  assert(getmetatable(m.buttons) == nil)
  assert(message.check(m.buttons[1].action) == nil) -- an action is not a message
end)

-- ---- behaviour around the builders ---------------------------------------------------------

test("errors point at the caller's line", function()
  local function build()
    local b = message.button { label = chars(21), action = message.copy_text("x") }
    return b
  end
  local line = debug.getinfo(build, "S").linedefined + 1
  local ok, err = pcall(build)
  assert(not ok and err:find(THIS_FILE .. ":" .. line .. ": cliq.message: button.label: ", 1, true), err)
  local function nested()
    local m = message.message { text = "x", buttons = { message.button { label = "ok", action = message.open_url("ftp://x") } } }
    return m
  end
  line = debug.getinfo(nested, "S").linedefined + 1
  ok, err = pcall(nested)
  assert(not ok and err:find(THIS_FILE .. ":" .. line .. ": cliq.message: action.data.web: ", 1, true), err)
  for _, f in ipairs {
    function() local r = message.text({}) return r end,
    function() local r = message.card("x") return r end,
    function() local r = message.suggestions(1) return r end,
    function() local r = message.invoke_function("f", 1) return r end,
    function() local r = message.form { title = 1 } return r end,
    function() local r = message.widget { type = "x" } return r end,
    function() local r = message.command_suggestions(1) return r end,
  } do
    ok, err = pcall(f)
    line = debug.getinfo(f, "S").linedefined
    assert(not ok and err:find("^" .. THIS_FILE_PATTERN .. ":" .. line .. ": cliq%.message: "), err)
  end
  -- `return message.x{...}` is a tail call: Lua has left the caller, so
  -- there is no line to point at, but the field path is still there.
  ok, err = pcall(function() return message.banner("x", "ok") end)
  assert(not ok and err == 'cliq.message: banner.status: "ok" is not one of "success", "failure"', err)
end)

test("builders copy their arguments and leave them unmarked", function()
  local rows = { { A = "1" } }
  local arg = { text = "x", slides = { { type = "table", title = "", data = { headers = { "A" }, rows = rows } } } }
  local m = message.message(arg)
  assert(m ~= arg and m.slides ~= arg.slides and m.slides[1].data.rows ~= rows)
  assert(getmetatable(arg.slides) == nil and getmetatable(rows) == nil)
  m.text = "changed" -- hand-editing a built message
  assert(arg.text == "x")
  check_ok(m)
end)

test("without the host's json module lists are plain tables", function()
  json = nil
  local m = message.message { text = "x", buttons = buttons(1), slides = { message.list_slide("", {}) } }
  json = fake_json
  assert(getmetatable(m.buttons) == nil and getmetatable(m.slides[1].data) == nil)
  eq(m.slides[1].data, {})
end)

test("the harness can fail", function()
  assert(not pcall(eq, { a = 1 }, { a = 2 }))
  assert(not pcall(refuses, function() end, "x"))
  assert(not pcall(refuses, function() message.text(chars(5001)) end, "card"))
  assert(not pcall(check_refuses, { text = "x" }, "text"))
  assert(not pcall(is_array, {}))
end)

if #failures > 0 then
  for _, f in ipairs(failures) do
    io.stderr:write("FAIL ", f, "\n")
  end
  print(string.format("test_message: %d passed, %d failed", passed, #failures))
  os.exit(1)
end
print(string.format("test_message: %d passed", passed))
