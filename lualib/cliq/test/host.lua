-- cliq.test.host: what the host does around a script, for the test kit:
-- the sandbox a script sees (host/script/sandbox.c), `require` of scripts/lib/ and
-- lualib/ modules, loading a script and checking what it returns, and
-- running a handler as a coroutine whose waiting calls are answered by
-- cliq.test.fakes.
--
-- Each load is its own "worker": its own sandbox tables and module cache,
-- so every loaded file gets fresh module instances and one test's globals
-- or module state never reach another.

local json = require "cliq.test.json"
local fakes = require "cliq.test.fakes"
local store = require "cliq.test.store"

local M = {}

-- The folder of the shipped modules: the one this file was loaded from.
local function find_lualib()
  local src = debug.getinfo(1, "S").source
  local dir = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/cliq/test/host%.lua$")
  if dir then
    return dir
  end
  local path = package.searchpath("cliq.test.host", package.path)
  return path and path:match("^(.*)/cliq/test/host%.lua$") or "lualib"
end

M.lualib = find_lualib()

-- As in the host, for the whole process: no string.dump (it hands out
-- bytecode) and no reaching the string metatable. Changing the library is
-- the point here, so luacheck is told so.
string.dump = nil -- luacheck: ignore 122
getmetatable("").__metatable = false

local LOADING = setmetatable({}, { __name = "cliq.test.loading" })

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local data = f:read("a")
  f:close()
  return data
end

M.read = read

local function copy_lib(t)
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

-- A module name is dotted words: "cliq.message", "util".
local function module_name_ok(s)
  return #s > 0 and #s <= 128 and not s:find("^%.") and not s:find("%.%.")
    and not s:find("%.$") and not s:find("[^%w_%-%.]")
end

-- A new global table for one script or module: empty, reading through to
-- the worker's sandbox, its metatable hidden.
local function new_env(vm)
  local env = setmetatable({}, vm.env_mt)
  rawset(env, "_G", env)
  return env
end

local function require_in(vm)
  return function(name)
    if type(name) == "number" then
      name = tostring(name)
    elseif type(name) ~= "string" then
      error(string.format("bad argument #1 to 'require' (string expected, got %s)", type(name)),
        2)
    end
    local std = vm.std[name]
    if std ~= nil then
      return std
    end
    local have = vm.modules[name]
    if have == LOADING then
      error(string.format('require "%s": circular require', name), 2)
    elseif have ~= nil then
      return have
    end
    if not module_name_ok(name) then
      error(string.format('require "%s": not a module name (dotted words, as in '
        .. '"cliq.message")', name), 2)
    end
    local rel = name:gsub("%.", "/")
    local libdir = vm.scripts_dir .. "/lib"
    -- Where Lua's own path would look: ?.lua, then ?/init.lua, in
    -- scripts/lib/ and then in lualib/.
    local path, data
    local tried = {}
    for _, dir in ipairs({ libdir, M.lualib }) do
      for _, form in ipairs({ "%s/%s.lua", "%s/%s/init.lua" }) do
        path = string.format(form, dir, rel)
        tried[#tried + 1] = path
        data = read(path)
        if data then
          break
        end
      end
      if data then
        break
      end
    end
    if not data then
      error(string.format('require "%s": none of %s', name, table.concat(tried, ", ")), 2)
    end
    local chunk, err = load(data, "@" .. path, "t", new_env(vm))
    if not chunk then
      error(err, 0)
    end
    vm.modules[name] = LOADING
    -- A module's top level runs under the host's lua_pcall: it cannot wait.
    local task = fakes.current
    if task then
      task.loading = task.loading + 1
    end
    local ok, v = pcall(chunk, name, path)
    if task then
      task.loading = task.loading - 1
    end
    if not ok then
      vm.modules[name] = nil
      error(v, 0)
    end
    if v == nil then
      v = true
    end
    vm.modules[name] = v
    return v
  end
end

-- load for scripts: text only; without an env the chunk gets fresh globals.
local function load_in(vm)
  return function(chunk, chunkname, mode, ...)
    mode = mode == nil and "t" or mode
    if type(mode) ~= "string" then
      error(string.format("bad argument #3 to 'load' (string expected, got %s)", type(mode)), 2)
    end
    if mode:find("b") then
      return nil, "load: binary chunks are not allowed"
    end
    local has_env = select("#", ...) > 0
    local env = ...
    if type(chunk) == "function" then
      local parts = {}
      while true do
        local piece = chunk()
        if piece == nil or piece == "" then
          break
        end
        if type(piece) ~= "string" then
          error("load: reader function must return a string", 2)
        end
        parts[#parts + 1] = piece
      end
      chunk = table.concat(parts)
    elseif type(chunk) ~= "string" then
      error(string.format("bad argument #1 to 'load' (function expected, got %s)", type(chunk)),
        2)
    end
    if not has_env then
      env = new_env(vm)
    end
    local f, err = load(chunk, chunkname or chunk, "t", env)
    if not f then
      return nil, err
    end
    return f
  end
end

local guarded_coroutine = copy_lib(coroutine)
for _, name in ipairs({ "resume", "close" }) do
  local real = coroutine[name]
  guarded_coroutine[name] = function(co, ...)
    if fakes.task_threads[co] then
      error("a handler's own coroutine is run by the host; it cannot be resumed or closed by "
        .. "a script", 2)
    end
    return real(co, ...)
  end
end

local function sb_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc finalizers are not allowed in scripts", 2)
  end
  -- A JSON table's protected marker may be replaced, as on a plain table.
  if json.kind(t) and (mt == nil or type(mt) == "table") then
    return debug.setmetatable(t, mt)
  end
  return setmetatable(t, mt)
end

local function sb_collectgarbage(opt)
  opt = opt or "count"
  if opt ~= "count" then
    error(string.format('collectgarbage("%s") is not allowed; only "count"', tostring(opt)), 2)
  end
  return collectgarbage("count")
end

-- A view of t that reads it but cannot write it; `name` is for the error.
local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function()
      error(name .. " is read-only", 2)
    end,
    __pairs = function()
      return next, t, nil
    end,
    __metatable = false,
  })
end

local BASE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
  "rawlen", "rawset", "select", "getmetatable", "tonumber", "tostring", "type", "xpcall",
  "_VERSION" }

-- The sandbox of one worker: an allow-list, as host/script/sandbox.c builds it.
-- `script` names the script in log records.
local function new_sandbox(vm, script)
  local sb = {}
  for _, name in ipairs(BASE) do
    sb[name] = _G[name]
  end
  sb.string = copy_lib(string) -- each script's own; string methods follow it (see run)
  sb.table = copy_lib(table)
  sb.math = copy_lib(math)
  sb.utf8 = copy_lib(utf8)
  sb.setmetatable = sb_setmetatable
  sb.coroutine = copy_lib(guarded_coroutine)
  sb.os = fakes.make_os()
  sb.debug = { traceback = debug.traceback }
  sb.load = load_in(vm)
  sb.collectgarbage = sb_collectgarbage
  sb.require = require_in(vm)
  sb.json = { encode = json.encode, decode = json.decode, null = json.null, array = json.array,
    object = json.object }
  sb.log, sb.print, sb.warn = fakes.make_log(script)
  sb.http = { request = fakes.http_request }
  sb.sleep = fakes.sleep
  sb.cliq = fakes.make_cliq()
  sb.store = store.make_store()
  vm.std = {}
  for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine", "os", "debug" }) do
    vm.std[name] = sb[name]
  end
  vm.strings = sb.string
  sb.package = readonly({
    loaded = readonly(setmetatable({}, { __index = function(_, k)
      local v = vm.std[k] or vm.modules[k]
      if v ~= LOADING then
        return v
      end
    end }), "package.loaded"),
    config = package.config,
    path = table.concat({ vm.scripts_dir .. "/lib/?.lua", vm.scripts_dir .. "/lib/?/init.lua",
      M.lualib .. "/?.lua", M.lualib .. "/?/init.lua" }, ";"),
    searchpath = function(name, path, sep, rep)
      for _, dir in ipairs({ vm.scripts_dir .. "/lib/", M.lualib .. "/" }) do
        for template in path:gmatch("[^;]+") do
          local file = template:gsub("%?", (name:gsub("%" .. (sep or "."), rep or "/")))
          if file:sub(1, #dir) == dir and not file:find("/../", 1, true) and read(file) then
            return file
          end
        end
      end
      local miss = {}
      for template in path:gmatch("[^;]+") do
        miss[#miss + 1] = "\n\tno file '"
          .. template:gsub("%?", (name:gsub("%" .. (sep or "."), rep or "/"))) .. "'"
      end
      return nil, table.concat(miss)
    end,
  }, "package")
  return sb
end

-- While a script's code runs, string methods are its own string table's,
-- as in the host (see M.run and M.load_script).
local string_mt = debug.getmetatable("")
local pristine = string_mt.__index

-- The message of error e with the traceback of co (or of the running
-- code, from `level`), cut where the kit's own frames begin.
function M.traceback(co, e, level)
  local msg = (type(e) == "string" or type(e) == "number") and tostring(e)
    or string.format("(error object is a %s value)", type(e))
  local tb = co and debug.traceback(co, msg) or debug.traceback(msg, level + 1)
  local lines = {}
  for line in tb:gmatch("[^\n]+") do
    if line:find("/cliq/test/", 1, true) or line:find("in function 'xpcall'", 1, true) then
      break
    end
    lines[#lines + 1] = line
  end
  return table.concat(lines, "\n")
end

-- A new worker for the scripts folder `scripts_dir`; `script` names the
-- file it is for in log records.
function M.new_vm(scripts_dir, script)
  local vm = { scripts_dir = scripts_dir, script = script, modules = {} }
  vm.env_mt = { __index = new_sandbox(vm, script), __metatable = false }
  return vm
end

local function type_name(v)
  return v == nil and "nil" or type(v)
end
M.type_name = type_name

-- The host's check of a handler script's table: handler functions by name.
local function check_handlers(v, path)
  if type(v) ~= "table" then
    error(string.format("%s: must return a table of handler functions (returned %s)", path,
      type_name(v)), 0)
  end
  for k, fn in pairs(v) do
    if type(k) ~= "string" or type(fn) ~= "function" then
      error(string.format("%s: handler '%s' must be a function (is a %s)", path,
        type(k) == "string" and k or "?", type_name(fn)), 0)
    end
  end
end
M.check_handlers = check_handlers

-- Loads a script's text (from the file `path`) in a new worker, runs its
-- top level (where nothing may wait) and checks what it returned with
-- check(value, path), which raises the host's message (default: a table of
-- handler functions). Returns the table, the worker and path; raises the
-- host's messages when the script does not compile, fails or returns the
-- wrong thing.
function M.load_script(scripts_dir, data, path, script, check)
  local vm = M.new_vm(scripts_dir, script)
  local chunk, err = load(data, "@" .. path, "t", new_env(vm))
  if not chunk then
    error(err, 0)
  end
  local outer = fakes.current
  fakes.current = nil
  string_mt.__index = vm.strings
  local ok, v = xpcall(chunk, function(e)
    return M.traceback(nil, e, 2)
  end)
  string_mt.__index = pristine
  fakes.current = outer
  if not ok then
    error(v, 0)
  end
  check = check or check_handlers
  check(v, path)
  return v, vm, path
end

-- Runs fn(req) as a handler coroutine: each waiting binding yields to this
-- loop and is resumed at once with its answer. Returns the task (its
-- record: received, responded, ...) and the handler's results; raises
-- with the error and the handler's traceback when it fails, or when it
-- yields outside a host call.
function M.run(fn, req, strings)
  local co = coroutine.create(fn)
  fakes.task_threads[co] = true
  local url = rawget(req, "response_url")
  local task = {
    co = co, req = req, id = rawget(req, "id"), received = fakes.now(),
    response_url = type(url) == "string" and url or nil, responded = false, loading = 0,
  }
  local outer = fakes.current
  fakes.current = task
  local args = table.pack(req)
  local res
  while true do
    string_mt.__index = strings or pristine
    res = table.pack(coroutine.resume(co, table.unpack(args, 1, args.n)))
    string_mt.__index = pristine
    if not res[1] then
      fakes.current = outer
      error(M.traceback(co, res[2]), 0)
    end
    if coroutine.status(co) == "dead" then
      break
    end
    if res[2] ~= fakes.WAIT then
      fakes.current = outer
      error("handler yielded outside a host call (coroutine.yield in the handler body)", 0)
    end
    args = table.pack(table.unpack(res, 3, res.n))
  end
  fakes.current = outer
  return task, table.unpack(res, 2, res.n)
end

return M
