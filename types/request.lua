---@meta
-- The request object a handler gets (`req`) and what each handler type
-- finds in `req.params`, for lua-language-server. docs/cliq-formats.md
-- §2 describes every handler's request with examples; the classes here
-- follow it. Cliq sends only the params the extension's permissions allow,
-- so every params field is optional.
--
-- A handler's `req` gets its type from an annotation on the table a script
-- returns:
--
--   ---@type cliq.Command
--   return {
--     execution = function(req) ... end,   -- req: cliq.Request, completed
--   }
--
-- and so does a schedule's job and a hook's request (at the end of this
-- file): ---@type cliq.Schedule, ---@type cliq.Hook.

---@class cliq.Request
---@field type "command"|"bot"|"messageaction"|"function"|"widget"|"extension"|"link_preview"
---@field name? string          the component's name (absent for extension and link_preview)
---@field handler string        the handler's short name: "execution", "message", "button", ...
---@field action? string        bot menu `action` only: the menu item's name
---@field params cliq.Params    Cliq's params, decoded (an empty table when it sent none)
---@field body table            the whole decoded body as Cliq sent it
---@field response_url? string  where req:respond posts (the handlers that have one)
---@field timestamp? integer    when Cliq sent the call, epoch milliseconds
---@field id string             the host's request id, in every log line about the call
local Request = {}

---Posts `{"output": msg}` to the request's response_url, once, within its
---two minutes. Network errors, 5xx and 429 are retried while it is valid.
---@param msg string|table  a string is sent as { text = msg }
---@return true|nil ok
---@return string? err  "none", "used", "expired", "HTTP 404: ...", "refused: ...", ...
function Request:respond(msg) end

---An attached file (req.params.attachments[i]).
---@class cliq.Attachment
---@field name string
---@field comment? string
---@field id? string
---@field url string
---@field contenttype? string
local Attachment = {}

---The file's bytes. Cliq lets the URL be fetched once, within a minute;
---the bytes are kept for the rest of the request.
---@return string? bytes
---@return string? err  "expired", "HTTP 404", "refused: ...", ...
function Attachment:download() end

-- ---- params ------------------------------------------------------------------

---@class cliq.Params
---@field environment? cliq.Environment       always
---@field access? cliq.Access                 always
---@field user? cliq.User
---@field chat? cliq.Chat
---@field location? cliq.Location
---@field arguments? string|table  command, bot message/context: the text after the command (a string); button: { key = ... }
---@field options? table<string, any>       command, bot message/context
---@field selections? table[]               command, bot message/context: chosen suggestions
---@field mentions? cliq.Mention[]
---@field attachments? cliq.Attachment[]
---@field message? string|cliq.MessageObject  bot message: the text (a string); mention, messageaction, button: the message (a table)
---@field raw_message? string               bot message
---@field message_details? table            bot message: { message = { type, text, mentions, comment, file }, time }
---@field links? table[]                    bot message
---@field newuser? boolean                  bot welcome
---@field context_id? string                bot context
---@field answers? table<string, { text: string }>  bot context: each question's answer
---@field headers? table<string, string>    bot incomingwebhook
---@field params? table<string, string>     bot incomingwebhook: the query; function form_view: the permalink's params
---@field body? string                      bot incomingwebhook: the raw body
---@field http_method? string               bot incomingwebhook
---@field operation? string                 bot participation ("added", "removed", "message_sent", ...), alert ("ringing", "answered", ...)
---@field data? table                       bot participation { message, time }, alert { call_id, time }
---@field messages? { count: integer, list: table[] }  messageaction
---@field target? cliq.Target               function button, form_change, form_values, applet_button; widget view; link_preview button
---@field event? string                     function button: "click"; widget view: "load", "refresh", "tab_click"
---@field form? cliq.Form                   function form, form_change, form_values; extension installation
---@field app_info? cliq.AppInfo            extension handlers
---@field authtoken? string                 extension installation
---@field url? string                       link_preview
---@field domain? string                    link_preview

---@class cliq.Environment
---@field tld string          ".com", ".eu", ...
---@field data_center string  "US", "EU", ...
---@field base_url string

---@class cliq.Access
---@field user_id string
---@field zoho_user_id string
---@field organization { type: string, id: string }
---@field user_agent? string
---@field chat_id? string
---@field message_id? string

---@class cliq.User
---@field id string
---@field first_name string
---@field last_name string
---@field email string
---@field admin boolean
---@field organization_id string
---@field timezone string
---@field country string
---@field language string
---@field zoho_user_id string

---@class cliq.Chat
---@field id string
---@field type string                 "channel", "bot", "dm", "chat", "thread", ...
---@field title string
---@field owner string
---@field channel_unique_name? string
---@field members? table[]
---@field recent_messages? table[]

---@class cliq.Location
---@field latitude number
---@field longitude number
---@field accuracy number
---@field status "granted"|"prompt"|"denied"|"failed"

---@class cliq.Mention
---@field id string
---@field name? string
---@field first_name? string
---@field last_name? string
---@field email? string
---@field type string   "user", "bot", "channel", ...

---@class cliq.MessageObject
---@field sender? table
---@field time? integer
---@field text? string
---@field type? string

---@class cliq.Target
---@field name? string     button: the button's name; form_change, form_values: the input's name
---@field hint? string
---@field label? string
---@field key? string
---@field id? string       applet_button: the button's id; widget view: the tab's id
---@field value? any       form_change: the new value
---@field query? string    form_values: what the user typed
---@field section_id? string
---@field tab_id? string
---@field params? table    link_preview button: the action's params

---@class cliq.Form
---@field name string
---@field action string    "submit", "change", "input"
---@field values table<string, string|{ label: string, value: string }|table>  text inputs: strings; selects: { label, value }

---@class cliq.AppInfo
---@field current_version? string
---@field existing_version? string
---@field type string      "install", "upgrade", "uninstall"

-- ---- what a script returns -------------------------------------------------------

---A reply: a string (sent as { text = s }), a message table, a form, a
---banner, a widget, a list of suggestions, ... (docs/cliq-formats.md §3).
---@alias cliq.Reply string|table|nil

---@alias cliq.Handler fun(req: cliq.Request): cliq.Reply

---scripts/commands/<name>.lua
---@class cliq.Command
---@field execution? cliq.Handler
---@field suggestion? cliq.Handler

---scripts/bots/<unique_name>.lua
---@class cliq.Bot
---@field welcome? cliq.Handler
---@field message? cliq.Handler
---@field context? cliq.Handler
---@field mention? cliq.Handler
---@field action? cliq.Handler
---@field incomingwebhook? cliq.Handler
---@field participation? cliq.Handler
---@field alert? cliq.Handler

---scripts/messageactions/<name>.lua
---@class cliq.MessageAction
---@field execution? cliq.Handler

---scripts/functions/<name>.lua
---@class cliq.Function
---@field button? cliq.Handler
---@field form? cliq.Handler
---@field form_change? cliq.Handler
---@field form_values? cliq.Handler
---@field form_view? cliq.Handler
---@field applet_button? cliq.Handler

---scripts/widgets/<name>.lua
---@class cliq.Widget
---@field view? cliq.Handler

---scripts/extension.lua
---@class cliq.Extension
---@field installation? cliq.Handler
---@field installation_validator? cliq.Handler
---@field uninstallation? cliq.Handler

---scripts/link_preview.lua
---@class cliq.LinkPreview
---@field unfurl? cliq.Handler
---@field unfurl_button_action? cliq.Handler
---@field unfurl_dynamic_action? cliq.Handler
---@field unfurl_post_message? cliq.Handler

-- ---- schedules and hooks -----------------------------------------------------

---What a schedule's run gets: one run, for one tick.
---@class cliq.Job
---@field name string           the schedule's name: its file's, without .lua ("standup")
---@field scheduled_at integer  the tick the run is for, epoch seconds (a late or catch-up run starts after it)
---@field id string             the run's id, in every log line of the run
---@field catch_up boolean      true for the run at start of the latest tick missed while no host was up

---scripts/schedules/<name>.lua: run at each tick, on one host of those that
---share a store; a run still going at the next tick makes that tick skipped.
---@class cliq.Schedule
---@field cron? string          standard 5-field cron ("0 9 * * 1-5": lists, ranges, steps, day and month names); or every, not both
---@field every? string         "30s", "5m", "2h"; or cron, not both
---@field timezone? string      cron's zone ("Europe/Paris"); "UTC" unless given; only with cron
---@field catch_up? boolean     true: at start, run the latest tick missed while no host was up, once
---@field run fun(job: cliq.Job)  a task like a handler (the same bindings and limits, no req, no reply); what it returns is ignored; raising fails the run (logged)

---The request a hook's receive gets: another tool's POST /hooks/<name>,
---after the config's scheme for the hook verified it.
---@class cliq.HookRequest
---@field name string                    the hook's name (its file's, without .lua)
---@field id string                      the host's request id, in every log line about the call
---@field method "POST"
---@field body any                       the body decoded when it is JSON, else the text
---@field text string                    the raw body
---@field headers table<string, string>  names in lower case
---@field query table<string, string>    the URL's query

---What receive returns is the reply: a table is sent as the JSON body, a
---string s as { message = s }, nothing as { ok = true }; a second value is
---the HTTP status (200 unless given).
---@alias cliq.HookReply table|string|nil

---scripts/hooks/<name>.lua, for POST /hooks/<name>
---@class cliq.Hook
---@field receive fun(req: cliq.HookRequest): cliq.HookReply, integer?
