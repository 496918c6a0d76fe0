-- wrk script for bench/tasks.sh: POSTs one JSON body to a hook, each request
-- with the headers of the next line of a file (its signature headers).
--   wrk -s bench/hook.lua URL -- PATH BODY_FILE HEADERS_FILE
-- HEADERS_FILE: one request a line, "Name: value" pairs separated by tabs
-- (bench/hook-sign.py writes it). The lines go in the file's order from the
-- first, so with one thread and more lines than the run sends, each goes
-- once (Standard Webhooks: every webhook-id is new to the host); past the
-- last line it starts again. Every request is built in init(), so sending
-- costs wrk what bench/replay.lua's do.

local requests = {}
local next_index = 0

function init(args)
  local path = args[1]
  local f = assert(io.open(args[2], "rb"))
  local body = f:read("*a")
  f:close()
  for line in io.lines(args[3]) do
    local headers = { ["Content-Type"] = "application/json" }
    for name, value in line:gmatch("([^\t:]+): ([^\t]*)") do
      headers[name] = value
    end
    requests[#requests + 1] = wrk.format("POST", path, headers, body)
  end
  assert(#requests > 0, "no requests in " .. args[3])
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
