---@meta
-- The globals cliqhost gives a script beyond Lua's own: json, log, http,
-- cliq, store, sleep, and the sandbox's parts of os, debug and package. For
-- lua-language-server (see .luarc.json at the repository's root); the README's
-- "Editor setup" says how to use them. tests/e2e/test_types.py checks that
-- every global and field defined here is the host's, and the other way round.
--
-- Waiting calls (http.request, sleep, req:respond, attachment:download and
-- cliq.* by default) pause only the calling handler; they raise when called
-- at a script's top level or in a coroutine the script made itself.

-- ---- json ------------------------------------------------------------------

---JSON as Cliq speaks it. Decoding keeps `[]` and `{}` apart, integers stay
---integers (64 bits) and floats floats, so `json.encode(json.decode(s))` keeps
---the shape. An empty table you build encodes as `{}`; mark it with
---`json.array()` for `[]`.
json = {}

---Encodes a value as JSON text. Raises for what JSON cannot carry (a
---function, NaN, invalid UTF-8, a table mixing list items and keys).
---@param value any
---@return string
function json.encode(value) end

---Decodes JSON text.
---@param text string
---@return any value
---@return string? err  when the text is not JSON: nil, and where it went wrong
function json.decode(text) end

---The JSON `null` (a value distinct from nil, which a table cannot hold).
---@type lightuserdata
json.null = nil

---Marks t (a new table when nil) as a JSON array: encoded as `[]` when empty.
---@generic T: table
---@param t? T
---@return T
function json.array(t) end

---Marks t (a new table when nil) as a JSON object: encoded as `{}` when empty.
---@generic T: table
---@param t? T
---@return T
function json.object(t) end

-- ---- log -------------------------------------------------------------------

---One log line per call, tagged with the request id and the script; tables
---are written as JSON. `print(...)` logs at info level, Lua's `warn(...)` at
---warn level.
log = {}

---@param ... any
function log.debug(...) end

---@param ... any
function log.info(...) end

---@param ... any
function log.warn(...) end

---@param ... any
function log.error(...) end

-- ---- http ------------------------------------------------------------------

---@class cliq.HttpRequest
---@field url string                       http or https only
---@field method? string                   "GET" unless given
---@field headers? table<string, string>
---@field body? string
---@field timeout? number                  seconds; 10 unless given
---@field redirects? integer               how many redirects to follow; 0 unless given

---@class cliq.HttpResponse
---@field status integer
---@field headers table<string, string>    names in lower case
---@field body string

---Outbound HTTP. Internal addresses are refused unless the config's
---`http_allow` names them; TLS certificates are checked.
http = {}

---Sends a request and waits (without blocking the worker) for the answer.
---@param opts cliq.HttpRequest
---@return cliq.HttpResponse? response
---@return string? err  "timeout after 2.0 s", "connect: ...", "refused: ...", ...
function http.request(opts) end

-- ---- cliq ------------------------------------------------------------------

---@class cliq.PostOptions
---@field token? string        a token named in the config's `tokens`; "default" unless given
---@field wait? boolean        false: return once the post is queued in the outbox (true unless given)
---@field as_bot? string       post_channel: post as this bot (a member of the channel)
---@field userids? string[]|string  post_bot: only these users
---@field broadcast? boolean   post_bot: every subscriber
---@field appkey? string       app_incoming: the extension's app key

---Posts to Cliq's incoming-webhook endpoints through the host's outbox.
---Each returns true (or the endpoint's JSON reply, as a table), or nil and
---why: "HTTP 404: channel not found", "no token named 'ops' in the config",
---"outbox full: ...".
cliq = {}

---Posts a message to a channel, by its unique name.
---@param channel_unique_name string
---@param msg string|table  a string is sent as { text = msg }
---@param opts? cliq.PostOptions
---@return true|table|nil ok
---@return string? err
function cliq.post_channel(channel_unique_name, msg, opts) end

---Posts a message as a bot to its subscribers (opts.userids or opts.broadcast).
---@param bot_unique_name string
---@param msg string|table
---@param opts? cliq.PostOptions
---@return true|table|nil ok
---@return string? err
function cliq.post_bot(bot_unique_name, msg, opts) end

---Calls a bot's incoming webhook handler with any JSON payload.
---@param bot_unique_name string
---@param payload table
---@param opts? cliq.PostOptions
---@return true|table|nil ok  the endpoint's reply, e.g. { user_ids = {...} }
---@return string? err
function cliq.bot_incoming(bot_unique_name, payload, opts) end

---Calls an extension's incoming webhook handler (opts.appkey is required).
---@param app_id string
---@param payload table
---@param opts? cliq.PostOptions
---@return true|table|nil ok
---@return string? err
function cliq.app_incoming(app_id, payload, opts) end

-- ---- store -------------------------------------------------------------------

---Keys and values kept between calls, in the host's store: one store per
---host, shared by all its scripts and all its workers, kept across restarts
---(SQLite in data_dir/store.db). Values are anything `json` carries; keys are
---non-empty strings of at most 512 bytes. Expected failures return nil, err
---("value too large: ...", "store full: ..."); a wrong argument raises.
store = {}

---@class store.set_opts
---@field ttl? number  seconds until the key expires (> 0)
---@field only_if_absent? boolean  write only when the key is absent

---@class store.ttl_opts
---@field ttl? number  seconds until the key expires (> 0)

---@class store.list_opts
---@field limit? integer  at most this many items (default 100, at most 1000)
---@field after? string  start after this key (the `next` of the last page)

---@class store.item
---@field key string
---@field value any

---The key's value, or nil when it is absent or expired.
---@param key string
---@return any value
---@return string? err
function store.get(key) end

---Sets the key (a nil value raises: use store.delete). A ttl replaces the
---key's expiry; without one the key does not expire.
---@param key string
---@param value any
---@param opts? store.set_opts
---@return boolean|nil ok  false when only_if_absent found the key
---@return string? err
function store.set(key, value, opts) end

---Adds `by` (default 1; may be negative or a float) to the number at key, an
---absent key counting as 0; atomic across workers. opts.ttl applies when
---the key is created; an incr never extends it.
---@param key string
---@param by? number
---@param opts? store.ttl_opts
---@return number|nil value  the new number
---@return string? err  "not a number: KEY" when the value is not a number
function store.incr(key, by, opts) end

---Atomic read-modify-write: fn(old) (old is nil when absent) returns the new
---value, or nil to delete the key. When the key changed meanwhile, fn runs
---again with the new value (so it must have no side effects); after 16 tries
---nil, "conflict: KEY changed 16 times". An error fn raises goes to the
---caller. Without opts.ttl the key keeps its expiry.
---@param key string
---@param fn fun(old: any): any
---@param opts? store.ttl_opts
---@return any value  what fn returned
---@return string? err
function store.update(key, fn, opts) end

---Removes the key (true also when it was absent).
---@param key string
---@return true|nil ok
---@return string? err
function store.delete(key) end

---The keys starting with prefix, with their values, in bytewise key order.
---At most opts.limit items and about 8 MiB of values per page; `next` is the
---last key returned when more remain (pass it as opts.after).
---@param prefix string
---@param opts? store.list_opts
---@return store.item[]|nil items
---@return string? next  or err when items is nil
function store.list(prefix, opts) end

-- ---- sleep -------------------------------------------------------------------

---Waits this many seconds; other requests run meanwhile.
---@param seconds number
function sleep(seconds) end

-- ---- what the sandbox keeps of os, debug and package -------------------------

---The safe part of Lua's os library.
os = {}

---@param t? osdateparam
---@return integer
function os.time(t) end

---@return number
function os.clock() end

---@param format? string   at most 4096 bytes
---@param time? integer
---@return string|osdate
function os.date(format, time) end

---@param t2 integer
---@param t1 integer
---@return number
function os.difftime(t2, t1) end

---The variable's value, only for names listed in the config's `script_env`;
---nil for any other name.
---@param name string
---@return string?
function os.getenv(name) end

---Only traceback is kept.
debug = {}

---@param message? any
---@param level? integer
---@return string
function debug.traceback(message, level) end

---A read-only view: `require` looks in scripts/lib/ first, then the host's lualib/.
package = {}

---@type table<string, any>  the modules this script's realm has loaded (read-only)
package.loaded = {}

---@type string
package.config = ""

---@type string  where require looks: "<scripts>/lib/?.lua;<scripts>/lib/?/init.lua;<lualib>/?.lua;..."
package.path = ""

---Like Lua's, over the files require may load.
---@param name string
---@param path string
---@param sep? string
---@param rep? string
---@return string? filename
---@return string? err
function package.searchpath(name, path, sep, rep) end
