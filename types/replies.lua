---@meta
-- The shapes of Cliq's replies (docs/cliq-formats.md §3), for
-- lua-language-server: what cliq.message's builders take and return, and
-- what a handler may return written by hand. Limits are in §4.

---@class cliq.Message
---@field text? string              at most 5,000 characters; Cliq's markdown
---@field bot? cliq.BotInfo
---@field card? cliq.Card
---@field styles? cliq.Styles
---@field buttons? cliq.Button[]    at most 5
---@field slides? cliq.Slide[]      at most 20, 10,000 characters in all
---@field suggestions? cliq.Suggestions  bots: quick replies
---@field context? cliq.Context     bots: questions
---@field references? table<string, cliq.InstantButton>  "[Yes]($1)" in text

---@class cliq.BotInfo
---@field name? string
---@field image? string

---@class cliq.Card
---@field title? string             at most 200 characters
---@field theme? "default"|"modern-inline"|"poll"|"prompt"
---@field thumbnail? string
---@field icon? string

---@class cliq.Styles
---@field background? "red"|"yellow"|"green"|"blue"|"grey"
---@field markdown? boolean

---@class cliq.Button
---@field label string              at most 20 characters
---@field type? "+"|"-"             green or red
---@field hint? string              at most 100 characters
---@field key? string               at most 100; arrives as req.params.arguments.key
---@field action cliq.Action

---@class cliq.Action
---@field type "invoke.function"|"open.url"|"preview.url"|"system.api"|"copy"
---@field data table                invoke.function { name, owner }; open.url { web, windows, iOS, android }; preview.url { url }; system.api { api }; copy { text }
---@field confirm? cliq.Confirm

---@class cliq.Confirm
---@field title? string             at most 100 characters
---@field description? string       at most 100 characters
---@field input? string             at most 300 characters
---@field button_label? string
---@field cancel_button_label? string
---@field emotion? string
---@field mandatory? boolean

---@class cliq.Slide
---@field type "table"|"list"|"label"|"images"|"text"|"graph"|"percentage_chart"
---@field title? string
---@field data any                  table { headers, rows }; label { { Key = "Value" }, ... }; list, images: strings; text: a string

---@class cliq.Suggestions
---@field list { text: string, icon?: string }[]

---@class cliq.Context
---@field id string                 comes back as req.params.context_id
---@field timeout? number           seconds
---@field params cliq.Question[]

---@class cliq.Question
---@field name string               the answer is req.params.answers[name].text
---@field question string
---@field suggestions? cliq.Suggestions

---@class cliq.InstantButton
---@field type "button"
---@field object table              a button's fields and arguments

---@class cliq.Banner
---@field type "banner"
---@field text string
---@field status "success"|"failure"

---@class cliq.CommandSuggestion
---@field title string
---@field description? string
---@field imageurl? string

---@class cliq.FormReply
---@field type "form"
---@field title string
---@field name string
---@field hint? string
---@field button_label? string
---@field version? number
---@field inputs cliq.Input[]
---@field action? cliq.FormAction
---@field actions? { submit: cliq.FormAction }  Cliq's older format

---@class cliq.Input
---@field type "text"|"textarea"|"number"|"date"|"datetime"|"checkbox"|"radio"|"select"|"native_select"|"dynamic_select"|"toggle"|"location"|"file"|"hidden"|"catalogue"|"dynamic_catalogue"
---@field name string               at most 50 characters
---@field label? string             at most 50 characters
---@field hint? string              at most 100 characters
---@field placeholder? string       at most 100 characters
---@field mandatory? boolean
---@field trigger_on_change? boolean  calls the function's form_change handler
---@field format? "email"|"tel"|"url"|"password"
---@field options? cliq.Option[]    checkbox 1 to 5, radio 2 to 5
---@field max_selections? integer
---@field multiple? boolean
---@field data_source? "channels"|"conversations"|"contacts"|"teams"
---@field boundary? any
---@field value? any

---@class cliq.Option
---@field label string              at most 100 characters
---@field value string              at most 50 characters

---@class cliq.FormAction
---@field type "invoke.function"
---@field name string               the function the submission calls

---@class cliq.FormModification
---@field type "form_modification"
---@field actions cliq.Modification[]

---@class cliq.Modification
---@field type "remove"|"clear"|"enable"|"disable"|"update"|"add_before"|"add_after"
---@field name string
---@field input? cliq.Input

---@class cliq.FormValues
---@field options cliq.Option[]

---@class cliq.WidgetReply
---@field type "applet"
---@field tabs? cliq.Tab[]
---@field active_tab? string
---@field data_type? "sections"|"info"
---@field sections? cliq.Section[]
---@field info? { title?: string, description?: string, image_url?: string, button?: cliq.WidgetButton }
---@field header? { title?: string, navigation?: string, buttons?: cliq.WidgetButton[] }
---@field footer? { text?: string, buttons?: cliq.WidgetButton[] }

---@class cliq.Tab
---@field id string
---@field label string

---@class cliq.Section
---@field id string|number
---@field elements cliq.Element[]

---@class cliq.Element
---@field type string               "title", "text", "subtext", "activity", "user_activity", "divider", "buttons", "table", "fields", ...
---@field text? string
---@field buttons? cliq.WidgetButton[]

---@class cliq.WidgetButton
---@field label string
---@field type "invoke.function"|"open.url"|"system.api"
---@field name? string              invoke.function: the function
---@field id? string
---@field url? string               open.url
---@field api? string               system.api
---@field emotion? "positive"|"neutral"|"negative"
---@field disabled? boolean

---@class cliq.LinkPreviewReply
---@field type "link"
---@field title? string
---@field description? string
---@field provider_url? string
---@field dynamic_actions? boolean
---@field fields? { data: { label: string|number, value: string|number }[] }
---@field actions? cliq.LinkAction[]

---@class cliq.LinkAction
---@field type "button"
---@field label string
---@field params? table
---@field confirm? cliq.Confirm

---@class cliq.Installation
---@field status integer|string     200 to go on, 400 to stop
---@field title? string
---@field message? string
---@field note? string[]
---@field footer? string

---What message.check(value, kind) checks a value as.
---@alias cliq.ReplyKind "message"|"banner"|"form"|"form_modification"|"form_values"|"widget"|"link_preview"|"link_actions"|"command_suggestions"|"installation"
