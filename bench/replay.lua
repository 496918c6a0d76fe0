-- wrk script: replays the signed calls written by cliqhost-bench-sign, each
-- thread from its own starting point, so consecutive requests differ.
--   wrk -s bench/replay.lua URL -- REQUESTS_FILE [in-order]
-- With "in-order" (bench/store.sh), a thread starts at the file's first
-- call and sends the calls in the file's order, so with one thread and
-- more calls than the run sends, each call goes once and every one is new
-- to the host's replay checks; past the last call it starts again, and
-- those repeats are refused (401).

local requests = {}
local next_index = 0

function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/", {
      ["Content-Type"] = "application/json",
      ["X-Cliq-Signature"] = sig,
    }, body)
  end
  if args[2] ~= "in-order" then
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000)
    next_index = math.random(#requests)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
