-- cliq.test.bodies: realistic Cliq request bodies for every handler in
-- docs/cliq-formats.md §2 (shapes from Zoho's samples), for the test
-- kit. The same data as tests/e2e/cliq_bodies.py.
--
--   bodies.catalogue      list of { type, wire, key, response_url, params }
--   bodies.find(type, h)  the entry for a handler, by short or wire name
--   bodies.params(entry)  a fresh copy of that handler's default params
--   bodies.keys(type)     the handler keys of a type, in catalogue order
--
-- Every call returns new tables, so a test may change what it gets.

local json = require "cliq.test.json"

local M = {}
local A = json.array -- an empty list must stay [] on the wire

M.RESPONSE_URL = "https://cliq.zoho.com/v2/extensions/2980/responses/17202823900615741410013820"

function M.environment()
  return { tld = ".com", data_center = "US", base_url = "https://cliq.zoho.com/company/123456456" }
end

function M.access()
  return {
    user_id = "130720038", zoho_user_id = "130720038",
    organization = { type = "company", id = "123456456" },
    user_agent = "Mozilla/5.0", chat_id = "CT_2243226337559778047_661211447-B2",
  }
end

function M.user()
  return {
    id = "123456", first_name = "Scott", last_name = "Fisher",
    email = "scott.fisher@zylcal.com", admin = true, organization_id = "123456456",
    timezone = "Asia/calcutta", country = "us", language = "en", zoho_user_id = "130720038",
  }
end

function M.chat()
  return {
    owner = "123456", id = "CD_1256246524399772951_1741337", type = "channel",
    title = "Catalyst", channel_unique_name = "sample",
    members = A { { id = "123456", first_name = "", last_name = "", email = "", status = "0" } },
    recent_messages = A(),
  }
end

function M.location()
  return { latitude = 12.8282472, longitude = 80.0511901, accuracy = 30, status = "granted" }
end

function M.message(text)
  return {
    sender = { id = "123456", name = "Scott Fisher" }, time = 1610351240458,
    text = text or "ship the release notes today", type = "text",
  }
end

local U, C, L, MSG = M.user, M.chat, M.location, M.message

-- (type, wire handler, short key, has response_url, default params)
M.catalogue = {
  { "bot", "welcome_handler", "welcome", true, function()
    return { newuser = true, user = U() }
  end },
  { "bot", "message_handler", "message", true, function()
    return {
      message = "Hi", raw_message = "Hi", chat = C(), location = L(), user = U(),
      message_details = { message = { mentions = A(), type = "text", text = "Hi" },
        time = 1610351240458 },
      attachments = A(), mentions = A(), links = A(), options = {}, selections = A(),
      arguments = "",
    }
  end },
  { "bot", "context_handler", "context", true, function()
    return {
      context_id = "feedback", answers = { name = { text = "Scott" } }, user = U(), chat = C(),
      mentions = A(), options = {}, selections = A(), arguments = "",
    }
  end },
  { "bot", "mention_handler", "mention", true, function()
    return {
      message = MSG(), mentions = A { { name = "bot", id = "b1", type = "bot" } }, chat = C(),
      location = L(), user = U(),
    }
  end },
  { "bot", "action_handler", "action", true, function()
    return { chat = C(), user = U() }
  end },
  { "bot", "incomingwebhook_handler", "incomingwebhook", true, function()
    return {
      headers = { ["content-type"] = "application/json" }, params = { q = "1" },
      body = '{"alert":"disk full"}', http_method = "POST", user = U(),
    }
  end },
  { "bot", "participation_handler", "participation", true, function()
    return { operation = "added", data = { time = 1610351240458 }, chat = C(), user = U() }
  end },
  { "bot", "alert_handler", "alert", false, function()
    return { operation = "missed", data = { call_id = "c1", time = 1610351240458 }, user = U() }
  end },
  { "command", "execution_handler", "execution", true, function()
    return {
      arguments = "", options = {}, selections = A(), mentions = A(), attachments = A(),
      chat = C(), location = L(), user = U(),
    }
  end },
  { "command", "suggestion_handler", "suggestion", true, function()
    return { arguments = "", options = {}, selections = A(), chat = C(), user = U() }
  end },
  { "messageaction", "execution_handler", "execution", true, function()
    return {
      message = MSG(), messages = { count = 1, list = A { MSG() } }, attachments = A(),
      mentions = A(), chat = C(), location = L(), user = U(),
    }
  end },
  { "function", "button_handler", "button", true, function()
    return {
      target = { name = "Approve", hint = "" }, event = "click", arguments = {},
      message = MSG(), chat = C(), user = U(),
    }
  end },
  { "function", "form_handler", "form", true, function()
    return {
      form = { name = "ID", action = "submit",
        values = { username = "Harold Finch",
          ["asset-type"] = { label = "Mobile", value = "mobile" } } },
      chat = C(), user = U(),
    }
  end },
  { "function", "form_change_handler", "form_change", false, function()
    return {
      form = { name = "ID", action = "change", values = { username = "Harold Finch" } },
      target = { name = "mobile-os", value = { label = "Android", value = "android" } },
      chat = C(), user = U(),
    }
  end },
  { "function", "form_values_handler", "form_values", false, function()
    return {
      form = { name = "ID", action = "input", values = {} },
      target = { name = "mobile", query = "pix" }, chat = C(), user = U(),
    }
  end },
  { "function", "form_view_handler", "form_view", false, function()
    return { params = { id = "42" }, user = U() }
  end },
  { "function", "applet_button_handler", "applet_button", false, function()
    return { target = { id = "banner", label = "Banner", section_id = "1", tab_id = "t1" },
      user = U() }
  end },
  { "widget", "view_handler", "view", false, function()
    return { event = "load", target = { id = "t1" }, chat = C(), user = U() }
  end },
  { "extension", "installation_handler", "installation", false, function()
    return { app_info = { current_version = "1.0", type = "install" }, form = {},
      authtoken = "x", user = U() }
  end },
  { "extension", "installation_validator", "installation_validator", false, function()
    return { app_info = { current_version = "1.0", type = "install" }, user = U() }
  end },
  { "extension", "uninstallation_handler", "uninstallation", false, function()
    return { app_info = { type = "uninstall" }, user = U() }
  end },
  { "link_preview", "unfurl_handler", "unfurl", false, function()
    return { url = "https://example.com/a", domain = "example.com", chat = C() }
  end },
  { "link_preview", "unfurl_button_action_handler", "unfurl_button_action", false, function()
    return { url = "https://example.com/a", domain = "example.com",
      target = { label = "Open", params = {}, hint = "" }, chat = C() }
  end },
  { "link_preview", "unfurl_dynamic_action_handler", "unfurl_dynamic_action", false, function()
    return { url = "https://example.com/a", domain = "example.com", chat = C() }
  end },
  { "link_preview", "unfurl_post_message_handler", "unfurl_post_message", false, function()
    return { url = "https://example.com/a", domain = "example.com", chat = C() }
  end },
}

for i, e in ipairs(M.catalogue) do
  M.catalogue[i] = { type = e[1], wire = e[2], key = e[3], response_url = e[4], make = e[5] }
end

-- The other wire names the host accepts for a handler (host/cliq/request.c).
M.aliases = {
  bot = { menu_handler = "action", incoming_webhook_handler = "incomingwebhook",
    call_handler = "alert" },
  ["function"] = { form_submit_handler = "form", form_dynamic_select_handler = "form_values",
    widget_button_handler = "applet_button" },
}

-- Where the host looks for each type's script (nil name: one file).
M.paths = {
  command = "commands/%s.lua", bot = "bots/%s.lua", messageaction = "messageactions/%s.lua",
  ["function"] = "functions/%s.lua", widget = "widgets/%s.lua", extension = "extension.lua",
  link_preview = "link_preview.lua",
}

function M.find(type_, handler)
  for _, e in ipairs(M.catalogue) do
    if e.type == type_ and (e.key == handler or e.wire == handler) then
      return e
    end
  end
  local alias = M.aliases[type_] and M.aliases[type_][handler]
  return alias and M.find(type_, alias) or nil
end

function M.keys(type_)
  local keys = {}
  for _, e in ipairs(M.catalogue) do
    if e.type == type_ then
      keys[#keys + 1] = e.key
    end
  end
  return keys
end

-- A fresh copy of the handler's default params, with environment and
-- access as every sample has them.
function M.params(entry)
  local p = entry.make()
  p.environment = M.environment()
  p.access = M.access()
  return p
end

return M
