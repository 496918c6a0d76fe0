-- wrk script: replays the signed calls written by cliqhost-bench-sign, each
-- thread from its own starting point, so consecutive requests differ.
--   wrk -s bench/replay.lua URL -- REQUESTS_FILE

local requests = {}
local next_index = 1

function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/", {
      ["Content-Type"] = "application/json",
      ["X-Cliq-Signature"] = sig,
    }, body)
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000)
  next_index = math.random(#requests)
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
